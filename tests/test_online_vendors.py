"""Online mode for the batch vendors (`--online`, the spec's `online` key) end to end, through the real SDKs
against the emulators: the body sent online is the batch line's body, results and error kinds are the batch
adapters', concurrency is bounded, transient failures are ridden out, and no request is ever sent twice."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

import datafast
from datafast.cli import main
from datafast.compiler.loader import SpecError
from datafast.dataset import collect_to
from datafast.pipeline import advance
from tests.emulators.answers import request_key

from .conftest import REPO

VENDORS = {  # runtime -> (model, online route the emulator counts, env of the emulator)
    "openai": ("gpt-4.1-mini", "POST /v1/chat/completions",
               lambda emu: {"OPENAI_API_KEY": "test", "OPENAI_BASE_URL": emu.base_url}),
    "anthropic": ("claude-haiku-4-5", "POST /v1/messages",
                  lambda emu: {"ANTHROPIC_API_KEY": "test", "ANTHROPIC_BASE_URL": emu.base_url}),
    "gemini": ("gemini-2.5-flash", "POST /{v}/models/{model}:generateContent",
               lambda emu: {"GEMINI_API_KEY": "test", "GOOGLE_GEMINI_BASE_URL": emu.base_url}),
}
PATHS = {"openai": "/v1/chat/completions", "anthropic": "/v1/messages$", "gemini": ":generateContent"}


def classification(runtime: str, **extra: Any) -> dict[str, Any]:
    return {"datafast": 1, "name": "online", "type": "classification",
            "classes": [{"name": n, "description": f"{n.title()} texts."} for n in ("pos", "neg", "mixed")],
            "languages": {"en": "English", "fr": "French"},
            "models": [f"{runtime}:{VENDORS[runtime][0]}"], **extra}


def compile_spec(tmp_path: Path, spec: dict[str, Any]) -> Path:
    tmp_path.mkdir(parents=True, exist_ok=True)
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(spec))
    out = tmp_path / "out"
    datafast.compile(path, out)
    return out


def job_lines(out: Path) -> dict[str, tuple[str, dict[str, Any]]]:
    """Request id -> (runtime, its batch job-file line), over every compiled stage."""
    lines = {}
    for path in out.glob("**/jobs/*/*.jsonl"):
        runtime = path.parent.name
        for raw in path.read_text().splitlines():
            line = json.loads(raw)
            lines[line.get("custom_id") or line.get("key")] = (runtime, line)
    return lines


def online_body(runtime: str, line: dict[str, Any], model: str) -> dict[str, Any]:
    """What the vendor receives online for a job-file line: the line's body."""
    if runtime == "openai":
        return dict(line["body"])
    if runtime == "anthropic":
        return dict(line["params"])
    return {"model": model, **line["request"]}  # the Gemini emulator keys an online call by model + body


def online_key(runtime: str, line: dict[str, Any]) -> str:
    return request_key(online_body(runtime, line, VENDORS[runtime][0]))


@pytest.fixture
def vendor(request: pytest.FixtureRequest, emulator_factory: Callable[..., Any]) -> tuple[str, Any, dict[str, str]]:
    runtime = request.param
    emu = emulator_factory(runtime)
    return runtime, emu, VENDORS[runtime][2](emu)


all_vendors = pytest.mark.parametrize("vendor", list(VENDORS), indirect=True)


@all_vendors
def test_every_request_online_end_to_end(tmp_path, vendor):
    runtime, emu, env = vendor
    out = compile_spec(tmp_path, classification(runtime))
    report = advance(out, wait=True, env=env, online=True, concurrency=4)
    assert (report.ok, report.pending, report.failed, report.live_jobs) == (6, 0, 0, 0)
    stats = emu.stats()
    assert stats["batches"] == [] and stats["calls"][VENDORS[runtime][1]] == 6
    lines = job_lines(out)
    expected = sorted(json.dumps(online_body(runtime, line, VENDORS[runtime][0]), sort_keys=True)
                      for _, line in lines.values())
    received = sorted(json.dumps(body if runtime != "gemini" else {"model": VENDORS[runtime][0], **body},
                                 sort_keys=True) for body in emu.received)
    assert received == expected  # the online body is the batch line's body
    results = [json.loads(x) for f in (out / "results").glob("*.jsonl") for x in f.read_text().splitlines()]
    assert {r["id"] for r in results} == set(lines) and {r["runtime"] for r in results} == {runtime}
    assert all(r["usage"]["output_tokens"] > 0 for r in results)
    collected = collect_to(out)
    assert (collected.rejected, collected.pending) == (0, 0) and collected.rows > 0
    advance(out, wait=True, env=env, online=True)  # done: nothing is sent again
    assert emu.stats()["calls"][VENDORS[runtime][1]] == 6


