"""The Anthropic batch runtime against the Anthropic emulator, through the real `anthropic` SDK."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

import datafast
from datafast.runtimes.anthropic import AnthropicRuntime
from datafast.runtimes.base import Job, RuntimeConfigError, RuntimeFailure
from tests.emulators import AnthropicEmulator

REPO = Path(__file__).resolve().parent.parent
MODEL = "anthropic:claude-haiku-4-5"
KEY = "sk-ant-test-secret"
SCHEMA = {"type": "object", "properties": {"text": {"type": "string"}}, "required": ["text"],
          "additionalProperties": False}


def runtime(emu: AnthropicEmulator) -> AnthropicRuntime:
    return AnthropicRuntime({"ANTHROPIC_API_KEY": KEY, "ANTHROPIC_BASE_URL": emu.base_url})


def line(rid: str, max_tokens: int = 512) -> dict[str, Any]:
    """A job-file line in the compiler's format."""
    return {"custom_id": rid, "params": {
        "model": "claude-haiku-4-5", "max_tokens": max_tokens, "system": "You write short texts.",
        "messages": [{"role": "user", "content": f"Write text {rid}"}],
        "output_config": {"format": {"type": "json_schema", "schema": SCHEMA}}, "temperature": 0.7}}


def job_file(tmp_path: Path, name: str, lines: list[dict[str, Any]]) -> tuple[Job, Path]:
    path = tmp_path / f"{name}.jsonl"
    path.write_text("".join(json.dumps(x) + "\n" for x in lines), encoding="utf-8")
    job = Job(name=name, runtime="anthropic", model=MODEL, stage="generate", file=path.name,
              requests=len(lines), vendor={"intent_at": now_iso()})
    return job, path


def now_iso(delta: float = 0) -> str:
    return (datetime.now(timezone.utc) + timedelta(seconds=delta)).isoformat()


def submit(rt: AnthropicRuntime, job: Job, path: Path) -> Job:
    job.vendor_id = rt.create(job, path)
    return job


