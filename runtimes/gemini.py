"""Gemini Batch API through the `google-genai` SDK: create (display name = job name), poll, fetch, cancel.

Input by size: a job file of at most `INLINE_MAX_BYTES` goes inline in the create call (no upload, one round
trip); a larger one is uploaded and the batch reads `files/...`. An inline request carries its key as
`metadata: {"key": ...}`, which the API echoes on its inlined response; a file line carries `key` itself.
Results come back in no particular order and are joined on the key. Both modes save their results as the same
`{key, response | error}` JSONL lines in `raw_dir/output.jsonl`, normalized by one function.

Batches are read as raw REST JSON (`_rest`), not as the SDK's typed `BatchJob`. That model drops `batchStats`,
the operation's `error` and the `status` of per-request errors, and fails validation on a google.rpc.Status
whose `details` are objects (the SDK types them as strings), so one such inline error would make the whole
batch unreadable.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import urlencode

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

ENDED = {"BATCH_STATE_SUCCEEDED", "BATCH_STATE_CANCELLED", "BATCH_STATE_EXPIRED"}
FAILED = {"BATCH_STATE_FAILED"}  # every other state (pending, running, ...) is still running
# generationConfig fields the SDK carries to the wire unchanged in an inlined request; any other: file mode
INLINE_CONFIG = frozenset({"responseMimeType", "responseJsonSchema", "maxOutputTokens", "temperature", "topP",
                           "seed", "stopSequences", "candidateCount", "presencePenalty", "frequencyPenalty"})
LIST_PAGES = 10  # pages of 100 batches scanned by `find`; a batch created moments ago is near the top
CLOCK_SKEW = timedelta(seconds=60)  # how far this machine's clock may run ahead of Google's, for `find`
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
CAPACITY_STATUS_NAMES = frozenset({"RESOURCE_EXHAUSTED", "UNAVAILABLE"})  # quota or capacity: clears by waiting


class GeminiRuntime(BatchRuntime):
    name = "gemini"
    line_id_field = "key"
    key_env = ("GEMINI_API_KEY", "GOOGLE_API_KEY")
    base_url_env = "GOOGLE_GEMINI_BASE_URL"
    default_base_url = "https://generativelanguage.googleapis.com/"
    # the SDK adds the api_version (v1beta, where the Batch API lives) and the method path itself
    not_found_hint = ("GOOGLE_GEMINI_BASE_URL is the server's root, without /v1beta (the SDK adds /v1beta/models/..., "
                      "/v1beta/batches/... to it)")
    # The API caps a batchGenerateContent request, inline requests included, at 20 MB; half of it leaves room
    # for the JSON wrapping of each request, and a bigger job file is uploaded instead (file mode, up to 2 GB).
    INLINE_MAX_BYTES: ClassVar[int] = 10 * 1024 * 1024

    def __init__(self, env: dict[str, str] | None = None):
        super().__init__(env)
        import httpx
        from google import genai  # the SDK is imported only when this runtime is used
        from google.genai import errors

        self._errors: tuple[type[Exception], ...] = (errors.APIError, httpx.HTTPError)
        self._api_error: type[Exception] = errors.APIError
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
        self._inline: dict[str, list[dict[str, Any]]] = {}  # inlined responses of batches seen ended, by id

    def _call(self, what: str, job: Job, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except self._errors as exc:
            message = f"{what} failed: {self.explain(exc, *_status_detail(exc))}"
            if isinstance(exc, self._api_error) and (getattr(exc, "code", None) in CAPACITY_STATUSES
                                                     or getattr(exc, "status", None) in CAPACITY_STATUS_NAMES):
                raise QuotaRefused(self.name, message, job.name, _retry_delay(exc)) from None
            raise RuntimeFailure(self.name, message, job.name) from None

    def _rest(self, path: str) -> dict[str, Any]:
        """GET `path` (under /v1beta/) as raw JSON, through the SDK's client: its auth, base URL and retries."""
        body = self.client._api_client.request("get", path, {}).body
        return dict(json.loads(body or "{}"))

    def create(self, job: Job, path: Path) -> str:
        mode = job.vendor.get("input_mode") or ("inline" if path.stat().st_size <= self.INLINE_MAX_BYTES else "file")
        src = _inline_source(path) if mode == "inline" else None
        if src is not None:
            job.vendor["input_mode"] = "inline"
            try:
                batch = self._call("batch create", job, self.client.batches.create, model=model_name(job.model),
                                   src=src, config={"display_name": job.name})
                return str(batch.name)
            except ValueError:  # refused by the SDK before sending anything (a request with no contents): in a
                pass  # file the API judges each line on its own, rather than the whole batch being refused
        if "input_file" not in job.vendor:  # a retried create reuses the upload
            uploaded = self._call("upload", job, self.client.files.upload, file=str(path),
                                  config={"mime_type": "jsonl", "display_name": job.name})
            job.vendor["input_file"] = uploaded.name
        job.vendor["input_mode"] = "file"
        batch = self._call("batch create", job, self.client.batches.create, model=model_name(job.model),
                           src=job.vendor["input_file"], config={"display_name": job.name})
        return str(batch.name)

    def find(self, job: Job) -> str | None:
        """The batch this job created: its display name, created at or after the job's intent time (less
        CLOCK_SKEW); the same spec compiled into another dir makes jobs of the same name, whose earlier
        batches must not be adopted."""
        since = parse_time(job.vendor.get("intent_at"))

        def scan() -> str | None:
            query = {"pageSize": "100"}
            for _ in range(LIST_PAGES):
                page = self._rest(f"batches?{urlencode(query)}")
                for op in page.get("operations") or []:
                    meta = op.get("metadata") or {}
                    created = parse_time(meta.get("createTime"))
                    if meta.get("displayName") == job.name and (
                            since is None or created is None or created >= since - CLOCK_SKEW):
                        return str(op["name"])
                if not page.get("nextPageToken"):
                    break
                query["pageToken"] = page["nextPageToken"]
            return None

        found: str | None = self._call("batch list", job, scan)
        return found

    def poll(self, job: Job) -> Poll:
        op: dict[str, Any] = self._call("batch get", job, self._rest, str(job.vendor_id))
        meta = op.get("metadata") or {}
        state = str(meta.get("state") or "BATCH_STATE_UNSPECIFIED")
        output = meta.get("output") or {}
        job.vendor.update(state=state, output_file=output.get("responsesFile"))
        stats = meta.get("batchStats") or {}
        done, failed = int(stats.get("successfulRequestCount") or 0), int(stats.get("failedRequestCount") or 0)
        total = int(stats.get("requestCount") or job.requests)
        status = state.removeprefix("BATCH_STATE_").lower()  # "cancelled", "expired", ...
        if state in ENDED:
            if "inlinedResponses" in output:  # kept for `fetch`, which usually follows: no second download
                self._inline[str(job.vendor_id)] = (output["inlinedResponses"] or {}).get("inlinedResponses") or []
            return Poll("ended", done, failed, total, status, cancelled="CANCEL" in state)
        if state in FAILED:
            error = op.get("error") or {}
            reason = error.get("message")
            # a batch failed for the project's batch quota (enqueued tokens, concurrent batches) can run later
            quota = _error_kind(error) == "rate_limit" if error else False
            return Poll("failed", done, failed, total, status, (reason or "batch failed; the API does not say why",),
                        quota=quota)
        return Poll("running", done, failed, total, status)

    def fetch(self, job: Job, raw_dir: Path) -> Iterator[dict[str, Any]]:
        # Inline responses are kept from the poll that saw the batch end, else asked for. Which mode is read from
        # the batch: a kill right after create leaves a batch that `find` recovers with no mode nor output known.
        if str(job.vendor_id) not in self._inline and ("output_file" not in job.vendor
                                                       or job.vendor.get("input_mode") == "inline"):
            self.poll(job)
        inlined = self._inline.pop(str(job.vendor_id), None)
        name = job.vendor.get("output_file")
        if not inlined and not name:  # cancelled or expired before any output: the orchestrator marks the ids
            return  # missing
        raw_dir.mkdir(parents=True, exist_ok=True)
        target, part = raw_dir / "output.jsonl", raw_dir / "output.jsonl.part"
        if inlined:  # the responses sat in the batch, each with its request's metadata
            part.write_text("".join(json.dumps(_keyed(r)) + "\n" for r in inlined), encoding="utf-8")
        else:  # streamed to disk (an output file can be large)
            self._call("output download", job, self.client.files.download, file=name, destination=str(part))
        part.replace(target)  # atomic, so a kill leaves no half file
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
        # thinking tokens are billed as output, as OpenAI's completion_tokens include reasoning tokens;
        # promptTokenCount includes the implicitly cached tokens
        tokens: dict[str, Any] = {
            "input_tokens": usage.get("promptTokenCount") or 0,
            "output_tokens": (usage.get("candidatesTokenCount") or 0) + (usage.get("thoughtsTokenCount") or 0),
            "cache_read_input_tokens": usage.get("cachedContentTokenCount") or 0}
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


