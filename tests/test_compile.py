"""The compile contract: manifest files as DESIGN.md §2 says, byte-reproducible, small diffs on edits."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

import datafast
from datafast.compiler.hashing import content_hash

from .conftest import REPO, minimal_classification

ID_RULE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


def _tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text("utf-8").splitlines()]


def test_manifest_lines_follow_the_contract(tmp_path):
    out = tmp_path / "out"
    datafast.compile(REPO / "specs" / "classification.yaml", out)
    raw = (out / "manifest.jsonl").read_bytes()
    lines = _lines(out / "manifest.jsonl")
    manifest = json.loads((out / "manifest.json").read_text("utf-8"))
    assert len(lines) == manifest["counts"]["requests"] == 3 * 2 * 6 * 2
    for line, text in zip(lines, raw.decode("utf-8").splitlines(), strict=True):
        assert set(line) == {"id", "stage", "model", "messages", "params", "schema", "meta"}
        assert text == json.dumps(line, sort_keys=True, separators=(",", ":"), ensure_ascii=False)  # canonical
        assert ID_RULE.match(line["id"])
        assert [m["role"] for m in line["messages"]] == ["system", "user"]
        assert line["params"] == {"max_tokens": 2048, "temperature": 0.8}  # only what the spec set, + max_tokens
        assert line["schema"] in manifest["schemas"]
        assert line["model"] in ("openai:gpt-4.1-mini", "anthropic:claude-haiku-4-5")
        assert {"label", "language", "template", "placeholders"} <= set(line["meta"])
    assert len({line["id"] for line in lines}) == len(lines)
    # ids are content hashes of what is sent (replica 0 for first occurrences)
    first = lines[0]
    expected = content_hash({"stage": first["stage"], "model": first["model"], "messages": first["messages"],
                             "params": first["params"], "schema": first["schema"], "replica": 0})
    assert first["id"] == expected


def test_manifest_json_describes_the_compile(tmp_path):
    out = tmp_path / "out"
    result = datafast.compile(REPO / "specs" / "conversation.yaml", out)
    manifest = json.loads((out / "manifest.json").read_text("utf-8"))
    assert manifest["format"] == 1 and manifest["datafast_version"] == datafast.__version__
    assert manifest["spec"]["name"] == "cooking-chats" and manifest["spec"]["max_turns"] == 3
    assert manifest["spec_hash"] == content_hash(manifest["spec"])
    assert [s["name"] for s in manifest["stages"]][:3] == ["questions", "opening", "assistant-1"]
    assert manifest["compiled_stages"] == ["questions"]
    assert set(manifest["schemas"]) == {s["schema"] for s in manifest["stages"]}
    counts = manifest["counts"]
    assert counts["requests"] == result.requests == 2 * 2 * 2 * 1  # topics x subtopics x languages x models
    assert counts["by_language"] == {"en": 4, "es": 4}
    est = manifest["estimate"]
    assert est["input_tokens"] > 0 and est["output_tokens"] > 0
    assert 0 < est["cost_batch"] < est["cost_online"]
    assert "estimate" in est["note"]


def test_compile_is_byte_identical_across_hash_seeds_and_working_directories(tmp_path):
    spec = REPO / "tests" / "golden" / "classification.yaml"
    outs = []
    for i, (seed, cwd, spec_arg) in enumerate([("0", REPO, str(spec)), ("4242", spec.parent, spec.name)]):
        out = tmp_path / f"out{i}"
        env = {**os.environ, "PYTHONHASHSEED": seed}
        proc = subprocess.run([sys.executable, "-m", "datafast", "compile", spec_arg, "-o", str(out)],
                              cwd=cwd, env=env, capture_output=True, text=True)
        assert proc.returncode == 0, proc.stderr
        outs.append(_tree(out))
    assert outs[0] == outs[1]
    assert "manifest.jsonl" in outs[0] and any(k.startswith("jobs/") for k in outs[0])


def test_editing_one_class_changes_only_that_class_requests(tmp_path, write_spec):
    before = minimal_classification(classes=[{"name": n, "description": f"{n} texts"} for n in ("a", "b", "c")])
    after = yaml.safe_load(yaml.safe_dump(before))
    after["classes"][1]["description"] = "b texts, edited"
    datafast.compile(write_spec(before, "before.yaml"), tmp_path / "before")
    datafast.compile(write_spec(after, "after.yaml"), tmp_path / "after")
    old = _lines(tmp_path / "before" / "manifest.jsonl")
    new = _lines(tmp_path / "after" / "manifest.jsonl")
    changed = [(o["meta"]["label"], o["id"] != n["id"]) for o, n in zip(old, new, strict=True)]
    assert all(differs == (label == "b") for label, differs in changed)


def test_recompile_replaces_old_job_files_and_keeps_runtime_state(tmp_path, write_spec):
    out = tmp_path / "out"
    datafast.compile(write_spec(minimal_classification(models=["openai:a", "gemini:b"])), out)
    (out / "state.json").write_text("{}")
    (out / "results").mkdir()
    datafast.compile(write_spec(minimal_classification(models=["openai:a"])), out)
    assert not (out / "jobs" / "gemini").exists()
    assert (out / "state.json").read_text() == "{}" and (out / "results").is_dir()
    assert not (out / ".compile-staging").exists()


def test_python_config_objects_compile_like_yaml(tmp_path):
    spec = datafast.ClassificationDatasetConfig(
        name="tiny", classes=[{"name": "pos", "description": "Happy."}, {"name": "neg", "description": "Sad."}],
        models=["openai:gpt-4.1-mini"])
    from_yaml = tmp_path / "spec.yaml"
    from_yaml.write_text(yaml.safe_dump(minimal_classification()))
    datafast.compile(spec, tmp_path / "a")
    datafast.compile(from_yaml, tmp_path / "b")
    assert _tree(tmp_path / "a") == _tree(tmp_path / "b")


def test_python_config_errors_are_spec_errors(tmp_path):
    spec = datafast.ClassificationDatasetConfig(
        name="tiny", classes=[{"name": "pos", "description": "Happy."}], models=["opneai:gpt-4.1-mini"],
        prompts=["{num_samples} only"])
    with pytest.raises(datafast.SpecError) as err:
        datafast.compile(spec, tmp_path / "out")
    text = str(err.value)
    assert "<spec>: models.0: unknown runtime 'opneai'; did you mean 'openai'?" in text
    assert "prompts.0: missing mandatory placeholder {label_name}" in text
    assert not (tmp_path / "out").exists()


def test_default_output_dir_is_build_name(tmp_path, write_spec, cli, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = cli("compile", write_spec(minimal_classification()))
    assert result.exit_code == 0, result.stderr
    assert (tmp_path / "build" / "tiny" / "manifest.jsonl").is_file()
    assert "build/tiny: 2 requests" in result.stdout


@pytest.mark.parametrize("spec", sorted((REPO / "specs").glob("*.yaml")), ids=lambda p: p.stem)
def test_every_example_spec_compiles(spec, tmp_path):
    result = datafast.compile(spec, tmp_path / "out")
    assert result.requests > 0
    assert (tmp_path / "out" / "manifest.jsonl").stat().st_size > 0


def test_plan_writes_nothing_and_matches_compile(tmp_path, write_spec, cli, monkeypatch):
    monkeypatch.chdir(tmp_path)
    spec = write_spec(minimal_classification(models=["openai:gpt-4.1-mini", "ollama:gemma3:4b", "openai:unpriced"]))
    before = set(tmp_path.rglob("*"))
    result = cli("plan", spec, "--json")
    assert result.exit_code == 0, result.stderr
    assert set(tmp_path.rglob("*")) == before
    summary = json.loads(result.stdout)
    assert summary["counts"]["requests"] == 6
    assert summary["counts"]["by_label"] == {"neg": 3, "pos": 3}
    by_model = summary["estimate"]["by_model"]
    assert by_model["ollama:gemma3:4b"]["cost_online"] == 0.0
    assert by_model["openai:unpriced"]["cost_online"] is None
    assert summary["estimate"]["cost_excludes"] == ["openai:unpriced"]
    mini = by_model["openai:gpt-4.1-mini"]
    assert mini["cost_batch"] == pytest.approx(mini["cost_online"] / 2)
    human = cli("plan", spec)
    assert "ESTIMATED" in human.stdout and "no price known for openai:unpriced" in human.stdout


def test_price_table_override(tmp_path, write_spec, cli):
    prices = tmp_path / "prices.yaml"
    prices.write_text("checked: '2026-11-01'\nmodels:\n  openai:unpriced: {input: 1.0, output: 2.0}\n")
    spec = write_spec(minimal_classification(models=["openai:unpriced"]))
    summary = json.loads(cli("plan", spec, "--json", "--prices", prices).stdout)
    est = summary["estimate"]
    assert est["prices_checked"] == "2026-11-01"
    assert est["cost_online"] == pytest.approx((est["input_tokens"] * 1.0 + est["output_tokens"] * 2.0) / 1e6)
    bad = tmp_path / "bad.yaml"
    bad.write_text("models:\n  openai:x: {input: cheap}\n")
    result = cli("plan", spec, "--prices", bad)
    assert result.exit_code == 2 and "give numeric 'input' and 'output' prices" in result.stderr


def test_schema_command_validates_the_examples(cli):
    import jsonschema

    result = cli("schema")
    assert result.exit_code == 0
    schema = json.loads(result.stdout)
    for spec in sorted((REPO / "specs").glob("*.yaml")):
        jsonschema.validate(yaml.safe_load(spec.read_text()), schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"datafast": 1, "name": "x", "type": "classification", "clases": []}, schema)


def test_compile_and_plan_import_no_vendor_sdk(tmp_path):
    code = (
        "import sys, datafast\n"
        f"datafast.plan({str(REPO / 'specs' / 'classification.yaml')!r})\n"
        f"datafast.compile({str(REPO / 'specs' / 'classification.yaml')!r}, {str(tmp_path / 'o')!r})\n"
        "bad = [m for m in ('openai', 'anthropic', 'google.genai', 'ollama', 'datasets') if m in sys.modules]\n"
        "assert not bad, bad\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


def test_configure_logger_writes_to_a_file(tmp_path):
    log_file = tmp_path / "datafast.log"
    datafast.configure_logger("INFO", log_file=log_file)
    try:
        datafast.compile(REPO / "specs" / "text.yaml", tmp_path / "out")
    finally:
        datafast.configure_logger("WARNING")
    assert "compiled 36 requests" in log_file.read_text()


def test_strict_turns_vendor_warnings_into_errors(tmp_path, cli):
    spec = REPO / "tests" / "golden" / "classification.yaml"  # temperature + top_p + seed for Anthropic
    lenient = cli("compile", spec, "-o", tmp_path / "a")
    assert lenient.exit_code == 0
    assert "warning: anthropic: parameter 'top_p'" in lenient.stderr
    strict = cli("compile", "--strict", spec, "-o", tmp_path / "b")
    assert strict.exit_code == 2
    assert "anthropic: parameter 'top_p'" in strict.stderr and "Traceback" not in strict.stderr
    assert not (tmp_path / "b").exists()


@pytest.mark.parametrize("strict", [False, True])
def test_job_worker_process_writes_the_same_files_as_inline(tmp_path, monkeypatch, strict):
    from datafast.compiler import jobsink

    spec = REPO / "tests" / "golden" / "classification.yaml"
    if strict:  # an error raised inside the worker process reaches the user as a spec error, nothing written
        monkeypatch.setattr(jobsink, "PIPELINE_THRESHOLD", 1)
        with pytest.raises(datafast.SpecError, match="larger than the byte limit|exceeds|too large|bytes"):
            datafast.compile(spec, tmp_path / "piped", limits={"openai": {"max_bytes": 100}})
        assert not (tmp_path / "piped").exists()
        return
    datafast.compile(spec, tmp_path / "inline")
    monkeypatch.setattr(jobsink, "PIPELINE_THRESHOLD", 1)
    result = datafast.compile(spec, tmp_path / "piped", limits={"openai": {"max_requests": 3}})
    assert len([j for j in result.manifest["jobs"] if j["vendor"] == "openai"]) == 3  # 8 requests, 3 a file
    inline, piped = _tree(tmp_path / "inline"), _tree(tmp_path / "piped")
    assert piped["manifest.jsonl"] == inline["manifest.jsonl"]
    for name in inline:
        if name.startswith(("jobs/anthropic", "jobs/gemini")):
            assert piped[name] == inline[name]
    assert b"".join(v for k, v in sorted(piped.items()) if k.startswith("jobs/openai")) == \
        inline["jobs/openai/generate-gpt-4.1-mini-001.jsonl"]
