"""The output dir's runtime state: `state.json` (jobs, atomically replaced) and `results/` (append-only).

Both survive a kill at any instant: state.json is written to a temporary file and renamed over the old
one; a batch's results land as one file renamed into place once complete; online results are appended one
line at a time and flushed, and a torn last line is ignored on reading.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator
from dataclasses import asdict, fields
from pathlib import Path
from typing import Any, TextIO

from .base import Job

STATE_VERSION = 1


def atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


class State:
    """state.json: every job with its vendor id, the file carrying its request ids, and its status."""

    def __init__(self, out_dir: Path):
        self.path = out_dir / "state.json"
        self.jobs: dict[str, Job] = {}
        self.manifest_hash: str | None = None
        if self.path.exists():
            data = json.loads(self.path.read_text("utf-8"))
            self.manifest_hash = data.get("manifest_hash")
            names = {f.name for f in fields(Job)}
            for raw in data.get("jobs", []):
                job = Job(**{k: v for k, v in raw.items() if k in names})
                self.jobs[job.name] = job

    def save(self) -> None:
        data = {"version": STATE_VERSION, "manifest_hash": self.manifest_hash,
                "jobs": [asdict(j) for j in self.jobs.values()]}
        atomic_write(self.path, (json.dumps(data, indent=1, ensure_ascii=False) + "\n").encode("utf-8"))

    def add(self, job: Job) -> None:
        self.jobs[job.name] = job
        self.save()

    def update(self, job: Job, **changes: Any) -> None:
        for key, value in changes.items():
            setattr(job, key, value)
        self.save()

    def live(self) -> list[Job]:
        """Jobs whose results are not stored yet."""
        return [j for j in self.jobs.values() if j.status in ("prepared", "creating", "submitted", "ended")]


class ResultStore:
    """`results/*.jsonl`: normalized results; per request id an ok result is final, else the latest counts."""

    def __init__(self, out_dir: Path):
        self.dir = out_dir / "results"
        self.raw_dir = out_dir / "raw"

    def write_batch(self, name: str, results: Iterable[dict[str, Any]]) -> int:
        """Store the results of one fetched job at once (temporary file renamed into place)."""
        self.dir.mkdir(parents=True, exist_ok=True)
        lines = [json.dumps(r, ensure_ascii=False, separators=(",", ":")) + "\n" for r in results]
        atomic_write(self.dir / f"{name}.jsonl", "".join(lines).encode("utf-8"))
        return len(lines)

    def appender(self, name: str) -> TextIO:
        """An append-mode file for results arriving one by one; write whole lines and flush each."""
        self.dir.mkdir(parents=True, exist_ok=True)
        return open(self.dir / f"{name}.jsonl", "a", encoding="utf-8")

    def __iter__(self) -> Iterator[dict[str, Any]]:
        if not self.dir.exists():
            return
        for path in sorted(self.dir.glob("*.jsonl")):
            with open(path, encoding="utf-8") as fh:
                for line in fh:
                    try:
                        yield json.loads(line)
                    except json.JSONDecodeError:
                        continue  # a line torn by a kill mid-append: that request is simply pending

    def final(self) -> dict[str, dict[str, Any]]:
        """Per request id, its final result: the ok one if any, else the latest error."""
        out: dict[str, dict[str, Any]] = {}
        for r in self:
            previous = out.get(r["id"])
            if previous is None or previous["status"] != "ok":
                out[r["id"]] = r
        return out
