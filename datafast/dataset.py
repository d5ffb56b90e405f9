"""collect: results -> dataset file + rejects.jsonl + a summary that reconciles with the manifest."""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from datafast.compiler.collect import RowBuilder
from datafast.compiler.pricing import PriceTable

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


def collect_to(out_dir: str | Path, output: str | Path | None = None, prices: str | Path | None = None) -> CollectReport:
    """Write the dataset (`output`, default `<dir>/dataset.jsonl`; .jsonl or .parquet) and `<dir>/rejects.jsonl`."""
    wd = Workdir.open(out_dir)
    target = Path(output) if output is not None else wd.path / "dataset.jsonl"
    if target.suffix not in FORMATS:
        raise BadInput(f"{target}: output must end in {' or '.join(FORMATS)}")
    builder = RowBuilder(wd.manifest)
    final = wd.store.final()
    report = CollectReport(output=str(target), rejects=str(wd.path / "rejects.jsonl"))
    labels: Counter[str] = Counter()
    reasons: Counter[str] = Counter()
    tokens: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    jsonl = target if target.suffix == ".jsonl" else wd.path / ".dataset.tmp.jsonl"
    jsonl.parent.mkdir(parents=True, exist_ok=True)
    with open(jsonl, "w", encoding="utf-8") as rows_fh, open(wd.path / "rejects.jsonl", "w", encoding="utf-8") as rej_fh:
        for request in wd.requests():
            report.requests += 1
            result = final.get(request["id"])
            if result is not None:
                t = tokens[request["model"]]
                t[0] += result["usage"]["input_tokens"]
                t[1] += result["usage"]["output_tokens"]
            outcome = builder.outcome(request, result)
            if outcome is None:
                report.pending += 1
                continue
            if outcome.reason is not None:
                report.rejected += 1
                reasons[outcome.reason.split(":")[0]] += 1
                rej_fh.write(json.dumps({"id": request["id"], "stage": request["stage"], "model": request["model"],
                                         "reason": outcome.reason, "text": (result or {}).get("text"),
                                         "meta": request["meta"]}, ensure_ascii=False) + "\n")
                continue
            report.producing += 1
            for row in outcome.rows:
                report.rows += 1
                label = row.get("label") or row.get("topic")
                if label is not None:
                    labels[str(label)] += 1
                rows_fh.write(json.dumps(row, ensure_ascii=False) + "\n")
    if target.suffix == ".parquet":
        _jsonl_to_parquet(jsonl, target)
        jsonl.unlink()
    report.rows_by_label = dict(sorted(labels.items()))
    report.reasons = dict(reasons.most_common())
    report.usage = _usage(tokens, PriceTable.load(prices))
    return report


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
