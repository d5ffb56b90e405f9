"""Benchmark: the Ollama online runtime against the Ollama emulator with a fixed latency per chat call.

Usage (from the repo root): python bench/online.py [--requests 1000] [--latency 0.1] [--concurrency 32]

The emulator runs in its own process (`python -m tests.emulators ollama`), as Ollama would, so that its HTTP
server does not compete with the runtime for this process's GIL; it is stopped at the end. Every chat call
sleeps `--latency` seconds in the emulator, holding one of the model's slots as a generation does; the emulator,
like Ollama, serves OLLAMA_NUM_PARALLEL chats per model at once (default 1), so it is started with
OLLAMA_NUM_PARALLEL=concurrency and the ideal throughput is concurrency / latency requests/s.
Prints one JSON line: requests, concurrency, latency, wall seconds, throughput, ideal, ratio to ideal.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
MODEL = "ollama:gemma3:4b"
SCHEMA = {"type": "object", "additionalProperties": False, "required": ["items"],
          "properties": {"items": {"type": "array", "minItems": 1, "maxItems": 3, "items": {
              "type": "object", "additionalProperties": False, "required": ["text", "sentiment"],
              "properties": {"text": {"type": "string"}, "sentiment": {"type": "string", "enum": ["pos", "neg"]}}}}}}
SYSTEM = ("You generate high-quality synthetic data for training and evaluating language models. Answer with one "
          "JSON object that follows the required format exactly, and nothing else.\n"
          'Required format: {"items": [{"text": <text>, "sentiment": "pos" | "neg"}, ...]}')
TOPICS = ["a pair of running shoes", "a coffee grinder", "a hotel in Lisbon", "a budgeting app", "a sci-fi novel",
          "a noise-cancelling headset", "a cooking class", "an electric scooter"]
TONES = ["formal", "casual", "enthusiastic", "disappointed"]


def requests(n: int) -> Iterator[dict[str, Any]]:
    for i in range(n):
        topic, tone = TOPICS[i % len(TOPICS)], TONES[(i // len(TOPICS)) % len(TONES)]
        yield {"id": f"bench-{i:07d}", "stage": "generate", "model": MODEL, "schema": "generate-bench",
               "messages": [{"role": "system", "content": SYSTEM},
                            {"role": "user", "content": f"Write 2 {tone} reviews in English about {topic}. "
                                                        f"Variation #{i}: vary length and vocabulary."}],
               "params": {"max_tokens": 512, "temperature": 0.7, "top_p": 0.9, "seed": i},
               "meta": {"topic": topic, "tone": tone}}


def start_emulator(parallel: int) -> tuple[subprocess.Popen[str], str]:
    cmd = [sys.executable, "-m", "tests.emulators", "ollama", "--max-seconds", "900"]
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": str(REPO), "OLLAMA_NUM_PARALLEL": str(parallel)})
    line = proc.stdout.readline() if proc.stdout else ""  # "ollama http://127.0.0.1:P base_url=... env=..."
    if not line.startswith("ollama "):
        proc.kill()
        raise SystemExit(f"the emulator did not start: {line!r}")
    return proc, line.split()[1]


def post(url: str, body: Any) -> None:
    req = urllib.request.Request(url, json.dumps(body).encode(), {"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as resp:
        resp.read()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--latency", type=float, default=0.1, help="seconds the emulator spends on each chat call")
    parser.add_argument("--concurrency", type=int, default=32)
    args = parser.parse_args()

    sys.path.insert(0, str(REPO))
    from datafast.runtimes.ollama import OllamaRuntime

    proc, url = start_emulator(args.concurrency)  # as many slots as workers: the runtime is measured
    try:
        post(url + "/_emulator/faults", {"kind": "latency", "seconds": args.latency, "path": "/api/chat"})
        runtime = OllamaRuntime({"OLLAMA_HOST": url}, schemas={"generate-bench": SCHEMA}, timeout=60.0)
        runtime.check_models([MODEL])
        statuses: Counter[str] = Counter()
        tokens = Counter[str]()

        def on_result(r: dict[str, Any]) -> None:
            statuses[r["status"]] += 1
            tokens.update(r["usage"])

        start = time.perf_counter()
        runtime.run(requests(args.requests), args.concurrency, on_result)
        wall = time.perf_counter() - start
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    ideal = args.concurrency / args.latency
    throughput = args.requests / wall
    print(json.dumps({"requests": args.requests, "concurrency": args.concurrency, "latency_s": args.latency,
                      "wall_s": round(wall, 3), "throughput_rps": round(throughput, 1), "ideal_rps": round(ideal, 1),
                      "ratio_to_ideal": round(throughput / ideal, 3), "ok": statuses["ok"],
                      "errors": statuses["error"], "output_tokens": tokens["output_tokens"]}))


if __name__ == "__main__":
    main()
