"""Base prompts -> fully expanded, content-hashed requests (the lines of manifest.jsonl)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import numpy as np
import orjson

from .expansion import combinations
from .hashing import content_hash
from .spec import PromptExpansionConfig
from .stages.base import BasePrompt

_SORT = orjson.OPT_SORT_KEYS


def schema_key(stage: str, schema: Mapping[str, Any]) -> str:
    """Key of a schema in manifest.json's `schemas`: the stage name and a hash of the schema."""
    return f"{stage}-{content_hash(schema, 16)}"


class IdAssigner:
    """Content-hash request ids; identical content asked for again gets the next replica number.

    The id is 32 hex chars of sha256 over canonical {stage, model, messages, params, schema, replica}, so it
    changes exactly when what is sent changes; replica is the number of earlier requests with the same
    content. To find earlier contents without a Python object per request, the 64-bit prefixes of the
    contents seen are kept in a sorted numpy array (8 bytes a request), checked a chunk at a time, plus a
    bounded set of the most recent ones.
    """

    CHUNK = 4096
    RECENT_LIMIT = 1 << 18

    def __init__(self) -> None:
        self._old = np.empty(0, dtype=np.uint64)
        self._recent: set[int] = set()
        self._repeats: dict[int, int] = {}  # content prefix -> occurrences so far, for repeated contents only

    def assign(self, requests: Iterable[dict[str, Any]]) -> Iterator[dict[str, Any]]:
        """Set `id` on each request and yield it, in order."""
        chunk: list[dict[str, Any]] = []
        for request in requests:
            chunk.append(request)
            if len(chunk) == self.CHUNK:
                yield from self._assign_chunk(chunk)
                chunk = []
        if chunk:
            yield from self._assign_chunk(chunk)

    @staticmethod
    def _digest(request: Mapping[str, Any], replica: int) -> bytes:
        payload = {"messages": request["messages"], "model": request["model"], "params": request["params"],
                   "replica": replica, "schema": request["schema"], "stage": request["stage"]}
        return hashlib.sha256(orjson.dumps(payload, option=_SORT)).digest()

    def _assign_chunk(self, chunk: list[dict[str, Any]]) -> list[dict[str, Any]]:
        digests = [self._digest(r, 0) for r in chunk]
        prefixes = [int.from_bytes(d[:8], "big") for d in digests]
        in_old = _member(np.array(prefixes, dtype=np.uint64), self._old)
        recent = self._recent
        for request, digest, prefix, old in zip(chunk, digests, prefixes, in_old.tolist(), strict=True):
            if old or prefix in recent:
                replica = self._repeats.get(prefix, 1)
                self._repeats[prefix] = replica + 1
                digest = self._digest(request, replica)
            else:
                recent.add(prefix)
            request["id"] = digest[:16].hex()
        if len(recent) > self.RECENT_LIMIT:
            merged = np.concatenate([self._old, np.array(sorted(recent), dtype=np.uint64)])
            merged.sort(kind="stable")  # two sorted runs: a linear merge
            self._old = merged
            self._recent = set()
        return chunk


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
) -> Iterator[dict[str, Any]]:
    """Every request of a stage, in expansion order: base prompt, then combination, then model."""
    params = dict(params)
    return ids.assign(_requests_without_ids(stage, schema, base_prompts, expansion, params))


def _requests_without_ids(stage: str, schema: str, base_prompts: Iterable[BasePrompt],
                          expansion: PromptExpansionConfig, params: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for bp in base_prompts:
        names = bp.template.optional if bp.expand else ()
        system = {"role": "system", "content": bp.system}
        for values in combinations(names, expansion, bp.key):
            messages = [system, *bp.history, {"role": "user", "content": bp.template.render(values)}]
            meta = {**bp.meta, "placeholders": dict(values)} if values else dict(bp.meta)
            for model in bp.models:
                yield {
                    "stage": stage,
                    "model": model,
                    "messages": messages,
                    "params": params,
                    "schema": schema,
                    "meta": meta,
                }
