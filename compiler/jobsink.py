"""Where compile sends each request for job-file rendering: in-process, or a second process for big compiles.

Rendering job files costs about as much as building the requests, so on large compiles a worker process
renders them from the manifest lines while the main process keeps expanding: a two-stage pipeline over the
machine's cores. Small compiles stay in-process (a process start costs more than it saves).
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Mapping
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, Protocol

import orjson

from .jobs import JobFile, JobFileError, JobFileWriter
from .vendors import RENDERERS

PIPELINE_THRESHOLD = 50_000  # requests; below it the worker's start-up is not worth it
_BATCH_BYTES = 1 << 20


class JobSink(Protocol):
    def add(self, request: dict[str, Any], line: bytes) -> None: ...

    def close(self) -> tuple[list[JobFile], list[str]]: ...

    def abort(self) -> None: ...


class InlineJobs:
    def __init__(self, out_dir: Path, schemas: Mapping[str, Any], limits: Mapping[str, Mapping[str, int]] | None,
                 strict: bool):
        self._writer = JobFileWriter(out_dir, schemas, limits_overrides=limits, strict=strict)

    def add(self, request: dict[str, Any], line: bytes) -> None:
        self._writer.add(request)

    def close(self) -> tuple[list[JobFile], list[str]]:
        return self._writer.close(), list(self._writer.warnings)

    def abort(self) -> None:
        self._writer.close()


def _worker(conn: Connection, out_dir: Path, schemas: Mapping[str, Any],
            limits: Mapping[str, Mapping[str, int]] | None, strict: bool) -> None:
    failure: str | None = None
    writer = None
    try:
        writer = JobFileWriter(out_dir, schemas, limits_overrides=limits, strict=strict)
    except Exception as exc:  # reported to the parent, which raises it
        failure = f"{type(exc).__name__}: {exc}"
    while True:
        data = conn.recv_bytes()
        if not data:
            break
        if failure is not None or writer is None:
            continue  # keep draining so the parent never blocks on a full pipe
        try:
            for line in data.splitlines():
                writer.add(orjson.loads(line))
        except Exception as exc:
            failure = f"{type(exc).__name__}: {exc}"
    if failure is None and writer is not None:
        try:
            conn.send(("ok", writer.close(), list(writer.warnings)))
            return
        except Exception as exc:
            failure = f"{type(exc).__name__}: {exc}"
    conn.send(("error", failure, []))


class ProcessJobs:
    """Job files rendered by a worker process fed manifest lines over a pipe, 1 MiB at a time."""

    def __init__(self, out_dir: Path, schemas: Mapping[str, Any], limits: Mapping[str, Mapping[str, int]] | None,
                 strict: bool):
        methods = multiprocessing.get_all_start_methods()
        ctx = multiprocessing.get_context("fork" if "fork" in methods else "spawn")
        self._conn, child = ctx.Pipe()
        self._proc = ctx.Process(  # type: ignore[attr-defined]
            target=_worker, args=(child, out_dir, dict(schemas), limits, strict), daemon=True)
        self._proc.start()
        child.close()
        self._buffer: list[bytes] = []
        self._size = 0

    def add(self, request: dict[str, Any], line: bytes) -> None:
        self._buffer.append(line)
        self._size += len(line)
        if self._size >= _BATCH_BYTES:
            self._flush()

    def _flush(self) -> None:
        if self._buffer:
            self._conn.send_bytes(b"".join(self._buffer))
            self._buffer, self._size = [], 0

    def close(self) -> tuple[list[JobFile], list[str]]:
        self._flush()
        self._conn.send_bytes(b"")
        status, payload, warnings = self._conn.recv()
        self._proc.join()
        if status != "ok":
            raise JobFileError(str(payload))
        return payload, warnings

    def abort(self) -> None:
        if self._proc.is_alive():
            self._proc.terminate()
        self._proc.join()


class _Filtered:
    """Passes on only the requests of runtimes that have job files (ollama and local read the manifest)."""

    def __init__(self, sink: JobSink):
        self._sink = sink
        self._wanted: dict[str, bool] = {}

    def add(self, request: dict[str, Any], line: bytes) -> None:
        model = request["model"]
        wanted = self._wanted.get(model)
        if wanted is None:
            wanted = self._wanted[model] = model.partition(":")[0] in RENDERERS
        if wanted:
            self._sink.add(request, line)

    def close(self) -> tuple[list[JobFile], list[str]]:
        return self._sink.close()

    def abort(self) -> None:
        self._sink.abort()


def job_sink(expected_requests: int, out_dir: Path, schemas: Mapping[str, Any],
             limits: Mapping[str, Mapping[str, int]] | None, strict: bool, *, batch_models: bool = True) -> JobSink:
    """A sink for the job files of about `expected_requests` requests (`batch_models`: any of them batched)."""
    if batch_models and expected_requests >= PIPELINE_THRESHOLD:
        return _Filtered(ProcessJobs(out_dir, schemas, limits, strict))
    return _Filtered(InlineJobs(out_dir, schemas, limits, strict))
