"""mcq: multiple-choice questions from documents. questions (+ correct answer) -> distractors."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from ..sources import as_text, iter_rows
from ..spec import MCQDatasetConfig
from ..templates import parse_template
from .base import (
    BasePrompt,
    BuildContext,
    PromptRules,
    Row,
    Stage,
    items_rows,
    items_schema,
    language_name,
    object_schema,
    prompt_templates,
    provenance,
    string_field,
    system_message,
)

DEFAULT_PROMPTS = (
    "Read the document below and write {num_samples} multiple-choice questions in {language_name} that test "
    "real understanding of it. Each question must be answerable from the document alone and come with its "
    "single correct answer, stated concisely.\n\nDocument:\n{document}",
)

DISTRACTOR_PROMPT = parse_template(
    "Write three incorrect but plausible answers, in {language_name}, to this multiple-choice question. "
    "They must be clearly wrong for someone who read the document, similar in length and style to the "
    "correct answer, and different from each other.\n\nDocument:\n{document}\n\nQuestion: {question}\n"
    "Correct answer: {correct_answer}"
)

RULES = PromptRules(
    mandatory=frozenset({"num_samples", "language_name", "document"}),
    allowed=frozenset({"num_samples", "language_name", "language_code", "document", "context"}),
)

QUESTIONS_SCHEMA = items_schema({
    "question": string_field("The question."),
    "correct_answer": string_field("Its single correct answer."),
})
DISTRACTORS_SCHEMA = object_schema({
    "incorrect_answers": {"type": "array", "minItems": 3, "maxItems": 3,
                          "items": string_field("A plausible but incorrect answer.")},
})


def documents(spec: MCQDatasetConfig, ctx: BuildContext) -> Iterator[dict[str, Any]]:
    """Source rows whose text length is within bounds, at most `sample_count`, in source order."""
    kept = 0
    for index, row in enumerate(iter_rows(spec.source, ctx.base_dir)):
        if spec.sample_count is not None and kept >= spec.sample_count:
            return
        text = as_text(row.get(spec.text_column))
        if spec.min_document_length <= len(text) <= spec.max_document_length:
            kept += 1
            context = as_text(row.get(spec.context_column)) if spec.context_column else ""
            yield {"index": index, "document": text, "context": context}


def _build_questions(spec: MCQDatasetConfig, ctx: BuildContext, inputs: Mapping[str, Iterable[Row]]) -> Iterator[BasePrompt]:
    templates = prompt_templates(spec, DEFAULT_PROMPTS)
    system = system_message(QUESTIONS_SCHEMA, spec.system_prompt)
    models = tuple(spec.models_for("questions"))
    for doc in documents(spec, ctx):
        for code, language in spec.languages.items():
            for t, template in enumerate(templates):
                filled = template.fill({
                    "num_samples": str(spec.num_samples_per_prompt),
                    "language_name": language,
                    "language_code": code,
                    "document": doc["document"],
                    "context": doc["context"],
                })
                meta = {"language": code, "template": t, "document": doc["document"]}
                if spec.context_column:
                    meta["context"] = doc["context"]
                yield BasePrompt(system, filled, meta, f"{t}\x1f{doc['index']}\x1f{code}", models)


def _build_distractors(spec: MCQDatasetConfig, ctx: BuildContext, inputs: Mapping[str, Iterable[Row]]) -> Iterator[BasePrompt]:
    system = system_message(DISTRACTORS_SCHEMA)
    models = tuple(spec.models_for("distractors"))
    for row in inputs["questions"]:
        filled = DISTRACTOR_PROMPT.fill({
            "language_name": language_name(spec, row["language"]),
            "document": row["document"],
            "question": row["question"],
            "correct_answer": row["correct_answer"],
        })
        meta = {k: row[k] for k in ("language", "document", "question", "correct_answer")}
        meta["parent"] = row["row_id"]
        if "context" in row:
            meta["context"] = row["context"]
        yield BasePrompt(system, filled, meta, row["row_id"], models, expand=False)


def _question_rows(spec: Any, request: Mapping[str, Any], answer: Mapping[str, Any]) -> list[Row]:
    return items_rows(request, answer, ["question", "correct_answer"])


def _distractor_rows(spec: Any, request: Mapping[str, Any], answer: Mapping[str, Any]) -> list[Row]:
    row = provenance(request, f"{request['id']}-0")
    for i, wrong in enumerate(answer["incorrect_answers"], 1):
        row[f"incorrect_answer_{i}"] = wrong
    return [row]


def stages(spec: MCQDatasetConfig) -> list[Stage]:
    return [
        Stage("questions", "questions", (), QUESTIONS_SCHEMA, _build_questions, _question_rows),
        Stage("distractors", "distractors", ("questions",), DISTRACTORS_SCHEMA, _build_distractors, _distractor_rows),
    ]
