"""The Gemini batch runtime against the Gemini emulator, through the real `google-genai` SDK."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

import datafast
from datafast.runtimes.base import Job, RuntimeConfigError, RuntimeFailure
from datafast.runtimes.gemini import INLINE_CONFIG as GEMINI_INLINE_CONFIG
from datafast.runtimes.gemini import GeminiRuntime
from tests.emulators import GeminiEmulator

REPO = Path(__file__).resolve().parent.parent
MODEL = "gemini:gemini-2.5-flash"
KEY = "gemini-test-secret"
SCHEMA = {"type": "object", "properties": {"text": {"type": "string"}}, "required": ["text"]}
CREATE = "POST /{v}/models/{model}:batchGenerateContent"
UPLOAD = "POST /upload/{v}/files"


MODES = pytest.mark.parametrize("mode", ["file", "inline"])


def runtime(emu: GeminiEmulator, mode: str = "inline") -> GeminiRuntime:
    """A runtime on the emulator; `mode="file"` uploads every job (small test jobs go inline by default)."""
    rt = GeminiRuntime({"GEMINI_API_KEY": KEY, "GOOGLE_GEMINI_BASE_URL": emu.base_url})
    if mode == "file":
        rt.INLINE_MAX_BYTES = 0  # type: ignore[misc]
    return rt


def sent_batches(emu: GeminiEmulator, monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """The `batch` of every batchGenerateContent body the emulator receives, as sent on the wire."""
    bodies: list[dict[str, Any]] = []
    original = emu.create_batch

    def create_batch(req: Any) -> Any:
        bodies.append(json.loads(req.body)["batch"])
        return original(req)

    monkeypatch.setattr(emu, "create_batch", create_batch)  # routes are looked up on the instance
    return bodies


def inline_body(name: str, lines: list[dict[str, Any]]) -> dict[str, Any]:
    """The batch body the REST API documents for inline requests: each line's request, its key as metadata."""
    requests = [{"request": x["request"], "metadata": {"key": x["key"]}} for x in lines]
    return {"displayName": name, "inputConfig": {"requests": {"requests": requests}}}


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


@MODES
@pytest.mark.emulator(batch_delay=100)
def test_lifecycle_of_a_compiled_job_file(gemini_emulator: GeminiEmulator, compiled: Path, tmp_path: Path,
                                          mode: str, monkeypatch: pytest.MonkeyPatch) -> None:
    emu, rt = gemini_emulator, runtime(gemini_emulator, mode)
    sent = sent_batches(emu, monkeypatch)
    lines = [json.loads(x) for x in compiled.read_text("utf-8").splitlines()]
    keys = [x["key"] for x in lines]
    job = Job(name="gemini-generate-a1", runtime="gemini", model=MODEL, stage="generate", file=compiled.name,
              requests=len(keys))
    submit(rt, job, compiled)
    assert job.vendor_id is not None and job.vendor_id.startswith("batches/")
    assert job.vendor["input_mode"] == mode
    if mode == "file":
        assert job.vendor["input_file"].startswith("files/")
        assert sent == [{"displayName": job.name, "inputConfig": {"fileName": job.vendor["input_file"]}}]
    else:  # no upload; the wire body is the documented one, each request exactly the job file's
        assert "input_file" not in job.vendor and UPLOAD not in emu.stats()["calls"]
        assert sent == [inline_body(job.name, lines)]

    poll = rt.poll(job)
    assert (poll.state, poll.vendor_status, poll.total) == ("running", "pending", len(keys))
    emu.advance(150)
    assert (rt.poll(job).state, rt.poll(job).vendor_status) == ("running", "running")
    emu.advance(100)
    poll = rt.poll(job)
    assert (poll.state, poll.vendor_status, poll.total, poll.done, poll.failed) == (
        "ended", "succeeded", len(keys), len(keys), 0)  # counts: the batchStats the SDK's BatchJob drops
    assert (job.vendor["output_file"] or "").startswith("files/") == (mode == "file")

    results = list(rt.fetch(job, tmp_path / "raw"))
    assert sorted(r["id"] for r in results) == sorted(keys)
    for r in results:
        assert r["status"] == "ok" and r["error"] is None and r["finish_reason"] == "STOP"
        assert r["runtime"] == "gemini" and r["model"] == MODEL
        assert r["usage"]["input_tokens"] > 0 and r["usage"]["output_tokens"] > 0
        assert json.loads(r["text"])["items"]
    raw = (tmp_path / "raw/output.jsonl").read_text("utf-8").splitlines()
    assert sorted(json.loads(x)["key"] for x in raw) == sorted(keys)
    assert all(set(json.loads(x)) == {"key", "response"} for x in raw)  # one line shape for both modes
    assert [p.name for p in (tmp_path / "raw").iterdir()] == ["output.jsonl"]  # no partial download left
    stats = emu.stats()
    assert [(b["id"], b["mode"], b["model"]) for b in stats["batches"]] == [(job.vendor_id, mode, "gemini-2.5-flash")]
    assert all(emu.submissions(k) == 1 for k in keys)
    assert KEY not in json.dumps(job.vendor) and KEY not in "\n".join(raw)


