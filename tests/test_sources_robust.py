"""Damaged source files: each row is read as written, or compile exits 2 naming the file, the line and a fix."""

from __future__ import annotations

import json
import tracemalloc
from pathlib import Path

import pytest

from datafast.compiler import sources
from datafast.compiler.sources import SourceError, as_text, iter_rows, json_safe
from datafast.compiler.spec import SourceConfig

GENERIC = """\
datafast: 1
name: t
type: generic
source: {{file: {file}}}
input_columns: [text]
forward_columns: {forward}
output_columns: [summary]
prompts: ["{{num_samples}} {{language_name}} <<{{text}}>>"]
models: [openai:gpt-4.1-mini]
"""


def compile_source(tmp_path: Path, cli, name: str, content: bytes, forward: str = "[]"):
    (tmp_path / name).write_bytes(content)
    spec = tmp_path / "spec.yaml"
    spec.write_text(GENERIC.format(file=name, forward=forward), encoding="utf-8")
    result = cli("compile", spec, "-o", tmp_path / "out")
    return spec, result


def prompts_of(tmp_path: Path) -> list[str]:
    lines = (tmp_path / "out" / "manifest.jsonl").read_text("utf-8").splitlines()
    texts = [json.loads(line)["messages"][-1]["content"] for line in lines]
    return [t[t.index("<<") + 2:t.rindex(">>")] for t in texts]


def metas_of(tmp_path: Path) -> list[dict]:
    return [json.loads(line)["meta"] for line in (tmp_path / "out" / "manifest.jsonl").read_text("utf-8").splitlines()]


# (id, file name, bytes, the texts that must reach the prompts, in order)
READABLE = [
    ("utf8-bom", "d.jsonl", b'\xef\xbb\xbf{"text": "caf\xc3\xa9"}\n', ["café"]),
    ("crlf-jsonl", "d.jsonl", b'{"text": "a"}\r\n{"text": "b"}\r\n', ["a", "b"]),
    ("lone-cr-jsonl", "d.jsonl", b'{"text": "a"}\r{"text": "b"}\r', ["a", "b"]),
    ("blank-lines", "d.jsonl", b'\n{"text": "a"}\n   \n\n{"text": "b"}\n\n', ["a", "b"]),
    ("no-final-newline", "d.jsonl", b'{"text": "a"}\n{"text": "b"}', ["a", "b"]),
    ("numbers-as-written", "d.jsonl", b'{"text": 1.10}\n{"text": 1e3}\n{"text": -0}\n{"text": 12345678901234567890123}\n',
     ["1.10", "1e3", "-0", "12345678901234567890123"]),
    ("other-types", "d.jsonl", b'{"text": true}\n{"text": [1.50, "x"]}\n{"text": {"b": 1, "a": null}}\n{"text": "s"}\n',
     ["true", '[1.50, "x"]', '{"b": 1, "a": null}', "s"]),
    ("null-is-empty", "d.jsonl", b'{"text": null}\n{"other": 1}\n', ["", ""]),
    ("escaped-surrogate-pair", "d.jsonl", b'{"text": "\\ud83d\\ude00"}\n', ["\U0001F600"]),
    ("large-json-field", "d.jsonl", b'{"text": "' + b"x" * 1_000_000 + b'"}\n', ["x" * 1_000_000]),
    ("csv-crlf", "d.csv", b"text,n\r\nab,1\r\ncd,2\r\n", ["ab", "cd"]),
    ("csv-quoted-newline-and-comma", "d.csv", b'text\n"line 1\nline 2, ""quoted"""\n', ['line 1\nline 2, "quoted"']),
    ("csv-quoted-crlf-kept", "d.csv", b'text\r\n"a\r\nb"\r\n', ["a\r\nb"]),
    ("csv-beyond-default-field-limit", "d.csv", b'text\n"' + b"y" * 200_000 + b'"\n', ["y" * 200_000]),
    ("csv-bom", "d.csv", b"\xef\xbb\xbftext\nz\n", ["z"]),
    ("txt-line-endings", "d.txt", b"a\r\nb\rc\n\n  \nd", ["a", "b", "c", "d"]),
]


