"""Per-model capabilities: refused parameters, max output, context window, checked at compile time."""

from __future__ import annotations

import datetime
import json
from pathlib import Path
from typing import Any

import orjson

import datafast
from datafast.compiler.build import prepare, stage_requests, write_stage
from datafast.compiler.capabilities import ENV_VAR, CapabilityTable, _check_entry
from datafast.compiler.pricing import estimate_input_tokens
from datafast.compiler.spec import PreferenceDatasetConfig
from datafast.compiler.vendors import RENDERERS

REASONING_SPEC = """\
datafast: 1
name: tiny
type: classification
classes: [{name: pos, description: Happy.}, {name: neg, description: Sad.}]
models: [openai:o3-mini, openai:gpt-5-mini, openai:gpt-4.1-mini]
generation:
  temperature: 0.7
  max_tokens: 300
"""


def job_lines(out: Path, vendor: str, model: str) -> list[dict[str, Any]]:
    files = sorted((out / "jobs" / vendor).glob(f"*-{model}-*.jsonl"))
    assert files, f"no {vendor} job file for {model}"
    return [orjson.loads(line) for f in files for line in f.read_bytes().splitlines()]


def manifest_lines(out: Path) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in (out / "manifest.jsonl").read_bytes().splitlines()]


# -- the table ----------------------------------------------------------------------------------------------


def test_table_is_dated_sourced_and_valid():
    import datafast.compiler as compiler_pkg

    table = json.loads((Path(compiler_pkg.__file__).parent / "data" / "capabilities.json").read_text())
    checked = datetime.date.fromisoformat(table["checked"])
    for i, entry in enumerate(table["models"]):
        _check_entry(entry, f"models.{i}", lambda field, message: AssertionError(f"{field}: {message}"))
        assert entry["status"] in {"documented", "reported", "assumed"}
        assert datetime.date.fromisoformat(entry["checked"]) <= checked
        assert entry["sources"] and all(s.startswith("https://") for s in entry["sources"])
        assert all(p.partition(":")[0] in RENDERERS for p in entry["match"])


def test_lookup_takes_each_fact_from_the_first_matching_entry():
    table = CapabilityTable("2026-01-01", (
        {"match": ["openai:m-chat*"], "refuses": []},
        {"match": "openai:m*", "refuses": ["temperature"], "max_output_tokens": 100},
        {"match": "openai:*", "max_output_tokens": 5, "context_window": 1000},
    ))
    chat, plain = table.lookup("openai:m-chat-1"), table.lookup("openai:m-1")
    assert chat is not None and plain is not None
    assert (chat.refuses, chat.max_output_tokens, chat.context_window) == ((), 100, 1000)
    assert (plain.refuses, plain.max_output_tokens) == (("temperature",), 100)
    assert table.lookup("anthropic:m-1") is None  # no entry: no facts, nothing checked


def test_known_models_of_the_issue():
    table = CapabilityTable.load()
    for model in ("openai:o3-mini", "openai:gpt-5-mini", "anthropic:claude-opus-4-7"):
        caps = table.lookup(model)
        assert caps is not None and {"temperature", "top_p"} <= set(caps.refuses), model
    sonnet = table.lookup("anthropic:claude-sonnet-4-5")
    assert sonnet is not None and sonnet.mutually_exclusive == (("temperature", "top_p"),) and not sonnet.refuses
    gpt41 = table.lookup("openai:gpt-4.1-mini")
    assert gpt41 is not None and not gpt41.refuses and gpt41.max_output_tokens == 32768
    assert table.lookup("openai:my-fine-tune") is None


# -- refused parameters, through the CLI ----------------------------------------------------------------------


def test_reasoning_models_warn_and_leave_temperature_out_of_their_lines(write_spec, cli, tmp_path):
    result = cli("compile", write_spec(REASONING_SPEC), "-o", tmp_path / "out")
    assert result.exit_code == 0, result.stderr
    for model in ("o3-mini", "gpt-5-mini"):
        assert (f"warning: openai: parameter 'temperature' for model '{model}' is refused by this model"
                in result.stderr)
        for line in job_lines(tmp_path / "out", "openai", model):
            assert "temperature" not in line["body"]
            assert line["body"]["max_completion_tokens"] == 300 and "max_tokens" not in line["body"]
    assert "'gpt-4.1-mini'" not in result.stderr  # a model that takes temperature: no warning, temperature sent
    assert {line["body"]["temperature"] for line in job_lines(tmp_path / "out", "openai", "gpt-4.1-mini")} == {0.7}
    # the manifest keeps the spec's params (ids and online runtimes use them); the job lines carry what is sent
    assert {r["params"]["temperature"] for r in manifest_lines(tmp_path / "out")} == {0.7}
    warnings = json.loads((tmp_path / "out" / "manifest.json").read_text())["warnings"]
    assert any("'temperature' for model 'o3-mini'" in w for w in warnings)


