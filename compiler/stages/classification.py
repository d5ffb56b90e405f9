"""classification: labelled texts, one stage."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from ..spec import ClassificationDatasetConfig
from .base import (
    BasePrompt,
    BuildContext,
    PromptRules,
    Row,
    Stage,
    items_rows,
    items_schema,
    prompt_templates,
    string_field,
    system_message,
)

DEFAULT_PROMPTS = (
    "Write {num_samples} diverse, realistic texts in {language_name} that a text classifier should assign "
    "to the class '{label_name}'.\n"
    "Class description: {label_description}\n"
    "All classes: {labels_listing}.\n"
    "Each text must clearly belong to '{label_name}' and to no other class. Vary length, style, vocabulary "
    "and point of view; do not number the texts and do not mention the class name.",
)

RULES = PromptRules(
    mandatory=frozenset({"num_samples", "language_name", "label_name", "label_description"}),
    allowed=frozenset({"num_samples", "language_name", "language_code", "label_name", "label_description",
                       "labels_listing"}),
)

SCHEMA = items_schema({"text": string_field("One generated text.")})


def _build(spec: ClassificationDatasetConfig, ctx: BuildContext, inputs: Mapping[str, Iterable[Row]]) -> Iterator[BasePrompt]:
    templates = prompt_templates(spec, DEFAULT_PROMPTS)
    listing = ", ".join(f"'{c.name}'" for c in spec.classes)
    system = system_message(SCHEMA, spec.system_prompt)
    for cls in spec.classes:
        for code, language in spec.languages.items():
            for t, template in enumerate(templates):
                filled = template.fill({
                    "num_samples": str(spec.num_samples_per_prompt),
                    "language_name": language,
                    "language_code": code,
                    "label_name": cls.name,
                    "label_description": cls.description,
                    "labels_listing": listing,
                })
                yield BasePrompt(
                    system=system,
                    template=filled,
                    meta={"label": cls.name, "language": code, "template": t},
                    key=f"{t}\x1f{cls.name}\x1f{code}",
                    models=tuple(spec.models),
                )


def _rows(spec: Any, request: Mapping[str, Any], answer: Mapping[str, Any]) -> list[Row]:
    return items_rows(request, answer, ["text"])


def stages(spec: ClassificationDatasetConfig) -> list[Stage]:
    return [Stage("generate", "generate", (), SCHEMA, _build, _rows)]
