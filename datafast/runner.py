"""submit / status / cancel: the manifest of an output dir through its runtimes, resumable at any instant.

Per request id, `results/` decides: an ok result is never sent again; a retryable error is resubmitted in a
follow-up job until `max_attempts`; a terminal one only with `retry_failed`. Jobs are recorded in
state.json before and after every vendor call, so a restarted `submit` polls what exists instead of
creating it again (see `reconcile`).
"""

from __future__ import annotations

import json
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import orjson

from datafast.runtimes import BatchRuntime, OnlineRuntime, RuntimeFailure, runtime_class
from datafast.runtimes.base import Job, Poll, result
from datafast.runtimes.store import ResultIndex, ResultStore, State, atomic_write

from .logs import get_logger

log = get_logger("submit")

MAX_ATTEMPTS = 3


class BadInput(ValueError):
    """A wrong argument (exit 2), as opposed to a runtime failure (exit 1)."""


class NotCompiled(BadInput):
    """The directory holds no compiled manifest."""


@dataclass
class Workdir:
    """An output dir: its manifest and its runtime state."""

    path: Path
    manifest: dict[str, Any]
    state: State
    store: ResultStore

    @classmethod
    def open(cls, path: str | Path) -> Workdir:
        path = Path(path)
        if not (path / "manifest.json").is_file() or not (path / "manifest.jsonl").is_file():
            raise NotCompiled(f"{path}: no manifest.json/manifest.jsonl here; run `datafast compile SPEC -o {path}` first")
        manifest = json.loads((path / "manifest.json").read_text("utf-8"))
        return cls(path, manifest, State(path), ResultStore(path))

    def requests(self) -> Iterator[dict[str, Any]]:
        with open(self.path / "manifest.jsonl", "rb") as fh:
            for line in fh:
                yield orjson.loads(line)


def line_id(line: dict[str, Any]) -> str:
    """The request id a job-file line carries (custom_id, or Gemini's key)."""
    return str(line.get("custom_id") or line.get("key"))


@dataclass
class Plan:
    """What a submit round has to do."""

    batch: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))  # runtime -> ids to send
    online: dict[str, list[dict[str, Any]]] = field(default_factory=lambda: defaultdict(list))
    done: int = 0
    given_up: int = 0


def plan_round(wd: Workdir, retry_failed: bool, max_attempts: int) -> Plan:
    """Which requests still need sending: never one with an ok result or in a live job; a failed one if its
    error is retryable and it failed fewer than `max_attempts` times, or whatever its error with `retry_failed`."""
    in_flight = {line_id(json.loads(line)) for job in wd.state.live() for line in _lines(wd.path / job.file)}
    plan = Plan()
    with wd.store.index() as index:
        chunk: list[dict[str, Any]] = []
        for request in wd.requests():
            chunk.append(request)
            if len(chunk) == 4096:
                _plan_chunk(plan, chunk, index, in_flight, retry_failed, max_attempts)
                chunk = []
        _plan_chunk(plan, chunk, index, in_flight, retry_failed, max_attempts)
    return plan


def _plan_chunk(plan: Plan, chunk: list[dict[str, Any]], index: ResultIndex, in_flight: set[str],
                retry_failed: bool, max_attempts: int) -> None:
    for request, pos in zip(chunk, index.positions([r["id"] for r in chunk]).tolist(), strict=True):
        rid, runtime = request["id"], request["model"].partition(":")[0]
        if pos >= 0 and index.ok[pos]:
            plan.done += 1
            continue
        if rid in in_flight:
            continue
        if pos >= 0:
            retry = bool(index.retryable[pos]) and int(index.errors[pos]) < max_attempts
            if not (retry or retry_failed):
                plan.given_up += 1
                continue
        if runtime in ("ollama", "local"):
            plan.online[runtime].append(request)
        else:
            plan.batch[runtime].add(rid)


