"""Input rows for the types that start from data (mcq, preference, generic): read lazily, row by row.

Source files arrive damaged; every reader either reads a row as written or raises `SourceError` naming the
file and line (row) and saying how to fix it. What each case does:

- Encoding: UTF-8 only. A UTF-8 BOM is dropped. Invalid UTF-8, a UTF-16/32 file (BOM or NUL bytes) or NUL
  bytes are an error naming the line, with the `iconv` command that re-encodes the file.
- Line endings: LF, CRLF and a lone CR all end a line (CSV keeps them inside quoted fields); blank lines are
  skipped. A line longer than `MAX_LINE_CHARS` is an error (a file without line breaks is not read whole).
- JSONL: every non-blank line is one JSON object; anything else (a truncated last line, an array, NaN or
  Infinity, a key given twice) is an error naming the line. Numbers are kept as written (`JsonNumber`), so
  `1.10` reaches a prompt as `1.10`, not `1.1`.
- CSV: comma-separated with a header line; quoted fields may hold commas, quotes ("") and line breaks. A
  record whose field count differs from the header, a stray quote or an unclosed quote is an error naming
  the line. Fields may be up to `MAX_LINE_CHARS` characters (csv's default limit is 128 KiB).
- Parquet: read one batch at a time; a corrupt file is an error. float32 values keep their short form (`0.1`,
  not `0.10000000149011612`).
- Cells are checked when a stage reads them (`SourceRow.get`), so a damaged column the spec does not use is
  no error. A cell used as text (`as_text`): a string verbatim; null or missing is empty; a number as written
  (JSONL) or in its shortest form; true/false; a list or object as JSON (key order and numbers as written);
  a date as ISO 8601. NaN, infinity, an unpaired surrogate (a lone `\\ud800` escape), bytes that are not
  UTF-8, nesting deeper than `MAX_DEPTH` or any other type is an error naming the row and column.
"""

from __future__ import annotations

import codecs
import csv
import datetime as dt
import decimal
import io
import json
import math
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .spec import SourceConfig

MAX_LINE_CHARS = 64 * 1024 * 1024  # one line (or CSV field) of a source file, at most
MAX_DEPTH = 100  # nesting of lists/objects in one cell

_SURROGATE = re.compile("[\ud800-\udfff]")
_ESCAPED_BYTE = re.compile("[\udc80-\udcff]")  # what errors="surrogateescape" makes of an undecodable byte
_BOMS = ((codecs.BOM_UTF32_LE, "UTF-32"), (codecs.BOM_UTF32_BE, "UTF-32"),
         (codecs.BOM_UTF16_LE, "UTF-16"), (codecs.BOM_UTF16_BE, "UTF-16"))


class SourceError(ValueError):
    """A source that cannot be read; `field` is the spec key to point at (e.g. 'source.file')."""

    def __init__(self, field: str, message: str):
        self.field = field
        super().__init__(message)


class JsonNumber(str):
    """A number exactly as written in the source (`1.10`, `1e3`): prompts get this text, JSON its value."""

    def value(self) -> int | float | str:
        """The number for JSON output; an integer beyond 64 bits stays text (JSON readers would round it)."""
        if re.fullmatch(r"-?[0-9]+", self):
            if len(self) > 20:
                return str(self)
            n = int(self)
            return n if -(2**63) <= n < 2**64 else str(self)
        return float(self)


class SourceRow(dict[str, Any]):
    """One source row. `get` checks the cell it returns and names file, row and column if it is unusable."""

    def __init__(self, cells: dict[str, Any], where: str, field: str = "source.file"):
        super().__init__(cells)
        self.where = where
        self.field = field

    def get(self, key: str, default: Any = None) -> Any:  # type: ignore[override]
        value = super().get(key, default)
        problem = _cell_problem(value)
        if problem:
            raise SourceError(self.field, f"cannot read {self.where}: column {key!r} {problem}")
        return value


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
            yield from _csv_rows(path)
        elif suffix == ".parquet":
            yield from _parquet_rows(path)
        else:
            for n, line in _lines(path):
                line = line.rstrip("\r\n")
                if line.strip():
                    yield SourceRow({"text": line}, f"{path}:{n}")
    except OSError as exc:
        raise SourceError("source.file", f"cannot read {path}: {exc.strerror or exc}") from None


