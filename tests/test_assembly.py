"""Final rows of the multi-stage types: stage rows (made by the real builders and row makers from hand-written
answers) -> complete, rejected and pending items, with stable content-derived row ids."""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from typing import Any

import jsonschema
import pytest

from datafast.compiler.build import Prepared, prepare, stage_requests, stage_schemas
from datafast.compiler.hashing import content_hash
from datafast.compiler.spec import (
    ClassificationDatasetConfig,
    MCQDatasetConfig,
    PreferenceDatasetConfig,
    UltrachatDatasetConfig,
)
from datafast.compiler.stages import Assembly, StageOutcomes, assembler_for, stages_for
from datafast.compiler.stages.base import parents_of
from datafast.compiler.stages.conversation import continues, turn_stages

Answer = Callable[[dict[str, Any]], dict[str, Any]]


def run_stage(prepared: Prepared, name: str, inputs: dict[str, StageOutcomes], answer: Answer,
              fail: Callable[[dict[str, Any]], str | None] = lambda r: None) -> StageOutcomes:
    """Compile a stage from the rows of its inputs and answer every request: rows, or a failure by parent."""
    stage = prepared.stage(name)
    outcome = StageOutcomes(complete=True)
    rows = {name: inputs[name].rows for name in stage.inputs}
    for request in stage_requests(prepared, stage, rows or None):
        reason = fail(request)
        if reason is not None:
            for parent in parents_of(request["meta"]):
                outcome.failed[parent] = reason
            continue
        reply = answer(request)
        jsonschema.validate(reply, stage_schemas([stage])[request["schema"]])
        outcome.rows += stage.rows(prepared.spec, request, reply)
    return outcome


def assemble(prepared: Prepared, outcomes: dict[str, StageOutcomes]) -> Assembly:
    full = {s.name: outcomes.get(s.name, StageOutcomes()) for s in stages_for(prepared.spec)}
    result = assembler_for(prepared.spec)(prepared.spec, full)
    assert result.items == len(result.rows) + len(result.rejects) + result.pending
    return result


def shuffled(outcomes: dict[str, StageOutcomes], seed: int) -> dict[str, StageOutcomes]:
    rng = random.Random(seed)
    out = {}
    for name, o in outcomes.items():
        rows = list(o.rows)
        rng.shuffle(rows)
        out[name] = StageOutcomes(rows=rows, failed=dict(reversed(o.failed.items())), complete=o.complete)
    return out


def prompt_of(request: dict[str, Any]) -> str:
    return request["messages"][-1]["content"]


# -- preference ---------------------------------------------------------------------------------------------

PREF_MODELS = {"questions": ["openai:q"], "chosen": ["anthropic:strong"], "rejected": ["ollama:weak"],
               "judge": ["openai:judge"]}


def preference(judge: bool, questions: int = 4) -> tuple[Prepared, dict[str, StageOutcomes]]:
    spec = PreferenceDatasetConfig(name="p", input_documents=["Hold reset for 10 s."], llm_as_judge=judge,
                                   num_samples_per_prompt=questions, models=PREF_MODELS)
    prepared = prepare(spec)
    out = {"questions": run_stage(prepared, "questions", {},
                                  lambda r: {"items": [{"question": f"Q{i}?"} for i in range(questions)]})}
    return prepared, out


def answer_with(prefix: str) -> Answer:
    return lambda r: {"response": f"{prefix} {r['meta']['question']}"}


def scores(table: dict[tuple[str, str], int]) -> Answer:
    """Judge answers: score by (question, judged stage)."""
    return lambda r: {"assessment": f"{r['meta']['judged']} of {r['meta']['question']}",
                      "score": table.get((r["meta"]["question"], r["meta"]["judged"]), 5)}