@all_vendors
def test_concurrency_is_bounded(tmp_path, vendor):
    runtime, emu, env = vendor
    out = compile_spec(tmp_path, classification(runtime))
    concurrency = 3
    # every online call waits at the server until `concurrency` calls are in flight together: fewer would
    # break the barrier (timeout), more would show in the peak
    barrier = threading.Barrier(concurrency, timeout=10)
    lock, state = threading.Lock(), {"now": 0, "peak": 0}
    handle = emu.handle

    def counted(req: Any) -> Any:
        if req.path.startswith("/_emulator/"):
            return handle(req)
        with lock:
            state["now"] += 1
            state["peak"] = max(state["peak"], state["now"])
        try:
            barrier.wait()
            return handle(req)
        finally:
            with lock:
                state["now"] -= 1

    emu.handle = counted
    report = advance(out, wait=True, env=env, online=True, concurrency=concurrency)
    assert (report.ok, report.failed) == (6, 0)
    assert state["peak"] == concurrency


@all_vendors
def test_rate_limit_storm_and_server_errors_are_ridden_out(tmp_path, vendor):
    runtime, emu, env = vendor
    out = compile_spec(tmp_path, classification(runtime))
    capacity = {"openai": 503, "anthropic": 529, "gemini": 503}[runtime]
    emu.faults.http(PATHS[runtime], 429, times=10, retry_after=0.05)  # a storm: more 429s than requests
    emu.faults.http(PATHS[runtime], capacity, times=2, retry_after=0.02)
    emu.faults.http(PATHS[runtime], 500, times=2)
    report = advance(out, wait=True, env=env, online=True, concurrency=4)
    assert (report.ok, report.pending, report.failed) == (6, 0, 0)
    assert emu.stats()["calls"][VENDORS[runtime][1]] == 6 + 10 + 2 + 2
    for rid, (_, line) in job_lines(out).items():
        assert emu.submissions(online_key(runtime, line)) == 1 and emu.submissions(rid) == 0  # answered once


@all_vendors
def test_retry_after_is_honoured(tmp_path, vendor):
    runtime, emu, env = vendor
    out = compile_spec(tmp_path, classification(runtime, languages={"en": "English"}))
    arrivals: list[float] = []
    handle = emu.handle

    def timed(req: Any) -> Any:
        if not req.path.startswith("/_emulator/"):
            arrivals.append(time.monotonic())
        return handle(req)

    emu.handle = timed
    emu.faults.http(PATHS[runtime], 429, times=1, retry_after=0.4)  # far above the runtime's own backoff start
    report = advance(out, wait=True, env=env, online=True, concurrency=1)
    assert report.ok == 3 and len(arrivals) == 4
    assert arrivals[1] - arrivals[0] >= 0.4 - 0.05  # the vendor's wait, not a shorter backoff of ours


@all_vendors
def test_refusal_and_truncation_are_terminal_as_in_batch(tmp_path, vendor):
    runtime, emu, env = vendor
    out = compile_spec(tmp_path, classification(runtime))
    lines = sorted(job_lines(out).items())
    (refused, (_, refused_line)), (cut, (_, cut_line)) = lines[0], lines[1]
    emu.faults.add("refusal", request_id=online_key(runtime, refused_line))
    emu.faults.add("truncated", request_id=online_key(runtime, cut_line))
    report = advance(out, wait=True, env=env, online=True)
    assert (report.ok, report.failed) == (4, 2)
    results = {json.loads(x)["id"]: json.loads(x) for f in (out / "results").glob("*.jsonl")
               for x in f.read_text().splitlines()}
    # Gemini's emulator refuses with finishReason SAFETY, which the batch adapter calls content_filter
    assert results[refused]["error"]["kind"] == ("content_filter" if runtime == "gemini" else "refusal")
    assert results[cut]["error"]["kind"] == "truncated"
    assert not results[refused]["error"]["retryable"] and not results[cut]["error"]["retryable"]
    advance(out, wait=True, env=env, online=True)  # terminal: not sent again
    assert emu.submissions(online_key(runtime, refused_line)) == emu.submissions(online_key(runtime, cut_line)) == 1
    collect_to(out)
    reasons = {json.loads(x)["id"]: json.loads(x)["reason"] for x in (out / "rejects.jsonl").read_text().splitlines()}
    assert reasons[cut].startswith("truncated")


