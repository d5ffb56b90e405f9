"""`plan` projects every stage: placeholder answers drive the real stage builders, counts follow the spec."""

from __future__ import annotations

import json

import jsonschema
import pytest

from datafast.compiler.build import plan, prepare, stage_requests
from datafast.compiler.pricing import CHARS_PER_TOKEN, TOKENS_PER_ITEM, PriceTable, estimate_input_tokens
from datafast.compiler.projection import KnownStage, placeholder_answer, project
from datafast.compiler.spec import MCQDatasetConfig, PreferenceDatasetConfig, UltrachatDatasetConfig
from datafast.compiler.stages import conversation

from .conftest import REPO

PRICES = PriceTable.load()


def by_stage(projection):
    return {s["stage"]: s for s in projection["stages"]}


def requests_of(projection):
    return {s["stage"]: s["requests"] for s in projection["stages"]}


def preference(docs, languages=None, samples=3, judge=True):
    return PreferenceDatasetConfig(
        name="p", input_documents=docs, languages=languages or {"en": "English"}, num_samples_per_prompt=samples,
        llm_as_judge=judge,
        models={"questions": ["openai:gpt-4.1-mini"], "chosen": ["anthropic:claude-sonnet-4-5"],
                "rejected": ["ollama:gemma3:1b"], "judge": ["openai:gpt-4.1"]})


def chats(samples=5, num_samples=None, max_turns=4, prob=0.5, subtopics=3):
    return UltrachatDatasetConfig(
        name="c", domain="cooking", topics_and_subtopics={"baking": [f"b{i}" for i in range(subtopics)],
                                                          "dinner": [f"d{i}" for i in range(subtopics)]},
        personas=["a student", "a chef"], num_samples_per_prompt=samples, num_samples=num_samples,
        max_turns=max_turns, conversation_continuation_prob=prob,
        models={"questions": ["openai:gpt-4.1-mini"], "assistant": ["anthropic:claude-haiku-4-5"],
                "user": ["openai:gpt-4.1-mini"]})


def test_preference_with_judge_projects_every_stage():
    docs = [f"Document {i}: " + "the router resets when the button is held. " * (10 + i) for i in range(3)]
    languages = {"en": "English", "fr": "French"}
    prepared = prepare(preference(docs, languages, samples=4))
    result = project(prepared, PRICES)
    counts = requests_of(result)
    questions = len(docs) * len(languages)
    assert counts == {"questions": questions, "chosen": questions * 4, "rejected": questions * 4,
                      "judge": 2 * questions * 4}
    stages = by_stage(result)
    assert [s["projected"] for s in result["stages"]] == [False, True, True, True]
    assert result["rounds"] == 3 and result["sampled"] is None
    # each chosen prompt really carries its document: 4 questions x 2 languages per document
    assert stages["chosen"]["input_tokens"] >= 4 * len(languages) * sum(len(d) for d in docs) // CHARS_PER_TOKEN
    assert stages["rejected"]["input_tokens"] < stages["chosen"]["input_tokens"]  # its prompt has no document
    total = result["total"]
    for key in ("requests", "input_tokens", "output_tokens"):
        assert total[key] == sum(s[key] for s in result["stages"])
        for s in result["stages"]:
            assert s[key] == sum(m[key] for m in s["by_model"].values())
    assert total["cost_batch"] == pytest.approx(sum(s["cost_batch"] for s in result["stages"]))
    assert stages["rejected"]["cost_online"] == 0.0  # ollama is free
    assert total["remaining"]["requests"] == total["requests"] and total["actual"]["requests"] == 0


def test_plan_keeps_first_stage_keys_and_adds_the_projection():
    prepared = prepare(preference(["Doc one is long enough.", "Doc two as well."]))
    summary = plan(prepared, PRICES)
    assert summary["counts"]["requests"] == 2 and summary["stage"] == "questions"
    assert "later_stages" not in summary
    first = summary["stages"][0]
    assert (first["requests"], first["input_tokens"], first["output_tokens"]) == (
        summary["counts"]["requests"], summary["estimate"]["input_tokens"], summary["estimate"]["output_tokens"])
    total = summary["estimate"]["projected_total"]
    assert total["requests"] == 2 + 6 + 6 + 12
    assert total["cost_online"] > summary["estimate"]["cost_online"]


