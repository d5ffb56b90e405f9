"""The output dir's runtime state: `state.json` (jobs, atomically replaced) and `results/` (append-only).

Both survive a kill at any instant: state.json is written to a temporary file and renamed over the old
one; a batch's results land as one file renamed into place once complete; online results are appended one
line at a time and flushed, and a torn last line is ignored on reading.
"""

from __future__ import annotations

import json
import os
from array import array
from collections.abc import Iterable
from dataclasses import asdict, fields
from pathlib import Path
from typing import Any, TextIO

import numpy as np
import orjson

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

    def index(self) -> ResultIndex:
        """Where each request id's final result lies, in compact arrays (about 30 bytes a request)."""
        return ResultIndex.build(self)


def id_key(request_id: str) -> int:
    """64-bit lookup key of a request id (ids are hex content hashes; anything else is hashed)."""
    try:
        return int(request_id[:16], 16)
    except ValueError:
        import hashlib

        return int.from_bytes(hashlib.sha256(request_id.encode()).digest()[:8], "big")


# the order of PriceTable.cost's token arguments; cache_write_1h_input_tokens are the part of the cache writes
# made for 1 hour (Anthropic's `cache_creation.ephemeral_1h_input_tokens`, 2x the input price)
TOKEN_FIELDS = ("input_tokens", "output_tokens", "cache_read_input_tokens", "cache_write_input_tokens",
                "cache_write_1h_input_tokens")


def usage_counts(result: dict[str, Any]) -> list[int]:
    """A result's usage as TOKEN_FIELDS counts, in the batch half or the online half (online calls cost the
    full price): `[batch in, out, cache read, cache write, 1h cache write, online in, out, ...]`."""
    usage = result.get("usage")
    counts = [_count(usage.get(name)) for name in TOKEN_FIELDS] if isinstance(usage, dict) else [0] * len(TOKEN_FIELDS)
    empty = [0] * len(TOKEN_FIELDS)
    return empty + counts if result.get("mode") == "online" else counts + empty


def _count(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else 0


class ResultIndex:
    """Per request id (by its 64-bit key): the file and offset of its final result, its status, its attempts.

    Final = the ok result if there is one, else the latest error. Built by one pass over `results/`
    holding no result in memory, so collecting or planning a million requests stays small.
    """

    def __init__(self, files: list[Path], keys: np.ndarray, file_no: np.ndarray, offsets: np.ndarray,
                 ok: np.ndarray, retryable: np.ndarray, errors: np.ndarray,
                 spent: dict[str, list[int]] | None = None):
        self.files, self.keys, self.file_no, self.offsets = files, keys, file_no, offsets
        self.ok, self.retryable, self.errors = ok, retryable, errors
        # per model, `usage_counts` summed over EVERY result line: failed and superseded attempts were paid too
        self.spent = spent or {}
        self._handles: dict[int, Any] = {}

    @classmethod
    def build(cls, store: ResultStore) -> ResultIndex:
        files = sorted(store.dir.glob("*.jsonl")) if store.dir.exists() else []
        keys, file_no, offsets, flags = array("Q"), array("H"), array("Q"), array("B")
        spent: dict[str, list[int]] = {}
        for n, path in enumerate(files):
            offset = 0
            with open(path, "rb") as fh:
                for line in fh:
                    try:
                        r = orjson.loads(line)
                    except orjson.JSONDecodeError:
                        r = None  # torn by a kill mid-append: that request is pending
                    if not (isinstance(r, dict) and isinstance(r.get("id"), str)
                            and r.get("status") in ("ok", "error")):
                        offset += len(line)  # not a result line (torn, or written by something else): skipped
                        continue
                    keys.append(id_key(r["id"]))
                    file_no.append(n)
                    offsets.append(offset)
                    ok = r["status"] == "ok"
                    flags.append(1 if ok else (2 if (r.get("error") or {}).get("retryable") else 0))
                    if r.get("usage"):
                        used = usage_counts(r)
                        total = spent.setdefault(str(r.get("model")), [0] * len(used))
                        for i, count in enumerate(used):
                            total[i] += count
                    offset += len(line)
        k = np.frombuffer(keys, dtype=np.uint64) if len(keys) else np.empty(0, dtype=np.uint64)
        f = np.frombuffer(flags, dtype=np.uint8) if len(flags) else np.empty(0, dtype=np.uint8)
        is_ok = f == 1
        order = np.lexsort((is_ok, k))  # stable: per key, errors then ok results, each in file order
        k_sorted = k[order]
        last = np.ones(len(order), dtype=bool)
        last[:-1] = k_sorted[:-1] != k_sorted[1:]
        del k_sorted
        chosen = order[last]  # per key: the last ok result, else the last error
        del order, last
        unique_keys = k[chosen]
        errors: np.ndarray = np.zeros(len(unique_keys), dtype=np.uint32)
        if len(k):
            err_keys = np.sort(k[~is_ok])
            errors = (np.searchsorted(err_keys, unique_keys, side="right")
                      - np.searchsorted(err_keys, unique_keys, side="left")).astype(np.uint32)
        fn = np.frombuffer(file_no, dtype=np.uint16) if len(file_no) else np.empty(0, dtype=np.uint16)
        off = np.frombuffer(offsets, dtype=np.uint64) if len(offsets) else np.empty(0, dtype=np.uint64)
        return cls(files, unique_keys, fn[chosen], off[chosen], is_ok[chosen], f[chosen] == 2, errors, spent)

    def positions(self, request_ids: list[str]) -> np.ndarray:
        """Index positions of the ids (-1 where an id has no result)."""
        if not len(self.keys):
            return np.full(len(request_ids), -1)
        wanted = np.array([id_key(i) for i in request_ids], dtype=np.uint64)
        pos = np.searchsorted(self.keys, wanted)
        pos[pos == len(self.keys)] = 0
        return np.where(self.keys[pos] == wanted, pos, -1)

    def read(self, position: int) -> dict[str, Any]:
        """The final result at an index position."""
        n = int(self.file_no[position])
        fh = self._handles.get(n)
        if fh is None:
            fh = self._handles[n] = open(self.files[n], "rb")  # noqa: SIM115 - kept open across reads; close()
        fh.seek(int(self.offsets[position]))
        return orjson.loads(fh.readline())  # type: ignore[no-any-return]

    def close(self) -> None:
        for fh in self._handles.values():
            fh.close()
        self._handles.clear()

    def __enter__(self) -> ResultIndex:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