def _fail(path: Path, line: int, message: str) -> SourceError:
    return SourceError("source.file", f"cannot read {path}:{line}: {message}")


def _iconv(path: Path, encoding: str) -> str:
    return f"re-encode it as UTF-8: iconv -f {encoding} -t UTF-8 {path.name} > utf8-{path.name}"


def _lines(path: Path) -> Iterator[tuple[int, str]]:
    """(line number, line with its ending) of a UTF-8 text file, one line in memory at a time."""
    with path.open("rb") as raw:
        head = raw.read(4)
        for bom, encoding in _BOMS:
            if head.startswith(bom):
                raise _fail(path, 1, f"the file is {encoding} text; {_iconv(path, encoding)}")
        raw.seek(0)
        text = io.TextIOWrapper(raw, encoding="utf-8-sig", errors="surrogateescape", newline="")
        n = 0
        while line := text.readline(MAX_LINE_CHARS):
            n += 1
            if len(line) == MAX_LINE_CHARS and not line.endswith(("\n", "\r")):
                raise _fail(path, n, f"line longer than {MAX_LINE_CHARS:,} characters; is it a text file "
                                     "with line breaks?")
            if bad := _ESCAPED_BYTE.search(line):
                byte = ord(bad.group()) - 0xDC00
                raise _fail(path, n, f"not valid UTF-8 (byte 0x{byte:02x} at column {bad.start() + 1}); "
                                     f"{_iconv(path, 'WINDOWS-1252')} (name the file's actual encoding)")
            if "\x00" in line:
                raise _fail(path, n, f"NUL bytes: a binary or UTF-16 file? {_iconv(path, 'UTF-16')}")
            yield n, line


class _BadJson(ValueError):
    pass


def _no_constant(name: str) -> Any:
    raise _BadJson(f"{name} is not JSON; write null, or the text in quotes")


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out = dict(pairs)
    if len(out) < len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise _BadJson(f"key {key!r} appears twice in one object; keep one")
            seen.add(key)
    return out


def _jsonl_rows(path: Path) -> Iterator[dict[str, Any]]:
    for n, line in _lines(path):
        if not line.strip():
            continue
        try:
            row = json.loads(line, parse_int=JsonNumber, parse_float=JsonNumber, parse_constant=_no_constant,
                             object_pairs_hook=_object)
        except json.JSONDecodeError as exc:
            hint = "each line must be one JSON object"
            if not line.endswith(("\n", "\r")):
                hint = "the last line looks cut short: complete it or delete it"
            elif n == 1 and line.lstrip().startswith("["):
                hint = f"is it one JSON array? JSONL has one object per line: jq -c '.[]' {path.name}"
            raise _fail(path, n, f"invalid JSON ({exc.msg}, column {exc.colno}); {hint}") from None
        except _BadJson as exc:
            raise _fail(path, n, str(exc)) from None
        except RecursionError:
            raise _fail(path, n, "JSON nested too deeply") from None
        if not isinstance(row, dict):
            got = "a number" if isinstance(row, JsonNumber) else f"a JSON {_json_kind(row)}"
            raise _fail(path, n, f"line {n} is not a JSON object (it is {got}); each line must be one object "
                                 'such as {"text": "..."}')
        _check_keys(row, path, n)
        yield SourceRow(row, f"{path}:{n}")


def _json_kind(value: Any) -> str:
    return {list: "array", str: "string", bool: "boolean", type(None): "null"}.get(type(value), type(value).__name__)


def _check_keys(row: dict[str, Any], path: Path, n: int) -> None:
    for key in row:
        if _SURROGATE.search(key):
            raise _fail(path, n, f"column name {key!r} holds an unpaired surrogate (a lone \\ud800-style escape); "
                                 "fix the escape")