def test_mcq_distractors_follow_the_questions(tmp_path):
    docs = [{"text": f"Text number {i}. " + "Photosynthesis turns light into sugar. " * 3} for i in range(4)]
    docs.append({"text": "too short"})
    (tmp_path / "docs.jsonl").write_text("".join(json.dumps(d) + "\n" for d in docs))
    spec = MCQDatasetConfig(name="m", source={"file": "docs.jsonl"}, min_document_length=50, num_samples_per_prompt=2,
                            languages={"en": "English", "de": "German", "fr": "French"},
                            models={"questions": ["openai:gpt-4.1-mini"], "distractors": ["gemini:gemini-2.5-flash"]})
    result = project(prepare(spec, base_dir=tmp_path), PRICES)
    # one distractor request per questions request: its 2 questions go together
    assert requests_of(result) == {"questions": 4 * 3, "distractors": 4 * 3}
    assert result["rounds"] == 2
    single = spec.model_copy(update={"distractor_prompt": "Wrong answers to {question}, not {correct_answer}"})
    assert requests_of(project(prepare(single, base_dir=tmp_path), PRICES)) == {"questions": 4 * 3,
                                                                                "distractors": 4 * 3 * 2}


def conversation_ids(prepared):
    """The conversations of a spec when every questions answer has num_samples_per_prompt items."""
    stage = prepared.stage("questions")
    samples = prepared.spec.num_samples_per_prompt
    answer = {"items": [{"question": "How do I knead dough?"}] * samples}
    return [row["row_id"] for request in stage_requests(prepared, stage)
            for row in stage.rows(prepared.spec, request, answer)]


def test_conversation_turns_match_a_brute_force_count_of_continues():
    spec = chats(samples=5, max_turns=4, prob=0.5)
    prepared = prepare(spec)
    ids = conversation_ids(prepared)
    expected = {"opening": len(ids), "assistant-1": len(ids)}
    for turn in range(2, spec.max_turns + 1):
        alive = [c for c in ids if all(conversation.continues(spec, c, k) for k in range(1, turn))]
        expected[f"user-{turn}"] = expected[f"assistant-{turn}"] = len(alive)
    counts = requests_of(project(prepared, PRICES))
    assert counts == {"questions": 6, **expected}
    assert 0 < expected["user-2"] < len(ids)  # the continuation is neither all nor nothing here


def test_conversation_respects_num_samples_and_stops_rounds_early():
    counts = requests_of(project(prepare(chats(samples=5, num_samples=7)), PRICES))
    assert counts["opening"] == counts["assistant-1"] == 7
    turns = [counts[f"assistant-{t}"] for t in range(1, 5)]
    assert turns == sorted(turns, reverse=True)
    never = project(prepare(chats(prob=0.0)), PRICES)
    assert never["rounds"] == 3  # questions, opening, assistant-1: no user turn is ever written
    assert requests_of(never)["user-2"] == 0


def test_projection_is_deterministic():
    prepared = prepare(chats(samples=3))
    first = json.dumps(project(prepared, PRICES), sort_keys=True)
    assert json.dumps(project(prepare(chats(samples=3)), PRICES), sort_keys=True) == first


def test_sampling_scales_to_the_full_projection():
    docs = [f"Document {i:02d}: " + "firmware updates install at night. " * 8 for i in range(12)]
    prepared = prepare(preference(docs, samples=3))
    full = project(prepared, PRICES, sample_limit=100)
    sampled = project(prepared, PRICES, sample_limit=10)
    assert full["sampled"] is None and sampled["sampled"] == {"requests": 10, "of": 12}
    assert requests_of(sampled) == requests_of(full) == {"questions": 12, "chosen": 36, "rejected": 36, "judge": 72}
    assert by_stage(sampled)["questions"] == by_stage(full)["questions"]  # the first stage is always counted in full
    for name in ("chosen", "rejected", "judge"):
        for key in ("input_tokens", "output_tokens"):
            assert by_stage(sampled)[name][key] == pytest.approx(by_stage(full)[name][key], rel=0.02)


