"""Sending requests of an output dir's compiled stages through their runtimes, resumable at any instant.

Per request id, `results/` decides: an ok result is never sent again; a retryable error is resubmitted in a
follow-up job until `max_attempts`; a terminal one only with `retry_failed`. Jobs are recorded in
state.json before and after every vendor call, so a restarted `submit` polls what exists instead of
creating it again (see `Submitter.reconcile`). Which stages are sent, and when, is the stage loop's
business (`datafast.pipeline`); this module asks each runtime class what it is (batch or online, how its
job-file lines carry ids) and never names a vendor.
"""

from __future__ import annotations

import json
import os
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from datafast.compiler.collect import RowBuilder, checked_result
from datafast.runtimes import (
    BatchRuntime,
    OnlineRuntime,
    RuntimeFailure,
    has_online,
    online_runtime_class,
    runtime_class,
)
from datafast.runtimes.base import Job, Poll, QuotaRefused, result
from datafast.runtimes.store import ResultIndex, atomic_write

from .logs import get_logger
from .outdir import BadInput, JobFileRef, Manifest, NotCompiled, OutputDir
from .progress import PLAIN_QUIET_MAX, QUIET, Display

log = get_logger("submit")

MAX_ATTEMPTS = 3


def is_batch(runtime: str, online: bool = False) -> bool:
    """Whether a runtime's requests go in batch jobs (job files) or online (read from the manifest); asks its
    class. `online`: the requests are wanted online, which a batch runtime with an online variant honours."""
    return runtime_class(runtime).batch and not (online and has_online(runtime))


def job_ids(job: Job, path: Path) -> list[str]:
    """The request ids a job's submission file carries, read the way its runtime writes them."""
    cls = runtime_class(job.runtime)
    assert issubclass(cls, BatchRuntime)
    return [cls.line_id(orjson.loads(line)) for line in _lines(path)]


@dataclass
class StageCounts:
    """Where the requests of one compiled stage stand: requests == ok + in_flight + failed + to_send."""

    requests: int = 0
    ok: int = 0  # an ok result
    failed: int = 0  # a terminal error, or a transient one that used up its attempts (not resent without --retry-failed)
    in_flight: int = 0  # carried by a live job
    to_send: int = 0

    @property
    def pending(self) -> int:
        return self.in_flight + self.to_send

    @property
    def complete(self) -> bool:
        return self.pending == 0

    def as_dict(self) -> dict[str, int]:
        return {"requests": self.requests, "ok": self.ok, "in_flight": self.in_flight, "failed": self.failed,
                "to_send": self.to_send, "pending": self.pending}


@dataclass
class Plan:
    """What a submit round has to do, over the stages it was given."""

    batch: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))  # runtime -> ids to send
    online: dict[str, list[dict[str, Any]]] = field(default_factory=lambda: defaultdict(list))
    stages: dict[str, StageCounts] = field(default_factory=dict)
    held_by_budget: int = 0  # online requests left unsent because the next would pass max_cost
    budget_note: str = ""  # with held_by_budget: the numbers (spent, left, what the held requests may cost)

    @property
    def empty(self) -> bool:
        return not (self.batch or self.online)


def in_flight_ids(od: OutputDir) -> set[str]:
    return {rid for job in od.state.live() for rid in job_ids(job, od.path / job.file)}


