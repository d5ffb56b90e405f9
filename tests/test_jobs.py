"""JobFileWriter: file layout, splitting at the vendor limits, determinism, warnings and errors."""

from __future__ import annotations

import datetime
import json
import os
import re
import subprocess
import sys
import textwrap
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import orjson
import pytest

from datafast.compiler.jobs import JobFile, JobFileError, JobFileWriter, load_limits, safe_name
from datafast.compiler.vendors import RENDERERS, AnthropicRenderer, Diagnostics, UnsupportedFeature

SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"items": {"type": "array", "minItems": 1, "maxItems": 5,
                             "items": {"type": "object", "properties": {"text": {"type": "string", "minLength": 1}},
                                       "required": ["text"], "additionalProperties": False}}},
    "required": ["items"],
    "additionalProperties": False,
}
SCHEMAS = {"generate-1a2b3c4d5e6f7a8b": SCHEMA, "judge-0011223344556677": SCHEMA}
SYSTEM = {"role": "system", "content": "You write reviews."}
PARAMS = {"max_tokens": 256, "temperature": 0.7}


def make_request(i: int, model: str = "openai:gpt-4.1-mini", stage: str = "generate") -> dict[str, Any]:
    return {"id": f"{i:032x}", "stage": stage, "model": model,
            "messages": [SYSTEM, {"role": "user", "content": f"Write review number {i}."}],
            "params": PARAMS, "schema": f"{stage}-1a2b3c4d5e6f7a8b" if stage == "generate" else "judge-0011223344556677",
            "meta": {}}


def write(out_dir: Path, requests: Iterable[dict[str, Any]], **kwargs: Any) -> tuple[list[JobFile], JobFileWriter]:
    writer = JobFileWriter(out_dir, SCHEMAS, **kwargs)
    for request in requests:
        writer.add(request)
    return writer.close(), writer


def lines_of(out_dir: Path, job: JobFile) -> list[dict[str, Any]]:
    data = (out_dir / job.path).read_bytes()
    assert data.endswith(b"\n") and b"\r" not in data
    return [orjson.loads(line) for line in data.splitlines()]


def line_id(vendor: str, line: dict[str, Any]) -> str:
    return line["key"] if vendor == "gemini" else line["custom_id"]


def line_model(vendor: str, line: dict[str, Any]) -> str | None:
    return {"openai": lambda: line["body"]["model"], "anthropic": lambda: line["params"]["model"],
            "gemini": lambda: None}[vendor]()


# -- layout ---------------------------------------------------------------------------------------------------


def test_split_by_request_count(tmp_path):
    files, _ = write(tmp_path, (make_request(i) for i in range(10)), limits_overrides={"openai": {"max_requests": 3}})
    assert [(f.path, f.requests) for f in files] == [
        ("jobs/openai/generate-gpt-4.1-mini-001.jsonl", 3),
        ("jobs/openai/generate-gpt-4.1-mini-002.jsonl", 3),
        ("jobs/openai/generate-gpt-4.1-mini-003.jsonl", 3),
        ("jobs/openai/generate-gpt-4.1-mini-004.jsonl", 1),
    ]
    ids = [line["custom_id"] for f in files for line in lines_of(tmp_path, f)]
    assert ids == [f"{i:032x}" for i in range(10)]  # manifest order kept across files
    for f in files:
        assert (f.vendor, f.stage, f.model) == ("openai", "generate", "openai:gpt-4.1-mini")
        assert f.bytes == (tmp_path / f.path).stat().st_size
        assert len(lines_of(tmp_path, f)) == f.requests


def test_split_by_bytes(tmp_path):
    one_line = len(AnthropicRenderer(SCHEMAS, Diagnostics()).render(make_request(0, "anthropic:claude-haiku-4-5")))
    limit = int(one_line * 2.5)
    requests = [make_request(i, "anthropic:claude-haiku-4-5") for i in range(7)]
    files, _ = write(tmp_path, requests, limits_overrides={"anthropic": {"max_bytes": limit}})
    assert [f.requests for f in files] == [2, 2, 2, 1]
    for f, following in zip(files, files[1:], strict=False):
        assert f.bytes <= limit
        first_of_next = (tmp_path / following.path).read_bytes().split(b"\n")[0] + b"\n"
        assert f.bytes + len(first_of_next) > limit  # rotated only when the next line would not fit


def test_line_larger_than_byte_limit_is_an_error(tmp_path):
    with pytest.raises(JobFileError) as info:
        write(tmp_path, [make_request(5)], limits_overrides={"openai": {"max_bytes": 100}})
    message = str(info.value)
    assert f"{5:032x}" in message and "100 bytes" in message and message.startswith("openai: ")
    assert not (tmp_path / "jobs" / "openai").exists() or not any((tmp_path / "jobs" / "openai").iterdir())


