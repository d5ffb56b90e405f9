"""Base prompts -> fully expanded, content-hashed requests (the lines of manifest.jsonl).

Each request's canonical JSON is assembled from parts serialized once: the messages and meta once per
expanded prompt (shared by its models), the stage, schema, params and model once per stage. The bytes are
exactly `canonical_json(request)`, and the id hashes exactly `canonical_json({stage, model, messages,
params, schema, replica})`; tests hold both equalities.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from typing import Any, NamedTuple

import numpy as np

from .caching import prefix_key, shared_prefix
from .expansion import combinations
from .hashing import canonical_json, content_hash
from .spec import PromptExpansionConfig
from .stages.base import BasePrompt

_dumps = canonical_json


def schema_key(stage: str, schema: Mapping[str, Any]) -> str:
    """Key of a schema in manifest.json's `schemas`: the stage name and a hash of the schema."""
    return f"{stage}-{content_hash(schema, 16)}"


class _Pending(NamedTuple):
    request: dict[str, Any]
    messages: bytes  # canonical JSON of request["messages"]
    meta: bytes
    model: bytes  # canonical JSON of the model string, then ',"params":' and the params
    tail: bytes | None = None  # `,"schema":...,"stage":...}` when the request's schema is not its stage's


class IdAssigner:
    """Content-hash request ids; identical content asked for again gets the next replica number.

    The id is 32 hex chars of sha256 over canonical {stage, model, messages, params, schema, replica}, so it
    changes exactly when what is sent changes; replica is the number of earlier requests with the same
    content. To find earlier contents without a Python object per request, the 64-bit prefixes of the
    contents seen are kept in a sorted numpy array (8 bytes a request), checked a chunk at a time, plus a
    bounded set of the most recent ones.
    """

    CHUNK = 128
    RECENT_LIMIT = 1 << 16

    def __init__(self) -> None:
        self._old = np.empty(0, dtype=np.uint64)
        self._recent: set[int] = set()
        self._repeats: dict[int, int] = {}  # content prefix -> occurrences so far, for repeated contents only

    def assign(self, pending: Iterable[_Pending], tail: bytes) -> Iterator[tuple[dict[str, Any], bytes]]:
        """Set `id` on each request; yield it with its manifest line, in order.

        `tail` is the canonical JSON of `,"schema":...,"stage":...}`, shared by the stage's requests.
        """
        chunk: list[_Pending] = []
        for item in pending:
            chunk.append(item)
            if len(chunk) == self.CHUNK:
                yield from self._assign_chunk(chunk, tail)
                chunk = []
        if chunk:
            yield from self._assign_chunk(chunk, tail)

    def _assign_chunk(self, chunk: list[_Pending], tail: bytes) -> list[tuple[dict[str, Any], bytes]]:
        heads = [b'{"messages":' + p.messages + b',"model":' + p.model + b',"replica":' for p in chunk]
        tails = [p.tail or tail for p in chunk]
        digests = [hashlib.sha256(head + b"0" + t).digest() for head, t in zip(heads, tails, strict=True)]
        prefixes = [int.from_bytes(d[:8], "big") for d in digests]
        in_old = _member(np.array(prefixes, dtype=np.uint64), self._old)
        recent = self._recent
        out = []
        for p, head, t, digest, prefix, old in zip(chunk, heads, tails, digests, prefixes, in_old.tolist(),
                                                   strict=True):
            if old or prefix in recent:
                replica = self._repeats.get(prefix, 1)
                self._repeats[prefix] = replica + 1
                digest = hashlib.sha256(head + str(replica).encode() + t).digest()
            else:
                recent.add(prefix)
            request_id = digest[:16].hex()
            p.request["id"] = request_id
            line = (b'{"id":"' + request_id.encode() + b'","messages":' + p.messages + b',"meta":' + p.meta
                    + b',"model":' + p.model + t + b"\n")
            out.append((p.request, line))
        if len(recent) > self.RECENT_LIMIT:
            merged = np.concatenate([self._old, np.array(sorted(recent), dtype=np.uint64)])
            merged.sort(kind="stable")  # two sorted runs: a linear merge
            self._old = merged
            self._recent = set()
        return out