def test_preference_complete_chains_without_judge():
    prepared, out = preference(judge=False)
    out["chosen"] = run_stage(prepared, "chosen", out, answer_with("good:"))
    out["rejected"] = run_stage(prepared, "rejected", out, answer_with("bad:"))
    result = assemble(prepared, out)
    assert result.items == 4 and len(result.rows) == 4 and not result.rejects and result.pending == 0
    q_rows = {r["row_id"]: r for r in out["questions"].rows}
    chosen = {r["parent"]: r for r in out["chosen"].rows}
    rejected = {r["parent"]: r for r in out["rejected"].rows}
    for row in result.rows:
        assert set(row) == {"row_id", "input_document", "question", "chosen_response", "rejected_response",
                            "chosen_model_id", "rejected_model_id", "language", "models", "request_ids", "template"}
        (q,) = [q for q in q_rows.values() if q["question"] == row["question"]]
        c, r = chosen[q["row_id"]], rejected[q["row_id"]]
        assert row["row_id"] == content_hash([q["row_id"], c["row_id"], r["row_id"]])
        assert row["input_document"] == "Hold reset for 10 s." and row["language"] == "en"
        assert row["chosen_response"] == f"good: {q['question']}" and row["rejected_response"] == f"bad: {q['question']}"
        assert (row["chosen_model_id"], row["rejected_model_id"]) == ("anthropic:strong", "ollama:weak")
        assert row["models"] == {"questions": "openai:q", "chosen": "anthropic:strong", "rejected": "ollama:weak"}
        assert row["request_ids"] == {"questions": q["request_id"], "chosen": c["request_id"],
                                      "rejected": r["request_id"]}
    assert len({row["row_id"] for row in result.rows}) == 4


def test_preference_judge_scores_and_swaps_pairs_the_judge_prefers_the_other_way():
    prepared, out = preference(judge=True, questions=3)
    out["chosen"] = run_stage(prepared, "chosen", out, answer_with("good:"))
    out["rejected"] = run_stage(prepared, "rejected", out, answer_with("bad:"))
    out["judge"] = run_stage(prepared, "judge", out, scores({
        ("Q0?", "chosen"): 9, ("Q0?", "rejected"): 3,   # as expected
        ("Q1?", "chosen"): 4, ("Q1?", "rejected"): 8,   # the judge prefers the "rejected" answer
        ("Q2?", "chosen"): 6, ("Q2?", "rejected"): 6,   # a tie keeps the order
    }))
    result = assemble(prepared, out)
    by_q = {row["question"]: row for row in result.rows}
    assert sorted(by_q) == ["Q0?", "Q1?", "Q2?"]
    kept, swapped, tie = by_q["Q0?"], by_q["Q1?"], by_q["Q2?"]
    assert not kept["swapped"] and not tie["swapped"] and swapped["swapped"] is True
    assert (kept["chosen_response"], kept["chosen_response_score"], kept["rejected_response_score"]) == ("good: Q0?", 9, 3)
    assert kept["chosen_response_assessment"] == "chosen of Q0?"
    assert swapped["chosen_response"] == "bad: Q1?" and swapped["rejected_response"] == "good: Q1?"
    assert (swapped["chosen_model_id"], swapped["rejected_model_id"]) == ("ollama:weak", "anthropic:strong")
    assert (swapped["chosen_response_score"], swapped["rejected_response_score"]) == (8, 4)
    assert swapped["chosen_response_assessment"] == "rejected of Q1?"
    assert swapped["rejected_response_assessment"] == "chosen of Q1?"
    for row in result.rows:
        assert row["judge_model_id"] == "openai:judge" and row["models"]["judge"] == "openai:judge"
        assert set(row["request_ids"]) == {"questions", "chosen", "rejected", "judge_chosen", "judge_rejected"}
    judge_ids = {r["request_id"] for r in out["judge"].rows}
    assert {row["request_ids"]["judge_chosen"] for row in result.rows} | {
        row["request_ids"]["judge_rejected"] for row in result.rows} == judge_ids


def test_preference_broken_chains_name_the_stage_and_reason():
    prepared, out = preference(judge=True, questions=4)
    q_id = {r["question"]: r["row_id"] for r in out["questions"].rows}
    out["chosen"] = run_stage(prepared, "chosen", out, answer_with("good:"),
                              fail=lambda r: "truncated: max_tokens reached" if r["meta"]["question"] == "Q0?" else None)
    out["rejected"] = run_stage(prepared, "rejected", out, answer_with("bad:"),
                                fail=lambda r: "schema violation at $: 'response' is a required property"
                                if r["meta"]["question"] == "Q1?" else None)
    out["rejected"].rows = [r for r in out["rejected"].rows if r["question"] != "Q3?"]  # lost without a failure
    out["judge"] = run_stage(prepared, "judge", out, scores({}),
                             fail=lambda r: "invalid JSON" if r["meta"]["question"] == "Q2?"
                             and r["meta"]["judged"] == "rejected" else None)
    result = assemble(prepared, out)
    assert result.rows == [] and result.pending == 0
    rejects = {r["item"]: r for r in result.rejects}
    assert rejects[q_id["Q0?"]] == {"item": q_id["Q0?"], "stage": "chosen",
                                    "reason": "chosen: truncated: max_tokens reached"}
    assert rejects[q_id["Q1?"]]["stage"] == "rejected"
    assert rejects[q_id["Q1?"]]["reason"] == "rejected: schema violation at $: 'response' is a required property"
    assert rejects[q_id["Q2?"]]["stage"] == "judge"
    assert rejects[q_id["Q2?"]]["reason"] == "judge (rejected answer): invalid JSON"
    assert rejects[q_id["Q3?"]]["stage"] == "rejected" and "no rejected answer" in rejects[q_id["Q3?"]]["reason"]


