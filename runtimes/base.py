"""What every runtime provides, and the normalized result every runtime produces (DESIGN.md §3).

A batch runtime (OpenAI, Anthropic, Gemini) submits a job file, polls it, fetches its output and error
files and cancels it, through the vendor's SDK. An online runtime (Ollama, local) runs requests itself with
bounded concurrency. Vendor differences live in the adapters; the orchestration in `datafast.runner` only
sees this module's types.
"""

from __future__ import annotations

import os
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal

# error kinds; retryable ones are resubmitted in a follow-up batch, the others are reported
TRANSIENT_KINDS = frozenset({"rate_limit", "server_error", "expired", "cancelled", "timeout", "connection"})
TERMINAL_KINDS = frozenset({"invalid_request", "truncated", "refusal", "content_filter", "auth", "not_found"})
BYTES_PER_TOKEN = 4  # for enqueued-token estimates of job-file lines (JSON, mostly ASCII)


class RuntimeFailure(Exception):
    """A runtime could not do what was asked (vendor down, job rejected, ...). Exit code 1."""

    def __init__(self, runtime: str, message: str, job: str | None = None):
        self.runtime, self.job = runtime, job
        super().__init__(f"{runtime}{f' job {job}' if job else ''}: {message}")


class RuntimeConfigError(RuntimeFailure):
    """Missing key, unknown runtime, missing extra: bad input, reported before anything is sent. Exit 2."""


class QuotaRefused(RuntimeFailure):
    """The vendor refused a batch creation for quota or capacity (HTTP 429, 503, 529, RESOURCE_EXHAUSTED) after
    the SDK's own retries: nothing was created, and the same creation may succeed later.

    `retry_after`: seconds the vendor asked to wait (retry-after header, Gemini RetryInfo), when it said.
    """

    def __init__(self, runtime: str, message: str, job: str | None = None, retry_after: float | None = None):
        super().__init__(runtime, message, job)
        self.retry_after = retry_after


# HTTP statuses of a refusal that clears by itself: rate/quota limit, vendor overloaded (Anthropic 529)
CAPACITY_STATUSES = frozenset({429, 503, 529})


def retry_after_seconds(headers: Mapping[str, str] | None) -> float | None:
    """The wait a response asks for: `retry-after-ms`, else `retry-after` (seconds or an HTTP date)."""
    if not headers:
        return None
    try:
        if headers.get("retry-after-ms"):
            return max(0.0, float(headers["retry-after-ms"]) / 1000)
        value = headers.get("retry-after")
        if not value:
            return None
        try:
            return max(0.0, float(value))
        except ValueError:
            from email.utils import parsedate_to_datetime

            return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError, OverflowError):
        return None


def result(request_id: str, runtime: str, model: str, *, text: str | None = None,
           input_tokens: int = 0, output_tokens: int = 0, finish_reason: str | None = None,
           error_kind: str | None = None, error_message: str = "") -> dict[str, Any]:
    """One normalized result line: status ok with text, or error with kind, message and retryable."""
    error = None
    if error_kind is not None:
        error = {"kind": error_kind, "message": error_message[:2000], "retryable": error_kind in TRANSIENT_KINDS}
    return {
        "id": request_id,
        "status": "error" if error else "ok",
        "text": text,
        "usage": {"input_tokens": int(input_tokens or 0), "output_tokens": int(output_tokens or 0)},
        "finish_reason": finish_reason,
        "error": error,
        "runtime": runtime,
        "model": model,
    }


def http_error_kind(status: int | None) -> str:
    """Error kind of an HTTP status a vendor returned for one request."""
    if status == 429:
        return "rate_limit"
    if status in (401, 403):
        return "auth"
    if status == 404:
        return "not_found"
    if status == 408:
        return "timeout"
    if status is not None and status >= 500:
        return "server_error"
    return "invalid_request"


