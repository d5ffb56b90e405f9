"""preference: questions from documents -> a chosen and a rejected answer (different models) -> optional judge."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from ..sources import as_text, iter_rows
from ..spec import PreferenceDatasetConfig
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
    "Based on the document below, write {num_samples} diverse questions in {language_name} that a user "
    "could ask an AI assistant. Each must be self-contained (understandable without the document) and "
    "answerable with the information in it.\n\nDocument:\n{document}",
)

CHOSEN_PROMPT = parse_template(
    "Answer the user's question in {language_name} as well as you can: accurate, complete, well organised "
    "and genuinely helpful. Use the reference document, but do not mention it.\n\nReference document:\n"
    "{document}\n\nQuestion: {question}"
)
REJECTED_PROMPT = parse_template("Answer the following question in {language_name}.\n\nQuestion: {question}")
JUDGE_PROMPT = parse_template(
    "Rate how well the response answers the question, from 1 (useless or wrong) to 10 (accurate, complete "
    "and helpful), judging accuracy against the reference document. Explain briefly, then give the score."
    "\n\nReference document:\n{document}\n\nQuestion: {question}\n\nResponse:\n{response}"
)

RULES = PromptRules(
    mandatory=frozenset({"num_samples", "language_name", "document"}),
    allowed=frozenset({"num_samples", "language_name", "language_code", "document"}),
)

QUESTIONS_SCHEMA = items_schema({"question": string_field("A question a user could ask.")})
RESPONSE_SCHEMA = object_schema({"response": string_field("The answer to the question.")})
JUDGE_SCHEMA = object_schema({
    "assessment": string_field("A short justification of the score."),
    "score": {"type": "integer", "minimum": 1, "maximum": 10, "description": "1 (worst) to 10 (best)."},
})


def documents(spec: PreferenceDatasetConfig, ctx: BuildContext) -> Iterator[str]:
    if spec.input_documents is not None:
        yield from spec.input_documents
        return
    assert spec.source is not None
    for row in iter_rows(spec.source, ctx.base_dir):
        yield as_text(row.get(spec.text_column))


def _build_questions(spec: PreferenceDatasetConfig, ctx: BuildContext, inputs: Mapping[str, Iterable[Row]]) -> Iterator[BasePrompt]:
    templates = prompt_templates(spec, DEFAULT_PROMPTS)
    system = system_message(QUESTIONS_SCHEMA, spec.system_prompt)
    models = tuple(spec.models_for("questions"))
    for index, document in enumerate(documents(spec, ctx)):
        for code, language in spec.languages.items():
            for t, template in enumerate(templates):
                filled = template.fill({
                    "num_samples": str(spec.num_samples_per_prompt),
                    "language_name": language,
                    "language_code": code,
                    "document": document,
                })
                meta = {"language": code, "template": t, "document": document}
                yield BasePrompt(system, filled, meta, f"{t}\x1f{index}\x1f{code}", models)


def _answer_builder(role: str, template: Any) -> Any:
    def build(spec: PreferenceDatasetConfig, ctx: BuildContext, inputs: Mapping[str, Iterable[Row]]) -> Iterator[BasePrompt]:
        system = system_message(RESPONSE_SCHEMA)
        models = tuple(spec.models_for(role))
        for row in inputs["questions"]:
            filled = template.fill({
                "language_name": language_name(spec, row["language"]),
                "document": row["document"],
                "question": row["question"],
            })
            meta = {"language": row["language"], "document": row["document"], "question": row["question"],
                    "parent": row["row_id"]}
            yield BasePrompt(system, filled, meta, row["row_id"], models, expand=False)

    return build


def _build_judge(spec: PreferenceDatasetConfig, ctx: BuildContext, inputs: Mapping[str, Iterable[Row]]) -> Iterator[BasePrompt]:
    system = system_message(JUDGE_SCHEMA)
    models = tuple(spec.models_for("judge"))
    for stage in ("chosen", "rejected"):
        for row in inputs[stage]:
            filled = JUDGE_PROMPT.fill({"document": row["document"], "question": row["question"],
                                       "response": row["response"]})
            meta = {"language": row["language"], "question": row["question"], "judged": stage,
                    "parent": row["row_id"]}
            yield BasePrompt(system, filled, meta, row["row_id"], models, expand=False)


def _question_rows(spec: Any, request: Mapping[str, Any], answer: Mapping[str, Any]) -> list[Row]:
    return items_rows(request, answer, ["question"])


def _single_rows(fields: tuple[str, ...]) -> Any:
    def rows(spec: Any, request: Mapping[str, Any], answer: Mapping[str, Any]) -> list[Row]:
        row = provenance(request, f"{request['id']}-0")
        row.update({k: answer[k] for k in fields})
        return [row]

    return rows


def stages(spec: PreferenceDatasetConfig) -> list[Stage]:
    out = [
        Stage("questions", "questions", (), QUESTIONS_SCHEMA, _build_questions, _question_rows),
        Stage("chosen", "chosen", ("questions",), RESPONSE_SCHEMA, _answer_builder("chosen", CHOSEN_PROMPT),
              _single_rows(("response",))),
        Stage("rejected", "rejected", ("questions",), RESPONSE_SCHEMA, _answer_builder("rejected", REJECTED_PROMPT),
              _single_rows(("response",))),
    ]
    if spec.llm_as_judge:
        out.append(Stage("judge", "judge", ("chosen", "rejected"), JUDGE_SCHEMA, _build_judge,
                         _single_rows(("assessment", "score"))))
    return out
