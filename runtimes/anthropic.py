"""Anthropic Message Batches through the `anthropic` SDK: create, poll, fetch (streamed JSONL), cancel.

The job file's lines are the batch's `requests` as they are (`{custom_id, params}`): there is no upload step.

Finding a batch whose id was not recorded (`find`): Anthropic batches carry no metadata, so nothing ties a
batch to `job.name`. The best honest evidence is time and size: `find` accepts a batch only when it is the one
batch created at or after `job.vendor["intent_at"]` (written by the orchestrator before `create`) whose
request count equals `job.requests`; with no intent time, or zero or several candidates, it answers None and
the orchestrator creates the batch again. Remaining risks:
- a kill between create and the state write, when `find` cannot decide, leaves a duplicate batch (paid twice;
  results are joined on custom_id, so the data stays right). It cannot decide when another batch of the same
  size was created in the workspace after the intent (another run, or another job of this run), when the
  intent time is coarser than the gap between two same-size creates, or when the clocks disagree (ours ahead
  of Anthropic's misses the batch; behind, an earlier same-size batch joins the candidates).
- if the create never reached Anthropic and exactly one foreign batch of the same size appeared after the
  intent, `find` adopts it; its results carry other custom_ids, so this job's ids come back missing and are
  resubmitted (a wasted round, not wrong data).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from .base import (
    CAPACITY_STATUSES,
    BatchRuntime,
    Job,
    Poll,
    QuotaRefused,
    RuntimeFailure,
    parse_time,
    result,
    retry_after_seconds,
)

RUNNING = {"in_progress", "canceling"}
LIST_LIMIT = 1000  # batches scanned by `find` (newest first); a batch created moments ago is near the top
ERROR_KINDS = {
    "rate_limit_error": "rate_limit",
    "overloaded_error": "server_error",
    "api_error": "server_error",
    "timeout_error": "timeout",
    "invalid_request_error": "invalid_request",
    "request_too_large": "invalid_request",
    "authentication_error": "auth",
    "permission_error": "auth",
    "billing_error": "auth",
    "not_found_error": "not_found",
}
STOP_ERRORS = {  # stop_reason -> (error kind, message)
    "max_tokens": ("truncated", "answer cut at max_tokens"),
    "model_context_window_exceeded": ("truncated", "answer cut at the model's context window"),
    "refusal": ("refusal", "the model refused to answer"),
}


class AnthropicRuntime(BatchRuntime):
    name = "anthropic"
    key_env = ("ANTHROPIC_API_KEY",)
    base_url_env = "ANTHROPIC_BASE_URL"
    default_base_url = "https://api.anthropic.com"
    # the SDK adds /v1/messages... to the base URL itself
    not_found_hint = "ANTHROPIC_BASE_URL is the server's root, without /v1 (the SDK adds /v1/messages to it)"

    def __init__(self, env: dict[str, str] | None = None):
        super().__init__(env)
        import anthropic  # the SDK is imported only when this runtime is used
        import httpx2  # the SDK's HTTP client: errors while streaming results surface as its exceptions

        self._errors: tuple[type[Exception], ...] = (anthropic.AnthropicError, httpx2.HTTPError)
        self._status_error: type[Exception] = anthropic.APIStatusError
        # ANTHROPIC_BASE_URL is honoured explicitly so that `env` (not only os.environ) decides the endpoint;
        # an explicit api_key also keeps the SDK from reading credentials anywhere else
        self.client = anthropic.Anthropic(api_key=self.key(), base_url=self.env.get("ANTHROPIC_BASE_URL") or None,
                                          max_retries=3)

    def _call(self, what: str, job: Job, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except self._errors as exc:
            # rate_limit_error (429) and overloaded_error (529) clear by themselves
            status = getattr(exc, "status_code", None) if isinstance(exc, self._status_error) else None
            message = f"{what} failed: {self.explain(exc, status)}"
            if status in CAPACITY_STATUSES:
                headers = getattr(getattr(exc, "response", None), "headers", None)
                raise QuotaRefused(self.name, message, job.name, retry_after_seconds(headers)) from None
            raise RuntimeFailure(self.name, message, job.name) from None

    def create(self, job: Job, path: Path) -> str:
        with open(path, encoding="utf-8") as fh:
            requests = [json.loads(line) for line in fh if line.strip()]
        batch = self._call("batch create", job, self.client.messages.batches.create, requests=requests)
        return str(batch.id)

    def find(self, job: Job) -> str | None:
        since = parse_time(job.vendor.get("intent_at"))
        if since is None:
            return None

        def candidates() -> list[str]:
            found = []
            for i, batch in enumerate(self.client.messages.batches.list(limit=100)):
                if batch.created_at < since or i >= LIST_LIMIT:  # newest first: the rest are older
                    break
                if _total(batch.request_counts) == job.requests:
                    found.append(str(batch.id))
            return found

        matches: list[str] = self._call("batch list", job, candidates)
        return matches[0] if len(matches) == 1 else None

    def poll(self, job: Job) -> Poll:
        batch = self._call("batch retrieve", job, self.client.messages.batches.retrieve, job.vendor_id)
        counts = batch.request_counts
        status = str(batch.processing_status)
        job.vendor["status"] = status
        # counts other than `processing` stay 0 until the batch has ended
        failed = counts.errored + counts.canceled + counts.expired
        if batch.processing_status == "ended":
            cancelled = batch.cancel_initiated_at is not None
            if cancelled:
                status += ", cancel requested"
            return Poll("ended", counts.succeeded, failed, _total(counts), status, cancelled=cancelled)
        return Poll("running", counts.succeeded, failed, _total(counts), status)  # Anthropic has no failed state

    def fetch(self, job: Job, raw_dir: Path) -> Iterator[dict[str, Any]]:
        raw_dir.mkdir(parents=True, exist_ok=True)
        target = raw_dir / "results.jsonl"
        self._call("results download", job, self._download, job, target)
        with open(target, encoding="utf-8") as fh:
            for line in fh:
                if line.strip():
                    yield self._normalize(json.loads(line), job.model)

    def _download(self, job: Job, target: Path) -> None:
        """Stream the results JSONL to `target` as sent (it can be large); atomic, so a kill leaves no half."""
        part = target.with_name(target.name + ".part")
        with self.client.messages.batches.with_streaming_response.results(str(job.vendor_id)) as response, \
                open(part, "wb") as fh:
            for chunk in response.iter_bytes(1 << 16):
                fh.write(chunk)
        part.replace(target)

    def _normalize(self, line: dict[str, Any], model: str) -> dict[str, Any]:
        rid = str(line.get("custom_id"))
        outcome = line.get("result") or {}
        kind = outcome.get("type")
        if kind == "canceled":
            return result(rid, self.name, model, error_kind="cancelled", error_message="batch canceled first")
        if kind == "expired":
            return result(rid, self.name, model, error_kind="expired", error_message="batch expired first")
        if kind == "errored":
            error = (outcome.get("error") or {}).get("error") or {}
            etype = str(error.get("type") or "")
            return result(rid, self.name, model, error_kind=ERROR_KINDS.get(etype, "invalid_request"),
                          error_message=f"{etype}: {error.get('message') or ''}".strip(": "))
        if kind != "succeeded":
            return result(rid, self.name, model, error_kind="server_error", error_message=f"result type {kind!r}")
        message = outcome.get("message") or {}
        usage = message.get("usage") or {}
        read, write = usage.get("cache_read_input_tokens") or 0, usage.get("cache_creation_input_tokens") or 0
        # of the writes, those for 1 hour (2x the input price, 5 minutes: 1.25x); without the split, 5 minutes
        long = min((usage.get("cache_creation") or {}).get("ephemeral_1h_input_tokens") or 0, write)
        # input_tokens excludes cached prompt tokens; count them so usage means the same across vendors
        tokens: dict[str, Any] = {"input_tokens": (usage.get("input_tokens") or 0) + read + write,
                                  "output_tokens": usage.get("output_tokens") or 0,
                                  "cache_read_input_tokens": read, "cache_write_input_tokens": write,
                                  "cache_write_1h_input_tokens": long}
        stop = message.get("stop_reason")
        text = _text(message.get("content") or [])
        if stop in STOP_ERRORS:
            error_kind, error_message = STOP_ERRORS[stop]
            return result(rid, self.name, model, text=text, finish_reason=stop, error_kind=error_kind,
                          error_message=error_message, **tokens)
        return result(rid, self.name, model, text=text, finish_reason=stop, **tokens)

    def cancel(self, job: Job) -> None:
        self._call("batch cancel", job, self.client.messages.batches.cancel, job.vendor_id)

    @staticmethod
    def raise_max_tokens(line: dict[str, Any], max_tokens: int) -> dict[str, Any]:
        line["params"]["max_tokens"] = max_tokens
        return line


def _text(content: list[dict[str, Any]]) -> str | None:
    """The answer: the first text block (structured output), else a forced tool call's input as JSON."""
    for block in content:
        if block.get("type") == "text":
            return str(block.get("text") or "")
    for block in content:
        if block.get("type") == "tool_use":
            return json.dumps(block.get("input"), ensure_ascii=False)
    return None


def _total(counts: Any) -> int:
    return int(counts.processing + counts.succeeded + counts.errored + counts.canceled + counts.expired)


__all__ = ["AnthropicRuntime"]