def _status_detail(exc: Any) -> tuple[int | None, str | None]:
    """(HTTP status, what the server said) of a `google.genai` APIError; (None, None) for a transport error."""
    code = getattr(exc, "code", None)
    if not isinstance(code, int):
        return None, None
    status = getattr(exc, "status", None)
    return code, f"{status or ''} {getattr(exc, 'message', '') or ''}".strip() or str(exc)


def _retry_delay(exc: Any) -> float | None:
    """The wait a Gemini error asks for: its google.rpc.RetryInfo `retryDelay` ("37s"), else retry-after."""
    details = getattr(exc, "details", None)
    error = details.get("error") if isinstance(details, dict) else None
    for detail in (error or {}).get("details") or []:
        delay = detail.get("retryDelay") if isinstance(detail, dict) else None
        if isinstance(delay, str) and delay.endswith("s"):
            try:
                return max(0.0, float(delay[:-1]))
            except ValueError:
                pass
    return retry_after_seconds(getattr(getattr(exc, "response", None), "headers", None))


def _inline_source(path: Path) -> list[dict[str, Any]] | None:
    """The job file's lines as the SDK's inlined requests, or None when one cannot go inline unchanged.

    The SDK takes a request's top-level fields but `contents` inside `config`, beside the generationConfig
    fields (camelCase names are accepted as aliases), and moves them back to the request when sending. It
    rewrites some fields on the way (thinkingConfig keys to snake_case, topK to a float, inline bytes re-encoded):
    only text and the INLINE_CONFIG fields go inline, so the wire request is the line's (checked in the tests).
    """
    src = []
    with open(path, encoding="utf-8") as fh:
        for raw in filter(str.strip, fh):
            try:
                line = json.loads(raw)
                request, key = dict(line["request"]), str(line["key"])
                config = dict(request.pop("generationConfig", {}))
            except (ValueError, TypeError, KeyError):
                return None  # sent as a file: the API says which line is wrong
            system = request.get("systemInstruction")
            blocks = [*(request.get("contents") or []), *([] if system is None else [system])]
            if not (set(request) <= {"contents", "systemInstruction"} and set(config) <= INLINE_CONFIG
                    and all(_text_only(b) for b in blocks)):
                return None
            contents, config = request.pop("contents", None), {**config, **request}
            # no `config` at all when empty: the SDK would send an empty generationConfig
            src.append({"contents": contents, "metadata": {"key": key}, **({"config": config} if config else {})})
    return src or None


def _text_only(block: Any) -> bool:
    parts = block.get("parts") if isinstance(block, dict) else None
    return (isinstance(parts, list) and set(block) <= {"role", "parts"}
            and all(isinstance(p, dict) and set(p) == {"text"} for p in parts))


def _keyed(inlined: dict[str, Any]) -> dict[str, Any]:
    """An inlined response as an output-file line: `{key, response | error}`."""
    key = (inlined.get("metadata") or {}).get("key")
    return {"key": key, **{k: inlined[k] for k in ("response", "error") if k in inlined}}


__all__ = ["GeminiRuntime"]
