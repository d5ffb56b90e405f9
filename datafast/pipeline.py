"""The stage loop: every stage of an output dir, compiled and sent in waves, until the dataset is complete.

A later stage is compiled once all its input stages are complete (no request in flight, to send or to
retry), from their rows (`datafast.dataset.stage_outcomes`); it is recompiled only when the spec or those
rows change, and then only requests with new ids are sent. Every stage whose inputs are complete goes out
in the same round, so batch rounds = depth of the stage graph. `advance` is `submit`: without `wait` it
polls, fetches, compiles and sends as far as it can without waiting and returns; with `wait` it goes to
the end. The API's and the CLI's `run` are thin callers of `run` here.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from datafast.compiler.pricing import PriceTable
from datafast.compiler.stages import Row
from datafast.runtimes import RuntimeConfigError
from datafast.runtimes.store import ResultIndex

from .logs import get_logger
from .outdir import Manifest, OutputDir, rows_hash
from .progress import Display
from .runner import (
    MAX_ATTEMPTS,
    Plan,
    RuntimeFailure,
    StageCounts,
    Submitter,
    in_flight_ids,
    is_batch,
    plan_round,
)

log = get_logger("pipeline")

Progress = Callable[[str], None]


@dataclass
class StageView:
    """One stage of the graph as it stands: compiled (with counts) or waiting for its inputs."""

    name: str
    role: str
    inputs: tuple[str, ...]
    manifest: Manifest | None = None
    counts: StageCounts | None = None
    waiting_for: tuple[str, ...] = ()  # input stages not complete yet (not compiled: nothing to count)

    @property
    def complete(self) -> bool:
        return self.counts is not None and self.counts.complete

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"stage": self.name, "role": self.role, "inputs": list(self.inputs),
                               "compiled": self.manifest is not None, "complete": self.complete}
        if self.counts is not None:
            out.update(self.counts.as_dict())
        else:
            out["waiting_for"] = list(self.waiting_for)
        return out


@dataclass
class Survey:
    """Every stage's view, and what the compiled ones still need sent."""

    stages: list[StageView]
    plan: Plan
    compiled_now: list[str] = field(default_factory=list)
    stale_results: int = 0  # request ids with a stored result that are in no current manifest (an earlier compile's)

    @property
    def manifests(self) -> list[Manifest]:
        return [v.manifest for v in self.stages if v.manifest is not None]

    def view(self, stage: str) -> StageView:
        return next(v for v in self.stages if v.name == stage)


def survey(od: OutputDir, *, compile_ready: bool, retry_failed: Callable[[str], bool] | None = None,
           max_attempts: int = MAX_ATTEMPTS,
           prices: PriceTable | None = None, progress: Progress | None = None,
           index: ResultIndex | None = None, online: bool = False) -> Survey:
    """Where every stage stands; with `compile_ready`, compile each later stage whose inputs are complete.

    A compiled later stage counts only if it was built from the current spec and the current rows of its
    inputs (hash recorded in its manifest.json); otherwise it is recompiled (or, without `compile_ready`,
    reported as waiting).
    """
    from .dataset import stage_outcomes

    od.reload_state()
    in_flight = in_flight_ids(od)
    plan = Plan()
    views: dict[str, StageView] = {}
    compiled_now: list[str] = []
    rows: dict[str, list[Row]] = {}
    with contextlib.nullcontext(index) if index is not None else od.store.index() as index:
        seen = np.zeros(len(index.keys), dtype=bool)
        def rows_of(stage: str) -> list[Row]:
            if stage not in rows:
                manifest = views[stage].manifest
                assert manifest is not None
                rows[stage] = stage_outcomes(od, manifest, index, in_flight, max_attempts).rows
            return rows[stage]

        for info in od.manifest.stages:
            view = views[info.name] = StageView(info.name, info.role, info.inputs)
            if info.name == od.first_stage:
                manifest: Manifest | None = od.manifest
            else:
                view.waiting_for = tuple(i for i in info.inputs if not views[i].complete)
                if view.waiting_for:
                    continue
                inputs = {i: rows_of(i) for i in info.inputs}
                digest = rows_hash(inputs)
                manifest = od.stage_manifest(info.name)
                if manifest is None or manifest.input_hash != digest:
                    if not compile_ready:
                        view.waiting_for = ()
                        continue
                    manifest = od.write_later_stage(info.name, inputs, digest, prices=prices)
                    compiled_now.append(info.name)
                    if progress is not None:
                        progress(f"stage {info.name}: compiled {manifest.requests:,} requests from "
                                 + ", ".join(f"{len(r):,} {name} rows" for name, r in inputs.items()))
            assert manifest is not None
            view.manifest = manifest
            stage_plan = plan_round(od, [manifest], index, in_flight, retry_failed=retry_failed,
                                    max_attempts=max_attempts, online=online, seen=seen)
            view.counts = stage_plan.stages[info.name]
            _merge(plan, stage_plan)
        stale = int(len(seen) - np.count_nonzero(seen))
    return Survey(list(views.values()), plan, compiled_now, stale)


