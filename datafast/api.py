"""The public Python API: the same operations as the CLI, on config objects or spec files."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from datafast.compiler.build import CompileResult, Prepared, prepare
from datafast.compiler.build import plan as _plan
from datafast.compiler.errors import SpecError
from datafast.compiler.jobs import JobFileError
from datafast.compiler.loader import LineMap, validate_data
from datafast.compiler.pricing import PriceTable
from datafast.compiler.spec import DatasetConfigBase
from datafast.compiler.vendors.base import RenderError, UnsupportedFeature

from .logs import get_logger
from .outdir import OutputDir

log = get_logger("compile")


PROJECT_MARKERS = (".git", "pyproject.toml", ".datafast-root")


def project_root(start: Path) -> Path:
    """The nearest folder at or above `start` holding a project marker (.git, pyproject.toml, or an empty
    `.datafast-root` file a user may place); `start` itself when none does."""
    for folder in (start, *start.parents):
        if any((folder / marker).exists() for marker in PROJECT_MARKERS):
            return folder
    return start


def default_out_dir(spec: DatasetConfigBase, spec_path: str | Path | None = None) -> Path:
    """`build/<name>` under the spec file's project root (see `project_root`), whatever the working directory,
    so running the same spec from another folder finds the same dir and pays for nothing twice; shown relative
    to the working directory when it lies below it. A spec built in Python (no file): `build/<name>` here."""
    if spec_path is None:
        return Path("build") / spec.name
    target = project_root(Path(spec_path).resolve().parent) / "build" / spec.name
    try:
        return target.relative_to(Path.cwd().resolve())
    except ValueError:
        return target


def _prepare(spec: DatasetConfigBase | Mapping[str, Any] | str | Path) -> Prepared:
    """`prepare`, also for a spec given as a mapping (a YAML spec's content), validated as a spec file is."""
    if isinstance(spec, (DatasetConfigBase, str, Path)):
        return prepare(spec)
    return prepare(validate_data(dict(spec) if isinstance(spec, Mapping) else spec, LineMap(None)))


def _warn_if_another_dataset(target: Path, spec: Any) -> None:
    """A dir that holds another dataset (name or type) is compiled over, as asked, but not silently: its
    results stay there (never paid twice) yet no longer match, and its dataset files are rewritten."""
    try:
        old = json.loads((target / "manifest.json").read_text("utf-8"))
    except (OSError, ValueError):
        return
    if (old.get("name"), old.get("type")) != (spec.name, spec.type):
        log.warning("warning: %s held the dataset %r (%s); it now holds %r (%s): the earlier results stay in it "
                    "but no longer count, and its dataset files are rewritten (give another -o to keep both)",
                    target, old.get("name"), old.get("type"), spec.name, spec.type)


def compile(
    spec_or_path: DatasetConfigBase | Mapping[str, Any] | str | Path,
    out_dir: str | Path | None = None,
    *,
    strict: bool = False,
    prices: str | Path | None = None,
    limits: Mapping[str, Mapping[str, int]] | None = None,
) -> CompileResult:
    """Compile a spec's first stage into `out_dir` (default `default_out_dir`: `build/<name>` under the spec's
    project root): manifest.jsonl, manifest.json, jobs/.

    Later stages of multi-stage types are compiled by `submit`/`run` once the stages they read are answered.

    Args:
        spec_or_path: a config object (e.g. `ClassificationDatasetConfig(...)`), a YAML/JSON spec path, or a
            spec's content as a mapping (`{"datafast": 1, "type": ..., ...}`).
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
    prepared = _prepare(spec_or_path)
    spec_path = spec_or_path if isinstance(spec_or_path, (str, Path)) else None
    target = Path(out_dir) if out_dir is not None else default_out_dir(prepared.spec, spec_path)
    _warn_if_another_dataset(target, prepared.spec)
    try:
        result = OutputDir(target).write_first_stage(prepared, prices=PriceTable.load(prices), strict=strict,
                                                     limits=limits, on_wait=log.warning)
    except (UnsupportedFeature, RenderError, JobFileError) as exc:
        # what the vendor files cannot carry is a problem of the spec (or of --strict): nothing was written
        raise _vendor_spec_error(prepared, exc, strict) from None
    for warning in [*map(str, result.spec_warnings), *result.warnings[len(result.spec_warnings):]]:
        log.warning("warning: %s", warning)
    log.info("compiled %s requests into %s", f"{result.requests:,}", target)
    return result


def _vendor_spec_error(prepared: Prepared, exc: Exception, strict: bool) -> SpecError:
    """A vendor's refusal of the spec, located at the generation parameter (or the models) it concerns."""
    field = ""
    if isinstance(exc, UnsupportedFeature):
        field = f"generation.{exc.keyword}" if exc.schema_key is None else "models"
    hint = " (a warning without --strict)" if strict and isinstance(exc, UnsupportedFeature) else ""
    path = tuple(field.split(".")) if field else ()
    return SpecError([prepared.lines.issue(path, f"{exc}{hint}")])


def plan(spec_or_path: DatasetConfigBase | Mapping[str, Any] | str | Path, *,
         prices: str | Path | None = None) -> dict[str, Any]:
    """Requests per stage/model/language/class with token and cost estimates; writes nothing."""
    prepared = _prepare(spec_or_path)
    try:
        return _plan(prepared, PriceTable.load(prices))
    except UnsupportedFeature as exc:  # what a vendor refuses outright, as compile reports it
        raise _vendor_spec_error(prepared, exc, False) from None


def submit(out_dir: str | Path, *, wait: bool = False, poll_interval: float = 30.0, retry_failed: bool = False,
           max_tokens: int | None = None, concurrency: int | None = None) -> Any:
    """Advance a compiled output dir: send what has no result yet, compile and send each later stage once
    its inputs are complete; with `wait`, until every stage is done. See `datafast submit --help`.

    Returns a `SubmitReport` (requests = ok + in_flight + failed + to_send, live jobs, and each stage).
    """
    from .pipeline import advance

    return advance(out_dir, wait=wait, poll_interval=poll_interval, retry_failed=retry_failed,
                   max_tokens=max_tokens, concurrency=concurrency)


def status(out_dir: str | Path) -> dict[str, Any]:
    """Every stage and job of an output dir with request counts (live jobs are polled once)."""
    from .pipeline import status as _status

    return _status(out_dir)


def cancel(out_dir: str | Path) -> list[str]:
    """Cancel the live batch jobs of an output dir, whatever their stage; returns their names."""
    from .pipeline import cancel as _cancel

    return _cancel(out_dir)


def collect(out_dir: str | Path) -> Any:
    """The final rows of an output dir as a `datasets.Dataset`; also writes dataset.jsonl, rows/ and rejects.jsonl.

    Example:
        >>> ds = datafast.collect("build/sentiment")  # doctest: +SKIP
        >>> ds[0]["text"], ds[0]["label"]              # doctest: +SKIP
    """
    from .dataset import load_dataset

    return load_dataset(out_dir)


def run(spec_or_path: DatasetConfigBase | str | Path, out_dir: str | Path | None = None, *,
        poll_interval: float = 30.0, concurrency: int | None = None) -> Any:
    """compile, submit every stage, wait and collect in one call; resumable. Returns the `datasets.Dataset`."""
    from .dataset import load_dataset
    from .pipeline import run as _run

    result, report = _run(spec_or_path, out_dir, poll_interval=poll_interval, concurrency=concurrency)
    return load_dataset(result.out_dir, report)
