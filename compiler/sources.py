"""Input rows for the types that start from data (mcq, preference, generic): read lazily, row by row."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .spec import SourceConfig


class SourceError(ValueError):
    """A source that cannot be read; `field` is the spec key to point at (e.g. 'source.file')."""

    def __init__(self, field: str, message: str):
        self.field = field
        super().__init__(message)


def source_path(source: SourceConfig, base_dir: Path) -> Path:
    assert source.file is not None
    path = Path(source.file)
    return path if path.is_absolute() else base_dir / path


def iter_rows(source: SourceConfig, base_dir: Path) -> Iterator[dict[str, Any]]:
    """Yield the source's rows as dicts; `.txt` files give one row `{"text": line}` per non-empty line."""
    if source.hf_dataset is not None:
        yield from _hf_rows(source)
        return
    path = source_path(source, base_dir)
    if not path.is_file():
        raise SourceError("source.file", f"file not found: {path} (paths are relative to the spec file)")
    suffix = path.suffix
    try:
        if suffix == ".jsonl":
            yield from _jsonl_rows(path)
        elif suffix == ".csv":
            with path.open(newline="", encoding="utf-8-sig") as fh:
                yield from csv.DictReader(fh)
        elif suffix == ".parquet":
            yield from _parquet_rows(path)
        else:
            with path.open(encoding="utf-8-sig") as fh:
                for line in fh:
                    line = line.rstrip("\r\n")
                    if line.strip():
                        yield {"text": line}
    except (OSError, UnicodeDecodeError) as exc:
        raise SourceError("source.file", f"cannot read {path}: {exc}") from None


def _jsonl_rows(path: Path) -> Iterator[dict[str, Any]]:
    with path.open(encoding="utf-8-sig") as fh:
        for n, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise SourceError("source.file", f"{path}:{n}: invalid JSON: {exc.msg}") from None
            if not isinstance(row, dict):
                raise SourceError("source.file", f"{path}:{n}: each line must be a JSON object")
            yield row


def _parquet_rows(path: Path) -> Iterator[dict[str, Any]]:
    import pyarrow.parquet as pq  # imported here: only parquet sources pay for it

    try:
        handle = pq.ParquetFile(path)
    except Exception as exc:  # pyarrow raises several unrelated types for a bad file
        raise SourceError("source.file", f"cannot read {path} as Parquet: {exc}") from None
    for batch in handle.iter_batches(batch_size=1024):
        yield from batch.to_pylist()


def _hf_rows(source: SourceConfig) -> Iterator[dict[str, Any]]:
    try:
        import datasets
    except ImportError:
        raise SourceError("source.hf_dataset", "the 'datasets' package is needed: pip install datasets") from None
    try:
        ds = datasets.load_dataset(source.hf_dataset, source.config, split=source.split, revision=source.revision,
                                   streaming=True)
    except Exception as exc:  # network, auth, unknown dataset: all reported the same way
        raise SourceError("source.hf_dataset", f"cannot load Hugging Face dataset {source.hf_dataset!r}: {exc}") from None
    yield from ds


def as_text(value: Any) -> str:
    """A cell as prompt text: strings verbatim, None empty, anything else as JSON."""
    if isinstance(value, str):
        return value
    if value is None:
        return ""
    return json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)


def json_safe(value: Any) -> Any:
    """A cell as a JSON value: JSON types unchanged (recursively), anything else (bytes, dates, Decimal) as text."""
    if value is None or isinstance(value, (str, bool, int, float)):
        return value
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    return str(value)


def check_columns(source: SourceConfig, base_dir: Path, columns: dict[str, str]) -> list[tuple[str, str]]:
    """Report every required column missing from the source's first row, as (spec field, message).

    The first row defines the columns (as the header of a CSV does); a later JSONL row without a column
    gives an empty value.
    """
    try:
        first = next(iter_rows(source, base_dir), None)
    except SourceError as exc:
        return [(exc.field, str(exc))]
    if first is None:
        return [("source", "the source has no rows; give a file with at least one row")]
    have = ", ".join(sorted(map(str, first))) or "none"
    return sorted((field, f"column {column!r} is not in the source (its columns: {have})")
                  for field, column in columns.items() if column not in first)