def _merge(into: Plan, other: Plan) -> None:
    for runtime, ids in other.batch.items():
        into.batch[runtime] |= ids
    for runtime, requests in other.online.items():
        into.online[runtime].extend(requests)
    into.stages.update(other.stages)


@dataclass
class SubmitReport:
    """Where a submit left the run, over the compiled stages: requests == ok + in_flight + failed + to_send
    (`pending` = in_flight + to_send). `waiting` lists stages not compiled yet; `stale_results` counts stored
    results of no current manifest (an earlier compile's), never added in."""

    requests: int
    ok: int
    in_flight: int
    failed: int  # terminal errors, or retryable ones out of attempts: resent only by --retry-failed
    to_send: int
    live_jobs: int
    stages: list[dict[str, Any]] = field(default_factory=list)
    waiting: list[str] = field(default_factory=list)
    stale_results: int = 0

    @property
    def pending(self) -> int:
        return self.in_flight + self.to_send

    @property
    def finished(self) -> bool:
        return self.pending == 0 and not self.waiting and self.live_jobs == 0

    # the names before issue 14, for callers of the Python API
    @property
    def done(self) -> int:
        return self.ok

    @property
    def given_up(self) -> int:
        return self.failed

    def counts(self) -> dict[str, Any]:
        """The summary counts under the names `status --json` and the CLI use."""
        return {"requests": self.requests, "ok": self.ok, "in_flight": self.in_flight, "failed": self.failed,
                "to_send": self.to_send, "pending": self.pending, "live_jobs": self.live_jobs,
                "stale_results": self.stale_results, "waiting": list(self.waiting)}


def _report(sv: Survey, live_jobs: int) -> SubmitReport:
    counts = [v.counts for v in sv.stages if v.counts is not None]
    return SubmitReport(
        requests=sum(c.requests for c in counts), ok=sum(c.ok for c in counts),
        in_flight=sum(c.in_flight for c in counts), failed=sum(c.failed for c in counts),
        to_send=sum(c.to_send for c in counts), live_jobs=live_jobs,
        stages=[v.as_dict() for v in sv.stages], waiting=[v.name for v in sv.stages if v.manifest is None],
        stale_results=sv.stale_results)


def advance(out_dir: str | Path, *, wait: bool = False, poll_interval: float = 30.0, retry_failed: bool = False,
            max_tokens: int | None = None, max_attempts: int = MAX_ATTEMPTS, concurrency: int | None = None,
            env: dict[str, str] | None = None, prices: PriceTable | None = None,
            on_progress: Progress | None = None, online: bool = False,
            display: Display | None = None, max_cost: float | None = None) -> SubmitReport:
    """Send what the output dir still needs, stage after stage; with `wait`, until every stage is complete.

    Each round: settle jobs a kill left half-created, compile every later stage whose inputs are complete,
    send every request of every compiled stage that has no result (or a retryable one), poll. Without
    `wait` it returns as soon as a batch job is still running; online runtimes finish within the call.
    `retry_failed` resends the failed requests (terminal errors, or out of attempts) once (with `max_tokens`: a new output limit).
    `online` sends every request online (batch runtimes through their online variant) rather than only those
    of the roles the spec's `online` key names. `max_cost` (default: the spec's `max_cost`) caps what the
    dir spends, in the price table's currency (datafast.budget).

    Raises:
        NotCompiled: the dir holds no compiled first stage (exit 2).
        RuntimeFailure: a runtime could not do what was asked (exit 1); nothing recorded is lost.
    """
    od = OutputDir.open(out_dir)
    sub = Submitter(od, env, max_tokens=max_tokens, on_progress=on_progress, display=display)
    with od.lock(on_wait=sub.progress):
        cap = max_cost if max_cost is not None else getattr(od.spec, "max_cost", None)
        return _advance(od, sub, wait, poll_interval, retry_failed, max_attempts, concurrency, prices, online, cap)


