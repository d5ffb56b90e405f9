"""Vendor-neutral batch lifecycle, computed lazily from timestamps (no background threads).

A job walks through the vendor's ``stages`` (e.g. OpenAI validating -> in_progress -> finalizing), each lasting
``delay`` seconds, then ends ``completed``. During the processing stage requests finish progressively, in input
order. A cancel (API call or ``cancel`` fault) moves it to ``cancelling`` for one ``delay`` then ``cancelled``;
an ``expire`` fault ends it ``expired`` at the natural end; a validation failure ends it ``failed`` after the
first stage. In every partial case the first ``done`` requests have results and the rest do not.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

from ._base import HTTPError
from .faults import Fault


@dataclass
class Item:
    """One request of a batch."""

    rid: str  # custom_id / key
    body: Any = None  # the vendor request (OpenAI body, Anthropic params, Gemini request)
    problem: HTTPError | None = None  # why the vendor rejects this request (-> errored result)
    fault: Fault | None = None  # per-request fault
    cached: Any = None  # prompt-cache outcome, decided when the batch is created (vendor-specific)

    @property
    def ok(self) -> bool:
        return self.problem is None and not (self.fault is not None and self.fault.kind == "error")

    @property
    def answer_fault(self) -> str | None:
        """invalid_json / truncated / refusal: how the answer is damaged (None for a clean answer)."""
        return self.fault.kind if self.fault is not None and self.fault.kind != "error" else None


@dataclass
class JobView:
    state: str  # a stage name, "cancelling", or completed | expired | cancelled | failed
    terminal: bool
    done: int  # requests processed: items[:done] have a result
    succeeded: int
    failed: int
    times: dict[str, float]  # state -> when it was entered (reached states only)


@dataclass
class Job:
    id: str
    items: list[Item]
    created: float
    delay: float
    stages: tuple[str, ...]
    proc_stage: int  # index of the stage during which requests are processed
    fault: Fault | None = None  # expire / cancel / validation_failure
    failure: list[dict[str, Any]] | None = None  # validation errors -> failed
    meta: dict[str, Any] = field(default_factory=dict)  # vendor fields (endpoint, metadata, model, ...)
    cache: dict[str, Any] = field(default_factory=dict)  # vendor output (file ids, result rows)
    cancel_at: float | None = None
    cancel_done: int | None = None

    def __post_init__(self) -> None:
        self._ok_prefix = [0]
        for item in self.items:
            self._ok_prefix.append(self._ok_prefix[-1] + int(item.ok))
        if self.fault is not None and self.fault.kind == "validation_failure" and self.failure is None:
            self.failure = [{
                "code": self.fault.code or "invalid_request",
                "message": self.fault.message or "Injected validation failure.",
                "param": None,
                # a queue-limit refusal (token_limit_exceeded, ...) is about the whole file, not one line
                "line": None if (self.fault.code or "").endswith("_limit_exceeded") else 1,
            }]
        if self.fault is not None and self.fault.kind == "cancel":
            self.cancel_at = self._t_proc + self.delay / 2
            self.cancel_done = self._planned()

    @property
    def _t_proc(self) -> float:
        return self.created + self.delay * self.proc_stage

    @property
    def t_end(self) -> float:
        return self.created + self.delay * len(self.stages)

    def _planned(self) -> int:
        n = len(self.items)
        k = self.fault.completed if self.fault is not None and self.fault.completed is not None else n // 2
        return max(0, min(n, k))

    def _progress(self, t: float) -> int:
        n = len(self.items)
        if t < self._t_proc:
            return 0
        if self.delay <= 0 or t >= self._t_proc + self.delay:
            return n
        return int(n * (t - self._t_proc) / self.delay)

    def _stage_times(self, until: float) -> dict[str, float]:
        return {s: self.created + i * self.delay for i, s in enumerate(self.stages)
                if self.created + i * self.delay <= until}

    def _view(self, state: str, terminal: bool, done: int, times: dict[str, float]) -> JobView:
        ok = self._ok_prefix[done]
        return JobView(state, terminal, done, ok, done - ok, times)

    def initial_view(self) -> JobView:
        """What the create call answers: the first stage, nothing done yet."""
        return self._view(self.stages[0], False, 0, {self.stages[0]: self.created})

    def view(self, now: float) -> JobView:
        if self.failure is not None:
            t_fail = self.created + self.delay
            if now >= t_fail:
                return self._view("failed", True, 0, {self.stages[0]: self.created, "failed": t_fail})
            return self.initial_view()
        if self.cancel_at is not None and now >= self.cancel_at:
            done = self.cancel_done if self.cancel_done is not None else self._progress(self.cancel_at)
            times = {**self._stage_times(self.cancel_at), "cancelling": self.cancel_at}
            t_cancelled = self.cancel_at + self.delay
            if now >= t_cancelled:
                return self._view("cancelled", True, done, {**times, "cancelled": t_cancelled})
            return self._view("cancelling", False, done, times)
        expiring = self.fault is not None and self.fault.kind == "expire"
        cap = self._planned() if expiring or self.cancel_at is not None else len(self.items)
        if now >= self.t_end:
            end_state = "expired" if expiring else "completed"
            return self._view(end_state, True, cap, {**self._stage_times(self.t_end), end_state: self.t_end})
        index = int((now - self.created) / self.delay) if self.delay > 0 else 0
        state = self.stages[max(0, min(index, len(self.stages) - 1))]
        return self._view(state, False, min(self._progress(now), cap), self._stage_times(now))

    def cancel(self, now: float) -> JobView | None:
        """Request cancellation; None when the job has already ended (or is cancelling)."""
        current = self.view(now)
        if current.terminal or current.state == "cancelling":
            return None
        self.cancel_at = now
        if self.fault is not None and self.fault.kind == "expire":
            self.cancel_done = min(self._progress(now), self._planned())
        return self.view(now)

    def ordered(self, items: list[Item], shuffle: bool) -> list[Item]:
        """Results order: stable but unrelated to input order when ``shuffle`` (vendors never promise order)."""
        if not shuffle:
            return list(items)
        out = sorted(items, key=lambda it: hashlib.sha256(f"{self.id}|{it.rid}".encode()).digest())
        # never the input order by chance (batch ids are random): a client relying on order must fail every time
        return out[::-1] if out == list(items) else out