def _lines(path: Path) -> Iterator[str]:
    if path.exists():
        with open(path, encoding="utf-8") as fh:
            yield from (line for line in fh if line.strip())


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="microseconds")


class Submitter:
    """One submit run over an output dir."""

    def __init__(self, wd: Workdir, env: dict[str, str] | None = None, *, max_tokens: int | None = None,
                 on_progress: Callable[[str], None] | None = None):
        self.wd, self.env, self.max_tokens = wd, env, max_tokens
        self._runtimes: dict[str, Any] = {}
        self.progress = on_progress or log.info

    def runtime(self, name: str) -> Any:
        if name not in self._runtimes:
            cls = runtime_class(name)
            # online runtimes send the schema with each request; batch job files already carry it
            self._runtimes[name] = cls(self.env) if cls.batch else cls(self.env, schemas=self.wd.manifest["schemas"])
        return self._runtimes[name]

    # -- batch jobs ------------------------------------------------------------------------------------
    def prepare_jobs(self, runtime: str, ids: set[str]) -> list[Job]:
        """Submission files: the compiled job files' lines for `ids` (all of them on the first round)."""
        adapter = self.runtime(runtime)
        jobs = []
        for spec in self.wd.manifest["jobs"]:
            if spec["vendor"] != runtime:
                continue
            source = self.wd.path / spec["path"]
            stem = Path(spec["path"]).stem
            attempt = 1 + sum(1 for j in self.wd.state.jobs.values() if j.name.startswith(f"{runtime}-{stem}-a"))
            # the name is the vendor-side tag (OpenAI metadata, Gemini display name): it carries the manifest
            # hash so that a restart never adopts a batch of another manifest
            name = f"{runtime}-{stem}-a{attempt}-{self.wd.manifest['spec_hash'][:8]}"
            target = self.wd.path / "submit" / f"{name}.jsonl"
            selected = []
            for raw in _lines(source):
                line = json.loads(raw)
                if line_id(line) in ids:
                    if self.max_tokens is not None:
                        line = adapter.raise_max_tokens(line, self.max_tokens)
                    selected.append(json.dumps(line, ensure_ascii=False, separators=(",", ":")) + "\n")
            if not selected:
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            atomic_write(target, "".join(selected).encode("utf-8"))
            job = Job(name=name, runtime=runtime, model=spec["model"], stage=spec["stage"],
                      file=target.relative_to(self.wd.path).as_posix(), requests=len(selected), attempt=attempt)
            self.wd.state.add(job)
            jobs.append(job)
        return jobs

    def create(self, job: Job) -> None:
        """Create the vendor batch: intent recorded first, vendor id right after."""
        adapter: BatchRuntime = self.runtime(job.runtime)
        job.vendor["intent_at"] = _now()  # Anthropic's find() matches batches created after this instant
        self.wd.state.update(job, status="creating")
        vendor_id = adapter.create(job, self.wd.path / job.file)
        self.wd.state.update(job, vendor_id=vendor_id, status="submitted")
        self.progress(f"{job.runtime}: submitted {job.name} ({job.requests:,} requests) as {vendor_id}")

    def reconcile(self, job: Job) -> None:
        """A job left in `creating` by a kill: find its batch by tag, else create it now."""
        vendor_id = self.runtime(job.runtime).find(job)
        if vendor_id is not None:
            self.wd.state.update(job, vendor_id=vendor_id, status="submitted")
            self.progress(f"{job.runtime}: found {job.name} at the vendor as {vendor_id} (not created again)")
        else:
            self.create(job)

    def poll_and_fetch(self, job: Job) -> Poll | None:
        adapter: BatchRuntime = self.runtime(job.runtime)
        poll = adapter.poll(job)
        self.wd.state.save()  # the adapter may have noted output file ids
        if poll.state == "running":
            return poll
        if poll.state == "failed":
            self.wd.state.update(job, status="failed", error="; ".join(poll.errors))
            for line in poll.errors[:20]:
                self.progress(f"{job.runtime}: {job.name} failed validation: {line}")
            self._fail_all(job, "invalid_request", "batch failed validation: " + "; ".join(poll.errors[:5]))
            return poll
        self.wd.state.update(job, status="ended")
        self._fetch(job, adapter, poll)
        return poll

    def _fetch(self, job: Job, adapter: BatchRuntime, poll: Poll) -> None:
        wanted = [line_id(json.loads(line)) for line in _lines(self.wd.path / job.file)]
        carried = set(wanted)
        got: dict[str, dict[str, Any]] = {}
        for r in adapter.fetch(job, self.wd.store.raw_dir / job.name):
            if r["id"] in carried:  # a vendor line for an id this job did not carry is ignored
                got[r["id"]] = r
        kind = "cancelled" if "cancel" in poll.vendor_status else "expired"
        missing = [result(rid, job.runtime, job.model, error_kind=kind,
                          error_message=f"no result in the vendor's files ({poll.vendor_status})")
                   for rid in wanted if rid not in got]
        n = self.wd.store.write_batch(job.name, [*got.values(), *missing])
        self.wd.state.update(job, status="fetched")
        ok = sum(1 for r in got.values() if r["status"] == "ok")
        self.progress(f"{job.runtime}: {job.name} {poll.vendor_status}: {ok:,} ok, {n - ok:,} failed")

    def _fail_all(self, job: Job, kind: str, message: str) -> None:
        ids = [line_id(json.loads(line)) for line in _lines(self.wd.path / job.file)]
        self.wd.store.write_batch(job.name, [result(i, job.runtime, job.model, error_kind=kind, error_message=message)
                                             for i in ids])

    # -- online ---------------------------------------------------------------------------------------
    def run_online(self, runtime: str, requests: list[dict[str, Any]], concurrency: int | None) -> None:
        adapter: OnlineRuntime = self.runtime(runtime)
        models = sorted({r["model"] for r in requests})
        if hasattr(adapter, "check_models"):
            adapter.check_models(models)
        name = f"{runtime}-{_now().replace(':', '').replace('-', '').replace('.', '')}"
        done = Counter[str]()
        started = time.monotonic()
        with self.wd.store.appender(name) as fh:
            def on_result(r: dict[str, Any]) -> None:
                fh.write(json.dumps(r, ensure_ascii=False, separators=(",", ":")) + "\n")
                fh.flush()
                done[r["status"]] += 1
                if sum(done.values()) % 100 == 0:
                    self.progress(f"{runtime}: {sum(done.values()):,}/{len(requests):,} "
                                  f"({done['error']:,} failed, {time.monotonic() - started:.0f}s)")

            adapter.run(requests, concurrency or adapter.default_concurrency, on_result)
        self.progress(f"{runtime}: {done['ok']:,} ok, {done['error']:,} failed in {time.monotonic() - started:.1f}s")


