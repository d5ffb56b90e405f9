"""The original datafast's Python workflow (datasets, schema.config, llms, logger_config) through the real SDKs
against the emulators: same pipeline as the CLI, resumable, keys kept out of every file and log."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import pytest

import datafast
from datafast.compiler.errors import SpecError
from datafast.runtimes import RuntimeConfigError, RuntimeFailure

PROMPT = ("Write {num_samples} short {{tone}} texts in {language_name} that a reader would label "
          "'{label_name}' ({label_description}).")


def ids_of(manifest: Path) -> list[str]:
    return [json.loads(line)["id"] for line in manifest.read_text().splitlines()]


@pytest.fixture(autouse=True)
def _restore_datafast_logger():
    logger = logging.getLogger("datafast")
    handlers, level, propagate = list(logger.handlers), logger.level, logger.propagate
    yield
    for handler in list(logger.handlers):
        if handler not in handlers:
            logger.removeHandler(handler)
            handler.close()
    logger.setLevel(level)
    logger.propagate = propagate


@pytest.fixture
def vendors(tmp_path, monkeypatch, openai_emulator, anthropic_emulator):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("OPENAI_BASE_URL", openai_emulator.base_url)
    monkeypatch.setenv("ANTHROPIC_BASE_URL", anthropic_emulator.base_url)
    return {"openai": openai_emulator, "anthropic": anthropic_emulator}


@pytest.mark.emulator(batch_delay=0)
def test_the_original_snippet_runs_unchanged_and_a_second_generate_sends_nothing(tmp_path, monkeypatch, vendors):
    monkeypatch.setenv("OPENAI_API_KEY", "test")
    monkeypatch.setenv("ANTHROPIC_API_KEY", "test")

    from datafast.datasets import ClassificationDataset
    from datafast.llms import AnthropicProvider, OpenAIProvider
    from datafast.logger_config import configure_logger
    from datafast.schema.config import ClassificationDatasetConfig, PromptExpansionConfig

    configure_logger(level="INFO", log_file="generation.log")
    config = ClassificationDatasetConfig(
        classes=[{"name": "positive", "description": "Text expressing positive emotions"},
                 {"name": "negative", "description": "Text expressing negative emotions"}],
        num_samples_per_prompt=5, output_file="sentiment_dataset.jsonl",
        languages={"en": "English", "fr": "French"},
        prompts=[PROMPT],
        expansion=PromptExpansionConfig(placeholders={"tone": ["formal", "casual"]}, combinatorial=True),
    )
    dataset = ClassificationDataset(config)
    dataset.generate([OpenAIProvider(model_id="gpt-4.1-mini"), AnthropicProvider(model_id="claude-haiku-4-5")])

    out = tmp_path / "sentiment_dataset.jsonl"
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    expected = dataset.get_num_expected_rows([OpenAIProvider(model_id="gpt-4.1-mini"),
                                              AnthropicProvider(model_id="claude-haiku-4-5")])
    assert expected == 2 * 2 * 2 * 2 * 5  # classes x languages x tones x providers x samples
    assert 0 < len(rows) <= expected
    assert dataset.data_rows == rows
    assert len(dataset.hf_dataset) == len(rows)
    assert {r["label"] for r in rows} == {"positive", "negative"}
    assert {r["language"] for r in rows} == {"en", "fr"}
    assert {r["model_id"] if "model_id" in r else r["model"] for r in rows} == {
        "openai:gpt-4.1-mini", "anthropic:claude-haiku-4-5"}
    # the same pipeline as the CLI, in a work dir beside the output file, named after it
    work = tmp_path / "sentiment_dataset.datafast"
    assert json.loads((work / "manifest.json").read_text())["name"] == "sentiment_dataset"
    ids = ids_of(work / "manifest.jsonl")
    assert len(ids) == 16
    assert "rows written" in (tmp_path / "generation.log").read_text()

    again = ClassificationDataset(config).generate([OpenAIProvider(model_id="gpt-4.1-mini"),
                                                    AnthropicProvider(model_id="claude-haiku-4-5")])
    assert again.data_rows == rows
    models = {json.loads(line)["id"]: json.loads(line)["model"] for line in (work / "manifest.jsonl").read_text().splitlines()}
    assert set(models) == set(ids)
    for rid, model in models.items():
        assert vendors[model.partition(":")[0]].submissions(rid) == 1

    dataset.to_csv(tmp_path / "copy.csv")
    dataset.to_parquet(tmp_path / "copy.parquet")
    dataset.to_jsonl(tmp_path / "copy.jsonl")
    assert (tmp_path / "copy.jsonl").read_text().count("\n") == len(rows)
    assert (tmp_path / "copy.csv").read_text().count("positive") > 0


@pytest.mark.emulator(batch_delay=0)
def test_api_keys_reach_the_runtimes_but_no_file_or_log(tmp_path, monkeypatch, vendors):
    from datafast.datasets import ClassificationDataset
    from datafast.llms import AnthropicProvider, OpenAIProvider
    from datafast.logger_config import configure_logger
    from datafast.schema.config import ClassificationDatasetConfig

    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    configure_logger(level="DEBUG", log_file="generation.log")
    secrets = ["sk-openai-SECRET-4f1d9", "sk-ant-SECRET-77c2e"]
    config = ClassificationDatasetConfig(classes=[{"name": "ok", "description": "Fine"}], output_file="out/k.parquet")
    dataset = ClassificationDataset(config).generate([OpenAIProvider(model_id="gpt-4.1-mini", api_key=secrets[0]),
                                                      AnthropicProvider(model_id="claude-haiku-4-5", api_key=secrets[1])])
    assert len(dataset.data_rows) > 0 and len(dataset.hf_dataset) == len(dataset.data_rows)
    assert (tmp_path / "out" / "k.parquet").exists() and (tmp_path / "out" / "k.datafast" / "state.json").exists()
    assert "OPENAI_API_KEY" not in os.environ and "ANTHROPIC_API_KEY" not in os.environ
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert tmp_path / "generation.log" in files
    for path in files:
        data = path.read_bytes()
        for secret in secrets:
            assert secret.encode() not in data, path
    assert secrets[0] not in repr(OpenAIProvider(api_key=secrets[0]))


@pytest.mark.emulator(batch_delay=0)
def test_preference_with_the_original_role_keywords(tmp_path, monkeypatch, vendors, ollama_emulator):
    from datafast.datasets import PreferenceDataset
    from datafast.llms import AnthropicProvider, OllamaProvider, OpenAIProvider
    from datafast.schema.config import PreferenceDatasetConfig

    monkeypatch.setenv("OPENAI_API_KEY", "test")
    monkeypatch.setenv("ANTHROPIC_API_KEY", "test")
    config = PreferenceDatasetConfig(
        input_documents=["The router resets when its button is held for ten seconds.",
                         "Firmware updates install between 2 and 4 a.m."],
        num_samples_per_prompt=2, llm_as_judge=True)
    assert config.name == "preference_dataset"
    dataset = PreferenceDataset(config)
    assert dataset.get_num_expected_rows([OpenAIProvider(model_id="gpt-4.1-mini")]) == 4
    dataset.generate(question_gen_llm=OpenAIProvider(model_id="gpt-4.1-mini", temperature=0.2),
                     chosen_response_gen_llm=AnthropicProvider(model_id="claude-haiku-4-5", temperature=0.2),
                     rejected_response_gen_llm=OllamaProvider(model_id="gemma3:4b", api_base=ollama_emulator.base_url,
                                                              temperature=0.2),
                     judge_llm=OpenAIProvider(model_id="gpt-4.1", temperature=0.2))
    rows = [json.loads(line) for line in (tmp_path / "preference_dataset.jsonl").read_text().splitlines()]
    assert rows and dataset.data_rows == rows
    for row in rows:
        assert row["question"] and row["chosen_response"] and row["rejected_response"]
        pair = ("anthropic:claude-haiku-4-5", "ollama:gemma3:4b")  # swapped when the judge preferred the rejected
        assert (row["chosen_model_id"], row["rejected_model_id"]) == (pair[::-1] if row["swapped"] else pair)
        assert "chosen_response_score" in row
    spec = json.loads((tmp_path / "preference_dataset.datafast" / "manifest.json").read_text())["spec"]
    assert spec["models"] == {"questions": ["openai:gpt-4.1-mini"], "chosen": ["anthropic:claude-haiku-4-5"],
                              "rejected": ["ollama:gemma3:4b"], "judge": ["openai:gpt-4.1"]}


def test_providers_disagreeing_on_a_generation_parameter_is_an_error_before_sending(tmp_path):
    from datafast.datasets import ClassificationDataset
    from datafast.llms import AnthropicProvider, OpenAIProvider, ProviderError

    config = datafast.ClassificationDatasetConfig(classes=[{"name": "ok", "description": "Fine"}],
                                                  output_file=str(tmp_path / "x.jsonl"))
    with pytest.raises(ProviderError, match="disagree on temperature"):
        ClassificationDataset(config).generate([OpenAIProvider(temperature=0.3), AnthropicProvider(temperature=0.9)])
    assert not (tmp_path / "x.datafast").exists()


def test_modes_a_runtime_lacks_and_mixed_modes_in_one_role_are_clear_errors(tmp_path):
    from datafast.datasets import ClassificationDataset
    from datafast.llms import AnthropicProvider, LocalProvider, OllamaProvider, OpenAIProvider, ProviderError

    with pytest.raises(ProviderError, match="batch mode for local is not available in this version"):
        LocalProvider(mode="batch")
    with pytest.raises(ProviderError, match="batch mode for ollama"):
        OllamaProvider(mode="batch")
    config = datafast.ClassificationDatasetConfig(classes=[{"name": "ok", "description": "Fine"}],
                                                  output_file=str(tmp_path / "x.jsonl"))
    with pytest.raises(ProviderError, match="mix modes"):
        ClassificationDataset(config).generate([OpenAIProvider(mode="online"), AnthropicProvider()])
    assert not (tmp_path / "x.datafast").exists()
    # Ollama runs online whatever the batch vendors do: no conflict
    spec = ClassificationDataset(config).spec([OpenAIProvider(), OllamaProvider()])
    assert spec.online is False and spec.models == ["openai:gpt-5-mini-2025-08-07", "ollama:gemma3:4b"]


@pytest.mark.emulator(batch_delay=0)
def test_online_mode_sends_that_role_online_through_the_same_pipeline(tmp_path, monkeypatch, vendors, ollama_emulator):
    from datafast.datasets import PreferenceDataset
    from datafast.llms import AnthropicProvider, OllamaProvider, OpenAIProvider

    monkeypatch.setenv("OPENAI_API_KEY", "test")
    monkeypatch.setenv("ANTHROPIC_API_KEY", "test")
    dataset = PreferenceDataset(datafast.PreferenceDatasetConfig(input_documents=["Updates install at night."],
                                                                 num_samples_per_prompt=2))
    dataset.generate(OpenAIProvider(model_id="gpt-4.1-mini"),
                     AnthropicProvider(model_id="claude-haiku-4-5", mode="online"),
                     OllamaProvider(api_base=ollama_emulator.base_url))
    assert dataset.data_rows
    work = tmp_path / "preference_dataset.datafast"
    assert json.loads((work / "manifest.json").read_text())["spec"]["online"] == ["chosen"]
    chosen = ids_of(next(work.glob("stages/chosen/manifest.jsonl")))
    assert chosen and vendors["anthropic"].stats()["calls"] == {"POST /v1/messages": len(chosen)}
    assert vendors["anthropic"].stats()["batches"] == []  # online calls, no batch
    assert vendors["openai"].stats()["batches"]  # the questions went in a batch


@pytest.mark.emulator(batch_delay=0)
def test_a_model_not_served_fails_before_anything_is_sent(tmp_path, monkeypatch, vendors, ollama_emulator):
    from datafast.datasets import ClassificationDataset
    from datafast.llms import LocalProvider, OllamaProvider, OpenAIProvider

    monkeypatch.setenv("OPENAI_API_KEY", "test")
    config = datafast.ClassificationDatasetConfig(classes=[{"name": "ok", "description": "Fine"}])
    dataset = ClassificationDataset(config)
    with pytest.raises(RuntimeFailure, match="no-such-model"):
        dataset.generate([OpenAIProvider(model_id="gpt-4.1-mini"),
                          OllamaProvider(model_id="no-such-model", api_base=ollama_emulator.base_url)])
    with pytest.raises(SpecError, match="unknown local model 'no-such-gguf'"):  # caught when compiled
        dataset.generate([OpenAIProvider(model_id="gpt-4.1-mini"), LocalProvider(model_id="no-such-gguf")])
    with pytest.raises(RuntimeConfigError, match="no-such.gguf"):  # a file of the user's: when it would run
        dataset.generate([OpenAIProvider(model_id="gpt-4.1-mini"), LocalProvider(model_id="/no-such.gguf")])
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    from datafast.llms import AnthropicProvider
    with pytest.raises(RuntimeConfigError, match="ANTHROPIC_API_KEY"):
        dataset.generate([OpenAIProvider(model_id="gpt-4.1-mini"), AnthropicProvider()])
    manifest = tmp_path / "classification.datafast" / "manifest.jsonl"
    assert not manifest.exists() or all(vendors["openai"].submissions(rid) == 0 for rid in ids_of(manifest))


def test_python_configs_need_no_name_or_models_but_compile_needs_models(tmp_path):
    config = datafast.ClassificationDatasetConfig(classes=[{"name": "ok", "description": "Fine"}],
                                                  output_file="data/My Reviews (v2).jsonl")
    assert config.name == "my-reviews-v2" and config.models == []
    assert datafast.RawDatasetConfig(document_types=["memo"], topics=["ops"]).name == "text"
    with pytest.raises(SpecError, match="models: no models"):
        datafast.compile(config, tmp_path / "x")
    with pytest.raises(ValueError, match="must end in .jsonl or .parquet"):
        datafast.ClassificationDatasetConfig(classes=[{"name": "ok", "description": "Fine"}], output_file="a.csv")


def test_an_unset_output_file_leaves_the_normalized_spec_as_before(tmp_path):
    base = {"classes": [{"name": "ok", "description": "Fine"}], "models": ["openai:gpt-4.1-mini"], "name": "n"}
    datafast.compile(datafast.ClassificationDatasetConfig(**base), tmp_path / "a")
    assert "output_file" not in json.loads((tmp_path / "a" / "manifest.json").read_text())["spec"]
    datafast.compile(datafast.ClassificationDatasetConfig(**base, output_file="n.jsonl"), tmp_path / "b")
    assert json.loads((tmp_path / "b" / "manifest.json").read_text())["spec"]["output_file"] == "n.jsonl"
    assert (tmp_path / "a" / "manifest.jsonl").read_bytes() == (tmp_path / "b" / "manifest.jsonl").read_bytes()


@pytest.mark.parametrize("missing", ["name", "models"])
def test_yaml_specs_still_require_name_and_models(tmp_path, missing):
    lines = {"datafast": "datafast: 1", "name": "name: t", "type": "type: classification",
             "classes": "classes:\n  - {name: ok, description: Fine}", "models": "models: [openai:gpt-4.1-mini]"}
    del lines[missing]
    spec = tmp_path / "spec.yaml"
    spec.write_text("\n".join(lines.values()) + "\n")
    with pytest.raises(SpecError) as err:
        datafast.plan(spec)
    assert f"{spec}:1: {missing}: required key missing" in str(err.value)


def test_configure_logger_takes_the_original_parameters(tmp_path):
    from datafast.logger_config import configure_logger

    log_file = tmp_path / "json.log"
    configure_logger(level="SUCCESS", log_file=str(log_file), serialize=True, colorize=False)
    logging.getLogger("datafast.test").info("hello")
    assert json.loads(log_file.read_text().splitlines()[-1])["message"] == "hello"
    configure_logger(level="INFO", log_file=str(log_file), format_string="<green>{time}</green> | {level: <8} | {message}")
    logging.getLogger("datafast.test").info("again")
    assert log_file.read_text().splitlines()[-1].endswith("| INFO | again")


def test_mcq_and_ultrachat_take_one_provider_list_for_every_role(tmp_path, monkeypatch, ollama_emulator):
    from datafast.datasets import MCQDataset, UltrachatDataset
    from datafast.llms import OllamaProvider

    monkeypatch.chdir(tmp_path)
    Path("docs.jsonl").write_text("".join(json.dumps({"text": f"Document {i}: the river floods every spring and "
                                                              f"feeds the delta farms of region {i}."}) + "\n"
                                          for i in range(2)))
    llms = [OllamaProvider(model_id="gemma3:4b", api_base=ollama_emulator.base_url)]
    mcq = MCQDataset(datafast.MCQDatasetConfig(source={"file": "docs.jsonl"}, min_document_length=10,
                                               num_samples_per_prompt=2, output_file="quiz.jsonl"))
    assert mcq.get_num_expected_rows(llms) == 4
    rows = mcq.generate(llms).data_rows
    assert rows and all(r["question"] and r["incorrect_answer_3"] for r in rows)
    assert (tmp_path / "quiz.datafast" / "stages").is_dir()  # the distractors stage ran through the same path

    chats = UltrachatDataset(datafast.UltrachatDatasetConfig(
        domain="cooking", topics_and_subtopics={"baking": ["bread"]}, personas=["a student"],
        num_samples_per_prompt=2, max_turns=1))
    assert chats.get_num_expected_rows(llms) == 2
    rows = chats.generate(llms).data_rows
    assert rows and all(r["opening_question"] and r["messages"] for r in rows)
    assert (tmp_path / "instruction_dataset.jsonl").exists()
