"""Benchmark: compile a classification spec of N requests (10 classes x 5 languages x N/50 combinations).

Usage: python bench/compile.py [--requests 1000000] [--vendor openai] [--plan-only]
Prints wall time, requests/s, peak RSS of the process and of the job-file worker process (ru_maxrss), and
the size written, as one JSON line.
"""

from __future__ import annotations

import argparse
import json
import math
import resource
import shutil
import tempfile
import time
from pathlib import Path

import yaml


def bench_spec(requests: int, vendor: str) -> dict:
    combos = requests // 50
    a = max(1, int(math.sqrt(combos)))
    while combos % a:
        a -= 1
    b = combos // a
    return {
        "datafast": 1,
        "name": "bench",
        "type": "classification",
        "classes": [{"name": f"class_{i}", "description": f"Texts of kind {i}, with {{braces}} kept."}
                    for i in range(10)],
        "languages": {"en": "English", "fr": "French", "de": "German", "es": "Spanish", "it": "Italian"},
        "prompts": ["Write {num_samples} texts in {language_name} about {{a}} and {{b}} for class "
                    "'{label_name}': {label_description}"],
        "expansion": {"placeholders": {"a": [f"a{i}" for i in range(a)], "b": [f"b{i}" for i in range(b)]},
                      "max_samples": requests},
        "models": [f"{vendor}:bench-model"],
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=1_000_000)
    parser.add_argument("--vendor", default="openai", help="runtime of the single model (ollama = no job files)")
    parser.add_argument("--plan-only", action="store_true")
    args = parser.parse_args()

    import datafast

    work = Path(tempfile.mkdtemp(prefix="datafast-bench-"))
    try:
        spec_path = work / "bench.yaml"
        spec_path.write_text(yaml.safe_dump(bench_spec(args.requests, args.vendor)))
        start = time.perf_counter()
        if args.plan_only:
            n = datafast.plan(spec_path)["counts"]["requests"]
        else:
            n = datafast.compile(spec_path, work / "out").requests
        wall = time.perf_counter() - start
        rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        child_rss_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        size = sum(f.stat().st_size for f in (work / "out").rglob("*") if f.is_file()) if not args.plan_only else 0
        print(json.dumps({"requests": n, "vendor": args.vendor, "plan_only": args.plan_only,
                          "wall_s": round(wall, 2), "requests_per_s": round(n / wall),
                          "peak_rss_mb": round(rss_mb, 1),
                          "job_worker_peak_rss_mb": round(child_rss_mb, 1), "output_mb": round(size / 2**20, 1)}))
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