def test_strict_refused_parameter_is_a_located_error(write_spec, cli, tmp_path):
    spec = write_spec(REASONING_SPEC)
    result = cli("compile", "--strict", spec, "-o", tmp_path / "out")
    assert result.exit_code == 2
    assert (f"error: {spec}:7: generation.temperature: openai: parameter 'temperature' for model 'o3-mini' "
            "is refused by this model") in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "out").exists()


def test_claude_temperature_with_top_p_sends_temperature_only(write_spec, cli, tmp_path):
    spec = write_spec(REASONING_SPEC.replace("openai:o3-mini, openai:gpt-5-mini, openai:gpt-4.1-mini",
                                             "anthropic:claude-sonnet-4-5, anthropic:claude-3-5-haiku-latest")
                      .replace("  max_tokens: 300", "  top_p: 0.9"))
    result = cli("compile", spec, "-o", tmp_path / "out")
    assert result.exit_code == 0, result.stderr
    assert ("warning: anthropic: parameter 'top_p' for model 'claude-sonnet-4-5' is refused together with "
            "'temperature'") in result.stderr
    sonnet = job_lines(tmp_path / "out", "anthropic", "claude-sonnet-4-5")
    assert all(line["params"]["temperature"] == 0.7 and "top_p" not in line["params"] for line in sonnet)
    haiku3 = job_lines(tmp_path / "out", "anthropic", "claude-3-5-haiku-latest")
    assert all(line["params"]["top_p"] == 0.9 for line in haiku3)  # Claude 3 takes both
    strict = cli("compile", "--strict", spec, "-o", tmp_path / "strict")
    assert strict.exit_code == 2 and f"{spec}:8: generation.top_p: anthropic: parameter 'top_p'" in strict.stderr


def test_max_tokens_above_the_maximum_output_is_clamped(write_spec, cli, tmp_path):
    spec = write_spec(REASONING_SPEC.replace("  max_tokens: 300", "  max_tokens: 50000"))
    result = cli("compile", spec, "-o", tmp_path / "out")
    assert result.exit_code == 0, result.stderr
    assert ("warning: openai: parameter 'max_tokens' for model 'gpt-4.1-mini' is 50,000, above the model's maximum "
            "output of 32,768 tokens") in result.stderr
    assert {line["body"]["max_completion_tokens"] for line in job_lines(tmp_path / "out", "openai", "gpt-4.1-mini")} \
        == {32768}
    assert {line["body"]["max_completion_tokens"] for line in job_lines(tmp_path / "out", "openai", "o3-mini")} \
        == {50000}  # under o3-mini's 100,000
    alone = write_spec(REASONING_SPEC.replace("openai:o3-mini, openai:gpt-5-mini, ", "")
                       .replace("  max_tokens: 300", "  max_tokens: 50000"), "alone.yaml")
    strict = cli("compile", "--strict", alone, "-o", tmp_path / "strict")
    assert strict.exit_code == 2
    assert f"error: {alone}:8: generation.max_tokens: openai: parameter 'max_tokens'" in strict.stderr


# -- context window ---------------------------------------------------------------------------------------------


def long_document_spec(documents: list[str], model: str = "openai:gpt-4o-mini") -> PreferenceDatasetConfig:
    return PreferenceDatasetConfig(name="long", input_documents=documents,
                                   models={"questions": [model], "chosen": [model], "rejected": ["ollama:r"]})


def test_prompts_over_the_context_window_are_counted_and_the_longest_named(tmp_path):
    # gpt-4o-mini: 128,000 tokens shared by prompt and max_tokens (2048 by default); ~4 characters a token
    documents = ["Short document.", "a" * 520_000, "b" * 600_000]
    result = datafast.compile(long_document_spec(documents), tmp_path / "out")
    requests = manifest_lines(tmp_path / "out")
    longest = next(r for r in requests if "b" * 600_000 in r["messages"][1]["content"])
    tokens = estimate_input_tokens(longest["messages"]) + 2048
    expected = (f"openai: 2 requests for model 'gpt-4o-mini' may not fit its context window of 128,000 tokens "
                f"(estimated prompt + max_tokens 2,048); the longest is {longest['id']!r} at ~{tokens:,} tokens")
    assert expected in result.warnings
    assert expected in json.loads((tmp_path / "out" / "manifest.json").read_text())["warnings"]