def test_sampling_shrinks_a_cap_on_conversations_with_the_sample():
    prepared = prepare(chats(samples=5, num_samples=10, subtopics=6))  # 12 questions requests, 60 questions
    full = requests_of(project(prepared, PRICES))
    sampled = project(prepared, PRICES, sample_limit=6)
    assert sampled["sampled"] == {"requests": 6, "of": 12}
    assert full["opening"] == requests_of(sampled)["opening"] == 10


def first_stage(prepared):
    return list(stage_requests(prepared, prepared.stages[0]))


def test_known_stages_use_actual_requests_rows_and_usage():
    prepared = prepare(preference(["Doc A is here.", "Doc B is here.", "Doc C is here."], samples=3))
    spec = prepared.spec
    requests = first_stage(prepared)
    answered, failed, pending = requests
    questions = prepared.stage("questions")
    actual_rows = questions.rows(spec, answered, {"items": [{"question": "Only one?"}]})  # fewer than asked
    known = {"questions": KnownStage(requests=requests, rows=actual_rows, pending={pending["id"]},
                                     usage={"openai:gpt-4.1-mini": (1000, 300)})}
    result = project(prepared, PRICES, known)
    stages = by_stage(result)
    q = stages["questions"]
    assert q["requests"] == 3 and not q["projected"]
    assert q["actual"]["requests"] == 2 and q["remaining"]["requests"] == 1
    assert q["actual"]["input_tokens"] == 1000 and q["actual"]["output_tokens"] == 300
    assert q["remaining"]["input_tokens"] == estimate_input_tokens(pending["messages"])
    assert q["input_tokens"] == 1000 + q["remaining"]["input_tokens"]
    # 1 actual question + 3 simulated for the pending request; the failed one adds nothing
    assert requests_of(result) == {"questions": 3, "chosen": 4, "rejected": 4, "judge": 8}
    assert result["total"]["actual"]["input_tokens"] == 1000

    chosen = prepared.stage("chosen")
    chosen_requests = list(stage_requests(prepared, chosen, {"questions": actual_rows}))
    chosen_rows = chosen.rows(spec, chosen_requests[0], {"response": "Yes."})
    rejected = prepared.stage("rejected")
    rejected_requests = list(stage_requests(prepared, rejected, {"questions": actual_rows}))
    known.update({
        "questions": KnownStage(requests=requests, rows=actual_rows),  # every request has a final result now
        "chosen": KnownStage(requests=chosen_requests, rows=chosen_rows, usage={"anthropic:claude-sonnet-4-5": (50, 5)}),
        "rejected": KnownStage(requests=rejected_requests, pending={r["id"] for r in rejected_requests}),
    })
    result = project(prepared, PRICES, known)
    assert requests_of(result) == {"questions": 3, "chosen": 1, "rejected": 1, "judge": 2}
    assert [s["projected"] for s in result["stages"]] == [False, False, False, True]
    assert by_stage(result)["chosen"]["remaining"]["requests"] == 0


@pytest.mark.parametrize("limit", [100, 5])
def test_a_known_but_unanswered_first_stage_projects_like_the_spec(limit):
    prepared = prepare(preference([f"Doc {i} " + "text " * 20 for i in range(8)], samples=2))
    requests = first_stage(prepared)
    known = {"questions": KnownStage(requests=requests, pending={r["id"] for r in requests})}
    from_spec = project(prepared, PRICES, sample_limit=limit)
    from_run = project(prepared, PRICES, known, sample_limit=limit)
    assert from_run["sampled"] == from_spec["sampled"]
    for a, b in zip(from_spec["stages"], from_run["stages"], strict=True):
        assert {k: a[k] for k in ("stage", "requests", "input_tokens", "output_tokens", "cost_batch")} == \
               {k: b[k] for k in ("stage", "requests", "input_tokens", "output_tokens", "cost_batch")}


