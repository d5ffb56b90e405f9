"""Shared base of the vendor emulators: HTTP server lifecycle, routing, JSON replies, faults, stats, control.

Each vendor module subclasses :class:`Emulator`, lists its ``ROUTES`` as ``(method, template, handler name)``
(templates use ``{name}`` for one path segment and ``{v}`` for the API version) and implements
``error_response`` (the vendor's error shape) and, if needed, ``check_auth``.
Control endpoints (no auth): ``GET /_emulator/stats``, ``GET|POST|DELETE /_emulator/faults``,
``POST /_emulator/reset``, ``POST /_emulator/advance`` ``{"seconds": s}``, ``GET /_emulator/health``.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
import socket
import sys
import threading
import time
import traceback
import uuid
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar
from urllib.parse import parse_qsl, urlsplit

from .answers import request_key
from .faults import Fault, FaultPlan

MAX_BODY = 256 * 1024 * 1024 + 1024 * 1024  # above every vendor's request limit
MAX_LATENCY = 30.0
API_VERSIONS = "v1beta|v1alpha|v1"
_FAULT_MESSAGES = {
    400: "Invalid request (injected by the emulator).",
    429: "Rate limit reached for requests (injected by the emulator). Please retry after a short wait.",
    500: "The server had an error while processing your request (injected by the emulator).",
    503: "The service is temporarily overloaded (injected by the emulator).",
}


class HTTPError(Exception):
    """Raised by handlers; rendered by the vendor's ``error_response``."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        kind: str | None = None,
        code: str | None = None,
        param: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status, self.message, self.kind, self.code, self.param = status, message, kind, code, param
        self.headers = headers or {}


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, str]
    headers: Message
    body: bytes
    params: dict[str, str] = field(default_factory=dict)
    route: str = ""  # "METHOD template" of the matched route

    @property
    def host(self) -> str:
        return self.headers.get("Host") or "127.0.0.1"

    def json(self) -> Any:
        try:
            return json.loads(self.body or b"null")
        except ValueError as exc:
            raise HTTPError(400, f"Request body is not valid JSON: {exc}", kind="invalid_request_error") from None

    def json_object(self) -> dict[str, Any]:
        data = self.json()
        if not isinstance(data, dict):
            raise HTTPError(400, "Request body must be a JSON object.", kind="invalid_request_error")
        return data


@dataclass
class Response:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    stream: Iterable[bytes] | None = None  # sent with chunked transfer encoding


def json_response(obj: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    body = json.dumps(obj, ensure_ascii=False).encode()
    return Response(status, body, {"Content-Type": "application/json", **(headers or {})})


def jsonl(rows: Iterable[Any]) -> bytes:
    """JSONL with one object a line, newline-terminated, no blank lines."""
    return b"".join(json.dumps(r, ensure_ascii=False).encode() + b"\n" for r in rows)


def new_id(prefix: str, n: int = 24) -> str:
    return prefix + uuid.uuid4().hex[:n]


def digest(*parts: str, n: int = 24) -> str:
    """A stable hex id derived from ``parts`` (ids that must not change between runs)."""
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:n]


def rfc3339(ts: float, *, nanos: bool = False) -> str:
    dt = datetime.fromtimestamp(ts, tz=timezone.utc)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + (f"{dt.microsecond:06d}000" if nanos else f"{dt.microsecond:06d}") + "Z"


def _compile(template: str) -> re.Pattern[str]:
    out, pos = "", 0
    for m in re.finditer(r"\{(\w+)\}", template):
        out += re.escape(template[pos : m.start()])
        name = m.group(1)
        out += f"(?P<{name}>{API_VERSIONS})" if name == "v" else f"(?P<{name}>[^/:]+)"
        pos = m.end()
    return re.compile("^" + out + re.escape(template[pos:]) + "$")


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "datafast-emulator/1"
    sys_version = ""
    timeout = 30  # idle keep-alive connections close after this
    disable_nagle_algorithm = True  # headers and body are separate writes: avoid 40 ms delayed-ACK stalls
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        pass

    def _read_body(self) -> bytes:
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            chunks, total = [], 0
            for _ in range(1_000_000):
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    self.rfile.readline()
                    break
                total += size
                if total > MAX_BODY:
                    raise HTTPError(413, "Request body too large.")
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            return b"".join(chunks)
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY:
            raise HTTPError(413, "Request body too large.")
        return self.rfile.read(length) if length else b""

    def _run(self) -> None:
        emu = self.server.emulator
        parts = urlsplit(self.path)
        try:
            body = self._read_body()
        except HTTPError as err:
            self.close_connection = True
            return self._write(emu.error_response(err))
        self.respond(emu.handle(self.make_request(parts, body)))

    def make_request(self, parts: Any, body: bytes) -> Request:
        """The Request a route handler sees (a vendor's handler may carry more of the URL)."""
        return Request(self.command, parts.path, dict(parse_qsl(parts.query)), self.headers, body)

    def respond(self, resp: Response) -> None:
        """Send a route handler's answer (a vendor's handler may shape it, e.g. HEAD without a body)."""
        self._write(resp)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _run

    def _write(self, resp: Response) -> None:
        self.send_response(resp.status)
        for key, value in resp.headers.items():
            self.send_header(key, value)
        if resp.stream is None:
            self.send_header("Content-Length", str(len(resp.body)))
            self.end_headers()
            self.wfile.write(resp.body)
            return
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        for chunk in resp.stream:
            if chunk:
                self.wfile.write(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
                self.wfile.flush()
        self.wfile.write(b"0\r\n\r\n")


class _Server(ThreadingHTTPServer):
    # real vendor servers accept a deep backlog; the stdlib default of 5 refuses bursts of connections
    request_queue_size = 1024
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], emulator: Emulator) -> None:
        self.emulator = emulator
        self._conns: set[socket.socket] = set()
        self._conns_lock = threading.Lock()
        super().__init__(address, _Handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._conns_lock:
            self._conns.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._conns_lock:
            self._conns.discard(request)
        super().shutdown_request(request)

    def handle_error(self, request: Any, client_address: Any) -> None:
        if isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            return  # the client went away: nothing to report
        super().handle_error(request, client_address)

    def close_connections(self) -> None:
        with self._conns_lock:
            conns = list(self._conns)
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)


