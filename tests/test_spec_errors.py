"""Every class of invalid spec: exit code 2, `file:line: field: message`, no traceback, nothing written."""

from __future__ import annotations

import subprocess
import sys

import pytest

GOOD = """\
datafast: 1
name: tiny
type: classification
classes:
  - name: pos
    description: Happy.
  - name: neg
    description: Sad.
models: [openai:gpt-4.1-mini]
"""

# (id, spec text, line, field, message fragment)
CASES = [
    ("unknown-key", GOOD + "clases: []\n", 10, "clases", "did you mean 'classes'"),
    ("unknown-nested-key", GOOD + "expansion:\n  sed: 3\n", 11, "expansion.sed", "did you mean 'seed'"),
    ("wrong-type", GOOD + "num_samples_per_prompt: many\n", 10, "num_samples_per_prompt", "valid integer"),
    ("empty-classes", GOOD.replace("classes:\n  - name: pos\n    description: Happy.\n  - name: neg\n    description: Sad.\n",
                                   "classes: []\n"), 4, "classes", "at least 1 item"),
    ("missing-description", GOOD.replace("    description: Sad.\n", ""), 7, "classes.1.description", "required key missing"),
    ("samples-below-one", GOOD + "num_samples_per_prompt: 0\n", 10, "num_samples_per_prompt", "greater than or equal to 1"),
    ("prompt-missing-mandatory", GOOD + "prompts:\n  - 'Write {num_samples} texts in {language_name}'\n", 11, "prompts.0",
     "missing mandatory placeholder {label_description}"),
    ("prompt-unknown-placeholder",
     GOOD + "prompts:\n  - '{num_samples} {language_name} {label_name} {label_description} {lable_name}'\n", 11,
     "prompts.0", "unknown placeholder {lable_name}; did you mean 'label_name'"),
    ("optional-without-values",
     GOOD + "prompts:\n  - '{num_samples} {language_name} {label_name} {label_description} {{tone}}'\n", 11,
     "prompts.0", "{{tone}} has no values"),
    ("empty-value-list", GOOD + "expansion:\n  placeholders:\n    tone: []\n", 12, "expansion.placeholders.tone",
     "at least 1 item"),
    ("random-samples-below-one", GOOD + "expansion:\n  num_random_samples: 0\n", 11, "expansion.num_random_samples",
     "greater than or equal to 1"),
    ("beyond-max-samples",
     GOOD + "prompts:\n  - '{num_samples} {language_name} {label_name} {label_description} {{a}}'\n"
            "expansion:\n  placeholders: {a: [x, y, z]}\n  max_samples: 5\n", 14, "expansion.max_samples",
     "expands to 6 prompts"),
    ("model-without-runtime", GOOD.replace("[openai:gpt-4.1-mini]", "[gpt-4.1-mini]"), 9, "models.0",
     "must be 'runtime:model'"),
    ("unknown-runtime", GOOD.replace("[openai:gpt-4.1-mini]", "[openia:gpt-4.1-mini]"), 9, "models.0",
     "unknown runtime 'openia'; did you mean 'openai'"),
    ("unsupported-version", GOOD.replace("datafast: 1", "datafast: 2"), 1, "datafast", "unsupported spec format version 2"),
    ("missing-version", GOOD.replace("datafast: 1\n", ""), 1, "", "required key 'datafast' missing"),
    ("unsafe-name-dots", GOOD.replace("name: tiny", "name: ../evil"), 2, "name", "unsafe name"),
    ("unsafe-name-separator", GOOD.replace("name: tiny", "name: a/b"), 2, "name", "unsafe name"),
    ("unknown-type", GOOD.replace("type: classification", "type: clasification"), 3, "type",
     "did you mean 'classification'"),
    ("version-as-boolean", GOOD.replace("datafast: 1", "datafast: true"), 1, "datafast", "unsupported spec format"),
    ("huge-seed", GOOD + "generation: {seed: 1180591620717411303424}\n", 10, "generation.seed", "less than or equal"),
    ("reserved-column", """\
datafast: 1
name: t
type: generic
source: {file: rows.jsonl}
input_columns: [review]
forward_columns: [language]
output_columns: [summary]
models: [openai:gpt-4.1-mini]
""", 6, "forward_columns.0", "reserved for datafast"),
    ("input-column-not-identifier", """\
datafast: 1
name: t
type: generic
source: {file: rows.jsonl}
input_columns: [review text]
output_columns: [summary]
models: [openai:gpt-4.1-mini]
""", 5, "input_columns.0", "must be an identifier"),
    ("bad-later-source-row", """\
datafast: 1
name: t
type: mcq
source: {file: broken.jsonl}
models: [openai:gpt-4.1-mini]
""", 4, "source.file", "broken.jsonl:2: invalid JSON"),
    ("context-without-column", """\
datafast: 1
name: t
type: mcq
source: {file: docs.jsonl}
prompts: ["{num_samples} {language_name} {document} {context}"]
models: [openai:gpt-4.1-mini]
""", 5, "prompts.0", "{context} needs 'context_column'"),
    ("no-document-passes-filters", """\
datafast: 1
name: t
type: mcq
source: {file: docs.jsonl}
min_document_length: 5000
models: [openai:gpt-4.1-mini]
""", 5, "min_document_length", "no document of the source has between 5,000 and 10,000 characters"),
    ("duplicate-class", GOOD.replace("name: neg", "name: pos"), 7, "classes.1.name", "duplicate 'pos'"),
    ("duplicate-key", GOOD + "name: other\n", 10, "name", "duplicate key"),
    ("yaml-syntax", GOOD + "languages: {en: English\n", 11, "", "YAML syntax error"),
    ("non-mapping", "- a\n- b\n", 1, "", "a spec is a mapping"),
    ("empty-topics", """\
datafast: 1
name: t
type: text
document_types: [blog post]
topics: []
models: [ollama:gemma3:4b]
""", 5, "topics", "at least 1 item"),
    ("empty-document-types", """\
datafast: 1
name: t
type: text
document_types: []
topics: [x]
models: [ollama:gemma3:4b]
""", 4, "document_types", "at least 1 item"),
    ("unknown-role", """\
datafast: 1
name: t
type: mcq
source: {file: docs.jsonl}
models:
  questions: [openai:gpt-4.1-mini]
  distractor: [openai:gpt-4.1-mini]
""", 7, "models.distractor", "did you mean 'distractors'"),
    ("missing-source-file", """\
datafast: 1
name: t
type: mcq
source: {file: nowhere.jsonl}
models: [openai:gpt-4.1-mini]
""", 4, "source.file", "file not found"),
    ("missing-input-column", """\
datafast: 1
name: t
type: generic
source: {file: rows.jsonl}
input_columns: [review, rating]
output_columns: [summary]
models: [openai:gpt-4.1-mini]
""", 5, "input_columns.1", "column 'rating' is not in the source"),
    ("type-not-a-string", GOOD.replace("type: classification", "type: [classification]"), 3, "type",
     "unknown dataset type ['classification']"),
    ("control-character", GOOD + "description: a\x01b\n", 10, "", "character U+0001 is not allowed in YAML"),
    ("unknown-yaml-tag", GOOD + "description: !shout hello\n", 10, "", "unsupported YAML value"),
    ("yaml-one-one-sexagesimal-number", GOOD + "num_samples_per_prompt: 1:30\n", 10, "num_samples_per_prompt",
     "valid integer"),
]


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_invalid_spec_is_located_and_exits_2(case, write_spec, cli, tmp_path):
    _, text, line, field, fragment = case
    (tmp_path / "docs.jsonl").write_text('{"text": "' + "x" * 200 + '"}\n')
    (tmp_path / "rows.jsonl").write_text('{"review": "fine"}\n')
    (tmp_path / "broken.jsonl").write_text('{"text": "' + "x" * 200 + '"}\n{"text": oops}\n')
    spec = write_spec(text)
    out = tmp_path / "out"
    result = cli("compile", spec, "-o", out)
    assert result.exit_code == 2, result.output
    prefix = f"{spec}:{line}: {field + ': ' if field else ''}"
    lines = result.stderr.splitlines()
    assert any(prefix in ln and fragment in ln for ln in lines), result.stderr
    assert "Traceback" not in result.stderr
    assert not out.exists()  # nothing written


