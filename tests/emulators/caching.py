"""Prompt-cache memory of the emulators: which earlier prompt prefix a new request shares, in tokens.

A prompt is a list of :class:`Block` in the order the vendor reads it (system, then messages; Anthropic's
content blocks, OpenAI's messages or content parts, Gemini's parts). Its text, ``prompt_text(blocks)`` (the
text blocks joined by newlines), is what the emulators count tokens of (``answers.tokens``: 4 characters a
token, plus 3 for the framing). A prefix of ``c`` characters of that text counts ``c // 4`` tokens
(:func:`prefix_tokens`): a token is shared only when its 4 characters all are.

Two prompts share a prefix up to the first character that differs *or* the first block boundary where the
blocks' tags (role and message position) differ: the same text sent as one message or split over two is not
the same prompt, as on the real services, whose chat templates mark every message.

- :class:`PrefixCache` (OpenAI, Gemini: implicit caching): every prompt of at least ``remember`` tokens is
  kept per partition (model, cache key, ...); a new prompt's longest shared prefix with any kept one is found
  in O(log n) (the longest common prefix with a set of strings is reached at a sorted neighbour).
- :class:`BreakpointCache` (Anthropic: explicit ``cache_control`` breakpoints): entries are prefixes that end
  at a breakpoint block, each with its TTL on the emulator clock.
"""

from __future__ import annotations

import hashlib
from bisect import bisect_left, insort
from collections import deque
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import NamedTuple

MAX_PROMPTS = 20_000  # prompts kept per PrefixCache partition (oldest forgotten first)
MAX_ENTRIES = 200_000  # entries kept by a BreakpointCache (expired ones dropped first, then the oldest)
LOOKBACK = 20  # Anthropic checks for a cached prefix at most this many blocks before each breakpoint
TTL_SECONDS = {"5m": 300.0, "1h": 3600.0}
_START, _TEXT = "\x00", "\x01"  # block markers in the encoded form of a prompt


class Block(NamedTuple):
    tag: str  # role and position, e.g. "system", "user#0"
    text: str | None  # counted text; None for a block without text (image, tool call...)
    sig: str = ""  # identity of a block without text (its JSON), so that different ones differ


def prompt_text(blocks: Sequence[Block]) -> str:
    """The text the emulators count tokens of: the text blocks, joined by newlines."""
    return "\n".join(b.text for b in blocks if b.text is not None)


def prefix_tokens(chars: int) -> int:
    """Tokens of a prompt prefix of ``chars`` characters."""
    return max(0, chars) // 4


def block_ends(blocks: Sequence[Block]) -> list[int]:
    """For each block, the length of ``prompt_text`` up to and including it."""
    ends, pos, seen = [], 0, False
    for block in blocks:
        if block.text is not None:
            pos += len(block.text) + (1 if seen else 0)
            seen = True
        ends.append(pos)
    return ends


def _encode(blocks: Sequence[Block]) -> tuple[str, list[tuple[int, int]]]:
    """The prompt as one string whose common prefixes respect block tags, and per block (marker length, text
    length), the text including the newline that joins it to the previous text block."""
    parts, sizes, seen = [], [], False
    for block in blocks:
        marker = f"{_START}{block.tag}{_TEXT}" if block.text is not None else f"{_START}{block.tag}{_TEXT}{block.sig}"
        text = "" if block.text is None else ("\n" if seen else "") + block.text
        seen = seen or block.text is not None
        parts += [marker, text]
        sizes.append((len(marker), len(text)))
    return "".join(parts), sizes


def _text_chars(sizes: list[tuple[int, int]], shared: int) -> int:
    """Characters of ``prompt_text`` within the first ``shared`` characters of the encoded prompt."""
    enc = txt = 0
    for marker, text in sizes:
        if shared <= enc + marker:
            return txt
        if shared <= enc + marker + text:
            return txt + shared - enc - marker
        enc, txt = enc + marker + text, txt + text
    return txt


def _common(a: str, b: str) -> int:
    """Length of the common prefix of two strings (binary search over C-speed slice comparisons)."""
    lo, hi = 0, min(len(a), len(b))
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if a[:mid] == b[:mid]:
            lo = mid
        else:
            hi = mid - 1
    return lo