def test_one_model_and_stage_per_file_with_interleaved_requests(tmp_path):
    models = ["openai:gpt-4.1-mini", "anthropic:claude-haiku-4-5", "gemini:gemini-2.5-flash", "openai:gpt-4.1",
              "ollama:gemma3:4b", "local:smollm2-135m"]
    requests = [make_request(i * 10 + m, model, stage)
                for i in range(5) for stage in ("generate", "judge") for m, model in enumerate(models)]
    files, _ = write(tmp_path, requests, limits_overrides={"openai": {"max_requests": 2}, "gemini": {"max_requests": 4}})
    assert sorted({f.vendor for f in files}) == ["anthropic", "gemini", "openai"]
    assert sorted(p.name for p in (tmp_path / "jobs").iterdir()) == ["anthropic", "gemini", "openai"]
    by_file: dict[tuple[str, str], list[str]] = {}
    for f in files:
        lines = lines_of(tmp_path, f)
        runtime, _, name = f.model.partition(":")
        assert runtime == f.vendor
        assert {line_model(f.vendor, line) for line in lines} <= {name, None}
        expected = [r["id"] for r in requests if r["model"] == f.model and r["stage"] == f.stage]
        by_file.setdefault((f.model, f.stage), []).extend(line_id(f.vendor, line) for line in lines)
        assert Path(f.path).name.startswith(f"{f.stage}-{name}-")
        assert f.requests <= {"openai": 2, "gemini": 4, "anthropic": 100_000}[f.vendor]
        assert set(by_file[(f.model, f.stage)]) <= set(expected)
    for (model, stage), ids in by_file.items():
        assert ids == [r["id"] for r in requests if r["model"] == model and r["stage"] == stage]
    assert [f.path for f in files if f.model == "openai:gpt-4.1" and f.stage == "judge"] == [
        "jobs/openai/judge-gpt-4.1-001.jsonl", "jobs/openai/judge-gpt-4.1-002.jsonl",
        "jobs/openai/judge-gpt-4.1-003.jsonl"]
    assert files == sorted(files, key=lambda f: (f.vendor, f.stage, f.model))


def test_runtimes_without_renderer_write_nothing(tmp_path):
    files, writer = write(tmp_path, [make_request(1, "ollama:gemma3:4b"), make_request(2, "local:smollm2-135m")])
    assert files == [] and writer.warnings == []
    assert not (tmp_path / "jobs").exists()


def test_unsafe_model_names_get_safe_distinct_file_names(tmp_path):
    files, _ = write(tmp_path, [make_request(1, "gemini:models/Gemini-X"), make_request(2, "gemini:models-gemini-x")])
    names = [Path(f.path).name for f in files]
    assert len(set(names)) == 2
    assert all(re.fullmatch(r"[a-z0-9][a-z0-9._-]*\.jsonl", n) for n in names)


def test_stage_model_name_collision_is_disambiguated(tmp_path):
    a = make_request(1, "openai:b-c", "a")
    b = make_request(2, "openai:c", "a-b")
    schemas = {"s": SCHEMA}
    writer = JobFileWriter(tmp_path, schemas)
    for r in (a, b):
        writer.add({**r, "schema": "s"})
    paths = [f.path for f in writer.close()]
    assert len(set(paths)) == 2
    assert "jobs/openai/a-b-c-001.jsonl" in paths


@pytest.mark.parametrize(("name", "expected"), [("generate", "generate"), ("gpt-4.1-mini", "gpt-4.1-mini")])
def test_safe_name_keeps_safe_names(name, expected):
    assert safe_name(name) == expected


def test_safe_name_is_deterministic_and_distinct():
    assert safe_name("A/b") == safe_name("A/b") != safe_name("a/b")
    assert safe_name("../x").startswith("x-")
    assert "/" not in safe_name("a/../../b") and not safe_name("..").startswith(".")


# -- determinism ----------------------------------------------------------------------------------------------


def _mixed_requests() -> list[dict[str, Any]]:
    models = ["openai:gpt-4.1-mini", "anthropic:claude-haiku-4-5", "gemini:gemini-2.5-flash"]
    return [make_request(i * 3 + m, model) for i in range(20) for m, model in enumerate(models)]