@pytest.mark.parametrize("case", READABLE, ids=[c[0] for c in READABLE])
def test_damaged_but_readable_sources_arrive_as_written(case, tmp_path, cli):
    _, name, content, expected = case
    _, result = compile_source(tmp_path, cli, name, content)
    assert result.exit_code == 0, result.stderr
    assert prompts_of(tmp_path) == expected


# (id, file name, bytes, line of the file named, fragments of the message)
UNREADABLE = [
    ("invalid-utf8", "d.jsonl", b'{"text": "ok"}\n{"text": "caf\xe9"}\n', 2, ["not valid UTF-8 (byte 0xe9", "iconv -f"]),
    ("utf16-bom", "d.jsonl", '{"text": "a"}\n'.encode("utf-16"), 1, ["UTF-16", "iconv -f UTF-16 -t UTF-8"]),
    ("utf16-no-bom", "d.csv", "text\nabc\n".encode("utf-16-le"), 1, ["NUL bytes", "iconv -f UTF-16"]),
    ("lone-surrogate-escape", "d.jsonl", b'{"text": "a"}\n{"text": "x\\ud800y"}\n', 2,
     ["column 'text' holds an unpaired surrogate"]),
    ("truncated-last-line", "d.jsonl", b'{"text": "a"}\n{"text": "b"}\n{"text": "c', 3,
     ["invalid JSON", "cut short"]),
    ("not-an-object", "d.jsonl", b'{"text": "a"}\n["text"]\n', 2, ["line 2 is not a JSON object"]),
    ("json-array-file", "d.jsonl", b'[\n  {"text": "a"}\n]\n', 1, ["jq -c"]),
    ("nan", "d.jsonl", b'{"text": NaN}\n', 1, ["NaN is not JSON"]),
    ("duplicate-key", "d.jsonl", b'{"text": "a", "text": "b"}\n', 1, ["'text' appears twice"]),
    ("deep-nesting", "d.jsonl", b'{"text": ' + b"[" * 100_000 + b"]" * 100_000 + b"}\n", 1, ["nested too deeply"]),
    ("nested-beyond-limit", "d.jsonl", b'{"text": ' + b"[" * 150 + b"]" * 150 + b"}\n", 1, ["nested more than"]),
    ("number-beyond-double", "d.jsonl", b'{"text": 1e999}\n', 1, ["1e999", "quote it"]),
    ("csv-ragged-row", "d.csv", b"text,n\na,1\nb, c,2\n", 3, ["3 fields where the header has 2", "quote fields"]),
    ("csv-short-row", "d.csv", b"text,n\na,1\nb\n", 3, ["1 fields where the header has 2"]),
    ("csv-unclosed-quote", "d.csv", b'text\na\n"b\nc\n', 3, ["never closed"]),
    ("csv-stray-quote", "d.csv", b'text\n"a"b\n', 2, ["CSV error"]),
    ("csv-duplicate-header", "d.csv", b"text,text\na,b\n", 1, ["column 'text' twice"]),
    ("txt-invalid-utf8", "d.txt", b"a\nb\n\xff\xfe\xfa\n", 3, ["not valid UTF-8"]),
]


@pytest.mark.parametrize("case", UNREADABLE, ids=[c[0] for c in UNREADABLE])
def test_unreadable_sources_exit_2_naming_file_and_line(case, tmp_path, cli):
    _, name, content, line, fragments = case
    spec, result = compile_source(tmp_path, cli, name, content)
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith(f"error: {spec}:4: source.file: cannot read {tmp_path / name}:{line}: "), result.stderr
    for fragment in fragments:
        assert fragment in result.stderr
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert not (tmp_path / "out").exists()


