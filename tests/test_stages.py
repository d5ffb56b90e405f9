"""Stage graphs of the multi-stage types, driven with hand-made stage-k rows."""

from __future__ import annotations

import json

import jsonschema
import pytest

from datafast.compiler.build import prepare, stage_requests
from datafast.compiler.spec import (
    MCQDatasetConfig,
    PreferenceDatasetConfig,
    UltrachatDatasetConfig,
)
from datafast.compiler.stages import conversation


def answer_rows(prepared, stage_name, request, answer):
    stage = prepared.stage(stage_name)
    jsonschema.validate(answer, stage.schema)
    return stage.rows(prepared.spec, request, answer)


def test_mcq_questions_feed_distractors(tmp_path):
    doc = "The Treaty of Westphalia {1648} ended the Thirty Years' War. " * 3
    rows = [{"text": doc, "ctx": "history"}, {"text": "short"}]
    (tmp_path / "docs.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    spec = MCQDatasetConfig(name="m", source={"file": "docs.jsonl"}, context_column="ctx", min_document_length=20,
                            models={"questions": ["openai:q"], "distractors": ["gemini:d1", "anthropic:d2"]})
    prepared = prepare(spec, base_dir=tmp_path)
    first = list(stage_requests(prepared, prepared.stages[0]))
    assert len(first) == 1  # the short document is filtered out
    assert doc in first[0]["messages"][1]["content"]  # braces in data survive
    rows = answer_rows(prepared, "questions", first[0], {"items": [
        {"question": "When was it signed?", "correct_answer": "1648"},
        {"question": "What did it end?", "correct_answer": "The Thirty Years' War"},
    ]})
    assert [r["row_id"] for r in rows] == [f"{first[0]['id']}-0", f"{first[0]['id']}-1"]
    assert rows[0]["document"] == doc and rows[0]["context"] == "history" and rows[0]["language"] == "en"

    second = list(stage_requests(prepared, prepared.stage("distractors"), {"questions": rows}))
    assert len(second) == 4  # 2 questions x 2 distractor models
    assert {r["model"] for r in second} == {"gemini:d1", "anthropic:d2"}
    assert all(r["stage"] == "distractors" and r["meta"]["parent"] in {rows[0]["row_id"], rows[1]["row_id"]} for r in second)
    assert "Correct answer: 1648" in second[0]["messages"][1]["content"]
    final = answer_rows(prepared, "distractors", second[0], {"incorrect_answers": ["1492", "1789", "1914"]})
    assert final[0]["question"] == "When was it signed?" and final[0]["incorrect_answer_3"] == "1914"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"incorrect_answers": ["only one"]}, prepared.stage("distractors").schema)


def test_later_stage_requests_do_not_depend_on_input_row_order(tmp_path):
    spec = PreferenceDatasetConfig(name="p", input_documents=["Doc one."],
                                   models={"questions": ["openai:q"], "chosen": ["openai:c"], "rejected": ["ollama:r"]})
    prepared = prepare(spec)
    q = list(stage_requests(prepared, prepared.stages[0]))[0]
    rows = answer_rows(prepared, "questions", q, {"items": [{"question": f"Q{i}?"} for i in range(4)]})
    chosen = prepared.stage("chosen")
    forward = [r["id"] for r in stage_requests(prepared, chosen, {"questions": rows})]
    backward = [r["id"] for r in stage_requests(prepared, chosen, {"questions": rows[::-1]})]
    assert forward == backward


def test_preference_chosen_rejected_and_judge():
    spec = PreferenceDatasetConfig(
        name="p", input_documents=["Reset: hold the button 10 s."], llm_as_judge=True,
        models={"questions": ["openai:q"], "chosen": ["anthropic:strong"], "rejected": ["ollama:weak"],
                "judge": ["openai:judge"]})
    prepared = prepare(spec)
    assert [s.name for s in prepared.stages] == ["questions", "chosen", "rejected", "judge"]
    q = list(stage_requests(prepared, prepared.stages[0]))
    assert len(q) == 1
    rows = answer_rows(prepared, "questions", q[0], {"items": [{"question": "How do I reset it?"}]})
    chosen = list(stage_requests(prepared, prepared.stage("chosen"), {"questions": rows}))
    rejected = list(stage_requests(prepared, prepared.stage("rejected"), {"questions": rows}))
    assert [r["model"] for r in chosen] == ["anthropic:strong"] and [r["model"] for r in rejected] == ["ollama:weak"]
    assert "Reset: hold the button" in chosen[0]["messages"][1]["content"]
    assert "Reset: hold the button" not in rejected[0]["messages"][1]["content"]
    c_rows = answer_rows(prepared, "chosen", chosen[0], {"response": "Hold the button for 10 seconds."})
    r_rows = answer_rows(prepared, "rejected", rejected[0], {"response": "Unplug it."})
    judge = list(stage_requests(prepared, prepared.stage("judge"), {"chosen": c_rows, "rejected": r_rows}))
    assert sorted(r["meta"]["judged"] for r in judge) == ["chosen", "rejected"]
    scored = answer_rows(prepared, "judge", judge[0], {"assessment": "Correct.", "score": 9})
    assert scored[0]["score"] == 9
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"assessment": "x", "score": 11}, prepared.stage("judge").schema)


