"""Quota and capacity refusals clear by themselves: waited out and resent, never final; batches paced under a
model's enqueued-token quota. Through the real SDKs against the emulators."""

from __future__ import annotations

import json

import pytest

from datafast import runner
from datafast.dataset import collect_to
from datafast.pipeline import advance as submit
from datafast.pipeline import status
from datafast.runtimes.base import QuotaRefused, RuntimeFailure

from .test_submit_openai import SPEC, compile_spec, env_for

TOKEN_LIMIT = ("Enqueued token limit reached for gpt-4.1-mini in organization org-test. Limit: 2,000,000 enqueued "
               "tokens. Please try again once some in_progress batches have been completed.")


@pytest.fixture
def fast_backoff(monkeypatch):
    monkeypatch.setattr(runner, "QUOTA_BACKOFF", 0.05)


def results_of(out, job_name):
    return [json.loads(x) for x in (out / "results" / f"{job_name}.jsonl").read_text().splitlines()]


def test_token_limit_validation_failure_is_retried_and_run_ends_with_all_rows(tmp_path, openai_emulator, cli,
                                                                              monkeypatch, fast_backoff):
    emu = openai_emulator
    for key, value in env_for(emu).items():
        monkeypatch.setenv(key, value)
    emu.faults.add("validation_failure", code="token_limit_exceeded", message=TOKEN_LIMIT)
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps(SPEC))
    result = cli("run", spec, "-o", tmp_path / "out", "--poll-interval", "0.01")
    assert result.exit_code == 0, result.stderr
    assert "6 requests = 6 with rows + 0 rejected + 0 pending" in result.stdout
    out = tmp_path / "out"
    ids = [json.loads(x)["id"] for x in (out / "manifest.jsonl").read_text().splitlines()]
    assert [emu.submissions(i) for i in ids] == [2] * 6  # the refused batch, then its resend
    first, second = (emu.jobs[b["id"]] for b in emu.stats()["batches"])
    assert first.failure[0]["code"] == "token_limit_exceeded"
    assert second.created >= first.created + emu.batch_delay + 0.05  # resent after the back-off, not at once
    jobs = json.loads(cli("status", out, "--json").stdout)["jobs"]
    assert [j["status"] for j in jobs] == ["failed", "fetched"]
    refused = results_of(out, jobs[0]["name"])
    assert {(r["error"]["kind"], r["error"]["retryable"]) for r in refused} == {("rate_limit", True)}


def test_other_validation_failures_stay_terminal(tmp_path, openai_emulator, fast_backoff):
    out, ids = compile_spec(tmp_path)
    openai_emulator.faults.add("validation_failure", code="invalid_request")
    report = submit(out, wait=True, poll_interval=0.01, env=env_for(openai_emulator))
    assert (report.ok, report.failed) == (0, 6)
    assert [openai_emulator.submissions(i) for i in ids] == [1] * 6


def test_429_on_create_is_ridden_out_sending_each_request_once(tmp_path, openai_emulator):
    out, ids = compile_spec(tmp_path)
    emu = openai_emulator
    # 8 refusals: two create calls exhaust the SDK's 4 tries each, the third gets through
    emu.faults.http(r"^POST /v1/batches$", status=429, times=8, retry_after=0.01)
    messages: list[str] = []
    report = submit(out, wait=True, poll_interval=0.01, env=env_for(emu), on_progress=messages.append)
    assert (report.ok, report.pending, report.failed) == (6, 0, 0)
    assert [emu.submissions(i) for i in ids] == [1] * 6
    assert len(emu.stats()["batches"]) == 1 and emu.stats()["calls"]["POST /v1/batches"] == 9
    assert emu.stats()["calls"]["POST /v1/files"] == 1  # the upload is reused by the retried creations
    assert sum("retrying in" in m for m in messages) == 2, messages


def test_quota_refusals_past_the_bound_stop_the_run_and_resume_later(tmp_path, openai_emulator, monkeypatch):
    monkeypatch.setattr(runner, "QUOTA_MAX_REFUSALS", 1)
    out, ids = compile_spec(tmp_path)
    emu = openai_emulator
    emu.faults.http(r"^POST /v1/batches$", status=429, times=None, retry_after=0.01)
    with pytest.raises(RuntimeFailure, match="run again to resume"):
        submit(out, wait=True, poll_interval=0.01, env=env_for(emu))
    info = status(out, env_for(emu))
    assert (info["to_send"], info["in_flight"], info["ok"]) == (6, 0, 0)  # not lost, not in flight
    assert [j["status"] for j in info["jobs"]] == ["held"]
    emu.faults.clear()
    report = submit(out, wait=True, poll_interval=0.01, env=env_for(emu))
    assert report.ok == 6 and [emu.submissions(i) for i in ids] == [1] * 6
    assert [j["status"] for j in status(out, env_for(emu))["jobs"]] == ["fetched"]  # the held job, created