class _Prompts:
    def __init__(self) -> None:
        self.sorted: list[str] = []
        self.order: deque[str] = deque()

    def longest(self, encoded: str) -> int:
        i = bisect_left(self.sorted, encoded)
        return max((_common(encoded, self.sorted[j]) for j in (i - 1, i) if 0 <= j < len(self.sorted)), default=0)

    def add(self, encoded: str) -> None:
        insort(self.sorted, encoded)
        self.order.append(encoded)
        if len(self.order) > MAX_PROMPTS:
            old = self.order.popleft()
            del self.sorted[bisect_left(self.sorted, old)]


class PrefixCache:
    """Implicit caching: the longest prefix a prompt shares with an earlier prompt of the same partition."""

    def __init__(self) -> None:
        self._partitions: dict[Hashable, _Prompts] = {}

    def shared(self, partition: Hashable, blocks: Sequence[Block], *, remember: int) -> int:
        """Tokens of the longest prefix ``blocks`` share with a kept prompt of ``partition``; the prompt is then
        kept too when it has at least ``remember`` tokens (a shorter one can never give a hit)."""
        encoded, sizes = _encode(blocks)
        prompts = self._partitions.get(partition)
        shared = prefix_tokens(_text_chars(sizes, prompts.longest(encoded))) if prompts else 0
        if prefix_tokens(sum(text for _, text in sizes)) >= remember:
            self._partitions.setdefault(partition, _Prompts()).add(encoded)
        return shared


@dataclass(frozen=True)
class CacheUse:
    """What one Anthropic request read from and wrote to the cache, in tokens."""

    read: int = 0
    write_5m: int = 0
    write_1h: int = 0

    @property
    def write(self) -> int:
        return self.write_5m + self.write_1h


class BreakpointCache:
    """Explicit caching: prefixes ending at a ``cache_control`` block, keyed by a hash of the prefix."""

    def __init__(self) -> None:
        self._entries: dict[str, tuple[float, float]] = {}  # prefix hash -> (expires at, ttl seconds)

    def use(self, partition: str, blocks: Sequence[Block], breakpoints: Mapping[int, str], *, minimum: int,
            now: float) -> CacheUse:
        """Read the longest live cached prefix that ends at most ``LOOKBACK`` blocks before (or at) a breakpoint,
        then write every breakpoint after it whose prefix has at least ``minimum`` tokens.

        ``breakpoints``: block index -> TTL ("5m" / "1h"). The written tokens are split by the TTL of the
        breakpoint that ends each written stretch; a read refreshes its entry's TTL, as on the service.
        """
        if not breakpoints:
            return CacheUse()
        ends = block_ends(blocks)
        keys, digest = [], hashlib.sha256(partition.encode())
        for block in blocks:
            digest.update(f"{_START}{block.tag}{_TEXT}{block.sig}{_TEXT}{block.text or ''}".encode())
            keys.append(digest.copy().hexdigest())
        read_at = -1
        for point in breakpoints:
            for k in range(point, max(-1, point - LOOKBACK), -1):
                entry = self._entries.get(keys[k])
                if k > read_at and entry is not None and entry[0] > now:
                    read_at = k
        read = prefix_tokens(ends[read_at]) if read_at >= 0 else 0
        if read_at >= 0:
            ttl = self._entries[keys[read_at]][1]
            self._entries[keys[read_at]] = (now + ttl, ttl)
        written = {"5m": 0, "1h": 0}
        done = read
        for point in sorted(p for p in breakpoints if p > read_at):
            tokens = prefix_tokens(ends[point])
            if tokens < minimum:
                continue
            ttl_name = breakpoints[point] if breakpoints[point] in TTL_SECONDS else "5m"
            written[ttl_name] += tokens - done
            done = tokens
            self._entries[keys[point]] = (now + TTL_SECONDS[ttl_name], TTL_SECONDS[ttl_name])
        if len(self._entries) > MAX_ENTRIES:
            self._prune(now)
        return CacheUse(read, written["5m"], written["1h"])

    def _prune(self, now: float) -> None:
        self._entries = {k: v for k, v in self._entries.items() if v[0] > now}
        for key in list(self._entries)[: max(0, len(self._entries) - MAX_ENTRIES)]:
            del self._entries[key]
