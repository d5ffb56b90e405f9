"""Emulator plumbing: the by-hand CLI, the HTTP control endpoints, and clean shutdown."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import openai
import pytest

from tests.emulators import EMULATORS, Emulator, OpenAIEmulator

pytest_plugins = ["tests.conftest_emulators"]

REPO = Path(__file__).resolve().parents[1]


def start_cli(*args: str) -> tuple[subprocess.Popen[str], list[str]]:
    proc = subprocess.Popen([sys.executable, "-m", "tests.emulators", *args], cwd=REPO, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.append(proc.stdout.readline() if proc.stdout else ""),
                              daemon=True)
    reader.start()
    reader.join(timeout=20)
    return proc, lines


def test_cli_prints_url_answers_and_stops_by_pid() -> None:
    proc, lines = start_cli("openai", "--port", "0", "--max-seconds", "5")
    try:
        assert lines and lines[0].startswith("openai http://127.0.0.1:"), lines
        base_url = lines[0].split("base_url=")[1].split()[0]
        client = openai.OpenAI(base_url=base_url, api_key="k", max_retries=0, timeout=5)
        assert client.batches.list().data == []
        assert httpx.get(lines[0].split()[1] + "/_emulator/health").json()["vendor"] == "openai"
    finally:
        os.kill(proc.pid, signal.SIGTERM)
        assert proc.wait(timeout=10) == 0


def test_cli_exits_by_itself_after_max_seconds() -> None:
    proc, lines = start_cli("all", "--max-seconds", "0.5")
    assert proc.wait(timeout=15) == 0
    out = lines + (proc.stdout.read().splitlines() if proc.stdout else [])
    assert [line.split()[0] for line in out] == list(EMULATORS)


def test_faults_and_stats_over_http(openai_emulator: OpenAIEmulator) -> None:
    control = openai_emulator.url + "/_emulator"
    set_faults = httpx.post(control + "/faults", json={"faults": [
        {"kind": "http", "path": "POST /v1/chat/completions", "status": 429, "retry_after": 0.01},
        {"kind": "truncated", "path": "POST /v1/chat/completions"}]})
    assert set_faults.status_code == 200 and len(set_faults.json()["faults"]) == 2
    client = openai.OpenAI(base_url=openai_emulator.base_url, api_key="k", max_retries=1, timeout=5)
    answer = client.chat.completions.create(model="gpt-4.1-mini", messages=[{"role": "user", "content": "hi"}])
    assert answer.choices[0].finish_reason == "length"
    stats = httpx.get(control + "/stats").json()
    assert stats["calls"]["POST /v1/chat/completions"] == 2 and len(stats["online_requests"]) == 1
    assert stats == openai_emulator.stats()
    assert [f["fired"] for f in stats["faults"]] == [1, 1]
    assert httpx.post(control + "/faults", json={"kind": "nonsense"}).status_code == 400
    assert httpx.post(control + "/advance", json={"seconds": 60}).json()["ok"]
    assert openai_emulator.clock_offset == 60
    assert httpx.post(control + "/reset").json() == {"ok": True}
    assert openai_emulator.stats()["calls"] == {} and openai_emulator.faults.to_json() == []
    assert httpx.delete(control + "/faults").json() == {"faults": []}


def test_unknown_route_uses_vendor_error_shape(emulator_factory: Callable[..., Emulator]) -> None:
    for vendor in EMULATORS:
        emu = emulator_factory(vendor)
        response = httpx.get(emu.url + "/v1/nothing-here", headers={"Authorization": "Bearer k",
                                                                     "x-goog-api-key": "k"})
        assert response.status_code == 404 and "error" in response.json()


@pytest.mark.parametrize("vendor", list(EMULATORS))
def test_stop_closes_port_and_idle_keepalive_connections(vendor: str) -> None:
    threads_before = threading.active_count()
    emu = EMULATORS[vendor]().start()
    with httpx.Client() as keepalive:  # leaves an idle persistent connection open on the server
        assert keepalive.get(emu.url + "/_emulator/health").status_code == 200
        start = time.monotonic()
        emu.stop()
        assert time.monotonic() - start < 2.0
    with pytest.raises(httpx.ConnectError):
        httpx.get(emu.url + "/_emulator/health", timeout=2)
    deadline = time.monotonic() + 5
    while threading.active_count() > threads_before and time.monotonic() < deadline:
        time.sleep(0.01)
    assert threading.active_count() <= threads_before
