"""Prompt-cache hints: which part of a request repeats across requests, for the vendors' prompt caches.

The stages that read documents (mcq distractors, preference answers and judge) send one document with many
items. Their built-in prompts put what repeats first (system text, the instructions, then the document) and
the per-item part last, and later stages order their requests by document, so requests sharing a prefix sit
together in the manifest, in the job files and in the vendor's processing order. A request's shared prefix
is a pure function of the request (its `meta.document` found in its last user message, and
`meta.prefix_shared_by`, how many requests of its stage share that prefix: a prefix sent once gets no hint,
since a cache write nobody reads costs more than no cache), so every renderer, in any process, derives the
same hint from a manifest line:

- Anthropic: a `cache_control` breakpoint ends the prefix (the last user message becomes two text blocks)
  when the prefix reaches the model's minimum cacheable length (`anthropic_min_tokens`); cached reads cost
  0.1x the input price, writes 1.25x (5-minute cache).
- OpenAI: `prompt_cache_key` (a hash of model and prefix) routes requests sharing a prefix of 1,024+ tokens
  to the same cache; caching itself is automatic.
- Gemini 2.5: implicit caching of repeated prefixes; nothing to send.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .hashing import content_hash
from .pricing import CHARS_PER_TOKEN

MIN_DOCUMENT_CHARS = 200  # below this a document is no prefix worth a hint
OPENAI_MIN_TOKENS = 1024  # OpenAI caches prompts of 1,024 tokens or more (platform.openai.com prompt caching)
# Minimum cacheable prompt length by model name prefix, longest prefix first (Anthropic's prompt-caching
# documentation as quoted in anthropics/anthropic-sdk-python#1194, and docs.litellm.ai's prompt-caching page
# updated 2026-10-07; seen 2026-12-01); unknown Claude models take 1,024.
ANTHROPIC_MIN_TOKENS = (
    ("claude-opus-4-5", 4096), ("claude-opus-4-6", 4096), ("claude-haiku-4-5", 4096), ("claude-haiku-5-5", 4096),
    ("claude-opus-4-7", 2048), ("claude-3-5-haiku", 2048), ("claude-3-haiku", 2048),
    ("claude-opus-5", 512), ("claude-fable-5", 512), ("claude-mythos-5", 512), ("claude-mythos-preview", 512),
    ("claude-", 1024),
)


def anthropic_min_tokens(model_name: str) -> int:
    """Anthropic's minimum cacheable prefix, in tokens, for a model name (without the runtime)."""
    for prefix, tokens in ANTHROPIC_MIN_TOKENS:
        if model_name.startswith(prefix):
            return tokens
    return 1024


def shared_prefix(request: Mapping[str, Any]) -> int:
    """How many characters of the request's last user message repeat across requests (the instructions
    and the document before the per-item part); 0 when the request carries no document, or when no other
    request of its stage sends the same prefix (`meta.prefix_shared_by` < 2, set by the compiler)."""
    meta = request.get("meta") or {}
    if meta.get("prefix_shared_by", 2) < 2:
        return 0
    document = meta.get("document")
    messages = request["messages"]
    if not isinstance(document, str) or len(document) < MIN_DOCUMENT_CHARS or not messages:
        return 0
    content = messages[-1].get("content")
    if messages[-1].get("role") != "user" or not isinstance(content, str):
        return 0
    at = content.find(document)
    return 0 if at < 0 else at + len(document)


def prefix_tokens(request: Mapping[str, Any], end: int) -> int:
    """Estimated tokens of everything before the end of the shared prefix (chars / CHARS_PER_TOKEN)."""
    before = sum(len(m.get("content") or "") for m in request["messages"][:-1])
    return (before + end) // CHARS_PER_TOKEN


def prefix_key(request: Mapping[str, Any], end: int) -> str:
    """A stable key of (model, answer schema, every message before the prefix end): equal for requests sharing
    it. The schema counts: vendors put a structured-output schema before the messages, so requests with
    different schemas share no cached prefix (OpenAI's prompt-caching guide says so of its own)."""
    messages = request["messages"]
    return "df-" + content_hash([request["model"], request.get("schema"), [m.get("content") for m in messages[:-1]],
                                 messages[-1]["content"][:end]], 24)


# Gemini's implicit caching (ai.google.dev/gemini-api/docs/caching, updated 2026-10-13; seen 2026-12-01): 2.5
# models from 2,048 tokens, 3.x and later from 4,096; none before 2.5
GEMINI_MIN_TOKENS = (("gemini-2.5", 2048), ("gemini-3", 4096))


def cached_prefix_tokens(request: Mapping[str, Any]) -> tuple[str, int] | None:
    """(prefix key, tokens) when the vendor of the request's model would cache its shared prefix (the hints
    above, or implicit caching), else None. What `plan` counts as cache reads after the first request."""
    end = shared_prefix(request)
    if not end:
        return None
    runtime, _, name = request["model"].partition(":")
    tokens = prefix_tokens(request, end)
    if runtime == "anthropic":
        minimum: int | None = anthropic_min_tokens(name)
    elif runtime == "openai":
        minimum = OPENAI_MIN_TOKENS
    elif runtime == "gemini":
        minimum = next((m for prefix, m in GEMINI_MIN_TOKENS if name.startswith(prefix)), None)
    else:
        minimum = None  # local runtimes: free, and their KV caches are theirs
    if minimum is None or tokens < minimum:
        return None
    return prefix_key(request, end), tokens


def count_cache(request: Mapping[str, Any], seen: set[str], group: list[int]) -> None:
    """Add a request's estimated prompt-cache tokens to `group` (`[requests, input, output, cache read, cache
    write, of which 1h cache write]`, as `plan` and manifest.json count them): the first request of a prefix
    (not in `seen`, which it joins) writes it, Anthropic being the only vendor billing writes above the input
    price (for 1 hour when `meta.cache_ttl` says so); the next ones read it."""
    cached = cached_prefix_tokens(request)
    if cached is None:
        return
    key, tokens = cached
    if key in seen:
        group[3] += tokens
        return
    seen.add(key)
    if request["model"].startswith("anthropic:"):
        group[4] += tokens
        if (request.get("meta") or {}).get("cache_ttl") == "1h":
            group[5] += tokens
