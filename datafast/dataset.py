"""collect: results -> rows of every stage -> the final rows of the type, and rejects.jsonl, reconciled.

Per stage, each request's answer is validated and fanned out into `rows/<stage>.jsonl`; a request whose
answer gives no rows is a reject naming its stage. The type's assembler (compiler/stages/<type>.py) joins
the stages' rows into the final rows (`dataset.jsonl`); an item whose chain broke is a reject too. Counts
always reconcile: per stage, requests = with_rows + rejected + pending; finally, items = rows + rejected +
pending.
"""

from __future__ import annotations

import multiprocessing
import shutil
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import orjson

from datafast.compiler.collect import RowBuilder
from datafast.compiler.pricing import PriceTable
from datafast.compiler.stages import StageOutcomes, assembler_for
from datafast.compiler.stages.base import parents_of
from datafast.runtimes.store import TOKEN_FIELDS, ResultIndex, usage_counts

from .export import jsonl_to_csv, jsonl_to_parquet
from .logs import get_logger
from .outdir import BadInput, Manifest, OutputDir
from .runner import MAX_ATTEMPTS, in_flight_ids

FORMATS = (".jsonl", ".parquet", ".csv")
log = get_logger("collect")


@dataclass
class _Counts:
    """requests == with_rows + rejected + pending, always."""

    requests: int = 0
    with_rows: int = 0
    rejected: int = 0
    pending: int = 0
    rows: int = 0


COUNTS = tuple(f.name for f in fields(_Counts))


@dataclass
class CollectReport(_Counts):
    """Totals over every compiled stage (`rows`: the final rows); `stages` per stage; `items` for
    multi-stage types: final items = rows + rejected (chain broken) + pending (a stage still to come)."""

    output: str = ""
    rejects: str = ""
    rows_by_label: dict[str, int] = field(default_factory=dict)
    reasons: dict[str, int] = field(default_factory=dict)
    unwrapped: dict[str, int] = field(default_factory=dict)  # answers whose JSON came in a wrapper, by wrapper
    usage: dict[str, Any] = field(default_factory=dict)
    stages: dict[str, dict[str, Any]] = field(default_factory=dict)
    items: dict[str, Any] | None = None

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


PARALLEL_THRESHOLD = 20_000  # requests; below it a second process costs more than it saves
CHUNK = 4096


@dataclass
class _Tally(_Counts):
    """What one collect worker counted; merged by addition."""

    labels: Counter[str] = field(default_factory=Counter)
    reasons: Counter[str] = field(default_factory=Counter)
    unwrapped: Counter[str] = field(default_factory=Counter)
    # per model: TOKEN_FIELDS for batch requests, then the same for online calls (full price)
    tokens: dict[str, list[int]] = field(default_factory=dict)
    rejected_tokens: dict[str, list[int]] = field(default_factory=dict)  # of the final results rejected
    row_cost: float = 0.0  # single stage: the cost of the requests that gave rows (the rows' cost_usd summed)

    def merge(self, other: _Tally) -> None:
        for name in COUNTS:
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.labels.update(other.labels)
        self.reasons.update(other.reasons)
        self.unwrapped.update(other.unwrapped)
        self.row_cost += other.row_cost
        for mine, theirs in ((self.tokens, other.tokens), (self.rejected_tokens, other.rejected_tokens)):
            for model, counts in theirs.items():
                t = mine.setdefault(model, [0] * (2 * len(TOKEN_FIELDS)))
                for i, n in enumerate(counts):
                    t[i] += n

    def counts(self) -> dict[str, int]:
        return {name: getattr(self, name) for name in COUNTS}


Emit = Callable[[int, bytes, bytes], None]  # (chunk number, its rows, its rejects)


@dataclass
class _Job:
    """One stage's collect: where its requests and results are, and what counts as still pending."""

    od: OutputDir
    manifest: Manifest
    index: ResultIndex
    in_flight: set[str]
    max_attempts: int = MAX_ATTEMPTS
    prices: PriceTable | None = None  # given: each row gets `cost_usd` (single-stage rows; see `costs`)
    costs: dict[str, tuple[float | None, int]] | None = None  # given: request id -> (its cost, rows it gave)


