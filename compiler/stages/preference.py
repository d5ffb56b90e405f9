"""preference: questions from documents -> a chosen and a rejected answer (different models) -> optional judge."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from ..hashing import content_hash
from ..sources import as_text, iter_rows
from ..spec import PreferenceDatasetConfig
from ..templates import parse_template
from .base import (
    Assembly,
    BasePrompt,
    Broken,
    BuildContext,
    PromptRules,
    Row,
    Stage,
    StageOutcomes,
    StagePrompt,
    assembly_of,
    by_parent,
    first_stage_extras,
    items_rows,
    items_schema,
    language_name,
    next_link,
    object_schema,
    pick_model,
    prompt_templates,
    provenance,
    resolved,
    row_order,
    string_field,
    system_message,
)

# What repeats comes first (compiler/caching.py): the document before anything per language or per item, so
# the requests of one document share a cacheable prefix whatever their language.
DEFAULT_PROMPTS = (
    "Document:\n{document}\n\nBased on the document above, write {num_samples} diverse questions in "
    "{language_name} that a user could ask an AI assistant. Each must be self-contained (understandable "
    "without the document) and answerable with the information in it.",
)

_ANSWER_RULES = PromptRules(
    mandatory=frozenset({"question"}),
    allowed=frozenset({"question", "document", "language_name", "language_code"}),
)
CHOSEN_PROMPT = StagePrompt("chosen_response_generation_prompt", parse_template(
    "Reference document:\n{document}\n\nAnswer the user's question below in {language_name} as well as you "
    "can: accurate, complete, well organised and genuinely helpful. Use the reference document, but do not "
    "mention it.\n\nQuestion: {question}"
), _ANSWER_RULES)
REJECTED_PROMPT = StagePrompt("rejected_response_generation_prompt", parse_template(
    "Answer the following question in {language_name}.\n\nQuestion: {question}"
), _ANSWER_RULES)
JUDGE_PROMPT = StagePrompt("judge_prompt", parse_template(
    "Rate how well the response answers the question, from 1 (useless or wrong) to 10 (accurate, complete "
    "and helpful), judging accuracy against the reference document. Explain briefly, then give the score."
    "\n\nReference document:\n{document}\n\nQuestion: {question}\n\nResponse:\n{response}"
), PromptRules(
    mandatory=frozenset({"question", "response"}),
    allowed=frozenset({"question", "response", "document", "language_name", "language_code"}),
))
STAGE_PROMPTS = (CHOSEN_PROMPT, REJECTED_PROMPT, JUDGE_PROMPT)

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


def _answer_builder(role: str, prompt: StagePrompt) -> Any:
    def build(spec: PreferenceDatasetConfig, ctx: BuildContext, inputs: Mapping[str, Iterable[Row]]) -> Iterator[BasePrompt]:
        system = system_message(RESPONSE_SCHEMA)
        template = prompt.template(spec)
        for row in inputs["questions"]:
            filled = template.fill({
                "language_name": language_name(spec, row["language"]),
                "language_code": row["language"],
                "document": row["document"],
                "question": row["question"],
            })
            meta = {"language": row["language"], "document": row["document"], "question": row["question"],
                    "parent": row["row_id"]}
            yield BasePrompt(system, filled, meta, row["row_id"], pick_model(spec, role, row["row_id"]),
                             expand=False)

    return build


def _build_judge(spec: PreferenceDatasetConfig, ctx: BuildContext, inputs: Mapping[str, Iterable[Row]]) -> Iterator[BasePrompt]:
    system = system_message(JUDGE_SCHEMA)
    template = JUDGE_PROMPT.template(spec)
    answers = {stage: list(inputs[stage]) for stage in ("chosen", "rejected")}
    # a question missing either answer can never become a pair: judging the other one would be money spent on
    # nothing (its chain is already a reject naming the stage that failed)
    paired = {r["parent"] for r in answers["chosen"]} & {r["parent"] for r in answers["rejected"]}
    for stage in ("chosen", "rejected"):
        for row in answers[stage]:
            if row["parent"] not in paired:
                continue
            filled = template.fill({"document": row["document"], "question": row["question"],
                                    "response": row["response"], "language_code": row["language"],
                                    "language_name": language_name(spec, row["language"])})
            meta = {"language": row["language"], "question": row["question"], "judged": stage,
                    "parent": row["row_id"], "document": row["document"]}  # document: its prompt-cache prefix
            # one judge per pair (drawn by the question's row id): both answers are scored on the same scale
            yield BasePrompt(system, filled, meta, row["row_id"], pick_model(spec, "judge", row["parent"]),
                             expand=False)


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
        Stage("questions", "questions", (), QUESTIONS_SCHEMA, _build_questions, _question_rows, documents=True),
        Stage("chosen", "chosen", ("questions",), RESPONSE_SCHEMA, _answer_builder("chosen", CHOSEN_PROMPT),
              _single_rows(("response",)), documents=True),
        Stage("rejected", "rejected", ("questions",), RESPONSE_SCHEMA, _answer_builder("rejected", REJECTED_PROMPT),
              _single_rows(("response",)), documents=True),
    ]
    if spec.llm_as_judge:
        out.append(Stage("judge", "judge", ("chosen", "rejected"), JUDGE_SCHEMA, _build_judge,
                         _single_rows(("assessment", "score")), documents=True))
    return out


def assemble(spec: PreferenceDatasetConfig, outcomes: Mapping[str, StageOutcomes]) -> Assembly:
    """Final preference rows: one item per question, with its chosen and rejected answers (and judge scores).

    With `llm_as_judge`, a pair whose rejected answer scored strictly higher is swapped, as the original
    datafast does, and `swapped: true` records it (`models` and `request_ids` keep naming stages).
    """
    judged = "judge" in outcomes
    index = {name: by_parent(outcome.rows) for name, outcome in outcomes.items() if name != "questions"}
    questions = sorted(outcomes["questions"].rows, key=lambda r: row_order(r["row_id"]))
    return assembly_of((q["row_id"], _pair(q, outcomes, index, judged)) for q in questions)


def _pair(q: Row, outcomes: Mapping[str, StageOutcomes], index: Mapping[str, Mapping[str, Row]],
          judged: bool) -> Row | Broken | None:
    answers = resolved([next_link(stage, outcomes[stage], index[stage], q["row_id"]) for stage in ("chosen", "rejected")])
    if not isinstance(answers, list):
        return answers
    chosen, rejected = answers
    judgements: list[Row] = []
    if judged:
        scored = resolved([next_link("judge", outcomes["judge"], index["judge"], answer["row_id"], f"judge ({role} answer)")
                           for role, answer in (("chosen", chosen), ("rejected", rejected))])
        if not isinstance(scored, list):
            return scored
        judgements = scored
    row: Row = {
        "row_id": content_hash([q["row_id"], chosen["row_id"], rejected["row_id"], *(j["row_id"] for j in judgements)]),
        "input_document": q["document"],
        "question": q["question"],
        "chosen_response": chosen["response"],
        "rejected_response": rejected["response"],
        "chosen_model_id": chosen["model"],
        "rejected_model_id": rejected["model"],
        "language": q["language"],
        "models": {"questions": q["model"], "chosen": chosen["model"], "rejected": rejected["model"]},
        "request_ids": {"questions": q["request_id"], "chosen": chosen["request_id"],
                        "rejected": rejected["request_id"]},
        **first_stage_extras(q),
    }
    if judgements:
        _add_judgement(row, *judgements)
    return row


def _add_judgement(row: Row, on_chosen: Row, on_rejected: Row) -> None:
    row.update({
        "chosen_response_score": on_chosen["score"],
        "rejected_response_score": on_rejected["score"],
        "chosen_response_assessment": on_chosen["assessment"],
        "rejected_response_assessment": on_rejected["assessment"],
        "judge_model_id": on_chosen["model"],
        "swapped": on_rejected["score"] > on_chosen["score"],
    })
    row["models"]["judge"] = on_chosen["model"]
    row["request_ids"].update({"judge_chosen": on_chosen["request_id"], "judge_rejected": on_rejected["request_id"]})
    if row["swapped"]:
        for a, b in (("chosen_response", "rejected_response"), ("chosen_model_id", "rejected_model_id"),
                     ("chosen_response_score", "rejected_response_score"),
                     ("chosen_response_assessment", "rejected_response_assessment")):
            row[a], row[b] = row[b], row[a]
