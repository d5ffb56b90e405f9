"""collect: results -> dataset file + rejects.jsonl + a summary that reconciles with the manifest."""

from __future__ import annotations

import multiprocessing
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import orjson

from datafast.compiler.collect import RowBuilder
from datafast.compiler.pricing import PriceTable
from datafast.runtimes.store import ResultIndex

from .runner import BadInput, Workdir

FORMATS = (".jsonl", ".parquet")


@dataclass
class _Counts:
    """requests == producing + rejected + pending, always."""

    requests: int = 0
    producing: int = 0
    rejected: int = 0
    pending: int = 0
    rows: int = 0


COUNTS = tuple(f.name for f in fields(_Counts))


@dataclass
class CollectReport(_Counts):
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
class _Tally(_Counts):
    """What one collect worker counted; merged by addition."""

    labels: Counter[str] = field(default_factory=Counter)
    reasons: Counter[str] = field(default_factory=Counter)
    tokens: dict[str, list[int]] = field(default_factory=dict)

    def merge(self, other: _Tally) -> None:
        for name in COUNTS:
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.labels.update(other.labels)
        self.reasons.update(other.reasons)
        for model, (inp, out) in other.tokens.items():
            t = self.tokens.setdefault(model, [0, 0])
            t[0] += inp
            t[1] += out


Emit = Callable[[int, bytes, bytes], None]  # (chunk number, its rows, its rejects)


def _collect_chunks(wd: Workdir, index: ResultIndex, worker: int, workers: int, emit: Emit) -> _Tally:
    """Collect every `workers`-th chunk of the manifest starting at `worker`; emit each chunk's lines."""
    builder = RowBuilder(wd.manifest)
    tally = _Tally()
    for number, raw_chunk in enumerate(_chunks(_manifest_lines(wd), CHUNK)):
        if number % workers != worker:
            continue
        chunk = [orjson.loads(line) for line in raw_chunk]
        rows: list[bytes] = []
        rejects: list[bytes] = []
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
                rejects.append(orjson.dumps({"id": request["id"], "stage": request["stage"],
                                             "model": request["model"], "reason": outcome.reason,
                                             "text": (result or {}).get("text"), "meta": request["meta"]}))
            else:
                tally.producing += 1
                tally.rows += len(outcome.rows)
                label = request["meta"].get("label") or request["meta"].get("topic")
                if label is not None:
                    tally.labels[str(label)] += len(outcome.rows)
                rows.extend(orjson.dumps(row) for row in outcome.rows)
        emit(number, b"".join(r + b"\n" for r in rows), b"".join(r + b"\n" for r in rejects))
    return tally


def _worker(conn: Any, wd: Workdir, index: ResultIndex, worker: int, workers: int) -> None:
    try:
        tally = _collect_chunks(wd, index, worker, workers, lambda n, rows, rej: conn.send(("chunk", n, rows, rej)))
        conn.send(("done", tally))
    except BaseException as exc:  # reported to the parent, which raises it
        conn.send(("error", f"{type(exc).__name__}: {exc}"))


def collect_to(out_dir: str | Path, output: str | Path | None = None, prices: str | Path | None = None) -> CollectReport:
    """Write the dataset (`output`, default `<dir>/dataset.jsonl`; .jsonl or .parquet) and `<dir>/rejects.jsonl`.

    Rows keep manifest order. Large collects run in two forked workers, each taking every other chunk of
    the manifest and sending its lines back; this process writes them in chunk order.
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
    with wd.store.index() as index, open(jsonl, "wb") as rows_fh, open(rejects, "wb") as rej_fh:
        def write(number: int, rows: bytes, rej: bytes) -> None:
            rows_fh.write(rows)
            rej_fh.write(rej)

        if workers == 1:
            tally = _collect_chunks(wd, index, 0, 1, write)
        else:
            tally = _collect_parallel(wd, index, workers, write)
    if target.suffix == ".parquet":
        _jsonl_to_parquet(jsonl, target)
        jsonl.unlink()
    report = CollectReport(**{name: getattr(tally, name) for name in COUNTS}, output=str(target),
                           rejects=str(rejects))
    report.rows_by_label = dict(sorted(tally.labels.items()))
    report.reasons = dict(tally.reasons.most_common())
    report.usage = _usage(tally.tokens, PriceTable.load(prices))
    return report


def _collect_parallel(wd: Workdir, index: ResultIndex, workers: int, write: Emit) -> _Tally:
    ctx = multiprocessing.get_context("fork")  # the index is shared copy-on-write, not rebuilt
    procs, conns = [], []
    try:
        for w in range(workers):
            parent, child = ctx.Pipe(duplex=False)
            proc = ctx.Process(target=_worker, args=(child, wd, index, w, workers), daemon=True)
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
