"""Vendor batch job files: manifest requests streamed into `jobs/<vendor>/<stage>-<model>-NNN.jsonl`.

One file holds one stage of one model (every vendor takes the model per batch, or per file), and is rotated
before it would exceed the vendor's request-count or byte limit (`data/limits.json`). Lines are rendered by
the vendor's renderer (`vendors/`); this module owns naming, splitting and the file handles.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from types import TracebackType
from typing import Any, BinaryIO

from .vendors import RENDERERS, Diagnostics, Renderer, VendorWarning

_BUFFER = 1 << 18
_SAFE_NAME = re.compile(r"[a-z0-9][a-z0-9._-]{0,79}")
_UNSAFE_CHARS = re.compile(r"[^a-z0-9._-]+")


class JobFileError(ValueError):
    """Requests that cannot be laid out in vendor files (too large for one file, duplicate id, bad limits)."""


@dataclass(frozen=True)
class Limits:
    """Per-file limits of one vendor's batch input."""

    max_requests: int
    max_bytes: int


@dataclass(frozen=True)
class JobFile:
    """One written job file. `path` is relative to the output dir (posix); `model` is `runtime:model`."""

    vendor: str
    stage: str
    model: str
    path: str
    requests: int
    bytes: int


def load_limits(overrides: Mapping[str, Mapping[str, int]] | None = None) -> dict[str, Limits]:
    """The limits table (`data/limits.json`) with `overrides` merged per vendor and field.

    Example:
        >>> load_limits({"openai": {"max_requests": 10}})["openai"].max_requests
        10
    """
    text = resources.files("datafast.compiler").joinpath("data/limits.json").read_text(encoding="utf-8")
    table: dict[str, dict[str, Any]] = {
        vendor: {field: row[field] for field in ("max_requests", "max_bytes")}
        for vendor, row in json.loads(text)["vendors"].items()
    }
    for vendor, fields in (overrides or {}).items():
        if vendor not in table:
            raise JobFileError(f"limits override for unknown vendor {vendor!r} (known: {', '.join(sorted(table))})")
        for field, value in fields.items():
            if field not in table[vendor]:
                raise JobFileError(f"limits override {vendor}.{field}: unknown field (max_requests, max_bytes)")
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise JobFileError(f"limits override {vendor}.{field}: {value!r} is not a positive integer")
            table[vendor][field] = value
    return {vendor: Limits(**fields) for vendor, fields in table.items()}


def safe_name(name: str) -> str:
    """A file-name-safe, deterministic form of a stage or model name; unchanged when already safe.

    Anything else is lower-cased and cleaned, plus 8 hex of its sha256 so distinct names stay distinct
    (also on case-insensitive file systems).

    Example:
        >>> safe_name("gpt-4.1-mini"), safe_name("models/Gemini-2.5")
        ('gpt-4.1-mini', 'models-gemini-2.5-1f644155')
    """
    if _SAFE_NAME.fullmatch(name):
        return name
    cleaned = _UNSAFE_CHARS.sub("-", name.lower()).strip("-.")[:60]
    digest = hashlib.sha256(name.encode("utf-8")).hexdigest()[:8]
    return f"{cleaned}-{digest}" if cleaned else digest


class _OpenFile:
    __slots__ = ("vendor", "stage", "model", "index", "path", "handle", "requests", "bytes", "ids",
                 "max_requests", "max_bytes")

    def __init__(self, vendor: str, stage: str, model: str, index: int, path: str, handle: BinaryIO,
                 limits: Limits) -> None:
        self.vendor, self.stage, self.model, self.index, self.path = vendor, stage, model, index, path
        self.handle = handle
        self.requests = 0
        self.bytes = 0
        self.ids: set[str] = set()
        self.max_requests = limits.max_requests
        self.max_bytes = limits.max_bytes