def plan_round(od: OutputDir, manifests: Iterable[Manifest], index: ResultIndex, in_flight: set[str], *,
               retry_failed: Callable[[str], bool] | None = None, max_attempts: int = MAX_ATTEMPTS,
               online: bool = False, seen: np.ndarray | None = None) -> Plan:
    """Which requests of the given stages still need sending: never one with an ok result or in a live job;
    a failed one if its error is retryable and it failed fewer than `max_attempts` times, or whatever its
    error when `retry_failed(id)` says so (`submit --retry-failed`).

    A request goes online when its runtime is online, or when it is wanted online (`online`: every request;
    the spec's `online` key: its stage's role) and its runtime has an online variant; else in a batch job.
    Either way it is sent once: a request in a live batch is in flight, one answered online is done.
    `seen` (one flag per index position): the positions of these stages' results are set, so that what is left
    unset are the stored results of no current manifest (stale: an earlier compile's).
    """
    plan = Plan()
    batch_of: dict[tuple[str, bool], bool] = {}
    roles = {s.name: s.role for s in od.manifest.stages}
    for manifest in manifests:
        counts = plan.stages[manifest.stage] = StageCounts()
        wanted = online or od.spec.online_for(roles[manifest.stage])
        chunk: list[dict[str, Any]] = []
        for request in od.requests(manifest.stage):
            chunk.append(request)
            if len(chunk) == 4096:
                _plan_chunk(plan, counts, chunk, index, in_flight, retry_failed, max_attempts, batch_of, wanted, seen)
                chunk = []
        _plan_chunk(plan, counts, chunk, index, in_flight, retry_failed, max_attempts, batch_of, wanted, seen)
    return plan


def _plan_chunk(plan: Plan, counts: StageCounts, chunk: list[dict[str, Any]], index: ResultIndex,
                in_flight: set[str], retry_failed: Callable[[str], bool] | None, max_attempts: int,
                batch_of: dict[tuple[str, bool], bool], online: bool, seen: np.ndarray | None = None) -> None:
    positions = index.positions([r["id"] for r in chunk])
    if seen is not None and len(positions):
        seen[positions[positions >= 0]] = True
    for request, pos in zip(chunk, positions.tolist(), strict=True):
        rid, runtime = request["id"], request["model"].partition(":")[0]
        counts.requests += 1
        if pos >= 0 and index.ok[pos]:
            counts.ok += 1
            continue
        if rid in in_flight:
            counts.in_flight += 1
            continue
        if pos >= 0:
            retry = bool(index.retryable[pos]) and int(index.errors[pos]) < max_attempts
            if not (retry or (retry_failed is not None and retry_failed(rid))):
                counts.failed += 1
                continue
        counts.to_send += 1
        if (runtime, online) not in batch_of:
            batch_of[runtime, online] = is_batch(runtime, online)
        if batch_of[runtime, online]:
            plan.batch[runtime].add(rid)
        else:
            plan.online[runtime].append(request)


def _reason(exc: RuntimeFailure) -> str:
    """A runtime failure's message without its `runtime[ job name]: ` prefix."""
    text = str(exc)
    prefix = f"{exc.runtime}{f' job {exc.job}' if exc.job else ''}: "
    return text[len(prefix):] if text.startswith(prefix) else text


def _lines(path: Path) -> Iterator[str]:
    if path.exists():
        with open(path, encoding="utf-8") as fh:
            yield from (line for line in fh if line.strip())


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="microseconds")


def _since_created(jobs: list[Job], fallback: float) -> float:
    """Seconds since the oldest of `jobs` was created (state.json's intent time, so a resumed wait goes on
    counting), or since `fallback` (a monotonic instant) when none records it."""
    stamps = [j.vendor.get("intent_at") for j in jobs if j.vendor.get("intent_at")]
    if not stamps:
        return time.monotonic() - fallback
    oldest = min(datetime.fromisoformat(str(s).replace("Z", "+00:00")) for s in stamps)
    return max(0.0, (datetime.now(timezone.utc) - oldest).total_seconds())