def test_mode_is_chosen_by_job_file_size(gemini_emulator: GeminiEmulator, tmp_path: Path) -> None:
    assert GeminiRuntime.INLINE_MAX_BYTES == 10 * 1024 * 1024  # half the API's 20 MB request limit
    emu, rt = gemini_emulator, runtime(gemini_emulator)
    small, small_path = job_file(tmp_path, "small", [line("a"), line("b")])
    big, big_path = job_file(tmp_path, "big", [line("c"), line("d-a-longer-key")])
    rt.INLINE_MAX_BYTES = small_path.stat().st_size  # type: ignore[misc]  # at most the limit: inline
    assert big_path.stat().st_size > rt.INLINE_MAX_BYTES
    submit(rt, small, small_path)
    assert emu.stats()["batches"][0]["mode"] == "inline" and UPLOAD not in emu.stats()["calls"]
    submit(rt, big, big_path)
    stats = emu.stats()
    assert [(b["id"], b["mode"]) for b in stats["batches"]] == [(small.vendor_id, "inline"), (big.vendor_id, "file")]
    assert stats["calls"][UPLOAD] == 2 and emu.contents[big.vendor["input_file"].removeprefix("files/")] == \
        big_path.read_bytes()  # file mode sends the job file as it is
    assert (small.vendor["input_mode"], big.vendor["input_mode"]) == ("inline", "file")


@pytest.mark.parametrize(("request_change", "why"), [
    ({"generationConfig": {"thinkingConfig": {"thinkingBudget": 0}}}, "the SDK would send thinking_budget"),
    ({"contents": [{"role": "user", "parts": [{"inlineData": {"mimeType": "image/png", "data": "iVBO"}}]}]},
     "the SDK would re-encode the bytes"),
    ({"tools": [{"googleSearch": {}}]}, "not a field known to go inline unchanged"),
    ({"contents": []}, "refused by the SDK before sending: the API must judge this line alone"),
])
def test_requests_that_cannot_go_inline_unchanged_go_in_a_file(
        gemini_emulator: GeminiEmulator, tmp_path: Path, request_change: dict[str, Any], why: str) -> None:
    emu, rt = gemini_emulator, runtime(gemini_emulator)
    odd = line("odd")
    odd["request"]["generationConfig"].update(request_change.pop("generationConfig", {}))
    odd["request"].update(request_change)
    job, path = job_file(tmp_path, "odd", [line("a"), odd])
    submit(rt, job, path)
    assert job.vendor["input_mode"] == "file", why
    assert [b["mode"] for b in emu.stats()["batches"]] == ["file"]
    emu.advance(10)
    rt.poll(job)
    assert by_id(list(rt.fetch(job, tmp_path / "raw")))["a"]["status"] == "ok"


