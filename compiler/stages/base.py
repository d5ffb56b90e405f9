"""What every dataset type provides: its stages, their prompts, answer schemas and row fan-out."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..hashing import stable_int
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
    # the answer schema of this prompt's requests when not its stage's (one of `Stage.variants`): grouped mcq
    # distractors have one slot per question they carry
    schema: Mapping[str, Any] | None = None


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
    `schema` is the answer schema of its requests (and what estimates count); `variants` lists any other
    schema a base prompt may carry instead (`BasePrompt.schema`), so the manifest's `schemas` has them all.
    `documents`: its requests may carry `meta.document`, a prompt-cache prefix the compiler counts
    (`meta.prefix_shared_by`, compiler/caching.py); stages without documents skip that work.
    """

    name: str
    role: str
    inputs: tuple[str, ...]
    schema: dict[str, Any]
    build: Builder
    rows: RowMaker
    variants: tuple[dict[str, Any], ...] = ()
    documents: bool = False


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


def slot_count(schema: Mapping[str, Any]) -> int:
    """Items in an answer whose every property is an object (one slot per item, `question_1`..`question_K`:
    grouped mcq distractors); 0 for any other schema."""
    properties = schema.get("properties") or {}
    return len(properties) if properties and all(s.get("type") == "object" for s in properties.values()) else 0


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


def parents_of(meta: Mapping[str, Any]) -> list[str]:
    """The input row ids a later-stage request was built from: `meta.parents` (a request answering several
    input rows, as grouped mcq distractors), else `[meta.parent]`; [] for a first-stage request."""
    if "parents" in meta:
        return list(meta["parents"])
    return [meta["parent"]] if "parent" in meta else []


def provenance(request: Mapping[str, Any], row_id: str) -> Row:
    meta = request.get("meta", {})
    return {"row_id": row_id, "request_id": request["id"], "stage": request["stage"], "model": request["model"], **meta}


# -- later stages -------------------------------------------------------------------------------------------


def pick_model(spec: DatasetConfigBase, role: str, item: str) -> tuple[str, ...]:
    """One model of `role` for an item of a later stage, drawn by a hash of the item's id.

    Two models in a role split the items between them instead of doubling the cost; the same item always
    gets the same model, whatever order the rows arrive in.
    """
    models = spec.models_for(role)
    return (models[stable_int(spec.expansion.seed, "model", role, item) % len(models)],)


@dataclass(frozen=True)
class StagePrompt:
    """A later-stage prompt the spec may replace with its own text (spec key `field`).

    `rules` are the placeholders the custom text must and may contain: those datafast fills in that stage.
    `alternative`, when set, is a second form of the prompt (mcq: all questions of a document in one request,
    `{questions}`), chosen when the custom text uses one of its mandatory placeholders.
    """

    field: str
    default: Template
    rules: PromptRules
    alternative: PromptRules | None = None

    def template(self, spec: DatasetConfigBase) -> Template:
        custom = getattr(spec, self.field, None)
        return self.default if custom is None else parse_template(custom)

    def rules_for(self, template: Template) -> PromptRules:
        """The rules of the form `template` is written in."""
        if self.alternative is not None and template.mandatory & self.alternative.mandatory:
            return self.alternative
        return self.rules


# -- final rows ---------------------------------------------------------------------------------------------


@dataclass
class StageOutcomes:
    """What collect knows of one stage, for the final assembly of a multi-stage type.

    `rows` are the validated rows of the stage (each later-stage row carries `parent`, the row id of the
    input row its request was built from). `failed` maps the parent row id of each request that produced no
    rows to the reason ("truncated: ...", "schema violation at ...", ...); first-stage requests have no
    parent and are not listed. `complete` is false while the stage is not compiled or has requests pending
    (not answered yet, in flight, or to be retried), so a missing row there means "pending", not "broken".
    """

    rows: list[Row] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    complete: bool = False


@dataclass
class Assembly:
    """The final rows of a dataset type, and the items that did not make it.

    An item is one unit of the final dataset (a question for preference and mcq, a conversation, a row of a
    single-stage type). `items == len(rows) + len(rejects) + pending`, always. Each reject is
    `{"item": <root row id>, "stage": <stage where the chain broke>, "reason": <why>}`.
    """

    rows: list[Row] = field(default_factory=list)
    rejects: list[dict[str, Any]] = field(default_factory=list)
    pending: int = 0

    @property
    def items(self) -> int:
        return len(self.rows) + len(self.rejects) + self.pending


Assembler = Callable[[Any, Mapping[str, StageOutcomes]], Assembly]


def single_stage_assembly(spec: Any, outcomes: Mapping[str, StageOutcomes]) -> Assembly:
    """Single-stage types: the final rows are the rows of their one stage, unchanged."""
    (only,) = outcomes.values()
    return Assembly(rows=list(only.rows))


@dataclass(frozen=True)
class Broken:
    """Where and why an item's chain broke."""

    stage: str
    reason: str


def row_order(row_id: str) -> tuple[str, int]:
    """Sort key of a row id `<request id>-<i>`: by request, then in answer order (`-2` before `-10`)."""
    head, _, tail = row_id.rpartition("-")
    return (head, int(tail)) if tail.isdigit() else (row_id, -1)


def by_parent(rows: Iterable[Row]) -> dict[str, Row]:
    """Rows keyed by the row id of their input row; if several share a parent, the smallest row id wins."""
    out: dict[str, Row] = {}
    for row in rows:
        parent = row["parent"]
        if parent not in out or row_order(row["row_id"]) < row_order(out[parent]["row_id"]):
            out[parent] = row
    return out


def next_link(stage: str, outcome: StageOutcomes, index: Mapping[str, Row], parent: str,
              label: str | None = None) -> Row | Broken | None:
    """The row of `stage` built from input row `parent`: Broken if its request failed, or if the stage is
    complete without it; None while the stage is pending. `label` names the link in reasons (default: stage).
    """
    row = index.get(parent)
    if row is not None:
        return row
    label = label or stage
    reason = outcome.failed.get(parent)
    if reason is not None:
        return Broken(stage, f"{label}: {reason}")
    if outcome.complete:
        return Broken(stage, f"no {label} answer (the stage completed without one)")
    return None


def first_stage_extras(row: Row) -> Row:
    """Expansion provenance of a first-stage row (template index, placeholder values), when it has them."""
    return {k: row[k] for k in ("template", "placeholders") if k in row}


Link = Row | Broken | None  # a row, a broken chain, or pending


def resolved(links: Sequence[Link]) -> list[Row] | Broken | None:
    """The rows of all links if each has one; else the first broken link; else None (pending).

    A chain known to be broken is a reject even while another of its links is still pending.
    """
    rows: list[Row] = []
    pending = False
    for link in links:
        if isinstance(link, Broken):
            return link
        if link is None:
            pending = True
        else:
            rows.append(link)
    return None if pending else rows


def assembly_of(items: Iterable[tuple[str, Link]]) -> Assembly:
    """Sort each item's outcome (its root row id and final row, Broken or None) into an Assembly."""
    out = Assembly()
    for item, result in items:
        if result is None:
            out.pending += 1
        elif isinstance(result, Broken):
            out.rejects.append({"item": item, "stage": result.stage, "reason": result.reason})
        else:
            out.rows.append(result)
    return out
