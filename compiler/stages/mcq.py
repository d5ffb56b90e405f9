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

# What repeats comes first (compiler/caching.py): the document, then the instructions and the per-item part,
# so requests of one document in several languages or templates share a cacheable prefix.
DEFAULT_PROMPTS = (
    "Document:\n{document}\n\nWrite {num_samples} multiple-choice questions in {language_name} that test real "
    "understanding of the document above. Each question must be answerable from the document alone and come "
    "with its single correct answer, stated concisely.",
)

MAX_QUESTIONS_PER_REQUEST = 10  # grouped distractor requests: slots per answer (schema size stays small)

# The built-in distractor prompt sends all the questions of one questions request (one document, language
# and template) in one request: the document is paid for once per document instead of once per question.
# A custom `distractor_prompt` chooses its form by its placeholders: {question}/{correct_answer} is one
# request per question (the original library's form), {questions} the grouped one.
DISTRACTOR_PROMPT = StagePrompt("distractor_prompt", parse_template(
    "Document:\n{document}\n\nThe multiple-choice questions below, in {language_name}, are about the document "
    "above; each comes with its correct answer. For each question, write three incorrect but plausible answers "
    "in {language_name}: clearly wrong for someone who read the document, similar in length and style to the "
    "correct answer, and different from each other.\n\n{questions}"
), PromptRules(
    mandatory=frozenset({"question", "correct_answer"}),
    allowed=frozenset({"question", "correct_answer", "document", "context", "language_name", "language_code"}),
), alternative=PromptRules(
    mandatory=frozenset({"questions"}),
    allowed=frozenset({"questions", "document", "context", "language_name", "language_code"}),
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
INCORRECT_ANSWERS = {f"incorrect_answer_{i}": string_field("A plausible but incorrect answer.") for i in (1, 2, 3)}
# one question: three named fields, not an array of three (a count some vendors' schema subsets cannot enforce)
DISTRACTORS_SCHEMA = object_schema(INCORRECT_ANSWERS)


def grouped(spec: MCQDatasetConfig) -> bool:
    """Whether the distractor stage sends several questions per request (built-in prompt, or {questions})."""
    return spec.distractor_prompt is None or "questions" in parse_template(spec.distractor_prompt).mandatory


def group_size(spec: MCQDatasetConfig) -> int:
    """Questions per grouped distractor request: the questions asked per document, at most 10."""
    return min(spec.num_samples_per_prompt, MAX_QUESTIONS_PER_REQUEST)


def slots_schema(questions: int) -> dict[str, Any]:
    """The answer to a grouped distractor request of `questions` questions: `question_1`..`question_N`, each
    with its three incorrect answers (every slot required: all vendors' structured outputs enforce it)."""
    return object_schema({f"question_{k}": object_schema(INCORRECT_ANSWERS) for k in range(1, questions + 1)})


def distractors_schema(spec: MCQDatasetConfig) -> dict[str, Any]:
    """One question's three distractors; grouped: the schema of a full request (`group_size` slots)."""
    return slots_schema(group_size(spec)) if grouped(spec) else DISTRACTORS_SCHEMA


def questions_block(questions: list[Row]) -> str:
    """The {questions} text: the questions numbered as their answer slots, each with its correct answer."""
    return "\n\n".join(f"Question {k}: {q['question']}\nCorrect answer: {q['correct_answer']}"
                         for k, q in enumerate(questions, 1))


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
    system = system_message(distractors_schema(spec))
    template = DISTRACTOR_PROMPT.template(spec)
    if not grouped(spec):
        for row in inputs["questions"]:
            filled = template.fill({**_common(spec, row), "question": row["question"],
                                    "correct_answer": row["correct_answer"]})
            one = {k: row[k] for k in ("language", "document", "question", "correct_answer")}
            one["parent"] = row["row_id"]
            if "context" in row:
                one["context"] = row["context"]
            yield BasePrompt(system, filled, one, row["row_id"], pick_model(spec, "distractors", row["row_id"]),
                             expand=False)
        return
    size = group_size(spec)
    for questions in _by_request(inputs["questions"]):
        for chunk in _balanced(questions, size):
            first = chunk[0]
            schema = slots_schema(len(chunk))  # exactly one slot per question: no answer for nothing
            filled = template.fill({**_common(spec, first), "questions": questions_block(chunk)})
            meta: dict[str, Any] = {"language": first["language"], "document": first["document"],
                                    "parents": [q["row_id"] for q in chunk],
                                    "questions": [{"question": q["question"], "correct_answer": q["correct_answer"]}
                                                  for q in chunk]}
            if "context" in first:
                meta["context"] = first["context"]
            yield BasePrompt(system_message(schema), filled, meta, first["row_id"],
                             pick_model(spec, "distractors", first["row_id"]), expand=False, schema=schema)


def _common(spec: MCQDatasetConfig, row: Row) -> dict[str, str]:
    return {"language_name": language_name(spec, row["language"]), "language_code": row["language"],
            "document": row["document"], "context": row.get("context", "")}


def _balanced(questions: list[Row], size: int) -> Iterator[list[Row]]:
    """`questions` in the fewest chunks of at most `size`, their sizes as equal as possible (12 by 10: 6 + 6,
    not 10 + 2): chunks of one size have one schema and can share the document's prompt-cache prefix."""
    count = -(-len(questions) // size)
    small, bigger = divmod(len(questions), count)
    start = 0
    for i in range(count):
        end = start + small + (1 if i < bigger else 0)
        yield questions[start:end]
        start = end


def _by_request(rows: Iterable[Row]) -> Iterator[list[Row]]:
    """Question rows grouped by the request that produced them (one document, language and template), in
    first-seen order, each group in answer order."""
    groups: dict[str, list[Row]] = {}
    for row in rows:
        groups.setdefault(row["request_id"], []).append(row)
    for group in groups.values():
        yield sorted(group, key=lambda r: row_order(r["row_id"]))


def _question_rows(spec: Any, request: Mapping[str, Any], answer: Mapping[str, Any]) -> list[Row]:
    return items_rows(request, answer, ["question", "correct_answer"])


def _distractor_rows(spec: Any, request: Mapping[str, Any], answer: Mapping[str, Any]) -> list[Row]:
    """One row per question of the request, with its `incorrect_answer_1..3` and its `parent` question row."""
    meta = request["meta"]
    if "parents" not in meta:
        return [{**provenance(request, f"{request['id']}-0"), **{k: answer[k] for k in INCORRECT_ANSWERS}}]
    base = {k: v for k, v in provenance(request, "").items() if k not in ("parents", "questions")}
    rows = []
    for k, (parent, question) in enumerate(zip(meta["parents"], meta["questions"], strict=True)):
        slot = answer[f"question_{k + 1}"]
        rows.append({**base, "row_id": f"{request['id']}-{k}", "parent": parent, **question,
                     **{name: slot[name] for name in INCORRECT_ANSWERS}})
    return rows


def stages(spec: MCQDatasetConfig) -> list[Stage]:
    return [
        Stage("questions", "questions", (), QUESTIONS_SCHEMA, _build_questions, _question_rows, documents=True),
        Stage("distractors", "distractors", ("questions",), distractors_schema(spec), _build_distractors,
              _distractor_rows, variants=tuple(slots_schema(n) for n in range(1, group_size(spec)))
              if grouped(spec) else (), documents=True),
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
