"""What every runtime provides, and the normalized result every runtime produces (DESIGN.md §3).

A batch runtime (OpenAI, Anthropic, Gemini) submits a job file, polls it, fetches its output and error
files and cancels it, through the vendor's SDK. An online runtime (Ollama, local) runs requests itself with
bounded concurrency. Vendor differences live in the adapters; the orchestration in `datafast.runner` only
sees this module's types.
"""

from __future__ import annotations

import json
import os
import queue
import random
import socket
import ssl
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, ClassVar, Literal, TypeAlias

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


class MissingKey(RuntimeConfigError):
    """None of the runtime's key variables (`key_env`) is set."""

    def __init__(self, runtime: str, key_env: tuple[str, ...]):
        super().__init__(runtime, f"no API key: set {' or '.join(key_env)} in the environment")
        self.key_env = key_env


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
           input_tokens: int = 0, output_tokens: int = 0, cache_read_input_tokens: int = 0,
           cache_write_input_tokens: int = 0, cache_write_1h_input_tokens: int = 0,
           finish_reason: str | None = None,
           error_kind: str | None = None, error_message: str = "") -> dict[str, Any]:
    """One normalized result line: status ok with text, or error with kind, message and retryable.

    `usage.input_tokens` is every prompt token, cached or not; of them, `cache_read_input_tokens` were read from
    the vendor's prompt cache and `cache_write_input_tokens` written to it, of which
    `cache_write_1h_input_tokens` for 1 hour (Anthropic), each present only when not 0.
    """
    error = None
    if error_kind is not None:
        error = {"kind": error_kind, "message": error_message[:2000], "retryable": error_kind in TRANSIENT_KINDS}
    usage = {"input_tokens": int(input_tokens or 0), "output_tokens": int(output_tokens or 0)}
    if cache_read_input_tokens:
        usage["cache_read_input_tokens"] = int(cache_read_input_tokens)
    if cache_write_input_tokens:
        usage["cache_write_input_tokens"] = int(cache_write_input_tokens)
    if cache_write_1h_input_tokens:
        usage["cache_write_1h_input_tokens"] = int(cache_write_1h_input_tokens)
    return {
        "id": request_id,
        "status": "error" if error else "ok",
        "text": text,
        "usage": usage,
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
    """Common to all runtimes: its name, whether it is batch-priced, which environment it reads.

    A runtime that talks to a server declares where (`base_url_env`, `default_base_url`) and what a user most
    likely got wrong when that fails (`not_found_hint`, `unreachable_fix`); `explain` turns a failed call into a
    message naming the URL, the variable it came from and the fix, the same way for every vendor.
    """

    name: ClassVar[str]
    batch: ClassVar[bool]
    key_env: ClassVar[tuple[str, ...]] = ()  # one of these must be set
    placeholder_key: ClassVar[str | None] = None  # sent when no key is set (a local server asks for none)
    base_url_env: ClassVar[str | None] = None  # the variable that points the runtime at another server
    default_base_url: ClassVar[str] = ""  # the server used when that variable is unset
    not_found_hint: ClassVar[str] = ""  # what a 404 most likely means when the variable is set (a wrong path)
    unreachable_fix: ClassVar[str] = ""  # how to start the server, for a local one; default: fix the variable

    def __init__(self, env: Mapping[str, str] | None = None):
        self.env = dict(os.environ if env is None else env)
        if self.key_env and not any(self.env.get(k) for k in self.key_env):
            raise MissingKey(self.name, self.key_env)

    def key(self) -> str:
        return next(self.env[k] for k in self.key_env if self.env.get(k))

    # -- what to say when the server cannot be reached or refuses a call ------------------------------------
    def base_url(self) -> str:
        return (self.env.get(self.base_url_env) if self.base_url_env else None) or self.default_base_url

    def url_source(self) -> str:
        """Where the base URL came from: `from OPENAI_BASE_URL`, or `the default endpoint`."""
        var = self.base_url_env
        return f"from {var}" if var and self.env.get(var) else "the default endpoint"

    def explain(self, exc: BaseException, status: int | None = None, detail: str | None = None) -> str:
        """A failed call to the server as a message naming the URL, where it came from and the likely fix.

        `status`: the HTTP status of a refused call (default: the exception's `status_code`), None for a call that
        got no answer (refused connection, DNS, TLS, timeout: read from the exception's causes). `detail`: what
        the server said (default: the exception's text). The API key never appears in the message.
        """
        if status is None and isinstance(getattr(exc, "status_code", None), int):
            status = exc.status_code  # type: ignore[attr-defined]
        text = _status_message(self, exc, status, detail) if status is not None else _transport_message(self, exc)
        return self._redact(text)

    def _redact(self, text: str) -> str:
        for var in self.key_env:
            secret = self.env.get(var) or ""
            if len(secret) >= 4:
                text = text.replace(secret, "***")
        return text


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """The exception and its causes, outermost first (an SDK error wraps httpx's, which wraps the OS error)."""
    seen: set[int] = set()
    todo: list[BaseException] = [exc]
    while todo:
        cur = todo.pop(0)
        if id(cur) in seen:
            continue
        seen.add(id(cur))
        yield cur
        # httpcore wraps the OS error in its args and re-raises with the context suppressed: follow both
        todo += [e for e in (cur.__cause__, cur.__context__, *cur.args) if isinstance(e, BaseException)]


def _request_of(exc: BaseException) -> str:
    """`METHOD URL` of the request that failed, when an exception in the chain carries it."""
    for err in _chain(exc):
        for holder in (err, getattr(err, "response", None)):
            try:  # httpx raises RuntimeError from `.request` when none was set
                request = getattr(holder, "request", None)
            except RuntimeError:
                request = None
            if request is not None and getattr(request, "method", None) and getattr(request, "url", None):
                return f"{request.method} {request.url}"
    return ""


def _server_said(exc: BaseException) -> str:
    """The message in an error body (`{"error": {"message": ...}}`, OpenAI and Anthropic SDKs), else the text."""
    body = getattr(exc, "body", None)
    error = body.get("error", body) if isinstance(body, dict) else None
    message = error.get("message") if isinstance(error, dict) else None
    return str(message) if message else str(getattr(exc, "message", None) or exc)


def _status_message(rt: Runtime, exc: BaseException, status: int, detail: str | None) -> str:
    detail = _server_said(exc) if detail is None else detail
    request, source = _request_of(exc), rt.url_source()
    where = f"{request}, base URL {source}" if request else f"at {rt.base_url()}, {source}"
    text = f"HTTP {status}: {detail} ({where})"
    if status in (401, 403) and not rt.key_env:  # a server that takes no key: a proxy in front of it wants one
        return f"{text}: {rt.base_url()} refused the call; is {rt.base_url_env or 'the URL'} the server itself?"
    if status in (401, 403):
        key = next((k for k in rt.key_env if rt.env.get(k)), " or ".join(rt.key_env))
        if rt.placeholder_key is not None and rt.env.get(key) == rt.placeholder_key:
            return f"{text}: no key is set and {rt.base_url()} asks for one; set {key}"
        fix = f"check the key, and that {rt.base_url_env} points at the server the key is for" if \
            rt.base_url_env and rt.env.get(rt.base_url_env) else "check the key (a typo, a revoked key, another project's)"
        return f"{text}: the key in {key} was refused by {rt.base_url()}; {fix}"
    if status == 404 and rt.base_url_env and rt.env.get(rt.base_url_env) and rt.not_found_hint:
        return f"{text}: {rt.not_found_hint} ({rt.base_url_env}={rt.base_url()})"
    return text


def _transport_message(rt: Runtime, exc: BaseException) -> str:
    var, url, source = rt.base_url_env, rt.base_url(), rt.url_source()
    from_var = bool(var and rt.env.get(var))
    fix = rt.unreachable_fix or (f"start the server or fix {var}" if from_var
                                 else "check the network (a firewall or proxy may block it)")
    chain = list(_chain(exc))
    if any(isinstance(e, ssl.SSLError) for e in chain):
        reason = next(str(e) for e in chain if isinstance(e, ssl.SSLError))
        return (f"TLS with {url} ({source}) failed: {reason}; a server that speaks plain HTTP needs an http:// URL"
                f"{f' in {var}' if var else ''}, a private certificate authority needs SSL_CERT_FILE")
    if any(isinstance(e, socket.gaierror) for e in chain):
        hint = f"check the host name in {var}" if from_var else "check the network's DNS (offline?)"
        return f"cannot resolve the host of {url} ({source}): {hint}"
    if any(isinstance(e, ConnectionRefusedError) for e in chain):
        return f"nothing listens at {url} ({source}): {fix}"
    if any(isinstance(e, TimeoutError) or "Timeout" in type(e).__name__ for e in chain):
        return (f"no answer from {url} ({source}) in time ({type(exc).__name__}): the server is overloaded or "
                f"unreachable; try again later, or {fix}")
    causes = "; ".join(dict.fromkeys(f"{type(e).__name__}: {e}" for e in chain))
    return f"cannot reach {url} ({source}): {causes}; {fix}"


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


Outcome: TypeAlias = dict[str, Any] | BaseException  # a worker's normalized result, or the bug it hit
Call: TypeAlias = Callable[[], dict[str, Any]]  # one attempt at a request: its normalized result, or raises


class PooledRuntime(OnlineRuntime):
    """An online runtime that makes one vendor call per request, from a bounded pool of worker threads, retrying
    transient failures with backoff (Ollama, and the online variants of the batch vendors).

    `concurrency` daemon threads take requests from a queue that the calling thread feeds lazily (at most
    2 x concurrency requests taken from the iterable and not yet reported); the calling thread calls `on_result`
    itself, in completion order, so `on_result` needs no locking. Daemon threads rather than a
    `ThreadPoolExecutor` (whose workers are joined at interpreter exit): after Ctrl-C nothing new is sent, queued
    requests are dropped, retry waits end at once and the process exits without waiting for the calls in
    flight. Those requests have no result yet, so a later run sends them again.

    A failure whose response says how long to wait (`retry-after`, Gemini RetryInfo) is retried after that wait,
    and no worker starts a call before it has passed: a 429 storm pauses the pool instead of feeding it.
    Subclasses say how to make one attempt (`prepare`) and what a failed attempt means (`classify`).
    """

    MAX_DELAY: ClassVar[float] = 30.0  # cap of one backoff wait the runtime chooses, seconds
    MAX_RETRY_AFTER: ClassVar[float] = 300.0  # cap of one wait a vendor asks for, seconds

    def __init__(self, env: Mapping[str, str] | None = None, *, max_retries: int = 4, backoff: float = 0.5):
        super().__init__(env)
        self.max_retries, self.backoff = max(0, max_retries), backoff
        self._random = random.Random()  # jitter only; never the global generator
        self._not_before = 0.0  # time.monotonic() before which no call starts (a vendor's retry-after)
        self._pause = threading.Lock()

    @abstractmethod
    def prepare(self, request: Mapping[str, Any]) -> Call | dict[str, Any]:
        """The call that makes one attempt at `request`, or its (error) result when it cannot be sent at all."""

    @abstractmethod
    def classify(self, exc: Exception, request: Mapping[str, Any]) -> tuple[str, str, float | None]:
        """(error kind, message, seconds the vendor asked to wait or None) of a failed attempt; re-raises what is
        not a vendor or transport error (a bug must not become an error result)."""

    def run(self, requests: Iterable[Mapping[str, Any]], concurrency: int,
            on_result: Callable[[dict[str, Any]], None]) -> None:
        """Run every request, `concurrency` at a time; `on_result` is called on the calling thread only."""
        workers = max(1, int(concurrency))
        todo: queue.SimpleQueue[Mapping[str, Any] | None] = queue.SimpleQueue()
        done: queue.SimpleQueue[Outcome] = queue.SimpleQueue()  # results in completion order
        stop = threading.Event()
        threads = [threading.Thread(target=self._work, args=(todo, done, stop), name=f"datafast-{self.name}-{i}",
                                    daemon=True) for i in range(workers)]
        for thread in threads:
            thread.start()
        pending = 0  # taken from `requests`, not reported yet
        try:
            for request in requests:
                todo.put(request)
                pending += 1
                while pending >= 2 * workers:  # bounded look-ahead: never materialise the iterable
                    self._report(done.get(), on_result)
                    pending -= 1
            for _ in range(pending):
                self._report(done.get(), on_result)
        finally:  # normal end, KeyboardInterrupt or an exception from `requests`/`on_result`
            stop.set()
            for _ in threads:
                todo.put(None)

    @staticmethod
    def _report(outcome: Outcome, on_result: Callable[[dict[str, Any]], None]) -> None:
        if isinstance(outcome, BaseException):
            raise outcome  # a bug in a worker surfaces here, on the calling thread
        on_result(outcome)

    def _work(self, todo: queue.SimpleQueue[Mapping[str, Any] | None], done: queue.SimpleQueue[Outcome],
              stop: threading.Event) -> None:
        while (request := todo.get()) is not None:
            if stop.is_set():
                continue  # interrupted: drop what is queued
            try:
                done.put(self.run_one(request, stop))
            except BaseException as exc:  # handed to the calling thread
                done.put(exc)

    def run_one(self, request: Mapping[str, Any], stop: threading.Event | None = None) -> dict[str, Any]:
        """One manifest line -> its normalized result, retrying transient failures with backoff and jitter."""
        call = self.prepare(request)
        if isinstance(call, dict):
            return call
        rid, model = str(request["id"]), str(request["model"])
        stop = stop or threading.Event()
        attempt = 0
        while True:
            wait = self._not_before - time.monotonic()
            if wait > 0 and stop.wait(wait):
                return result(rid, self.name, model, error_kind="cancelled", error_message="interrupted")
            try:
                return call()
            except Exception as exc:  # classified below; anything else is re-raised
                kind, message, retry_after = self.classify(exc, request)
            if kind not in TRANSIENT_KINDS or attempt >= self.max_retries or stop.is_set():
                if attempt and kind in TRANSIENT_KINDS:
                    message += f" (after {attempt + 1} attempts)"
                return result(rid, self.name, model, error_kind=kind, error_message=message)
            if retry_after is not None:  # the vendor said: every worker waits, not only this one
                delay = min(retry_after, self.MAX_RETRY_AFTER)
                with self._pause:
                    self._not_before = max(self._not_before, time.monotonic() + delay)
            else:
                delay = min(self.MAX_DELAY, self.backoff * 2**attempt) * (0.5 + self._random.random() / 2)
            attempt += 1
            if stop.wait(delay):  # Ctrl-C: stop waiting, this result will not be reported anyway
                return result(rid, self.name, model, error_kind=kind, error_message=message + " (interrupted)")


class VendorOnlineRuntime(PooledRuntime):
    """The online variant of a batch vendor (`RUNTIMES_ONLINE`): each manifest request is rendered by the vendor's
    batch renderer (the body sent online is the batch line's body, byte for byte), sent with the vendor's SDK
    (its own retries off: `PooledRuntime` retries, honouring retry-after), and its answer is normalized and
    classified by the batch adapter, so results and error kinds are the same whichever way a request went.

    Subclasses name their batch adapter (`batch_class`) and make the call (`send`, `classify`).
    """

    batch_class: ClassVar[type[BatchRuntime]]
    default_concurrency = 16

    def __init__(self, env: Mapping[str, str] | None = None, *, schemas: Mapping[str, Any] | None = None,
                 max_retries: int = 6, backoff: float = 1.0):
        super().__init__(env, max_retries=max_retries, backoff=backoff)
        from datafast.compiler.vendors import RENDERERS, Diagnostics

        # renderer warnings were reported at compile time: these diagnostics are not read
        self._renderer = RENDERERS[self.name](dict(schemas or {}), Diagnostics())
        self._render_lock = threading.Lock()  # the renderer caches templates: one request at a time

    def line(self, request: Mapping[str, Any]) -> dict[str, Any]:
        """The request's batch job-file line, as the compiler writes it."""
        with self._render_lock:
            raw = self._renderer.render(request)
        line: dict[str, Any] = json.loads(raw)
        return line

    def prepare(self, request: Mapping[str, Any]) -> Call | dict[str, Any]:
        from datafast.compiler.vendors import RenderError, UnsupportedFeature

        try:
            line = self.line(request)
        except (RenderError, UnsupportedFeature) as exc:
            return result(str(request["id"]), self.name, str(request["model"]), error_kind="invalid_request",
                          error_message=str(exc))
        return lambda: self.send(line, str(request["model"]))

    @abstractmethod
    def send(self, line: dict[str, Any], model: str) -> dict[str, Any]:
        """Send one job-file line's request online; its normalized result (raises what `classify` reads)."""


def model_name(model: str) -> str:
    """`openai:gpt-4.1-mini` -> `gpt-4.1-mini` (model names may contain colons: `ollama:gemma3:4b`)."""
    return model.partition(":")[2]


def parse_time(value: Any) -> datetime | None:
    """An ISO 8601 timestamp as an aware datetime (naive means UTC); None when missing or unreadable."""
    if not isinstance(value, str) or not value:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))  # 3.10's fromisoformat refuses "Z"
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=timezone.utc)