@dataclass
class Job:
    """A batch job as recorded in state.json (see `datafast.state`)."""

    name: str  # local, unique in the output dir; the vendor tag (metadata / display name)
    runtime: str
    model: str  # runtime:model
    stage: str
    file: str  # submission file, relative to the output dir; its lines carry the request ids
    requests: int
    attempt: int = 1
    status: str = "prepared"  # prepared -> creating -> submitted -> ended -> fetched | failed | cancelled
    vendor_id: str | None = None
    vendor: dict[str, Any] = field(default_factory=dict)  # vendor-side ids (input file ...), counts, errors
    error: str | None = None


@dataclass(frozen=True)
class Poll:
    """What a vendor says about a batch. `state`: running, ended (results can be fetched) or failed."""

    state: Literal["running", "ended", "failed"]
    done: int = 0
    failed: int = 0
    total: int = 0
    vendor_status: str = ""
    errors: tuple[str, ...] = ()  # validation errors, with line numbers where the vendor gives them
    cancelled: bool = False  # a cancel was asked for: requests without a result were cancelled, not expired
    # failed only because the organisation's queue or quota was full (OpenAI token_limit_exceeded, Gemini
    # RESOURCE_EXHAUSTED): nothing ran, and the same requests may be sent again after a wait
    quota: bool = False


class Runtime(ABC):
    """Common to all runtimes: its name, whether it is batch-priced, which environment it reads."""

    name: ClassVar[str]
    batch: ClassVar[bool]
    key_env: ClassVar[tuple[str, ...]] = ()  # one of these must be set

    def __init__(self, env: Mapping[str, str] | None = None):
        self.env = dict(os.environ if env is None else env)
        if self.key_env and not any(self.env.get(k) for k in self.key_env):
            raise RuntimeConfigError(self.name, f"no API key: set {' or '.join(self.key_env)} in the environment")

    def key(self) -> str:
        return next(self.env[k] for k in self.key_env if self.env.get(k))


class BatchRuntime(Runtime):
    batch = True
    line_id_field: ClassVar[str] = "custom_id"  # the field of a job-file line that carries the request id

    @classmethod
    def line_id(cls, line: Mapping[str, Any]) -> str:
        """The request id a line of this runtime's job file carries."""
        return str(line[cls.line_id_field])

    @staticmethod
    def estimate_tokens(raw_line: str | bytes) -> int:
        """Input tokens one job-file line enqueues, estimated from its size (~4 bytes a token).

        The whole line counts (messages, schema, parameters, id): an over-estimate by its JSON punctuation,
        which is the safe side for pacing against a vendor's enqueued-token limit.
        """
        size = len(raw_line.encode("utf-8") if isinstance(raw_line, str) else raw_line)
        return size // BYTES_PER_TOKEN + 1

    @abstractmethod
    def create(self, job: Job, path: Path) -> str:
        """Upload the job file at `path` and create the batch, tagged with `job.name`; the vendor batch id."""

    @abstractmethod
    def find(self, job: Job) -> str | None:
        """The vendor id of a batch created for `job` whose id was not recorded (a kill right after create)."""

    @abstractmethod
    def poll(self, job: Job) -> Poll: ...

    @abstractmethod
    def fetch(self, job: Job, raw_dir: Path) -> Iterator[dict[str, Any]]:
        """Normalized results of an ended batch, output and error files both; raw payloads saved in `raw_dir`."""

    @abstractmethod
    def cancel(self, job: Job) -> None: ...

    @staticmethod
    @abstractmethod
    def raise_max_tokens(line: dict[str, Any], max_tokens: int) -> dict[str, Any]:
        """A job-file line with its output-token limit set to `max_tokens` (retries of truncated answers)."""


class OnlineRuntime(Runtime):
    batch = False
    default_concurrency: ClassVar[int] = 8

    @abstractmethod
    def run(self, requests: Iterable[Mapping[str, Any]], concurrency: int,
            on_result: Callable[[dict[str, Any]], None]) -> None:
        """Run every request (manifest lines), calling `on_result` with each normalized result as it arrives."""


def model_name(model: str) -> str:
    """`openai:gpt-4.1-mini` -> `gpt-4.1-mini` (model names may contain colons: `ollama:gemma3:4b`)."""
    return model.partition(":")[2]
