"""The output dir: the one module that knows its layout (DESIGN.md §2, §3, §3b, §4).

```
<dir>/manifest.jsonl  manifest.json  jobs/<vendor>/...     the first stage (a function of the spec alone)
<dir>/stages/<stage>/manifest.jsonl  manifest.json  jobs/   each later stage, compiled from input rows
<dir>/state.json  results/*.jsonl  raw/  submit/            runtime state (datafast.runtimes.store)
<dir>/rows/<stage>.jsonl  dataset.jsonl  rejects.jsonl      what collect writes
```

Compiled files are written into a staging dir and moved into place, so a kill leaves either the old
files or the new ones, never a mix that could be submitted.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import orjson

from datafast.compiler.build import CompileResult, Prepared, write_stage
from datafast.compiler.hashing import content_hash
from datafast.compiler.pricing import PriceTable
from datafast.compiler.spec import CONFIG_BY_TYPE, DatasetConfigBase
from datafast.compiler.stages import Row
from datafast.runtimes.store import ResultStore, State

STAGES_DIR = "stages"
ROWS_DIR = "rows"
LOCK_FILE = ".datafast.lock"
LOCK_INFO = ".datafast.lock.json"

# one lock object per dir in this process: flock locks are per open file, so a second FileLock on the same
# path in the same process would wait for itself; one shared, re-entrant object does not
_LOCKS: dict[Path, Any] = {}


class BadInput(ValueError):
    """A wrong argument (exit 2), as opposed to a runtime failure (exit 1)."""


class NotCompiled(BadInput):
    """The directory holds no compiled manifest."""


@dataclass(frozen=True)
class JobFileRef:
    """A compiled vendor job file; `path` is relative to the output dir (posix)."""

    vendor: str
    stage: str
    model: str
    path: str
    requests: int


@dataclass(frozen=True)
class StageInfo:
    name: str
    role: str
    inputs: tuple[str, ...]
    schema: str


@dataclass(frozen=True)
class Manifest:
    """A typed view of one stage's manifest.json.

    `tag` names this compiled version of the stage in vendor-side job names (OpenAI metadata, Gemini display
    name), so a restart never adopts a batch made from another version: the spec hash for the first stage,
    the hash of (spec hash, input rows hash) for a later one.
    """

    stage: str
    name: str
    type: str
    spec_hash: str
    spec: Mapping[str, Any]
    stages: tuple[StageInfo, ...]
    schemas: Mapping[str, Any]
    requests: int
    counts: Mapping[str, Any]
    jobs: tuple[JobFileRef, ...]
    warnings: tuple[str, ...]
    input_hash: str | None
    data: Mapping[str, Any]  # the whole manifest.json, for what has no field here (estimates, ...)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], prefix: str = "") -> Manifest:
        """`prefix`: where the stage's dir lies in the output dir ("" for the first stage)."""
        return cls(
            stage=data["compiled_stages"][0],
            name=data["name"],
            type=data["type"],
            spec_hash=data["spec_hash"],
            spec=data["spec"],
            stages=tuple(StageInfo(s["name"], s["role"], tuple(s["inputs"]), s["schema"]) for s in data["stages"]),
            schemas=data["schemas"],
            requests=data["counts"]["requests"],
            counts=data["counts"],
            jobs=tuple(JobFileRef(j["vendor"], j["stage"], j["model"], prefix + j["path"], j["requests"])
                       for j in data["jobs"]),
            warnings=tuple(data.get("warnings", ())),
            input_hash=data.get("input_hash"),
            data=data,
        )

    @property
    def tag(self) -> str:
        if self.input_hash is None:
            return self.spec_hash[:8]
        return content_hash([self.spec_hash, self.input_hash], 8)

    def config(self) -> DatasetConfigBase:
        """The normalized spec as its config object."""
        return CONFIG_BY_TYPE[self.type].model_validate(self.spec)


def rows_hash(inputs: Mapping[str, Iterable[Row]]) -> str:
    """Hash of the input rows of a later stage (order-independent: rows are taken by row id)."""
    import hashlib

    digest = hashlib.sha256()
    for name in sorted(inputs):
        digest.update(orjson.dumps(name))
        for row in sorted(inputs[name], key=lambda r: r["row_id"]):
            digest.update(orjson.dumps(row, option=orjson.OPT_SORT_KEYS))
            digest.update(b"\n")
    return digest.hexdigest()[:32]