def test_preference_without_judge_has_no_judge_stage():
    spec = PreferenceDatasetConfig(name="p", input_documents=["d"], models=["openai:m"])
    assert [s.name for s in prepare(spec).stages] == ["questions", "chosen", "rejected"]


def _conversation(**kw) -> UltrachatDatasetConfig:
    base = dict(name="c", domain="cooking", topics_and_subtopics={"baking": ["bread"]},
                personas=["a student", "a chef"], num_samples_per_prompt=2, max_turns=3,
                conversation_continuation_prob=1.0,
                models={"questions": ["openai:q"], "assistant": ["anthropic:a1", "openai:a2"], "user": ["openai:u"]})
    base.update(kw)
    return UltrachatDatasetConfig(**base)


def test_conversation_turn_loop():
    prepared = prepare(_conversation())
    assert [s.name for s in prepared.stages] == ["questions", "opening", "assistant-1", "user-2", "assistant-2",
                                                 "user-3", "assistant-3"]
    q = list(stage_requests(prepared, prepared.stages[0]))
    rows = answer_rows(prepared, "questions", q[0], {"items": [{"question": "How do I knead?"},
                                                               {"question": "Why {does} bread rise?"}]})
    opening = list(stage_requests(prepared, prepared.stage("opening"), {"questions": rows}))
    assert len(opening) == 2 and {r["meta"]["persona"] for r in opening} <= {"a student", "a chef"}
    o_rows = answer_rows(prepared, "opening", opening[1], {"question": "Why {does} my bread rise, chef?"})
    assert o_rows[0]["messages"] == [{"role": "user", "content": "Why {does} my bread rise, chef?"}]

    a1 = list(stage_requests(prepared, prepared.stage("assistant-1"), {"opening": o_rows}))
    assert len(a1) == 1 and a1[0]["model"] in ("anthropic:a1", "openai:a2")  # one assistant model per conversation
    assert a1[0]["messages"][-1] == {"role": "user", "content": "Why {does} my bread rise, chef?"}
    a_rows = answer_rows(prepared, "assistant-1", a1[0], {"response": "Yeast makes gas."})
    assert [m["role"] for m in a_rows[0]["messages"]] == ["user", "assistant"]

    u2 = list(stage_requests(prepared, prepared.stage("user-2"), {"assistant-1": a_rows}))
    assert len(u2) == 1 and "Yeast makes gas." in u2[0]["messages"][1]["content"]
    u_rows = answer_rows(prepared, "user-2", u2[0], {"message": "How long should it rise?"})
    a2 = list(stage_requests(prepared, prepared.stage("assistant-2"), {"user-2": u_rows}))
    # the assistant sees the whole conversation as chat turns
    assert [m["role"] for m in a2[0]["messages"]] == ["system", "user", "assistant", "user"]
    assert a2[0]["model"] == a1[0]["model"]  # the same assistant model throughout the conversation


def test_conversation_stops_by_probability_and_max_turns():
    never = prepare(_conversation(conversation_continuation_prob=0.0))
    row = {"row_id": "r-0", "conversation": "c1", "persona": "a chef", "language": "en", "topic": "baking",
           "subtopic": "bread", "messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}]}
    assert list(stage_requests(never, never.stage("user-2"), {"assistant-1": [row]})) == []
    half = _conversation(conversation_continuation_prob=0.5)
    decisions = [conversation.continues(half, f"conv-{i}", 1) for i in range(400)]
    assert 150 < sum(decisions) < 250  # about half continue, decided by hash
    assert decisions == [conversation.continues(half, f"conv-{i}", 1) for i in range(400)]
    assert not conversation.continues(half, "conv-0", 3)  # max_turns reached


def test_conversation_num_samples_caps_conversations_whatever_the_order():
    prepared = prepare(_conversation(num_samples=3))
    rows = [{"row_id": f"q{i}", "question": f"Q{i}", "language": "en", "topic": "baking", "subtopic": "bread"}
            for i in range(10)]
    stage = prepared.stage("opening")
    a = [r["meta"]["conversation"] for r in stage_requests(prepared, stage, {"questions": rows})]
    b = [r["meta"]["conversation"] for r in stage_requests(prepared, stage, {"questions": rows[::-1]})]
    assert len(a) == 3 and a == b


def test_missing_input_rows_are_an_error():
    prepared = prepare(_conversation())
    with pytest.raises(ValueError, match="needs the rows of questions"):
        list(stage_requests(prepared, prepared.stage("opening"), {}))