def test_billing_429_is_not_waited_out(tmp_path, openai_emulator):
    out, _ = compile_spec(tmp_path)
    openai_emulator.faults.http(r"^POST /v1/batches$", status=429, times=None, code="insufficient_quota",
                                message="You exceeded your current quota, please check your plan and billing details.")
    with pytest.raises(RuntimeFailure, match="billing details") as failure:
        submit(out, wait=True, poll_interval=0.01, env=env_for(openai_emulator))
    assert not isinstance(failure.value, QuotaRefused)  # a credit balance does not refill by waiting
    assert openai_emulator.stats()["calls"]["POST /v1/batches"] == 4  # the SDK's tries only: no back-off rounds


def write_quotas(tmp_path, tokens):
    path = tmp_path / "quotas.yaml"
    path.write_text(f"models:\n  openai:gpt-4.1-mini: {tokens}\n")
    return path


def live_token_peaks(emu):
    """For each batch the emulator created: the tokens of every batch live at that instant (same unit as
    quotas.json: ~4 bytes of input line a token)."""
    batches = [emu.jobs[b["id"]] for b in emu.stats()["batches"]]

    def tokens(job):
        content = emu.contents[job.meta["input_file_id"]]
        return sum(len(line) // 4 + 1 for line in content.splitlines() if line.strip())

    def ended_by(job, t):
        return job.failure is not None and t >= job.created + job.delay or t >= job.t_end

    return [sum(tokens(b) for b in batches if b.created <= new.created and not ended_by(b, new.created))
            for new in batches]


def test_small_quota_splits_and_paces_jobs(tmp_path, openai_emulator):
    out, ids = compile_spec(tmp_path)
    emu = openai_emulator
    limit = 700  # each request is ~300 tokens: 2 fit under 90% of the quota, the 6 of the job file do not
    env = {**env_for(emu), "DATAFAST_QUOTAS": str(write_quotas(tmp_path, limit))}
    report = submit(out, wait=True, poll_interval=0.01, env=env)
    assert (report.ok, report.pending) == (6, 0)
    assert [emu.submissions(i) for i in ids] == [1] * 6
    batches = emu.stats()["batches"]
    assert [b["count"] for b in batches] == [2, 2, 2]
    peaks = live_token_peaks(emu)
    assert max(peaks) <= limit, peaks
    names = [j["name"] for j in status(out, env)["jobs"]]
    assert [n.split("-a")[1].split("-")[0] for n in names] == ["1p1", "1p2", "1p3"]
    assert collect_to(out).with_rows == 6


def test_without_quota_override_nothing_is_split(tmp_path, openai_emulator):
    out, _ = compile_spec(tmp_path)
    submit(out, wait=True, poll_interval=0.01, env=env_for(openai_emulator))
    assert [b["count"] for b in openai_emulator.stats()["batches"]] == [6]
    assert max(live_token_peaks(openai_emulator)) > 700  # what the paced test keeps under its quota


@pytest.mark.emulator(batch_delay=3600)
def test_paced_submit_without_wait_holds_the_rest_as_to_send(tmp_path, openai_emulator):
    out, ids = compile_spec(tmp_path)
    emu = openai_emulator
    env = {**env_for(emu), "DATAFAST_QUOTAS": str(write_quotas(tmp_path, 700))}
    submit(out, env=env)  # returns once the first piece is created; the others wait for room
    info = status(out, env)
    assert (info["in_flight"], info["to_send"]) == (2, 4)
    assert [j["status"] for j in info["jobs"]] == ["submitted", "held", "held"]
    emu.advance(4 * 3600)  # the first batch completes (3 stages of batch_delay)
    submit(out, env=env)  # fetches it, then creates the next piece
    info = status(out, env)
    assert (info["ok"], info["in_flight"], info["to_send"]) == (2, 2, 2)
    emu.batch_delay = 0.01  # batches created from now on end at once; the live one once the clock moves on
    emu.advance(4 * 3600)
    assert submit(out, wait=True, poll_interval=0.01, env=env).ok == 6
    assert [emu.submissions(i) for i in ids] == [1] * 6 and len(emu.stats()["batches"]) == 3


def test_vendor_quota_refusals_anthropic_529_and_gemini_resource_exhausted(tmp_path, anthropic_emulator,
                                                                           gemini_emulator, fast_backoff):
    spec = {**SPEC, "models": ["anthropic:claude-haiku-4-5", "gemini:gemini-2.5-flash"]}
    out, ids = compile_spec(tmp_path, spec)
    env = {"ANTHROPIC_API_KEY": "test", "ANTHROPIC_BASE_URL": anthropic_emulator.base_url,
           "GEMINI_API_KEY": "test", "GOOGLE_GEMINI_BASE_URL": gemini_emulator.base_url}
    # Anthropic overloaded at create past the SDK's 4 tries; Gemini fails the batch for the project's quota
    anthropic_emulator.faults.http(r"^POST /v1/messages/batches$", status=529, times=5, retry_after=0.01)
    gemini_emulator.faults.add("validation_failure", code="RESOURCE_EXHAUSTED",
                               message="Enqueued tokens quota exceeded for gemini-2.5-flash.")
    report = submit(out, wait=True, poll_interval=0.01, env=env)
    assert (report.ok, report.pending, report.failed) == (12, 0, 0)
    a_ids = anthropic_emulator.stats()["batches"][0]["request_ids"]
    assert [anthropic_emulator.submissions(i) for i in a_ids] == [1] * 6
    g_batches = gemini_emulator.stats()["batches"]
    assert len(g_batches) == 2 and [gemini_emulator.submissions(i) for i in g_batches[0]["request_ids"]] == [2] * 6


def test_gemini_resource_exhausted_at_create_is_a_quota_refusal_with_its_retry_delay(gemini_emulator):
    from google.genai import errors

    from datafast.runtimes.base import Job
    from datafast.runtimes.gemini import GeminiRuntime

    rt = GeminiRuntime({"GEMINI_API_KEY": "test", "GOOGLE_GEMINI_BASE_URL": gemini_emulator.base_url})
    job = Job(name="j", runtime="gemini", model="gemini:gemini-2.5-flash", stage="generate", file="x", requests=1)
    body = {"error": {"code": 429, "status": "RESOURCE_EXHAUSTED", "message": "Quota exceeded", "details": [
        {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "37s"}]}}

    def refuse(error):
        raise error

    with pytest.raises(QuotaRefused) as refused:
        rt._call("batch create", job, refuse, errors.ClientError(429, body))
    assert refused.value.retry_after == 37.0
    with pytest.raises(RuntimeFailure) as other:  # a bad request is not waited out
        rt._call("batch create", job, refuse, errors.ClientError(400, {"error": {"code": 400, "message": "bad"}}))
    assert not isinstance(other.value, QuotaRefused)


def test_retry_after_headers():
    from datafast.runtimes.base import retry_after_seconds

    assert retry_after_seconds({"retry-after-ms": "250", "retry-after": "9"}) == 0.25
    assert retry_after_seconds({"retry-after": "12"}) == 12.0
    assert (retry_after_seconds({"retry-after": "Wed, 21 Oct 2099 07:28:00 GMT"}) or 0) > 1e6
    assert retry_after_seconds({"retry-after": "soon"}) is None and retry_after_seconds(None) is None


def test_quota_table_override(tmp_path):
    from datafast.compiler.errors import SpecError
    from datafast.compiler.quotas import QuotaTable

    built_in = QuotaTable.load()
    assert built_in.enqueued_tokens("openai:gpt-4.1-mini") == 2_000_000
    assert built_in.enqueued_tokens("openai:gpt-4.1-mini-2025-04-14") == 2_000_000  # a dated snapshot
    assert built_in.enqueued_tokens("anthropic:claude-haiku-4-5") is None  # not paced
    path = tmp_path / "q.json"
    path.write_text(json.dumps({"tier": "tier 3", "models": {"openai:gpt-4.1-mini": 40_000_000,
                                                             "openai:gpt-4.1": {"enqueued_tokens": None}}}))
    mine = QuotaTable.load(path)
    assert mine.enqueued_tokens("openai:gpt-4.1-mini") == 40_000_000 and mine.enqueued_tokens("openai:gpt-4.1") is None
    assert mine.tier == "tier 3" and mine.enqueued_tokens("openai:gpt-4o") == 90_000
    path.write_text(json.dumps({"models": {"gpt-4.1": 5}}))
    with pytest.raises(SpecError):
        QuotaTable.load(path)