class OutputDir:
    """An output dir: its compiled stages, runtime state, results and collected files."""

    def __init__(self, path: str | Path):
        self.path = Path(path)

    @classmethod
    def open(cls, path: str | Path) -> OutputDir:
        """An output dir holding a compiled first stage; NotCompiled otherwise."""
        out = cls(path)
        if not (out.path / "manifest.json").is_file() or not (out.path / "manifest.jsonl").is_file():
            raise NotCompiled(f"{out.path}: no manifest.json/manifest.jsonl here; run `datafast compile SPEC -o "
                              f"{out.path}` first")
        return out

    # -- compiled stages -------------------------------------------------------------------------------
    @cached_property
    def manifest(self) -> Manifest:
        """The first stage's manifest (the spec, its hash and the stage graph)."""
        return self._load_manifest(self.path, "")

    @cached_property
    def spec(self) -> DatasetConfigBase:
        return self.manifest.config()

    @property
    def stage_names(self) -> list[str]:
        return [s.name for s in self.manifest.stages]

    @property
    def first_stage(self) -> str:
        return self.manifest.stages[0].name

    def stage_dir(self, stage: str) -> Path:
        return self.path if stage == self.first_stage else self.path / STAGES_DIR / stage

    def stage_manifest(self, stage: str) -> Manifest | None:
        """The compiled manifest of a stage, or None if it is not compiled (or from another spec)."""
        if stage == self.first_stage:
            return self.manifest
        directory = self.stage_dir(stage)
        if not (directory / "manifest.json").is_file() or not (directory / "manifest.jsonl").is_file():
            return None
        manifest = self._load_manifest(directory, f"{STAGES_DIR}/{stage}/")
        if manifest.spec_hash != self.manifest.spec_hash or manifest.stage != stage:
            return None
        return manifest

    @staticmethod
    def _load_manifest(directory: Path, prefix: str) -> Manifest:
        return Manifest.from_dict(json.loads((directory / "manifest.json").read_text("utf-8")), prefix)

    def manifest_lines(self, stage: str) -> Iterator[bytes]:
        with open(self.stage_dir(stage) / "manifest.jsonl", "rb") as fh:
            yield from fh

    def requests(self, stage: str) -> Iterator[dict[str, Any]]:
        for line in self.manifest_lines(stage):
            yield orjson.loads(line)

    def prepared(self) -> Prepared:
        """The spec as the compiler takes it, for compiling later stages (which read rows, not sources)."""
        from datafast.compiler.loader import LineMap

        return Prepared(self.spec, self.path.resolve(), LineMap(None), [], 0)

    def write_first_stage(self, prepared: Prepared, *, prices: PriceTable | None = None, strict: bool = False,
                          limits: Mapping[str, Mapping[str, int]] | None = None,
                          on_wait: Callable[[str], None] | None = None) -> CompileResult:
        """Compile the first stage into the dir, under its lock: staged, then moved into place; runtime state
        is kept. A failed compile into a new dir leaves no dir."""
        created = not self.path.exists()
        with self.lock(on_wait):
            try:
                return self._write_first_stage(prepared, prices, strict, limits)
            except BaseException:
                if created:  # nothing written: not even the dir (its lock file goes with it)
                    shutil.rmtree(self.path, ignore_errors=True)
                raise

    def _write_first_stage(self, prepared: Prepared, prices: PriceTable | None, strict: bool,
                           limits: Mapping[str, Mapping[str, int]] | None) -> CompileResult:
        staging = self.path / ".compile-staging"
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir()
        try:
            result = write_stage(prepared, prepared.stages[0].name, staging, prices=prices, strict=strict,
                                 limits=limits)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        old_jobs = self.path / "jobs"
        if old_jobs.exists():
            shutil.rmtree(old_jobs)
        if (staging / "jobs").exists():
            (staging / "jobs").rename(old_jobs)
        for name in ("manifest.jsonl", "manifest.json"):  # manifest.json last: it says the rest is complete
            (staging / name).replace(self.path / name)
        staging.rmdir()
        self.__dict__.pop("manifest", None)
        self.__dict__.pop("spec", None)
        result.out_dir = self.path
        return result

    def write_later_stage(self, stage: str, inputs: Mapping[str, list[Row]], input_hash: str, *,
                          prices: PriceTable | None = None,
                          limits: Mapping[str, Mapping[str, int]] | None = None) -> Manifest:
        """Compile a later stage from its input rows into stages/<stage>/, swapping the whole dir in."""
        root = self.path / STAGES_DIR
        root.mkdir(exist_ok=True)
        staging, old = root / f".staging-{stage}", root / f".old-{stage}"
        shutil.rmtree(staging, ignore_errors=True)
        shutil.rmtree(old, ignore_errors=True)
        staging.mkdir()
        try:
            write_stage(self.prepared(), stage, staging, inputs=inputs, input_hash=input_hash, prices=prices,
                        limits=limits)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        target = root / stage
        if target.exists():
            target.rename(old)  # a kill from here to the next rename leaves no stage dir: it is recompiled
        staging.rename(target)
        shutil.rmtree(old, ignore_errors=True)
        manifest = self.stage_manifest(stage)
        assert manifest is not None
        return manifest

    # -- one process at a time --------------------------------------------------------------------------------
    @contextlib.contextmanager
    def lock(self, on_wait: Callable[[str], None] | None = None) -> Iterator[None]:
        """Hold the dir's lock (`.datafast.lock`, an OS file lock released even when the process is killed).

        Whatever changes the dir (compile, submit, run, cancel, collect) holds it, so two processes on one
        dir never both create a batch or lose each other's state writes. A second process waits, after
        saying which process holds the dir (`on_wait`). Re-entrant within a process.
        """
        from filelock import FileLock, Timeout

        self.path.mkdir(parents=True, exist_ok=True)
        key = self.path.resolve()
        lock = _LOCKS.get(key)
        if lock is None:
            lock = _LOCKS[key] = FileLock(str(key / LOCK_FILE))
        try:
            lock.acquire(timeout=0)
        except Timeout:
            if on_wait is not None:
                on_wait(f"{self.path}: {self.holder() or 'another datafast process'} is working on this dir; "
                        "waiting for it to finish (Ctrl-C to stop waiting: nothing is lost)")
            lock.acquire()
        try:
            if lock.lock_counter == 1:
                info = {"pid": os.getpid(), "command": " ".join(sys.argv[:3]), "since": time.time()}
                (self.path / LOCK_INFO).write_text(json.dumps(info), encoding="utf-8")
                self.reload_state()  # the previous holder may have changed it
            yield
        finally:
            if lock.lock_counter == 1:
                with contextlib.suppress(OSError):
                    (self.path / LOCK_INFO).unlink()
            lock.release()

    def holder(self) -> str | None:
        """Who holds the dir's lock, as recorded by the holder ('process 123 (datafast submit ...)'), if known."""
        try:
            info = json.loads((self.path / LOCK_INFO).read_text("utf-8"))
        except (OSError, ValueError):
            return None
        return f"process {info.get('pid')} ({info.get('command', '?')})"

    def is_locked(self) -> bool:
        """Whether another process holds the dir's lock now (for read-only commands that must not wait)."""
        from filelock import FileLock, Timeout

        key = self.path.resolve()
        if key in _LOCKS and _LOCKS[key].is_locked:
            return False  # this process holds it
        probe = FileLock(str(key / LOCK_FILE))
        try:
            probe.acquire(timeout=0)
        except Timeout:
            return True
        probe.release()
        return False

    # -- runtime state and collected files ------------------------------------------------------------------
    @cached_property
    def state(self) -> State:
        return State(self.path)

    @cached_property
    def store(self) -> ResultStore:
        return ResultStore(self.path)

    def reload_state(self) -> State:
        self.__dict__.pop("state", None)
        return self.state

    def rows_path(self, stage: str) -> Path:
        return self.path / ROWS_DIR / f"{stage}.jsonl"

    @property
    def dataset_path(self) -> Path:
        return self.path / "dataset.jsonl"

    @property
    def rejects_path(self) -> Path:
        return self.path / "rejects.jsonl"


__all__ = ["BadInput", "JobFileRef", "Manifest", "NotCompiled", "OutputDir", "StageInfo", "rows_hash"]