def _snapshot(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*.jsonl"))}


def test_same_input_gives_identical_bytes(tmp_path):
    limits = {"openai": {"max_requests": 7}}
    files_a, writer_a = write(tmp_path / "a", _mixed_requests(), limits_overrides=limits)
    files_b, writer_b = write(tmp_path / "b", _mixed_requests(), limits_overrides=limits)
    assert files_a == files_b
    assert writer_a.warnings == writer_b.warnings
    assert _snapshot(tmp_path / "a") == _snapshot(tmp_path / "b") != {}


def test_bytes_do_not_depend_on_hash_seed(tmp_path):
    script = textwrap.dedent(f"""
        import sys
        from pathlib import Path
        sys.path.insert(0, {str(Path(__file__).parent.parent)!r})
        from tests.test_jobs import _mixed_requests, write
        write(Path(sys.argv[1]), _mixed_requests())
    """)
    for seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        subprocess.run([sys.executable, "-c", script, str(tmp_path / seed)], check=True, env=env)
    write(tmp_path / "here", _mixed_requests())
    assert _snapshot(tmp_path / "1") == _snapshot(tmp_path / "2") == _snapshot(tmp_path / "here")


# -- warnings and errors --------------------------------------------------------------------------------------


def test_warnings_are_deduplicated_across_requests(tmp_path):
    requests = [make_request(i, "anthropic:claude-haiku-4-5") for i in range(50)]
    requests = [{**r, "params": {"max_tokens": 9, "seed": 3}} for r in requests]
    _, writer = write(tmp_path, requests)
    assert writer.warnings == [
        "anthropic: schema 'generate-1a2b3c4d5e6f7a8b' keyword 'minLength' at items[].text is not enforced by the "
        "vendor; moved into the description",
        "anthropic: schema 'generate-1a2b3c4d5e6f7a8b' keyword 'maxItems' at items is not enforced by the vendor; "
        "moved into the description",
        "anthropic: parameter 'seed' for model 'claude-haiku-4-5' is not supported by the vendor; not sent",
    ]
    assert all(isinstance(w, str) for w in writer.warnings)
    assert [w.keyword for w in writer.diagnostics] == ["minLength", "maxItems", "seed"]


def test_strict_mode_raises_from_add(tmp_path):
    writer = JobFileWriter(tmp_path, SCHEMAS, strict=True)
    with pytest.raises(UnsupportedFeature) as info:
        writer.add(make_request(1, "gemini:gemini-2.5-flash"))
    assert (info.value.vendor, info.value.keyword, info.value.path) == ("gemini", "minLength", "items[].text")
    writer.close()


def test_duplicate_id_in_a_file_is_an_error(tmp_path):
    writer = JobFileWriter(tmp_path, SCHEMAS)
    writer.add(make_request(1))
    with pytest.raises(JobFileError, match="duplicate request id"):
        writer.add(make_request(1))
    writer.close()


def test_add_after_close_is_an_error(tmp_path):
    writer = JobFileWriter(tmp_path, SCHEMAS)
    writer.close()
    with pytest.raises(JobFileError, match="after close"):
        writer.add(make_request(1))


def test_context_manager_closes_files(tmp_path):
    with JobFileWriter(tmp_path, SCHEMAS) as writer:
        writer.add(make_request(1))
    assert (tmp_path / "jobs/openai/generate-gpt-4.1-mini-001.jsonl").stat().st_size > 0
    assert writer.close()[0].requests == 1


# -- limits table ---------------------------------------------------------------------------------------------


def test_limits_table_is_dated_sourced_and_covers_every_renderer():
    import datafast.compiler as compiler_pkg

    table = json.loads((Path(compiler_pkg.__file__).parent / "data" / "limits.json").read_text())
    datetime.date.fromisoformat(table["checked"])
    assert set(table["vendors"]) == set(RENDERERS)
    for row in table["vendors"].values():
        assert row["sources"] and row["max_requests"] > 0 and row["max_bytes"] > 0
    limits = load_limits()
    assert (limits["openai"].max_requests, limits["openai"].max_bytes) == (50_000, 200_000_000)
    assert (limits["anthropic"].max_requests, limits["anthropic"].max_bytes) == (100_000, 256_000_000)


def test_limits_overrides_merge_per_field():
    limits = load_limits({"openai": {"max_requests": 10}})
    assert (limits["openai"].max_requests, limits["openai"].max_bytes) == (10, 200_000_000)


@pytest.mark.parametrize(
    ("overrides", "match"),
    [
        ({"openia": {"max_requests": 1}}, "unknown vendor 'openia'"),
        ({"openai": {"max_lines": 1}}, "unknown field"),
        ({"openai": {"max_bytes": 0}}, "not a positive integer"),
        ({"openai": {"max_bytes": True}}, "not a positive integer"),
    ],
)
def test_bad_limits_overrides(overrides, match):
    with pytest.raises(JobFileError, match=match):
        load_limits(overrides)

