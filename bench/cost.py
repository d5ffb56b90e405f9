"""Benchmark: what 1,000 final rows cost, datafast (batch, cache-aware layout) against the original library's
way (one online call per request, no prompt-cache layout), on the mcq and preference examples.

Usage (from the repo root): python bench/cost.py [--documents 20] [--doc-tokens 2000] [--json]

Each type runs end to end against in-process emulators on 127.0.0.1 (tests/emulators), which report
tokens and prompt-cache reads/writes the way each vendor does (a repeated prefix over the model's minimum,
Anthropic only up to the `cache_control` breakpoints sent). `--documents` synthetic documents of about
`--doc-tokens` tokens each (4 characters a token) feed:
- mcq: questions on openai:gpt-4.1-mini, distractors on anthropic:claude-sonnet-4-5;
- preference: questions on openai:gpt-4.1-mini, chosen on anthropic:claude-sonnet-4-5, rejected on
  openai:gpt-4.1-mini, judge on openai:gpt-4.1.

Both sides are priced from the same dated table (compiler/data/prices.json) and the same answers:
- datafast: what collect reports as spent (every result, batch prices, cached input at the cache prices);
- original way: the same results' tokens, every input token uncached, at the online price. (The original
  library sends each request online and puts no cache breakpoints; OpenAI's automatic caching could still
  discount some of its prefixes, so this is an upper bound of its cost.)
The ratio is datafast / original per 1,000 final rows (the rows are the same); target <= 0.35.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SENTENCES = ("The river delta floods every spring and feeds the farms along its banks. ",
             "Engineers built levees in 1920, but the largest ones failed during the storm of 1953. ",
             "Farmers now plant rice in the wettest fields and wheat where the soil drains well. ",
             "The regional council publishes water levels every morning at six o'clock. ")


def document(i: int, tokens: int) -> str:
    text = f"Report {i} on delta {i}. "
    n = 0
    while len(text) < tokens * 4:
        text += SENTENCES[(n + i) % len(SENTENCES)].replace("delta", f"delta {i}")
        n += 1
    return text


def specs(documents: list[str]) -> dict[str, dict[str, Any]]:
    return {
        "mcq": {"datafast": 1, "name": "bench-mcq", "type": "mcq", "source": {"file": "docs.jsonl"},
                "num_samples_per_prompt": 3, "max_document_length": 100_000,
                "models": {"questions": ["openai:gpt-4.1-mini"], "distractors": ["anthropic:claude-sonnet-4-5"]}},
        "preference": {"datafast": 1, "name": "bench-preference", "type": "preference",
                       "input_documents": documents, "num_samples_per_prompt": 3, "llm_as_judge": True,
                       "models": {"questions": ["openai:gpt-4.1-mini"], "chosen": ["anthropic:claude-sonnet-4-5"],
                                  "rejected": ["openai:gpt-4.1-mini"], "judge": ["openai:gpt-4.1"]}},
    }


def original_cost(out: Path, prices: Any) -> float:
    """Every stored result's tokens, all input uncached, at the online price."""
    total = 0.0
    for path in sorted((out / "results").glob("*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            r = json.loads(line)
            usage = r.get("usage") or {}
            total += prices.cost(r["model"], int(usage.get("input_tokens") or 0),
                                 int(usage.get("output_tokens") or 0))["online"] or 0.0
    return total


def run(kind: str, spec: dict[str, Any], documents: list[str], work: Path) -> dict[str, Any]:
    import yaml

    import datafast
    from datafast.compiler.pricing import PriceTable
    from datafast.dataset import collect_to
    from datafast.pipeline import advance
    from tests.emulators import EMULATORS

    emus = {v: EMULATORS[v](batch_delay=0.01).start() for v in ("openai", "anthropic")}
    try:
        (work / "docs.jsonl").write_text("".join(json.dumps({"text": d}) + "\n" for d in documents))
        path = work / f"{kind}.yaml"
        path.write_text(yaml.safe_dump(spec))
        out = work / kind
        datafast.compile(path, out)
        env = {"OPENAI_API_KEY": "bench", "OPENAI_BASE_URL": emus["openai"].base_url,
               "ANTHROPIC_API_KEY": "bench", "ANTHROPIC_BASE_URL": emus["anthropic"].base_url}
        report = advance(out, wait=True, poll_interval=0.01, env=env)
        if not report.finished:
            raise RuntimeError(f"{kind}: the run did not finish")
        collected = collect_to(out)
        prices = PriceTable.load()
        spent = collected.usage["spent"]
        original = original_cost(out, prices)
        rows = collected.rows
        inputs = sum(u["input_tokens"] for u in collected.usage["by_model"].values())
        cached = sum(u["cache_read_input_tokens"] for u in collected.usage["by_model"].values())
        return {"type": kind, "rows": rows, "requests": collected.requests,
                "datafast_per_1000_rows": round(spent / rows * 1000, 4),
                "original_per_1000_rows": round(original / rows * 1000, 4),
                "ratio": round(spent / original, 3), "cached_share_of_input": round(cached / inputs, 3)}
    finally:
        for emu in emus.values():
            emu.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--documents", type=int, default=20)
    parser.add_argument("--doc-tokens", type=int, default=2000)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    documents = [document(i, args.doc_tokens) for i in range(args.documents)]
    results = []
    for kind, spec in specs(documents).items():
        work = Path(tempfile.mkdtemp(prefix=f"bench-cost-{kind}-"))
        try:
            results.append(run(kind, spec, documents, work))
        finally:
            shutil.rmtree(work, ignore_errors=True)
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        print(f"{'type':<11} {'rows':>6} {'requests':>9} {'datafast/1k rows':>17} {'original/1k rows':>17} "
              f"{'ratio':>6} {'cached input':>13}")
        for r in results:
            print(f"{r['type']:<11} {r['rows']:>6} {r['requests']:>9} {r['datafast_per_1000_rows']:>13.4f} USD "
                  f"{r['original_per_1000_rows']:>13.4f} USD {r['ratio']:>6.3f} {r['cached_share_of_input']:>12.1%}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
