"""The Python API fails as helpfully as the CLI (issue 14): a config built in Python, or a spec given as a mapping,
raises a located SpecError (field path, did-you-mean) rather than pydantic's ValidationError dump, and a missing
key names the provider's `api_key=` as well as the variable."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

import datafast
from datafast.compiler.errors import SpecError
from datafast.runtimes import RuntimeConfigError
from datafast.schema.config import ClassificationDatasetConfig, GenerationConfig

CLASSES = [{"name": "pos", "description": "Happy."}]


def raised(fn, *args, **kwargs) -> str:  # type: ignore[no-untyped-def]
    with pytest.raises(SpecError) as info:
        fn(*args, **kwargs)
    assert not isinstance(info.value, ValidationError)
    text = str(info.value)
    assert "errors.pydantic.dev" not in text and "input_type=" not in text, text
    return text


def test_config_with_a_wrong_value_names_the_field() -> None:
    text = raised(ClassificationDatasetConfig, classes=CLASSES, num_samples_per_prompt="x")
    assert text == ("ClassificationDatasetConfig(...): num_samples_per_prompt: input should be a valid integer, "
                    "unable to parse string as an integer")


def test_config_with_a_misspelt_field_suggests_the_right_one() -> None:
    text = raised(ClassificationDatasetConfig, clases=CLASSES)
    assert text == "ClassificationDatasetConfig(...): clases: unknown key 'clases'; did you mean 'classes'?"


def test_nested_config_and_original_field_checks_are_located_too() -> None:
    assert "did you mean 'max_tokens'?" in raised(GenerationConfig, max_tokenz=10)
    text = raised(ClassificationDatasetConfig, classes=CLASSES, dataset_type="mcq_dataset")
    assert text.startswith("ClassificationDatasetConfig(...): dataset_type: ")


def test_a_wrong_value_is_still_a_value_error() -> None:  # scripts that caught ValueError keep working
    with pytest.raises(ValueError, match="must end in .jsonl or .parquet"):
        ClassificationDatasetConfig(classes=CLASSES, output_file="rows.csv")


def test_compile_takes_a_mapping_and_locates_its_mistakes(tmp_path: Path) -> None:
    spec = {"datafast": 1, "name": "m", "type": "classification", "classes": CLASSES, "models": ["openai:gpt-4.1-mini"]}
    assert datafast.compile(spec, tmp_path / "ok").requests > 0
    text = raised(datafast.compile, {**spec, "num_samples_per_promt": 2}, tmp_path / "bad")
    assert "num_samples_per_promt: unknown key" in text and "did you mean 'num_samples_per_prompt'?" in text
    assert not (tmp_path / "bad").exists()


def test_missing_key_in_python_names_the_providers_api_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from datafast.datasets import ClassificationDataset
    from datafast.llms import AnthropicProvider

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    dataset = ClassificationDataset(ClassificationDatasetConfig(classes=CLASSES))
    with pytest.raises(RuntimeConfigError) as info:
        dataset.generate([AnthropicProvider()])
    assert "pass api_key=... to AnthropicProvider(...)" in str(info.value) and "ANTHROPIC_API_KEY" in str(info.value)