class Submitter:
    """Sends, polls and fetches the jobs of one output dir."""

    def __init__(self, od: OutputDir, env: dict[str, str] | None = None, *, max_tokens: int | None = None,
                 on_progress: Callable[[str], None] | None = None, display: Display | None = None):
        self.od, self.env, self.max_tokens = od, env, max_tokens
        self._runtimes: dict[str, Any] = {}
        self._variant_schemas: dict[str, tuple[tuple[int, int], dict[str, str]]] = {}  # see _schemas_of
        self.progress = on_progress or log.info
        self.display = display or QUIET  # live bars (CLI); the progress messages stay for logs and the API

    @cached_property
    def builder(self) -> RowBuilder:
        """Checks each stored answer (JSON, schema), so status, submit and collect agree on what is done."""
        return RowBuilder(self.od.manifest.data)

    def _schema_of_stage(self, stage: str) -> str:
        return next(s.schema for s in self.od.manifest.stages if s.name == stage)

    def _schemas_of(self, stage: str) -> dict[str, str]:
        """The schema key of each request id of `stage` whose schema is not the stage's own (grouped mcq
        distractors carry one slot per question): read from the stage's manifest once, only when the stage
        has such schemas (again if the stage was recompiled since)."""
        st = (self.od.stage_dir(stage) / "manifest.jsonl").stat()
        version = (st.st_mtime_ns, st.st_size)
        cached = self._variant_schemas.get(stage)
        if cached is None or cached[0] != version:
            default = self._schema_of_stage(stage)
            variants = any(key != default and key.startswith(stage + "-") for key in self.od.manifest.schemas)
            cached = self._variant_schemas[stage] = (version, {r["id"]: r["schema"] for r in self.od.requests(stage)
                                                               if r["schema"] != default} if variants else {})
        return cached[1]

    def runtime(self, name: str, online: bool = False) -> Any:
        """The adapter of a runtime; with `online`, the one that runs its requests online (its online variant)."""
        key = f"{name}:online" if online else name
        if key not in self._runtimes:
            cls = online_runtime_class(name) if online else runtime_class(name)
            # online runtimes send the schema with each request; batch job files already carry it
            self._runtimes[key] = cls(self.env) if cls.batch else cls(self.env, schemas=self.od.manifest.schemas)
        return self._runtimes[key]

    # -- batch jobs ------------------------------------------------------------------------------------
    def prepare_jobs(self, runtime: str, ids: set[str], manifests: Iterable[Manifest]) -> list[Job]:
        """Submission files: the compiled job files' lines for `ids` (all of them on the first round)."""
        adapter = self.runtime(runtime)
        jobs = []
        for manifest in manifests:
            for ref in manifest.jobs:
                if ref.vendor == runtime:
                    job = self._prepare_job(adapter, ref, manifest.tag, ids)
                    if job is not None:
                        jobs.append(job)
        return jobs

    def _prepare_job(self, adapter: BatchRuntime, ref: JobFileRef, tag: str, ids: set[str]) -> Job | None:
        state = self.od.state
        stem = Path(ref.path).stem
        attempt = 1 + sum(1 for j in state.jobs.values() if j.name.startswith(f"{ref.vendor}-{stem}-a"))
        # the name is the vendor-side tag (OpenAI metadata, Gemini display name): it carries the manifest's tag
        # so that a restart never adopts a batch of another manifest
        name = f"{ref.vendor}-{stem}-a{attempt}-{tag}"
        target = self.od.path / "submit" / f"{name}.jsonl"
        selected = []
        for raw in _lines(self.od.path / ref.path):
            line = json.loads(raw)
            if adapter.line_id(line) in ids:
                if self.max_tokens is not None:
                    line = adapter.raise_max_tokens(line, self.max_tokens)
                selected.append(json.dumps(line, ensure_ascii=False, separators=(",", ":")) + "\n")
        if not selected:
            return None
        target.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(target, "".join(selected).encode("utf-8"))
        job = Job(name=name, runtime=ref.vendor, model=ref.model, stage=ref.stage,
                  file=target.relative_to(self.od.path).as_posix(), requests=len(selected), attempt=attempt)
        state.add(job)
        return job

    def create(self, job: Job) -> None:
        """Create the vendor batch: intent recorded first, vendor id right after.

        Paced first (`_pace`): a job over its model's enqueued-token quota is split, and one that does not fit
        beside the live jobs of its model, or whose model is in a quota back-off, is `held` (its requests count
        as to send; `send` creates it later). A creation the vendor refuses for quota or capacity is held with
        back-off too (`_refused`), until QUOTA_GIVE_UP.
        """
        adapter: BatchRuntime = self.runtime(job.runtime)
        paced = _pace(self, job)
        if paced is None:
            return
        job = paced
        job.vendor["intent_at"] = _now()  # Anthropic's find() matches batches created after this instant
        self.od.state.update(job, status="creating")
        try:
            vendor_id = adapter.create(job, self.od.path / job.file)
        except QuotaRefused as exc:  # the vendor said no: nothing was created
            _refused(self, job, exc)
            return
        for key in ("hold_until", "refusals", "refused_since"):
            job.vendor.pop(key, None)
        self.od.state.update(job, vendor_id=vendor_id, status="submitted", error=None)
        self.progress(f"{job.runtime}: submitted {job.name} ({job.requests:,} requests) as {vendor_id}")

    def reconcile(self, job: Job) -> None:
        """A job left in `creating` by a kill: find its batch by tag, else create it now."""
        vendor_id = self.runtime(job.runtime).find(job)
        if vendor_id is not None:
            self.od.state.update(job, vendor_id=vendor_id, status="submitted")
            self.progress(f"{job.runtime}: found {job.name} at the vendor as {vendor_id} (not created again)")
        else:
            self.create(job)

    def resume_creations(self) -> None:
        """Create what a killed run prepared but did not create, and settle what it was creating."""
        for job in self.od.state.live():
            if job.status == "prepared":
                self.create(job)
            elif job.status == "creating":
                self.reconcile(job)

    def poll_and_fetch(self, job: Job) -> Poll | None:
        adapter: BatchRuntime = self.runtime(job.runtime)
        noted = dict(job.vendor)
        poll = adapter.poll(job)
        if job.vendor != noted:
            self.od.state.save()  # the adapter noted something (output file ids, status): keep it
        if poll.state == "running":
            return poll
        if poll.state == "failed" and poll.quota:  # refused for the model's queue: resent after a back-off
            wait = _quota_failed(self, job)
            self.od.state.update(job, status="failed", error="; ".join(poll.errors))
            self.progress(f"{job.runtime}: {job.name} refused for quota ({'; '.join(poll.errors[:3])}); "
                          f"its {job.requests:,} requests are resent in {wait:.0f}s at the earliest")
            self._fail_all(job, "rate_limit", "batch refused for quota, resent later: " + "; ".join(poll.errors[:5]))
            return poll
        if poll.state == "failed":
            self.od.state.update(job, status="failed", error="; ".join(poll.errors))
            for line in poll.errors[:20]:
                self.progress(f"{job.runtime}: {job.name} failed validation: {line}")
            self._fail_all(job, "invalid_request", "batch failed validation: " + "; ".join(poll.errors[:5]))
            return poll
        self.od.state.update(job, status="ended")
        self._fetch(job, adapter, poll)
        return poll

    def _fetch(self, job: Job, adapter: BatchRuntime, poll: Poll) -> None:
        wanted = job_ids(job, self.od.path / job.file)
        carried = set(wanted)
        got: dict[str, dict[str, Any]] = {}
        schema = self._schema_of_stage(job.stage)
        schemas = self._schemas_of(job.stage)
        for r in adapter.fetch(job, self.od.store.raw_dir / job.name):
            if r["id"] in carried:  # a vendor line for an id this job did not carry is ignored
                got[r["id"]] = checked_result(self.builder, schemas.get(r["id"], schema), r)
        kind = "cancelled" if poll.cancelled else "expired"
        missing = [result(rid, job.runtime, job.model, error_kind=kind,
                          error_message=f"no result in the vendor's files ({poll.vendor_status})")
                   for rid in wanted if rid not in got]
        n = self.od.store.write_batch(job.name, [*got.values(), *missing])
        # a cancelled batch stays "cancelled" in the job table; its unanswered requests are to send again
        self.od.state.update(job, status="cancelled" if poll.cancelled else "fetched")
        ok = sum(1 for r in got.values() if r["status"] == "ok")
        self.progress(f"{job.runtime}: {job.name} {poll.vendor_status}: {ok:,} ok, {n - ok:,} failed")

    def _fail_all(self, job: Job, kind: str, message: str) -> None:
        ids = job_ids(job, self.od.path / job.file)
        self.od.store.write_batch(job.name, [result(i, job.runtime, job.model, error_kind=kind, error_message=message)
                                             for i in ids])

    def poll_live(self, wait: bool, poll_interval: float, unreachable: dict[str, str] | None = None) -> int:
        """Poll every live job once (fetching those that ended); with `wait`, until none is running.

        With `unreachable`, a runtime that cannot be polled (no key, vendor unreachable) is noted there as
        runtime -> why, and its other jobs are skipped, instead of raising (`status`: what is recorded is
        shown all the same). Returns how many jobs ended (results stored) during the call.
        """
        started = time.monotonic()
        ended = 0
        said: dict[str, tuple[tuple[int, ...], float]] = {}  # runtime -> (counts, when) of its last message
        while True:
            live = [j for j in self.od.state.live() if j.status in ("submitted", "ended")
                    and (unreachable is None or j.runtime not in unreachable)]
            if not live:
                return ended
            totals: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])
            for job in live:
                if unreachable is not None and job.runtime in unreachable:
                    continue
                try:
                    poll = self.poll_and_fetch(job)
                except RuntimeFailure as exc:
                    if unreachable is None:
                        raise
                    unreachable[job.runtime] = _reason(exc)
                    continue
                if poll is not None:
                    ended += poll.state != "running"
                    t = totals[job.runtime]
                    t[0], t[1], t[2] = t[0] + poll.done, t[1] + poll.failed, t[2] + poll.total
            running = [j for j in self.od.state.live() if j.status == "submitted"]
            if not wait or not running:
                self.display.batch_ended()
                return ended
            for runtime, (done, failed, total) in sorted(totals.items()):
                jobs = [j for j in running if j.runtime == runtime]
                elapsed = _since_created(jobs, started)
                if self.display.enabled:
                    self.display.batch(runtime, done=done, failed=failed, total=total, jobs=len(jobs),
                                       elapsed=elapsed, next_poll=poll_interval)
                    continue
                # as the display's plain lines: on change, or after PLAIN_QUIET_MAX without one
                last, now = said.get(runtime), time.monotonic()
                if last is None or last[0] != (done, failed, total) or now - last[1] >= PLAIN_QUIET_MAX:
                    said[runtime] = ((done, failed, total), now)
                    self.progress(f"{runtime}: {done:,}/{total:,} done, {failed:,} failed, elapsed {elapsed:.0f}s")
            time.sleep(poll_interval)

    # -- online ---------------------------------------------------------------------------------------
    def run_online(self, runtime: str, requests: list[dict[str, Any]], concurrency: int | None) -> None:
        adapter: OnlineRuntime = self.runtime(runtime, online=True)
        if self.max_tokens is not None:  # --retry-failed --max-tokens: the new output limit, as in batch lines
            requests = [{**r, "params": {**r["params"], "max_tokens": self.max_tokens}} for r in requests]
        if getattr(self.od.spec, "prompt_cache_ttl", "auto") == "auto":
            # auto gives batch requests the 1-hour cache; sent online (submit --online, preview), one after the
            # other, the 5-minute one is enough (compiler.build.long_ttl_from)
            requests = [{**r, "meta": {k: v for k, v in r["meta"].items() if k != "cache_ttl"}}
                        if "cache_ttl" in r["meta"] else r for r in requests]
        models = sorted({r["model"] for r in requests})
        if hasattr(adapter, "check_models"):
            adapter.check_models(models)
        name = f"{runtime}-{_now().replace(':', '').replace('-', '').replace('.', '')}"
        done = Counter[str]()
        started = time.monotonic()
        stages = ", ".join(sorted({r["stage"] for r in requests}))
        with self.od.store.appender(name) as fh, self.display.requests(f"{stages} {runtime}", len(requests)) as bar:
            schemas = {r["id"]: r["schema"] for r in requests}

            def on_result(r: dict[str, Any]) -> None:
                r = {**checked_result(self.builder, schemas[r["id"]], r), "mode": "online"}  # priced as such
                fh.write(json.dumps(r, ensure_ascii=False, separators=(",", ":")) + "\n")
                fh.flush()
                done[r["status"]] += 1
                bar.advance(r["status"] == "ok")
                if not self.display.enabled and sum(done.values()) % 100 == 0:
                    self.progress(f"{runtime}: {sum(done.values()):,}/{len(requests):,} "
                                  f"({done['error']:,} failed, {time.monotonic() - started:.0f}s)")

            adapter.run(requests, concurrency or adapter.default_concurrency, on_result)
        self.progress(f"{runtime}: {done['ok']:,} ok, {done['error']:,} failed in {time.monotonic() - started:.1f}s")

    def send(self, plan: Plan, manifests: list[Manifest], concurrency: int | None, wait: bool = True) -> None:
        """Create the batch jobs and run the online requests of a plan (one wave: every stage together).

        Held jobs (quota pacing or back-off) carrying planned requests are created again rather than prepared
        anew. With `wait`, jobs held for a back-off while no batch is live (nothing to poll meanwhile) are
        waited out here; without it (a cron `submit`) the next call creates them.
        """
        for runtime, ids in sorted(plan.batch.items()):
            held = _held_jobs(self, runtime, ids)
            carried = {rid for job in held for rid in job_ids(job, self.od.path / job.file)}
            fresh = self.prepare_jobs(runtime, ids - carried, manifests) if ids - carried else []
            for job in [*held, *fresh]:
                self.create(job)
        for runtime, requests in sorted(plan.online.items()):
            self.run_online(runtime, requests, concurrency)
        if wait:
            _wait_out_holds(self, set(plan.batch))