def by_id(results: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {r["id"]: r for r in results}


@pytest.fixture(scope="module")
def compiled(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("compiled") / "out"
    datafast.compile(REPO / "tests/golden/classification.yaml", out)
    (path,) = (out / "jobs/anthropic").glob("*.jsonl")
    return path


def test_missing_key_is_a_config_error() -> None:
    with pytest.raises(RuntimeConfigError, match="ANTHROPIC_API_KEY"):
        AnthropicRuntime({})


@pytest.mark.emulator(batch_delay=100)
def test_lifecycle_of_a_compiled_job_file(anthropic_emulator: AnthropicEmulator, compiled: Path,
                                          tmp_path: Path) -> None:
    emu, rt = anthropic_emulator, runtime(anthropic_emulator)
    ids = [json.loads(x)["custom_id"] for x in compiled.read_text("utf-8").splitlines()]
    job = Job(name="anthropic-generate-a1", runtime="anthropic", model=MODEL, stage="generate",
              file=compiled.name, requests=len(ids))
    submit(rt, job, compiled)
    assert job.vendor_id is not None and job.vendor_id.startswith("msgbatch_")

    poll = rt.poll(job)
    assert (poll.state, poll.vendor_status, poll.total) == ("running", "in_progress", len(ids))
    emu.advance(1000)
    poll = rt.poll(job)
    assert (poll.state, poll.done, poll.failed, poll.total) == ("ended", len(ids), 0, len(ids))

    results = list(rt.fetch(job, tmp_path / "raw"))
    assert sorted(r["id"] for r in results) == sorted(ids)
    for r in results:
        assert r["status"] == "ok" and r["error"] is None and r["finish_reason"] == "end_turn"
        assert r["runtime"] == "anthropic" and r["model"] == MODEL
        assert r["usage"]["input_tokens"] > 0 and r["usage"]["output_tokens"] > 0
        assert json.loads(r["text"])["items"]
    raw = (tmp_path / "raw/results.jsonl").read_text("utf-8").splitlines()
    assert sorted(json.loads(x)["custom_id"] for x in raw) == sorted(ids)
    assert [p.name for p in (tmp_path / "raw").iterdir()] == ["results.jsonl"]  # no partial download left
    stats = emu.stats()
    assert len(stats["batches"]) == 1 and all(emu.submissions(i) == 1 for i in ids)
    assert KEY not in json.dumps(job.vendor) and KEY not in "\n".join(raw)


ERRORS = {  # custom_id -> (injected HTTP status, expected kind, retryable)
    "e-429": (429, "rate_limit", True),
    "e-529": (529, "server_error", True),
    "e-500": (500, "server_error", True),
    "e-504": (504, "timeout", True),
    "e-400": (400, "invalid_request", False),
    "e-401": (401, "auth", False),
    "e-402": (402, "auth", False),
    "e-403": (403, "auth", False),
    "e-404": (404, "not_found", False),
}


def test_per_request_outcomes_map_to_error_kinds(anthropic_emulator: AnthropicEmulator, tmp_path: Path) -> None:
    emu, rt = anthropic_emulator, runtime(anthropic_emulator)
    for rid, (status, _, _) in ERRORS.items():
        emu.faults.error(rid, status=status)
    emu.faults.add("truncated", request_id="cut")
    emu.faults.add("refusal", request_id="no")
    bad = line("bad")
    bad["params"]["top_p"] = 0.9  # with temperature: the API refuses the params (an errored result)
    job, path = job_file(tmp_path, "errors", [*(line(r) for r in ERRORS), line("ok"), line("cut"), line("no"), bad])
    submit(rt, job, path)
    emu.advance(10)
    assert rt.poll(job).state == "ended"
    results = by_id(list(rt.fetch(job, tmp_path / "raw")))
    assert len(results) == job.requests
    for rid, (_, kind, retryable) in ERRORS.items():
        assert results[rid]["status"] == "error"
        assert (results[rid]["error"]["kind"], results[rid]["error"]["retryable"]) == (kind, retryable), rid
    assert results["ok"]["status"] == "ok"
    assert results["cut"]["error"]["kind"] == "truncated" and results["cut"]["finish_reason"] == "max_tokens"
    assert results["cut"]["usage"]["output_tokens"] > 0 and not results["cut"]["error"]["retryable"]
    assert results["no"]["error"]["kind"] == "refusal" and results["no"]["finish_reason"] == "refusal"
    assert results["bad"]["error"]["kind"] == "invalid_request" and "top_p" in results["bad"]["error"]["message"]
    poll = rt.poll(job)
    assert (poll.done, poll.failed) == (3, len(ERRORS) + 1)  # truncated and refused answers "succeeded"


def test_params_refused_while_processing_are_terminal_results(anthropic_emulator: AnthropicEmulator,
                                                               tmp_path: Path) -> None:
    emu, rt = anthropic_emulator, runtime(anthropic_emulator)
    too_long, unknown, empty = line("too-long", max_tokens=64_001), line("unknown"), line("empty")
    unknown["params"]["model"] = "claude-nope-9"
    empty["params"]["messages"] = [{"role": "user", "content": ""}]
    job, path = job_file(tmp_path, "invalid", [line("ok-0"), too_long, unknown, empty, line("ok-1")])
    submit(rt, job, path)  # accepted: the API checks each request's params only while processing the batch
    emu.advance(10)
    poll = rt.poll(job)
    assert (poll.state, poll.done, poll.failed) == ("ended", 2, 3)
    results = by_id(list(rt.fetch(job, tmp_path / "raw")))
    assert results["ok-0"]["status"] == results["ok-1"]["status"] == "ok"
    error = results["too-long"]["error"]
    assert (error["kind"], error["retryable"]) == ("invalid_request", False)
    assert error["message"] == ("invalid_request_error: max_tokens: 64001 > 64000, which is the maximum allowed "
                                "number of output tokens for claude-haiku-4-5-20251001")  # the vendor's words
    assert results["empty"]["error"]["kind"] == "invalid_request" and "non-empty" in results["empty"]["error"]["message"]
    assert results["unknown"]["error"] == {"kind": "not_found", "message": "not_found_error: model: claude-nope-9",
                                           "retryable": False}
    assert all(emu.submissions(rid) == 1 for rid in results)


def test_own_limit_truncates_and_raise_max_tokens_fixes_it(anthropic_emulator: AnthropicEmulator,
                                                           tmp_path: Path) -> None:
    emu, rt = anthropic_emulator, runtime(anthropic_emulator)
    job, path = job_file(tmp_path, "small", [line("tiny", max_tokens=2)])
    submit(rt, job, path)
    emu.advance(10)
    rt.poll(job)
    (first,) = rt.fetch(job, tmp_path / "raw1")
    assert first["error"]["kind"] == "truncated"

    raised = AnthropicRuntime.raise_max_tokens(json.loads(path.read_text("utf-8")), 4096)
    assert raised["params"]["max_tokens"] == 4096
    retry, retry_path = job_file(tmp_path, "small-a2", [raised])
    submit(rt, retry, retry_path)
    emu.advance(10)
    rt.poll(retry)
    (second,) = rt.fetch(retry, tmp_path / "raw2")
    assert second["status"] == "ok" and second["id"] == "tiny"


@pytest.mark.emulator(batch_delay=100)
def test_cancel_midway_gives_partial_results_and_cancelled(anthropic_emulator: AnthropicEmulator,
                                                           tmp_path: Path) -> None:
    emu, rt = anthropic_emulator, runtime(anthropic_emulator)
    job, path = job_file(tmp_path, "cancel", [line(f"c-{i}") for i in range(6)])
    submit(rt, job, path)
    with pytest.raises(RuntimeFailure, match="results download"):  # no results before the batch ends
        list(rt.fetch(job, tmp_path / "early"))
    emu.advance(50)  # half-way through processing
    rt.cancel(job)
    poll = rt.poll(job)
    assert poll.state == "running" and "cancel" in poll.vendor_status
    emu.advance(500)
    poll = rt.poll(job)
    assert poll.state == "ended" and poll.vendor_status == "ended, cancel requested"
    results = list(rt.fetch(job, tmp_path / "raw"))
    ok = [r for r in results if r["status"] == "ok"]
    cancelled = [r for r in results if r["status"] == "error"]
    assert len(results) == 6 and 0 < len(ok) < 6
    assert all(r["error"]["kind"] == "cancelled" and r["error"]["retryable"] for r in cancelled)
    assert (poll.done, poll.failed) == (len(ok), len(cancelled))
    with pytest.raises(RuntimeFailure, match="batch cancel"):  # an ended batch cannot be cancelled
        rt.cancel(job)


def test_expired_batch_reports_the_unfinished_requests_expired(anthropic_emulator: AnthropicEmulator,
                                                               tmp_path: Path) -> None:
    emu, rt = anthropic_emulator, runtime(anthropic_emulator)
    emu.faults.add("expire", completed=2)
    job, path = job_file(tmp_path, "expire", [line(f"x-{i}") for i in range(5)])
    submit(rt, job, path)
    emu.advance(10)
    poll = rt.poll(job)
    assert (poll.state, poll.done, poll.failed) == ("ended", 2, 3)
    results = list(rt.fetch(job, tmp_path / "raw"))
    assert sorted(r["status"] for r in results) == ["error"] * 3 + ["ok"] * 2
    assert all(r["error"]["kind"] == "expired" and r["error"]["retryable"] for r in results if r["error"])


def test_find_recovers_the_one_batch_created_after_the_intent(anthropic_emulator: AnthropicEmulator,
                                                              tmp_path: Path) -> None:
    emu, rt = anthropic_emulator, runtime(anthropic_emulator)
    older, older_path = job_file(tmp_path, "older", [line(f"o-{i}") for i in range(3)])
    submit(rt, older, older_path)  # same size, but created before the intent below
    emu.advance(3600)  # the vendor clock: an hour later
    job, path = job_file(tmp_path, "lost", [line(f"l-{i}") for i in range(3)])
    job.vendor["intent_at"] = now_iso(1800)
    created = rt.create(job, path)  # a kill here: the id never reached state.json
    other, other_path = job_file(tmp_path, "other", [line(f"p-{i}") for i in range(2)])
    submit(rt, other, other_path)  # after the intent, but another size
    assert rt.find(job) == created
    assert len(emu.stats()["batches"]) == 3  # find created nothing

    job.vendor.pop("intent_at")
    assert rt.find(job) is None  # no intent time: cannot tell


def test_find_gives_up_when_two_batches_match(anthropic_emulator: AnthropicEmulator, tmp_path: Path) -> None:
    rt = runtime(anthropic_emulator)
    job, path = job_file(tmp_path, "lost", [line(f"l-{i}") for i in range(3)])
    twin, twin_path = job_file(tmp_path, "twin", [line(f"t-{i}") for i in range(3)])
    rt.create(job, path)
    submit(rt, twin, twin_path)
    assert rt.find(job) is None


def test_rate_limited_create_is_retried_by_the_sdk(anthropic_emulator: AnthropicEmulator, tmp_path: Path) -> None:
    emu, rt = anthropic_emulator, runtime(anthropic_emulator)
    emu.faults.http("POST /v1/messages/batches$", status=429, times=2)
    job, path = job_file(tmp_path, "limited", [line("r-0"), line("r-1")])
    submit(rt, job, path)
    stats = emu.stats()
    assert stats["calls"]["POST /v1/messages/batches"] == 3
    assert len(stats["batches"]) == 1 and stats["batches"][0]["id"] == job.vendor_id


def test_persistent_errors_surface_as_runtime_failures(anthropic_emulator: AnthropicEmulator,
                                                       tmp_path: Path) -> None:
    emu, rt = anthropic_emulator, runtime(anthropic_emulator)
    job, path = job_file(tmp_path, "doomed", [line("r-0")])
    emu.faults.http("POST /v1/messages/batches$", status=429, times=None)
    with pytest.raises(RuntimeFailure, match="anthropic job doomed: batch create failed") as exc:
        rt.create(job, path)
    assert KEY not in str(exc.value)
    assert emu.stats()["calls"]["POST /v1/messages/batches"] == 4  # 1 + max_retries
    emu.faults.clear()
    emu.faults.add("validation_failure", message="requests.0: bad envelope")
    with pytest.raises(RuntimeFailure, match="bad envelope"):  # a 400 is not retried
        rt.create(job, path)
    assert emu.stats()["batches"] == []
    job.vendor_id = "msgbatch_01nonexistent"
    with pytest.raises(RuntimeFailure, match="batch retrieve failed"):
        rt.poll(job)
