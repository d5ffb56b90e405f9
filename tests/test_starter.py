"""Starting with only `pip install` and --help: init writes an example spec, emulate serves the emulators,
and commands end with the next step."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import yaml

import datafast


def test_init_writes_an_example_and_its_data_then_refuses_to_overwrite(tmp_path, cli):
    result = cli("init", "--type", "mcq", "-o", tmp_path)
    assert result.exit_code == 0, result.output
    spec = tmp_path / "mcq.yaml"
    assert (tmp_path / "data" / "documents.jsonl").is_file() and spec.read_text().startswith("#")
    assert f"next: datafast plan {spec}" in result.output
    assert cli("plan", spec).exit_code == 0
    again = cli("init", "--type", "mcq", "-o", tmp_path)
    assert again.exit_code == 2 and "--force" in again.output
    assert cli("init", "--type", "mcq", "-o", tmp_path, "--force").exit_code == 0
    assert yaml.safe_load(spec.read_text())["type"] == "mcq"


def test_init_quickstart_by_default(tmp_path, cli):
    assert cli("init", "-o", tmp_path).exit_code == 0
    assert yaml.safe_load((tmp_path / "quickstart.yaml").read_text())["models"] == ["local:smollm2-135m"]


def test_emulate_serves_and_stops_by_itself(tmp_path):
    done = subprocess.run([sys.executable, "-m", "datafast", "emulate", "openai", "--max-seconds", "0.5"],
                          capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("openai http://127.0.0.1:") and "OPENAI_BASE_URL=" in done.stdout


def test_submit_without_wait_says_what_next(tmp_path, cli, emulator_factory, monkeypatch):
    emu = emulator_factory("openai", batch_delay=3600)
    monkeypatch.setenv("OPENAI_API_KEY", "test")
    monkeypatch.setenv("OPENAI_BASE_URL", emu.base_url)
    spec = tmp_path / "spec.yaml"
    spec.write_text(yaml.safe_dump({"datafast": 1, "name": "n", "type": "classification",
                                    "classes": [{"name": "a", "description": "x"}], "models": ["openai:gpt-4.1-mini"]}))
    datafast.compile(spec, tmp_path / "out")
    result = cli("submit", tmp_path / "out")
    assert result.exit_code == 0, result.output
    assert "next: datafast status" in result.stdout and "--wait" in result.stdout


def test_the_same_spec_run_from_two_folders_pays_once(tmp_path, cli, ollama_emulator, monkeypatch):
    monkeypatch.setenv("OLLAMA_HOST", ollama_emulator.base_url)
    project = tmp_path / "project"
    (project / "specs").mkdir(parents=True)
    (project / "pyproject.toml").write_text("")  # a project root marker, as a checkout has
    spec = project / "specs" / "s.yaml"
    spec.write_text(yaml.safe_dump({"datafast": 1, "name": "twice", "type": "classification",
                                    "classes": [{"name": "a", "description": "x"}, {"name": "b", "description": "y"}],
                                    "models": ["ollama:gemma3:4b"]}))
    monkeypatch.chdir(project)
    first = cli("run", "specs/s.yaml")
    assert first.exit_code == 0, first.output
    assert "files: build/twice/" in first.stdout
    calls = sum(ollama_emulator.stats()["request_counts"].values())
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    second = cli("run", spec)
    assert second.exit_code == 0, second.output
    assert f"files: {project / 'build' / 'twice'}/" in second.stdout  # found, and said where
    assert sum(ollama_emulator.stats()["request_counts"].values()) == calls  # nothing sent again
    assert not (elsewhere / "build").exists()


def test_help_lists_whole_summaries_and_usage_errors_use_the_error_prefix(cli):
    helped = cli("--help")
    assert helped.exit_code == 0
    text = " ".join(helped.output.split())
    assert "Cancel the live batch jobs of OUT_DIR (finished results are kept)." in text
    assert "OPENAI_API_KEY" in text and "runtime:model" in text and "Exit codes" in text
    missing = cli("push")
    assert missing.exit_code == 2 and "error: Missing argument 'OUT_DIR'." in missing.output
    assert "Error:" not in missing.output
    wrong = cli("nonsense")
    assert wrong.exit_code == 2 and "error: No such command 'nonsense'." in wrong.output


def test_output_piped_into_a_reader_that_stops_early_is_not_an_error(tmp_path, ollama_emulator):
    # `run ... | head -1`: run prints its summary over several writes, the first of which ends the reader
    spec = {"datafast": 1, "name": "piped", "type": "classification", "models": ["ollama:gemma3:4b"],
            "classes": [{"name": "a", "description": "texts of kind a"}]}
    (tmp_path / "piped.yaml").write_text(yaml.safe_dump(spec))
    cli = Path(sys.executable).with_name("datafast")
    env = {**os.environ, "OLLAMA_HOST": ollama_emulator.base_url}
    assert subprocess.run([str(cli), "run", "piped.yaml"], cwd=tmp_path, env=env, capture_output=True,
                          timeout=120).returncode == 0
    piped = subprocess.run(f"'{cli}' run piped.yaml | head -1; exit ${{PIPESTATUS[0]}}", shell=True, cwd=tmp_path,
                           env=env, capture_output=True, text=True, timeout=120, executable="/bin/bash")
    assert piped.returncode == 0 and piped.stdout.count("\n") == 1, piped.stderr
    assert "Broken pipe" not in piped.stderr and "Traceback" not in piped.stderr, piped.stderr
