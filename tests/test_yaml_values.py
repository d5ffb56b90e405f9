"""Unquoted YAML values reach prompts exactly as written; numeric settings keep their normal typing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from datafast.compiler.loader import load_spec

# plain scalars that YAML 1.1 (PyYAML) or 1.2 would read as something other than the text written
TRICKY = ["1.10", "1_000", "0o17", "017", "12:30", "1:20:30", "1e3", ".5", "-0", "+1", "0x1F", "0b101", ".inf",
          ".nan", "no", "on", "yes", "off", "y", "true", "False", "2024-01-01", "2001-12-14t21:59:43.10-05:00", "=",
          "1"]


def _compile(tmp_path: Path, cli, text: str) -> list[dict]:
    spec = tmp_path / "spec.yaml"
    spec.write_text(text, encoding="utf-8")
    result = cli("compile", spec, "-o", tmp_path / "out")
    assert result.exit_code == 0, result.stderr
    return [json.loads(line) for line in (tmp_path / "out" / "manifest.jsonl").read_text("utf-8").splitlines()]


@pytest.mark.parametrize("value", TRICKY)
def test_classification_values_arrive_as_written(value, tmp_path, cli):
    requests = _compile(tmp_path, cli, f"""\
datafast: 1
name: t
type: classification
classes:
  - name: {value}
    description: {value}
languages: {{xx: {value}}}
prompts: ["{{num_samples}}|{{language_name}}|{{label_name}}|{{label_description}}|{{{{v}}}}"]
expansion:
  placeholders:
    v: [{value}]
models: [openai:gpt-4.1-mini]
""")
    assert [r["messages"][-1]["content"] for r in requests] == [f"5|{value}|{value}|{value}|{value}"]
    assert requests[0]["meta"]["label"] == value


@pytest.mark.parametrize("value", ["1.10", "12:30", "017", "2024-01-01", "no", "true"])
def test_text_type_values_arrive_as_written(value, tmp_path, cli):
    requests = _compile(tmp_path, cli, f"""\
datafast: 1
name: {value.replace(':', '-').replace('.', '-')}
type: text
document_types:
  - {value}
topics: [{value}]
prompts:
  - "{{num_samples}}|{{language_name}}|{{document_type}}|{{topic}}"
models: [openai:gpt-4.1-mini]
""")
    assert [r["messages"][-1]["content"] for r in requests] == [f"5|English|{value}|{value}"]


def test_every_text_field_keeps_the_text(tmp_path):
    spec = tmp_path / "spec.yaml"
    spec.write_text("""\
datafast: 1
name: 2024-01-01
type: conversation
description: 1.10
system_prompt: 12:30
domain: 0x1F
topics_and_subtopics:
  2024: [1.50, 017]
  on: [true]
personas: [1e3, ~x]
languages: {1: 1_000}
models:
  questions: [openai:m]
  assistant: [openai:m]
  user: [openai:m]
""", encoding="utf-8")
    config = load_spec(spec).config
    assert (config.name, config.description, config.system_prompt, config.domain) == ("2024-01-01", "1.10", "12:30", "0x1F")
    assert config.topics_and_subtopics == {"2024": ["1.50", "017"], "on": ["true"]}  # type: ignore[attr-defined]
    assert config.personas == ["1e3", "~x"]  # type: ignore[attr-defined]
    assert config.languages == {"1": "1_000"}


def test_input_documents_keep_the_text(tmp_path):
    spec = tmp_path / "spec.yaml"
    spec.write_text("datafast: 1\nname: p\ntype: preference\ninput_documents: [3.14159265358979323846, 2024-01-01]\n"
                    "models: [openai:m]\n", encoding="utf-8")
    assert load_spec(spec).config.input_documents == ["3.14159265358979323846", "2024-01-01"]  # type: ignore[attr-defined]


def test_numeric_settings_keep_their_typing(tmp_path, cli):
    requests = _compile(tmp_path, cli, """\
datafast: 1
name: t
type: classification
classes: [{name: a, description: b}]
num_samples_per_prompt: 0x3
generation: {temperature: .5, top_p: 1e-1, max_tokens: 1e3, seed: 017}
expansion: {combinatorial: true, max_samples: 1_000}
models: [openai:gpt-4.1-mini]
""")
    assert requests[0]["params"] == {"max_tokens": 1000, "temperature": 0.5, "top_p": 0.1, "seed": 17}  # YAML 1.2: 017 is 17
    assert requests[0]["messages"][-1]["content"].count("3") >= 1


@pytest.mark.parametrize("line,where,fragment", [
    ("classes: [{name: ~, description: b}]", "5: classes.0.name", "YAML reads an empty value, ~ and null as null"),
    ("classes: [{name: a, description: }]", "5: classes.0.description", "quote it: '~'"),
    ("classes: [{name: a, description: [x]}]", "5: classes.0.description", "valid string"),
    ("classes: [{name: a, description: b}]\nnum_samples_per_prompt: 12:30", "6: num_samples_per_prompt", "valid integer"),
    ("classes: [{name: a, description: b}]\nnum_samples_per_prompt: !!int x", "6",
     "unsupported YAML value: 'x' is not an integer"),
    ("generation: {temperature: !!float x}\nclasses: [{name: a, description: b}]", "5", "'x' is not a number"),
])
def test_values_that_cannot_be_kept_say_how_to_fix(line, where, fragment, tmp_path, cli):
    spec = tmp_path / "spec.yaml"
    spec.write_text(f"datafast: 1\nname: t\ntype: classification\nmodels: [openai:m]\n{line}\n", encoding="utf-8")
    result = cli("plan", spec)
    assert result.exit_code == 2
    assert result.stderr.startswith(f"error: {spec}:{where}: ") and fragment in result.stderr, result.stderr
    assert "Traceback" not in result.stderr


def test_merge_keys_and_aliases_keep_the_text(tmp_path):
    spec = tmp_path / "spec.yaml"
    spec.write_text("""\
datafast: 1
name: t
type: classification
classes:
  - &first {name: 1.10, description: 12:30}
  - <<: *first
    name: 2.20
expansion:
  placeholders: {v: [*x]}
models: [openai:m]
""".replace("[*x]", "[&x 1.0, 0o17]"), encoding="utf-8")
    config = load_spec(spec).config
    assert [(c.name, c.description) for c in config.classes] == [("1.10", "12:30"), ("2.20", "12:30")]  # type: ignore[attr-defined]
    assert config.expansion.placeholders == {"v": ["1.0", "0o17"]}


def test_alias_bomb_is_an_error_not_a_hang(tmp_path, cli):
    levels = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    levels += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]" for i in range(1, 9)]
    spec = tmp_path / "spec.yaml"
    spec.write_text("datafast: 1\nname: t\ntype: classification\n" + "\n".join(levels) + "\n", encoding="utf-8")
    result = cli("plan", spec)
    assert result.exit_code == 2 and "expands (through YAML aliases) to more than" in result.stderr


def test_recursive_yaml_is_an_error(tmp_path, cli):
    spec = tmp_path / "spec.yaml"
    spec.write_text("datafast: 1\nname: t\ntype: classification\nclasses: &c [*c]\nmodels: [openai:m]\n", encoding="utf-8")
    result = cli("plan", spec)
    assert result.exit_code == 2 and "Traceback" not in result.stderr
