"""submit / collect end to end through the Anthropic and Gemini SDKs, and a spec using three vendors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter

import pytest

import datafast
from datafast.dataset import collect_to
from datafast.pipeline import advance as submit

from .conftest import REPO
from .test_submit_openai import compile_spec

SPEC = {
    "datafast": 1, "name": "vendors", "type": "classification",
    "classes": [{"name": "pos", "description": "Happy."}, {"name": "neg", "description": "Sad."}],
    "languages": {"en": "English", "de": "German"},
    "models": ["anthropic:claude-haiku-4-5", "gemini:gemini-2.5-flash"],
}


@pytest.fixture
def vendors(anthropic_emulator, gemini_emulator):
    env = {"ANTHROPIC_API_KEY": "test", "ANTHROPIC_BASE_URL": anthropic_emulator.base_url,
           "GEMINI_API_KEY": "test", "GOOGLE_GEMINI_BASE_URL": gemini_emulator.base_url}
    return {"anthropic": anthropic_emulator, "gemini": gemini_emulator}, env


def _ids(out, runtime):
    return [r["id"] for r in map(json.loads, (out / "manifest.jsonl").read_text().splitlines())
            if r["model"].startswith(runtime + ":")]


def test_anthropic_and_gemini_end_to_end_never_pay_twice(tmp_path, vendors):
    emus, env = vendors
    out, _ = compile_spec(tmp_path, SPEC)
    report = submit(out, wait=True, poll_interval=0.01, env=env)
    assert (report.ok, report.pending, report.failed) == (8, 0, 0)
    collected = collect_to(out)
    assert (collected.with_rows, collected.rejected, collected.pending) == (8, 0, 0)
    rows = [json.loads(x) for x in (out / "dataset.jsonl").read_text().splitlines()]
    assert {r["model"] for r in rows} == {"anthropic:claude-haiku-4-5", "gemini:gemini-2.5-flash"}
    submit(out, wait=True, poll_interval=0.01, env=env)
    for runtime, emu in emus.items():
        assert [emu.submissions(i) for i in _ids(out, runtime)] == [1, 1, 1, 1]
        assert len(emu.stats()["batches"]) == 1


def test_expired_and_errored_requests_are_retried_per_vendor(tmp_path, vendors):
    emus, env = vendors
    out, _ = compile_spec(tmp_path, SPEC)
    a_ids, g_ids = _ids(out, "anthropic"), _ids(out, "gemini")
    emus["anthropic"].faults.add("expire", completed=1)
    emus["anthropic"].faults.error(a_ids[0], code="invalid_request_error")
    emus["gemini"].faults.error(g_ids[1], status=503)
    emus["gemini"].faults.add("truncated", request_id=g_ids[2])
    report = submit(out, wait=True, poll_interval=0.01, env=env)
    assert emus["gemini"].submissions(g_ids[1]) == 2 and emus["gemini"].submissions(g_ids[2]) == 1
    assert report.failed >= 1
    collected = collect_to(out)
    assert collected.pending == 0 and collected.requests == collected.with_rows + collected.rejected
    reasons = {json.loads(x)["id"]: json.loads(x)["reason"] for x in (out / "rejects.jsonl").read_text().splitlines()}
    assert reasons[g_ids[2]].startswith("truncated")


@pytest.mark.parametrize("runtime", ["anthropic", "gemini"])
def test_kill_after_create_then_resume(tmp_path, vendors, runtime):
    emus, env = vendors
    spec = {**SPEC, "models": [m for m in SPEC["models"] if m.startswith(runtime)]}
    out, ids = compile_spec(tmp_path, spec)
    full_env = {**os.environ, **env}
    killed = subprocess.run([sys.executable, "-m", "tests.killpoint", f"after-create:{runtime}", str(out)],
                            env=full_env, cwd=REPO, capture_output=True, text=True, timeout=60)
    assert killed.returncode == -9, killed.stderr
    resumed = subprocess.run([sys.executable, "-m", "tests.killpoint", "none", str(out)], env=full_env, cwd=REPO,
                             capture_output=True, text=True, timeout=60)
    assert resumed.returncode == 0, resumed.stderr
    assert "not created again" in resumed.stderr or len(emus[runtime].stats()["batches"]) == 1
    assert [emus[runtime].submissions(i) for i in ids] == [1] * len(ids)
    assert collect_to(out).with_rows == len(ids)


def test_run_command_end_to_end(tmp_path, vendors, cli, monkeypatch):
    _, env = vendors
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps(SPEC))
    result = cli("run", spec, "-o", tmp_path / "out", "--poll-interval", "0.01")
    assert result.exit_code == 0, result.stderr
    assert "8 requests = 8 with rows + 0 rejected + 0 pending" in result.stdout
    assert (tmp_path / "out" / "dataset.jsonl").exists()
    status = cli("status", tmp_path / "out", "--json")
    assert json.loads(status.stdout)["ok"] == 8
    parquet = cli("collect", tmp_path / "out", "-o", tmp_path / "data.parquet")
    assert parquet.exit_code == 0
    import pyarrow.parquet as pq

    assert pq.read_table(tmp_path / "data.parquet").num_rows == json.loads(
        cli("collect", tmp_path / "out", "--json").stdout)["rows"]
    dataset = datafast.collect(tmp_path / "out")
    assert len(dataset) > 0 and {"text", "label", "language", "model", "request_id"} <= set(dataset.column_names)


def test_ollama_online_run_resumes_without_resending(tmp_path, ollama_emulator):
    spec = {**SPEC, "models": ["ollama:gemma3:4b"]}
    out, ids = compile_spec(tmp_path, spec)
    env = {"OLLAMA_HOST": ollama_emulator.base_url}
    ollama_emulator.faults.http("POST /api/chat", status=503, times=2, retry_after=0.01)
    report = submit(out, env=env, concurrency=2)  # online: no --wait needed
    assert (report.ok, report.pending) == (4, 0)
    # a torn last line (kill mid-append) is ignored: that request is simply sent again
    results = next((out / "results").glob("ollama-*.jsonl"))
    lines = results.read_text().splitlines()
    results.write_text("\n".join(lines[:-1]) + "\n" + lines[-1][:20])
    torn = json.loads(lines[-1])["id"]
    report = submit(out, env=env)
    assert report.ok == 4
    by_prompt = {r["messages"][-1]["content"]: r["id"] for r in map(json.loads, (out / "manifest.jsonl").open())}
    sent = Counter(by_prompt[body["messages"][-1]["content"]] for body in ollama_emulator.received)
    assert sorted(sent.values()) == [1, 1, 1, 2] and sent[torn] == 2  # only the torn one went again
    assert collect_to(out).with_rows == 4