def test_every_problem_is_reported_at_once(write_spec, cli):
    spec = write_spec(GOOD.replace("[openai:gpt-4.1-mini]", "[nope:x, gpt]") + "num_samples_per_prompt: 0\n")
    result = cli("plan", spec)
    assert result.exit_code == 2
    assert "models.1" in result.stderr and "num_samples_per_prompt" in result.stderr


@pytest.mark.parametrize("content,fragment", [
    (b"", "empty spec"),
    (b"   \n\n", "empty spec"),
    (b"\x89PNG\r\n\x1a\n\x00\x00binary", "binary file"),
    (b"name: \xff\xfe bad", "not UTF-8"),
])
def test_unusable_files(tmp_path, cli, content, fragment):
    spec = tmp_path / "spec.yaml"
    spec.write_bytes(content)
    result = cli("compile", spec, "-o", tmp_path / "out")
    assert result.exit_code == 2
    assert result.stderr.startswith(f"error: {spec}: ") and fragment in result.stderr


def test_missing_spec_path(tmp_path, cli):
    result = cli("plan", tmp_path / "nope.yaml")
    assert result.exit_code == 2
    assert "spec file not found" in result.stderr


def test_directory_as_spec(tmp_path, cli):
    result = cli("plan", tmp_path)
    assert result.exit_code == 2
    assert "is a directory" in result.stderr


