"""Live progress: request bars (online/local), per-vendor batch lines, plain lines off a terminal, -q."""

from __future__ import annotations

import io

import yaml

import datafast
from datafast.progress import PLAIN_QUIET_MAX, Display


def test_plain_request_bar_is_append_only_lines_with_counts_and_failures():
    out = io.StringIO()
    display = Display(stream=out, tty=False)
    with display.requests("generate ollama", 3) as bar:
        bar.advance(True)
        bar.advance(False)
        bar.advance(True)
    text = out.getvalue()
    assert "\r" not in text and text.endswith("\n")
    last = text.strip().splitlines()[-1]
    assert last.startswith("generate ollama: 100%") and "3/3" in last and "1 failed" in last


def test_terminal_request_bar_updates_in_place():
    out = io.StringIO()
    with Display(stream=out, tty=True).requests("generate local", 2) as bar:
        bar.advance(True)
        bar.advance(True)
    assert "\r" in out.getvalue() and "2/2" in out.getvalue()


def test_plain_batch_lines_only_on_change_or_after_a_quiet_spell(monkeypatch):
    out = io.StringIO()
    display = Display(stream=out, tty=False)
    clock = [1000.0]
    monkeypatch.setattr("datafast.progress.time.monotonic", lambda: clock[0])
    for done in (0, 0, 5, 5):
        display.batch("openai", done=done, failed=0, total=10, jobs=2, elapsed=65, next_poll=30)
    clock[0] += PLAIN_QUIET_MAX
    display.batch("openai", done=5, failed=1, total=10, jobs=2, elapsed=3700, next_poll=30)
    display.batch("openai", done=5, failed=1, total=10, jobs=2, elapsed=3730, next_poll=30)
    clock[0] += PLAIN_QUIET_MAX
    display.batch("openai", done=5, failed=1, total=10, jobs=2, elapsed=4000, next_poll=30)
    lines = out.getvalue().splitlines()
    assert lines == [
        "openai batch: 0/10 done, 0 failed, 2 jobs, elapsed 1:05, next poll in 30s",
        "openai batch: 5/10 done, 0 failed, 2 jobs, elapsed 1:05, next poll in 30s",
        "openai batch: 5/10 done, 1 failed, 2 jobs, elapsed 1:01:40, next poll in 30s",
        "openai batch: 5/10 done, 1 failed, 2 jobs, elapsed 1:06:40, next poll in 30s",
    ]


def test_disabled_display_prints_nothing():
    out = io.StringIO()
    display = Display(enabled=False, stream=out, tty=True)
    with display.requests("x", 2) as bar:
        bar.advance(True)
    display.batch("openai", done=1, failed=0, total=2, jobs=1, elapsed=1, next_poll=1)
    display.message("hello")
    assert out.getvalue() == ""


def _ollama_dir(tmp_path, ollama_emulator):
    spec = {"datafast": 1, "name": "bars", "type": "classification", "num_samples_per_prompt": 1,
            "classes": [{"name": c, "description": f"{c} text"} for c in ("a", "b", "c")],
            "models": ["ollama:gemma3:4b"]}
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(spec))
    datafast.compile(path, tmp_path / "out")
    return tmp_path / "out"


def test_submit_shows_a_bar_for_online_requests_and_q_silences_it(tmp_path, ollama_emulator, cli, monkeypatch):
    monkeypatch.setenv("OLLAMA_HOST", ollama_emulator.base_url)
    out = _ollama_dir(tmp_path, ollama_emulator)
    loud = cli("submit", out, "--wait")
    assert loud.exit_code == 0
    assert "generate ollama: 100%" in loud.stderr and "3/3" in loud.stderr
    (out / "results").rename(tmp_path / "old-results")  # send again, quietly
    (out / "state.json").unlink()
    quiet = cli("-q", "submit", out, "--wait")
    assert quiet.exit_code == 0 and quiet.stderr == "" and "3 requests = 3 ok" in quiet.stdout


def test_run_ends_with_next_steps_that_work_as_printed(tmp_path, ollama_emulator, cli, monkeypatch):
    import shlex
    import shutil
    import subprocess
    import sys
    from pathlib import Path

    monkeypatch.setenv("OLLAMA_HOST", ollama_emulator.base_url)
    specs = tmp_path / "specs"
    specs.mkdir()
    repo_specs = Path(__file__).parent.parent / "specs"
    for name in ("quickstart-preference.yaml", "classification.yaml"):
        shutil.copyfile(repo_specs / name, specs / name)
    _ollama_dir(tmp_path, ollama_emulator)
    shutil.copyfile(tmp_path / "spec.yaml", specs / "mine.yaml")
    monkeypatch.chdir(tmp_path)
    result = cli("run", "specs/mine.yaml", "-o", "out2")
    assert result.exit_code == 0, result.output
    steps = result.stdout.split("next:\n", 1)[1].splitlines()
    commands = [shlex.split(line.split("   # ")[0]) for line in steps]
    assert [c[0] for c in commands] == [sys.executable, "datafast", "datafast", "datafast"]
    assert commands[1] == ["datafast", "run", "specs/quickstart-preference.yaml"]
    loaded = subprocess.run(commands[0], capture_output=True, text=True, timeout=120)
    assert loaded.returncode == 0 and "'row_id':" in loaded.stdout
    for command in commands[2:]:  # plan of the API spec, push --dry-run
        assert cli(*command[1:]).exit_code == 0
    assert (tmp_path / "out2-upload" / "README.md").is_file()
