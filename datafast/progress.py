"""Live progress on stderr for long work: tqdm bars for online and local requests, one line per batch
vendor while waiting, and messages that do not tear the bars.

On a terminal, bars and vendor lines update in place. Elsewhere (CI logs, a file) the same facts come as
plain, append-only lines: a request bar every `PLAIN_INTERVAL` seconds and when it ends, a vendor line when
its counts change or every `PLAIN_QUIET_MAX` seconds. `Display(enabled=False)` (`-q`) prints nothing.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, TextIO

from tqdm import tqdm

PLAIN_INTERVAL = 30.0  # seconds between the plain lines of one request bar
PLAIN_QUIET_MAX = 300.0  # a vendor line is repeated at least this often while nothing changes


class _Lines:
    """A stream for tqdm that turns its in-place frames (`\\r` + meter) into whole lines."""

    def __init__(self, stream: TextIO):
        self.stream = stream

    def write(self, text: str) -> None:
        line = text.strip("\r\n").rstrip()
        if line:
            self.stream.write(line + "\n")

    def flush(self) -> None:
        self.stream.flush()


class RequestBar:
    """Requests answered so far, with failures, rate and ETA (a tqdm bar)."""

    def __init__(self, bar: Any):
        self._bar = bar
        self.failed = 0

    def advance(self, ok: bool) -> None:
        if not ok:
            self.failed += 1
            self._bar.set_postfix_str(f"{self.failed:,} failed", refresh=False)
        self._bar.update(1)


class Display:
    """Where progress goes. `tty`: default whether `stream` is a terminal."""

    def __init__(self, enabled: bool = True, stream: TextIO | None = None, tty: bool | None = None):
        self.enabled = enabled
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty() if tty is None else tty
        self._bars: dict[str, Any] = {}  # vendor -> its in-place status bar (terminal)
        self._plain: dict[str, tuple[tuple[int, ...], float]] = {}  # vendor -> (last counts, when printed)

    def message(self, text: str) -> None:
        """A line of its own, above any bar in progress."""
        if self.enabled:
            tqdm.write(text, file=self.stream)

    @contextmanager
    def requests(self, desc: str, total: int) -> Iterator[RequestBar]:
        """A bar for `total` requests sent one by one (online and local runtimes)."""
        bar = tqdm(total=total, desc=desc, unit="req", disable=not self.enabled, leave=True, dynamic_ncols=True,
                   file=self.stream if self.tty else _Lines(self.stream),
                   mininterval=0.1 if self.tty else PLAIN_INTERVAL, smoothing=0.1)
        try:
            yield RequestBar(bar)
        finally:
            bar.close()

    def batch(self, vendor: str, *, done: int, failed: int, total: int, jobs: int, elapsed: float,
              next_poll: float) -> None:
        """The state of one vendor's live batches while waiting: `done`/`failed` of `total` requests in `jobs`
        jobs, `elapsed` seconds since the oldest was created, the next poll in `next_poll` seconds."""
        if not self.enabled:
            return
        tail = f"{failed:,} failed, {jobs} job{'s' if jobs != 1 else ''}, elapsed {_clock(elapsed)}, " \
               f"next poll in {next_poll:.0f}s"
        if self.tty:
            bar = self._bars.get(vendor)
            if bar is None:
                bar = self._bars[vendor] = tqdm(total=total, desc=f"{vendor} batch", unit="req", file=self.stream,
                                                leave=False, dynamic_ncols=True, position=len(self._bars),
                                                bar_format="{desc}: {n_fmt}/{total_fmt} done |{bar}| {postfix}")
            bar.total = total
            bar.n = done
            bar.set_postfix_str(tail, refresh=False)
            bar.refresh()
            return
        counts = (done, failed, total, jobs)
        last = self._plain.get(vendor)
        now = time.monotonic()
        if last is None or last[0] != counts or now - last[1] >= PLAIN_QUIET_MAX:
            self._plain[vendor] = (counts, now)
            self.stream.write(f"{vendor} batch: {done:,}/{total:,} done, {tail}\n")
            self.stream.flush()

    def batch_ended(self) -> None:
        """The wait is over: remove the in-place vendor lines."""
        for bar in self._bars.values():
            bar.close()
        self._bars.clear()
        self._plain.clear()


def _clock(seconds: float) -> str:
    seconds = max(0, int(seconds))
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"


QUIET = Display(enabled=False)
