"""collect: results -> dataset file + rejects.jsonl + a summary that reconciles with the manifest."""

from __future__ import annotations

import contextlib
import multiprocessing
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from datafast.compiler.collect import RowBuilder
from datafast.compiler.pricing import PriceTable
from datafast.runtimes.store import ResultIndex

from .logs import get_logger
from .runner import BadInput, Workdir

log = get_logger("collect")

FORMATS = (".jsonl", ".parquet")


@dataclass
class CollectReport:
    """requests == producing + rejected + pending, always."""

    requests: int = 0
    producing: int = 0
    rejected: int = 0
    pending: int = 0
    rows: int = 0
    output: str = ""
    rejects: str = ""
    rows_by_label: dict[str, int] = field(default_factory=dict)
    reasons: dict[str, int] = field(default_factory=dict)
    usage: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


PARALLEL_THRESHOLD = 20_000  # requests; below it a second process costs more than it saves
CHUNK = 4096


@dataclass
class _Tally:
    """What one collect worker counted; merged by addition."""

    requests: int = 0
    producing: int = 0
    rejected: int = 0
    pending: int = 0
    rows: int = 0
    labels: Counter[str] = field(default_factory=Counter)
    reasons: Counter[str] = field(default_factory=Counter)
    tokens: dict[str, list[int]] = field(default_factory=lambda: defaultdict(lambda: [0, 0]))
    # (chunk number, rows start, rows end, rejects start, rejects end) in this worker's files
    spans: list[tuple[int, int, int, int, int]] = field(default_factory=list)

    def merge(self, other: _Tally) -> None:
        for name in ("requests", "producing", "rejected", "pending", "rows"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.labels.update(other.labels)
        self.reasons.update(other.reasons)
        for model, (inp, out) in other.tokens.items():
            self.tokens[model][0] += inp
            self.tokens[model][1] += out


def _collect_chunks(wd: Workdir, index: ResultIndex, worker: int, workers: int, rows_path: Path,
                    rejects_path: Path) -> _Tally:
    """Collect every `workers`-th chunk of the manifest starting at `worker`, in manifest order."""
    builder = RowBuilder(wd.manifest)
    tally = _Tally()
    tally.tokens = dict(tally.tokens)  # plain dict: it crosses a process boundary
    with open(rows_path, "wb") as rows_fh, open(rejects_path, "wb") as rej_fh:
        for number, raw_chunk in enumerate(_chunks(_manifest_lines(wd), CHUNK)):
            if number % workers != worker:
                continue
            chunk = [orjson.loads(line) for line in raw_chunk]
            span = (number, rows_fh.tell(), rej_fh.tell())
            positions = index.positions([r["id"] for r in chunk]).tolist()
            for request, pos in zip(chunk, positions, strict=True):
                tally.requests += 1
                result = index.read(pos) if pos >= 0 else None
                if result is not None:
                    t = tally.tokens.setdefault(request["model"], [0, 0])
                    t[0] += result["usage"]["input_tokens"]
                    t[1] += result["usage"]["output_tokens"]
                outcome = builder.outcome(request, result)
                if outcome is None:
                    tally.pending += 1
                elif outcome.reason is not None:
                    tally.rejected += 1
                    tally.reasons[outcome.reason.split(":")[0]] += 1
                    rej_fh.write(orjson.dumps({"id": request["id"], "stage": request["stage"],
                                               "model": request["model"], "reason": outcome.reason,
                                               "text": (result or {}).get("text"), "meta": request["meta"]}) + b"\n")
                else:
                    tally.producing += 1
                    tally.rows += len(outcome.rows)
                    label = request["meta"].get("label") or request["meta"].get("topic")
                    if label is not None:
                        tally.labels[str(label)] += len(outcome.rows)
                    rows_fh.write(b"".join(orjson.dumps(row) + b"\n" for row in outcome.rows))
            tally.spans.append((span[0], span[1], rows_fh.tell(), span[2], rej_fh.tell()))
    return tally


def _worker(conn: Any, wd: Workdir, index: ResultIndex, worker: int, workers: int, rows: Path, rejects: Path) -> None:
    try:
        conn.send(("ok", _collect_chunks(wd, index, worker, workers, rows, rejects)))
    except BaseException as exc:  # reported to the parent, which raises it
        conn.send(("error", f"{type(exc).__name__}: {exc}"))


def collect_to(out_dir: str | Path, output: str | Path | None = None, prices: str | Path | None = None) -> CollectReport:
    """Write the dataset (`output`, default `<dir>/dataset.jsonl`; .jsonl or .parquet) and `<dir>/rejects.jsonl`.

    Rows keep manifest order. Large collects run in two processes (each takes every other chunk of the
    manifest) whose part files are stitched back in order.
    """
    wd = Workdir.open(out_dir)
    target = Path(output) if output is not None else wd.path / "dataset.jsonl"
    if target.suffix not in FORMATS:
        raise BadInput(f"{target}: output must end in {' or '.join(FORMATS)}")
    jsonl = target if target.suffix == ".jsonl" else wd.path / ".dataset.tmp.jsonl"
    jsonl.parent.mkdir(parents=True, exist_ok=True)
    rejects = wd.path / "rejects.jsonl"
    workers = 2 if wd.manifest["counts"]["requests"] >= PARALLEL_THRESHOLD and "fork" in \
        multiprocessing.get_all_start_methods() else 1
    with wd.store.index() as index:
        if workers == 1:
            tally = _collect_chunks(wd, index, 0, 1, jsonl, rejects)
        else:
            tally = _collect_parallel(wd, index, workers, jsonl, rejects)
    if target.suffix == ".parquet":
        _jsonl_to_parquet(jsonl, target)
        jsonl.unlink()
    report = CollectReport(requests=tally.requests, producing=tally.producing, rejected=tally.rejected,
                           pending=tally.pending, rows=tally.rows, output=str(target), rejects=str(rejects))
    report.rows_by_label = dict(sorted(tally.labels.items()))
    report.reasons = dict(tally.reasons.most_common())
    report.usage = _usage(tally.tokens, PriceTable.load(prices))
    return report


def _collect_parallel(wd: Workdir, index: ResultIndex, workers: int, rows: Path, rejects: Path) -> _Tally:
    ctx = multiprocessing.get_context("fork")  # the index is shared copy-on-write, not rebuilt
    parts = [(wd.path / f".rows.part{w}", wd.path / f".rejects.part{w}") for w in range(workers)]
    procs, conns = [], []
    try:
        for w, (rows_part, rej_part) in enumerate(parts):
            parent, child = ctx.Pipe()
            proc = ctx.Process(target=_worker, args=(child, wd, index, w, workers, rows_part, rej_part), daemon=True)
            proc.start()
            child.close()
            procs.append(proc)
            conns.append(parent)
        tallies = []
        for conn in conns:
            status, payload = conn.recv()
            if status != "ok":
                raise RuntimeError(f"collect worker failed: {payload}")
            tallies.append(payload)
        for proc in procs:
            proc.join()
        total = _Tally()
        for t in tallies:
            total.merge(t)
        spans = sorted((span, w) for w, t in enumerate(tallies) for span in t.spans)
        with contextlib.ExitStack() as stack:
            rows_out = stack.enter_context(open(rows, "wb"))
            rej_out = stack.enter_context(open(rejects, "wb"))
            handles = [(stack.enter_context(open(r, "rb")), stack.enter_context(open(j, "rb"))) for r, j in parts]
            for (_, r0, r1, j0, j1), w in spans:
                _copy(handles[w][0], r0, r1, rows_out)
                _copy(handles[w][1], j0, j1, rej_out)
        return total
    finally:
        for proc in procs:
            if proc.is_alive():
                proc.terminate()
            proc.join()
        for rows_part, rej_part in parts:
            rows_part.unlink(missing_ok=True)
            rej_part.unlink(missing_ok=True)


def _copy(src: Any, start: int, end: int, dst: Any) -> None:
    src.seek(start)
    remaining = end - start
    while remaining > 0:
        block = src.read(min(remaining, 1 << 20))
        dst.write(block)
        remaining -= len(block)


def _manifest_lines(wd: Workdir) -> Iterator[bytes]:
    with open(wd.path / "manifest.jsonl", "rb") as fh:
        yield from fh


def _chunks(items: Iterator[Any], size: int) -> Iterator[list[Any]]:
    chunk: list[Any] = []
    for item in items:
        chunk.append(item)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _usage(tokens: dict[str, list[int]], prices: PriceTable) -> dict[str, Any]:
    by_model = {}
    total: float | None = 0.0
    for model, (inp, out) in sorted(tokens.items()):
        cost = prices.cost(model, inp, out)["batch"]
        by_model[model] = {"input_tokens": inp, "output_tokens": out, "cost": cost}
        total = None if total is None or cost is None else round(total + cost, 6)
    return {"by_model": by_model, "cost": total, "currency": prices.currency,
            "note": "actual tokens reported by the vendors, at batch prices for batch runtimes"}


def _jsonl_to_parquet(source: Path, target: Path) -> None:
    import pyarrow as pa
    import pyarrow.json as pajson
    import pyarrow.parquet as pq

    if source.stat().st_size == 0:
        pq.write_table(pa.table({}), target)
        return
    pq.write_table(pajson.read_json(source), target)


def load_dataset(out_dir: str | Path) -> Any:
    """The collected rows of an output dir as a `datasets.Dataset` (collecting first)."""
    import datasets

    report = collect_to(out_dir)
    if report.rows == 0:
        return datasets.Dataset.from_list([])
    return datasets.Dataset.from_json(report.output, cache_dir=str(Path(out_dir) / ".hf-cache"))