def test_preference_pending_until_the_needed_stages_complete():
    prepared, out = preference(judge=True, questions=3)
    # only questions answered: every pair waits
    waiting = assemble(prepared, out)
    assert (waiting.items, waiting.pending, waiting.rows, waiting.rejects) == (3, 3, [], [])

    out["chosen"] = run_stage(prepared, "chosen", out, answer_with("good:"),
                              fail=lambda r: "truncated" if r["meta"]["question"] == "Q0?" else None)
    partial = run_stage(prepared, "rejected", out, answer_with("bad:"))
    partial.rows = [r for r in partial.rows if r["question"] != "Q2?"]  # Q2's rejected answer is still in flight
    partial.complete = False
    out["rejected"] = partial
    result = assemble(prepared, out)
    # Q0 is already broken (a reject even while its rejected answer is pending); Q1 and Q2 wait (Q1 for its judge)
    assert [r["stage"] for r in result.rejects] == ["chosen"] and result.pending == 2 and result.rows == []

    no_judge, out2 = preference(judge=False, questions=3)
    out2["chosen"] = run_stage(no_judge, "chosen", out2, answer_with("good:"))
    partial2 = run_stage(no_judge, "rejected", out2, answer_with("bad:"))
    partial2.rows = [r for r in partial2.rows if r["question"] != "Q2?"]
    partial2.complete = False
    out2["rejected"] = partial2
    done = assemble(no_judge, out2)
    assert sorted(r["question"] for r in done.rows) == ["Q0?", "Q1?"] and done.pending == 1


def test_preference_rows_and_ids_do_not_depend_on_row_order():
    prepared, out = preference(judge=True, questions=5)
    out["chosen"] = run_stage(prepared, "chosen", out, answer_with("good:"))
    out["rejected"] = run_stage(prepared, "rejected", out, answer_with("bad:"),
                                fail=lambda r: "expired" if r["meta"]["question"] == "Q3?" else None)
    out["judge"] = run_stage(prepared, "judge", out, scores({("Q1?", "rejected"): 10}))
    first = assemble(prepared, out)
    again = assemble(prepared, shuffled(out, seed=1))
    assert first.rows == again.rows and first.rejects == again.rejects
    assert len(first.rows) == 4 and len(first.rejects) == 1
    # the same answers compiled from rows given in another order get the same ids, hence the same final rows
    prepared2, out2 = preference(judge=True, questions=5)
    out2["chosen"] = run_stage(prepared2, "chosen", shuffled(out2, 2), answer_with("good:"))
    out2["rejected"] = run_stage(prepared2, "rejected", shuffled(out2, 3), answer_with("bad:"),
                                 fail=lambda r: "expired" if r["meta"]["question"] == "Q3?" else None)
    out2["judge"] = run_stage(prepared2, "judge", shuffled(out2, 4), scores({("Q1?", "rejected"): 10}))
    assert [r["row_id"] for r in assemble(prepared2, out2).rows] == [r["row_id"] for r in first.rows]


# -- mcq ----------------------------------------------------------------------------------------------------

DOC = "The Peace of Westphalia, signed in 1648, ended the Thirty Years' War in the Holy Roman Empire."


PER_QUESTION = "Three wrong answers to {question} (not {correct_answer}), given {document}"


