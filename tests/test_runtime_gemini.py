"""The Gemini batch runtime against the Gemini emulator, through the real `google-genai` SDK."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

import datafast
from datafast.runtimes.base import Job, RuntimeConfigError, RuntimeFailure
from datafast.runtimes.gemini import GeminiRuntime
from tests.emulators import GeminiEmulator

REPO = Path(__file__).resolve().parent.parent
MODEL = "gemini:gemini-2.5-flash"
KEY = "gemini-test-secret"
SCHEMA = {"type": "object", "properties": {"text": {"type": "string"}}, "required": ["text"]}
CREATE = "POST /{v}/models/{model}:batchGenerateContent"
UPLOAD = "POST /upload/{v}/files"


def runtime(emu: GeminiEmulator) -> GeminiRuntime:
    return GeminiRuntime({"GEMINI_API_KEY": KEY, "GOOGLE_GEMINI_BASE_URL": emu.base_url})


def line(key: str, max_tokens: int = 512) -> dict[str, Any]:
    """A job-file line in the compiler's format."""
    return {"key": key, "request": {
        "contents": [{"parts": [{"text": f"Write text {key}"}], "role": "user"}],
        "systemInstruction": {"parts": [{"text": "You write short texts."}]},
        "generationConfig": {"maxOutputTokens": max_tokens, "responseJsonSchema": SCHEMA,
                             "responseMimeType": "application/json", "temperature": 0.7}}}


def job_file(tmp_path: Path, name: str, lines: list[dict[str, Any]]) -> tuple[Job, Path]:
    path = tmp_path / f"{name}.jsonl"
    path.write_text("".join(json.dumps(x) + "\n" for x in lines), encoding="utf-8")
    return Job(name=name, runtime="gemini", model=MODEL, stage="generate", file=path.name,
               requests=len(lines)), path


def submit(rt: GeminiRuntime, job: Job, path: Path) -> Job:
    job.vendor_id = rt.create(job, path)
    return job