@pytest.mark.parametrize("spec", sorted((REPO / "specs").glob("*.yaml")), ids=lambda p: p.stem)
def test_placeholder_answers_satisfy_every_stage_schema(spec):
    prepared = prepare(spec)
    samples = prepared.spec.num_samples_per_prompt
    for stage in prepared.stages:
        answer = placeholder_answer(stage.schema, samples, "tag")
        jsonschema.validate(answer, stage.schema)
        items = answer.get("items", [answer])
        assert len(items) == (samples if "items" in answer else 1)
        chars = len(json.dumps(answer, ensure_ascii=False))
        assert chars >= 0.9 * len(items) * TOKENS_PER_ITEM * CHARS_PER_TOKEN


def test_cli_plan_prints_every_stage(cli):
    result = cli("plan", REPO / "specs" / "preference.yaml")
    assert result.exit_code == 0, result.stderr
    out = result.stdout
    assert "3 batch round(s)" in out and "NOT INCLUDED" not in out
    for line in ("questions", "~chosen", "~rejected", "~judge"):
        assert any(row.split()[1:2] == [line] for row in out.splitlines() if row.strip()[:1].isdigit()), line
    assert "every answer succeeds with num_samples_per_prompt items" in out
    summary = json.loads(cli("plan", REPO / "specs" / "preference.yaml", "--json").stdout)
    assert [s["stage"] for s in summary["stages"]] == ["questions", "chosen", "rejected", "judge"]


@pytest.mark.parametrize("limit", [100, 5])
def test_a_sampled_run_keeps_only_the_rows_of_its_sample(limit):
    prepared = prepare(preference([f"Doc {i} " + "text " * 20 for i in range(8)], samples=2))
    requests = first_stage(prepared)
    stage = prepared.stage("questions")
    rows = [row for r in requests for row in stage.rows(prepared.spec, r, {"items": [{"question": "Why?"}] * 2})]
    usage = {"openai:gpt-4.1-mini": (800, 200)}
    result = project(prepared, PRICES, {"questions": KnownStage(requests=requests, rows=rows, usage=usage)},
                     sample_limit=limit)
    assert requests_of(result) == {"questions": 8, "chosen": 16, "rejected": 16, "judge": 32}
    assert result["stages"][0]["input_tokens"] == 800 and result["stages"][0]["remaining"]["requests"] == 0


def test_grouped_distractor_estimates_count_the_questions_each_request_carries(tmp_path):
    from datafast.compiler.build import Summary, stage_requests
    from datafast.compiler.pricing import PriceTable

    (tmp_path / "docs.jsonl").write_text(json.dumps({"text": "x" * 300}) + "\n")
    spec = MCQDatasetConfig(name="m", source={"file": "docs.jsonl"}, num_samples_per_prompt=10,
                            models=["openai:gpt-4.1-mini"])
    prepared = prepare(spec, base_dir=tmp_path)

    def output_tokens(questions: int) -> int:
        rows = [{"row_id": f"q{questions}-{i}", "request_id": f"q{questions}", "stage": "questions",
                 "model": "openai:gpt-4.1-mini", "language": "en", "document": "Doc.", "question": f"Q{i}?",
                 "correct_answer": "A."} for i in range(questions)]
        summary = Summary(PriceTable.load())
        for request in stage_requests(prepared, prepared.stage("distractors"), {"questions": rows}):
            summary.add(request, 10)  # the stage's answers have 10 slots; these requests carry fewer
        return summary.as_dict()["estimate"]["output_tokens"]

    from datafast.compiler.pricing import estimate_output_tokens

    max_tokens = spec.generation.params()["max_tokens"]
    assert output_tokens(2) == estimate_output_tokens(2, max_tokens) < output_tokens(10) == \
        estimate_output_tokens(10, max_tokens)
