"""submit / status / collect / cancel end to end through the OpenAI SDK against the emulator."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import yaml

import datafast
from datafast.dataset import collect_to
from datafast.pipeline import advance as submit
from datafast.pipeline import status

from .conftest import REPO

SPEC = {
    "datafast": 1, "name": "e2e", "type": "classification",
    "classes": [{"name": "pos", "description": "Happy."}, {"name": "neg", "description": "Sad."},
                {"name": "mixed", "description": "Both."}],
    "languages": {"en": "English", "fr": "French"},
    "num_samples_per_prompt": 2,
    "models": ["openai:gpt-4.1-mini"],
}


def compile_spec(tmp_path, spec=SPEC, limits=None):
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(spec))
    out = tmp_path / "out"
    datafast.compile(path, out, limits=limits)
    ids = [json.loads(line)["id"] for line in (out / "manifest.jsonl").read_text().splitlines()]
    return out, ids


def env_for(emu):
    return {"OPENAI_API_KEY": "test", "OPENAI_BASE_URL": emu.base_url}


def test_submit_wait_collect_and_never_pay_twice(tmp_path, openai_emulator):
    out, ids = compile_spec(tmp_path)
    env = env_for(openai_emulator)
    report = submit(out, wait=True, poll_interval=0.01, env=env)
    assert (report.ok, report.pending, report.failed, report.live_jobs) == (6, 0, 0, 0)
    assert all(openai_emulator.submissions(i) == 1 for i in ids)
    collected = collect_to(out)
    assert (collected.requests, collected.with_rows, collected.rejected, collected.pending) == (6, 6, 0, 0)
    rows = [json.loads(x) for x in (out / "dataset.jsonl").read_text().splitlines()]
    assert len(rows) == collected.rows >= 6
    assert {r["label"] for r in rows} == {"pos", "neg", "mixed"} and {r["language"] for r in rows} == {"en", "fr"}
    assert all(r["request_id"] in ids and r["model"] == "openai:gpt-4.1-mini" and r["text"] for r in rows)
    assert collected.usage["by_model"]["openai:gpt-4.1-mini"]["input_tokens"] > 0
    # again: nothing is sent
    submit(out, wait=True, poll_interval=0.01, env=env)
    assert len(openai_emulator.stats()["batches"]) == 1
    assert all(openai_emulator.submissions(i) == 1 for i in ids)


def test_editing_the_spec_sends_only_changed_requests(tmp_path, openai_emulator):
    out, ids = compile_spec(tmp_path)
    env = env_for(openai_emulator)
    submit(out, wait=True, poll_interval=0.01, env=env)
    edited = json.loads(json.dumps(SPEC))
    edited["classes"][2]["description"] = "Both, edited."
    _, new_ids = compile_spec(tmp_path, edited)
    changed = set(new_ids) - set(ids)
    assert len(changed) == 2  # the edited class, in 2 languages
    submit(out, wait=True, poll_interval=0.01, env=env)
    batches = openai_emulator.stats()["batches"]
    assert len(batches) == 2 and set(batches[1]["request_ids"]) == changed
    assert collect_to(out).with_rows == 6


def test_partial_failures_are_retried_and_terminal_ones_reported(tmp_path, openai_emulator):
    out, ids = compile_spec(tmp_path)
    emu = openai_emulator
    emu.faults.error(ids[0], status=500)  # transient: resubmitted in a follow-up batch
    emu.faults.error(ids[1], status=400, message="bad request body")  # terminal
    emu.faults.add("truncated", request_id=ids[2])  # terminal: truncated answer
    emu.faults.add("invalid_json", request_id=ids[3])  # arrived, but not an answer: terminal, like the others
    report = submit(out, wait=True, poll_interval=0.01, env=env_for(emu))
    assert emu.submissions(ids[0]) == 2 and emu.submissions(ids[1]) == 1 and emu.submissions(ids[2]) == 1
    assert emu.submissions(ids[3]) == 1
    assert report.failed == 3  # status, submit and collect agree: 3 failed
    collected = collect_to(out)
    assert (collected.with_rows, collected.rejected, collected.pending) == (3, 3, 0)
    rejects = {json.loads(x)["id"]: json.loads(x)["reason"] for x in (out / "rejects.jsonl").read_text().splitlines()}
    assert rejects[ids[1]].startswith("invalid_request: bad request body")
    assert rejects[ids[2]].startswith("truncated")
    assert rejects[ids[3]].startswith("invalid_json: ")
    # terminal failures are resent only on request, with a larger token limit
    submit(out, wait=True, poll_interval=0.01, env=env_for(emu), retry_failed=True, max_tokens=4096)
    assert emu.submissions(ids[1]) == 2 and emu.submissions(ids[2]) == 2 and emu.submissions(ids[3]) == 2
    last = emu.stats()["batches"][-1]
    assert set(last["request_ids"]) == {ids[1], ids[2], ids[3]}
    assert all(json.loads(x)["body"]["max_completion_tokens"] == 4096
               for x in (out / "submit" / f"{status(out, env_for(emu))['jobs'][-1]['name']}.jsonl").read_text().splitlines())
    assert collect_to(out).with_rows == 6  # the invalid-JSON answer was resent by --retry-failed too


def test_expired_batch_resubmits_the_rest(tmp_path, openai_emulator):
    out, ids = compile_spec(tmp_path)
    openai_emulator.faults.add("expire", completed=2)
    report = submit(out, wait=True, poll_interval=0.01, env=env_for(openai_emulator))
    assert report.ok == 6
    counts = sorted(openai_emulator.submissions(i) for i in ids)
    assert counts == [1, 1, 2, 2, 2, 2]


def test_validation_failure_shows_vendor_errors(tmp_path, openai_emulator, capsys):
    out, ids = compile_spec(tmp_path)
    openai_emulator.faults.add("validation_failure")
    messages = []
    report = submit(out, wait=True, poll_interval=0.01, env=env_for(openai_emulator), on_progress=messages.append)
    assert any("failed validation: line" in m for m in messages), messages
    assert report.failed == 6
    assert status(out, env_for(openai_emulator))["jobs"][0]["status"] == "failed"


def test_429_storm_is_survived(tmp_path, openai_emulator):
    out, ids = compile_spec(tmp_path)
    openai_emulator.faults.http("POST /v1/files", status=429, times=2, retry_after=0.01)
    openai_emulator.faults.http("GET /v1/batches/", status=503, times=2, retry_after=0.01)
    assert submit(out, wait=True, poll_interval=0.01, env=env_for(openai_emulator)).ok == 6
    assert all(openai_emulator.submissions(i) == 1 for i in ids)


def test_split_jobs_and_cancel(tmp_path, openai_emulator):
    out, ids = compile_spec(tmp_path, limits={"openai": {"max_requests": 4}})
    openai_emulator.batch_delay = 3600.0  # batches created now finish only when the clock is advanced
    env = env_for(openai_emulator)
    report = submit(out, env=env)  # no --wait: returns after creating the jobs
    assert report.live_jobs == 2 and report.pending == 6
    assert [j["status"] for j in status(out, env)["jobs"]] == ["submitted", "submitted"]
    assert len(datafast.pipeline.cancel(out, env)) == 2
    openai_emulator.advance(7200)  # cancelling -> cancelled
    openai_emulator.batch_delay = 0.01
    info = status(out, env)  # fetches the cancelled batches (no output: all marked cancelled)
    assert [j["status"] for j in info["jobs"]] == ["cancelled", "cancelled"]  # fetched: results of a cancelled batch
    assert info["to_send"] == 6
    after = submit(out, wait=True, poll_interval=0.01, env=env)  # resends what was cancelled
    assert after.ok == 6 and all(openai_emulator.submissions(i) == 2 for i in ids)


def test_missing_key_is_a_clear_error_before_sending(tmp_path, cli, openai_emulator):
    out, _ = compile_spec(tmp_path)
    env = {k: v for k, v in os.environ.items() if k != "OPENAI_API_KEY"}
    proc = subprocess.run([sys.executable, "-m", "datafast", "submit", str(out)], env=env,
                          capture_output=True, text=True, cwd=REPO)
    assert proc.returncode == 2
    assert "no API key: set OPENAI_API_KEY" in proc.stderr and "Traceback" not in proc.stderr
    assert openai_emulator.stats()["calls"] == {}
    missing = cli("submit", tmp_path / "nowhere")
    assert missing.exit_code == 2 and "run `datafast compile SPEC" in missing.stderr


@pytest.mark.parametrize("point", ["after-upload", "after-create", "while-polling", "after-download",
                                   "mid-results-write"])
def test_kill_at_any_point_then_resume_sends_each_request_once(tmp_path, openai_emulator, point):
    out, ids = compile_spec(tmp_path)
    env = {**os.environ, **env_for(openai_emulator)}
    killed = subprocess.run([sys.executable, "-m", "tests.killpoint", point, str(out)], env=env, cwd=REPO,
                            capture_output=True, text=True, timeout=60)
    assert killed.returncode == -9, killed.stderr
    resumed = subprocess.run([sys.executable, "-m", "tests.killpoint", "none", str(out)], env=env, cwd=REPO,
                             capture_output=True, text=True, timeout=60)
    assert resumed.returncode == 0, resumed.stderr
    assert [openai_emulator.submissions(i) for i in ids] == [1] * len(ids)
    assert len(openai_emulator.stats()["batches"]) == 1
    collected = collect_to(out)
    assert (collected.with_rows, collected.pending, collected.rejected) == (6, 0, 0)


def test_api_key_never_reaches_a_file_or_the_log(tmp_path, openai_emulator):
    out, _ = compile_spec(tmp_path)
    secret = "sk-test-" + "7" * 40
    env = {**os.environ, "OPENAI_API_KEY": secret, "OPENAI_BASE_URL": openai_emulator.base_url}
    proc = subprocess.run([sys.executable, "-m", "datafast", "-vv", "submit", str(out), "--wait",
                           "--poll-interval", "0.01"], env=env, cwd=REPO, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert secret not in proc.stdout + proc.stderr
    for path in out.rglob("*"):
        if path.is_file():
            assert secret.encode() not in path.read_bytes(), path


def test_parallel_collect_writes_the_same_files_as_single_process(tmp_path, openai_emulator, monkeypatch):
    from datafast import dataset

    out, ids = compile_spec(tmp_path)
    openai_emulator.faults.add("invalid_json", request_id=ids[4])
    submit(out, wait=True, poll_interval=0.01, env=env_for(openai_emulator))
    monkeypatch.setattr(dataset, "CHUNK", 2)  # 3 chunks over 2 workers
    single = collect_to(out, tmp_path / "single.jsonl")
    single_rejects = (out / "rejects.jsonl").read_bytes()
    monkeypatch.setattr(dataset, "PARALLEL_THRESHOLD", 1)
    parallel = collect_to(out, tmp_path / "parallel.jsonl")
    assert (tmp_path / "parallel.jsonl").read_bytes() == (tmp_path / "single.jsonl").read_bytes()
    assert (out / "rejects.jsonl").read_bytes() == single_rejects and single_rejects
    assert {k: v for k, v in parallel.as_dict().items() if k != "output"} == \
        {k: v for k, v in single.as_dict().items() if k != "output"}


def test_find_pages_through_the_vendor_list(tmp_path, openai_emulator):
    """A batch whose id was not recorded is found even when many newer batches push it past the first page."""
    from datafast.runtimes.base import Job
    from datafast.runtimes.openai import OpenAIRuntime

    out, ids = compile_spec(tmp_path)
    runtime = OpenAIRuntime(env_for(openai_emulator))
    path = next((out / "jobs" / "openai").glob("*.jsonl"))
    job = Job(name="openai-x-a1-0123abcd", runtime="openai", model="openai:gpt-4.1-mini", stage="generate",
              file=str(path), requests=6)
    vendor_id = runtime.create(job, path)
    for i in range(130):  # newer batches of someone else
        other = Job(name=f"other-{i}", runtime="openai", model="openai:gpt-4.1-mini", stage="generate",
                    file=str(path), requests=6, vendor={"input_file_id": job.vendor["input_file_id"]})
        runtime.create(other, path)
    calls_before = openai_emulator.stats()["calls"].get("GET /v1/batches", 0)
    assert runtime.find(Job(name=job.name, runtime="openai", model=job.model, stage="generate", file=str(path),
                            requests=6)) == vendor_id
    assert openai_emulator.stats()["calls"].get("GET /v1/batches", 0) - calls_before >= 2  # it paged


def test_find_adopts_only_a_batch_this_dir_created(tmp_path, openai_emulator):
    """The same spec compiled into two dirs makes jobs of the same name: a dir whose create failed must not take
    the other dir's batch over (its intent time, recorded before the create, is in the batch metadata)."""
    from datafast.runtimes.base import Job
    from datafast.runtimes.openai import OpenAIRuntime

    out, _ = compile_spec(tmp_path)
    runtime = OpenAIRuntime(env_for(openai_emulator))
    path = next((out / "jobs" / "openai").glob("*.jsonl"))

    def job(**vendor: str) -> Job:
        return Job(name="openai-generate-a1-0123abcd", runtime="openai", model="openai:gpt-4.1-mini",
                   stage="generate", file=str(path), requests=6, vendor=dict(vendor))

    runtime.create(job(intent_at="2026-01-01T00:00:00.000001+00:00"), path)  # the other dir's
    runtime.create(job(), path)  # an older datafast's: tagged without an intent, created now
    mine = "2099-06-01T00:00:00.000001+00:00"  # this dir's intent, after both
    assert runtime.find(job(intent_at=mine)) is None
    created = runtime.create(job(intent_at=mine), path)
    assert runtime.find(job(intent_at=mine)) == created