# -- quota pacing and back-off (helpers of Submitter.create / send / poll_and_fetch) ----------------------
# A vendor refuses a batch when its model's queue for the organisation is full (OpenAI token_limit_exceeded at
# validation; HTTP 429/529/RESOURCE_EXHAUSTED at create). Both clear by themselves: the job is `held` (not
# live: its requests count as to send) and created again after a back-off, or once live jobs of its model
# have ended and left room under the quota (compiler/data/quotas.json, overridden by $DATAFAST_QUOTAS).
HELD = "held"
QUOTA_BACKOFF = 60.0  # seconds before the first retry when the vendor gives no retry-after; doubles each time
QUOTA_BACKOFF_MAX = 900.0  # longest single wait, a vendor's retry-after included
QUOTA_GIVE_UP = 1800.0  # seconds of refused creations of one job before the run stops ("run again to resume")
QUOTA_MAX_REFUSALS = 12
QUOTA_HEADROOM = 0.9  # pace against this share of the quota: the token counts are estimates
ENQUEUED = ("creating", "submitted")  # job statuses whose tokens sit in the vendor's queue


def _quota_limit(sub: Submitter, model: str) -> int | None:
    from datafast.compiler.quotas import QuotaTable

    override = (sub.env if sub.env is not None else os.environ).get("DATAFAST_QUOTAS") or None
    key = (override, _mtime(override))
    if key not in _QUOTA_TABLES:
        _QUOTA_TABLES[key] = QuotaTable.load(override)
    return _QUOTA_TABLES[key].enqueued_tokens(model)