def test_a_line_beyond_the_limit_is_an_error_not_a_memory_spike(tmp_path, cli, monkeypatch):
    monkeypatch.setattr(sources, "MAX_LINE_CHARS", 1000)
    spec, result = compile_source(tmp_path, cli, "d.jsonl", b'{"text": "a"}\n{"text": "' + b"z" * 5000 + b'"}\n')
    assert result.exit_code == 2
    assert "d.jsonl:2: line longer than 1,000 characters" in result.stderr


def test_a_bad_cell_in_an_unused_column_is_no_error(tmp_path, cli):
    _, result = compile_source(tmp_path, cli, "d.jsonl", b'{"text": "a", "junk": "\\udfff", "n": 1e999}\n')
    assert result.exit_code == 0, result.stderr
    assert prompts_of(tmp_path) == ["a"]


def test_forwarded_numbers_are_json_numbers_of_the_value_written(tmp_path, cli):
    content = b'{"text": "a", "n": 1.10}\n{"text": "b", "n": 7}\n{"text": "c", "n": 123456789012345678901234}\n'
    _, result = compile_source(tmp_path, cli, "d.jsonl", content, forward="[n]")
    assert result.exit_code == 0, result.stderr
    assert [m["n"] for m in metas_of(tmp_path)] == [1.1, 7, "123456789012345678901234"]


def test_rows_are_read_lazily_with_flat_memory(tmp_path):
    path = tmp_path / "big.jsonl"
    with path.open("w") as fh:
        for i in range(100_000):
            fh.write(json.dumps({"text": f"row {i} " + "w" * 80}) + "\n")
        fh.write("{broken\n")
    rows = iter_rows(SourceConfig(file=str(path)), tmp_path)
    assert next(rows)["text"].startswith("row 0 ")  # the broken last line is not read yet
    tracemalloc.start()
    try:
        with pytest.raises(SourceError, match=r"big.jsonl:100001: invalid JSON"):
            for _ in rows:
                pass
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert path.stat().st_size > 9_000_000 and peak < 1_000_000


pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")


def _parquet(tmp_path: Path, table) -> bytes:
    pq.write_table(table, tmp_path / "tmp.parquet")
    return (tmp_path / "tmp.parquet").read_bytes()


def test_parquet_non_string_columns_read_as_written(tmp_path, cli):
    import datetime as dt

    table = pa.table({
        "text": pa.array([0.1, 1.0, None], type=pa.float32()),
        "n": pa.array([3, 4, 5], type=pa.int64()),
    })
    _, result = compile_source(tmp_path, cli, "d.parquet", _parquet(tmp_path, table), forward="[n]")
    assert result.exit_code == 0, result.stderr
    assert prompts_of(tmp_path) == ["0.1", "1.0", ""]
    assert [m["n"] for m in metas_of(tmp_path)] == [3, 4, 5]
    assert as_text(dt.date(2024, 1, 1)) == "2024-01-01" and json_safe(dt.date(2024, 1, 1)) == "2024-01-01"


@pytest.mark.parametrize("column,fragment", [
    (pa.array([1.5, float("nan")]), "row 2: column 'text' is nan"),
    (pa.array([b"ok", b"\xff\xfe"], type=pa.binary()), "row 2: column 'text' is binary data, not UTF-8 text"),
])
def test_parquet_cells_that_cannot_be_sent_name_row_and_column(tmp_path, cli, column, fragment):
    _, result = compile_source(tmp_path, cli, "d.parquet", _parquet(tmp_path, pa.table({"text": column})))
    assert result.exit_code == 2
    assert fragment in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize("damage", ["random", "truncated"])
def test_corrupt_parquet_exits_2(tmp_path, cli, damage):
    good = _parquet(tmp_path, pa.table({"text": ["a" * 50] * 5000}))
    content = bytes(range(256)) * 40 if damage == "random" else good[: len(good) // 2]
    spec, result = compile_source(tmp_path, cli, "d.parquet", content)
    assert result.exit_code == 2
    assert f"error: {spec}:4: source.file: cannot read {tmp_path / 'd.parquet'} as Parquet" in result.stderr