def _csv_rows(path: Path) -> Iterator[dict[str, Any]]:
    # csv's limit is process-wide; it is only ever raised, to the same bound as a line
    csv.field_size_limit(max(csv.field_size_limit(), MAX_LINE_CHARS))
    lines = _LineCounter(_lines(path))
    reader = csv.reader(lines, strict=True)
    header: list[str] | None = None
    start = 1
    try:
        while True:
            start = lines.count + 1
            try:
                record = next(reader)
            except StopIteration:
                return
            if not record:
                continue  # a blank line
            if header is None:
                header = _csv_header(record, path, start)
                continue
            if len(record) != len(header):
                raise _fail(path, start, f"{len(record)} fields where the header has {len(header)}; quote fields "
                                         'that hold commas ("a, b") and double quotes inside them ("say ""hi""")')
            yield SourceRow(dict(zip(header, record, strict=True)), f"{path}:{start}")
    except csv.Error as exc:
        hint = "quote fields that hold commas, quotes or line breaks, and double quotes inside them"
        if "field larger" in str(exc) or "end of data" in str(exc):
            hint = f"a quote opened near line {start} is never closed; close it or double it (\"\")"
        raise _fail(path, start, f"CSV error: {exc}; {hint}") from None


def _csv_header(record: list[str], path: Path, line: int) -> list[str]:
    seen: set[str] = set()
    for name in record:
        if name in seen:
            raise _fail(path, line, f"the header has column {name!r} twice; rename one")
        seen.add(name)
    return record


class _LineCounter:
    """Lines passed on to csv.reader, counted (csv's own line_num counts records' lines only after them)."""

    def __init__(self, lines: Iterator[tuple[int, str]]):
        self._lines = lines
        self.count = 0

    def __iter__(self) -> _LineCounter:
        return self

    def __next__(self) -> str:
        self.count, line = next(self._lines)
        return line


def _parquet_rows(path: Path) -> Iterator[dict[str, Any]]:
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq  # imported here: only parquet sources pay for it
    except ImportError:
        raise SourceError("source.file", "reading .parquet needs the 'pyarrow' package: pip install pyarrow") from None
    try:
        handle = pq.ParquetFile(path)
        batches = handle.iter_batches(batch_size=1024)
    except Exception as exc:  # pyarrow raises several unrelated types for a bad file
        raise SourceError("source.file", f"cannot read {path} as Parquet: {exc}; is it a Parquet file, "
                                         "written completely?") from None
    row = 0
    while True:
        try:
            batch = next(batches, None)
            if batch is None:
                return
            rows = _batch_rows(batch, pa)
        except Exception as exc:  # a corrupt page or a value Python cannot hold (a timestamp in year 10000)
            raise SourceError("source.file", f"{path}: cannot read rows after row {row}: {exc}; the file is "
                                             "damaged or holds values Python cannot represent") from None
        for cells in rows:
            row += 1
            yield SourceRow(cells, f"{path}: row {row}")


def _batch_rows(batch: Any, pa: Any) -> list[dict[str, Any]]:
    """A batch's rows; float16/float32 cells as `JsonNumber`s in their short form (0.1, not 0.10000000149011612)."""
    import pyarrow.compute as pc

    small = [f.name for f in batch.schema if f.type in (pa.float16(), pa.float32())]
    if small:
        columns = [pc.cast(pc.cast(c, pa.float32()), pa.string()) if f.name in small else c
                   for f, c in zip(batch.schema, batch.columns, strict=True)]
        batch = pa.RecordBatch.from_arrays(columns, names=batch.schema.names)
    rows: list[dict[str, Any]] = batch.to_pylist()
    for cells in rows:
        for name in small:
            text = cells[name]
            if text is not None:  # arrow writes 1.0 as "1": keep it a float, as float64 columns read
                cells[name] = JsonNumber(text if re.search(r"[.eEna]", text) else text + ".0")
    return rows


