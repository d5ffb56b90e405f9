"""OpenAI Batch API through the `openai` SDK: upload, create (tagged in metadata), poll, fetch, cancel."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .base import (
    CAPACITY_STATUSES,
    BatchRuntime,
    Job,
    Poll,
    QuotaRefused,
    RuntimeFailure,
    http_error_kind,
    model_name,
    parse_time,
    result,
    retry_after_seconds,
)

ENDPOINT = "/v1/chat/completions"
TAG = "datafast_job"
INTENT = "datafast_intent_at"  # the job's intent time (state.json), which only this dir's create carries
RUNNING = {"validating", "in_progress", "finalizing", "cancelling"}
ENDED = {"completed", "expired", "cancelled"}
# validation-error codes of a batch refused only because the organisation's queue for the model is full
# ("Enqueued token limit reached for gpt-4o-mini in organization org-... Limit: 2,000,000 enqueued tokens.
# Please try again once some in_progress batches have been completed."; openai-python issue #2084). The
# request-count twin ("Enqueued request limit reached ...", seen for embeddings) is assumed to follow the
# same naming.
QUOTA_CODES = frozenset({"token_limit_exceeded", "request_limit_exceeded"})
# a 429 with this code is an exhausted credit balance, which does not clear by waiting
BILLING_CODES = frozenset({"insufficient_quota", "billing_hard_limit_reached"})


class OpenAIRuntime(BatchRuntime):
    name = "openai"
    key_env = ("OPENAI_API_KEY",)
    base_url_env = "OPENAI_BASE_URL"
    default_base_url = "https://api.openai.com/v1"
    # the SDK appends /files, /batches, /chat/completions to the base URL, so the /v1 belongs in it
    not_found_hint = "does OPENAI_BASE_URL end in /v1? (the SDK adds /files, /batches, /chat/completions to it)"

    def __init__(self, env: dict[str, str] | None = None):
        super().__init__(env)
        import openai  # the SDK is imported only when this runtime is used

        self._openai = openai
        # OPENAI_BASE_URL is honoured explicitly so that `env` (not only os.environ) decides the endpoint
        self.client = openai.OpenAI(api_key=self.key(), base_url=self.env.get("OPENAI_BASE_URL") or None,
                                    max_retries=3)

    def _call(self, what: str, job: Job, fn: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except self._openai.APIStatusError as exc:
            message = f"{what} failed: {self.explain(exc, exc.status_code)}"
            if exc.status_code in CAPACITY_STATUSES and exc.code not in BILLING_CODES:
                raise QuotaRefused(self.name, message, job.name, retry_after_seconds(exc.response.headers)) from None
            raise RuntimeFailure(self.name, message, job.name) from None
        except self._openai.OpenAIError as exc:
            raise RuntimeFailure(self.name, f"{what} failed: {self.explain(exc)}", job.name) from None

    def create(self, job: Job, path: Path) -> str:
        if "input_file_id" not in job.vendor:
            uploaded = self._call("upload", job, self.client.files.create,
                                  file=(path.name, path.read_bytes(), "application/jsonl"), purpose="batch")
            job.vendor["input_file_id"] = uploaded.id
        metadata = {TAG: job.name}
        if job.vendor.get("intent_at"):
            metadata[INTENT] = str(job.vendor["intent_at"])
        batch = self._call("batch create", job, self.client.batches.create, input_file_id=job.vendor["input_file_id"],
                           endpoint=ENDPOINT, completion_window="24h", metadata=metadata)
        return str(batch.id)

    def find(self, job: Job) -> str | None:
        """The batch this job created, by its metadata: the job name and the intent time recorded before the
        create call. The name alone is not enough: the same spec compiled into another dir makes jobs of the
        same name, whose batches must not be adopted. A batch tagged without an intent (older datafast) is
        accepted when created at or after this job's intent."""
        intent = job.vendor.get("intent_at")
        since = parse_time(intent)
        for i, batch in enumerate(self._call("batch list", job, self.client.batches.list, limit=100)):
            meta = batch.metadata or {}
            if meta.get(TAG) == job.name:
                if INTENT in meta:
                    if meta[INTENT] == intent:
                        return str(batch.id)
                elif since is None or batch.created_at >= int(since.timestamp()):
                    return str(batch.id)
            if i >= 1000:  # newest first: a batch created moments ago is near the top
                break
        return None

    def poll(self, job: Job) -> Poll:
        batch = self._call("batch retrieve", job, self.client.batches.retrieve, job.vendor_id)
        counts = batch.request_counts
        done, failed, total = (counts.completed, counts.failed, counts.total) if counts else (0, 0, job.requests)
        job.vendor.update(status=batch.status, output_file_id=batch.output_file_id, error_file_id=batch.error_file_id)
        if batch.status in RUNNING:
            return Poll("running", done, failed, total, batch.status)
        if batch.status in ENDED:
            return Poll("ended", done, failed, total, batch.status, cancelled=batch.status in ("cancelling", "cancelled"))
        data = (batch.errors.data or []) if batch.errors else []
        errors = tuple(f"line {e.line}: {e.message}" if e.line is not None else str(e.message) for e in data)
        quota = bool(data) and all(e.code in QUOTA_CODES for e in data)
        return Poll("failed", done, failed, total, batch.status, errors or (f"batch {batch.status}",), quota=quota)

    def fetch(self, job: Job, raw_dir: Path) -> Iterator[dict[str, Any]]:
        raw_dir.mkdir(parents=True, exist_ok=True)
        for kind in ("output", "error"):
            file_id = job.vendor.get(f"{kind}_file_id")
            if not file_id:
                continue
            content = self._call(f"{kind} file download", job, self.client.files.content, file_id).content
            (raw_dir / f"{kind}.jsonl").write_bytes(content)
            for line in content.decode("utf-8").splitlines():
                if line.strip():
                    yield self._normalize(json.loads(line), job.model)

    def _normalize(self, line: dict[str, Any], model: str) -> dict[str, Any]:
        rid = line["custom_id"]
        response = line.get("response")
        if response is None:
            error = line.get("error") or {}
            code = str(error.get("code") or "")
            kind = "expired" if "expired" in code else "cancelled" if "cancel" in code else "server_error"
            return result(rid, self.name, model, error_kind=kind, error_message=str(error.get("message") or code))
        body = response.get("body") or {}
        status = response.get("status_code")
        if status != 200:
            message = (body.get("error") or {}).get("message") or f"HTTP {status}"
            return result(rid, self.name, model, error_kind=http_error_kind(status), error_message=message)
        choice = (body.get("choices") or [{}])[0]
        message = choice.get("message") or {}
        usage = body.get("usage") or {}
        details = usage.get("prompt_tokens_details") or {}
        # prompt_tokens counts the cached tokens too; cache writes are reported (and billed) from GPT-5.6 on
        tokens = {"input_tokens": usage.get("prompt_tokens", 0), "output_tokens": usage.get("completion_tokens", 0),
                  "cache_read_input_tokens": details.get("cached_tokens") or 0,
                  "cache_write_input_tokens": details.get("cache_write_tokens") or 0}
        finish = choice.get("finish_reason")
        text = message.get("content")
        if message.get("refusal"):
            return result(rid, self.name, model, text=text, finish_reason=finish, error_kind="refusal",
                          error_message=str(message["refusal"]), **tokens)
        if finish == "length":
            return result(rid, self.name, model, text=text, finish_reason=finish, error_kind="truncated",
                          error_message="answer cut at max_completion_tokens", **tokens)
        if finish == "content_filter":
            return result(rid, self.name, model, text=text, finish_reason=finish, error_kind="content_filter",
                          error_message="answer stopped by the content filter", **tokens)
        return result(rid, self.name, model, text=text, finish_reason=finish, **tokens)

    def cancel(self, job: Job) -> None:
        self._call("batch cancel", job, self.client.batches.cancel, job.vendor_id)

    @staticmethod
    def raise_max_tokens(line: dict[str, Any], max_tokens: int) -> dict[str, Any]:
        line["body"]["max_completion_tokens"] = max_tokens
        return line


__all__ = ["OpenAIRuntime", "model_name"]