@dataclass
class SubmitReport:
    done: int
    pending: int
    given_up: int
    live_jobs: int


def submit(out_dir: str | Path, *, wait: bool = False, poll_interval: float = 30.0, retry_failed: bool = False,
           max_tokens: int | None = None, max_attempts: int = MAX_ATTEMPTS, concurrency: int | None = None,
           env: dict[str, str] | None = None, on_progress: Callable[[str], None] | None = None) -> SubmitReport:
    """Send what the output dir still needs; with `wait`, poll until every job ended and results are stored.

    Returns counts of requests done (ok), still pending, given up (terminal errors), and live jobs.
    """
    wd = Workdir.open(out_dir)
    sub = Submitter(wd, env, max_tokens=max_tokens, on_progress=on_progress)
    if wd.state.manifest_hash != wd.manifest["spec_hash"]:
        wd.state.manifest_hash = wd.manifest["spec_hash"]  # the latest manifest submitted from this dir
        wd.state.save()
    first = True
    for _round in range(max_attempts + 1):  # each round resubmits what the previous one left retryable
        for job in wd.state.live():
            if job.status == "prepared":
                sub.create(job)
            elif job.status == "creating":
                sub.reconcile(job)
        plan = plan_round(wd, retry_failed and first, max_attempts)
        for runtime, ids in sorted(plan.batch.items()):
            for job in sub.prepare_jobs(runtime, ids):
                sub.create(job)
        for runtime, requests in sorted(plan.online.items()):
            sub.run_online(runtime, requests, concurrency)
        first = False
        _poll_live(sub, wait, poll_interval)
        if not wait or not (plan.batch or plan.online):
            break
        after = plan_round(wd, False, max_attempts)
        if not (after.batch or after.online):
            break
    final = plan_round(wd, False, max_attempts)
    pending = sum(len(v) for v in final.batch.values()) + sum(len(v) for v in final.online.values())
    live = wd.state.live()
    pending += sum(j.requests for j in live)
    return SubmitReport(final.done, pending, final.given_up, len(live))