PREFERENCE = {
    "datafast": 1, "name": "pairs", "type": "preference",
    "input_documents": ["The router resets when its button is held for ten seconds.",
                        "The warranty covers two years of normal use."],
    "num_samples_per_prompt": 2, "llm_as_judge": True,
    "models": {"questions": ["openai:gpt-4.1-mini"], "chosen": ["anthropic:claude-haiku-4-5"],
               "rejected": ["openai:gpt-4.1-mini"], "judge": ["anthropic:claude-haiku-4-5", "openai:gpt-4.1"]},
    "online": ["judge"],
}


def test_mixed_spec_sends_judge_online_and_the_rest_in_batches_each_once(tmp_path, emulator_factory):
    emus = {name: emulator_factory(name) for name in ("openai", "anthropic")}
    env = {**VENDORS["openai"][2](emus["openai"]), **VENDORS["anthropic"][2](emus["anthropic"])}
    out = compile_spec(tmp_path, PREFERENCE)
    report = advance(out, wait=True, poll_interval=0.01, env=env)
    assert report.finished and report.failed == 0
    stages = {json.loads(x)["id"]: json.loads(x) for f in [out / "manifest.jsonl", *out.glob("stages/*/manifest.jsonl")]
              for x in f.read_text().splitlines()}
    lines = job_lines(out)
    assert set(stages) == set(lines) and {r["stage"] for r in stages.values()} == {"questions", "chosen", "rejected",
                                                                                  "judge"}
    for rid, (runtime, line) in lines.items():
        model = stages[rid]["model"].partition(":")[2]
        key = request_key(online_body(runtime, line, model))
        batch, online = emus[runtime].submissions(rid), emus[runtime].submissions(key)
        assert (batch, online) == ((0, 1) if stages[rid]["stage"] == "judge" else (1, 0)), stages[rid]["stage"]
    collected = collect_to(out)
    assert (collected.rejected, collected.pending) == (0, 0) and collected.rows > 0
    advance(out, wait=True, poll_interval=0.01, env=env)  # nothing left: nothing sent
    assert sum(len(e.stats()["online_requests"]) for e in emus.values()) == sum(
        1 for r in stages.values() if r["stage"] == "judge")


def test_submit_online_flag_and_a_local_openai_compatible_server_without_key(tmp_path, openai_emulator,
                                                                             monkeypatch):
    out = compile_spec(tmp_path, classification("openai"))
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)  # a vLLM / llama.cpp server asks for none
    monkeypatch.setenv("OPENAI_BASE_URL", openai_emulator.base_url)
    got = CliRunner().invoke(main, ["submit", str(out), "--online", "--concurrency", "2"])
    assert got.exit_code == 0, got.output
    assert "6 requests = 6 ok + 0 in flight (0 live jobs) + 0 failed + 0 to send" in got.output
    assert openai_emulator.stats()["batches"] == [] and len(openai_emulator.received) == 6
    assert "files" not in json.dumps(openai_emulator.stats()["calls"])  # no batch-only endpoint was called


def test_batch_stays_the_default(tmp_path, openai_emulator):
    out = compile_spec(tmp_path, classification("openai"))
    report = advance(out, wait=True, poll_interval=0.01, env=VENDORS["openai"][2](openai_emulator))
    assert report.ok == 6 and len(openai_emulator.stats()["batches"]) == 1 and openai_emulator.received == []