_QUOTA_TABLES: dict[tuple[str | None, float], Any] = {}


def _mtime(path: str | None) -> float:
    try:
        return os.stat(path).st_mtime if path else 0.0
    except OSError:
        return 0.0  # QuotaTable.load reports the unreadable file


def _tokens(job: Job, path: Path) -> int:
    """Estimated input tokens a job enqueues (noted in its record once counted)."""
    if "est_tokens" not in job.vendor:
        cls = runtime_class(job.runtime)
        assert issubclass(cls, BatchRuntime)
        job.vendor["est_tokens"] = sum(cls.estimate_tokens(line) for line in _lines(path))
    return int(job.vendor["est_tokens"])


def _same_queue(sub: Submitter, job: Job) -> list[Job]:
    return [j for j in sub.od.state.jobs.values() if j.runtime == job.runtime and j.model == job.model]


def _hold_until(sub: Submitter, job: Job) -> float:
    """Until when (epoch seconds) no batch of the job's model may be created: the latest back-off of any."""
    return max((float(j.vendor.get("hold_until") or 0) for j in _same_queue(sub, job)), default=0.0)


def _hold(sub: Submitter, job: Job, why: str) -> None:
    if job.status != HELD or job.error != why:
        sub.od.state.update(job, status=HELD, error=why)
        sub.progress(f"{job.runtime}: {job.name} ({job.requests:,} requests) held: {why}")