def mcq(tmp_path, context: bool = True, distractor_prompt: str | None = None) -> tuple[Prepared, dict[str, StageOutcomes]]:
    (tmp_path / "docs.jsonl").write_text(json.dumps({"text": DOC, "ctx": "history"}) + "\n")
    spec = MCQDatasetConfig(name="m", source={"file": "docs.jsonl"}, min_document_length=10,
                            context_column="ctx" if context else None, num_samples_per_prompt=4,
                            distractor_prompt=distractor_prompt,
                            models={"questions": ["gemini:q"], "distractors": ["openai:d"]})
    prepared = prepare(spec, base_dir=tmp_path)
    items = [{"question": "When was it signed?", "correct_answer": "1648"},
             {"question": "What did it end?", "correct_answer": "The Thirty Years' War"},
             {"question": "Where?", "correct_answer": "Holy Roman Empire"},
             {"question": "What was signed?", "correct_answer": "The Peace of Westphalia"}]
    return prepared, {"questions": run_stage(prepared, "questions", {}, lambda r: {"items": items})}


DISTRACTORS = {
    "When was it signed?": ["1492", "1789", "1914"],
    "What did it end?": ["the Hundred Years' War", "  the THIRTY years'   war ", "The Seven Years' War"],
    "Where?": ["France", "france ", "Spain"],
    "What was signed?": ["The Treaty of Utrecht", "The Congress of Vienna", "The Treaty of Versailles"],
}


WRONG = ("incorrect_answer_1", "incorrect_answer_2", "incorrect_answer_3")


def distractors(request: dict[str, Any]) -> dict[str, Any]:
    """The answer of a distractor request: one question's three, or (grouped) a slot per question of the
    request."""
    meta = request["meta"]
    if "parents" not in meta:
        return dict(zip(WRONG, DISTRACTORS[meta["question"]], strict=True))
    return {f"question_{k}": dict(zip(WRONG, DISTRACTORS[q["question"]], strict=True))
            for k, q in enumerate(meta["questions"], 1)}


def test_mcq_complete_rows_and_invalid_distractors(tmp_path):
    prepared, out = mcq(tmp_path)
    out["distractors"] = run_stage(prepared, "distractors", out, distractors)
    result = assemble(prepared, out)
    assert result.items == 4 and result.pending == 0
    assert sorted(r["question"] for r in result.rows) == ["What was signed?", "When was it signed?"]
    row = next(r for r in result.rows if r["question"] == "When was it signed?")
    q = next(r for r in out["questions"].rows if r["question"] == "When was it signed?")
    d = next(r for r in out["distractors"].rows if r["parent"] == q["row_id"])
    assert set(row) == {"row_id", "source_document", "question", "correct_answer", "incorrect_answer_1",
                        "incorrect_answer_2", "incorrect_answer_3", "language", "model_id", "distractor_model_id",
                        "models", "request_ids", "context", "template"}
    assert row["row_id"] == content_hash([q["row_id"], d["row_id"]])
    assert (row["source_document"], row["correct_answer"], row["context"]) == (DOC, "1648", "history")
    assert [row[f"incorrect_answer_{i}"] for i in (1, 2, 3)] == ["1492", "1789", "1914"]
    assert (row["model_id"], row["distractor_model_id"]) == ("gemini:q", "openai:d")
    assert row["models"] == {"questions": "gemini:q", "distractors": "openai:d"}
    assert row["request_ids"] == {"questions": q["request_id"], "distractors": d["request_id"]}

    reasons = {r["item"]: r for r in result.rejects}
    ended = next(r for r in out["questions"].rows if r["question"] == "What did it end?")["row_id"]
    where = next(r for r in out["questions"].rows if r["question"] == "Where?")["row_id"]
    assert reasons[ended]["stage"] == "distractors"
    assert "incorrect_answer_2 is the correct answer" in reasons[ended]["reason"]
    assert "incorrect_answer_2 repeats incorrect_answer_1" in reasons[where]["reason"]
    assert "correct answer" not in reasons[where]["reason"]


def test_mcq_per_question_prompt_gives_the_same_rows(tmp_path):
    (tmp_path / "g").mkdir()
    (tmp_path / "s").mkdir()
    grouped, out = mcq(tmp_path / "g")
    out["distractors"] = run_stage(grouped, "distractors", out, distractors)
    single, out1 = mcq(tmp_path / "s", distractor_prompt=PER_QUESTION)
    out1["distractors"] = run_stage(single, "distractors", out1, distractors)
    assert len(list(stage_requests(single, single.stage("distractors"), {"questions": out1["questions"].rows}))) == 4
    fields = ("question", "correct_answer", *(f"incorrect_answer_{i}" for i in (1, 2, 3)))
    assert ([[r[f] for f in fields] for r in assemble(grouped, out).rows]
            == [[r[f] for f in fields] for r in assemble(single, out1).rows])
    assert len(assemble(single, out1).rows) == 2