def test_prompts_that_fit_give_no_context_warning(tmp_path):
    result = datafast.compile(long_document_spec(["a" * 480_000]), tmp_path / "out")  # ~120,000 + 2,048 tokens
    assert not [w for w in result.warnings if "context window" in w]
    result = datafast.compile(long_document_spec(["a" * 480_000], model="gemini:gemini-2.5-flash"), tmp_path / "g")
    assert not [w for w in result.warnings if "input limit" in w]


def test_context_window_under_strict_is_an_error(write_spec, cli, tmp_path):
    spec = write_spec({"datafast": 1, "name": "long", "type": "preference", "input_documents": ["b" * 600_000],
                       "models": {"questions": ["openai:gpt-4o-mini"], "chosen": ["openai:gpt-4o-mini"],
                                  "rejected": ["ollama:r"]}})
    result = cli("compile", "--strict", spec, "-o", tmp_path / "out")
    assert result.exit_code == 2
    assert "1 request for model 'gpt-4o-mini' may not fit its context window" in result.stderr
    assert not (tmp_path / "out").exists()


def test_later_stages_are_checked_as_they_are_compiled(tmp_path):
    # stage one fits; the chosen stage's prompts carry each question's (long) document
    prepared = prepare(long_document_spec(["Short document."]))
    rows = [{"row_id": f"q-{i}", "request_id": "q", "stage": "questions", "model": "openai:gpt-4o-mini",
             "language": "en", "document": doc, "question": f"Question {i}?"}
            for i, doc in enumerate(["c" * 700_000, "Short."])]
    first = write_stage(prepared, "questions", _dir(tmp_path / "questions"))
    assert not [w for w in first.warnings if "context window" in w]
    chosen = write_stage(prepared, "chosen", _dir(tmp_path / "chosen"), inputs={"questions": rows}, input_hash="h")
    requests = list(stage_requests(prepared, prepared.stage("chosen"), {"questions": rows}))
    longest = next(r for r in requests if r["meta"]["parent"] == "q-0")
    assert [w for w in chosen.warnings if "context window" in w] == [
        f"openai: 1 request for model 'gpt-4o-mini' may not fit its context window of 128,000 tokens (estimated "
        f"prompt + max_tokens 2,048); the longest is {longest['id']!r} at "
        f"~{estimate_input_tokens(longest['messages']) + 2048:,} tokens"]


def _dir(path: Path) -> Path:
    path.mkdir()
    return path


# -- override -----------------------------------------------------------------------------------------------


def test_override_file_changes_the_outcome(write_spec, cli, tmp_path, monkeypatch):
    spec = write_spec(REASONING_SPEC)
    override = tmp_path / "caps.yaml"
    override.write_text("models:\n"
                        "  - {match: 'openai:o3-mini', refuses: [], status: assumed}\n"
                        "  - {match: ['openai:gpt-4.1-*'], refuses: [temperature], max_output_tokens: 100}\n")
    monkeypatch.setenv(ENV_VAR, str(override))
    result = cli("compile", spec, "-o", tmp_path / "out")
    assert result.exit_code == 0, result.stderr
    assert "'o3-mini'" not in result.stderr  # the override says o3-mini takes temperature
    assert {line["body"]["temperature"] for line in job_lines(tmp_path / "out", "openai", "o3-mini")} == {0.7}
    assert "parameter 'temperature' for model 'gpt-4.1-mini' is refused by this model" in result.stderr
    gpt41 = job_lines(tmp_path / "out", "openai", "gpt-4.1-mini")
    assert all("temperature" not in line["body"] and line["body"]["max_completion_tokens"] == 100 for line in gpt41)
    assert "'gpt-5-mini'" in result.stderr  # facts the override does not state still come from the built-in table


def test_broken_override_is_a_located_input_error(write_spec, cli, tmp_path, monkeypatch):
    override = tmp_path / "caps.yaml"
    override.write_text("models:\n  - {match: o3-mini, refuses: [temperature]}\n")
    monkeypatch.setenv(ENV_VAR, str(override))
    result = cli("compile", write_spec(REASONING_SPEC), "-o", tmp_path / "out")
    assert result.exit_code == 2
    assert f"error: {override}: models.0.match: give 'runtime:model' patterns" in result.stderr
    assert "Traceback" not in result.stderr
