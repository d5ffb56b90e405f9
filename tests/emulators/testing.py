"""Small helpers for tests that drive the emulators."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")


def poll(fetch: Callable[[], T], done: Callable[[T], bool], *, timeout: float = 10.0, interval: float = 0.01) -> T:
    """Call ``fetch`` until ``done(result)``; fail after ``timeout`` seconds (bounded loop)."""
    deadline = time.monotonic() + timeout
    while True:
        result = fetch()
        if done(result):
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not reached within {timeout}s; last value: {result!r}")
        time.sleep(interval)


def read_jsonl(data: bytes | str) -> list[Any]:
    """Parse JSONL strictly: every line must be a JSON value, no blank lines, newline-terminated."""
    text = data.decode() if isinstance(data, bytes) else data
    assert text.endswith("\n"), "JSONL must end with a newline"
    lines = text[:-1].split("\n")
    assert all(line.strip() for line in lines), "JSONL must not contain blank lines"
    return [json.loads(line) for line in lines]
