"""Base prompts -> fully expanded, content-hashed requests (the lines of manifest.jsonl)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

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
    changes exactly when what is sent changes. Seen ids are kept as 64-bit ints (about 60 bytes each).
    """

    def __init__(self) -> None:
        self._seen: set[int] = set()

    def assign(self, stage: str, model: str, messages: list[Mapping[str, str]], params: Mapping[str, Any], schema: str) -> str:
        replica = 0
        while True:
            payload = {"messages": messages, "model": model, "params": params, "replica": replica,
                       "schema": schema, "stage": stage}
            digest = hashlib.sha256(orjson.dumps(payload, option=_SORT)).digest()
            short = int.from_bytes(digest[:8], "big")
            if short not in self._seen:
                self._seen.add(short)
                return digest[:16].hex()
            replica += 1


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
    for bp in base_prompts:
        names = bp.template.optional if bp.expand else ()
        system = {"role": "system", "content": bp.system}
        for values in combinations(names, expansion, bp.key):
            messages = [system, *bp.history, {"role": "user", "content": bp.template.render(values)}]
            meta = {**bp.meta, "placeholders": dict(values)} if values else dict(bp.meta)
            for model in bp.models:
                yield {
                    "id": ids.assign(stage, model, messages, params, schema),
                    "stage": stage,
                    "model": model,
                    "messages": messages,
                    "params": params,
                    "schema": schema,
                    "meta": meta,
                }
