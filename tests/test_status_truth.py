"""Issue 14, status and counts that are true: `status` counts the current manifests only (results of an
earlier compile are stale, never added in), its summary adds up in every state (fresh, mid-batch, after a
failure, after a kill mid-creation, after a cancel), it works with no key and no network, and plan, status,
submit and collect name the same counts with the same words, in text and JSON alike."""

from __future__ import annotations

import json
import re
import threading
from pathlib import Path

import yaml

import datafast
from datafast.dataset import collect_to
from datafast.pipeline import advance, cancel, status

from .conftest import minimal_classification
from .test_stages_e2e import env_for

SUMMARY = re.compile(r"(?:^|: )(\d+) requests = (\d+) ok \+ (\d+) in flight \((\d+) live jobs?\) \+ (\d+) failed \+ "
                     r"(\d+) to send", re.MULTILINE)


def spec(description: str = "Happy.") -> dict:
    # 2 classes x 2 languages x 3 tones = 12 requests, 6 per class
    return minimal_classification(
        classes=[{"name": "pos", "description": description}, {"name": "neg", "description": "Sad."}],
        languages={"en": "English", "fr": "French"}, models=["openai:gpt-4.1-mini"],
        prompts=["Write {num_samples} {{tone}} {label_name} reviews in {language_name}: {label_description}"],
        expansion={"placeholders": {"tone": ["formal", "casual", "angry"]}})


def compile_into(tmp_path: Path, body: dict) -> Path:
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(body))
    out = tmp_path / "out"
    datafast.compile(path, out)
    return out


def summary(text: str) -> dict[str, int]:
    """The numbers of the summary line, checked to add up."""
    match = SUMMARY.search(text)
    assert match, text
    n = dict(zip(("requests", "ok", "in_flight", "live_jobs", "failed", "to_send"), map(int, match.groups()),
                 strict=True))
    assert n["requests"] == n["ok"] + n["in_flight"] + n["failed"] + n["to_send"], text
    return n


def use_emulator(monkeypatch, emu) -> None:
    for key, value in env_for({"openai": emu}).items():
        monkeypatch.setenv(key, value)


def state_jobs(out: Path) -> list[dict]:
    return json.loads((out / "state.json").read_text())["jobs"]


def edit_state(out: Path, **changes) -> None:
    data = json.loads((out / "state.json").read_text())
    for job in data["jobs"]:
        job.update(changes)
    (out / "state.json").write_text(json.dumps(data))


# -- 1. only the current manifest is counted ----------------------------------------------------------------
def test_results_of_an_earlier_manifest_are_stale_not_counted(tmp_path, openai_emulator, cli, monkeypatch):
    use_emulator(monkeypatch, openai_emulator)
    out = compile_into(tmp_path, spec())
    assert cli("submit", out, "--wait", "--poll-interval", "0.01").exit_code == 0
    compile_into(tmp_path, spec("Happy, edited."))  # one class re-hashed: its 6 requests are new

    got = cli("status", out)
    assert got.exit_code == 0, got.output
    assert summary(got.stdout) == {"requests": 12, "ok": 6, "in_flight": 0, "live_jobs": 0, "failed": 0,
                                   "to_send": 6}
    assert "6 stale results: stored results whose ids are in no current manifest" in got.stdout
    info = json.loads(cli("status", out, "--json").stdout)
    assert (info["requests"], info["ok"], info["to_send"], info["stale_results"]) == (12, 6, 6, 6)

    # sending the edited class leaves the 6 stale results stale, and counts 12 ok of 12, not 18
    assert cli("submit", out, "--wait", "--poll-interval", "0.01").exit_code == 0
    info = json.loads(cli("status", out, "--json").stdout)
    assert (info["requests"], info["ok"], info["to_send"], info["stale_results"]) == (12, 12, 0, 6)
    assert collect_to(out).with_rows == 12


