"""The original datafast's documented example of each dataset type, as its users would write it (the original's
config field names, providers, `generate`), pointed at the vendor emulators with small sizes.

Each test checks the rows a user of the original relies on (fields, labels, languages), and that a second
`generate` resumes: every request was received exactly once, nothing is sent again.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from datafast.compiler.errors import SpecError
from tests.emulators import Emulator


@pytest.fixture
def vendors(tmp_path, monkeypatch, openai_emulator, anthropic_emulator, gemini_emulator):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("OPENAI_BASE_URL", openai_emulator.base_url)
    monkeypatch.setenv("ANTHROPIC_BASE_URL", anthropic_emulator.base_url)
    monkeypatch.setenv("GOOGLE_GEMINI_BASE_URL", gemini_emulator.base_url)
    for var in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "GEMINI_API_KEY"):
        monkeypatch.setenv(var, "test")
    return {"openai": openai_emulator, "anthropic": anthropic_emulator, "gemini": gemini_emulator}


def rows_of(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def received(vendors: dict[str, Emulator]) -> dict[str, dict[str, int]]:
    return {name: emu.stats()["request_counts"] for name, emu in vendors.items()}


def assert_second_generate_sends_nothing(vendors: dict[str, Emulator], generate_again: Any) -> None:
    """Every request was received once; generating again sends none of them (nor anything new)."""
    before = received(vendors)
    assert any(before.values())
    for counts in before.values():
        assert set(counts.values()) <= {1}
    generate_again()
    assert received(vendors) == before


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")


@pytest.mark.emulator(batch_delay=0)
def test_classification_example_trail_conditions(tmp_path, vendors):
    from datafast.datasets import ClassificationDataset
    from datafast.llms import AnthropicProvider, OpenAIProvider
    from datafast.logger_config import configure_logger
    from datafast.schema.config import ClassificationDatasetConfig, PromptExpansionConfig

    configure_logger()
    config = ClassificationDatasetConfig(
        dataset_type="text_classification",
        classes=[{"name": "trail_obstruction", "description": "The path is blocked: fallen trees, snow, rockfall."},
                 {"name": "positive_conditions", "description": "A clear, safe and pleasant trail."}],
        num_samples_per_prompt=2,
        output_file="trail_conditions_classification.jsonl",
        languages={"en": "English", "fr": "French"},
        prompts=["Write {num_samples} hiker reports in {language_name} of the '{label_name}' kind "
                 "({label_description}), as a {{style}} about a {{trail_type}}."],
        expansion=PromptExpansionConfig(placeholders={"trail_type": ["mountain trail", "coastal path"],
                                                      "style": ["short social media post"]},
                                        combinatorial=True, num_random_samples=200),
    )
    providers = [OpenAIProvider(model_id="gpt-5-mini-2025-08-07"),
                 AnthropicProvider(model_id="claude-haiku-4-5-20251001")]
    dataset = ClassificationDataset(config)
    assert dataset.get_num_expected_rows(providers) == 2 * 2 * 2 * 2 * 2  # classes x langs x trails x models x n
    dataset.generate(providers)

    rows = rows_of(tmp_path / "trail_conditions_classification.jsonl")
    assert rows and dataset.data_rows == rows
    assert {r["label"] for r in rows} == {"trail_obstruction", "positive_conditions"}
    assert {r["language"] for r in rows} == {"en", "fr"}
    assert all(isinstance(r["text"], str) and r["text"] for r in rows)
    assert_second_generate_sends_nothing(vendors, lambda: ClassificationDataset(config).generate(providers))


@pytest.mark.emulator(batch_delay=0)
def test_raw_text_example_space_engineering(tmp_path, vendors):
    from datafast.datasets import RawDataset
    from datafast.llms import AnthropicProvider, OpenAIProvider
    from datafast.schema.config import PromptExpansionConfig, RawDatasetConfig

    config = RawDatasetConfig(
        dataset_type="text",
        document_types=["space engineering textbook", "personal blog of a space engineer"],
        topics=["Microgravity", "Atomic Oxygen"],
        num_samples_per_prompt=1,
        output_file="space_engineering_environment_effects_texts.jsonl",
        languages={"en": "English", "fr": "French"},
        prompts=["Write {num_samples} section of a {document_type} in {language_name} on {topic} in space "
                 "engineering, for {{expertise_level}} readers."],
        expansion=PromptExpansionConfig(placeholders={"expertise_level": ["executives", "PhD candidates"]}),
    )
    providers = [OpenAIProvider(model_id="gpt-5-mini-2025-08-07"),
                 AnthropicProvider(model_id="claude-haiku-4-5-20251001")]
    dataset = RawDataset(config)
    assert dataset.get_num_expected_rows(providers) == 2 * 2 * 2 * 2 * 2  # doc types x topics x langs x levels x models
    dataset.generate(providers)

    rows = rows_of(tmp_path / "space_engineering_environment_effects_texts.jsonl")
    assert rows and dataset.data_rows == rows
    assert {r["language"] for r in rows} == {"en", "fr"}
    assert all(isinstance(r["text"], str) and r["text"] for r in rows)
    assert_second_generate_sends_nothing(vendors, lambda: RawDataset(config).generate(providers))


@pytest.mark.emulator(batch_delay=0)
def test_ultrachat_example_materials_science(tmp_path, vendors):
    from datafast.datasets import UltrachatDataset
    from datafast.llms import AnthropicProvider
    from datafast.schema.config import UltrachatDatasetConfig

    personas = ["Junior engineer two years into the job", "Senior materials scientist"]
    config = UltrachatDatasetConfig(
        dataset_type="instruction_dataset",
        domain="Materials Science",
        topics_and_subtopics={"Composite Materials": ["Fiber Reinforcement", "Resin Systems"],
                              "Polymers": ["UV Degradation"]},
        personas=personas,
        num_samples=3,
        max_turns=3,
        conversation_continuation_prob=0.25,
        output_file="wind_turbine_materials_conversations.jsonl",
        languages={"en": "English"},
    )
    providers = [AnthropicProvider(model_id="claude-haiku-4-5-20251001")]
    dataset = UltrachatDataset(config)
    assert dataset.get_num_expected_rows(providers) == 3  # num_samples caps the conversations started
    dataset.generate(providers)

    rows = rows_of(tmp_path / "wind_turbine_materials_conversations.jsonl")
    assert 0 < len(rows) <= 3 and dataset.data_rows == rows
    for row in rows:
        assert row["opening_question"] and row["persona"] in personas and row["language"] == "en"
        roles = [m["role"] for m in row["messages"]]
        assert roles[:2] == ["user", "assistant"] and roles.count("assistant") <= 3
    assert_second_generate_sends_nothing(vendors, lambda: UltrachatDataset(config).generate(providers))


@pytest.mark.emulator(batch_delay=0)
def test_mcq_example_from_a_local_file(tmp_path, vendors):
    from datafast.datasets import MCQDataset
    from datafast.llms import AnthropicProvider, GeminiProvider, OpenAIProvider
    from datafast.schema.config import MCQDatasetConfig, PromptExpansionConfig

    documents = [f"Document {i}: atomic oxygen in low Earth orbit erodes polymer films such as Kapton, so "
                 f"spacecraft surfaces facing the ram direction get protective coatings ({'x' * 20 * i})."
                 for i in range(1, 8)]
    write_jsonl(tmp_path / "data" / "sample_texts.jsonl", [{"text": d} for d in documents] + [{"text": "too short"}])
    config = MCQDatasetConfig(
        dataset_type="mcq_dataset",
        local_file_path="data/sample_texts.jsonl",
        text_column="text",
        sample_count=2,
        num_samples_per_prompt=2,
        min_document_length=100,
        max_document_length=20000,
        output_file="mcq_dataset.jsonl",
        languages={"en": "English"},
        prompts=["Write {num_samples} multiple choice questions in {language_name} at {{difficulty_level}} "
                 "level about this document, each short and self-contained: {document}"],
        expansion=PromptExpansionConfig(placeholders={"difficulty_level": ["high-school", "university"]}),
    )
    providers = [OpenAIProvider(model_id="gpt-5-mini-2025-08-07"),
                 AnthropicProvider(model_id="claude-haiku-4-5-20251001"),
                 GeminiProvider(model_id="gemini-2.0-flash")]
    dataset = MCQDataset(config)
    expected = dataset.get_num_expected_rows(providers, source_data_num_rows=2)
    assert expected == 2 * 2 * 3 * 2  # documents x levels x models x questions
    dataset.generate(providers)

    rows = rows_of(tmp_path / "mcq_dataset.jsonl")
    assert 0 < len(rows) <= expected and dataset.data_rows == rows
    for row in rows:
        assert row["source_document"] in documents[:2]
        answers = [row[k] for k in ("correct_answer", "incorrect_answer_1", "incorrect_answer_2",
                                    "incorrect_answer_3")]
        assert row["question"] and all(answers) and row["language"] == "en"
    assert_second_generate_sends_nothing(vendors, lambda: MCQDataset(config).generate(providers))


@pytest.mark.emulator(batch_delay=0)
def test_preference_example_with_a_judge(tmp_path, vendors):
    from datafast.datasets import PreferenceDataset
    from datafast.llms import AnthropicProvider, GeminiProvider, OpenAIProvider
    from datafast.schema.config import PreferenceDatasetConfig

    write_jsonl(tmp_path / "data" / "lessons.jsonl", [
        {"text": "Lesson: thermal vacuum tests caught a heater failure the analysis had missed."},
        {"text": "Lesson: late changes to flight software need a full regression run."}])
    documents = [json.loads(line)["text"] for line in (tmp_path / "data" / "lessons.jsonl").read_text().splitlines()]
    config = PreferenceDatasetConfig(
        dataset_type="preference_dataset",
        input_documents=documents,
        num_samples_per_prompt=2,
        languages={"en": "English"},
        llm_as_judge=True,
        evol_instruct=False,
        output_file="nasa_lessons_learned_dataset.jsonl",
        question_generation_prompts=["From this document, ask {num_samples} specific questions in "
                                     "{language_name}:\n\n{document}"],
        chosen_response_generation_prompt="As an expert, answer fully in {language_name}.\n"
                                          "Document: {document}\nQuestion: {question}",
        rejected_response_generation_prompt="Answer briefly in {language_name}.\n"
                                            "Document: {document}\nQuestion: {question}",
    )
    llms = {"question_gen_llm": OpenAIProvider(model_id="gpt-5-mini-2025-08-07"),
            "chosen_response_gen_llm": AnthropicProvider(model_id="claude-haiku-4-5-20251001"),
            "rejected_response_gen_llm": GeminiProvider(model_id="gemini-2.0-flash"),
            "judge_llm": OpenAIProvider(model_id="gpt-5-mini-2025-08-07")}
    dataset = PreferenceDataset(config)
    assert dataset.get_num_expected_rows(llms=[llms["question_gen_llm"]]) == 2 * 2
    dataset.generate(**llms)

    rows = rows_of(tmp_path / "nasa_lessons_learned_dataset.jsonl")
    assert rows and dataset.data_rows == rows
    for row in rows:
        assert row["input_document"] in documents and row["question"] and row["language"] == "en"
        assert row["chosen_response"] and row["rejected_response"]
        assert {row["chosen_model_id"], row["rejected_model_id"]} == {
            "anthropic:claude-haiku-4-5-20251001", "gemini:gemini-2.0-flash"}
        assert "chosen_response_score" in row and "rejected_response_score" in row
    assert_second_generate_sends_nothing(vendors, lambda: PreferenceDataset(config).generate(**llms))


@pytest.mark.emulator(batch_delay=0)
def test_generic_pipeline_example_persona_tweets(tmp_path, vendors):
    from datafast.datasets import GenericPipelineDataset
    from datafast.llms import OpenAIProvider
    from datafast.schema.config import GenericPipelineDatasetConfig

    personas = [{"persona": f"A propulsion engineer who tests engine number {i}", "summary_label": f"label-{i}"}
                for i in range(6)]
    write_jsonl(tmp_path / "personas.jsonl", personas)
    config = GenericPipelineDatasetConfig(
        dataset_type="generic_pipeline_dataset",
        local_file_path="personas.jsonl",
        input_columns=["persona"],
        forward_columns=["summary_label"],
        output_columns=["tweet"],
        sample_count=4,
        num_samples_per_prompt=1,
        prompts=["Here is a persona. Write {num_samples} tweets in {language} this person could post.\n\n"
                 "Persona: {persona}\n\nAnswer in JSON."],
        output_file="persona_tweets.jsonl",
        languages={"en": "English", "fr": "French"},
        skip_function=lambda row: row["summary_label"] == "label-1",
    )
    providers = [OpenAIProvider(model_id="gpt-5-mini-2025-08-07")]
    dataset = GenericPipelineDataset(config)
    assert dataset.get_num_expected_rows(providers) == 4 * 2  # rows kept (sample_count) x languages
    dataset.generate(providers)

    rows = rows_of(tmp_path / "persona_tweets.jsonl")
    assert rows and dataset.data_rows == rows
    assert {r["language"] for r in rows} == {"en", "fr"}
    # skip_function left label-1 out; sample_count took the first four rows it kept
    assert {r["summary_label"] for r in rows} == {"label-0", "label-2", "label-3", "label-4"}
    assert all(isinstance(r["tweet"], str) and r["tweet"] for r in rows)
    assert_second_generate_sends_nothing(vendors, lambda: GenericPipelineDataset(config).generate(providers))


def test_original_field_names_map_to_ours_in_python(tmp_path, monkeypatch):
    from datafast.schema.config import (
        GenericPipelineDatasetConfig,
        MCQDatasetConfig,
        PreferenceDatasetConfig,
        UltrachatDatasetConfig,
    )

    monkeypatch.chdir(tmp_path)
    mcq = MCQDatasetConfig(local_file_path="docs.csv", text_column="body")
    assert mcq.source.file == str(tmp_path / "docs.csv")
    generic = GenericPipelineDatasetConfig(hf_dataset_name="org/personas", input_columns=["persona"],
                                           output_columns=["tweet"], prompts=["{persona} {num_samples}"])
    assert generic.source.hf_dataset == "org/personas" and generic.skip_function is None
    tweets = GenericPipelineDatasetConfig(hf_dataset_name="org/p", input_columns=["persona"], output_columns=["t"],
                                          prompts=["{num_samples} in {language}: {persona} {{language}}"])
    assert tweets.prompts == ["{num_samples} in {language_name}: {persona} {{language}}"]  # the original's name
    chat = UltrachatDatasetConfig(domain="d", topics_and_subtopics={"t": ["s"]}, personas=["p"],
                                  question_generation_prompts=["{domain} {topic} {subtopic} {num_samples}"])
    assert chat.prompts == ["{domain} {topic} {subtopic} {num_samples}"]
    pref = PreferenceDatasetConfig(input_documents=["d"], evol_instruct=False, evolution_prompt=None,
                                   question_generation_prompts=["{num_samples} {language_name} {document}"])
    assert pref.prompts == ["{num_samples} {language_name} {document}"]
    assert pref.model_dump() == PreferenceDatasetConfig(
        input_documents=["d"], prompts=["{num_samples} {language_name} {document}"]).model_dump()
    # our own names keep working
    assert MCQDatasetConfig(source={"file": "docs.csv"}).source.file == "docs.csv"


@pytest.mark.parametrize(("build", "field", "message"), [
    (lambda c: c.MCQDatasetConfig(dataset_type="text", local_file_path="d.csv"), "dataset_type", "mcq_dataset"),
    (lambda c: c.PreferenceDatasetConfig(input_documents=["d"], evol_instruct=True), "evol_instruct",
     "not implemented by the original"),
    (lambda c: c.PreferenceDatasetConfig(input_documents=["d"], evolution_prompt="evolve {question}"),
     "evolution_prompt", "only with evol_instruct"),
    (lambda c: c.MCQDatasetConfig(local_file_path="d.csv", source={"file": "e.csv"}), "source", "either"),
    (lambda c: c.GenericPipelineDatasetConfig(local_file_path="d.csv", input_columns=["a"], output_columns=["b"],
                                              prompts=["{a}"], skip_function="label-1"), "skip_function", "callable"),
    (lambda c: c.RawDatasetConfig(document_types=["x"], topics=["y"], hf_dataset_name="org/d"), "hf_dataset_name",
     "unknown key 'hf_dataset_name'"),
])
def test_original_fields_that_cannot_apply_are_clear_errors(build, field, message):
    import datafast.schema.config as c

    with pytest.raises(SpecError) as info:  # located, as a spec file's mistakes are; not pydantic's dump
        build(c)
    assert info.value.issues[0].field == field
    assert message in str(info.value)


def test_yaml_specs_keep_our_names_only():
    from datafast.compiler.spec import MCQDatasetConfig

    with pytest.raises(ValidationError, match="local_file_path"):
        MCQDatasetConfig.model_validate({"datafast": 1, "type": "mcq", "name": "m", "models": ["openai:m"],
                                         "local_file_path": "d.csv"})
