"""Multi-stage types end to end through the real SDKs against the emulators: waves, retries within a wave,
broken chains, kills at wave boundaries and mid-submit of a later stage, never paying twice."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
import yaml

import datafast
from datafast.dataset import collect_to
from datafast.pipeline import advance, status

from .conftest import REPO

PREFERENCE = {
    "datafast": 1, "name": "pairs", "type": "preference",
    "input_documents": ["The router resets when its button is held for ten seconds.",
                        "Firmware updates install between 2 and 4 a.m.",
                        "The warranty covers two years of normal use."],
    "num_samples_per_prompt": 2,
    "llm_as_judge": True,
    "models": {"questions": ["openai:gpt-4.1-mini"], "chosen": ["anthropic:claude-sonnet-4-5"],
               "rejected": ["ollama:gemma3:4b"], "judge": ["openai:gpt-4.1"]},
}

MCQ_DOCS = [{"text": f"Document {i}: the {w} river floods every spring and feeds the delta farms."}
            for i, w in enumerate(["long", "wide", "slow"])]

MCQ = {
    "datafast": 1, "name": "quiz", "type": "mcq", "source": {"file": "docs.jsonl"},
    "min_document_length": 10, "num_samples_per_prompt": 2,
    "models": {"questions": ["openai:gpt-4.1-mini"], "distractors": ["gemini:gemini-2.5-flash", "openai:gpt-4.1-mini"]},
}

CONVERSATION = {
    "datafast": 1, "name": "chats", "type": "conversation", "domain": "cooking",
    "topics_and_subtopics": {"baking": ["bread", "cake"]}, "personas": ["a student", "a chef"],
    "num_samples_per_prompt": 3, "max_turns": 3, "conversation_continuation_prob": 0.6,
    "models": {"questions": ["openai:gpt-4.1-mini"], "assistant": ["anthropic:claude-haiku-4-5", "ollama:gemma3:4b"],
               "user": ["gemini:gemini-2.5-flash"]},
}


def env_for(emus):
    env = {}
    if "openai" in emus:
        env.update(OPENAI_API_KEY="test", OPENAI_BASE_URL=emus["openai"].base_url)
    if "anthropic" in emus:
        env.update(ANTHROPIC_API_KEY="test", ANTHROPIC_BASE_URL=emus["anthropic"].base_url)
    if "gemini" in emus:
        env.update(GEMINI_API_KEY="test", GOOGLE_GEMINI_BASE_URL=emus["gemini"].base_url)
    if "ollama" in emus:
        env.update(OLLAMA_HOST=emus["ollama"].base_url)
    return env


def start(factory, *vendors, **options):
    return {v: factory(v, **options) for v in vendors}


def compile_spec(tmp_path: Path, spec, name="out"):
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(spec))
    if spec["type"] == "mcq":
        (tmp_path / "docs.jsonl").write_text("".join(json.dumps(d) + "\n" for d in MCQ_DOCS))
    out = tmp_path / name
    datafast.compile(path, out)
    return out


def all_requests(out: Path):
    """Every request of every compiled stage: (stage, id, model)."""
    manifests = [out / "manifest.jsonl", *sorted((out / "stages").glob("*/manifest.jsonl"))]
    return [(r["stage"], r["id"], r["model"]) for m in manifests for r in map(json.loads, m.read_text().splitlines())]


def sent_counts(out: Path, emus) -> Counter:
    """How many times each request of the run reached its vendor (batches and online calls together).

    Ollama requests carry no id: the emulator keys them by a hash of the body, so each of them counts as
    the number of calls with its body, matched by order-free totals.
    """
    counts: Counter = Counter()
    ollama = []
    for _, rid, model in all_requests(out):
        runtime = model.partition(":")[0]
        if runtime == "ollama":
            ollama.append(rid)
        else:
            counts[rid] = emus[runtime].submissions(rid)
    if ollama:
        bodies = emus["ollama"].stats()["request_counts"]
        assert len(bodies) == len(ollama), "distinct Ollama calls != Ollama requests"
        for rid, n in zip(ollama, sorted(bodies.values()), strict=True):
            counts[rid] = n
    return counts


def jsonl(path: Path):
    return [json.loads(x) for x in path.read_text().splitlines() if x.strip()]


def test_preference_with_judge_mixed_runtimes_in_three_rounds(tmp_path, emulator_factory):
    emus = start(emulator_factory, "openai", "anthropic", "ollama")
    out = compile_spec(tmp_path, PREFERENCE)
    report = advance(out, wait=True, poll_interval=0.01, env=env_for(emus))
    assert report.finished and report.failed == 0

    collected = collect_to(out)
    questions = jsonl(out / "rows" / "questions.jsonl")
    assert len(questions) >= 3  # at least one question per document
    stages = {s: Counter() for s in ("questions", "chosen", "rejected", "judge")}
    for stage, _, model in all_requests(out):
        stages[stage][model] += 1
    assert sum(stages["chosen"].values()) == sum(stages["rejected"].values()) == len(questions)
    assert sum(stages["judge"].values()) == 2 * len(questions)
    assert set(stages["rejected"]) == {"ollama:gemma3:4b"}  # an online runtime in the same wave as a batch one
    # every request of every stage sent exactly once; the judge of both answers went out as one batch
    assert set(sent_counts(out, emus).values()) == {1}
    openai_batches = emus["openai"].stats()["batches"]
    assert len(openai_batches) == 2 and len(emus["anthropic"].stats()["batches"]) == 1

    rows = jsonl(out / "dataset.jsonl")
    assert collected.items == {"items": len(questions), "rows": len(questions), "rejected": 0, "pending": 0,
                               "rejected_by_stage": {}}
    assert len(rows) == len(questions) and len({r["row_id"] for r in rows}) == len(rows)
    for row in rows:
        assert row["input_document"] in PREFERENCE["input_documents"]
        assert {row["chosen_model_id"], row["rejected_model_id"]} == {"anthropic:claude-sonnet-4-5", "ollama:gemma3:4b"}
        assert row["chosen_response_score"] >= row["rejected_response_score"]
        assert row["swapped"] == (row["chosen_model_id"] == "ollama:gemma3:4b")
        assert row["judge_model_id"] == "openai:gpt-4.1" and row["language"] == "en"
    assert {q["question"] for q in questions} == {r["question"] for r in rows}

    # a second run sends nothing and recompiles nothing
    before = {p: p.read_bytes() for p in sorted((out / "stages").rglob("*")) if p.is_file()}
    again = advance(out, wait=True, poll_interval=0.01, env=env_for(emus))
    assert again.finished and set(sent_counts(out, emus).values()) == {1}
    assert before == {p: p.read_bytes() for p in sorted((out / "stages").rglob("*")) if p.is_file()}


def test_later_stages_are_byte_reproducible(tmp_path, emulator_factory):
    outs = []
    for name in ("a", "b"):
        emus = start(emulator_factory, "openai", "anthropic", "ollama")
        out = compile_spec(tmp_path, PREFERENCE, name)
        advance(out, wait=True, poll_interval=0.01, env=env_for(emus))
        outs.append(out)
    files = [sorted(p.relative_to(o) for p in (o / "stages").rglob("*") if p.is_file()) for o in outs]
    assert files[0] == files[1] and files[0]
    for rel in files[0]:
        assert (outs[0] / rel).read_bytes() == (outs[1] / rel).read_bytes(), rel


@pytest.mark.emulator(batch_delay=0.3)
def test_submit_without_wait_advances_one_wave_per_call(tmp_path, openai_emulator, anthropic_emulator,
                                                        ollama_emulator):
    emus = {"openai": openai_emulator, "anthropic": anthropic_emulator, "ollama": ollama_emulator}
    out = compile_spec(tmp_path, PREFERENCE)
    env = env_for(emus)
    seen = []
    for _ in range(40):
        report = advance(out, env=env)
        seen.append(tuple(report.waiting))
        if report.finished:
            break
        assert report.live_jobs >= 1  # it returns only when a batch is still running
        time.sleep(0.35)
    assert report.finished
    # waves in order: nothing compiled but questions, then chosen+rejected together, then judge
    waves = list(dict.fromkeys(seen))
    assert waves[0] == ("chosen", "rejected", "judge")
    assert ("judge",) in waves and ("rejected", "judge") not in waves
    assert set(sent_counts(out, emus).values()) == {1}
    info = status(out, env=env)
    assert [s["stage"] for s in info["stages"]] == ["questions", "chosen", "rejected", "judge"]
    assert all(s["compiled"] and s["pending"] == 0 for s in info["stages"])


def test_transient_failure_in_a_later_stage_is_retried_before_the_next_wave(tmp_path, emulator_factory):
    emus = start(emulator_factory, "openai", "anthropic", "ollama")
    emus["anthropic"].faults.add("expire", completed=1)  # the chosen batch expires with one answer
    out = compile_spec(tmp_path, PREFERENCE)
    report = advance(out, wait=True, poll_interval=0.01, env=env_for(emus))
    assert report.finished and report.failed == 0
    anthropic = emus["anthropic"].stats()["batches"]
    assert len(anthropic) == 2  # the expired requests went out again, in a follow-up batch
    chosen = [rid for stage, rid, _ in all_requests(out) if stage == "chosen"]
    sent = sent_counts(out, emus)
    assert sorted(sent[r] for r in chosen).count(1) == 1 and max(sent[r] for r in chosen) == 2
    # the judge waited for the retry: one judge batch covering every pair
    assert len(emus["openai"].stats()["batches"]) == 2
    assert collect_to(out).items["rows"] == len(chosen)


def test_a_terminal_failure_breaks_only_its_chain(tmp_path, emulator_factory):
    # a first run finds the chosen request ids (every id is a content hash: a second run makes the same ones)
    probe = start(emulator_factory, "openai", "anthropic", "ollama")
    first = compile_spec(tmp_path, PREFERENCE, "probe")
    advance(first, wait=True, poll_interval=0.01, env=env_for(probe))
    chosen = sorted(rid for stage, rid, _ in all_requests(first) if stage == "chosen")

    emus = start(emulator_factory, "openai", "anthropic", "ollama")
    emus["anthropic"].faults.add("truncated", request_id=chosen[0])
    out = compile_spec(tmp_path, PREFERENCE, "run")
    report = advance(out, wait=True, poll_interval=0.01, env=env_for(emus))
    assert report.failed == 1 and report.pending == 0 and not report.waiting
    collected = collect_to(out)
    assert collected.items["rows"] == len(chosen) - 1
    assert collected.items["rejected_by_stage"] == {"chosen": 1}
    rejects = jsonl(out / "rejects.jsonl")
    request_level = [r for r in rejects if r.get("id") == chosen[0]]
    assert request_level and request_level[0]["reason"].startswith("truncated")
    item_level = [r for r in rejects if r.get("level") == "item"]
    assert len(item_level) == 1 and item_level[0]["stage"] == "chosen" and "truncated" in item_level[0]["reason"]
    assert emus["anthropic"].submissions(chosen[0]) == 1  # terminal: reported, not blindly resent
    judged = [r for stage, _, _ in all_requests(out) for r in [stage] if r == "judge"]
    assert len(judged) == 2 * (len(chosen) - 1)  # the broken pair's surviving answer is not judged
    assert collected.requests == collected.with_rows + collected.rejected + collected.pending


def test_mcq_questions_then_distractors_split_between_models(tmp_path, emulator_factory):
    emus = start(emulator_factory, "openai", "gemini")
    out = compile_spec(tmp_path, MCQ)
    assert advance(out, wait=True, poll_interval=0.01, env=env_for(emus)).finished
    collect_to(out)
    questions = jsonl(out / "rows" / "questions.jsonl")
    distractors = [(rid, model) for stage, rid, model in all_requests(out) if stage == "distractors"]
    # the questions of one questions request go together, num_samples_per_prompt a request, to one model
    size = json.loads((out / "manifest.json").read_text())["spec"]["num_samples_per_prompt"]
    per_request = Counter(q["request_id"] for q in questions)
    assert len(distractors) == sum(-(-n // size) for n in per_request.values()) < len(questions)
    # requests with fewer questions carry a smaller schema (one slot a question), checked as such when fetched
    assert any(n % size for n in per_request.values())
    assert len({model for _, model in distractors}) == 2
    rows = jsonl(out / "dataset.jsonl")
    assert len(rows) == len(questions)
    for row in rows:
        answers = [row["correct_answer"], *(row[f"incorrect_answer_{i}"] for i in (1, 2, 3))]
        assert len(set(answers)) == 4 and row["source_document"] in {d["text"] for d in MCQ_DOCS}
    assert set(sent_counts(out, emus).values()) == {1}


def test_conversation_one_round_per_turn(tmp_path, emulator_factory):
    from datafast.compiler.spec import UltrachatDatasetConfig
    from datafast.compiler.stages.conversation import continues

    emus = start(emulator_factory, "openai", "anthropic", "gemini", "ollama")
    out = compile_spec(tmp_path, CONVERSATION)
    assert advance(out, wait=True, poll_interval=0.01, env=env_for(emus)).finished
    collect_to(out)
    spec = UltrachatDatasetConfig.model_validate({k: v for k, v in CONVERSATION.items() if k != "datafast"})
    rows = jsonl(out / "dataset.jsonl")
    openings = jsonl(out / "rows" / "opening.jsonl")
    assert len(rows) == len(openings) > 0
    for row in rows:
        turns = [m["role"] for m in row["messages"]]
        assert turns[0] == "user" and turns[-1] == "assistant"
        assert turns == ["user", "assistant"] * (len(turns) // 2)
        k = len(turns) // 2
        conversation = next(o for o in openings if o["messages"][0]["content"] == row["messages"][0]["content"])
        expected = 1
        while continues(spec, conversation["conversation"], expected):
            expected += 1
        assert k == expected, row["row_id"]
        assert row["persona"] in CONVERSATION["personas"]
    assert set(sent_counts(out, emus).values()) == {1}


def _kill_then_resume(point: str, out: Path, env: dict[str, str]):
    full = {**os.environ, **env}
    killed = subprocess.run([sys.executable, "-m", "tests.killpoint", point, str(out)], env=full, cwd=REPO,
                            capture_output=True, text=True, timeout=120)
    assert killed.returncode == -9, killed.stderr[-2000:]
    resumed = subprocess.run([sys.executable, "-m", "tests.killpoint", "none", str(out)], env=full, cwd=REPO,
                             capture_output=True, text=True, timeout=120)
    assert resumed.returncode == 0, resumed.stderr[-2000:]


@pytest.mark.parametrize("point", ["after-compile:chosen", "after-compile:judge", "after-create:anthropic:chosen",
                                   "after-create:openai:judge"])
def test_kill_at_wave_boundaries_and_mid_submit_then_resume(tmp_path, emulator_factory, point):
    emus = start(emulator_factory, "openai", "anthropic", "ollama")
    out = compile_spec(tmp_path, PREFERENCE)
    _kill_then_resume(point, out, env_for(emus))
    assert set(sent_counts(out, emus).values()) == {1}
    assert len(emus["anthropic"].stats()["batches"]) == 1 and len(emus["openai"].stats()["batches"]) == 2
    collected = collect_to(out)
    assert collected.pending == 0 and collected.rejected == 0
    assert collected.items["rows"] == collected.stages["chosen"]["requests"] > 0


def test_status_and_collect_before_later_stages_exist(tmp_path, emulator_factory, cli):
    emus = start(emulator_factory, "openai", "anthropic", "ollama")
    out = compile_spec(tmp_path, PREFERENCE)
    info = status(out, env=env_for(emus))
    assert [(s["stage"], s["compiled"]) for s in info["stages"]] == [
        ("questions", True), ("chosen", False), ("rejected", False), ("judge", False)]
    assert info["stages"][1]["waiting_for"] == ["questions"]
    collected = collect_to(out)
    assert collected.pending == collected.requests and collected.items["pending"] == 0
    result = cli("status", out)
    assert result.exit_code == 0 and "chosen" in result.stdout and "waits for questions" in result.stdout


@pytest.mark.emulator(batch_delay=0.3)
def test_plan_dir_shows_actual_counts_and_projects_the_rest(tmp_path, openai_emulator, anthropic_emulator,
                                                           ollama_emulator, cli):
    from datafast.pipeline import plan_run

    emus = {"openai": openai_emulator, "anthropic": anthropic_emulator, "ollama": ollama_emulator}
    out = compile_spec(tmp_path, PREFERENCE)
    advance(out, env=env_for(emus))  # questions sent, still running
    early = {s["stage"]: s for s in plan_run(out)["stages"]}
    assert not early["questions"]["projected"] and early["chosen"]["projected"] and early["judge"]["projected"]
    assert early["questions"]["remaining"]["requests"] == len(PREFERENCE["input_documents"])
    while not advance(out, env=env_for(emus)).finished:
        time.sleep(0.2)
    done = {s["stage"]: s for s in plan_run(out)["stages"]}
    actual = Counter(stage for stage, _, _ in all_requests(out))
    assert {name: s["requests"] for name, s in done.items()} == dict(actual)
    assert not any(s["projected"] for s in done.values())
    assert all(s["remaining"]["requests"] == 0 for s in done.values())
    printed = cli("plan", out)
    assert printed.exit_code == 0 and "judge" in printed.stdout and "~judge" not in printed.stdout


def test_retry_failed_resends_failures_of_every_stage_in_one_call(tmp_path, emulator_factory):
    probe = start(emulator_factory, "openai", "gemini")
    first = compile_spec(tmp_path, MCQ, "probe")
    advance(first, wait=True, poll_interval=0.01, env=env_for(probe))
    questions = sorted(rid for stage, rid, _ in all_requests(first) if stage == "questions")
    distractors = sorted((rid, model) for stage, rid, model in all_requests(first) if stage == "distractors")

    emus = start(emulator_factory, "openai", "gemini")
    emus["openai"].faults.add("refusal", request_id=questions[0])  # a question fails for good
    rid, model = distractors[-1]  # a distractor (not from that question) fails for good
    emus[model.partition(":")[0]].faults.error(rid, status=400, code="invalid_request_error")
    out = compile_spec(tmp_path, MCQ, "run")
    report = advance(out, wait=True, poll_interval=0.01, env=env_for(emus))
    assert report.failed == 2
    again = advance(out, wait=True, poll_interval=0.01, retry_failed=True, env=env_for(emus))
    # one --retry-failed resent both, the distractor in a stage recompiled after its question was retried
    assert again.failed == 0 and again.finished
    assert emus["openai"].submissions(questions[0]) == 2
    assert emus[model.partition(":")[0]].submissions(rid) == 2


def test_a_missing_key_of_a_later_stage_is_an_error_before_anything_is_sent(tmp_path, emulator_factory):
    from datafast.runtimes import RuntimeConfigError

    emus = start(emulator_factory, "openai", "ollama")  # no Anthropic key for the chosen stage
    out = compile_spec(tmp_path, PREFERENCE)
    with pytest.raises(RuntimeConfigError, match="ANTHROPIC_API_KEY"):
        advance(out, wait=True, poll_interval=0.01, env=env_for(emus))
    assert not emus["openai"].stats()["batches"]  # the questions were not paid for


def test_a_model_ollama_does_not_serve_is_an_error_before_anything_is_sent(tmp_path, emulator_factory):
    from datafast.runtimes import RuntimeFailure

    emus = start(emulator_factory, "openai", "anthropic", "ollama")
    spec = {**PREFERENCE, "models": {**PREFERENCE["models"], "rejected": ["ollama:nonexistent:7b"]}}
    out = compile_spec(tmp_path, spec)
    with pytest.raises(RuntimeFailure, match="ollama pull nonexistent:7b"):
        advance(out, wait=True, poll_interval=0.01, env=env_for(emus))
    assert not emus["openai"].stats()["batches"] and not emus["anthropic"].stats()["batches"]
