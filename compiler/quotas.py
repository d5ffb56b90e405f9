"""Vendor batch-queue quotas (enqueued tokens per model), from a dated table kept as data.

`datafast.runner` paces batch creations against them: a vendor refuses a whole batch when the tokens already
queued for its model plus the batch's would exceed the organisation's limit (OpenAI `token_limit_exceeded`).
The built-in table assumes the lowest paid tier; a user file (JSON or YAML, same format) overrides entries.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

_SNAPSHOT = re.compile(r"^(?P<model>.+)-\d{4}-\d{2}-\d{2}$")  # gpt-4.1-mini-2025-04-14 -> gpt-4.1-mini


@dataclass(frozen=True)
class QuotaTable:
    checked: str
    tier: str
    models: Mapping[str, Mapping[str, Any]]
    sources: tuple[str, ...] = field(default=())

    @classmethod
    def load(cls, override: str | Path | None = None) -> QuotaTable:
        """The built-in table, with the entries of `override` (JSON or YAML, same format) merged over it."""
        data = json.loads(resources.files("datafast.compiler").joinpath("data/quotas.json").read_text("utf-8"))
        sources = ["built-in table"]
        if override is not None:
            extra = _read_override(Path(override))
            data["models"] = {**data["models"], **_normalized(extra.get("models") or {})}
            for key in ("checked", "tier"):
                if key in extra:
                    data[key] = extra[key]
            sources.append(str(override))
        return cls(str(data["checked"]), str(data["tier"]), data["models"], tuple(sources))

    def enqueued_tokens(self, model: str) -> int | None:
        """The enqueued-token limit of `runtime:model` (a dated snapshot uses its model's), None if not known."""
        entry = self.models.get(model)
        if entry is None:
            snapshot = _SNAPSHOT.match(model)
            entry = self.models.get(snapshot["model"]) if snapshot else None
        value = (entry or {}).get("enqueued_tokens")
        return int(value) if value is not None else None


def _normalized(models: Mapping[str, Any]) -> dict[str, Any]:
    """`{model: 123}` is short for `{model: {enqueued_tokens: 123}}`; null turns pacing off for the model."""
    return {m: v if isinstance(v, dict) else {"enqueued_tokens": v} for m, v in models.items()}


def _read_override(path: Path) -> dict[str, Any]:
    from .errors import SpecError
    from .tables import read_table

    data = read_table(path, "quota table", dict, "'models': {'runtime:model': {enqueued_tokens: N}} (N or null)")
    for model, entry in _normalized(data.get("models") or {}).items():
        if ":" not in str(model):
            raise SpecError.single(str(path), None, f"models.{model}", "name models as 'runtime:model', as in specs")
        value = entry.get("enqueued_tokens")
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            raise SpecError.single(str(path), None, f"models.{model}.enqueued_tokens",
                                   "give a positive whole number of tokens, or null for no pacing")
    return data


__all__ = ["QuotaTable"]
