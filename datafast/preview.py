"""preview: a few items through every stage before the full run, paid once.

`preview(SPEC, n)` compiles the spec, picks `n` first-stage requests spread over classes/topics, languages and
models (deterministically: round-robin over those groups, each taken in the order of its ids' hashes), and
runs them and their chains through every stage in `<dir>/preview/`, an output dir of its own whose first-stage
manifest is that subset. Later-stage requests are built from the same rows by the same builders, so they get
the same content-hash ids as in the full run; once the preview ends, its result files are copied into the
run's `results/`, and the full run never sends those requests again.
"""

from __future__ import annotations

import json
import shutil
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from datafast.compiler.hashing import stable_int
from datafast.compiler.pricing import PriceTable

from .outdir import OutputDir
from .progress import Display

PREVIEW_DIR = "preview"


def pick(requests: list[dict[str, Any]], n: int) -> list[dict[str, Any]]:
    """`n` requests spread over (class/topic, language, model) groups: round-robin over the groups in sorted
    order, each group's requests in the order of a hash of their ids. Deterministic, order-independent."""
    groups: dict[tuple[str, str, str], list[dict[str, Any]]] = defaultdict(list)
    for r in requests:
        meta = r["meta"]
        key = (str(meta.get("label") or meta.get("topic") or meta.get("document_type") or ""),
               str(meta.get("language", "")), r["model"])
        groups[key].append(r)
    queues = [sorted(groups[k], key=lambda r: stable_int(0, "preview", r["id"])) for k in sorted(groups)]
    chosen: list[dict[str, Any]] = []
    depth = 0
    while len(chosen) < n and any(depth < len(q) for q in queues):
        chosen.extend(q[depth] for q in queues if depth < len(q) and len(chosen) < n)
        depth += 1
    return chosen


@dataclass
class PreviewReport:
    """What the preview ran and what the full run would cost at the measured token usage."""

    out_dir: Path
    picked: int
    collect: Any  # CollectReport of the preview dir
    projection: dict[str, Any]


def preview(spec_or_path: Any, n: int = 3, out_dir: str | Path | None = None, *, poll_interval: float = 5.0,
            concurrency: int | None = None, env: dict[str, str] | None = None, prices: str | Path | None = None,
            online: bool = True, on_progress: Callable[[str], None] | None = None,
            display: Display | None = None, max_cost: float | None = None) -> PreviewReport:
    """Run `n` first-stage requests and their chains through every stage; return rows, rejects, projection.

    Args:
        online: send the preview's requests online (the default: a preview should not wait for batches).
    """
    from . import api
    from .dataset import collect_to
    from .pipeline import advance, plan_run

    if n < 1:
        raise ValueError("preview needs n >= 1")
    result = api.compile(spec_or_path, out_dir, prices=prices)
    run = OutputDir(result.out_dir)
    target = run.path / PREVIEW_DIR
    with run.lock(on_wait=on_progress):
        chosen = pick(list(run.requests(run.first_stage)), n)
        _write_subset(run, target, chosen)
        kwargs: dict[str, Any] = {"online": True} if online and _advance_takes_online() else {}
        advance(target, wait=True, poll_interval=poll_interval, concurrency=concurrency, env=env,
                prices=PriceTable.load(prices), on_progress=on_progress, display=display,
                max_cost=max_cost, **kwargs)
        collected = collect_to(target, None, prices)
        _share_results(target, run.path)
    table = PriceTable.load(prices)
    return PreviewReport(target, len(chosen), collected, measured_projection(target, plan_run(run.path, table), table))


