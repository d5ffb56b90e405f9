"""Run emulators by hand: ``python -m tests.emulators openai|anthropic|gemini|ollama|hub|all [--port N]``.

Prints one line per emulator (``<vendor> <url> base_url=<SDK base URL> env=<VAR>=<value>``), serves until
``--max-seconds`` have passed or the process is signalled, then stops.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from typing import Any

from . import EMULATORS

ENV = {"openai": "OPENAI_BASE_URL", "anthropic": "ANTHROPIC_BASE_URL", "gemini": "GOOGLE_GEMINI_BASE_URL",
       "ollama": "OLLAMA_HOST", "hub": "HF_ENDPOINT"}


DESCRIPTION = ("Serve loopback emulators of the vendors' APIs (OpenAI, Anthropic, Gemini, Ollama) and of the "
               "Hugging Face Hub, to try every command without a key. Prints one line per emulator (<vendor> <url> "
               "base_url=<SDK base URL> env=<VAR>=<value>), serves until --max-seconds have passed or the process "
               "is signalled, then stops.")


def main(argv: list[str] | None = None, prog: str = "python -m tests.emulators") -> int:
    parser = argparse.ArgumentParser(prog=prog, description=DESCRIPTION)
    parser.add_argument("vendor", choices=[*EMULATORS, "all"])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 = ephemeral; with 'all', ports N..N+4 (openai, anthropic, gemini, ollama, hub)")
    parser.add_argument("--batch-delay", type=float, default=1.0, help="seconds per batch state transition")
    parser.add_argument("--max-seconds", type=float, default=3600.0, help="exit after this long")
    args = parser.parse_args(argv)

    vendors = list(EMULATORS) if args.vendor == "all" else [args.vendor]
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    running: list[Any] = []
    try:
        for offset, vendor in enumerate(vendors):
            port = args.port + offset if args.port else 0
            emu = EMULATORS[vendor](host=args.host, port=port, batch_delay=args.batch_delay).start()
            running.append(emu)
            print(f"{vendor} {emu.url} base_url={emu.base_url} env={ENV[vendor]}={emu.base_url}", flush=True)
        stop.wait(timeout=max(0.0, args.max_seconds))
    finally:
        for emu in running:
            emu.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