class JobFileWriter:
    """Streams manifest requests into vendor job files under `out_dir/jobs/<vendor>/`.

    Requests whose runtime has no renderer (ollama, local) are skipped. Warnings about what a vendor cannot
    honour are collected, deduplicated (`warnings`); with `strict=True` the first one raises
    `UnsupportedFeature` instead.

    Args:
        out_dir: output directory; `jobs/` inside it is assumed empty or absent.
        schemas: the manifest's schemas table (schema key -> JSON Schema).
        limits_overrides: per-vendor overrides of `data/limits.json`, e.g. `{"openai": {"max_requests": 10}}`.
        strict: make every warning an error.

    Example:
        >>> w = JobFileWriter(out, schemas)         # doctest: +SKIP
        >>> for request in requests: w.add(request)  # doctest: +SKIP
        >>> files = w.close()                        # doctest: +SKIP
    """

    def __init__(self, out_dir: Path, schemas: Mapping[str, Mapping[str, Any]],
                 limits_overrides: Mapping[str, Mapping[str, int]] | None = None, strict: bool = False) -> None:
        self._out_dir = Path(out_dir)
        self._schemas = schemas
        self._limits = load_limits(limits_overrides)
        self._diagnostics = Diagnostics(strict)
        self._renderers: dict[str, Renderer] = {}
        self._by_model: dict[str, tuple[str, Renderer] | None] = {}
        self._open: dict[tuple[str, str], _OpenFile] = {}
        self._counters: dict[tuple[str, str], int] = {}
        self._names: dict[tuple[str, str], str] = {}
        self._taken: set[tuple[str, str]] = set()
        self._done: list[_OpenFile] = []
        self._closed = False

    @property
    def warnings(self) -> list[str]:
        return [str(w) for w in self._diagnostics.warnings]

    @property
    def diagnostics(self) -> list[VendorWarning]:
        """The warnings as data (vendor, keyword, schema key and paths, or model)."""
        return self._diagnostics.warnings

    def add(self, request: Mapping[str, Any]) -> None:
        """Render one manifest request into its (vendor, model, stage) file, rotating at the limits."""
        model = request["model"]
        try:
            target = self._by_model[model]
        except KeyError:
            target = self._by_model[model] = self._renderer_for(model)
        if target is None:
            return
        line = target[1].render(request)
        key = (model, request["stage"])
        current = self._open.get(key)
        size = len(line)
        if current is None or current.requests >= current.max_requests or current.bytes + size > current.max_bytes:
            current = self._next_file(key, target[0], size, request)
        request_id = request["id"]
        if request_id in current.ids:
            raise JobFileError(f"{current.vendor}: duplicate request id {request_id!r} in {current.path}")
        current.ids.add(request_id)
        current.handle.write(line)
        current.requests += 1
        current.bytes += size

    def close(self) -> list[JobFile]:
        """Flush and close every file; the written files ordered by vendor, stage, model and number."""
        if not self._closed:
            self._closed = True
            for open_file in self._open.values():
                self._finish(open_file)
            self._open.clear()
        done = sorted(self._done, key=lambda f: (f.vendor, f.stage, f.model, f.index))
        return [JobFile(f.vendor, f.stage, f.model, f.path, f.requests, f.bytes) for f in done]

    def __enter__(self) -> JobFileWriter:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def _renderer_for(self, model: str) -> tuple[str, Renderer] | None:
        runtime, _, model_name = model.partition(":")
        renderer_cls = RENDERERS.get(runtime)
        if renderer_cls is None:
            return None
        if not model_name:
            raise JobFileError(f"model {model!r} is not 'runtime:model'")
        if runtime not in self._limits:
            raise JobFileError(f"no batch limits for vendor {runtime!r} in data/limits.json")
        renderer = self._renderers.get(runtime)
        if renderer is None:
            renderer = self._renderers[runtime] = renderer_cls(self._schemas, self._diagnostics)
        return runtime, renderer

    def _next_file(self, key: tuple[str, str], vendor: str, size: int, request: Mapping[str, Any]) -> _OpenFile:
        if self._closed:
            raise JobFileError("add() after close()")
        model, stage = key
        limits = self._limits[vendor]
        if size > limits.max_bytes:
            raise JobFileError(
                f"{vendor}: request {request['id']!r} (stage {stage!r}, model {model!r}) renders to {size} bytes, "
                f"more than one {vendor} batch file may hold ({limits.max_bytes} bytes)"
            )
        previous = self._open.pop(key, None)
        if previous is not None:
            self._finish(previous)
        index = self._counters[key] = self._counters.get(key, 0) + 1
        path = f"jobs/{vendor}/{self._base_name(vendor, key)}-{index:03d}.jsonl"
        full = self._out_dir / path
        full.parent.mkdir(parents=True, exist_ok=True)
        handle = full.open("wb", buffering=_BUFFER)
        opened = self._open[key] = _OpenFile(vendor, stage, model, index, path, handle, limits)
        return opened

    def _base_name(self, vendor: str, key: tuple[str, str]) -> str:
        """`<stage>-<model>`, made unique per vendor dir (stage "a-b" + model "c" vs stage "a" + model "b-c")."""
        name = self._names.get(key)
        if name is None:
            model, stage = key
            name = f"{safe_name(stage)}-{safe_name(model.partition(':')[2])}"
            if (vendor, name) in self._taken:
                digest = hashlib.sha256(f"{stage}\n{model}".encode()).hexdigest()[:8]
                name = f"{name}-{digest}"
            self._taken.add((vendor, name))
            self._names[key] = name
        return name

    def _finish(self, open_file: _OpenFile) -> None:
        open_file.handle.close()
        open_file.ids = set()
        self._done.append(open_file)
