"""One output dir, several datafast processes: never a duplicate batch, never a lost state write."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from datafast.outdir import OutputDir
from datafast.pipeline import status

from .conftest import REPO
from .test_submit_openai import compile_spec
from .test_submit_vendors import SPEC


@pytest.mark.emulator(batch_delay=0.5)
def test_two_submits_at_once_create_each_batch_once(tmp_path, anthropic_emulator, gemini_emulator):
    out, ids = compile_spec(tmp_path, SPEC)
    env = {**os.environ, "ANTHROPIC_API_KEY": "test", "ANTHROPIC_BASE_URL": anthropic_emulator.base_url,
           "GEMINI_API_KEY": "test", "GOOGLE_GEMINI_BASE_URL": gemini_emulator.base_url}
    command = [sys.executable, "-m", "datafast.cli", "submit", str(out), "--wait", "--poll-interval", "0.05"]
    procs = [subprocess.Popen(command, env=env, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(2)]
    outputs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs
    for emu in (anthropic_emulator, gemini_emulator):
        assert len(emu.stats()["batches"]) == 1
    assert all(max(anthropic_emulator.submissions(i), gemini_emulator.submissions(i)) == 1 for i in ids)
    jobs = json.loads((out / "state.json").read_text())["jobs"]
    assert len(jobs) == 2 and {j["status"] for j in jobs} == {"fetched"}
    # the one that waited said for whom
    assert any("is working on this dir" in err for _, err in outputs)


def hold_lock(out):
    """Another process holding the dir's lock (for up to 30 s; the test kills it)."""
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time\nfrom datafast.outdir import OutputDir\n"
         "with OutputDir(sys.argv[1]).lock():\n    print('held', flush=True)\n    time.sleep(30)", str(out)],
        cwd=REPO, stdout=subprocess.PIPE, text=True)
    assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
    return holder


def test_status_does_not_wait_for_a_busy_dir(tmp_path):
    out, _ = compile_spec(tmp_path)
    holder = hold_lock(out)
    try:
        od = OutputDir(out)
        assert od.is_locked() and f"process {holder.pid}" in (od.holder() or "")
        # a job recorded as live makes status want to poll: it must not, and must say why
        state = json.loads((out / "state.json").read_text()) if (out / "state.json").exists() else {"jobs": []}
        state["jobs"] = [{"name": "openai-x-a1", "runtime": "openai", "model": "openai:gpt-4.1-mini",
                          "stage": "generate", "file": "submit/x.jsonl", "requests": 1, "status": "submitted",
                          "vendor_id": "batch_x"}]
        (out / "state.json").write_text(json.dumps(state))
        info = status(out, env={})  # had it waited, the holder would be gone and there would be no note
        assert "is working on this dir" in info["note"]
    finally:
        holder.kill()
        holder.wait()
    assert not OutputDir(out).is_locked()  # a killed holder releases the lock


def test_cancel_refuses_while_another_process_advances_the_dir(tmp_path, cli):
    out, _ = compile_spec(tmp_path)
    holder = hold_lock(out)
    try:
        result = cli("cancel", out, "--yes")
        assert result.exit_code == 1 and f"process {holder.pid}" in result.stderr
        assert "stop it first" in result.stderr
    finally:
        holder.kill()
        holder.wait()
    assert cli("cancel", out, "--yes").exit_code == 0


def test_cancel_goes_on_past_a_batch_that_already_ended(tmp_path, cli, emulator_factory, monkeypatch):
    from datafast.pipeline import advance

    from .test_stages_e2e import PREFERENCE, env_for, start
    from .test_stages_e2e import compile_spec as compile_e2e

    emus = start(emulator_factory, "openai", "anthropic")
    for emu in emus.values():
        emu.batch_delay = 3600.0  # batches run until the emulator clock is moved on
    spec = {**PREFERENCE, "models": {"questions": ["openai:gpt-4.1-mini", "anthropic:claude-haiku-4-5"],
                                     "chosen": ["openai:gpt-4.1-mini"], "rejected": ["openai:gpt-4.1-mini"]},
            "llm_as_judge": False}
    out = compile_e2e(tmp_path, spec)
    env = env_for(emus)
    advance(out, wait=False, env=env)  # both batches submitted, running
    emus["anthropic"].advance(7 * 3600)  # the Anthropic one ends before the cancel
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    asked = cli("cancel", out)  # no terminal to ask on: --yes is needed, and nothing is cancelled
    assert asked.exit_code == 2 and "pass --yes" in asked.stderr
    result = cli("cancel", out, "--yes")
    assert result.exit_code == 0, result.output
    assert "already ended" in result.stderr and "cancelled openai-" in result.stdout
    calls = emus["openai"].stats()["calls"]
    assert any("cancel" in route for route in calls), calls  # the running batch was cancelled
    info = json.loads((out / "state.json").read_text())
    openai_job = next(j for j in info["jobs"] if j["runtime"] == "openai")
    assert "cancel_requested_at" in openai_job["vendor"]