def _collect_chunks(job: _Job, worker: int, workers: int, emit: Emit, keep: StageOutcomes | None = None,
                    pending: set[str] | None = None) -> _Tally:
    """Collect every `workers`-th chunk of the stage's manifest starting at `worker`; emit each chunk's lines.

    With `keep`, rows and the reasons of failed requests (by parent row) are also kept in memory; with
    `pending`, the ids of requests without a final result are added to it.
    """
    builder = RowBuilder(job.manifest.data)
    index = job.index
    tally = _Tally()
    for number, raw_chunk in enumerate(_chunks(job.od.manifest_lines(job.manifest.stage), CHUNK)):
        if number % workers != worker:
            continue
        chunk = [orjson.loads(line) for line in raw_chunk]
        rows: list[bytes] = []
        rejects: list[bytes] = []
        positions = index.positions([r["id"] for r in chunk]).tolist()
        for request, pos in zip(chunk, positions, strict=True):
            tally.requests += 1
            result = index.read(pos) if pos >= 0 else None
            used: list[int] | None = None
            if result is not None:
                used = usage_counts(result)
                t = tally.tokens.setdefault(request["model"], [0] * len(used))
                for i, n in enumerate(used):
                    t[i] += n
                if not index.ok[pos] and (request["id"] in job.in_flight or (
                        index.retryable[pos] and int(index.errors[pos]) < job.max_attempts)):
                    result = None  # to be retried, or being retried: pending, not rejected
            outcome = builder.outcome(request, result)
            if outcome is not None and outcome.unwrapped is not None:
                tally.unwrapped[outcome.unwrapped] += 1
            if outcome is None:
                tally.pending += 1
                if pending is not None:
                    pending.add(request["id"])
            elif outcome.reason is not None:
                tally.rejected += 1
                if used is not None:
                    t = tally.rejected_tokens.setdefault(request["model"], [0] * len(used))
                    for i, n in enumerate(used):
                        t[i] += n
                tally.reasons[outcome.reason.split(":")[0]] += 1
                rejects.append(orjson.dumps({"id": request["id"], "stage": request["stage"],
                                             "model": request["model"], "reason": outcome.reason,
                                             "text": (result or {}).get("text"), "meta": request["meta"]}))
                if keep is not None:
                    for parent in parents_of(request["meta"]):
                        keep.failed[parent] = outcome.reason
            else:
                tally.with_rows += 1
                tally.rows += len(outcome.rows)
                if job.prices is not None and used is not None:
                    cost = _priced(job.prices, request["model"], used)
                    if job.costs is not None:
                        job.costs[request["id"]] = (cost, len(outcome.rows))
                    else:  # single-stage rows are the final rows: each carries its share of the request
                        tally.row_cost += cost or 0.0
                        share = None if cost is None else round(cost / len(outcome.rows), 9)
                        for row in outcome.rows:
                            row["cost_usd"] = share
                            flatten_placeholders(row)
                label = request["meta"].get("label") or request["meta"].get("topic")
                if label is not None:
                    tally.labels[str(label)] += len(outcome.rows)
                rows.extend(orjson.dumps(row) for row in outcome.rows)
                if keep is not None:
                    keep.rows.extend(outcome.rows)
        emit(number, b"".join(r + b"\n" for r in rows), b"".join(r + b"\n" for r in rejects))
    return tally


def _priced(prices: PriceTable, model: str, tokens: list[int]) -> float | None:
    """USD of TOKEN_FIELDS counts (batch half, online half); None when the model has no price."""
    n = len(TOKEN_FIELDS)
    batch = prices.cost_exact(model, *tokens[:n])["batch"]
    online = prices.cost_exact(model, *tokens[n:])["online"]
    return None if batch is None or online is None else batch + online


def stage_outcomes(od: OutputDir, manifest: Manifest, index: ResultIndex, in_flight: set[str],
                   max_attempts: int = MAX_ATTEMPTS) -> StageOutcomes:
    """The rows of a compiled stage so far, and why its failed requests gave none (by parent row id)."""
    keep = StageOutcomes()
    _collect_chunks(_Job(od, manifest, index, in_flight, max_attempts), 0, 1, lambda *_: None, keep)
    return keep


