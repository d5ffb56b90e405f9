"""The public Python API: the same operations as the CLI, on config objects or spec files."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from datafast.compiler.build import CompileResult, compile_to_dir, prepare
from datafast.compiler.build import plan as _plan
from datafast.compiler.errors import SpecError
from datafast.compiler.jobs import JobFileError
from datafast.compiler.pricing import PriceTable
from datafast.compiler.spec import DatasetConfigBase
from datafast.compiler.vendors.base import RenderError, UnsupportedFeature

from .logs import get_logger

log = get_logger("compile")


def default_out_dir(spec: DatasetConfigBase) -> Path:
    return Path("build") / spec.name


def compile(
    spec_or_path: DatasetConfigBase | str | Path,
    out_dir: str | Path | None = None,
    *,
    strict: bool = False,
    prices: str | Path | None = None,
    limits: Mapping[str, Mapping[str, int]] | None = None,
) -> CompileResult:
    """Compile a spec into `out_dir` (default `build/<name>`): manifest.jsonl, manifest.json, jobs/.

    Args:
        spec_or_path: a config object (e.g. `ClassificationDatasetConfig(...)`) or a YAML/JSON spec path.
        out_dir: output directory; created if needed. Runtime state already in it is kept.
        strict: make vendor warnings (schema keywords a vendor cannot enforce) errors.
        prices: a price table file merged over the built-in one.
        limits: per-vendor overrides of the job-file limits, e.g. `{"openai": {"max_requests": 1000}}`.

    Returns:
        CompileResult with the output dir, the request count, manifest.json's content and the warnings.

    Raises:
        SpecError: the spec is invalid; nothing was written.

    Example:
        >>> import datafast
        >>> spec = datafast.ClassificationDatasetConfig(
        ...     name="sentiment", classes=[{"name": "positive", "description": "Happy reviews"}],
        ...     models=["openai:gpt-4.1-mini"])
        >>> result = datafast.compile(spec, "build/sentiment")  # doctest: +SKIP
    """
    prepared = prepare(spec_or_path)
    target = Path(out_dir) if out_dir is not None else default_out_dir(prepared.spec)
    try:
        result = compile_to_dir(prepared, target, PriceTable.load(prices), strict=strict, limits=limits)
    except (UnsupportedFeature, RenderError, JobFileError) as exc:
        # what the vendor files cannot carry is a problem of the spec (or of --strict): nothing was written
        hint = " (a warning without --strict)" if strict and isinstance(exc, UnsupportedFeature) else ""
        raise SpecError.single(prepared.lines.file, None, "", f"{exc}{hint}") from None
    for warning in result.warnings:
        log.warning("warning: %s", warning)
    log.info("compiled %s requests into %s", f"{result.requests:,}", target)
    return result


def plan(spec_or_path: DatasetConfigBase | str | Path, *, prices: str | Path | None = None) -> dict[str, Any]:
    """Requests per stage/model/language/class with token and cost estimates; writes nothing."""
    return _plan(prepare(spec_or_path), PriceTable.load(prices))
