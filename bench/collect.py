"""Benchmark: collect N results (default 1,000,000) of a compiled classification spec.

Builds a manifest of N requests and a results store with one ok result per request (answers of 5 items
that validate against the schema), then times `collect_to` (JSON parse, jsonschema validation, fan-out,
JSONL writing). Prints one JSON line: results, rows, wall seconds, results/s, peak RSS.
Usage: python bench/collect.py [--requests 1000000]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).parent))
from compile import bench_spec  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=1_000_000)
    args = parser.parse_args()

    import datafast
    from datafast.dataset import collect_to
    from datafast.runtimes.base import result

    work = Path(tempfile.mkdtemp(prefix="datafast-bench-collect-"))
    try:
        spec = work / "bench.yaml"
        spec.write_text(yaml.safe_dump(bench_spec(args.requests, "ollama")))  # no job files: less disk
        out = work / "out"
        datafast.compile(spec, out)
        (out / "results").mkdir()
        with open(out / "manifest.jsonl", encoding="utf-8") as manifest, \
                open(out / "results" / "bench.jsonl", "w", encoding="utf-8") as results:
            for i, line in enumerate(manifest):
                rid = json.loads(line)["id"]
                answer = {"items": [{"text": f"Generated text {k} of request {i}, long enough to look real."}
                                    for k in range(5)]}
                results.write(json.dumps(result(rid, "ollama", "ollama:bench-model", text=json.dumps(answer),
                                                input_tokens=120, output_tokens=300, finish_reason="stop")) + "\n")
        base_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        os.sync()  # flush the setup's writes first: the timing is of collect, not of the setup's writeback
        start = time.perf_counter()
        report = collect_to(out)
        wall = time.perf_counter() - start
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(json.dumps({"results": report.requests, "rows": report.rows, "wall_s": round(wall, 2),
                          "results_per_s": round(report.requests / wall), "peak_rss_mb": round(rss, 1),
                          "rss_before_collect_mb": round(base_rss, 1)}))
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