def _poll_live(sub: Submitter, wait: bool, poll_interval: float) -> None:
    started = time.monotonic()
    while True:
        live = [j for j in sub.wd.state.live() if j.status in ("submitted", "ended")]
        if not live:
            return
        totals: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])
        for job in live:
            poll = sub.poll_and_fetch(job)
            if poll is not None:
                t = totals[job.runtime]
                t[0], t[1], t[2] = t[0] + poll.done, t[1] + poll.failed, t[2] + poll.total
        running = [j for j in sub.wd.state.live() if j.status == "submitted"]
        if not wait or not running:
            return
        elapsed = time.monotonic() - started
        for runtime, (done, failed, total) in sorted(totals.items()):
            sub.progress(f"{runtime}: {done:,}/{total:,} done, {failed:,} failed, elapsed {elapsed:.0f}s")
        time.sleep(poll_interval)


def status(out_dir: str | Path, env: dict[str, str] | None = None, refresh: bool = True) -> dict[str, Any]:
    """Jobs and request counts of an output dir; with `refresh`, live jobs are polled (and fetched if ended)."""
    wd = Workdir.open(out_dir)
    if refresh and any(j.status in ("submitted", "ended") for j in wd.state.live()):
        sub = Submitter(wd, env)
        _poll_live(sub, wait=False, poll_interval=0)
    plan = plan_round(wd, False, MAX_ATTEMPTS)
    with wd.store.index() as index:
        ok, failed = int(index.ok.sum()), int((~index.ok).sum())
    return {
        "requests": wd.manifest["counts"]["requests"],
        "ok": ok,
        "failed": failed,
        "given_up": plan.given_up,
        "to_send": sum(len(v) for v in plan.batch.values()) + sum(len(v) for v in plan.online.values()),
        "jobs": [{"name": j.name, "runtime": j.runtime, "model": j.model, "stage": j.stage, "status": j.status,
                  "vendor_id": j.vendor_id, "requests": j.requests, "attempt": j.attempt,
                  **({"error": j.error} if j.error else {})} for j in wd.state.jobs.values()],
    }


def cancel(out_dir: str | Path, env: dict[str, str] | None = None) -> list[str]:
    """Cancel every live batch job; their finished results are still fetched by the next submit/status."""
    wd = Workdir.open(out_dir)
    sub = Submitter(wd, env)
    cancelled = []
    for job in wd.state.live():
        if job.vendor_id and job.status == "submitted":
            sub.runtime(job.runtime).cancel(job)
            cancelled.append(job.name)
        elif job.status in ("prepared", "creating") and job.vendor_id is None:
            wd.state.update(job, status="cancelled")
            cancelled.append(job.name)
    return cancelled


__all__ = ["BadInput", "NotCompiled", "RuntimeFailure", "SubmitReport", "cancel", "status", "submit"]