def _hf_rows(source: SourceConfig) -> Iterator[dict[str, Any]]:
    try:
        import datasets
    except ImportError:
        raise SourceError("source.hf_dataset", "the 'datasets' package is needed: pip install datasets") from None
    name = source.hf_dataset
    row = 0
    try:
        ds = datasets.load_dataset(name, source.config, split=source.split, revision=source.revision,
                                   streaming=True)
        for cells in ds:
            row += 1
            yield SourceRow(dict(cells), f"Hugging Face dataset {name!r}: row {row}", "source.hf_dataset")
    except Exception as exc:  # network, auth, unknown dataset, a damaged shard: all reported the same way
        where = f" (after row {row})" if row else ""
        raise SourceError("source.hf_dataset", f"cannot load Hugging Face dataset {name!r}{where}: {exc}") from None


def _cell_problem(value: Any) -> str | None:
    """Why a cell cannot become prompt text or manifest JSON, or None if it can."""
    stack = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if depth > MAX_DEPTH:
            return f"is nested more than {MAX_DEPTH} levels deep"
        if isinstance(item, JsonNumber):
            if not math.isfinite(float(item)):
                return f"is the number {item}, beyond what JSON output can hold; quote it in the source"
        elif isinstance(item, str):
            if _SURROGATE.search(item):
                return ("holds an unpaired surrogate (a lone \\ud800-style escape in JSON); fix or remove the "
                        "escape (a pair such as \\ud83d\\ude00 is fine)")
        elif item is None or isinstance(item, (bool, int, dt.date, dt.time)):
            continue
        elif isinstance(item, (float, decimal.Decimal)):
            if not item.is_finite() if isinstance(item, decimal.Decimal) else not math.isfinite(item):
                return f"is {item}, not a number a prompt or JSON can hold; write null or a number"
        elif isinstance(item, bytes):
            try:
                item.decode("utf-8")
            except UnicodeDecodeError:
                return "is binary data, not UTF-8 text"
        elif isinstance(item, (list, tuple)):
            stack.extend((v, depth + 1) for v in item)
        elif isinstance(item, dict):
            stack.extend((k, depth + 1) for k in item)
            stack.extend((v, depth + 1) for v in item.values())
        else:
            return f"holds a {type(item).__name__}, which cannot be sent as text"
    return None


def as_text(value: Any) -> str:
    """A cell as prompt text: strings verbatim, None empty, numbers as written, anything else as JSON text.

    Dates are ISO 8601 (`2024-01-01`, `2024-01-01T10:00:00`); bytes are decoded as UTF-8. Lists and objects
    are JSON with the source's key order and numbers; the cell must have passed `SourceRow.get`.
    """
    if isinstance(value, str):
        return value
    if value is None:
        return ""
    if isinstance(value, (dt.date, dt.time)):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.decode("utf-8")
    if isinstance(value, decimal.Decimal):
        return str(value)
    return _json_text(value)


def _json_text(value: Any) -> str:
    if isinstance(value, JsonNumber):
        return str(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_json_text(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_json_text(str(k))}: {_json_text(v)}" for k, v in value.items()) + "}"
    if isinstance(value, (str, bool, int, float)) or value is None:
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, decimal.Decimal):
        return str(value)
    if isinstance(value, (dt.date, dt.time, bytes)):
        return json.dumps(as_text(value), ensure_ascii=False)
    return json.dumps(str(value), ensure_ascii=False)


def json_safe(value: Any) -> Any:
    """A cell as a JSON value: JSON types unchanged (recursively), anything else (bytes, dates, Decimal) as text.

    A `JsonNumber` becomes its number; an integer beyond 64 bits stays text. Dates are ISO 8601.
    """
    if isinstance(value, JsonNumber):
        return value.value()
    if value is None or isinstance(value, (str, bool, int, float)):
        return value
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    if isinstance(value, (dt.date, dt.time)):
        return value.isoformat()
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
    hint = ""
    if len(first) == 1 and any(sep in str(next(iter(first))) for sep in ";\t|"):
        hint = "; datafast reads comma-separated CSV: is this file separated by ';', tabs or '|'?"
    return sorted((field, f"column {column!r} is not in the source (its columns: {have}){hint}")
                  for field, column in columns.items() if column not in first)
