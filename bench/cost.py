"""Benchmark: what 1,000 final rows cost, datafast (batch, cache-aware layout) against the original library's
way (one online call per request, no prompt-cache layout), on the mcq and preference examples.

Usage (from the repo root): python bench/cost.py [--documents 20] [--doc-tokens 2000] [--original-prompt]
[--prompt-cache-ttl auto|5m|1h] [--json]

Each type runs end to end against in-process emulators on 127.0.0.1 (tests/emulators), which report
tokens and prompt-cache reads/writes the way each vendor does (a repeated prefix over the model's minimum,
Anthropic only up to the `cache_control` breakpoints sent). `--documents` synthetic documents of about
`--doc-tokens` tokens each (4 characters a token) feed:
- mcq: questions on openai:gpt-4.1-mini, distractors on anthropic:claude-sonnet-4-5;
- preference: questions on openai:gpt-4.1-mini, chosen on anthropic:claude-sonnet-4-5, rejected on
  openai:gpt-4.1-mini, judge on openai:gpt-4.1.

Both sides are priced from the same dated table (compiler/data/prices.json):
- datafast: what collect reports as spent (every result, batch prices, cached input at the cache prices);
- original way: the same dataset made with the original library's request structure, one online call per
  request, every input token uncached, at the online price. For preference that structure is datafast's own
  (one request per question, answer and judgement), so the same results are priced both ways. For mcq the
  original sends one distractor request per question where datafast sends one per document: a second run
  with a one-question distractor prompt (the same instructions, with the document) gives the original's
  requests; `--original-prompt` also runs the original's prompt shape, which leaves the document out of the
  distractor request (smaller requests, distractors written without the text). (OpenAI's automatic caching
  could still discount some of the original's prefixes, so its cost here is an upper bound.)
The ratio is datafast / original per 1,000 final rows; target <= 0.35.
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


# The original library's request structure for mcq distractors: one request per question. The same
# instructions as datafast's built-in prompt, with the document; and the original's shape, without it.
PER_QUESTION = ("Document:\n{document}\n\nThe multiple-choice question below, in {language_name}, is about the "
                "document above and comes with its correct answer. Write three incorrect but plausible answers in "
                "{language_name}: clearly wrong for someone who read the document, similar in length and style to "
                "the correct answer, and different from each other.\n\nQuestion: {question}\n"
                "Correct answer: {correct_answer}")
WITHOUT_DOCUMENT = ("Write three incorrect but plausible answers in {language_name} to the multiple-choice question "
                    "below, similar in length and style to its correct answer and different from each other.\n\n"
                    "Question: {question}\nCorrect answer: {correct_answer}")


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


def generate(name: str, spec: dict[str, Any], documents: list[str], work: Path) -> tuple[Path, Any]:
    """Compile, run to the end against fresh emulators and collect; (output dir, collect's result)."""
    import yaml

    import datafast
    from datafast.dataset import collect_to
    from datafast.pipeline import advance
    from tests.emulators import EMULATORS

    emus = {v: EMULATORS[v](batch_delay=0.01).start() for v in ("openai", "anthropic")}
    try:
        (work / "docs.jsonl").write_text("".join(json.dumps({"text": d}) + "\n" for d in documents))
        path = work / f"{name}.yaml"
        path.write_text(yaml.safe_dump(spec))
        out = work / name
        datafast.compile(path, out)
        env = {"OPENAI_API_KEY": "bench", "OPENAI_BASE_URL": emus["openai"].base_url,
               "ANTHROPIC_API_KEY": "bench", "ANTHROPIC_BASE_URL": emus["anthropic"].base_url}
        report = advance(out, wait=True, poll_interval=0.01, env=env)
        if not report.finished:
            raise RuntimeError(f"{name}: the run did not finish")
        return out, collect_to(out)
    finally:
        for emu in emus.values():
            emu.stop()


def per_1000(cost: float, rows: int) -> float:
    return round(cost / rows * 1000, 4) if rows else float("nan")


def run(kind: str, spec: dict[str, Any], documents: list[str], work: Path, original_prompt: bool) -> list[dict[str, Any]]:
    from datafast.compiler.pricing import PriceTable

    prices = PriceTable.load()
    out, collected = generate(kind, spec, documents, work)
    inputs = sum(u["input_tokens"] for u in collected.usage["by_model"].values())
    cached = sum(u["cache_read_input_tokens"] for u in collected.usage["by_model"].values())
    mine = per_1000(collected.usage["spent"], collected.rows)
    originals = [("same prompts", out, collected)]
    if kind == "mcq":
        originals = [("same prompts", *generate(f"{kind}-original", {**spec, "distractor_prompt": PER_QUESTION},
                                                documents, work))]
        if original_prompt:
            originals.append(("original prompt", *generate(f"{kind}-original-prompt",
                                                           {**spec, "distractor_prompt": WITHOUT_DOCUMENT},
                                                           documents, work)))
    results = []
    for label, original_out, original in originals:
        theirs = per_1000(original_cost(original_out, prices), original.rows)
        results.append({"type": kind, "original": label, "rows": collected.rows, "requests": collected.requests,
                        "original_rows": original.rows, "original_requests": original.requests,
                        "datafast_per_1000_rows": mine, "original_per_1000_rows": theirs,
                        "ratio": round(mine / theirs, 3), "cached_share_of_input": round(cached / inputs, 3)})
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--documents", type=int, default=20)
    parser.add_argument("--doc-tokens", type=int, default=2000)
    parser.add_argument("--original-prompt", action="store_true",
                        help="mcq: also compare with the original's distractor prompt shape (no document)")
    parser.add_argument("--prompt-cache-ttl", choices=("auto", "5m", "1h"), default="auto",
                        help="the specs' prompt_cache_ttl (Anthropic cache lifetime)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    documents = [document(i, args.doc_tokens) for i in range(args.documents)]
    results = []
    for kind, spec in specs(documents).items():
        if args.prompt_cache_ttl != "auto":
            spec = {**spec, "prompt_cache_ttl": args.prompt_cache_ttl}
        work = Path(tempfile.mkdtemp(prefix=f"bench-cost-{kind}-"))
        try:
            results += run(kind, spec, documents, work, args.original_prompt)
        finally:
            shutil.rmtree(work, ignore_errors=True)
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        print(f"{'type':<11} {'original way':<16} {'rows':>5} {'requests':>9} {'datafast/1k rows':>17} "
              f"{'rows':>5} {'requests':>9} {'original/1k rows':>17} {'ratio':>6} {'cached input':>13}")
        for r in results:
            print(f"{r['type']:<11} {r['original']:<16} {r['rows']:>5} {r['requests']:>9} "
                  f"{r['datafast_per_1000_rows']:>13.4f} USD {r['original_rows']:>5} {r['original_requests']:>9} "
                  f"{r['original_per_1000_rows']:>13.4f} USD {r['ratio']:>6.3f} {r['cached_share_of_input']:>12.1%}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
