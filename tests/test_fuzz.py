"""Generated specs, source files and result lines thrown at the CLI: never a traceback, only the documented exits.

compile and plan exit 0 or 2; collect 0, 1 or 2. The CLI runs in-process with catch_exceptions=False, so any
unhandled exception fails the test (and hypothesis shrinks it to a small reproduction).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from datafast.cli import main

EXAMPLES = int(os.environ.get("DATAFAST_FUZZ_EXAMPLES", "60"))  # raise for a deeper local run
FUZZ = settings(max_examples=EXAMPLES, deadline=None, derandomize=EXAMPLES <= 60, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

DOCS = "".join(json.dumps({"text": f"Document {i}. " + "Some words about a topic. " * 6, "n": i}) + "\n"
               for i in range(3))
ROWS_CSV = 'review,stars\n"Loud, but works.",4\r\n"Broke after a week\nso sad",1\n'

BASES = {
    "classification": {"datafast": 1, "name": "c", "type": "classification",
                       "classes": [{"name": "pos", "description": "Happy."}, {"name": "neg", "description": "Sad."}],
                       "prompts": ["{num_samples} {language_name} {label_name} {label_description} {{tone}}"],
                       "expansion": {"placeholders": {"tone": ["formal", "casual"]}, "combinatorial": False,
                                     "num_random_samples": 1, "seed": 3},
                       "generation": {"temperature": 0.7, "max_tokens": 512},
                       "models": ["openai:gpt-4.1-mini", "anthropic:claude-haiku-4-5"]},
    "text": {"datafast": 1, "name": "t", "type": "text", "document_types": ["blog post"], "topics": ["tea", "rain"],
             "languages": {"en": "English", "no": "Norwegian"}, "models": ["gemini:gemini-2.5-flash"]},
    "conversation": {"datafast": 1, "name": "v", "type": "conversation", "domain": "cooking",
                     "topics_and_subtopics": {"bread": ["sourdough"]}, "personas": ["a chef"], "max_turns": 2,
                     "models": {"questions": ["openai:m"], "assistant": ["ollama:gemma3:4b"], "user": ["openai:m"]}},
    "mcq": {"datafast": 1, "name": "m", "type": "mcq", "source": {"file": "docs.jsonl"}, "min_document_length": 10,
            "models": ["openai:gpt-4.1-mini"]},
    "preference": {"datafast": 1, "name": "p", "type": "preference", "input_documents": ["One.", "Two."],
                   "llm_as_judge": True, "models": ["openai:gpt-4.1-mini"]},
    "generic": {"datafast": 1, "name": "g", "type": "generic", "source": {"file": "rows.csv"},
                "input_columns": ["review"], "forward_columns": ["stars"], "output_columns": ["summary"],
                "models": ["openai:gpt-4.1-mini"]},
}

# plain YAML that changes meaning unquoted, YAML structure, and bytes that break text
TOKENS = ["1.10", "1_000", "0o17", "017", "12:30", "1e3", ".5", "no", "on", "~", "null", "2024-01-01", "0x1F",
          ".nan", "-.inf", "=", "true", "!!int x", "!!float ", "!!binary ", "!!timestamp 1", "!!set ", "!!python/name:os.system",
          "!custom ", "&a ", "*a", "*nope", "<<: ", "<<: *a", "? ", ": ", "- ", "-", "{", "}", "[", "]", ",", "'", '"', "#",
          "|", ">", "%YAML 1.1\n", "---\n", "...\n", "\t", "\n", "\n  ", "    ", "{{x}}", "{x}", "{", "\\", "\\ud800",
          "\ufeff", "\x00", "\x85", "\u2028", "e\u0301", "\U0001F600", "9" * 30, "-" * 3]
SURROGATES = ["\ud800", "a\udfffb", "\ud83d\ude00", "\ud83d"]  # lone surrogates, and a valid pair
BYTE_TOKENS = [b"\xff", b"\xfe\xff", b"\xc3", b"\xed\xa0\x80", b"\r", b"\r\n", b"\x00"]

scalars = st.one_of(st.none(), st.booleans(), st.integers(min_value=-(2**70), max_value=2**70),
                    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=12), st.sampled_from(TOKENS),
                    st.sampled_from(SURROGATES))
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(
    st.text(max_size=8) | st.sampled_from(["name", "description", "file", "placeholders", "seed", "type"]), inner,
    max_size=3), max_leaves=8)


def _paths(data: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    yield prefix
    if isinstance(data, dict):
        for key, value in data.items():
            yield from _paths(value, prefix + (key,))
    elif isinstance(data, list):
        for i, value in enumerate(data):
            yield from _paths(value, prefix + (i,))


@st.composite
def structured_specs(draw: st.DrawFn) -> bytes:
    """A valid spec with some values replaced, keys dropped or added: every kind of wrong type."""
    spec = json.loads(json.dumps(BASES[draw(st.sampled_from(sorted(BASES)))]))
    for _ in range(draw(st.integers(0, 4))):
        paths = [p for p in _paths(spec) if p]
        path = draw(st.sampled_from(paths))
        parent = spec
        for el in path[:-1]:
            parent = parent[el]
        action = draw(st.sampled_from(["replace", "drop", "add"]))
        if action == "replace":
            parent[path[-1]] = draw(values)
        elif action == "drop" and isinstance(parent, dict):
            del parent[path[-1]]
        elif isinstance(parent, dict):
            parent[draw(st.text(max_size=10))] = draw(values)
        else:
            parent.append(draw(values))
    return yaml.safe_dump(spec, sort_keys=False, allow_unicode=True).encode("utf-8", "surrogatepass")


@st.composite
def damaged_text(draw: st.DrawFn, base: bytes) -> bytes:
    """`base` with a few tokens inserted, ranges deleted or lines repeated."""
    data = bytearray(base)
    for _ in range(draw(st.integers(1, 5))):
        at = draw(st.integers(0, len(data)))
        action = draw(st.sampled_from(["token", "bytes", "delete", "repeat", "truncate"]))
        if action == "token":
            data[at:at] = draw(st.sampled_from(TOKENS)).encode("utf-8", "surrogatepass")
        elif action == "bytes":
            data[at:at] = draw(st.sampled_from(BYTE_TOKENS) | st.binary(max_size=6))
        elif action == "delete":
            del data[at:at + draw(st.integers(1, 20))]
        elif action == "repeat":
            end = data.find(b"\n", at)
            data[at:at] = data[at:end + 1 if end >= 0 else len(data)]
        else:
            del data[at:]
    return bytes(data)


def _base_text(kind: str) -> bytes:
    return yaml.safe_dump(BASES[kind], sort_keys=False).encode()


spec_texts = st.one_of(
    structured_specs(),
    st.sampled_from(sorted(BASES)).flatmap(lambda kind: damaged_text(_base_text(kind))),
    st.binary(max_size=200),
)


@contextmanager
def workdir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="fuzz-"))
    try:
        (path / "docs.jsonl").write_text(DOCS, encoding="utf-8")
        (path / "rows.csv").write_text(ROWS_CSV, encoding="utf-8", newline="")
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def run(*args: str | Path) -> Any:
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def assert_compile_and_plan(spec: Path) -> None:
    compiled = run("compile", spec, "-o", spec.parent / "out")
    assert compiled.exit_code in (0, 2), compiled.output
    planned = run("plan", spec)
    assert planned.exit_code in (0, 2), planned.output
    if compiled.exit_code == 2:
        assert compiled.stderr.startswith("error: ") and not (spec.parent / "out").exists()
    assert (compiled.exit_code == 0) == (planned.exit_code == 0), (compiled.output, planned.output)


@FUZZ
@given(spec_texts)
def test_generated_specs_never_raise(text: bytes) -> None:
    with workdir() as tmp:
        spec = tmp / "spec.yaml"
        spec.write_bytes(text)
        assert_compile_and_plan(spec)


def _parquet_bytes() -> bytes:
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    with tempfile.TemporaryDirectory() as tmp:
        table = pa.table({"text": [f"Document {i}. " + "Words. " * 5 for i in range(50)], "x": list(range(50)),
                          "f": pa.array([0.1 * i for i in range(50)], type=pa.float32())})
        pq.write_table(table, Path(tmp) / "t.parquet", row_group_size=10)
        return (Path(tmp) / "t.parquet").read_bytes()


VALID_SOURCES = {
    "jsonl": DOCS.encode(),
    "csv": ('text,n\n"' + "A long enough document, with commas. " * 3 + '",1\r\nshort,2\n').encode(),
    "txt": (b"First document line, long enough to pass.\r\n\nSecond document, also long enough.\r"),
}


@st.composite
def source_files(draw: st.DrawFn) -> tuple[str, bytes]:
    ext = draw(st.sampled_from(["jsonl", "jsonl", "csv", "txt", "parquet"]))
    valid = _parquet_bytes() if ext == "parquet" else VALID_SOURCES[ext]
    kind = draw(st.sampled_from(["damaged", "random", "json-rows", "json-rows"] if ext == "jsonl" else ["damaged", "random"]))
    if kind == "random":
        return ext, draw(st.binary(max_size=300))
    if kind == "json-rows":
        text = st.sampled_from(SURROGATES) | scalars | values
        row = st.fixed_dictionaries({"text": text, "context": text, "n": values, "x": values, "f": values})
        rows: list[Any] = draw(st.lists(row, min_size=1, max_size=4))
        if draw(st.booleans()):  # a line that is not an object
            rows.insert(draw(st.integers(0, len(rows))), draw(values))
        ascii_only = draw(st.sampled_from([True, True, False]))  # False: a lone surrogate is written as bad UTF-8
        return ext, "\n".join(json.dumps(r, ensure_ascii=ascii_only) for r in rows).encode("utf-8", "surrogatepass")
    return ext, draw(damaged_text(valid))


SOURCE_SPECS = {
    "mcq": "datafast: 1\nname: m\ntype: mcq\nsource: {{file: src.{ext}}}\nmin_document_length: 1\n"
           "context_column: {context}\nmodels: [openai:gpt-4.1-mini]\n",
    "preference": "datafast: 1\nname: p\ntype: preference\nsource: {{file: src.{ext}}}\nmodels: [openai:gpt-4.1-mini]\n",
    "generic": "datafast: 1\nname: g\ntype: generic\nsource: {{file: src.{ext}}}\ninput_columns: [text]\n"
               "forward_columns: [{context}]\noutput_columns: [out]\nmodels: [openai:gpt-4.1-mini]\n",
}


@FUZZ
@given(source_files(), st.sampled_from(sorted(SOURCE_SPECS)), st.sampled_from(["n", "x", "f", "context"]))
def test_generated_source_files_never_raise(source: tuple[str, bytes], kind: str, context: str) -> None:
    ext, content = source
    with workdir() as tmp:
        (tmp / f"src.{ext}").write_bytes(content)
        spec = tmp / "spec.yaml"
        spec.write_text(SOURCE_SPECS[kind].format(ext=ext, context=context), encoding="utf-8")
        assert_compile_and_plan(spec)


@pytest.fixture(scope="module")
def compiled_dirs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, list[str]]]:
    """Compiled output dirs (one single-stage, one multi-stage) and their request ids."""
    out: dict[str, tuple[Path, list[str]]] = {}
    root = tmp_path_factory.mktemp("collect")
    for kind in ("classification", "preference"):
        spec = root / f"{kind}.yaml"
        spec.write_text(yaml.safe_dump(BASES[kind]), encoding="utf-8")
        result = run("compile", spec, "-o", root / kind)
        assert result.exit_code == 0, result.output
        lines = (root / kind / "manifest.jsonl").read_text("utf-8").splitlines()
        out[kind] = (root / kind, [json.loads(line)["id"] for line in lines])
    return out


def _answers() -> st.SearchStrategy[str]:
    item = st.fixed_dictionaries({"text": st.text(max_size=20)}) | st.fixed_dictionaries({"question": st.text(max_size=20)})
    return st.one_of(st.text(max_size=30), values.map(json.dumps),
                     st.lists(item, max_size=3).map(lambda items: json.dumps({"items": items})))


@st.composite
def stored_result(draw: st.DrawFn, ids: list[str]) -> dict[str, Any]:
    """A normalized result as runtimes store it (DESIGN.md §3), with any answer text a model could send."""
    ok = draw(st.booleans())
    tokens = st.integers(0, 10**6)
    return {"id": draw(st.sampled_from(ids) | st.text(alphabet="0123456789abcdef", min_size=1, max_size=32)),
            "status": "ok" if ok else "error", "text": draw(_answers()) if ok else None,
            "usage": {"input_tokens": draw(tokens), "output_tokens": draw(tokens)},
            "finish_reason": draw(st.sampled_from(["stop", "length", "content_filter", None])),
            "error": None if ok else {"kind": draw(st.text(max_size=10)), "message": draw(st.text(max_size=20)),
                                      "retryable": draw(st.booleans())},
            "runtime": "openai", "model": "gpt-4.1-mini"}


@st.composite
def result_lines(draw: st.DrawFn, ids: list[str], malformed: bool) -> bytes:
    """Stored results, some torn by a kill mid-append; with `malformed`, also records of the wrong shape."""
    lines: list[bytes] = []
    kinds = ["result", "result", "torn"] + (["mangled", "json", "bytes"] if malformed else [])
    for _ in range(draw(st.integers(1, 6))):
        kind = draw(st.sampled_from(kinds))
        record = draw(stored_result(ids))
        line = json.dumps(record, ensure_ascii=draw(st.booleans())).encode("utf-8", "surrogatepass")
        if kind == "result":
            lines.append(line)
        elif kind == "torn":
            lines.append(line[:draw(st.integers(0, len(line) - 1))])
        elif kind == "mangled":
            key = draw(st.sampled_from(sorted(record)))
            if draw(st.booleans()):
                del record[key]
            else:
                record[key] = draw(values)
            lines.append(json.dumps(record).encode())
        elif kind == "json":
            lines.append(json.dumps(draw(values)).encode())
        else:
            lines.append(draw(st.binary(max_size=40)))
    return b"\n".join(lines) + b"\n"


def _collect(compiled_dirs: dict[str, tuple[Path, list[str]]], data: st.DataObject, malformed: bool) -> None:
    kind = data.draw(st.sampled_from(sorted(compiled_dirs)))
    src, ids = compiled_dirs[kind]
    content = data.draw(result_lines(ids, malformed))
    with workdir() as tmp:
        out = tmp / "out"
        shutil.copytree(src, out)
        (out / "results").mkdir(exist_ok=True)
        (out / "results" / "fuzz.jsonl").write_bytes(content)
        result = run("collect", out)
        assert result.exit_code in (0, 1, 2), result.output


@settings(FUZZ, max_examples=max(EXAMPLES * 2 // 3, 1))
@given(data=st.data())
def test_collect_of_random_answers_never_raises(compiled_dirs, data: st.DataObject) -> None:
    _collect(compiled_dirs, data, malformed=False)


@settings(FUZZ, max_examples=max(EXAMPLES * 2 // 3, 1))
@given(data=st.data())
def test_collect_of_malformed_result_lines_never_raises(compiled_dirs, data: st.DataObject) -> None:
    _collect(compiled_dirs, data, malformed=True)