@dataclass
class StageProgress:
    """A compiled stage so far: its outcomes, the ids still pending and the actual tokens per model."""

    outcomes: StageOutcomes
    pending: set[str]
    usage: dict[str, tuple[int, ...]]  # per model: TOKEN_FIELDS (in, out, cache read, cache write, 1h write)


def stage_progress(od: OutputDir, manifest: Manifest, index: ResultIndex, in_flight: set[str],
                   max_attempts: int = MAX_ATTEMPTS) -> StageProgress:
    keep, pending = StageOutcomes(), set[str]()
    tally = _collect_chunks(_Job(od, manifest, index, in_flight, max_attempts), 0, 1, lambda *_: None, keep,
                            pending)
    n = len(TOKEN_FIELDS)
    return StageProgress(keep, pending, {m: tuple(t[i] + t[n + i] for i in range(n)) for m, t in tally.tokens.items()})


def _worker(conn: Any, job: _Job, worker: int, workers: int) -> None:
    try:
        tally = _collect_chunks(job, worker, workers, lambda n, rows, rej: conn.send(("chunk", n, rows, rej)))
        conn.send(("done", tally))
    except BaseException as exc:  # reported to the parent, which raises it
        conn.send(("error", f"{type(exc).__name__}: {exc}"))


def collect_to(out_dir: str | Path, output: str | Path | None = None, prices: str | Path | None = None) -> CollectReport:
    """Write `rows/<stage>.jsonl` for every compiled stage, the final rows (`output`, default
    `<dir>/dataset.jsonl`; .jsonl or .parquet) and `<dir>/rejects.jsonl` (every stage's rejects).

    Rows keep manifest order. A large single-stage collect runs in two forked workers, each taking every
    other chunk of the manifest and sending its lines back; this process writes them in chunk order.

    Raises:
        NotCompiled, BadInput: no compiled dir, or an output format other than .jsonl/.parquet (exit 2).
    """
    od = OutputDir.open(out_dir)
    target = Path(output) if output is not None else od.dataset_path
    if target.suffix not in FORMATS:
        raise BadInput(f"{target}: output must end in {', '.join(FORMATS[:-1])} or {FORMATS[-1]} (-o names the dataset file; the "
                       "output dir is the DIR argument)")
    with od.lock(on_wait=log.warning):
        return _collect(od, target, prices)


def _collect(od: OutputDir, target: Path, prices: str | Path | None) -> CollectReport:
    from .pipeline import StageView, survey

    in_flight = in_flight_ids(od)
    (od.path / "rows").mkdir(exist_ok=True)
    outcomes: dict[str, StageOutcomes] = {}
    total = _Tally()
    stage_counts: dict[str, dict[str, Any]] = {}
    single = len(od.stage_names) == 1
    table = PriceTable.load(prices)
    costs: dict[str, tuple[float | None, int]] | None = None if single else {}
    with od.store.index() as index, open(od.rejects_path, "wb") as rej_fh:
        # a single stage is compiled from the spec: no survey (it would read a million-request manifest twice)
        views = [StageView(od.first_stage, "", (), od.manifest)] if single else \
            survey(od, compile_ready=False, index=index).stages
        for view in views:
            if view.manifest is None:
                outcomes[view.name] = StageOutcomes(complete=False)
                stage_counts[view.name] = {"compiled": False, "waiting_for": list(view.waiting_for)}
                continue
            job = _Job(od, view.manifest, index, in_flight, prices=table, costs=costs)
            keep = None if single else StageOutcomes(complete=view.complete)
            with open(od.rows_path(view.name), "wb") as rows_fh:
                def write(number: int, rows: bytes, rej: bytes, rows_fh: Any = rows_fh) -> None:
                    rows_fh.write(rows)
                    rej_fh.write(rej)

                workers = 2 if single and view.manifest.requests >= PARALLEL_THRESHOLD and "fork" in \
                    multiprocessing.get_all_start_methods() else 1
                tally = _collect_chunks(job, 0, 1, write, keep) if workers == 1 else \
                    _collect_parallel(job, workers, write)
            stage_counts[view.name] = {"compiled": True, "complete": view.complete, **tally.counts(),
                                       "cost": _cost_of(table, tally.tokens)}
            total.merge(tally)
            if keep is not None:
                outcomes[view.name] = keep
        items = None
        final_rows = total.rows
        labels = total.labels
        row_cost = total.row_cost
        if not single:
            assembly = assembler_for(od.spec)(od.spec, outcomes)
            row_cost = _final_row_costs(assembly.rows, costs or {})
            final_rows = len(assembly.rows)
            labels = Counter(str(r.get("label") or r.get("topic")) for r in assembly.rows
                             if r.get("label") or r.get("topic"))
            reasons = Counter(str(r["stage"]) for r in assembly.rejects)
            items = {"items": assembly.items, "rows": final_rows, "rejected": len(assembly.rejects),
                     "pending": assembly.pending, "rejected_by_stage": dict(reasons.most_common())}
            rej_fh.write(b"".join(orjson.dumps({"level": "item", **r}) + b"\n" for r in assembly.rejects))
    jsonl = target if target.suffix == ".jsonl" else od.path / ".dataset.tmp.jsonl"
    jsonl.parent.mkdir(parents=True, exist_ok=True)
    if single:
        shutil.copyfile(od.rows_path(od.first_stage), jsonl)
    else:
        with open(jsonl, "wb") as fh:
            fh.write(b"".join(orjson.dumps(row) + b"\n" for row in assembly.rows))
    if target.suffix in (".parquet", ".csv"):
        try:
            (jsonl_to_parquet if target.suffix == ".parquet" else jsonl_to_csv)(jsonl, target)
        finally:
            jsonl.unlink()
    report = CollectReport(total.requests, total.with_rows, total.rejected, total.pending, final_rows,
                           output=str(target), rejects=str(od.rejects_path), stages=stage_counts, items=items)
    report.rows_by_label = dict(sorted(labels.items()))
    report.reasons = dict(total.reasons.most_common())
    report.unwrapped = dict(total.unwrapped.most_common())
    report.usage = _usage(total.tokens, total.rejected_tokens, index.spent, row_cost, table)
    return report


