"""Gemini Batch API through the `google-genai` SDK: upload, create (display name = job name), poll, fetch, cancel.

Always file mode (the job file is uploaded, the batch reads `files/...`), never inline requests: one code path
for every job size, and no 20 MB limit on the create call's payload. Results come back as a generated JSONL
file of `{key, response | error}` lines, in no particular order.

The SDK drops `batchStats` and the operation's `error` on the Developer API, so `poll` cannot report progress
counts nor say why a batch failed: outcomes are counted from the result lines once fetched.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from .base import BatchRuntime, Job, Poll, RuntimeFailure, http_error_kind, model_name, result

ENDED = {"JOB_STATE_SUCCEEDED", "JOB_STATE_CANCELLED", "JOB_STATE_EXPIRED", "JOB_STATE_PARTIALLY_SUCCEEDED"}
FAILED = {"JOB_STATE_FAILED"}  # every other state (pending, running, cancelling, ...) is still running
LIST_LIMIT = 1000  # batches scanned by `find`; a batch created moments ago is near the top
FILTERED = {"SAFETY", "RECITATION", "PROHIBITED_CONTENT", "BLOCKLIST", "SPII", "IMAGE_SAFETY"}
# per-request errors are google.rpc.Status: a gRPC code, sometimes an HTTP code with a status name
GRPC_STATUS = {1: "CANCELLED", 2: "UNKNOWN", 3: "INVALID_ARGUMENT", 4: "DEADLINE_EXCEEDED", 5: "NOT_FOUND",
               6: "ALREADY_EXISTS", 7: "PERMISSION_DENIED", 8: "RESOURCE_EXHAUSTED", 9: "FAILED_PRECONDITION",
               10: "ABORTED", 11: "OUT_OF_RANGE", 12: "UNIMPLEMENTED", 13: "INTERNAL", 14: "UNAVAILABLE",
               15: "DATA_LOSS", 16: "UNAUTHENTICATED"}
STATUS_KINDS = {"RESOURCE_EXHAUSTED": "rate_limit", "UNAVAILABLE": "server_error", "INTERNAL": "server_error",
                "UNKNOWN": "server_error", "ABORTED": "server_error", "DATA_LOSS": "server_error",
                "DEADLINE_EXCEEDED": "timeout", "CANCELLED": "cancelled", "PERMISSION_DENIED": "auth",
                "UNAUTHENTICATED": "auth", "NOT_FOUND": "not_found"}  # the rest: invalid_request


class GeminiRuntime(BatchRuntime):
    name = "gemini"
    key_env = ("GEMINI_API_KEY", "GOOGLE_API_KEY")

    def __init__(self, env: dict[str, str] | None = None):
        super().__init__(env)
        import httpx
        from google import genai  # the SDK is imported only when this runtime is used
        from google.genai import errors

        self._errors: tuple[type[Exception], ...] = (errors.APIError, httpx.HTTPError)
        try:  # newer SDKs may send through httpx2
            import httpx2

            self._errors += (httpx2.HTTPError,)
        except ImportError:  # pragma: no cover - depends on the installed SDK
            pass
        # api_version v1beta: where the Batch API lives. The SDK retries nothing unless told: 3 retries
        # (backoff from 1 s) on 408/429/5xx and connection errors, as for the other vendors.
        http_options: Any = {"api_version": "v1beta", "retry_options": {"attempts": 4}}
        # GOOGLE_GEMINI_BASE_URL is honoured explicitly so that `env` (not only os.environ) decides the endpoint
        if self.env.get("GOOGLE_GEMINI_BASE_URL"):
            http_options["base_url"] = self.env["GOOGLE_GEMINI_BASE_URL"]
        # vertexai=False: a GOOGLE_GENAI_USE_VERTEXAI in the environment must not switch APIs under us
        self.client = genai.Client(api_key=self.key(), vertexai=False, http_options=http_options)

    def _call(self, what: str, job: Job, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except self._errors as exc:
            raise RuntimeFailure(self.name, f"{what} failed: {exc}", job.name) from None

    def create(self, job: Job, path: Path) -> str:
        if "input_file" not in job.vendor:  # a retried create reuses the upload
            uploaded = self._call("upload", job, self.client.files.upload, file=str(path),
                                  config={"mime_type": "jsonl", "display_name": job.name})
            job.vendor["input_file"] = uploaded.name
        batch = self._call("batch create", job, self.client.batches.create, model=model_name(job.model),
                           src=job.vendor["input_file"], config={"display_name": job.name})
        return str(batch.name)

    def find(self, job: Job) -> str | None:
        def scan() -> str | None:
            for i, batch in enumerate(self.client.batches.list(config={"page_size": 100})):
                if batch.display_name == job.name:
                    return str(batch.name)
                if i >= LIST_LIMIT:
                    break
            return None

        found: str | None = self._call("batch list", job, scan)
        return found

    def poll(self, job: Job) -> Poll:
        batch = self._call("batch get", job, self.client.batches.get, name=job.vendor_id)
        state = batch.state.value if batch.state is not None else "JOB_STATE_UNSPECIFIED"
        output = batch.dest.file_name if batch.dest is not None else None
        job.vendor.update(state=state, output_file=output)
        status = state.removeprefix("JOB_STATE_").lower()  # "cancelled", "expired", ...
        if state in ENDED:
            return Poll("ended", 0, 0, job.requests, status)
        if state in FAILED:
            reason = batch.error.message if batch.error is not None and batch.error.message else None
            return Poll("failed", 0, 0, job.requests, status,
                        (reason or "batch failed; the Gemini SDK does not say why (see the batch in AI Studio)",))
        return Poll("running", 0, 0, job.requests, status)

    def fetch(self, job: Job, raw_dir: Path) -> Iterator[dict[str, Any]]:
        if "output_file" not in job.vendor:  # fetched without a poll in this state: ask once
            self.poll(job)
        name = job.vendor.get("output_file")
        if not name:  # cancelled or expired before any output: the orchestrator marks the ids missing
            return
        raw_dir.mkdir(parents=True, exist_ok=True)
        target, part = raw_dir / "output.jsonl", raw_dir / "output.jsonl.part"
        # streamed to disk (an output file can be large); atomic, so a kill leaves no half file
        self._call("output download", job, self.client.files.download, file=name, destination=str(part))
        part.replace(target)
        with open(target, encoding="utf-8") as fh:
            for line in fh:
                if line.strip():
                    yield self._normalize(json.loads(line), job.model)

    def _normalize(self, line: dict[str, Any], model: str) -> dict[str, Any]:
        rid = str(line.get("key"))
        if line.get("response") is None:
            error = line.get("error") or {}
            return result(rid, self.name, model, error_kind=_error_kind(error),
                          error_message=str(error.get("message") or error.get("status") or "no response"))
        response = line["response"]
        usage = response.get("usageMetadata") or {}
        # thinking tokens are billed as output, as OpenAI's completion_tokens include reasoning tokens
        tokens: dict[str, Any] = {"input_tokens": usage.get("promptTokenCount") or 0,
                  "output_tokens": (usage.get("candidatesTokenCount") or 0) + (usage.get("thoughtsTokenCount") or 0)}
        candidates = response.get("candidates") or []
        if not candidates:  # the prompt itself was blocked
            reason = (response.get("promptFeedback") or {}).get("blockReason") or "no candidate"
            return result(rid, self.name, model, finish_reason=reason, error_kind="content_filter",
                          error_message=f"prompt blocked: {reason}", **tokens)
        candidate = candidates[0]
        parts = (candidate.get("content") or {}).get("parts") or []
        text = "".join(p["text"] for p in parts if isinstance(p.get("text"), str) and not p.get("thought"))
        finish = candidate.get("finishReason")
        if finish == "MAX_TOKENS":
            return result(rid, self.name, model, text=text, finish_reason=finish, error_kind="truncated",
                          error_message="answer cut at maxOutputTokens", **tokens)
        if finish in FILTERED:
            return result(rid, self.name, model, text=text or None, finish_reason=finish,
                          error_kind="content_filter", error_message=f"answer stopped: {finish}", **tokens)
        return result(rid, self.name, model, text=text, finish_reason=finish, **tokens)

    def cancel(self, job: Job) -> None:
        self._call("batch cancel", job, self.client.batches.cancel, name=job.vendor_id)

    @staticmethod
    def raise_max_tokens(line: dict[str, Any], max_tokens: int) -> dict[str, Any]:
        line["request"].setdefault("generationConfig", {})["maxOutputTokens"] = max_tokens
        return line


def _error_kind(error: dict[str, Any]) -> str:
    """Kind of a per-request error: by its status name, else its code (gRPC below 100, HTTP above)."""
    code = error.get("code") if isinstance(error.get("code"), int) else None
    status = error.get("status") or (GRPC_STATUS.get(code) if code is not None and code < 100 else None)
    if status:
        return STATUS_KINDS.get(str(status), "invalid_request")
    return http_error_kind(code)


__all__ = ["GeminiRuntime"]
