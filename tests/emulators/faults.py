"""Fault injection for the emulators, settable per test in Python or over HTTP (``POST /_emulator/faults``).

A :class:`Fault` is keyed either by a request id (``custom_id`` / Gemini ``key`` / the body hash of an online
call) or by HTTP call order (``path``, a regex searched in ``"METHOD /path"``, plus ``skip``). Kinds:

- per request: ``error`` (vendor error for that request), ``invalid_json``, ``truncated``, ``refusal``;
- per batch: ``expire`` / ``cancel`` (batch ends expired / cancelled after ``completed`` requests),
  ``validation_failure`` (OpenAI ``failed`` with ``errors.data``; Gemini ``FAILED``; Anthropic 400 at create);
  its ``code`` is the errors.data code (``token_limit_exceeded``: a queue-limit refusal, no line) or, for Gemini,
  ``RESOURCE_EXHAUSTED`` (operation error code 8 instead of 3);
- per HTTP call: ``http`` (``status`` with retry-after, ``times`` calls), ``latency`` (``seconds`` per call).

``times`` is how many times a fault fires (default 1; ``None`` = every time; latency defaults to every time).
A batch fault without ``request_id`` applies to the next batch created (after ``skip`` batches).
"""

from __future__ import annotations

import dataclasses
import re
import threading
from dataclasses import dataclass
from typing import Any

REQUEST_KINDS = frozenset({"error", "invalid_json", "truncated", "refusal"})
BATCH_KINDS = frozenset({"expire", "cancel", "validation_failure"})
CALL_KINDS = frozenset({"http", "latency"})
KINDS = REQUEST_KINDS | BATCH_KINDS | CALL_KINDS
_UNSET: Any = object()


@dataclass
class Fault:
    kind: str
    request_id: str | None = None  # custom_id / key / online body hash
    path: str | None = None  # regex searched in "METHOD /path" (call-order keying)
    skip: int = 0  # matching calls (or batches) let through before the fault fires
    times: int | None = 1  # firings left; None = unlimited
    status: int | None = None  # http: HTTP status; error: the request's status code
    retry_after: float = 0.01  # http: seconds, sent as retry-after / retry-after-ms
    seconds: float = 0.0  # latency per call
    message: str | None = None
    code: str | None = None  # vendor error type / code override
    completed: int | None = None  # expire / cancel: requests finished before the end (default: half)
    fired: int = 0

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown fault kind {self.kind!r}; expected one of {sorted(KINDS)}")
        if self.kind == "http" and self.path is None:
            raise ValueError("an http fault needs a path")

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


class FaultPlan:
    """A thread-safe list of faults consulted by the emulator on every call, batch and request."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._faults: list[Fault] = []

    def add(self, kind: str, *, times: int | None = _UNSET, **params: Any) -> Fault:
        if times is _UNSET:
            times = None if kind == "latency" else 1
        fault = Fault(kind=kind, times=times, **params)
        with self._lock:
            self._faults.append(fault)
        return fault

    # Convenience wrappers for the common cases.
    def error(self, request_id: str | None = None, **params: Any) -> Fault:
        return self.add("error", request_id=request_id, **params)

    def http(self, path: str, status: int = 429, *, times: int | None = 1, **params: Any) -> Fault:
        return self.add("http", path=path, status=status, times=times, **params)

    def latency(self, seconds: float, path: str | None = None, **params: Any) -> Fault:
        return self.add("latency", seconds=seconds, path=path, **params)

    def load(self, items: list[dict[str, Any]]) -> list[Fault]:
        return [self.add(**dict(item)) for item in items]

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()

    def to_json(self) -> list[dict[str, Any]]:
        with self._lock:
            return [f.to_json() for f in self._faults]

    # -- matching (each returns the faults that fire now and consumes them) -------------------------------
    def _fire(self, fault: Fault) -> bool:
        if fault.skip > 0:
            fault.skip -= 1
            return False
        if fault.times is not None:
            if fault.times <= 0:
                return False
            fault.times -= 1
        fault.fired += 1
        return True

    def for_call(self, method: str, path: str) -> list[Fault]:
        """latency faults and at most one http fault (the first that fires) for one HTTP call."""
        target = f"{method} {path}"
        fired: list[Fault] = []
        with self._lock:
            for f in self._faults:
                if f.kind not in CALL_KINDS or (f.times is not None and f.times <= 0):
                    continue
                if f.kind == "http" and any(g.kind == "http" for g in fired):
                    continue
                if (f.path is None or re.search(f.path, target)) and self._fire(f):
                    fired.append(f)
        return fired

    def for_request(self, request_id: str, call: str | None = None) -> Fault | None:
        """The per-request fault for ``request_id`` (or, for an online ``call``, the next call-order one)."""
        with self._lock:
            for f in self._faults:
                if f.kind not in REQUEST_KINDS or (f.times is not None and f.times <= 0):
                    continue
                keyed = f.request_id is not None and f.request_id == request_id
                ordered = f.request_id is None and f.path is not None and call is not None
                if (keyed or (ordered and re.search(f.path or "", call or ""))) and self._fire(f):
                    return f
        return None

    def for_batch(self, request_ids: list[str]) -> Fault | None:
        """The batch-level fault for a new batch carrying ``request_ids``."""
        ids = set(request_ids)
        with self._lock:
            for f in self._faults:
                if f.kind not in BATCH_KINDS or (f.times is not None and f.times <= 0):
                    continue
                if (f.request_id is None or f.request_id in ids) and self._fire(f):
                    return f
        return None
