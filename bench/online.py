"""Benchmark: an online runtime against its emulator with a fixed latency per call.

Usage (from the repo root): python bench/online.py [--vendor ollama|openai|anthropic|gemini] [--requests 1000]
[--latency 0.1] [--concurrency 32]

`--vendor` openai, anthropic or gemini measures the online variant of that batch vendor (`RUNTIMES_ONLINE`:
each request rendered as its batch line, sent through the vendor's SDK, normalized by the batch adapter)
against that vendor's emulator (chat completions, messages, generateContent); those emulators serve every call
at once, so the ideal throughput is also concurrency / latency requests/s.

The emulator runs in its own process, as Ollama would, so that its HTTP
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
MODELS = {"ollama": "ollama:gemma3:4b", "openai": "openai:gpt-4.1-mini", "anthropic": "anthropic:claude-haiku-4-5",
          "gemini": "gemini:gemini-2.5-flash"}
PATHS = {"ollama": "/api/chat", "openai": "/v1/chat/completions", "anthropic": "/v1/messages$",
         "gemini": ":generateContent"}
ENV_BASE_URL = {"openai": "OPENAI_BASE_URL", "anthropic": "ANTHROPIC_BASE_URL", "gemini": "GOOGLE_GEMINI_BASE_URL"}
KEYS = {"openai": "OPENAI_API_KEY", "anthropic": "ANTHROPIC_API_KEY", "gemini": "GEMINI_API_KEY"}
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


def requests(n: int, model: str) -> Iterator[dict[str, Any]]:
    for i in range(n):
        topic, tone = TOPICS[i % len(TOPICS)], TONES[(i // len(TOPICS)) % len(TONES)]
        yield {"id": f"bench-{i:07d}", "stage": "generate", "model": model, "schema": "generate-bench",
               "messages": [{"role": "system", "content": SYSTEM},
                            {"role": "user", "content": f"Write 2 {tone} reviews in English about {topic}. "
                                                        f"Variation #{i}: vary length and vocabulary."}],
               "params": {"max_tokens": 512, "temperature": 0.7, "top_p": 0.9, "seed": i},
               "meta": {"topic": topic, "tone": tone}}


# the emulator, in its own process; the OpenAI one without its OpenAPI validation of each body (~0.2 s of CPU a
# call, which would measure the emulator rather than the runtime)
EMULATOR = """
import signal, sys, threading
from tests.emulators import EMULATORS
vendor = sys.argv[1]
emu = EMULATORS[vendor](**({"validate_bodies": False} if vendor == "openai" else {})).start()
print(vendor, emu.url, "base_url=" + emu.base_url, flush=True)
stop = threading.Event()
signal.signal(signal.SIGTERM, lambda *_: stop.set())
stop.wait(900)
emu.stop()
"""


def start_emulator(vendor: str, parallel: int) -> tuple[subprocess.Popen[str], str, str]:
    """The emulator process, its URL and its SDK base URL."""
    proc = subprocess.Popen([sys.executable, "-c", EMULATOR, vendor], cwd=REPO, stdout=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": str(REPO), "OLLAMA_NUM_PARALLEL": str(parallel)})
    line = proc.stdout.readline() if proc.stdout else ""  # "<vendor> http://127.0.0.1:P base_url=..."
    if not line.startswith(f"{vendor} "):
        proc.kill()
        raise SystemExit(f"the emulator did not start: {line!r}")
    fields = line.split()
    return proc, fields[1], fields[2].removeprefix("base_url=")


def post(url: str, body: Any) -> None:
    req = urllib.request.Request(url, json.dumps(body).encode(), {"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as resp:
        resp.read()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--vendor", choices=list(MODELS), default="ollama")
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--latency", type=float, default=0.1, help="seconds the emulator spends on each chat call")
    parser.add_argument("--concurrency", type=int, default=32)
    args = parser.parse_args()

    sys.path.insert(0, str(REPO))
    from datafast.runtimes import OnlineRuntime, online_runtime_class
    from datafast.runtimes.ollama import OllamaRuntime

    vendor, model = args.vendor, MODELS[args.vendor]
    proc, url, base_url = start_emulator(vendor, args.concurrency)  # as many slots as workers: the runtime is measured
    try:
        post(url + "/_emulator/faults", {"kind": "latency", "seconds": args.latency, "path": PATHS[vendor]})
        runtime: OnlineRuntime
        if vendor == "ollama":
            runtime = OllamaRuntime({"OLLAMA_HOST": url}, schemas={"generate-bench": SCHEMA}, timeout=60.0)
            runtime.check_models([model])
        else:
            env = {KEYS[vendor]: "bench", ENV_BASE_URL[vendor]: base_url}
            runtime = online_runtime_class(vendor)(env, schemas={"generate-bench": SCHEMA})  # type: ignore[call-arg]
        statuses: Counter[str] = Counter()
        tokens = Counter[str]()

        def on_result(r: dict[str, Any]) -> None:
            statuses[r["status"]] += 1
            tokens.update(r["usage"])

        start = time.perf_counter()
        runtime.run(requests(args.requests, model), args.concurrency, on_result)
        wall = time.perf_counter() - start
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    ideal = args.concurrency / args.latency
    throughput = args.requests / wall
    print(json.dumps({"vendor": vendor, "requests": args.requests, "concurrency": args.concurrency, "latency_s": args.latency,
                      "wall_s": round(wall, 3), "throughput_rps": round(throughput, 1), "ideal_rps": round(ideal, 1),
                      "ratio_to_ideal": round(throughput / ideal, 3), "ok": statuses["ok"],
                      "errors": statuses["error"], "output_tokens": tokens["output_tokens"]}))


if __name__ == "__main__":
    main()