def test_mcq_failed_grouped_request_rejects_each_of_its_questions(tmp_path):
    prepared, out = mcq(tmp_path, context=False)
    out["distractors"] = run_stage(prepared, "distractors", out, distractors,
                                   fail=lambda r: "truncated: max_tokens reached")
    result = assemble(prepared, out)
    assert not result.rows and result.pending == 0
    assert sorted(r["item"] for r in result.rejects) == sorted(r["row_id"] for r in out["questions"].rows)
    assert {r["reason"] for r in result.rejects} == {"distractors: truncated: max_tokens reached"}


def test_mcq_failed_and_pending_distractors(tmp_path):
    prepared, out = mcq(tmp_path, context=False, distractor_prompt=PER_QUESTION)
    waiting = assemble(prepared, out)
    assert waiting.pending == 4 and waiting.items == 4
    out["distractors"] = run_stage(prepared, "distractors", out, distractors,
                                   fail=lambda r: "truncated: max_tokens reached"
                                   if r["meta"]["question"] == "What was signed?" else None)
    result = assemble(prepared, out)
    signed = next(r for r in out["questions"].rows if r["question"] == "What was signed?")["row_id"]
    assert {"item": signed, "stage": "distractors",
            "reason": "distractors: truncated: max_tokens reached"} in result.rejects
    assert all("context" not in r for r in result.rows) and len(result.rows) == 1
    out["distractors"].complete = False  # the failure may still be retried; the others wait
    out["distractors"].rows = []
    again = assemble(prepared, out)
    assert again.pending == 3 and len(again.rejects) == 1


def test_mcq_rows_do_not_depend_on_row_order(tmp_path):
    prepared, out = mcq(tmp_path)
    out["distractors"] = run_stage(prepared, "distractors", out, distractors)
    first = assemble(prepared, out)
    assert first.rows == assemble(prepared, shuffled(out, 5)).rows
    assert first.rejects == assemble(prepared, shuffled(out, 6)).rejects


# -- conversation -------------------------------------------------------------------------------------------


def conversation_spec(**kw: Any) -> UltrachatDatasetConfig:
    base = dict(name="c", domain="cooking", topics_and_subtopics={"baking": ["bread", "cakes"]},
                personas=["a student", "a chef", "a grandmother"], num_samples_per_prompt=6, max_turns=3,
                conversation_continuation_prob=0.5,
                models={"questions": ["openai:q"], "assistant": ["anthropic:a"], "user": ["gemini:u"]})
    base.update(kw)
    return UltrachatDatasetConfig(**base)


def reply(request: dict[str, Any]) -> dict[str, Any]:
    stage, last = request["stage"], prompt_of(request)
    if stage == "questions":
        topic = request["meta"]["subtopic"]
        return {"items": [{"question": f"{topic} question {i}"} for i in range(6)]}
    if stage == "opening":
        return {"question": f"As {request['meta']['persona']}: {request['meta']['conversation']}"}
    if stage.startswith("assistant"):
        return {"response": f"{stage} reply to: {last[:60]}"}
    return {"message": f"{stage} follow-up in {request['meta']['conversation']}"}


def run_conversations(prepared: Prepared, fail: dict[str, Callable[[dict], str | None]] | None = None,
                      upto: str | None = None) -> dict[str, StageOutcomes]:
    out: dict[str, StageOutcomes] = {}
    for stage in prepared.stages:
        if stage.name == upto:
            break
        out[stage.name] = run_stage(prepared, stage.name, out, reply, (fail or {}).get(stage.name, lambda r: None))
    return out


def test_conversations_of_several_lengths():
    spec = conversation_spec(topics_and_subtopics={"baking": ["bread", "cakes", "pastry"]})
    prepared = prepare(spec)
    out = run_conversations(prepared)
    result = assemble(prepared, out)
    assert result.items == 18 and len(result.rows) == 18 and not result.rejects
    lengths = set()
    questions = {q["row_id"]: q for q in out["questions"].rows}
    for row in result.rows:
        (conv,) = [c for c in questions if c in row["opening_question"]]
        expected = 1
        while continues(spec, conv, expected):
            expected += 1
        lengths.add(expected)
        assert row["num_turns"] == expected
        assert [m["role"] for m in row["messages"]] == ["user", "assistant"] * expected
        assert row["messages"][0]["content"] == row["opening_question"]
        assert row["seed_question"] == questions[conv]["question"] and row["persona"] in spec.personas
        assert row["opening_question"].startswith(f"As {row['persona']}:")
        assert (row["topic"], row["subtopic"], row["language"]) == ("baking", questions[conv]["subtopic"], "en")
        assert row["model_id"] == "anthropic:a"
        assert list(row["request_ids"]) == ["questions", *turn_stages(spec, conv)]
        assert row["models"]["user-2" if expected > 1 else "opening"] == ("gemini:u" if expected > 1 else "openai:q")
        assert set(row) == {"row_id", "opening_question", "seed_question", "messages", "persona", "topic",
                            "subtopic", "language", "model_id", "models", "request_ids", "num_turns", "template"}
    assert lengths == {1, 2, 3}  # the hash-decided continuation yields every length up to max_turns