def by_id(results: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {r["id"]: r for r in results}


@pytest.fixture(scope="module")
def compiled(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("compiled") / "out"
    datafast.compile(REPO / "tests/golden/classification.yaml", out)
    (path,) = (out / "jobs/gemini").glob("*.jsonl")
    return path


def test_missing_key_is_a_config_error() -> None:
    with pytest.raises(RuntimeConfigError, match="GEMINI_API_KEY or GOOGLE_API_KEY"):
        GeminiRuntime({})
    assert GeminiRuntime({"GOOGLE_API_KEY": "x"}).key() == "x"


@pytest.mark.emulator(batch_delay=100)
def test_lifecycle_of_a_compiled_job_file(gemini_emulator: GeminiEmulator, compiled: Path, tmp_path: Path) -> None:
    emu, rt = gemini_emulator, runtime(gemini_emulator)
    keys = [json.loads(x)["key"] for x in compiled.read_text("utf-8").splitlines()]
    job = Job(name="gemini-generate-a1", runtime="gemini", model=MODEL, stage="generate", file=compiled.name,
              requests=len(keys))
    submit(rt, job, compiled)
    assert job.vendor_id is not None and job.vendor_id.startswith("batches/")
    assert job.vendor["input_file"].startswith("files/")

    poll = rt.poll(job)
    assert (poll.state, poll.vendor_status, poll.total) == ("running", "pending", len(keys))
    emu.advance(150)
    assert (rt.poll(job).state, rt.poll(job).vendor_status) == ("running", "running")
    emu.advance(100)
    poll = rt.poll(job)
    assert (poll.state, poll.vendor_status, poll.total) == ("ended", "succeeded", len(keys))
    assert job.vendor["output_file"].startswith("files/")

    results = list(rt.fetch(job, tmp_path / "raw"))
    assert sorted(r["id"] for r in results) == sorted(keys)
    for r in results:
        assert r["status"] == "ok" and r["error"] is None and r["finish_reason"] == "STOP"
        assert r["runtime"] == "gemini" and r["model"] == MODEL
        assert r["usage"]["input_tokens"] > 0 and r["usage"]["output_tokens"] > 0
        assert json.loads(r["text"])["items"]
    raw = (tmp_path / "raw/output.jsonl").read_text("utf-8").splitlines()
    assert sorted(json.loads(x)["key"] for x in raw) == sorted(keys)
    assert [p.name for p in (tmp_path / "raw").iterdir()] == ["output.jsonl"]  # no partial download left
    stats = emu.stats()
    assert [(b["id"], b["mode"], b["model"]) for b in stats["batches"]] == [(job.vendor_id, "file", "gemini-2.5-flash")]
    assert all(emu.submissions(k) == 1 for k in keys)
    assert KEY not in json.dumps(job.vendor) and KEY not in "\n".join(raw)


ERRORS = {  # key -> (injected HTTP status, expected kind, retryable)
    "e-429": (429, "rate_limit", True),
    "e-500": (500, "server_error", True),
    "e-503": (503, "server_error", True),
    "e-504": (504, "timeout", True),
    "e-400": (400, "invalid_request", False),
    "e-403": (403, "auth", False),
    "e-404": (404, "not_found", False),
}


def test_per_request_outcomes_map_to_error_kinds(gemini_emulator: GeminiEmulator, tmp_path: Path) -> None:
    emu, rt = gemini_emulator, runtime(gemini_emulator)
    for key, (status, _, _) in ERRORS.items():
        emu.faults.error(key, status=status)
    emu.faults.add("truncated", request_id="cut")
    emu.faults.add("refusal", request_id="unsafe")
    bad = line("bad")
    bad["request"]["contents"] = []  # refused by the API: an error line
    job, path = job_file(tmp_path, "errors", [*(line(k) for k in ERRORS), line("ok"), line("cut"), line("unsafe"), bad])
    submit(rt, job, path)
    emu.advance(10)
    assert rt.poll(job).state == "ended"
    results = by_id(list(rt.fetch(job, tmp_path / "raw")))
    assert len(results) == job.requests
    for key, (_, kind, retryable) in ERRORS.items():
        assert results[key]["status"] == "error"
        assert (results[key]["error"]["kind"], results[key]["error"]["retryable"]) == (kind, retryable), key
    assert results["ok"]["status"] == "ok"
    cut = results["cut"]
    assert (cut["error"]["kind"], cut["finish_reason"], cut["error"]["retryable"]) == ("truncated", "MAX_TOKENS", False)
    assert cut["usage"]["output_tokens"] > 0
    unsafe = results["unsafe"]
    assert (unsafe["error"]["kind"], unsafe["finish_reason"], unsafe["text"]) == ("content_filter", "SAFETY", None)
    assert results["bad"]["error"]["kind"] == "invalid_request" and "contents" in results["bad"]["error"]["message"]


def fetch_lines(tmp_path: Path, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Fetch an output file of `rows` through a fake download: shapes of the real API the emulator never sends."""
    rt = GeminiRuntime({"GEMINI_API_KEY": "x", "GOOGLE_GEMINI_BASE_URL": "http://127.0.0.1:9"})
    content = "".join(json.dumps(r) + "\n" for r in rows).encode()
    rt.client.files.download = lambda *, file, destination: Path(destination).write_bytes(content)  # type: ignore[method-assign]
    job = Job(name="j", runtime="gemini", model=MODEL, stage="generate", file="f", requests=len(rows),
              vendor={"output_file": "files/out"})
    return list(rt.fetch(job, tmp_path / "raw"))


@pytest.mark.parametrize(("error", "kind"), [
    ({"code": 8, "message": "quota"}, "rate_limit"),  # google.rpc.Status: gRPC codes
    ({"code": 14, "message": "try later"}, "server_error"),
    ({"code": 4, "message": "slow"}, "timeout"),
    ({"code": 3, "message": "bad"}, "invalid_request"),
    ({"code": 7, "message": "denied"}, "auth"),
    ({"code": 400, "message": "x", "status": "RESOURCE_EXHAUSTED"}, "rate_limit"),  # the status name wins
    ({"code": 500, "message": "x"}, "server_error"),
    ({"message": "no code"}, "invalid_request"),
])
def test_error_lines_with_grpc_codes_or_status_names(error: dict[str, Any], kind: str, tmp_path: Path) -> None:
    """Real batch output carries google.rpc.Status errors; the emulator sends HTTP codes with status names."""
    (r,) = fetch_lines(tmp_path, [{"key": "k", "error": error}])
    assert (r["id"], r["status"], r["error"]["kind"]) == ("k", "error", kind)


def test_thoughts_are_not_the_answer_but_are_billed(tmp_path: Path) -> None:
    thinking = {"key": "t", "response": {
        "candidates": [{"content": {"parts": [{"text": "Let me think.", "thought": True}, {"text": '{"text": '},
                                              {"text": '"hi"}'}], "role": "model"}, "finishReason": "STOP"}],
        "usageMetadata": {"promptTokenCount": 10, "candidatesTokenCount": 5, "thoughtsTokenCount": 20}}}
    blocked = {"key": "b", "response": {"promptFeedback": {"blockReason": "PROHIBITED_CONTENT"},
                                        "usageMetadata": {"promptTokenCount": 7}}}
    results = by_id(fetch_lines(tmp_path, [thinking, blocked]))
    assert results["t"]["status"] == "ok" and json.loads(results["t"]["text"]) == {"text": "hi"}
    assert results["t"]["usage"] == {"input_tokens": 10, "output_tokens": 25}
    assert (results["b"]["error"]["kind"], results["b"]["finish_reason"]) == ("content_filter", "PROHIBITED_CONTENT")


def test_own_limit_truncates_and_raise_max_tokens_fixes_it(gemini_emulator: GeminiEmulator, tmp_path: Path) -> None:
    emu, rt = gemini_emulator, runtime(gemini_emulator)
    job, path = job_file(tmp_path, "small", [line("tiny", max_tokens=2)])
    submit(rt, job, path)
    emu.advance(10)
    rt.poll(job)
    (first,) = rt.fetch(job, tmp_path / "raw1")
    assert first["error"]["kind"] == "truncated"

    raised = GeminiRuntime.raise_max_tokens(json.loads(path.read_text("utf-8")), 4096)
    assert raised["request"]["generationConfig"]["maxOutputTokens"] == 4096
    retry, retry_path = job_file(tmp_path, "small-a2", [raised])
    submit(rt, retry, retry_path)
    emu.advance(10)
    rt.poll(retry)
    (second,) = rt.fetch(retry, tmp_path / "raw2")
    assert second["status"] == "ok" and second["id"] == "tiny"


@pytest.mark.emulator(batch_delay=100)
def test_cancel_midway_gives_partial_results(gemini_emulator: GeminiEmulator, tmp_path: Path) -> None:
    emu, rt = gemini_emulator, runtime(gemini_emulator)
    job, path = job_file(tmp_path, "cancel", [line(f"c-{i}") for i in range(6)])
    submit(rt, job, path)
    emu.advance(150)  # half-way through RUNNING
    rt.cancel(job)
    assert rt.poll(job).state == "running"  # cancelling
    emu.advance(500)
    poll = rt.poll(job)
    assert (poll.state, poll.vendor_status) == ("ended", "cancelled")
    results = list(rt.fetch(job, tmp_path / "raw"))
    assert 0 < len(results) < 6 and all(r["status"] == "ok" for r in results)  # the rest: missing, not failed
    with pytest.raises(RuntimeFailure, match="batch cancel failed"):  # already ended
        rt.cancel(job)


@pytest.mark.emulator(batch_delay=100)
def test_cancelled_before_any_output_yields_nothing(gemini_emulator: GeminiEmulator, tmp_path: Path) -> None:
    emu, rt = gemini_emulator, runtime(gemini_emulator)
    job, path = job_file(tmp_path, "early", [line("a"), line("b")])
    submit(rt, job, path)
    rt.cancel(job)  # still pending
    emu.advance(500)
    assert rt.poll(job).vendor_status == "cancelled"
    assert list(rt.fetch(job, tmp_path / "raw")) == []
    job.vendor["output_file"] = None  # the vendor may give no output file at all
    assert list(rt.fetch(job, tmp_path / "raw2")) == []
    assert not (tmp_path / "raw2").exists()


def test_expired_batch_has_partial_results(gemini_emulator: GeminiEmulator, tmp_path: Path) -> None:
    emu, rt = gemini_emulator, runtime(gemini_emulator)
    emu.faults.add("expire", completed=2)
    job, path = job_file(tmp_path, "expire", [line(f"x-{i}") for i in range(5)])
    submit(rt, job, path)
    emu.advance(10)
    poll = rt.poll(job)
    assert (poll.state, poll.vendor_status) == ("ended", "expired")
    results = list(rt.fetch(job, tmp_path / "raw"))
    assert len(results) == 2 and all(r["status"] == "ok" for r in results)


def test_failed_batch_is_reported_failed(gemini_emulator: GeminiEmulator, tmp_path: Path) -> None:
    emu, rt = gemini_emulator, runtime(gemini_emulator)
    emu.faults.add("validation_failure")
    job, path = job_file(tmp_path, "invalid", [line("a")])
    submit(rt, job, path)
    emu.advance(10)
    poll = rt.poll(job)
    assert (poll.state, poll.vendor_status) == ("failed", "failed") and poll.errors


def test_find_recovers_a_batch_by_display_name(gemini_emulator: GeminiEmulator, tmp_path: Path) -> None:
    emu, rt = gemini_emulator, runtime(gemini_emulator)
    lost, lost_path = job_file(tmp_path, "gemini-generate-a1", [line("a")])
    other, other_path = job_file(tmp_path, "gemini-generate-a2", [line("b")])
    created = rt.create(lost, lost_path)  # a kill here: the id never reached state.json
    submit(rt, other, other_path)
    assert rt.find(lost) == created and rt.find(other) == other.vendor_id
    assert rt.find(Job(name="never-created", runtime="gemini", model=MODEL, stage="s", file="f", requests=1)) is None
    assert len(emu.stats()["batches"]) == 2  # find created nothing


def test_retried_create_reuses_the_upload(gemini_emulator: GeminiEmulator, tmp_path: Path) -> None:
    emu, rt = gemini_emulator, runtime(gemini_emulator)
    emu.faults.http(r"POST /v1beta/models/.*:batchGenerateContent", status=400, times=1)
    job, path = job_file(tmp_path, "retry", [line("a"), line("b")])
    with pytest.raises(RuntimeFailure, match="gemini job retry: batch create failed"):  # a 400 is not retried
        rt.create(job, path)
    uploaded = job.vendor["input_file"]
    submit(rt, job, path)
    assert job.vendor["input_file"] == uploaded
    stats = emu.stats()
    assert stats["calls"][UPLOAD] == 2  # one resumable upload: start + final chunk
    assert stats["calls"][CREATE] == 2 and len(stats["batches"]) == 1


def test_rate_limited_create_is_retried(gemini_emulator: GeminiEmulator, tmp_path: Path) -> None:
    emu, rt = gemini_emulator, runtime(gemini_emulator)
    emu.faults.http(r"POST /v1beta/models/.*:batchGenerateContent", status=429, times=1)
    job, path = job_file(tmp_path, "limited", [line("a")])
    submit(rt, job, path)  # the SDK waits ~1-2 s (retry_options backoff; it ignores retry-after) and retries
    stats = emu.stats()
    assert stats["calls"][CREATE] == 2
    assert [b["id"] for b in stats["batches"]] == [job.vendor_id] and emu.submissions("a") == 1


def test_vendor_errors_surface_as_runtime_failures(gemini_emulator: GeminiEmulator, tmp_path: Path) -> None:
    rt = runtime(gemini_emulator)
    job, _ = job_file(tmp_path, "ghost", [line("a")])
    job.vendor_id = "batches/doesnotexist"
    with pytest.raises(RuntimeFailure, match="batch get failed") as exc:
        rt.poll(job)
    assert KEY not in str(exc.value)
    job.vendor["output_file"] = "files/doesnotexist"
    with pytest.raises(RuntimeFailure, match="output download failed"):
        list(rt.fetch(job, tmp_path / "raw"))
    assert list((tmp_path / "raw").iterdir()) == []
