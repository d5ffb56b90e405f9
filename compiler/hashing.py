"""Canonical JSON and hash-derived randomness: the only sources of ids and of 'random' choices."""

from __future__ import annotations

import hashlib
from typing import Any

import orjson

_SORT = orjson.OPT_SORT_KEYS


def canonical_json(obj: Any) -> bytes:
    """Sorted keys, no whitespace, UTF-8: the same bytes on every machine and Python version."""
    return orjson.dumps(obj, option=_SORT)


def content_hash(obj: Any, length: int = 32) -> str:
    """Hex sha256 of the canonical JSON of `obj`, cut to `length` characters."""
    return hashlib.sha256(canonical_json(obj)).hexdigest()[:length]


def stable_int(seed: int, *keys: str | int) -> int:
    """A 64-bit integer that depends only on the seed and the keys."""
    data = "\x1f".join([str(seed), *map(str, keys)]).encode()
    return int.from_bytes(hashlib.sha256(data).digest()[:8], "big")


def stable_unit(seed: int, *keys: str | int) -> float:
    """A float in [0, 1) that depends only on the seed and the keys."""
    return stable_int(seed, *keys) / 2**64
