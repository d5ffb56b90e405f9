"""generic: one prompt over each row of an input dataset; each output column is a string answer field."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from itertools import islice
from typing import Any

from ..caching import MIN_DOCUMENT_CHARS
from ..hashing import content_hash
from ..sources import as_text, iter_rows, json_safe
from ..spec import GenericPipelineDatasetConfig
from ..templates import parse_template
from .base import (
    BasePrompt,
    BuildContext,
    PromptRules,
    Row,
    Stage,
    items_rows,
    items_schema,
    string_field,
    system_message,
)


def default_prompt(spec: GenericPipelineDatasetConfig) -> str:
    inputs = "\n".join(f"{col}:\n{{{col}}}\n" for col in spec.input_columns)
    return (
        "Using the input below, produce {num_samples} output(s) in {language_name}, each with the fields: "
        + ", ".join(spec.output_columns)
        + ".\n\nInput:\n"
        + inputs
    )


def rules(spec: GenericPipelineDatasetConfig) -> PromptRules:
    columns = frozenset(spec.input_columns)
    return PromptRules(
        mandatory=frozenset({"num_samples", "language_name"}),
        allowed=frozenset({"num_samples", "language_name", "language_code"}) | columns,
        need_one_of=columns,
    )


def schema(spec: GenericPipelineDatasetConfig) -> dict[str, Any]:
    return items_schema({col: string_field(f"The '{col}' output.") for col in spec.output_columns})


def _build(spec: GenericPipelineDatasetConfig, ctx: BuildContext, inputs: Mapping[str, Iterable[Row]]) -> Iterator[BasePrompt]:
    templates = [parse_template(p) for p in (spec.prompts or [default_prompt(spec)])]
    system = system_message(schema(spec), spec.system_prompt)
    # several requests per input row (languages, templates, expansion): its longest input value is a prefix
    # they may share for the vendors' prompt caches (compiler/caching.py), when the prompts put it first
    repeats = len(spec.languages) * len(templates) > 1 or any(t.optional for t in templates)
    for row in islice(iter_rows(spec.source, ctx.base_dir), spec.sample_count):
        values = {col: as_text(row.get(col)) for col in spec.input_columns}
        row_key = content_hash(values, 16)
        forward = {col: json_safe(row.get(col)) for col in spec.forward_columns}
        longest = max(values.values(), key=len, default="")
        shared = ({"document": longest} if repeats and len(longest) >= MIN_DOCUMENT_CHARS
                  and "document" not in forward else {})  # a forwarded "document" column keeps its name
        for code, language in spec.languages.items():
            for t, template in enumerate(templates):
                filled = template.fill({
                    "num_samples": str(spec.num_samples_per_prompt),
                    "language_name": language,
                    "language_code": code,
                    **values,
                })
                yield BasePrompt(
                    system=system,
                    template=filled,
                    meta={"language": code, "template": t, "input_key": row_key, **forward, **shared},
                    key=f"{t}\x1f{row_key}\x1f{code}",
                    models=tuple(spec.models),
                )


# request meta that is about sending, not about the row (the final rows of generic are its stage's rows)
_NOT_ROW = ("document", "prefix_shared_by", "cache_ttl")


def _rows(spec: GenericPipelineDatasetConfig, request: Mapping[str, Any], answer: Mapping[str, Any]) -> list[Row]:
    rows = items_rows(request, answer, spec.output_columns)
    for row in rows:
        for key in _NOT_ROW:
            if key in row and key not in spec.forward_columns and key not in spec.output_columns:
                del row[key]
    return rows


def stages(spec: GenericPipelineDatasetConfig) -> list[Stage]:
    return [Stage("generate", "generate", (), schema(spec), _build, _rows, documents=True)]