def measured_projection(preview_dir: Path, plan: dict[str, Any], prices: PriceTable) -> dict[str, Any]:
    """The full run's tokens and cost at the preview's measured tokens per request of each (stage, model),
    next to `plan`'s chars/4 estimate. A (stage, model) the preview did not reach keeps the estimate; the
    share of the input read from (or written to) prompt caches is plan's.

    Returns `{"stages": [{stage, requests, input_tokens, output_tokens, cost_online, cost_batch, measured}],
    "total": {...}, "estimate_total": plan's projected total}`; tokens are counts, costs in the table's currency.
    """
    from datafast.runtimes.store import ResultStore

    od = OutputDir(preview_dir)
    measured: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0, 0])
    with ResultStore(od.path).index() as index:
        for name in od.stage_names:
            if od.stage_manifest(name) is None:
                continue
            requests = list(od.requests(name))
            for request, pos in zip(requests, index.positions([r["id"] for r in requests]).tolist(), strict=True):
                if pos >= 0 and index.ok[pos]:
                    usage = index.read(pos).get("usage") or {}
                    m = measured[(name, request["model"])]
                    m[0] += 1
                    m[1] += int(usage.get("input_tokens") or 0)
                    m[2] += int(usage.get("output_tokens") or 0)
    stages, total = [], {"requests": 0, "input_tokens": 0, "output_tokens": 0, "cost_online": 0.0, "cost_batch": 0.0}
    for entry in plan["stages"]:
        row = {"stage": entry["stage"], "requests": 0, "input_tokens": 0, "output_tokens": 0,
               "cost_online": 0.0, "cost_batch": 0.0, "measured": True}
        for model, m in entry["by_model"].items():
            n, inp, out = measured.get((entry["stage"], model), (0, 0, 0))
            if n:
                tokens_in, tokens_out = round(m["requests"] * inp / n), round(m["requests"] * out / n)
            else:
                tokens_in, tokens_out = m["input_tokens"], m["output_tokens"]
                row["measured"] = False
            # the prompt-cache share of the input is plan's (a preview of a few items says little about how
            # often a full run's requests share a prefix), applied to the measured input
            scale = tokens_in / m["input_tokens"] if m["input_tokens"] else 0.0
            cached = [round(int(m.get(k) or 0) * scale) for k in
                      ("cache_read_input_tokens", "cache_write_input_tokens", "cache_write_1h_input_tokens")]
            cost = prices.cost(model, tokens_in, tokens_out, *cached)
            row["requests"] += m["requests"]
            row["input_tokens"] += tokens_in
            row["output_tokens"] += tokens_out
            for k in ("online", "batch"):
                row[f"cost_{k}"] = round(row[f"cost_{k}"] + (cost[k] or 0.0), 6)
        stages.append(row)
        for k in total:
            total[k] = round(total[k] + row[k], 6) if isinstance(total[k], float) else total[k] + row[k]
    return {"stages": stages, "total": total, "estimate_total": plan["estimate"]["projected_total"],
            "currency": prices.currency}


def _advance_takes_online() -> bool:
    import inspect

    from .pipeline import advance

    return "online" in inspect.signature(advance).parameters


def _write_subset(run: OutputDir, target: Path, chosen: list[dict[str, Any]]) -> None:
    """`target` as an output dir whose first stage is the chosen requests (manifest lines kept byte for byte)."""
    ids = {r["id"] for r in chosen}
    target.mkdir(exist_ok=True)
    lines = [line for line in run.manifest_lines(run.first_stage) if json.loads(line)["id"] in ids]
    (target / "manifest.jsonl").write_bytes(b"".join(lines))
    manifest = dict(run.manifest.data)
    manifest["counts"] = {**manifest["counts"], "requests": len(lines)}
    manifest["jobs"] = []  # sent online; batch job files stay the full run's
    (target / "manifest.json").write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n", "utf-8")


def _share_results(preview_dir: Path, run_dir: Path) -> None:
    """Copy the preview's result files into the run's results/ (names are unique per job/online run), so the
    full run counts those requests as done."""
    source, target = preview_dir / "results", run_dir / "results"
    if not source.is_dir():
        return
    target.mkdir(exist_ok=True)
    for path in sorted(source.glob("*.jsonl")):
        dest = target / f"preview-{path.name}"
        if not dest.exists() or dest.stat().st_size != path.stat().st_size:
            shutil.copyfile(path, dest)


__all__ = ["PreviewReport", "pick", "preview"]