def test_every_field_allowed_inline_reaches_the_wire_unchanged(gemini_emulator: GeminiEmulator, tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    emu, rt = gemini_emulator, runtime(gemini_emulator)
    sent = sent_batches(emu, monkeypatch)
    full = line("full")
    full["request"]["generationConfig"].update(topP=0.9, seed=7, stopSequences=["END"], candidateCount=1,
                                               presencePenalty=0.5, frequencyPenalty=0.25)
    full["request"]["contents"].append({"role": "model", "parts": [{"text": "ok"}, {"text": "and"}]})
    bare = {"key": "bare", "request": {"contents": [{"parts": [{"text": "hi"}]}]}}  # no config, role, system
    lines = [full, bare]
    assert {*full["request"]["generationConfig"]} == set(GEMINI_INLINE_CONFIG)
    job, path = job_file(tmp_path, "full", lines)
    submit(rt, job, path)
    assert job.vendor["input_mode"] == "inline" and sent == [inline_body("full", lines)]
    assert json.dumps(sent[0]["inputConfig"]["requests"]["requests"][0]["request"], sort_keys=True) == \
        json.dumps(full["request"], sort_keys=True)  # same JSON text, not only equal values (1 vs 1.0)


ERRORS = {  # key -> (injected HTTP status, expected kind, retryable)
    "e-429": (429, "rate_limit", True),
    "e-500": (500, "server_error", True),
    "e-503": (503, "server_error", True),
    "e-504": (504, "timeout", True),
    "e-400": (400, "invalid_request", False),
    "e-403": (403, "auth", False),
    "e-404": (404, "not_found", False),
}


@MODES
def test_per_request_outcomes_map_to_error_kinds(gemini_emulator: GeminiEmulator, tmp_path: Path, mode: str) -> None:
    emu, rt = gemini_emulator, runtime(gemini_emulator, mode)
    for key, (status, _, _) in ERRORS.items():
        emu.faults.error(key, status=status)
    emu.faults.add("truncated", request_id="cut")
    emu.faults.add("refusal", request_id="unsafe")
    bad = line("bad")
    bad["request"]["contents"] = [{"role": "user", "parts": []}]  # refused by the API: an error line
    job, path = job_file(tmp_path, "errors", [*(line(k) for k in ERRORS), line("ok"), line("cut"), line("unsafe"), bad])
    submit(rt, job, path)
    assert [b["mode"] for b in emu.stats()["batches"]] == [mode]
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
    assert results["bad"]["error"]["kind"] == "invalid_request" and "parts" in results["bad"]["error"]["message"]


def test_inline_results_are_joined_on_their_key_in_any_order(gemini_emulator: GeminiEmulator, tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """The emulator keeps inline results in input order; reversed here, and errors given google.rpc.Status
    `details` objects (which the SDK's typed BatchJob refuses: its JobError types them as strings)."""
    emu, rt = gemini_emulator, runtime(gemini_emulator)
    original = emu._output

    def output(job: Any, req: Any, done: int) -> dict[str, Any]:
        rows = [dict(r) for r in original(job, req, done)["inlinedResponses"]["inlinedResponses"]][::-1]
        for r in rows:
            if "error" in r:
                r["error"] = {**r["error"], "details": [{"@type": "type.googleapis.com/google.rpc.RetryInfo",
                                                         "retryDelay": "30s"}]}
        return {"inlinedResponses": {"inlinedResponses": rows}}

    monkeypatch.setattr(emu, "_output", output)
    emu.faults.error("busy", status=429)
    keys = ["first", "cut", "busy", "last"]
    job, path = job_file(tmp_path, "order", [line(k, max_tokens=2 if k == "cut" else 512) for k in keys])
    submit(rt, job, path)
    emu.advance(10)
    poll = rt.poll(job)
    assert (poll.state, poll.done, poll.failed) == ("ended", 3, 1)
    results = list(rt.fetch(job, tmp_path / "raw"))
    raw = [json.loads(x) for x in (tmp_path / "raw/output.jsonl").read_text("utf-8").splitlines()]
    assert [x["key"] for x in raw] == keys[::-1] == [r["id"] for r in results]  # not in input order
    got = by_id(results)
    assert (got["first"]["status"], got["last"]["status"]) == ("ok", "ok")
    assert (got["cut"]["error"]["kind"], got["cut"]["finish_reason"]) == ("truncated", "MAX_TOKENS")
    assert (got["busy"]["error"]["kind"], got["busy"]["error"]["retryable"]) == ("rate_limit", True)
    assert raw[1]["error"]["details"]  # saved raw, as the API sent it


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


@MODES
def test_own_limit_truncates_and_raise_max_tokens_fixes_it(gemini_emulator: GeminiEmulator, tmp_path: Path,
                                                           mode: str) -> None:
    emu, rt = gemini_emulator, runtime(gemini_emulator, mode)
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


@MODES
@pytest.mark.emulator(batch_delay=100)
def test_cancel_midway_gives_partial_results(gemini_emulator: GeminiEmulator, tmp_path: Path, mode: str) -> None:
    emu, rt = gemini_emulator, runtime(gemini_emulator, mode)
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


@MODES
@pytest.mark.emulator(batch_delay=100)
def test_cancelled_before_any_output_yields_nothing(gemini_emulator: GeminiEmulator, tmp_path: Path, mode: str) -> None:
    emu, rt = gemini_emulator, runtime(gemini_emulator, mode)
    job, path = job_file(tmp_path, "early", [line("a"), line("b")])
    submit(rt, job, path)
    rt.cancel(job)  # still pending
    emu.advance(500)
    assert rt.poll(job).vendor_status == "cancelled"
    assert list(rt.fetch(job, tmp_path / "raw")) == []
    job.vendor["output_file"] = None  # the vendor may give no output file at all
    assert list(rt.fetch(job, tmp_path / "raw2")) == []
    assert not (tmp_path / "raw2").exists()


@MODES
def test_expired_batch_has_partial_results(gemini_emulator: GeminiEmulator, tmp_path: Path, mode: str) -> None:
    emu, rt = gemini_emulator, runtime(gemini_emulator, mode)
    emu.faults.add("expire", completed=2)
    job, path = job_file(tmp_path, "expire", [line(f"x-{i}") for i in range(5)])
    submit(rt, job, path)
    emu.advance(10)
    poll = rt.poll(job)
    assert (poll.state, poll.vendor_status) == ("ended", "expired")
    results = list(rt.fetch(job, tmp_path / "raw"))
    assert len(results) == 2 and all(r["status"] == "ok" for r in results)


@MODES
def test_failed_batch_is_reported_failed(gemini_emulator: GeminiEmulator, tmp_path: Path, mode: str) -> None:
    emu, rt = gemini_emulator, runtime(gemini_emulator, mode)
    emu.faults.add("validation_failure")
    job, path = job_file(tmp_path, "invalid", [line("a")])
    submit(rt, job, path)
    emu.advance(10)
    poll = rt.poll(job)
    assert (poll.state, poll.vendor_status) == ("failed", "failed")
    assert poll.errors == ("Injected validation failure.",)  # the operation's error, which the SDK drops


@MODES
def test_find_recovers_a_batch_by_display_name(gemini_emulator: GeminiEmulator, tmp_path: Path, mode: str) -> None:
    emu, rt = gemini_emulator, runtime(gemini_emulator, mode)
    lost, lost_path = job_file(tmp_path, "gemini-generate-a1", [line("a")])
    other, other_path = job_file(tmp_path, "gemini-generate-a2", [line("b")])
    created = rt.create(lost, lost_path)  # a kill here: the id never reached state.json
    submit(rt, other, other_path)
    assert rt.find(lost) == created and rt.find(other) == other.vendor_id
    assert rt.find(Job(name="never-created", runtime="gemini", model=MODEL, stage="s", file="f", requests=1)) is None
    assert [b["mode"] for b in emu.stats()["batches"]] == [mode, mode]  # find created nothing


@pytest.mark.emulator(batch_delay=100)
def test_a_batch_found_after_a_kill_is_fetched_without_its_mode(gemini_emulator: GeminiEmulator,
                                                                tmp_path: Path) -> None:
    """A kill right after create: job.vendor (input mode included) never reached state.json."""
    emu = gemini_emulator
    job, path = job_file(tmp_path, "gemini-generate-a1", [line("a"), line("b")])
    runtime(emu).create(job, path)
    emu.advance(250)
    fresh = Job(name=job.name, runtime="gemini", model=MODEL, stage="generate", file=job.file, requests=2)
    rt = runtime(emu)  # a new process
    fresh.vendor_id = rt.find(fresh)
    assert fresh.vendor_id is not None and "input_mode" not in fresh.vendor
    assert sorted(r["id"] for r in rt.fetch(fresh, tmp_path / "raw")) == ["a", "b"]  # no poll first, even
    assert emu.stats()["calls"]["GET /{v}/batches/{batch_id}"] == 1  # the output came with the batch


def test_fetch_after_poll_reads_the_batch_once(gemini_emulator: GeminiEmulator, tmp_path: Path) -> None:
    emu, rt = gemini_emulator, runtime(gemini_emulator)
    job, path = job_file(tmp_path, "once", [line("a")])
    submit(rt, job, path)
    emu.advance(10)
    assert rt.poll(job).state == "ended"
    assert [r["id"] for r in rt.fetch(job, tmp_path / "raw")] == ["a"]
    assert emu.stats()["calls"]["GET /{v}/batches/{batch_id}"] == 1


def test_retried_create_reuses_the_upload(gemini_emulator: GeminiEmulator, tmp_path: Path) -> None:
    emu, rt = gemini_emulator, runtime(gemini_emulator, "file")
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


def test_retried_inline_create_stays_inline(gemini_emulator: GeminiEmulator, tmp_path: Path) -> None:
    emu, rt = gemini_emulator, runtime(gemini_emulator)
    emu.faults.http(r"POST /v1beta/models/.*:batchGenerateContent", status=400, times=1)
    job, path = job_file(tmp_path, "retry", [line("a"), line("b")])
    with pytest.raises(RuntimeFailure, match="gemini job retry: batch create failed"):
        rt.create(job, path)
    assert job.vendor == {"input_mode": "inline"}
    submit(rt, job, path)
    stats = emu.stats()
    assert UPLOAD not in stats["calls"] and stats["calls"][CREATE] == 2
    assert [b["mode"] for b in stats["batches"]] == ["inline"] and emu.submissions("a") == 1


def test_rate_limited_create_is_retried(gemini_emulator: GeminiEmulator, tmp_path: Path) -> None:
    emu, rt = gemini_emulator, runtime(gemini_emulator)
    emu.faults.http(r"POST /v1beta/models/.*:batchGenerateContent", status=429, times=1)
    job, path = job_file(tmp_path, "limited", [line("a")])
    submit(rt, job, path)  # the SDK waits ~1-2 s (retry_options backoff; it ignores retry-after) and retries
    stats = emu.stats()
    assert stats["calls"][CREATE] == 2
    assert [b["id"] for b in stats["batches"]] == [job.vendor_id] and emu.submissions("a") == 1
    emu.faults.http(r"GET /v1beta/batches/", status=503, times=1)  # batch reads go through the SDK's retries too
    rt.poll(job)
    assert emu.stats()["calls"]["GET /{v}/batches/{batch_id}"] == 2


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


def test_find_skips_a_same_name_batch_created_before_the_intent(gemini_emulator: GeminiEmulator,
                                                                 tmp_path: Path) -> None:
    """The same spec compiled into another dir makes a job of the same name: its earlier batch is not adopted."""
    from datetime import timedelta

    from datafast.runtimes.base import parse_time

    rt = runtime(gemini_emulator)
    theirs, path = job_file(tmp_path, "gemini-generate-a1", [line("a")])
    name = rt.create(theirs, path)
    created = parse_time(rt._rest(name)["metadata"]["createTime"])
    assert created is not None
    mine = Job(name=theirs.name, runtime="gemini", model=MODEL, stage="generate", file=theirs.file, requests=1,
               vendor={"intent_at": (created + timedelta(hours=1)).isoformat()})
    assert rt.find(mine) is None
    mine.vendor["intent_at"] = (created + timedelta(seconds=30)).isoformat()  # within the allowed clock skew
    assert rt.find(mine) == name