def _final_row_costs(rows: list[dict[str, Any]], costs: dict[str, tuple[float | None, int]]) -> float:
    """Give each final row `cost_usd`: over the requests of its chain (`request_ids`), each request's cost
    split evenly among the rows it gave (a question shared by 3 answers: a third each). Returns the sum."""
    total = 0.0
    for row in rows:
        cost: float | None = 0.0
        for request_id in (row.get("request_ids") or {}).values():
            spent, produced = costs.get(request_id, (0.0, 1))
            cost = None if cost is None or spent is None else cost + spent / max(produced, 1)
        row["cost_usd"] = None if cost is None else round(cost, 9)
        flatten_placeholders(row)
        total += cost or 0.0
    return total


def flatten_placeholders(row: dict[str, Any]) -> dict[str, Any]:
    """A final row's expansion values as flat columns `placeholder_<name>` (instead of one `placeholders`
    object), so that a table of rows can be grouped, filtered or deduplicated on them."""
    values = row.pop("placeholders", None)
    if isinstance(values, dict):
        for name, value in values.items():
            row[f"placeholder_{name}"] = value
    elif values is not None:
        row["placeholders"] = values
    return row


def _cost_of(prices: PriceTable, tokens: dict[str, list[int]]) -> float | None:
    """USD of per-model `usage_counts` sums; None when a model has no price."""
    total: float | None = 0.0
    for model, counts in tokens.items():
        cost = _priced(prices, model, counts)
        total = None if total is None or cost is None else total + cost
    return None if total is None else round(total, 6)


def _collect_parallel(job: _Job, workers: int, write: Emit) -> _Tally:
    ctx = multiprocessing.get_context("fork")  # the index is shared copy-on-write, not rebuilt
    procs, conns = [], []
    try:
        for w in range(workers):
            parent, child = ctx.Pipe(duplex=False)
            proc = ctx.Process(target=_worker, args=(child, job, w, workers), daemon=True)
            proc.start()
            child.close()
            procs.append(proc)
            conns.append(parent)
        total = _Tally()
        live = list(range(workers))
        number = 0
        while live:
            # chunk `number` belongs to worker number % workers; once one worker is done, no chunk is left
            w = number % workers if len(live) == workers else live[0]
            message = conns[w].recv()
            if message[0] == "error":
                raise RuntimeError(f"collect worker failed: {message[1]}")
            if message[0] == "done":
                total.merge(message[1])
                live.remove(w)
                continue
            _, got, rows, rej = message
            if got != number:
                raise RuntimeError(f"collect worker sent chunk {got}, expected {number}")
            write(got, rows, rej)
            number += 1
        return total
    finally:
        for proc in procs:
            if proc.is_alive():
                proc.join(timeout=5)
            if proc.is_alive():
                proc.terminate()
            proc.join()