def _advance(od: OutputDir, sub: Submitter, wait: bool, poll_interval: float, retry_failed: bool,
             max_attempts: int, concurrency: int | None, prices: PriceTable | None,
             online: bool = False, max_cost: float | None = None) -> SubmitReport:
    progress = sub.progress
    preflight(od, sub, online)
    if od.state.manifest_hash != od.manifest.spec_hash:
        od.state.manifest_hash = od.manifest.spec_hash  # the latest manifest submitted from this dir
        od.state.save()
    # --retry-failed resends each failed request once in this call, in whatever stage and round it is found
    # (a stage recompiled after its inputs were retried is found in a later round)
    resent: set[str] = set()
    forced = (lambda rid: rid not in resent) if retry_failed else None
    # every round sends, compiles, fetches or ends the loop; sends are bounded by attempts and by the pieces
    # quota pacing splits jobs into (one piece a round), compiles by stages: this only guards against a bug
    rounds = 100_000
    for _round in range(rounds):
        sub.resume_creations()
        sv = survey(od, compile_ready=True, retry_failed=forced, max_attempts=max_attempts, prices=prices,
                    progress=progress, online=online)
        sent = False
        plan = sv.plan
        if not plan.empty and max_cost is not None:
            from . import budget

            plan = budget.check(od, plan, sv.manifests, max_cost, prices or PriceTable.load())
        if not plan.empty:
            jobs_before = _jobs_signature(od)
            sub.send(plan, sv.manifests, concurrency, wait)
            # a planned batch request whose job file is missing (e.g. a dir without job files) goes nowhere
            sent = bool(plan.online) or _jobs_signature(od) != jobs_before
            for ids in plan.batch.values():
                resent |= ids
            resent.update(r["id"] for requests in plan.online.values() for r in requests)
        ended = sub.poll_live(wait, poll_interval)
        if plan.held_by_budget:
            from .budget import BudgetExceeded

            raise BudgetExceeded(plan.budget_note + "; what was sent is kept")
        if any(j.status == "submitted" for j in od.state.live()):
            break  # not waiting: the next submit picks up from here
        if not sent and not sv.compiled_now and not ended:
            return _report(sv, len(od.state.live()))  # nothing sent, compiled or fetched: as far as it goes
    final = survey(od, compile_ready=False, max_attempts=max_attempts)
    return _report(final, len(od.state.live()))


def preflight(od: OutputDir, sub: Submitter, online: bool = False) -> None:
    """Check every runtime of every stage before anything is sent: a missing key, a runtime not installed, a
    model Ollama does not serve or a GGUF that cannot load is an error now, not after the earlier stages were
    paid. Each runtime is built as it will be used (batch, or its online variant) and kept for the run.

    Raises:
        RuntimeConfigError: missing key or runtime (exit 2); RuntimeFailure: a server or model problem (exit 1).
    """
    spec = od.spec
    wanted: dict[tuple[str, bool], set[str]] = {}
    for info in od.manifest.stages:
        for model in spec.models_for(info.role):
            runtime = model.partition(":")[0]
            as_online = not is_batch(runtime, online or spec.online_for(info.role))
            wanted.setdefault((runtime, as_online), set()).add(model)
    problems: list[RuntimeConfigError] = []  # every missing key or model at once, not one per attempt
    for (runtime, as_online), models in sorted(wanted.items()):
        try:
            adapter = sub.runtime(runtime, online=as_online)
            if hasattr(adapter, "check_models"):
                adapter.check_models(sorted(models))
        except RuntimeConfigError as exc:
            if str(exc) not in {str(p) for p in problems}:
                problems.append(exc)
    if len(problems) == 1:
        raise problems[0]
    if problems:
        raise RuntimeConfigError(problems[0].runtime, "; and ".join(str(p) for p in problems))


