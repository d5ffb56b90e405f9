"""What every dataset type provides: its stages, their prompts, answer schemas and row fan-out."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..spec import DatasetConfigBase
from ..templates import Template, parse_template

Row = dict[str, Any]

JSON_SYSTEM_PROMPT = (
    "You generate high-quality synthetic data for training and evaluating language models. "
    "Answer with one JSON object that follows the required format exactly, and nothing else.\n"
    "Required format: "
)


@dataclass(frozen=True)
class BasePrompt:
    """One prompt template with its mandatory placeholders filled, before expansion and before models.

    `key` identifies it stably (template index, label, language, parent row...) so that random expansion
    draws the same subset whatever else changes in the spec.
    """

    system: str
    template: Template
    meta: Mapping[str, Any]
    key: str
    models: tuple[str, ...]
    expand: bool = True  # whether `expansion.placeholders` apply (first-stage prompts written by the user)
    history: tuple[Mapping[str, str], ...] = ()  # earlier chat turns, between system and the rendered prompt


@dataclass(frozen=True)
class BuildContext:
    """What stage builders may read besides the spec: where relative paths start."""

    base_dir: Path = field(default_factory=Path.cwd)


Builder = Callable[[Any, BuildContext, Mapping[str, Iterable[Row]]], Iterator[BasePrompt]]
RowMaker = Callable[[Any, Mapping[str, Any], Mapping[str, Any]], list[Row]]


@dataclass(frozen=True)
class Stage:
    """A stage of a dataset type.

    `inputs` names the stages whose rows feed this one (empty for the first stage, fed by the spec or its
    source). `build` turns those rows into base prompts; `rows` turns one validated answer into rows.
    """

    name: str
    role: str
    inputs: tuple[str, ...]
    schema: dict[str, Any]
    build: Builder
    rows: RowMaker


@dataclass(frozen=True)
class PromptRules:
    """Placeholders a custom first-stage prompt must contain and may contain."""

    mandatory: frozenset[str]
    allowed: frozenset[str]
    need_one_of: frozenset[str] = frozenset()  # at least one of these (generic: an input column)


def string_field(description: str, **extra: Any) -> dict[str, Any]:
    return {"type": "string", "description": description, **extra}


def object_schema(fields: Mapping[str, dict[str, Any]]) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": dict(fields),
        "required": list(fields),
        "additionalProperties": False,
    }


def items_schema(fields: Mapping[str, dict[str, Any]]) -> dict[str, Any]:
    """`{"items": [ {fields...}, ... ]}`: the answer of every stage that produces several rows."""
    return object_schema({"items": {"type": "array", "minItems": 1, "items": object_schema(fields)}})


def format_hint(schema: Mapping[str, Any]) -> str:
    """A short human description of the answer shape, for the system message."""

    def shape(s: Mapping[str, Any]) -> str:
        if s.get("type") == "object":
            inner = ", ".join(f'"{k}": {shape(v)}' for k, v in s["properties"].items())
            return "{" + inner + "}"
        if s.get("type") == "array":
            return "[" + shape(s["items"]) + ", ...]"
        if s.get("type") == "integer":
            lo, hi = s.get("minimum"), s.get("maximum")
            return f"<integer {lo}-{hi}>" if lo is not None and hi is not None else "<integer>"
        return "<text>"

    return shape(schema)


def system_message(schema: Mapping[str, Any], override: str | None = None) -> str:
    if override is not None:
        return override
    return JSON_SYSTEM_PROMPT + format_hint(schema)


def language_name(spec: DatasetConfigBase, code: str) -> str:
    """The language name for a code carried by a row (the code itself if the spec no longer lists it)."""
    return spec.languages.get(code) or code


def prompt_templates(spec: DatasetConfigBase, defaults: tuple[str, ...]) -> list[Template]:
    return [parse_template(p) for p in (spec.prompts or defaults)]


def items_rows(
    request: Mapping[str, Any], answer: Mapping[str, Any], fields: Iterable[str], extra: Mapping[str, Any] | None = None
) -> list[Row]:
    """Fan `answer["items"]` out into rows carrying the request's provenance."""
    names = list(fields)
    base = provenance(request, "")
    base.update(extra or {})
    prefix = f"{request['id']}-"
    out = []
    for i, item in enumerate(answer["items"]):
        row = base.copy()
        row["row_id"] = prefix + str(i)
        for k in names:
            row[k] = item[k]
        out.append(row)
    return out


def provenance(request: Mapping[str, Any], row_id: str) -> Row:
    meta = request.get("meta", {})
    return {"row_id": row_id, "request_id": request["id"], "stage": request["stage"], "model": request["model"], **meta}