def _chunks(items: Iterator[Any], size: int) -> Iterator[list[Any]]:
    chunk: list[Any] = []
    for item in items:
        chunk.append(item)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _usage(tokens: dict[str, list[int]], rejected: dict[str, list[int]], spent: dict[str, list[int]],
           row_cost: float, prices: PriceTable) -> dict[str, Any]:
    """Actual tokens and cost. `by_model`/`cost`: the final results of the current manifests; `spent`: every
    result line ever stored (failed and superseded attempts, results of earlier manifests: all were paid);
    `rows_cost`: what the final rows carry in `cost_usd`; `cost_without_rows`: spent - rows_cost, the money
    that gave no row (rejected answers, failed attempts, chains that broke or are still pending)."""
    n = len(TOKEN_FIELDS)
    by_model = {}
    for model, t in sorted(tokens.items()):
        inp, cached = t[0] + t[n], t[2] + t[n + 2]
        by_model[model] = {"input_tokens": inp, "output_tokens": t[1] + t[n + 1], "cache_read_input_tokens": cached,
                           "cache_write_input_tokens": t[3] + t[n + 3], "cache_write_1h_input_tokens": t[4] + t[n + 4],
                           "online_input_tokens": t[n],
                           "online_output_tokens": t[n + 1], "cached_share": round(cached / inp, 4) if inp else 0.0,
                           "cost": _priced_rounded(prices, model, t),
                           "rejected_cost": _priced_rounded(prices, model, rejected.get(model, [0] * 2 * n))}
    spent_cost = _cost_of(prices, spent)
    rows_cost = round(row_cost, 6)
    return {"by_model": by_model, "cost": _cost_of(prices, tokens), "rejected_cost": _cost_of(prices, rejected),
            # rows_cost + cost_without_rows == spent exactly, in the 6 decimals shown (each row's cost_usd
            # is a share of an unrounded request cost)
            "spent": spent_cost, "rows_cost": rows_cost,
            "cost_without_rows": None if spent_cost is None else max(round(spent_cost - rows_cost, 6), 0.0),
            "currency": prices.currency, "prices_checked": prices.checked,
            "prices_files": list(prices.sources[1:]),  # --prices files merged over the built-in table
            "note": "actual tokens reported by the vendors; batch requests at batch prices, online calls at the "
                    "online price, cached input at the cache prices; `spent` counts every attempt"}


def _priced_rounded(prices: PriceTable, model: str, tokens: list[int]) -> float | None:
    cost = _priced(prices, model, tokens)
    return None if cost is None else round(cost, 6)


def load_dataset(out_dir: str | Path, report: CollectReport | None = None) -> Any:
    """The final rows of an output dir as a `datasets.Dataset` (collecting first, unless `report` is given).

    The rows go through the same Parquet export as `collect -o x.parquet` (datafast.export): a column whose
    values differ in type across rows is JSON text rather than an error. A classification dataset's `label`
    is a `datasets.ClassLabel` whose names are the spec's classes, in the spec's order.
    """
    import datasets

    report = report or collect_to(out_dir)
    if report.rows == 0:
        return datasets.Dataset.from_list([])
    cache = Path(out_dir) / ".hf-cache"
    source = Path(report.output)
    parquet = source if source.suffix == ".parquet" else cache / "dataset.parquet"
    if parquet is not source:
        jsonl_to_parquet(source, parquet)
    dataset = datasets.Dataset.from_parquet(str(parquet), cache_dir=str(cache))
    classes = getattr(OutputDir.open(out_dir).spec, "classes", None)
    if classes and "label" in dataset.column_names:
        names = [c.name for c in classes]
        if set(dataset.unique("label")) <= set(names):  # labels of an edited spec's old classes stay text
            dataset = dataset.cast_column("label", datasets.ClassLabel(names=names))
    return dataset
