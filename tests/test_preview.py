"""preview: a few items through every stage, paid once: the full run reuses their answers."""

from __future__ import annotations

import json

import yaml

from datafast.pipeline import advance
from datafast.preview import pick, preview

SPEC = {
    "datafast": 1, "name": "pv", "type": "preference", "llm_as_judge": True, "num_samples_per_prompt": 2,
    "input_documents": ["Doc one about routers.", "Doc two about firmware.", "Doc three about warranty."],
    "languages": {"en": "English", "fr": "French"},
    "models": {"questions": ["ollama:gemma3:4b", "ollama:llama3.2:latest"], "chosen": ["ollama:gemma3:4b"],
               "rejected": ["ollama:llama3.2:latest"], "judge": ["ollama:gemma3:4b"]},
}


def test_pick_spreads_over_languages_and_models_and_is_order_independent():
    requests = [{"id": f"{i:032x}", "model": m, "meta": {"language": lang}}
                for i, (m, lang) in enumerate((m, lang) for m in ("a:1", "b:2") for lang in ("en", "fr", "de")
                                              for _ in range(3))]
    chosen = pick(requests, 6)
    assert {(r["model"], r["meta"]["language"]) for r in chosen} == {(m, lang) for m in ("a:1", "b:2")
                                                                   for lang in ("en", "fr", "de")}
    assert [r["id"] for r in pick(list(reversed(requests)), 6)] == [r["id"] for r in chosen]
    assert len(pick(requests, 100)) == len(requests)


def test_preview_runs_every_stage_and_the_full_run_pays_nothing_twice(tmp_path, ollama_emulator):
    env = {"OLLAMA_HOST": ollama_emulator.base_url}
    (tmp_path / "spec.yaml").write_text(yaml.safe_dump(SPEC))
    report = preview(tmp_path / "spec.yaml", 2, tmp_path / "out", poll_interval=0.01, env=env)
    assert report.picked == 2
    collected = report.collect
    assert collected.items["rows"] == collected.items["items"] > 0  # final pairs, every stage ran
    assert [s["stage"] for s in report.projection["stages"]] == ["questions", "chosen", "rejected", "judge"]
    assert all(s["measured"] for s in report.projection["stages"])
    previewed = sum(ollama_emulator.stats()["request_counts"].values())

    full = advance(tmp_path / "out", wait=True, poll_interval=0.01, env=env)
    assert full.finished
    counts = ollama_emulator.stats()["request_counts"]
    assert set(counts.values()) == {1}  # every distinct request reached Ollama once, preview included
    requests = [json.loads(x) for m in [tmp_path / "out" / "manifest.jsonl",
                                        *sorted((tmp_path / "out" / "stages").glob("*/manifest.jsonl"))]
                for x in m.read_text().splitlines()]
    assert len(counts) == len(requests) > previewed  # the full run sent only what the preview had not


def test_preview_cli_prints_rows_and_the_measured_projection(tmp_path, ollama_emulator, cli, monkeypatch):
    monkeypatch.setenv("OLLAMA_HOST", ollama_emulator.base_url)
    (tmp_path / "spec.yaml").write_text(yaml.safe_dump(SPEC))
    result = cli("preview", tmp_path / "spec.yaml", "-n", "1", "-o", tmp_path / "out", "--poll-interval", "0")
    assert result.exit_code == 0, result.stderr
    assert "preview of 1 first-stage request(s)" in result.stdout
    assert "items =" in result.stdout and "plan's chars/4 estimate" in result.stdout