# -- 2. the summary adds up in every state ----------------------------------------------------------------
def test_summary_adds_up_fresh_mid_batch_killed_and_held(tmp_path, emulator_factory, cli, monkeypatch):
    emu = emulator_factory("openai", batch_delay=3600)
    use_emulator(monkeypatch, emu)
    out = compile_into(tmp_path, spec())

    fresh = summary(cli("status", out).stdout)
    assert (fresh["ok"], fresh["in_flight"], fresh["to_send"], fresh["live_jobs"]) == (0, 0, 12, 0)

    sent = cli("submit", out)  # no --wait: the batch stays in progress for an hour
    assert summary(sent.stdout) == {"requests": 12, "ok": 0, "in_flight": 12, "live_jobs": 1, "failed": 0,
                                    "to_send": 0}
    got = cli("status", out)
    assert summary(got.stdout)["in_flight"] == 12
    header, row = got.stdout.splitlines()[1:3]
    assert header.split() == ["job", "status", "requests", "vendor", "id"]
    assert row.split()[1:3] == ["submitted", "12"]

    # killed between the intent and the vendor's answer: no vendor id, status creating (or prepared)
    for stuck in ("creating", "prepared"):
        edit_state(out, status=stuck, vendor_id=None)
        got = cli("status", out)
        assert got.exit_code == 0, got.output
        n = summary(got.stdout)
        assert (n["in_flight"], n["live_jobs"], n["to_send"]) == (12, 1, 0), got.stdout
        assert f" {stuck} " in got.stdout

    # held for quota: not live, its requests are to send
    edit_state(out, status="held", vendor_id=None)
    n = summary(cli("status", out).stdout)
    assert (n["in_flight"], n["live_jobs"], n["to_send"]) == (0, 0, 12)


def test_summary_adds_up_after_failures(tmp_path, openai_emulator, cli, monkeypatch):
    use_emulator(monkeypatch, openai_emulator)
    out = compile_into(tmp_path, spec())
    ids = [json.loads(line)["id"] for line in (out / "manifest.jsonl").read_text().splitlines()]
    openai_emulator.faults.error(ids[0], status=400, message="bad request body")  # terminal
    openai_emulator.faults.add("truncated", request_id=ids[1])  # terminal
    sent = cli("submit", out, "--wait", "--poll-interval", "0.01")
    expected = {"requests": 12, "ok": 10, "in_flight": 0, "live_jobs": 0, "failed": 2, "to_send": 0}
    assert summary(sent.stdout) == expected
    assert summary(cli("status", out).stdout) == expected
    info = json.loads(cli("status", out, "--json").stdout)
    assert (info["ok"], info["failed"], info["pending"]) == (10, 2, 0)
    collected = collect_to(out)
    assert (collected.with_rows, collected.rejected, collected.pending) == (10, 2, 0)


# -- 3. status needs no key and no network ----------------------------------------------------------------
def test_status_without_key_shows_recorded_state_and_says_what_was_not_polled(tmp_path, emulator_factory, cli,
                                                                              monkeypatch):
    emu = emulator_factory("openai", batch_delay=3600)
    use_emulator(monkeypatch, emu)
    out = compile_into(tmp_path, spec())
    assert cli("submit", out).exit_code == 0

    monkeypatch.delenv("OPENAI_API_KEY")  # another terminal, without the key
    got = cli("status", out)
    assert got.exit_code == 0, got.output
    assert summary(got.stdout)["in_flight"] == 12
    lines = got.stdout.splitlines()
    assert lines[-1].startswith("openai: not polled: ") and "OPENAI_API_KEY" in lines[-1]
    info = json.loads(cli("status", out, "--json").stdout)
    assert list(info["not_polled"]) == ["openai"] and "OPENAI_API_KEY" in info["not_polled"]["openai"]
    assert info["in_flight"] == 12 and info["jobs"][0]["status"] == "submitted"


def test_status_with_the_vendor_unreachable_shows_recorded_state(tmp_path, emulator_factory, cli, monkeypatch):
    emu = emulator_factory("openai", batch_delay=3600)
    use_emulator(monkeypatch, emu)
    out = compile_into(tmp_path, spec())
    assert cli("submit", out).exit_code == 0
    emu.stop()  # the vendor is gone: connection refused

    got = cli("status", out)
    assert got.exit_code == 0, got.output
    assert summary(got.stdout)["in_flight"] == 12
    last = got.stdout.splitlines()[-1]
    assert last.startswith("openai: not polled: "), last
    assert emu.base_url.rstrip("/") in last or "connect" in last.lower(), last  # why: where it could not reach
    assert state_jobs(out)[0]["status"] == "submitted"  # nothing recorded was changed


