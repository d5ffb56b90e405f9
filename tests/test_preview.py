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


def test_preview_of_batch_vendors_goes_online_and_the_batch_run_skips_those_requests(tmp_path, emulator_factory):
    emus = {v: emulator_factory(v) for v in ("openai", "anthropic")}
    env = {"OPENAI_API_KEY": "test", "OPENAI_BASE_URL": emus["openai"].base_url,
           "ANTHROPIC_API_KEY": "test", "ANTHROPIC_BASE_URL": emus["anthropic"].base_url}
    spec = {**SPEC, "models": {"questions": ["openai:gpt-4.1-mini"], "chosen": ["anthropic:claude-haiku-4-5"],
                               "rejected": ["openai:gpt-4.1-mini"], "judge": ["openai:gpt-4.1"]}}
    (tmp_path / "spec.yaml").write_text(yaml.safe_dump(spec))
    report = preview(tmp_path / "spec.yaml", 1, tmp_path / "out", poll_interval=0.01, env=env)
    assert report.collect.items["rows"] > 0
    assert not emus["openai"].stats()["batches"] and not emus["anthropic"].stats()["batches"]  # all online
    assert advance(tmp_path / "out", wait=True, poll_interval=0.01, env=env).finished
    def ids(root):
        return [json.loads(x)["id"] for m in [root / "manifest.jsonl", *sorted((root / "stages").glob("*/manifest.jsonl"))]
                for x in m.read_text().splitlines()]

    previewed, everything = set(ids(tmp_path / "out" / "preview")), ids(tmp_path / "out")
    batched = [rid for emu in emus.values() for b in emu.stats()["batches"] for rid in b["request_ids"]]
    assert previewed and previewed <= set(everything)  # the preview's later-stage ids are the full run's
    assert not previewed & set(batched)  # answered online in the preview: never sent again in a batch
    assert sorted(batched) == sorted(set(everything) - previewed)  # the rest, each in a batch once


def test_dataset_preview_in_python_then_generate_reuses_its_answers(tmp_path, ollama_emulator, monkeypatch):
    from datafast.datasets import PreferenceDataset
    from datafast.llms import OllamaProvider
    from datafast.schema.config import PreferenceDatasetConfig

    monkeypatch.chdir(tmp_path)
    config = PreferenceDatasetConfig(input_documents=SPEC["input_documents"], num_samples_per_prompt=2,
                                     llm_as_judge=True, output_file="pairs.jsonl")
    dataset = PreferenceDataset(config)
    llm = OllamaProvider(model_id="gemma3:4b", api_base=ollama_emulator.base_url)
    roles = {"question_gen_llm": llm, "chosen_response_gen_llm": llm, "rejected_response_gen_llm": llm,
             "judge_llm": llm}
    report = dataset.preview(1, **roles, poll_interval=0.01)
    assert report.picked == 1 and report.collect.items["rows"] > 0
    dataset.generate(**roles, poll_interval=0.01)
    assert len(dataset.data_rows) > report.collect.items["rows"]
    assert set(ollama_emulator.stats()["request_counts"].values()) == {1}  # previewed requests not sent again
