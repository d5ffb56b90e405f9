"""Stage graphs of the multi-stage types, driven with hand-made stage-k rows."""

from __future__ import annotations

import json

import jsonschema
import pytest

from datafast.compiler.build import prepare, stage_requests
from datafast.compiler.errors import SpecError
from datafast.compiler.spec import (
    MCQDatasetConfig,
    PreferenceDatasetConfig,
    UltrachatDatasetConfig,
)
from datafast.compiler.stages import conversation


def prepare_schemas(prepared):
    from datafast.compiler.build import stage_schemas

    return stage_schemas(prepared.stages)


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

    (second,) = stage_requests(prepared, prepared.stage("distractors"), {"questions": rows})
    # the questions of one document in one request: the document is paid for once, not once per question
    assert second["model"] in {"gemini:d1", "anthropic:d2"} and second["stage"] == "distractors"
    assert second["meta"]["parents"] == [rows[0]["row_id"], rows[1]["row_id"]]
    prompt = second["messages"][1]["content"]
    assert prompt.startswith("Document:\n" + doc)  # what repeats first, for the prompt caches
    assert prompt.endswith("Question 1: When was it signed?\nCorrect answer: 1648\n\n"
                           "Question 2: What did it end?\nCorrect answer: The Thirty Years' War")
    wrong = ("incorrect_answer_1", "incorrect_answer_2", "incorrect_answer_3")
    answer = {"question_1": dict(zip(wrong, ["1492", "1789", "1914"], strict=True)),
              "question_2": dict(zip(wrong, ["The Hundred Years' War", "The Seven Years' War", "World War I"],
                                          strict=True))}
    # two questions, two slots: the request's own schema (a variant of the stage's 3-slot one), in its system text
    schema = prepare_schemas(prepared)[second["schema"]]
    assert list(schema["properties"]) == ["question_1", "question_2"]
    assert '"question_2": {' in second["messages"][0]["content"] and "question_3" not in second["messages"][0]["content"]
    jsonschema.validate(answer, schema)
    final = prepared.stage("distractors").rows(prepared.spec, second, answer)
    assert [(r["parent"], r["question"], r["incorrect_answer_3"]) for r in final] == [
        (rows[0]["row_id"], "When was it signed?", "1914"), (rows[1]["row_id"], "What did it end?", "World War I")]
    assert [r["row_id"] for r in final] == [f"{second['id']}-0", f"{second['id']}-1"]
    assert all("parents" not in r and "questions" not in r and r["context"] == "history" for r in final)
    with pytest.raises(jsonschema.ValidationError):  # every slot is required, each with three named answers
        jsonschema.validate({"question_1": answer["question_1"]}, schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({**answer, "question_1": {"incorrect_answers": ["a", "b", "c"]}}, schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({**answer, "question_3": answer["question_1"]}, schema)


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


# -- one model per item in later stages ---------------------------------------------------------------------


def _question_rows(n: int, **extra) -> list[dict]:
    return [{"row_id": f"qreq-{i}", "request_id": "qreq", "stage": "questions", "model": "openai:q", "language": "en",
             "document": "Doc.", "question": f"Question {i}?", **extra} for i in range(n)]


def test_two_models_in_a_later_role_split_the_items():
    spec = PreferenceDatasetConfig(
        name="p", input_documents=["Doc."], llm_as_judge=True,
        models={"questions": ["openai:q"], "chosen": ["anthropic:c1", "openai:c2"], "rejected": ["ollama:r1", "ollama:r2"],
                "judge": ["openai:j1", "gemini:j2"]})
    prepared = prepare(spec)
    rows = _question_rows(40)
    for role, models in (("chosen", {"anthropic:c1", "openai:c2"}), ("rejected", {"ollama:r1", "ollama:r2"})):
        requests = list(stage_requests(prepared, prepared.stage(role), {"questions": rows}))
        assert len(requests) == 40  # one request per question, not one per model
        assert {r["meta"]["parent"] for r in requests} == {r["row_id"] for r in rows}
        assert {r["model"] for r in requests} == models  # both models get a share
        again = list(stage_requests(prepared, prepared.stage(role), {"questions": rows[::-1]}))
        assert {r["meta"]["parent"]: r["model"] for r in again} == {r["meta"]["parent"]: r["model"] for r in requests}


def test_both_answers_of_a_pair_are_judged_by_the_same_model():
    spec = PreferenceDatasetConfig(
        name="p", input_documents=["Doc."], llm_as_judge=True,
        models={"questions": ["openai:q"], "chosen": ["anthropic:c"], "rejected": ["ollama:r"],
                "judge": ["openai:j1", "gemini:j2", "anthropic:j3"]})
    prepared = prepare(spec)
    rows = _question_rows(30)
    answers = {}
    for role in ("chosen", "rejected"):
        requests = stage_requests(prepared, prepared.stage(role), {"questions": rows})
        answers[role] = [row for r in requests
                         for row in answer_rows(prepared, role, r, {"response": f"{role} {r['meta']['question']}"})]
    judge = list(stage_requests(prepared, prepared.stage("judge"), answers))
    assert len(judge) == 60
    parent_question = {r["row_id"]: r["parent"] for rs in answers.values() for r in rs}
    per_pair: dict[str, set[str]] = {}
    for request in judge:
        per_pair.setdefault(parent_question[request["meta"]["parent"]], set()).add(request["model"])
    assert len(per_pair) == 30 and all(len(models) == 1 for models in per_pair.values())
    assert {m for models in per_pair.values() for m in models} == {"openai:j1", "gemini:j2", "anthropic:j3"}


def test_mcq_distractor_models_split_the_questions(tmp_path):
    (tmp_path / "docs.jsonl").write_text(json.dumps({"text": "x" * 200}) + "\n")
    spec = MCQDatasetConfig(name="m", source={"file": "docs.jsonl"},
                            models={"questions": ["openai:q"], "distractors": ["gemini:d1", "anthropic:d2"]})
    prepared = prepare(spec, base_dir=tmp_path)
    rows = _question_rows(40, correct_answer="A.")
    requests = list(stage_requests(prepared, prepared.stage("distractors"), {"questions": rows}))
    # 40 questions of one questions request, at most 3 (num_samples_per_prompt) per distractor request, in
    # answer order, in chunks as equal as possible
    assert [len(r["meta"]["parents"]) for r in requests] == [3] * 12 + [2, 2]
    assert sorted(p for r in requests for p in r["meta"]["parents"]) == sorted(r["row_id"] for r in rows)
    assert requests[0]["meta"]["parents"] == ["qreq-0", "qreq-1", "qreq-2"]
    assert {r["model"] for r in requests} == {"gemini:d1", "anthropic:d2"}


def test_mcq_grouped_distractors_are_capped_at_ten_questions_a_request(tmp_path):
    (tmp_path / "docs.jsonl").write_text(json.dumps({"text": "x" * 200}) + "\n")
    spec = MCQDatasetConfig(name="m", source={"file": "docs.jsonl"}, num_samples_per_prompt=25, models=["openai:m"])
    prepared = prepare(spec, base_dir=tmp_path)
    stage = prepared.stage("distractors")
    assert list(stage.schema["properties"]) == [f"question_{k}" for k in range(1, 11)]
    rows = _question_rows(25, correct_answer="A.", document="A long document. " * 100)
    requests = list(stage_requests(prepared, stage, {"questions": rows}))
    assert [len(r["meta"]["parents"]) for r in requests] == [9, 8, 8]  # as equal as possible, at most 10
    schemas = prepare_schemas(prepared)
    assert requests[0]["schema"] != requests[1]["schema"] == requests[2]["schema"]
    assert [len(schemas[r["schema"]]["properties"]) for r in requests] == [9, 8, 8]
    # the two 8-question requests share the document's prefix; the 9-question one (another schema) does not
    assert [r["meta"]["prefix_shared_by"] for r in requests] == [1, 2, 2]


def test_mcq_distractors_of_two_questions_requests_are_not_mixed(tmp_path):
    (tmp_path / "docs.jsonl").write_text(json.dumps({"text": "x" * 200}) + "\n")
    prepared = prepare(MCQDatasetConfig(name="m", source={"file": "docs.jsonl"}, models=["openai:m"]),
                       base_dir=tmp_path)
    rows = _question_rows(2, correct_answer="A.") + [
        {**r, "row_id": "other-" + r["row_id"], "request_id": "other", "language": "de", "document": "Dok."}
        for r in _question_rows(2, correct_answer="B.")]
    requests = list(stage_requests(prepared, prepared.stage("distractors"), {"questions": rows}))
    assert sorted(r["meta"]["parents"] for r in requests) == [["other-qreq-0", "other-qreq-1"], ["qreq-0", "qreq-1"]]
    assert {r["meta"]["language"]: r["meta"]["document"] for r in requests} == {"en": "Doc.", "de": "Dok."}


# -- later-stage prompts from the spec ----------------------------------------------------------------------


def test_custom_chosen_prompt_changes_only_chosen_requests():
    base = dict(name="p", input_documents=["Doc."], llm_as_judge=True,
                models={"questions": ["openai:q"], "chosen": ["anthropic:c"], "rejected": ["ollama:r"],
                        "judge": ["openai:j"]})
    default = prepare(PreferenceDatasetConfig(**base))
    custom = prepare(PreferenceDatasetConfig(
        **base, chosen_response_generation_prompt="Expert answer ({language_code}) to {question} using {document}",
        judge_prompt="Score {response} for {question}."))
    rows = _question_rows(3)

    def ids(prepared, stage, inputs):
        return [r["id"] for r in stage_requests(prepared, prepared.stage(stage), inputs)]

    assert ids(default, "questions", {}) == ids(custom, "questions", {})
    assert ids(default, "rejected", {"questions": rows}) == ids(custom, "rejected", {"questions": rows})
    assert set(ids(default, "chosen", {"questions": rows})).isdisjoint(ids(custom, "chosen", {"questions": rows}))
    chosen = list(stage_requests(custom, custom.stage("chosen"), {"questions": rows}))
    assert chosen[0]["messages"][-1]["content"] == "Expert answer (en) to Question 0? using Doc."
    rejected = list(stage_requests(custom, custom.stage("rejected"), {"questions": rows}))
    answered = {"chosen": [answer_rows(custom, "chosen", chosen[0], {"response": "It {is} 42."})[0]],
                "rejected": [answer_rows(custom, "rejected", r, {"response": "No."})[0] for r in rejected]}
    judge = list(stage_requests(custom, custom.stage("judge"), answered))
    # only the first question has both answers: only its pair is judged
    assert len(judge) == 2 and {r["meta"]["judged"] for r in judge} == {"chosen", "rejected"}
    assert judge[0]["messages"][-1]["content"] == "Score It {is} 42. for Question 0?."


def test_custom_conversation_and_mcq_prompts_are_used(tmp_path):
    spec = _conversation(user_system_prompt="Be {persona}, speaking {language_name} about {domain}.",
                         user_followup_prompt="So far:\n{transcript}\nNext?",
                         simulated_assistant_prompt="Expert in {topic}/{subtopic}.",
                         persona_question_reformulation_prompt="As {persona}: {question}")
    prepared = prepare(spec)
    q = [{"row_id": "q-0", "question": "Why knead?", "language": "en", "topic": "baking", "subtopic": "bread"}]
    opening = list(stage_requests(prepared, prepared.stage("opening"), {"questions": q}))
    assert opening[0]["messages"][-1]["content"] == f"As {opening[0]['meta']['persona']}: Why knead?"
    o_rows = answer_rows(prepared, "opening", opening[0], {"question": "Why knead, chef?"})
    a1 = list(stage_requests(prepared, prepared.stage("assistant-1"), {"opening": o_rows}))
    assert a1[0]["messages"][0] == {"role": "system", "content": "Expert in baking/bread."}
    a_rows = answer_rows(prepared, "assistant-1", a1[0], {"response": "Gluten."})
    u2 = list(stage_requests(prepared, prepared.stage("user-2"), {"assistant-1": a_rows}))
    persona = opening[0]["meta"]["persona"]
    assert u2[0]["messages"][0]["content"] == f"Be {persona}, speaking English about cooking."
    assert u2[0]["messages"][1]["content"] == "So far:\nUSER: Why knead, chef?\n\nASSISTANT: Gluten.\nNext?"

    (tmp_path / "docs.jsonl").write_text(json.dumps({"text": "x" * 200, "c": "ctx!"}) + "\n")
    mcq = prepare(MCQDatasetConfig(name="m", source={"file": "docs.jsonl"}, context_column="c", models=["openai:m"],
                                   distractor_prompt="Wrong answers to {question} (not {correct_answer}) [{context}]"),
                  base_dir=tmp_path)
    rows = _question_rows(1, correct_answer="A.", context="ctx!")
    (request,) = stage_requests(mcq, mcq.stage("distractors"), {"questions": rows})
    assert request["messages"][-1]["content"] == "Wrong answers to Question 0? (not A.) [ctx!]"
    assert request["meta"]["parent"] == rows[0]["row_id"]  # {question}: one request per question
    assert list(mcq.stage("distractors").schema["properties"]) == [f"incorrect_answer_{i}" for i in (1, 2, 3)]

    grouped = prepare(MCQDatasetConfig(name="m", source={"file": "docs.jsonl"}, models=["openai:m"],
                                       num_samples_per_prompt=2,
                                       distractor_prompt="{document}\nWrong answers ({language_code}):\n{questions}"),
                      base_dir=tmp_path)
    (request,) = stage_requests(grouped, grouped.stage("distractors"),
                                {"questions": _question_rows(2, correct_answer="A.")})
    assert request["messages"][-1]["content"] == ("Doc.\nWrong answers (en):\nQuestion 1: Question 0?\n"
                                                  "Correct answer: A.\n\nQuestion 2: Question 1?\nCorrect answer: A.")
    assert list(grouped.stage("distractors").schema["properties"]) == ["question_1", "question_2"]


PREFERENCE = """\
datafast: 1
name: p
type: preference
input_documents: [Doc.]
llm_as_judge: true
models: [openai:gpt-4.1-mini]
"""
MCQ = """\
datafast: 1
name: m
type: mcq
source: {file: docs.jsonl}
models: [openai:gpt-4.1-mini]
"""
CONVERSATION = """\
datafast: 1
name: c
type: conversation
domain: cooking
topics_and_subtopics: {baking: [bread]}
personas: [a chef]
models: [openai:gpt-4.1-mini]
"""

# (id, spec text, field, message fragment); the field's line is where its key is
PROMPT_ERRORS = [
    ("chosen-without-question", PREFERENCE + "chosen_response_generation_prompt: 'Answer in {language_name}.'\n",
     "chosen_response_generation_prompt", "missing mandatory placeholder {question}"),
    ("rejected-unknown", PREFERENCE + "rejected_response_generation_prompt: '{question} {questoin}'\n",
     "rejected_response_generation_prompt", "unknown placeholder {questoin}; did you mean 'question'"),
    ("judge-without-response", PREFERENCE + "judge_prompt: 'Rate the answer to {question} against {document}'\n",
     "judge_prompt", "missing mandatory placeholder {response}"),
    ("judge-optional", PREFERENCE + "judge_prompt: '{question} {response} {{tone}}'\nexpansion:\n  placeholders: {tone: [a]}\n",
     "judge_prompt", "{{tone}}: optional placeholders are filled by expansion"),
    ("distractor-without-answer", MCQ + "distractor_prompt: 'Wrong answers to {question}'\n",
     "distractor_prompt", "missing mandatory placeholder {correct_answer}; distractor_prompt must contain "
     "{correct_answer}, {question}; or, for all the questions of a document in one request, {questions}"),
    ("distractor-both-forms", MCQ + "distractor_prompt: 'Wrong answers to {questions}, not {correct_answer}'\n",
     "distractor_prompt", "use either {correct_answer}, {question} (one request per question) or {questions} "
     "(all the questions of a document in one request), not both"),
    ("distractor-context-without-column", MCQ + "distractor_prompt: '{question} {correct_answer} {context}'\n",
     "distractor_prompt", "{context} needs 'context_column'"),
    ("persona-unknown", CONVERSATION + "persona_question_reformulation_prompt: '{person}: {question} {persona}'\n",
     "persona_question_reformulation_prompt", "unknown placeholder {person}; did you mean 'persona'"),
    ("followup-without-transcript", CONVERSATION + "user_followup_prompt: 'Ask the next question.'\n",
     "user_followup_prompt", "missing mandatory placeholder {transcript}"),
    ("user-system-without-persona", CONVERSATION + "user_system_prompt: 'You are a user.'\n",
     "user_system_prompt", "missing mandatory placeholder {persona}"),
    ("assistant-unknown", CONVERSATION + "simulated_assistant_prompt: 'Help with {document}.'\n",
     "simulated_assistant_prompt", "unknown placeholder {document}"),
]


@pytest.mark.parametrize("case", PROMPT_ERRORS, ids=[c[0] for c in PROMPT_ERRORS])
def test_later_stage_prompt_errors_are_located(case, write_spec, cli, tmp_path):
    _, text, field, fragment = case
    (tmp_path / "docs.jsonl").write_text(json.dumps({"text": "x" * 200}) + "\n")
    line = next(i for i, ln in enumerate(text.splitlines(), 1) if ln.startswith(field + ":"))
    spec = write_spec(text)
    with pytest.raises(SpecError) as err:
        prepare(spec)
    assert any(i.field == field and i.line == line and fragment in i.message for i in err.value.issues), err.value
    result = cli("compile", spec, "-o", tmp_path / "out")
    assert result.exit_code == 2 and f"{spec}:{line}: {field}: " in result.stderr
    assert not (tmp_path / "out").exists()


def test_valid_later_stage_prompts_compile(write_spec, cli, tmp_path):
    spec = write_spec(PREFERENCE + "chosen_response_generation_prompt: 'In {language_name}: {question} ({document})'\n"
                                   "judge_prompt: 'Rate {response} to {question} with {\"json\": 1} braces'\n")
    result = cli("compile", spec, "-o", tmp_path / "out")
    assert result.exit_code == 0, result.stderr