def _pace(sub: Submitter, job: Job) -> Job | None:
    """The job to create now (the job, or the first piece of it once split), or None when it must wait."""
    until = _hold_until(sub, job)
    if until > time.time():
        _hold(sub, job, f"quota back-off until {datetime.fromtimestamp(until, timezone.utc):%H:%M:%S} UTC")
        return None
    limit = _quota_limit(sub, job.model)
    if limit is None:
        return job
    budget = max(1, int(limit * QUOTA_HEADROOM))
    if _tokens(job, sub.od.path / job.file) > budget and job.requests > 1 and job.vendor_id is None:
        job = _split(sub, job, budget)
    tokens = _tokens(job, sub.od.path / job.file)
    live = sum(_tokens(j, sub.od.path / j.file) for j in _same_queue(sub, job) if j.status in ENQUEUED and j is not job)
    if live and live + tokens > budget:
        _hold(sub, job, f"waiting for room in the {job.model} queue: {live:,} estimated tokens enqueued, "
                        f"{tokens:,} more would pass {budget:,} ({QUOTA_HEADROOM:.0%} of its quota)")
        return None
    if tokens > budget:
        sub.progress(f"{job.runtime}: {job.name}: one request of ~{tokens:,} tokens is over the {job.model} quota "
                     f"({limit:,} enqueued tokens): sent alone, the vendor may refuse it")
    return job


