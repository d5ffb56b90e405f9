"""What each model accepts, from a dated table kept as data (`data/capabilities.json`), checked at compile time.

Facts per `runtime:model`: generation parameters the model refuses (a request carrying one comes back 400),
parameters it refuses together, its maximum output, its context window, whether it reasons (`reasoning`:
`always` when it reasons unless told otherwise, `optional` when only if asked, `none` when it cannot). Renderers use them to leave out what
a model would refuse, clamp `max_tokens`, and count prompts that cannot fit (see `vendors/base.py`); the
manifest keeps the spec's `params` unchanged, the job lines carry what is sent.

Entries match with shell-style patterns (`openai:o[0-9]*`); for each fact the first matching entry that states
it wins. A model no entry matches has no facts: nothing is checked for it.

Override: `DATAFAST_CAPABILITIES=FILE` (JSON or YAML, same format); its entries are checked before the
built-in ones, so one entry can change one fact of one model.
"""

from __future__ import annotations

import fnmatch
import json
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

ENV_VAR = "DATAFAST_CAPABILITIES"
SAMPLING = ("temperature", "top_p", "seed")  # the generation parameters a model may refuse (max_tokens is required)
_LIMITS = ("context_window", "max_input_tokens", "max_output_tokens")
_FACTS = ("refuses", "mutually_exclusive", *_LIMITS, "reasoning")
REASONING_MODES = ("always", "optional", "none")
_KNOWN_KEYS = frozenset({"match", *_FACTS, "status", "checked", "sources", "note"})
_STATUSES = frozenset({"documented", "reported", "assumed"})


@dataclass(frozen=True)
class ModelCapabilities:
    """The facts known about one model; None (or empty) where the table says nothing.

    `context_window` bounds prompt + output (OpenAI, Anthropic); `max_input_tokens` bounds the prompt alone
    (Gemini states input and output limits separately).
    """

    refuses: tuple[str, ...] = ()
    mutually_exclusive: tuple[tuple[str, ...], ...] = ()
    max_output_tokens: int | None = None
    context_window: int | None = None
    max_input_tokens: int | None = None
    reasoning: str | None = None  # one of REASONING_MODES; None: the table does not say


@dataclass(frozen=True)
class CapabilityTable:
    """The capability entries, override entries first, and where they came from."""

    checked: str
    entries: tuple[Mapping[str, Any], ...]
    sources: tuple[str, ...] = ()

    @classmethod
    def load(cls, override: str | Path | None = None) -> CapabilityTable:
        """The built-in table, with the entries of `override` (JSON or YAML, same format) checked first.

        Example:
            >>> CapabilityTable.load().lookup("openai:o3-mini").refuses
            ('temperature', 'top_p')
        """
        text = resources.files("datafast.compiler").joinpath("data/capabilities.json").read_text("utf-8")
        data = json.loads(text)
        entries = list(data["models"])
        checked = data["checked"]
        sources = ["built-in table"]
        if override is not None:
            extra = _read_override(Path(override))
            entries = list(extra.get("models", [])) + entries
            checked = str(extra.get("checked", checked))
            sources.append(str(override))
        return cls(checked, tuple(entries), tuple(sources))

    @classmethod
    def from_environment(cls) -> CapabilityTable:
        """The table for a compile: the built-in one, overridden by the file named in `DATAFAST_CAPABILITIES`."""
        return cls.load(os.environ.get(ENV_VAR) or None)

    def lookup(self, model: str) -> ModelCapabilities | None:
        """The facts about `runtime:model`, or None when no entry matches it."""
        found: dict[str, Any] = {}
        matched = False
        for entry in self.entries:
            patterns = entry["match"]
            if isinstance(patterns, str):
                patterns = [patterns]
            if not any(fnmatch.fnmatchcase(model, p) for p in patterns):
                continue
            matched = True
            for fact in _FACTS:
                if fact in entry and fact not in found:
                    found[fact] = entry[fact]
        if not matched:
            return None
        return ModelCapabilities(
            refuses=tuple(found.get("refuses", ())),
            mutually_exclusive=tuple(tuple(group) for group in found.get("mutually_exclusive", ())),
            max_output_tokens=found.get("max_output_tokens"),
            context_window=found.get("context_window"),
            max_input_tokens=found.get("max_input_tokens"),
            reasoning=found.get("reasoning"),
        )

    def names(self, runtime: str) -> list[str]:
        """The model names of `runtime` the table spells out: its patterns without a wildcard, or ending in
        one (`openai:gpt-4.1*` -> `gpt-4.1`), for did-you-mean suggestions."""
        out: dict[str, None] = {}
        for entry in self.entries:
            patterns = entry["match"]
            for pattern in [patterns] if isinstance(patterns, str) else patterns:
                prefix, _, name = pattern.partition(":")
                if prefix != runtime:
                    continue
                name = name[:-1].rstrip("-.") if name.endswith("*") else name
                if name and not any(c in name for c in "*?["):
                    out[name] = None
        return list(out)


def _read_override(path: Path) -> dict[str, Any]:
    from .errors import SpecError
    from .tables import read_table

    def fail(field: str, message: str) -> Exception:
        return SpecError.single(str(path), None, field, message)

    data = read_table(path, f"capability table ({ENV_VAR})", list,
                      "'models': [{match: 'runtime:model-pattern', refuses: [temperature], max_output_tokens: 8192, "
                      "...}]")
    for i, entry in enumerate(data.get("models", [])):
        _check_entry(entry, f"models.{i}", fail)
    return data


def _check_entry(entry: object, where: str, fail: Callable[[str, str], Exception]) -> None:
    if not isinstance(entry, dict):
        raise fail(where, "each entry is a mapping with 'match' and the facts it states")
    unknown = sorted(set(entry) - _KNOWN_KEYS)
    if unknown:
        raise fail(f"{where}.{unknown[0]}", f"unknown key; keys: {', '.join(sorted(_KNOWN_KEYS))}")
    patterns = entry.get("match")
    if isinstance(patterns, str):
        patterns = [patterns]
    if not (isinstance(patterns, list) and patterns and all(isinstance(p, str) and ":" in p for p in patterns)):
        raise fail(f"{where}.match", "give 'runtime:model' patterns, e.g. 'openai:o[0-9]*' or ['openai:gpt-5']")
    if not _parameter_list(entry.get("refuses", [])):
        raise fail(f"{where}.refuses", f"give a list of parameters among {', '.join(SAMPLING)}")
    groups = entry.get("mutually_exclusive", [])
    if not (isinstance(groups, list) and all(_parameter_list(g) and len(g) > 1 for g in groups)):
        raise fail(f"{where}.mutually_exclusive", "give a list of parameter lists, e.g. [[temperature, top_p]]")
    for limit in _LIMITS:
        value = entry.get(limit)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            raise fail(f"{where}.{limit}", "give a positive number of tokens")
    if entry.get("reasoning", "none") not in REASONING_MODES:
        raise fail(f"{where}.reasoning", f"one of {', '.join(REASONING_MODES)}")
    if entry.get("status", "assumed") not in _STATUSES:
        raise fail(f"{where}.status", f"one of {', '.join(sorted(_STATUSES))}")


def _parameter_list(value: object) -> bool:
    return isinstance(value, Sequence) and not isinstance(value, str) and all(p in SAMPLING for p in value)