def _jobs_signature(od: OutputDir) -> tuple[tuple[str, str], ...]:
    return tuple(sorted((j.name, j.status) for j in od.state.jobs.values()))


def status(out_dir: str | Path, env: dict[str, str] | None = None, refresh: bool = True) -> dict[str, Any]:
    """Every stage (compiled or waiting) and every job of an output dir, with counts that add up:
    requests == ok + in_flight + failed + to_send, over the current manifests only (`stale_results`: stored
    results whose ids are in none of them, from an earlier compile, never added in).

    With `refresh`, live jobs are polled once (and fetched if ended); nothing is compiled or sent. A runtime
    that cannot be polled (no key, no network) does not stop it: `not_polled` says which and why, and the
    recorded state is reported.
    """
    od = OutputDir.open(out_dir)
    note = None
    not_polled: dict[str, str] = {}
    if refresh and any(j.status in ("submitted", "ended") for j in od.state.live()):
        if od.is_locked():  # never wait, never write next to a running submit: show what it recorded
            note = f"{od.holder() or 'another datafast process'} is working on this dir: recorded state, not polled"
        else:
            with od.lock():
                Submitter(od, env).poll_live(wait=False, poll_interval=0, unreachable=not_polled)
    sv = survey(od, compile_ready=False)
    report = _report(sv, len(od.state.live()))
    return {
        **report.counts(),
        "not_polled": not_polled,
        "stages": report.stages,
        "jobs": [_job_row(j) for j in od.state.jobs.values()],
        **({"note": note} if note else {}),
    }


def _job_row(job: Any) -> dict[str, Any]:
    """A job as `status` shows it: a live job whose cancel was asked for is `cancelling`."""
    shown = "cancelling" if job.vendor.get("cancel_requested_at") and job.status in ("submitted", "ended") \
        else job.status
    return {"name": job.name, "runtime": job.runtime, "model": job.model, "stage": job.stage, "status": shown,
            "vendor_id": job.vendor_id, "requests": job.requests, "attempt": job.attempt,
            **({"vendor_status": job.vendor["status"]} if isinstance(job.vendor.get("status"), str) else {}),
            **({"error": job.error} if job.error else {})}


def plan_run(out_dir: str | Path, prices: PriceTable | None = None) -> dict[str, Any]:
    """`plan DIR`: a run in progress, its actual requests and tokens so far plus the projection of the rest.

    Compiled stages count their actual requests; their answered requests their actual tokens (from the
    vendors' usage), their pending ones estimates and simulated answers; stages not compiled yet are
    projected from those rows (`compiler.projection.project`). Same shape as `plan SPEC`. Writes nothing.
    """
    from datafast.compiler.build import Summary, _items_per_answer, mark_unpriced
    from datafast.compiler.projection import KnownStage, project

    from .dataset import stage_progress

    od = OutputDir.open(out_dir)
    prices = prices or PriceTable.load()
    prepared = od.prepared()
    in_flight = in_flight_ids(od)
    known: dict[str, KnownStage] = {}
    with od.store.index() as index:
        sv = survey(od, compile_ready=False, index=index)
        for view in sv.stages:
            if view.manifest is not None:
                progress = stage_progress(od, view.manifest, index, in_flight)
                known[view.name] = KnownStage(list(od.requests(view.name)), progress.outcomes.rows,
                                              progress.pending, progress.usage)
    first = prepared.stages[0]
    summary = Summary(prices)
    items = _items_per_answer(prepared.spec, first)
    for request in known[first.name].requests:
        summary.add(request, items)
    projection = project(prepared, prices, known)
    result = {"name": od.manifest.name, "type": od.manifest.type, "stage": first.name, **summary.as_dict(),
              "stages": projection["stages"], "rounds": projection["rounds"], "sampled": projection["sampled"],
              "warnings": list(od.manifest.warnings), "run": {"dir": str(od.path), "stages": [
                  v.as_dict() for v in sv.stages]}}
    result["estimate"]["projected_total"] = {**projection["total"], "note": projection["note"]}
    return mark_unpriced(result)


