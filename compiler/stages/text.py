"""text: unlabelled documents per document type x topic, one stage."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from ..spec import RawDatasetConfig
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
    "Write {num_samples} distinct texts of the type '{document_type}' about {topic}, in {language_name}.\n"
    "Each must read like a real {document_type}: natural structure, concrete details, its own angle, and "
    "varied length and style. Do not number them or add commentary.",
)

RULES = PromptRules(
    mandatory=frozenset({"num_samples", "language_name", "document_type", "topic"}),
    allowed=frozenset({"num_samples", "language_name", "language_code", "document_type", "topic"}),
)

SCHEMA = items_schema({"text": string_field("One generated document.")})


def _build(spec: RawDatasetConfig, ctx: BuildContext, inputs: Mapping[str, Iterable[Row]]) -> Iterator[BasePrompt]:
    templates = prompt_templates(spec, DEFAULT_PROMPTS)
    system = system_message(SCHEMA, spec.system_prompt)
    for document_type in spec.document_types:
        for topic in spec.topics:
            for code, language in spec.languages.items():
                for t, template in enumerate(templates):
                    filled = template.fill({
                        "num_samples": str(spec.num_samples_per_prompt),
                        "language_name": language,
                        "language_code": code,
                        "document_type": document_type,
                        "topic": topic,
                    })
                    yield BasePrompt(
                        system=system,
                        template=filled,
                        meta={"document_type": document_type, "topic": topic, "language": code, "template": t},
                        key=f"{t}\x1f{document_type}\x1f{topic}\x1f{code}",
                        models=tuple(spec.models),
                    )


def _rows(spec: Any, request: Mapping[str, Any], answer: Mapping[str, Any]) -> list[Row]:
    return items_rows(request, answer, ["text"])


def stages(spec: RawDatasetConfig) -> list[Stage]:
    return [Stage("generate", "generate", (), SCHEMA, _build, _rows)]