def _member(values: np.ndarray, sorted_array: np.ndarray) -> np.ndarray:
    if not len(sorted_array):
        return np.zeros(len(values), dtype=bool)
    pos = np.searchsorted(sorted_array, values)
    pos[pos == len(sorted_array)] = 0
    return sorted_array[pos] == values  # type: ignore[no-any-return]


def expand_requests(
    stage: str,
    schema: str,
    base_prompts: Iterable[BasePrompt],
    expansion: PromptExpansionConfig,
    params: Mapping[str, Any],
    ids: IdAssigner,
    documents: bool = False,
    long_ttl_from: int | None = None,
) -> Iterator[tuple[dict[str, Any], bytes]]:
    """Every request of a stage with its manifest line, in expansion order: base prompt, combination, model.

    `documents`: the stage's requests may carry `meta.document` (`Stage.documents`), whose prefixes are
    counted. `long_ttl_from`: Anthropic requests whose prefix that many requests share (or more) get
    `meta.cache_ttl = "1h"` (the 1-hour prompt cache); None: none does.
    """
    params = dict(params)
    pending = _pending(stage, schema, base_prompts, expansion, params)
    if documents:
        pending = _mark_shared_prefixes(pending, long_ttl_from)
    return ids.assign(pending, _tail(schema, stage))


def _tail(schema: str, stage: str) -> bytes:
    """The end of a manifest line: `,"schema":...,"stage":...}` (keys in canonical order)."""
    return b',"schema":' + _dumps(schema) + b',"stage":' + _dumps(stage) + b"}"


def _mark_shared_prefixes(pending: Iterable[_Pending], long_ttl_from: int | None = None) -> Iterator[_Pending]:
    """Give each request that carries a document prefix (compiler/caching.py) `meta.prefix_shared_by`: how many
    requests of its run of same-document requests (same model, same text up to the document's end) share it.

    Builders emit the requests of one document together (later stages sort their input rows by document), so
    a run is all of them. A prefix nobody else sends is not worth a cache write (Anthropic charges 1.25x for
    it); renderers put cache hints only on prefixes shared by 2 or more. Requests without a document pass
    through as they are.
    """
    run: list[tuple[_Pending, str]] = []  # the requests of the current document, each with its prefix key
    document: object = None
    for item in pending:
        end = shared_prefix(item.request)
        doc = item.request["meta"].get("document") if end else None
        if run and doc != document:  # another document, or none: the run is complete (order is kept)
            yield from _counted(run, long_ttl_from)
            run = []
        if end:
            document = doc
            run.append((item, prefix_key(item.request, end)))
        else:
            yield item
    yield from _counted(run, long_ttl_from)


def _counted(run: list[tuple[_Pending, str]], long_ttl_from: int | None) -> Iterator[_Pending]:
    counts = Counter(key for _, key in run)
    for p, key in run:
        meta = {**p.request["meta"], "prefix_shared_by": counts[key]}
        if long_ttl_from is not None and counts[key] >= long_ttl_from and p.request["model"].startswith("anthropic:"):
            meta["cache_ttl"] = "1h"
        p.request["meta"] = meta
        yield p._replace(meta=_dumps(meta))


def _pending(stage: str, schema: str, base_prompts: Iterable[BasePrompt],
             expansion: PromptExpansionConfig, params: dict[str, Any]) -> Iterator[_Pending]:
    params_json = _dumps(params)
    model_json: dict[str, bytes] = {}
    for bp in base_prompts:
        key, tail = schema, None
        if bp.schema is not None:
            key = schema_key(stage, bp.schema)
            tail = _tail(key, stage) if key != schema else None
        names = bp.template.optional if bp.expand else ()
        system = {"role": "system", "content": bp.system}
        for m in bp.models:
            if m not in model_json:
                model_json[m] = _dumps(m) + b',"params":' + params_json
        for values in combinations(names, expansion, bp.key):
            messages = [system, *bp.history, {"role": "user", "content": bp.template.render(values)}]
            meta = {**bp.meta, "placeholders": dict(values)} if values else dict(bp.meta)
            messages_json, meta_json = _dumps(messages), _dumps(meta)
            for model in bp.models:
                request = {"stage": stage, "model": model, "messages": messages, "params": params,
                           "schema": key, "meta": meta}
                yield _Pending(request, messages_json, meta_json, model_json[model], tail)