def _split(sub: Submitter, job: Job, budget: int) -> Job:
    """Replace a not-yet-created job by pieces of at most `budget` estimated tokens (`…-aNpK-tag`): the first
    is returned to be created, the others are held until there is room."""
    cls = runtime_class(job.runtime)
    assert issubclass(cls, BatchRuntime)
    pieces: list[tuple[list[str], int]] = []
    lines: list[str] = []
    tokens = 0
    for line in _lines(sub.od.path / job.file):
        n = cls.estimate_tokens(line)
        if lines and tokens + n > budget:
            pieces.append((lines, tokens))
            lines, tokens = [], 0
        lines.append(line)
        tokens += n
    pieces.append((lines, tokens))
    if len(pieces) == 1:
        return job
    prefix, _, tag = job.name.rpartition("-")
    state = sub.od.state
    made = []
    for k, (chunk, n) in enumerate(pieces, start=1):
        name = f"{prefix}p{k}-{tag}"
        target = sub.od.path / "submit" / f"{name}.jsonl"
        atomic_write(target, "".join(chunk).encode("utf-8"))
        made.append(Job(name=name, runtime=job.runtime, model=job.model, stage=job.stage,
                        file=target.relative_to(sub.od.path).as_posix(), requests=len(chunk), attempt=job.attempt,
                        status="prepared" if k == 1 else HELD, vendor={"est_tokens": n},
                        error=None if k == 1 else f"waiting for room in the {job.model} queue"))
    del state.jobs[job.name]
    for piece in made:
        state.jobs[piece.name] = piece
    state.save()  # the pieces replace the job in one write; the job's file goes after
    (sub.od.path / job.file).unlink(missing_ok=True)
    sub.progress(f"{job.runtime}: {job.name} (~{sum(n for _, n in pieces):,} tokens) split into {len(made)} jobs "
                 f"of at most {budget:,} for the {job.model} queue quota")
    return made[0]


