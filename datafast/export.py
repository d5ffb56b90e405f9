"""Rows (dicts, as in `dataset.jsonl`) -> Parquet that does not break on real data.

Arrow needs one type per column; generated rows do not promise one. The schema is inferred over every row
first (`RowSchema.infer`), unifying what can be unified: null with anything, int with float (float64),
objects field by field (a field missing in a row is null), lists element-wise. A column whose values cannot
be unified (a string in one row, a number or an object in another; an integer beyond int64; an object with
no fields, which Parquet cannot store) is written as JSON text, every non-null value `json.dumps`-ed, and is
named in `RowSchema.json_columns` (the dataset card lists them). Empty row sets give a file with no columns.

Files are written to a temporary name in the target's folder and renamed into place: a failed export
leaves no partial file, and `ExportError` names the row and the column that failed.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from .outdir import BadInput

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
ROW_GROUP_ROWS = 10_000  # rows per Parquet row group: bounded memory when writing, fine-grained reads on the Hub


class ExportError(BadInput):
    """A row that could not be written (names the file, the row and the column)."""


# a type descriptor: ("null",) ("bool",) ("int",) ("float",) ("str",) ("list", elem) ("struct", {name: desc})
# or ("conflict",); kept as plain tuples so unification is cheap over millions of rows
_NULL: tuple[Any, ...] = ("null",)
_CONFLICT: tuple[Any, ...] = ("conflict",)


def _describe(value: Any) -> tuple[Any, ...]:
    if value is None:
        return _NULL
    if isinstance(value, bool):
        return ("bool",)
    if isinstance(value, int):
        return ("int",) if INT64_MIN <= value <= INT64_MAX else _CONFLICT
    if isinstance(value, float):
        return ("float",)
    if isinstance(value, str):
        return ("str",)
    if isinstance(value, (list, tuple)):
        elem = _NULL
        for item in value:
            elem = _unify(elem, _describe(item))
        return ("list", elem)
    if isinstance(value, Mapping):
        return ("struct", {str(k): _describe(v) for k, v in value.items()})
    return _CONFLICT


def _unify(a: tuple[Any, ...], b: tuple[Any, ...]) -> tuple[Any, ...]:
    if a == b:
        return a
    if a is _NULL or a[0] == "null":
        return b
    if b[0] == "null":
        return a
    if a[0] == "conflict" or b[0] == "conflict":
        return _CONFLICT
    if {a[0], b[0]} == {"int", "float"}:
        return ("float",)
    if a[0] == b[0] == "list":
        return ("list", _unify(a[1], b[1]))
    if a[0] == b[0] == "struct":
        merged = dict(a[1])
        for name, desc in b[1].items():
            merged[name] = _unify(merged[name], desc) if name in merged else desc
        return ("struct", merged)
    return _CONFLICT


def _storable(desc: tuple[Any, ...]) -> bool:
    """Whether Arrow/Parquet can hold the type as it is (no conflict anywhere, no field-less object)."""
    if desc[0] == "conflict":
        return False
    if desc[0] == "list":
        return _storable(desc[1])
    if desc[0] == "struct":
        return bool(desc[1]) and all(_storable(d) for d in desc[1].values())
    return True


def _arrow_type(desc: tuple[Any, ...]) -> Any:
    import pyarrow as pa

    kind = desc[0]
    if kind == "list":
        elem = desc[1]
        return pa.list_(pa.string() if elem[0] == "null" else _arrow_type(elem))
    if kind == "struct":
        return pa.struct([pa.field(name, _arrow_type(d)) for name, d in desc[1].items()])
    return {"null": pa.string(), "bool": pa.bool_(), "int": pa.int64(), "float": pa.float64(),
            "str": pa.string()}[kind]


@dataclass
class RowSchema:
    """The Arrow schema of a row set; `json_columns` are stored as JSON text (see the module docstring)."""

    columns: dict[str, tuple[Any, ...]] = field(default_factory=dict)
    rows: int = 0

    @classmethod
    def infer(cls, rows: Iterable[Mapping[str, Any]]) -> RowSchema:
        schema = cls()
        for row in rows:
            schema.add(row)
        return schema

    def add(self, row: Mapping[str, Any]) -> None:
        self.rows += 1
        columns = self.columns
        for name, value in row.items():
            desc = _describe(value)
            old = columns.get(name)
            columns[name] = desc if old is None else _unify(old, desc)

    @property
    def json_columns(self) -> list[str]:
        return [name for name, desc in self.columns.items() if not _storable(desc)]

    def arrow(self) -> Any:
        import pyarrow as pa

        return pa.schema([pa.field(name, pa.string() if not _storable(desc) else _arrow_type(desc))
                          for name, desc in self.columns.items()])

    def prepare(self, row: Mapping[str, Any]) -> dict[str, Any]:
        """The row as the Arrow schema takes it: JSON-text columns dumped, missing columns null."""
        out = {name: row.get(name) for name in self.columns}
        for name in self.json_columns:
            value = out[name]
            if value is not None:
                out[name] = json.dumps(value, ensure_ascii=False, sort_keys=False)
        return out


def read_jsonl(path: str | Path) -> Iterator[dict[str, Any]]:
    """The rows of a JSON-lines file, one dict each (blank lines skipped)."""
    with open(path, "rb") as fh:
        for number, line in enumerate(fh, 1):
            if line.strip():
                try:
                    yield orjson.loads(line)
                except orjson.JSONDecodeError as exc:
                    raise ExportError(f"{path}:{number}: not a JSON row ({exc})") from None


@contextlib.contextmanager
def _replacing(target: Path) -> Iterator[Path]:
    """A temporary path beside `target`, renamed onto it on success and removed on failure."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.tmp-{os.getpid()}")
    try:
        yield tmp
        os.replace(tmp, target)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def write_parquet(rows: Iterable[Mapping[str, Any]], target: str | Path, schema: RowSchema,
                  label: str = "") -> int:
    """Write `rows` (all of which `schema` was inferred over) to `target` as Parquet; return the row count.

    Args:
        label: how errors name the rows' origin (default: the target path).
    Raises:
        ExportError: a value Arrow refused, naming the row number (1-based), its row_id and the column.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    target = Path(target)
    arrow_schema = schema.arrow()
    written = 0
    with _replacing(target) as tmp, pq.ParquetWriter(tmp, arrow_schema) as writer:
        chunk: list[dict[str, Any]] = []

        def flush() -> None:
            try:
                table = pa.Table.from_pylist(chunk, schema=arrow_schema)
            except (pa.ArrowException, TypeError, ValueError, OverflowError) as exc:
                raise _locate(chunk, written, arrow_schema, label or str(target), exc) from None
            writer.write_table(table)

        for row in rows:
            chunk.append(schema.prepare(row))
            if len(chunk) == ROW_GROUP_ROWS:
                flush()
                written += len(chunk)
                chunk = []
        if chunk:  # no rows: a file with the schema and no row group (an empty one trips readers)
            flush()
            written += len(chunk)
    return written


def _locate(chunk: list[dict[str, Any]], before: int, arrow_schema: Any, label: str, exc: Exception) -> ExportError:
    """The first row and column of `chunk` that Arrow refuses, as an ExportError."""
    import pyarrow as pa

    for offset, row in enumerate(chunk):
        for arrow_field in arrow_schema:
            try:
                pa.array([row.get(arrow_field.name)], type=arrow_field.type)
            except (pa.ArrowException, TypeError, ValueError, OverflowError) as cell_exc:
                return ExportError(f"{label}: row {before + offset + 1} (row_id {row.get('row_id')!r}): column "
                                   f"{arrow_field.name!r}: {cell_exc}")
    return ExportError(f"{label}: rows {before + 1}-{before + len(chunk)}: {type(exc).__name__}: {exc}")


def jsonl_to_parquet(source: str | Path, target: str | Path) -> int:
    """Convert a JSON-lines row file to Parquet (two passes: schema, then rows); return the row count."""
    schema = RowSchema.infer(read_jsonl(source))
    return write_parquet(read_jsonl(source), target, schema, label=str(source))


def jsonl_to_csv(source: str | Path, target: str | Path) -> int:
    """Convert a JSON-lines row file to CSV (see `write_csv`). Returns the row count."""
    return write_csv(lambda: read_jsonl(source), target)


def write_csv(rows: Callable[[], Iterable[Mapping[str, Any]]], target: str | Path) -> int:
    """Write rows as CSV (UTF-8, a header row); objects and lists are JSON text, as are the columns
    `RowSchema` stores as JSON text. `rows` is called twice (schema, then rows). Returns the row count."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    schema = RowSchema.infer(rows())
    nested = {name for name, desc in schema.columns.items() if desc[0] in ("list", "struct")}
    flat = RowSchema({name: (("conflict",) if name in nested else desc) for name, desc in schema.columns.items()},
                     schema.rows)
    arrow_schema = flat.arrow()
    target = Path(target)
    written = 0
    with _replacing(target) as tmp, pacsv.CSVWriter(str(tmp), arrow_schema) as writer:
        chunk: list[dict[str, Any]] = []
        for row in rows():
            chunk.append(flat.prepare(row))
            if len(chunk) == ROW_GROUP_ROWS:
                writer.write_table(pa.Table.from_pylist(chunk, schema=arrow_schema))
                written += len(chunk)
                chunk = []
        if chunk:
            writer.write_table(pa.Table.from_pylist(chunk, schema=arrow_schema))
            written += len(chunk)
    return written
