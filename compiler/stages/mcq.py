"""mcq: multiple-choice questions from documents. questions (+ correct answer) -> distractors."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from ..hashing import content_hash
from ..sources import as_text, iter_rows
from ..spec import MCQDatasetConfig
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
    row_order,
    string_field,
    system_message,
)

DEFAULT_PROMPTS = (
    "Read the document below and write {num_samples} multiple-choice questions in {language_name} that test "
    "real understanding of it. Each question must be answerable from the document alone and come with its "
    "single correct answer, stated concisely.\n\nDocument:\n{document}",
)

DISTRACTOR_PROMPT = StagePrompt("distractor_prompt", parse_template(
    "Write three incorrect but plausible answers, in {language_name}, to this multiple-choice question. "
    "They must be clearly wrong for someone who read the document, similar in length and style to the "
    "correct answer, and different from each other.\n\nDocument:\n{document}\n\nQuestion: {question}\n"
    "Correct answer: {correct_answer}"
), PromptRules(
    mandatory=frozenset({"question", "correct_answer"}),
    allowed=frozenset({"question", "correct_answer", "document", "context", "language_name", "language_code"}),
))
STAGE_PROMPTS = (DISTRACTOR_PROMPT,)

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
    template = DISTRACTOR_PROMPT.template(spec)
    for row in inputs["questions"]:
        filled = template.fill({
            "language_name": language_name(spec, row["language"]),
            "language_code": row["language"],
            "document": row["document"],
            "context": row.get("context", ""),
            "question": row["question"],
            "correct_answer": row["correct_answer"],
        })
        meta = {k: row[k] for k in ("language", "document", "question", "correct_answer")}
        meta["parent"] = row["row_id"]
        if "context" in row:
            meta["context"] = row["context"]
        yield BasePrompt(system, filled, meta, row["row_id"], pick_model(spec, "distractors", row["row_id"]),
                         expand=False)


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


def assemble(spec: MCQDatasetConfig, outcomes: Mapping[str, StageOutcomes]) -> Assembly:
    """Final mcq rows: one item per question, with its correct answer and three valid distractors."""
    index = by_parent(outcomes["distractors"].rows)
    questions = sorted(outcomes["questions"].rows, key=lambda r: row_order(r["row_id"]))
    return assembly_of((q["row_id"], _mcq(spec, q, outcomes["distractors"], index)) for q in questions)


def _mcq(spec: MCQDatasetConfig, q: Row, outcome: StageOutcomes, index: Mapping[str, Row]) -> Row | Broken | None:
    wrong = next_link("distractors", outcome, index, q["row_id"])
    if not isinstance(wrong, dict):
        return wrong
    problem = invalid_distractors(q["correct_answer"], [wrong[f"incorrect_answer_{i}"] for i in (1, 2, 3)])
    if problem:
        return Broken("distractors", f"fewer than three valid distractors: {problem}")
    row: Row = {
        "row_id": content_hash([q["row_id"], wrong["row_id"]]),
        "source_document": q["document"],
        "question": q["question"],
        "correct_answer": q["correct_answer"],
        **{f"incorrect_answer_{i}": wrong[f"incorrect_answer_{i}"] for i in (1, 2, 3)},
        "language": q["language"],
        "model_id": q["model"],
        "distractor_model_id": wrong["model"],
        "models": {"questions": q["model"], "distractors": wrong["model"]},
        "request_ids": {"questions": q["request_id"], "distractors": wrong["request_id"]},
        **first_stage_extras(q),
    }
    if spec.context_column:
        row["context"] = q.get("context", "")
    return row


def _same(text: str) -> str:
    return " ".join(text.split()).casefold()


def invalid_distractors(correct: str, distractors: list[str]) -> str:
    """Why some distractors are unusable ("" if none is): empty, the correct answer, or a repeat.

    Compared case- and whitespace-insensitively: "Paris " and "paris" are the same answer to a reader.
    """
    problems = []
    seen: dict[str, int] = {}
    for i, text in enumerate(distractors, 1):
        key = _same(text)
        if not key:
            problems.append(f"incorrect_answer_{i} is empty")
        elif key == _same(correct):
            problems.append(f"incorrect_answer_{i} is the correct answer ({text!r})")
        elif key in seen:
            problems.append(f"incorrect_answer_{i} repeats incorrect_answer_{seen[key]} ({text!r})")
        else:
            seen[key] = i
    return "; ".join(problems)