def _refused(sub: Submitter, job: Job, exc: QuotaRefused) -> None:
    """A creation refused for quota or capacity: hold the job for a back-off, or give up after QUOTA_GIVE_UP."""
    now = time.time()
    refusals = int(job.vendor.get("refusals") or 0) + 1
    since = float(job.vendor.get("refused_since") or now)
    if refusals > QUOTA_MAX_REFUSALS or now - since > QUOTA_GIVE_UP:
        for key in ("hold_until", "refusals", "refused_since"):  # a new run starts a new count
            job.vendor.pop(key, None)
        sub.od.state.update(job, status=HELD, error=str(exc))
        raise RuntimeFailure(job.runtime, f"the vendor refused this batch {refusals} times in {(now - since) / 60:.0f} "
                             f"min for quota or capacity (last: {exc}); nothing is lost: run again to resume",
                             job.name)
    wait = exc.retry_after if exc.retry_after is not None else QUOTA_BACKOFF * 2 ** (refusals - 1)
    wait = min(wait, QUOTA_BACKOFF_MAX)
    job.vendor.update(refusals=refusals, refused_since=since, hold_until=now + wait)
    sub.od.state.update(job, status=HELD, error=f"refused for quota or capacity ({refusals}x), retried in {wait:.0f}s")
    sub.progress(f"{job.runtime}: {job.name} not created: {exc}; retrying in {wait:.0f}s")


def _quota_failed(sub: Submitter, job: Job) -> float:
    """Note a batch the vendor failed for quota; the back-off (seconds) before its model gets another batch."""
    earlier = sum(1 for j in _same_queue(sub, job) if j.vendor.get("quota_failed"))
    wait = min(QUOTA_BACKOFF_MAX, QUOTA_BACKOFF * 2 ** earlier)
    job.vendor.update(quota_failed=True, hold_until=time.time() + wait)
    return wait


def _held_jobs(sub: Submitter, runtime: str, ids: set[str]) -> list[Job]:
    """Held jobs of `runtime` to create again: those carrying only planned requests (others are superseded)."""
    held = []
    for job in list(sub.od.state.jobs.values()):
        if job.status != HELD or job.runtime != runtime:
            continue
        carried = job_ids(job, sub.od.path / job.file)
        if carried and set(carried) <= ids:
            held.append(job)
        else:  # some requests got a result meanwhile, or left the manifest: plan them afresh
            sub.od.state.update(job, status="cancelled", error="superseded: its requests were planned again")
    return held


def _wait_out_holds(sub: Submitter, runtimes: set[str]) -> None:
    """With jobs held for a back-off and no batch live (nothing for the stage loop to poll meanwhile), sleep until
    the earliest back-off ends and create them; RuntimeFailure once a job has been refused for QUOTA_GIVE_UP."""
    while True:
        jobs = sub.od.state.jobs.values()
        held = [j for j in jobs if j.status == HELD and j.runtime in runtimes]
        if not held or any(j.status in (*ENQUEUED, "ended") for j in jobs):
            return
        delay = min(_hold_until(sub, j) for j in held) - time.time()
        if delay > 0:
            sub.progress(f"quota back-off: {sum(j.requests for j in held):,} requests held, next try in {delay:.0f}s")
            time.sleep(delay)
        for job in held:
            sub.create(job)


__all__ = ["BadInput", "MAX_ATTEMPTS", "NotCompiled", "Plan", "RuntimeFailure", "StageCounts", "Submitter",
           "in_flight_ids", "is_batch", "job_ids", "plan_round"]