def ensure_idle(od: OutputDir, command: str) -> None:
    """Refuse (RuntimeFailure) when another process is advancing the dir: waiting for it would wait for the
    whole run, and acting beside it would race its next wave."""
    if od.is_locked():
        raise RuntimeFailure(command, f"{od.holder() or 'another datafast process'} is working on {od.path}: "
                             f"stop it first (Ctrl-C; nothing is lost), then {command}")


def cancel(out_dir: str | Path, env: dict[str, str] | None = None, on_progress: Progress | None = None) -> list[str]:
    """Cancel every live batch job, whatever its stage; finished results are fetched by the next submit/status.

    Returns the names of the jobs cancelled (a batch that had already ended is reported through `on_progress`).
    """
    od = OutputDir.open(out_dir)
    ensure_idle(od, "cancel")
    sub = Submitter(od, env, on_progress=on_progress)
    with od.lock(on_wait=sub.progress):
        return _cancel(od, sub)


def _cancel(od: OutputDir, sub: Submitter) -> list[str]:
    """Ask the vendor to cancel each live job. A batch that ended meanwhile cannot be cancelled: it is left for
    the next submit/status to fetch, and the others are still cancelled. A cancel that failed for another
    reason is raised once every other job was tried.
    """
    cancelled, failures = [], []
    for job in od.state.live():
        if job.vendor_id and job.status == "submitted":
            runtime = sub.runtime(job.runtime)
            try:
                runtime.cancel(job)
            except RuntimeFailure as exc:
                if _ended(runtime, job):
                    sub.progress(f"{job.runtime}: {job.name} already ended; its results are fetched by the next "
                                 "submit or status")
                else:
                    failures.append(exc)
                continue
            job.vendor["cancel_requested_at"] = datetime.now(timezone.utc).isoformat(timespec="seconds")  # shown as cancelling until the vendor says cancelled
            od.state.save()
            cancelled.append(job.name)
        elif job.status in ("prepared", "creating") and job.vendor_id is None:
            od.state.update(job, status="cancelled")
            cancelled.append(job.name)
    if failures:
        done = f" ({len(cancelled)} other job(s) cancelled)" if cancelled else ""
        raise RuntimeFailure(failures[0].runtime, "; ".join(str(f) for f in failures) + done)
    return cancelled


def _ended(runtime: Any, job: Any) -> bool:
    """Whether the vendor says the batch is no longer running (so there is nothing to cancel)."""
    try:
        return bool(runtime.poll(job).state != "running")
    except RuntimeFailure:
        return False


def run(spec_or_path: Any, out_dir: str | Path | None = None, *, poll_interval: float = 30.0,
        concurrency: int | None = None, prices: str | Path | None = None, env: dict[str, str] | None = None,
        output: str | Path | None = None, on_progress: Progress | None = None,
        online: bool = False, display: Display | None = None, max_cost: float | None = None) -> tuple[Any, Any]:
    """compile -> submit (every stage, waiting) -> collect, resumable: run it again after a kill.

    Returns (CompileResult of the first stage, CollectReport).
    """
    from . import api
    from .dataset import collect_to

    result = api.compile(spec_or_path, out_dir, prices=prices)
    if on_progress is not None:
        on_progress(f"compiled {result.requests:,} requests into {result.out_dir}")
    with OutputDir(result.out_dir).lock(on_wait=on_progress):  # compile to collect, one process at a time
        advance(result.out_dir, wait=True, poll_interval=poll_interval, concurrency=concurrency, env=env,
                prices=PriceTable.load(prices), on_progress=on_progress, online=online, display=display,
                max_cost=max_cost)
        return result, collect_to(result.out_dir, output, prices)


__all__ = ["StageView", "SubmitReport", "Survey", "advance", "cancel", "plan_run", "run", "status", "survey"]