# -- 4. cancel: cancelling, then cancelled; its requests are to send, not rejected ---------------------------
def test_cancelled_job_requests_are_to_send_and_status_and_collect_agree(tmp_path, emulator_factory, cli,
                                                                         monkeypatch):
    emu = emulator_factory("openai", batch_delay=3600)
    use_emulator(monkeypatch, emu)
    out = compile_into(tmp_path, spec())
    assert cli("submit", out).exit_code == 0
    got = cli("cancel", out, "--yes")
    assert got.exit_code == 0 and got.stdout.startswith("cancelled openai-"), got.output

    info = json.loads(cli("status", out, "--json").stdout)
    assert [j["status"] for j in info["jobs"]] == ["cancelling"]
    assert (info["in_flight"], info["to_send"], info["failed"]) == (12, 0, 0)

    emu.advance(3601)  # the vendor finishes cancelling
    text = cli("status", out).stdout
    assert summary(text) == {"requests": 12, "ok": 0, "in_flight": 0, "live_jobs": 0, "failed": 0, "to_send": 12}
    assert re.search(r"openai-\S+ +cancelled +12 ", text), text
    collected = json.loads(cli("collect", out, "--json").stdout)
    assert (collected["with_rows"], collected["rejected"], collected["pending"]) == (0, 0, 12)

    # the next submit sends them again
    emu.advance(-3601)
    assert summary(cli("submit", out).stdout)["in_flight"] == 12


# -- 5. one vocabulary across plan, status, submit and collect ---------------------------------------------
def test_same_words_for_the_same_counts_in_text_and_json(tmp_path, openai_emulator, cli, monkeypatch):
    use_emulator(monkeypatch, openai_emulator)
    body = spec()
    out = compile_into(tmp_path, body)
    plan = cli("plan", tmp_path / "spec.yaml").stdout
    assert "generate requests by label:" in plan and "class/topic" not in plan
    sent = cli("submit", out, "--wait", "--poll-interval", "0.01").stdout
    assert "done" not in sent and "for good" not in sent

    info = json.loads(cli("status", out, "--json").stdout)
    for key in ("requests", "ok", "in_flight", "failed", "to_send", "pending", "live_jobs", "stale_results"):
        assert key in info, key
    assert "given_up" not in info
    stage = info["stages"][0]
    assert {k: stage[k] for k in ("requests", "ok", "in_flight", "failed", "to_send", "pending")} == {
        "requests": 12, "ok": 12, "in_flight": 0, "failed": 0, "to_send": 0, "pending": 0}
    assert "done" not in stage

    collected = json.loads(cli("collect", out, "--json").stdout)
    assert (collected["requests"], collected["with_rows"], collected["rejected"], collected["pending"]) == (12, 12, 0, 0)
    assert "producing" not in collected and "producing" not in collected["stages"]["generate"]
    text = cli("collect", out).stdout
    assert "12 requests = 12 with rows + 0 rejected + 0 pending" in text
    assert "rows by label: neg " in text


# -- 6. batch waits: printed on change, elapsed continued across a resume ----------------------------------
def test_batch_wait_messages_on_change_with_elapsed_from_the_recorded_creation(tmp_path, emulator_factory):
    emu = emulator_factory("openai", batch_delay=3600)
    env = env_for({"openai": emu})
    out = compile_into(tmp_path, spec())
    advance(out, env=env)  # created, not waited for: a resume picks it up
    data = json.loads((out / "state.json").read_text())
    data["jobs"][0]["vendor"]["intent_at"] = "2020-01-01T00:00:00+00:00"  # created long ago
    (out / "state.json").write_text(json.dumps(data))

    messages: list[str] = []
    timer = threading.Timer(1.0, lambda: emu.advance(10_000_000))  # dozens of polls before the batch ends
    timer.start()
    try:
        report = advance(out, wait=True, poll_interval=0.01, env=env, on_progress=messages.append)
    finally:
        timer.cancel()
    assert report.finished and report.ok == 12
    waits = [m for m in messages if re.match(r"openai: \d+/12 done", m)]
    assert len(waits) == 1, messages  # the counts did not change while waiting: said once
    elapsed = int(re.search(r"elapsed (\d+)s", waits[0]).group(1))
    assert elapsed > 365 * 24 * 3600  # counted from the recorded creation, not from this process's start


def test_status_api_counts_add_up_per_stage(tmp_path, openai_emulator):
    out = compile_into(tmp_path, spec())
    env = env_for({"openai": openai_emulator})
    advance(out, wait=True, poll_interval=0.01, env=env)
    info = status(out, env)
    assert (info["requests"], info["ok"], info["live_jobs"], info["not_polled"]) == (12, 12, 0, {})
    assert cancel(out, env) == []