def test_a_request_in_a_live_batch_is_not_sent_online(tmp_path, emulator_factory):
    emu = emulator_factory("openai", batch_delay=3600)
    env = VENDORS["openai"][2](emu)
    out = compile_spec(tmp_path, classification("openai"))
    advance(out, wait=False, env=env)  # one batch created, running
    report = advance(out, wait=False, env=env, online=True)
    assert report.pending == 6 and report.live_jobs == 1 and emu.received == []


@pytest.mark.parametrize(("online", "message"), [
    (["judg"], "unknown role 'judg'; did you mean 'judge'?"),
    ([], "list the roles to send online"),
])
def test_online_key_names_known_roles(tmp_path, online, message):
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump({**PREFERENCE, "online": online}))
    with pytest.raises(SpecError) as err:
        datafast.compile(path, tmp_path / "out")
    assert message in str(err.value) and "online" in str(err.value)


def test_online_key_left_out_keeps_the_spec_hash(tmp_path):
    spec = classification("openai")
    with_default = compile_spec(tmp_path / "a", {**spec, "online": False})
    without = compile_spec(tmp_path / "b", spec)
    read = [json.loads((o / "manifest.json").read_text()) for o in (with_default, without)]
    assert read[0]["spec_hash"] == read[1]["spec_hash"] and "online" not in read[1]["spec"]


KILL_AFTER_SENDS = """
import os, signal, sys
from datafast.pipeline import advance
from datafast.runtimes.openai_online import OpenAIOnlineRuntime

original, calls = OpenAIOnlineRuntime.send, [0]

def send(self, line, model):
    answer = original(self, line, model)
    calls[0] += 1
    if calls[0] == int(sys.argv[2]):  # the vendor answered; this answer is never stored
        os.kill(os.getpid(), signal.SIGKILL)
    return answer

OpenAIOnlineRuntime.send = send
advance(sys.argv[1], wait=True, online=True, concurrency=1)
"""


def test_kill_mid_run_then_resume_resends_only_what_has_no_result(tmp_path, openai_emulator):
    env = VENDORS["openai"][2](openai_emulator)
    out = compile_spec(tmp_path, classification("openai"))
    killed = subprocess.run([sys.executable, "-c", KILL_AFTER_SENDS, str(out), "4"], env={**os.environ, **env},
                            cwd=REPO, capture_output=True, text=True, timeout=120)
    assert killed.returncode == -9, killed.stderr
    stored = {json.loads(x)["id"] for f in (out / "results").glob("*.jsonl") for x in f.read_text().splitlines()}
    assert 0 < len(stored) < 4  # the answers received before the kill, but not the one it interrupted
    report = advance(out, wait=True, env=env, online=True)
    assert (report.ok, report.pending, report.failed) == (6, 0, 0)
    for rid, (_, line) in job_lines(out).items():
        sent = openai_emulator.submissions(online_key("openai", line))
        assert sent == 1 if rid in stored else sent in (1, 2)  # only an answer lost to the kill is paid twice
    assert len(openai_emulator.received) == 6 + (4 - len(stored))


def test_run_online_flag(tmp_path, gemini_emulator, monkeypatch):
    for name, value in VENDORS["gemini"][2](gemini_emulator).items():
        monkeypatch.setenv(name, value)
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(classification("gemini")))
    got = CliRunner().invoke(main, ["run", str(path), "-o", str(tmp_path / "out"), "--online"])
    assert got.exit_code == 0, got.output
    assert gemini_emulator.stats()["batches"] == [] and len(gemini_emulator.received) == 6
    assert len((tmp_path / "out" / "dataset.jsonl").read_text().splitlines()) > 0


def test_online_role_without_a_stage_is_a_warning(tmp_path):
    from datafast.compiler.build import prepare
    from datafast.compiler.spec import PreferenceDatasetConfig

    spec = PreferenceDatasetConfig(name="p", input_documents=["D."], models=["openai:gpt-4.1-mini"],
                                   online=["judge"])  # llm_as_judge is off: no judge stage
    warnings = [str(w) for w in prepare(spec).warnings]
    assert any("'judge'" in w and "no effect" in w for w in warnings)
    with_judge = PreferenceDatasetConfig(name="p", input_documents=["D."], models=["openai:gpt-4.1-mini"],
                                         online=["judge"], llm_as_judge=True)
    assert not any("no effect" in str(w) for w in prepare(with_judge).warnings)