class Emulator:
    """One vendor's HTTP server on 127.0.0.1. Use as ``with XEmulator() as emu: emu.base_url``."""

    vendor: ClassVar[str] = "base"
    api_prefix: ClassVar[str] = ""  # appended to ``url`` to give the SDK's base URL
    ROUTES: ClassVar[list[tuple[str, str, str]]] = []
    _compiled: ClassVar[list[tuple[str, str, re.Pattern[str], str]]] = []

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls._compiled = [(m, t, _compile(t), h) for m, t, h in cls.ROUTES]

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        batch_delay: float = 0.05,
        faults: FaultPlan | None = None,
        shuffle_results: bool = True,
    ) -> None:
        self.host, self.port = host, port
        self.batch_delay = batch_delay  # seconds per batch state transition
        self.shuffle_results = shuffle_results  # results in a stable order unrelated to the input order
        self.faults = faults or FaultPlan()
        self.lock = threading.RLock()
        self.clock_offset = 0.0
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._clear()

    # -- lifecycle -----------------------------------------------------------------------------------------
    def start(self) -> Emulator:
        if self._server is None:
            self._server = _Server((self.host, self.port), self)
            self.port = self._server.server_address[1]
            self._thread = threading.Thread(
                target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True,
                name=f"{self.vendor}-emulator",
            )
            self._thread.start()
        return self

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        server.close_connections()
        server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> Any:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        return self._server is not None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def base_url(self) -> str:
        return self.url + self.api_prefix

    # -- clock and state -----------------------------------------------------------------------------------
    def now(self) -> float:
        return time.time() + self.clock_offset

    def advance(self, seconds: float) -> None:
        """Move the emulator clock forward (batch states are computed from it)."""
        with self.lock:
            self.clock_offset += seconds

    def reset(self) -> None:
        """Forget every object, stat and fault."""
        self.faults.clear()
        self._clear()

    def _clear(self) -> None:
        with self.lock:
            self.calls: Counter[str] = Counter()
            self.batches_log: list[dict[str, Any]] = []
            self.online_log: list[dict[str, Any]] = []
            self.request_counts: Counter[str] = Counter()
            self.received: list[dict[str, Any]] = []  # bodies of online requests, in arrival order
            self.reset_state()

    def reset_state(self) -> None:
        """Vendor stores; subclasses extend it."""
        self.jobs: dict[str, Any] = {}  # batch id -> _jobs.Job, in creation order

    def job(self, batch_id: str, missing: str) -> Any:
        """The batch ``batch_id``, or a 404 with the vendor's ``missing`` message."""
        with self.lock:
            if batch_id not in self.jobs:
                raise HTTPError(404, missing, kind="not_found_error")
            return self.jobs[batch_id]

    # -- stats ---------------------------------------------------------------------------------------------
    def record_batch(self, batch_id: str, request_ids: list[str], **info: Any) -> None:
        with self.lock:
            self.batches_log.append({"id": batch_id, "request_ids": list(request_ids), "count": len(request_ids),
                                     **info})
            self.request_counts.update(request_ids)

    def record_online(self, request_id: str, route: str, body: Any, **info: Any) -> None:
        with self.lock:
            self.online_log.append({"id": request_id, "route": route, **info})
            self.request_counts[request_id] += 1
            self.received.append(body)

    def stats(self) -> dict[str, Any]:
        """Every batch created, every online request, call counts per route, submissions per request id."""
        with self.lock:
            return json.loads(json.dumps({
                "vendor": self.vendor,
                "calls": dict(self.calls),
                "batches": self.batches_log,
                "online_requests": self.online_log,
                "request_counts": dict(self.request_counts),
                "faults": self.faults.to_json(),
            }))

    def submissions(self, request_id: str) -> int:
        """How many times ``request_id`` was received, in batches and online calls together."""
        with self.lock:
            return self.request_counts[request_id]

    def online_call(self, req: Request, body: Any, *, model: Any, key: Any = None,
                    error_status: int = 400) -> tuple[str, str | None]:
        """Record an online call: (request id, answer fault to apply), or raise its injected ``error`` fault.

        The request id is a hash of ``key`` (default: the body), so faults can be keyed by it or by call order.
        """
        rid = request_key(body if key is None else key)
        self.record_online(rid, req.route, body, model=model)
        fault = self.faults.for_request(rid, call=f"{req.method} {req.path}")
        if fault is not None and fault.kind == "error":
            raise self.fault_error(fault.status or error_status, fault.message, fault.code)
        return rid, fault.kind if fault is not None else None

    def request_error(self, problem: HTTPError | None, fault: Fault | None) -> HTTPError:
        """The error a failed batch request reports: its validation problem, else its injected ``error``."""
        if problem is not None or fault is None:
            return problem or HTTPError(500, "Unknown failure.")
        return self.fault_error(fault.status or 400, fault.message, fault.code)

    # -- vendor hooks --------------------------------------------------------------------------------------
    def check_auth(self, req: Request) -> None:
        """Raise HTTPError(401) when the request carries no credentials."""

    def error_response(self, err: HTTPError) -> Response:
        return json_response({"error": {"message": err.message, "code": err.code}}, err.status, err.headers)

    def fault_error(self, status: int, fault_message: str | None, code: str | None = None) -> HTTPError:
        """The HTTPError for an injected fault (``http`` call or per-request ``error``)."""
        message = fault_message or _FAULT_MESSAGES.get(status, f"Injected HTTP {status} ({self.vendor} emulator).")
        return HTTPError(status, message, code=code)

    # -- dispatch ------------------------------------------------------------------------------------------
    def handle(self, req: Request) -> Response:
        try:
            if req.path.startswith("/_emulator/"):
                return self._control(req)
            route = self._route(req)
            if route is None:
                raise HTTPError(404, f"Unknown path {req.method} {req.path}", kind="not_found_error")
            template, handler = route
            req.route = f"{req.method} {template}"
            with self.lock:
                self.calls[req.route] += 1
            self.check_auth(req)
            for fault in self.faults.for_call(req.method, req.path):
                if fault.kind == "latency":
                    time.sleep(min(max(fault.seconds, 0.0), MAX_LATENCY))
                elif fault.kind == "http":
                    status = fault.status or 429
                    err = self.fault_error(status, fault.message, fault.code)
                    err.headers.update({
                        "retry-after": str(max(1, round(fault.retry_after))),
                        "retry-after-ms": str(max(1, round(fault.retry_after * 1000))),
                    })
                    raise err
            return handler(req)
        except HTTPError as err:
            return self.error_response(err)
        except Exception as exc:  # an emulator bug must surface as a 500, not a hung client
            traceback.print_exc()
            return self.error_response(HTTPError(500, f"Emulator internal error: {exc!r}", kind="api_error"))

    def _route(self, req: Request) -> tuple[str, Any] | None:
        for method, template, pattern, handler in self._compiled:
            m = pattern.match(req.path)
            if m and method == req.method:
                req.params = {k: v for k, v in m.groupdict().items() if v is not None}
                return template, getattr(self, handler)
        return None

    def _control(self, req: Request) -> Response:
        name = req.path[len("/_emulator/"):].strip("/")
        if name == "stats" and req.method == "GET":
            return json_response(self.stats())
        if name == "health":
            return json_response({"vendor": self.vendor, "url": self.url, "base_url": self.base_url})
        if name == "faults":
            if req.method == "DELETE":
                self.faults.clear()
            elif req.method == "POST":
                data = req.json()  # {"faults": [...], "replace": bool} | [fault, ...] | one fault
                wrapped = isinstance(data, dict) and "faults" in data
                items = data["faults"] if wrapped else data if isinstance(data, list) else [data]
                if wrapped and data.get("replace"):
                    self.faults.clear()
                try:
                    self.faults.load(items)
                except (TypeError, ValueError) as exc:
                    return json_response({"error": str(exc)}, 400)
            return json_response({"faults": self.faults.to_json()})
        if name == "reset" and req.method == "POST":
            self.reset()
            return json_response({"ok": True})
        if name == "advance" and req.method == "POST":
            self.advance(float(req.json_object().get("seconds", 0)))
            return json_response({"ok": True, "now": self.now()})
        return json_response({"error": f"unknown control endpoint {req.method} {req.path}"}, 404)