def test_unreadable_source_is_a_spec_error(write_spec, cli, tmp_path):
    (tmp_path / "docs.jsonl").write_bytes(b'{"text": "\xff\xfe"}\n')
    spec = write_spec("datafast: 1\nname: t\ntype: mcq\nsource: {file: docs.jsonl}\nmodels: [openai:m]\n")
    result = cli("plan", spec)
    assert result.exit_code == 2
    assert f"{spec}:4: source.file: cannot read" in result.stderr


def test_unused_expansion_values_are_a_warning_not_an_error(write_spec, cli, tmp_path):
    spec = write_spec(GOOD + "expansion:\n  placeholders: {tone: [a, b]}\n")
    result = cli("compile", spec, "-o", tmp_path / "out")
    assert result.exit_code == 0, result.stderr
    assert f"warning: {spec}:11: expansion.placeholders.tone: no prompt uses {{{{tone}}}}" in result.stderr


def test_real_process_prints_no_traceback(write_spec):
    spec = write_spec(GOOD.replace("datafast: 1", "datafast: 7"))
    proc = subprocess.run([sys.executable, "-m", "datafast", "compile", str(spec)], capture_output=True, text=True)
    assert proc.returncode == 2
    assert proc.stderr.strip() == f"error: {spec}:1: datafast: unsupported spec format version 7; this datafast reads version 1"
    assert proc.stdout == ""


def test_yaml_one_one_booleans_stay_strings(write_spec, cli, tmp_path):
    spec = write_spec(GOOD.replace("name: pos", "name: yes") + "languages: {en: English, no: Norwegian}\n")
    result = cli("compile", spec, "-o", tmp_path / "out")
    assert result.exit_code == 0, result.stderr
    manifest = (tmp_path / "out" / "manifest.json").read_text()
    assert '"no": "Norwegian"' in manifest and '"name": "yes"' in manifest


def test_a_misspelt_key_is_reported_once(write_spec, cli):
    spec = write_spec(GOOD.replace("    description: Happy.", "    descripton: Happy."))
    result = cli("plan", spec)
    assert result.exit_code == 2
    assert result.stderr.count("\n") == 1 and "did you mean 'description'" in result.stderr