def test_conversation_rows_and_ids_do_not_depend_on_row_order():
    prepared = prepare(conversation_spec())
    out = run_conversations(prepared)
    first = assemble(prepared, out)
    again = assemble(prepared, shuffled(out, 7))
    assert first.rows == again.rows
    assert len({r["row_id"] for r in first.rows}) == 12


def test_conversation_only_selected_questions_are_items():
    prepared = prepare(conversation_spec(num_samples=5))
    out = run_conversations(prepared, upto="opening")
    assert len(out["questions"].rows) == 12
    waiting = assemble(prepared, out)
    assert (waiting.items, waiting.pending) == (5, 5)
    done = assemble(prepared, run_conversations(prepared))
    assert done.items == 5 and len(done.rows) == 5


def test_conversation_broken_and_pending_turns():
    spec = conversation_spec(conversation_continuation_prob=1.0)  # every conversation runs 3 assistant turns
    prepared = prepare(spec)
    clean = run_conversations(prepared)
    convs = sorted(q["row_id"] for q in clean["questions"].rows)
    broken_a2, broken_open = convs[0], convs[1]
    out = run_conversations(prepared, fail={
        "assistant-2": lambda r: "truncated: max_tokens reached" if r["meta"]["conversation"] == broken_a2 else None,
        "opening": lambda r: "refused" if r["meta"]["conversation"] == broken_open else None,
    })
    result = assemble(prepared, out)
    rejects = {r["item"]: r for r in result.rejects}
    assert rejects[broken_a2] == {"item": broken_a2, "stage": "assistant-2",
                                  "reason": "assistant-2: truncated: max_tokens reached"}
    assert rejects[broken_open] == {"item": broken_open, "stage": "opening", "reason": "opening: refused"}
    assert len(result.rows) == 10 and all(r["num_turns"] == 3 for r in result.rows)

    # assistant-3 not answered yet: conversations that reached it wait, broken ones stay broken
    out["assistant-3"] = StageOutcomes()
    waiting = assemble(prepared, out)
    assert waiting.pending == 10 and len(waiting.rejects) == 2 and waiting.rows == []


def test_single_stage_types_keep_their_rows():
    spec = ClassificationDatasetConfig(name="c", classes=[{"name": "a", "description": "A."}], models=["openai:m"])
    rows = [{"row_id": "x-0", "text": "hi"}, {"row_id": "x-1", "text": "yo"}]
    result = assembler_for(spec)(spec, {"generate": StageOutcomes(rows=rows, complete=True)})
    assert result.rows == rows and result.items == 2


@pytest.mark.parametrize("kind", ["preference", "mcq", "conversation"])
def test_every_multi_stage_type_has_its_own_assembler(kind, tmp_path):
    (tmp_path / "docs.jsonl").write_text(json.dumps({"text": DOC}) + "\n")
    spec: Any = {
        "preference": PreferenceDatasetConfig(name="p", input_documents=["d"], models=["openai:m"]),
        "mcq": MCQDatasetConfig(name="m", source={"file": "docs.jsonl"}, models=["openai:m"]),
        "conversation": conversation_spec(),
    }[kind]
    empty = {s.name: StageOutcomes() for s in stages_for(spec)}
    result = assembler_for(spec)(spec, empty)
    assert result.items == 0
    row = {"row_id": "r-0", "request_id": "r", "model": "openai:m", "language": "en", "question": "q?",
           "document": "d", "correct_answer": "a", "topic": "baking", "subtopic": "bread"}
    with_question = {**empty, "questions": StageOutcomes(rows=[row], complete=True)}
    assert assembler_for(spec)(spec, with_question).pending == 1  # a single-stage assembler would call it done
