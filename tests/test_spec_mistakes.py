"""Mistakes caught before money is spent (compile/plan): misspelt or unpriced models, stray spaces and YAML
mapping mix-ups in model names, answers longer than max_tokens, a model listed twice, broken price files, and
a spec given where an output dir is expected (or the reverse)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import orjson
import pytest

import datafast
from datafast.compiler.build import prepare
from datafast.compiler.spec import ClassificationDatasetConfig
from tests.emulators.anthropic import params_problem
from tests.test_vendors_openai import chat_request_validator  # noqa: F401  (a fixture)

HEAD = """\
datafast: 1
name: tiny
type: classification
classes: [{name: pos, description: Happy.}, {name: neg, description: Sad.}]
"""


def spec_with(write_spec, models: str, extra: str = "", name: str = "spec.yaml") -> Path:
    """HEAD, then `models` on line 5, then `extra` from line 6."""
    return write_spec(HEAD + f"models: {models}\n" + extra, name)


def plan_json(cli, *args: Any) -> dict[str, Any]:
    result = cli("plan", *args, "--json")
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


def job_lines(out: Path, vendor: str) -> list[dict[str, Any]]:
    files = sorted((out / "jobs" / vendor).glob("*.jsonl"))
    assert files, f"no {vendor} job file"
    return [orjson.loads(line) for f in files for line in f.read_bytes().splitlines()]


# -- 1. unknown and unpriced models -------------------------------------------------------------------------


def test_a_misspelt_model_is_a_warning_with_did_you_mean(write_spec, cli, tmp_path):
    spec = spec_with(write_spec, "[openai:gpt-4.1-minii]")
    result = cli("compile", spec, "-o", tmp_path / "out")
    assert result.exit_code == 0, result.stderr
    assert (f"warning: {spec}:5: models.0: unknown model 'openai:gpt-4.1-minii': not in the dated price table "
            "(checked 2025-10-01); did you mean 'openai:gpt-4.1-mini'? As written, cost totals leave it out"
            ) in result.stderr
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert any("did you mean 'openai:gpt-4.1-mini'" in w for w in manifest["warnings"])


@pytest.mark.parametrize("model,suggestion", [
    ("anthropic:claude-haiku-4.5", "anthropic:claude-haiku-4-5"),  # a dot for a dash
    ("gemini:gemini-2.5-flsh", "gemini:gemini-2.5-flash"),
    ("openai:gtp-4.1-mini", "openai:gpt-4.1-mini"),  # no table entry matches it at all
])
def test_typos_of_each_vendor_get_the_known_name(write_spec, cli, model, suggestion):
    result = cli("plan", spec_with(write_spec, f"[{model}]"))
    assert result.exit_code == 0, result.stderr
    assert f"unknown model '{model}'" in result.stdout and f"did you mean '{suggestion}'?" in result.stdout


def test_a_real_but_unpriced_model_gets_no_wrong_suggestion(write_spec, cli):
    # o3-mini is a model the capability table knows, one character from o1-mini: no did-you-mean
    result = cli("plan", spec_with(write_spec, "[openai:o3-mini, openai:gpt-4.1-mini-2025-04-14]"))
    assert result.exit_code == 0, result.stderr
    assert ("models.0: no price known for model 'openai:o3-mini' (price table checked 2025-10-01): cost totals "
            "leave it out; if the name is right, give its price with --prices FILE") in result.stdout
    assert "models.1: no price known for model 'openai:gpt-4.1-mini-2025-04-14'" in result.stdout
    assert "did you mean" not in result.stdout


def test_local_models_and_priced_models_get_no_warning(write_spec, cli, tmp_path):
    spec = spec_with(write_spec, "[ollama:gemma3:4b, local:smollm2-135m, openai:gpt-4.1-mini]")
    summary = plan_json(cli, spec)
    assert summary["warnings"] == []
    assert summary["estimate"]["unpriced_models"] == [] and summary["estimate"]["cost_is_lower_bound"] is False
    assert "at least" not in cli("plan", spec).stdout


def test_a_price_file_naming_the_model_silences_the_warning(write_spec, cli, tmp_path):
    prices = tmp_path / "prices.yaml"
    prices.write_text("models:\n  openai:gpt-4.1-minii: {input: 1.0, output: 2.0}\n")
    summary = plan_json(cli, spec_with(write_spec, "[openai:gpt-4.1-minii]"), "--prices", prices)
    assert summary["warnings"] == [] and summary["estimate"]["unpriced_models"] == []


def test_plan_totals_with_an_unpriced_model_read_at_least(write_spec, cli):
    spec = spec_with(write_spec, "[openai:gpt-4.1-mini, openai:gpt-4.1-minii]")
    summary = plan_json(cli, spec)
    est = summary["estimate"]
    assert est["unpriced_models"] == ["openai:gpt-4.1-minii"] and est["cost_is_lower_bound"] is True
    # the keys that existed keep their meaning: totals over the priced models, the unpriced ones listed
    assert est["cost_excludes"] == ["openai:gpt-4.1-minii"] and est["cost_online"] > 0
    total = est["projected_total"]
    assert total["cost_online"] == est["by_model"]["openai:gpt-4.1-mini"]["cost_online"]
    text = cli("plan", spec).stdout
    assert (f"  total cost: at least {total['cost_online']:,.4f} USD online, at least {total['cost_batch']:,.4f} USD "
            "batch; 1 model(s) unpriced: openai:gpt-4.1-minii") in text
    total_row = next(line for line in text.splitlines() if line.split()[:1] == ["total"])
    assert total_row.count(">=") == 2


def test_an_unpriced_model_of_a_later_stage_is_listed(write_spec, cli):
    spec = write_spec("""\
datafast: 1
name: t
type: preference
input_documents: ["Hold the reset button for 10 s."]
llm_as_judge: true
models: {questions: [openai:gpt-4.1-mini], chosen: [openai:gpt-4.1-mini], rejected: [openai:gpt-4.1-mini],
         judge: [openai:gpt-41]}
""")
    summary = plan_json(cli, spec)
    assert summary["estimate"]["cost_excludes"] == []  # the first stage alone is fully priced
    assert summary["estimate"]["unpriced_models"] == ["openai:gpt-41"]
    assert any("models.judge.0: unknown model 'openai:gpt-41'" in w and "did you mean 'openai:gpt-4.1'" in w
               for w in summary["warnings"])


# -- 2. spaces and YAML mapping mix-ups in model names ------------------------------------------------------


def test_spaces_around_runtime_and_model_are_trimmed_with_a_warning(write_spec, cli, tmp_path):
    clean = spec_with(write_spec, "[openai:gpt-4.1-mini, ollama:gemma3:4b]", name="clean.yaml")
    spaced = spec_with(write_spec, "['openai: gpt-4.1-mini', ' ollama : gemma3:4b ']", name="spaced.yaml")
    assert cli("compile", clean, "-o", tmp_path / "clean").exit_code == 0
    result = cli("compile", spaced, "-o", tmp_path / "spaced")
    assert result.exit_code == 0, result.stderr
    assert (f"warning: {spaced}:5: models.0: model 'openai: gpt-4.1-mini' has spaces around the runtime or the "
            "model name; read as 'openai:gpt-4.1-mini' (write it that way)") in result.stderr
    assert f"{spaced}:5: models.1: model ' ollama : gemma3:4b '" in result.stderr
    # the manifest carries the trimmed names: same requests, same ids, same spec hash as the clean spec
    assert (tmp_path / "spaced" / "manifest.jsonl").read_bytes() == (tmp_path / "clean" / "manifest.jsonl").read_bytes()
    hashes = [json.loads((tmp_path / d / "manifest.json").read_text())["spec_hash"] for d in ("clean", "spaced")]
    assert hashes[0] == hashes[1]


def test_python_config_names_are_trimmed_too():
    config = ClassificationDatasetConfig(classes=[{"name": "pos", "description": "Happy."}],
                                         models=["openai : gpt-4.1-mini"])
    assert config.models == ["openai:gpt-4.1-mini"]
    prepared = prepare(config)
    assert [str(w) for w in prepared.warnings] == [
        "<spec>: models.0: model 'openai : gpt-4.1-mini' has spaces around the runtime or the model name; read as "
        "'openai:gpt-4.1-mini' (write it that way)"]


MAPPING_MISTAKES = [
    ("flow-list", "models: [openai: gpt-4.1-mini]\n", 5, "models.0",
     "YAML reads 'openai: gpt-4.1-mini' as a mapping (a space after the colon); a model is one 'runtime:model' "
     "word: write `models: [openai:gpt-4.1-mini]` (no space after the colon), or quote it: 'openai:gpt-4.1-mini'"),
    ("block-list", "models:\n  - ollama:gemma3:4b\n  - openai: gpt-4.1-mini\n", 7, "models.1",
     "write `models: [openai:gpt-4.1-mini]`"),
    ("block-mapping", "models:\n  openai: gpt-4.1-mini\n", 5, "models", "write `models: [openai:gpt-4.1-mini]`"),
    ("ollama-tag", "models: [ollama: gemma3:4b]\n", 5, "models.0", "write `models: [ollama:gemma3:4b]`"),
    ("languages-list", "models: [openai:gpt-4.1-mini]\nlanguages: [en, de]\n", 6, "languages",
     "a mapping of language code to name is expected, not a list: write `languages: {en: English, de: German}`"),
    ("languages-pairs", "models: [openai:gpt-4.1-mini]\nlanguages: [en: English, pt-BR: Português]\n", 6, "languages",
     "write `languages: {en: English, pt-BR: Português}`"),
    ("placeholders-list", "models: [openai:gpt-4.1-mini]\nexpansion:\n  placeholders: [tone]\n", 7,
     "expansion.placeholders", "a mapping is expected here, not a list: write `placeholders: {key: value, ...}`"),
]


@pytest.mark.parametrize("case", MAPPING_MISTAKES, ids=[c[0] for c in MAPPING_MISTAKES])
def test_yaml_mapping_mistakes_show_the_expected_form(case, write_spec, cli, tmp_path):
    _, text, line, field, fragment = case
    spec = write_spec(HEAD + text)
    result = cli("compile", spec, "-o", tmp_path / "out")
    assert result.exit_code == 2
    assert f"error: {spec}:{line}: {field}: " in result.stderr and fragment in result.stderr, result.stderr
    assert "Traceback" not in result.stderr and not (tmp_path / "out").exists()


def test_mapping_mistake_in_a_role_list_names_the_role(write_spec, cli):
    spec = write_spec("""\
datafast: 1
name: t
type: preference
input_documents: [x]
models:
  questions: [openai: gpt-4.1-mini]
  chosen: [openai:gpt-4.1-mini]
  rejected: [openai:gpt-4.1-mini]
""")
    result = cli("plan", spec)
    assert result.exit_code == 2
    assert (f"{spec}:6: models.questions.0: YAML reads 'openai: gpt-4.1-mini' as a mapping (a space after the "
            "colon); a model is one 'runtime:model' word: write `questions: [openai:gpt-4.1-mini]`") in result.stderr


# -- 3. answers longer than max_tokens, reasoning ------------------------------------------------------------


def test_answers_longer_than_max_tokens_are_a_warning_with_the_numbers_and_the_fix(write_spec, cli, tmp_path):
    spec = spec_with(write_spec, "[openai:gpt-4.1-mini]", "num_samples_per_prompt: 50\n")
    expected = ("num_samples_per_prompt: stage 'generate': answers of openai:gpt-4.1-mini need at least ~2,520 output "
                "tokens (~2,520 for 50 items of at least ~50 tokens; typical items take ~150), more than max_tokens "
                "(2,048): they would come back truncated, and truncated answers are paid for; raise "
                "generation.max_tokens to 2,520 or more, or lower num_samples_per_prompt to 40")
    assert f"warning: line 6: {expected}" in cli("plan", spec).stdout
    result = cli("compile", spec, "-o", tmp_path / "out")
    assert result.exit_code == 0 and f"warning: {spec}:6: {expected}" in result.stderr
    # at 40 items even short answers fit: no warning (the quickstart's short reviews must not warn)
    fits = spec_with(write_spec, "[openai:gpt-4.1-mini]", "num_samples_per_prompt: 40\n", name="fits.yaml")
    assert plan_json(cli, fits)["warnings"] == []


def test_reasoning_models_count_their_reasoning_against_max_tokens(write_spec, cli):
    spec = spec_with(write_spec, "[openai:o3-mini, openai:gpt-4.1-mini]", "generation: {max_tokens: 1200}\n")
    warnings = plan_json(cli, spec)["warnings"]
    budget = [w for w in warnings if "output tokens" in w]
    assert budget == [
        "line 6: generation.max_tokens: stage 'generate': answers of openai:o3-mini need at least ~1,294 output "
        "tokens (~270 for 5 items of at least ~50 tokens; typical items take ~150, plus ~1,024 for reasoning by "
        "default, assumed), more than max_tokens (1,200): they would come back truncated, and truncated answers "
        "are paid for; raise generation.max_tokens to 1,294 or more, or lower num_samples_per_prompt to 3, or "
        "bound the reasoning with generation.reasoning_effort"]  # gpt-4.1-mini's 270 tokens fit


def test_a_thinking_budget_counts_in_full(write_spec, cli):
    spec = spec_with(write_spec, "[anthropic:claude-sonnet-4-5]",
                     "generation: {max_tokens: 2700, thinking_budget: 2500}\n")
    warnings = plan_json(cli, spec)["warnings"]
    assert any("answers of anthropic:claude-sonnet-4-5 need at least ~2,770 output tokens (~270 for 5 items of at "
               "least ~50 tokens; typical items take ~150, plus ~2,500 for thinking_budget 2,500)" in w and "or lower generation.thinking_budget" in w
               for w in warnings), warnings
    # the same budget with room for the answer: no warning
    roomy = spec_with(write_spec, "[anthropic:claude-sonnet-4-5]",
                      "generation: {max_tokens: 2800, thinking_budget: 2500}\n", name="roomy.yaml")
    assert not [w for w in plan_json(cli, roomy)["warnings"] if "output tokens" in w]


def test_the_models_maximum_output_bounds_the_answer(write_spec, cli):
    # gpt-4o-2024-05-13 writes at most 4,096 tokens whatever max_tokens says
    spec = spec_with(write_spec, "[openai:gpt-4o-2024-05-13]", "num_samples_per_prompt: 90\n"
                                                               "generation: {max_tokens: 8000}\n")
    budget = [w for w in plan_json(cli, spec)["warnings"] if "output tokens" in w]
    assert len(budget) == 1
    assert "need at least ~4,520 output tokens" in budget[0]
    assert "more than the model's maximum output (4,096 tokens)" in budget[0]
    assert "raise generation.max_tokens" not in budget[0] and "lower num_samples_per_prompt to 81" in budget[0]


REASONING_SPEC = """\
models: [openai:o3-mini, anthropic:claude-sonnet-4-5, gemini:gemini-2.5-flash, openai:gpt-4.1-mini]
generation: {max_tokens: 4096, reasoning_effort: low, thinking_budget: 2048}
"""


def test_reasoning_keys_are_rendered_per_vendor(write_spec, cli, tmp_path, chat_request_validator):  # noqa: F811
    spec = write_spec(HEAD + REASONING_SPEC)
    result = cli("compile", spec, "-o", tmp_path / "out")
    assert result.exit_code == 0, result.stderr
    openai = job_lines(tmp_path / "out", "openai")
    o3 = [line["body"] for line in openai if line["body"]["model"] == "o3-mini"]
    assert o3 and all(body["reasoning_effort"] == "low" and "thinking_budget" not in body for body in o3)
    assert not list(chat_request_validator.iter_errors(o3[0]))
    gpt41 = [line["body"] for line in openai if line["body"]["model"] == "gpt-4.1-mini"]
    assert gpt41 and all("reasoning_effort" not in body for body in gpt41)  # not a reasoning model
    for line in job_lines(tmp_path / "out", "anthropic"):
        assert line["params"]["thinking"] == {"type": "enabled", "budget_tokens": 2048}
        assert params_problem(line["params"], batch=True) is None
    from google.genai import types

    for line in job_lines(tmp_path / "out", "gemini"):
        config = line["request"]["generationConfig"]
        assert config["thinkingConfig"] == {"thinkingBudget": 2048}
        assert types.GenerationConfig.model_validate(config).thinking_config.thinking_budget == 2048
    for warning in ("openai: parameter 'thinking_budget' for model 'o3-mini' is not supported by the vendor",
                    "anthropic: parameter 'reasoning_effort' for model 'claude-sonnet-4-5' is not supported",
                    "openai: parameter 'reasoning_effort' for model 'gpt-4.1-mini' is refused: the model does not "
                    "reason (capabilities table); not sent"):
        assert f"warning: {warning}" in result.stderr
    # the manifest's params carry what the spec set (ids depend on it)
    params = {json.dumps(orjson.loads(line)["params"], sort_keys=True)
              for line in (tmp_path / "out" / "manifest.jsonl").read_bytes().splitlines()}
    assert params == {'{"max_tokens": 4096, "reasoning_effort": "low", "thinking_budget": 2048}'}


def test_unset_reasoning_keys_stay_out_of_the_normalized_spec_and_params(write_spec):
    prepared = prepare(spec_with(write_spec, "[openai:gpt-4.1-mini]"))
    assert set(prepared.spec.model_dump(mode="json")["generation"]) == {"max_tokens", "temperature", "top_p", "seed"}
    assert prepared.spec.generation.params() == {"max_tokens": 2048}


def test_a_thinking_budget_of_zero_turns_thinking_off(write_spec, cli, tmp_path):
    spec = spec_with(write_spec, "[anthropic:claude-haiku-4-5, gemini:gemini-2.5-flash]",
                     "generation: {max_tokens: 1000, thinking_budget: 0}\n")
    result = cli("compile", spec, "-o", tmp_path / "out")
    assert result.exit_code == 0 and "output tokens" not in result.stderr  # no reasoning counted
    assert {json.dumps(line["params"]["thinking"]) for line in job_lines(tmp_path / "out", "anthropic")} == \
        {'{"type": "disabled"}'}
    assert all(line["request"]["generationConfig"]["thinkingConfig"] == {"thinkingBudget": 0}
               for line in job_lines(tmp_path / "out", "gemini"))


def test_extended_thinking_leaves_temperature_out(write_spec, cli, tmp_path):
    spec = spec_with(write_spec, "[anthropic:claude-sonnet-4-5]",
                     "generation: {max_tokens: 4096, thinking_budget: 1024, temperature: 0.7}\n")
    result = cli("compile", spec, "-o", tmp_path / "out")
    assert result.exit_code == 0, result.stderr
    assert ("warning: anthropic: parameter 'temperature' for model 'claude-sonnet-4-5' is refused with extended "
            "thinking (thinking_budget); not sent") in result.stderr
    assert all("temperature" not in line["params"] for line in job_lines(tmp_path / "out", "anthropic"))


@pytest.mark.parametrize("generation,message", [
    ("{max_tokens: 4096, thinking_budget: 500}",
     "anthropic: thinking_budget 500 is below the vendor's minimum of 1,024; raise it, or give 0 to turn thinking off"),
    ("{max_tokens: 2048, thinking_budget: 2048}",
     "anthropic: thinking_budget 2,048 must be below max_tokens (2,048): thinking tokens count toward max_tokens"),
])
def test_a_thinking_budget_anthropic_refuses_is_a_located_error(write_spec, cli, tmp_path, generation, message):
    spec = spec_with(write_spec, "[anthropic:claude-sonnet-4-5]", f"generation: {generation}\n")
    for command in (("plan", spec), ("compile", spec, "-o", tmp_path / "out")):
        result = cli(*command)
        assert result.exit_code == 2
        assert f"error: {spec}:6: generation.thinking_budget: {message}" in result.stderr
    assert not (tmp_path / "out").exists()


def test_a_reasoning_key_no_model_takes_is_a_warning(write_spec, cli):
    spec = spec_with(write_spec, "[ollama:gemma3:4b]", "generation: {reasoning_effort: high}\n")
    assert ("warning: line 6: generation.reasoning_effort: no model of this spec takes it (only openai models "
            "do); it has no effect") in cli("plan", spec).stdout


# -- 4. a model listed twice ------------------------------------------------------------------------------


def test_a_model_listed_twice_is_an_error(write_spec, cli, tmp_path):
    spec = spec_with(write_spec, "[openai:gpt-4.1-mini, anthropic:claude-haiku-4-5, 'openai: gpt-4.1-mini']")
    result = cli("compile", spec, "-o", tmp_path / "out")
    assert result.exit_code == 2
    assert (f"error: {spec}:5: models.2: 'openai:gpt-4.1-mini' is listed twice (also models.0): every prompt would "
            "be sent to it twice, at twice the cost; list each model once") in result.stderr
    assert not (tmp_path / "out").exists()


def test_a_model_twice_in_a_role_is_an_error_but_one_model_in_two_roles_is_fine(write_spec, cli):
    text = """\
datafast: 1
name: t
type: preference
input_documents: [x]
models:
  questions: [openai:gpt-4.1-mini]
  chosen: [openai:gpt-4.1-mini, anthropic:claude-haiku-4-5]
  rejected: [{rejected}]
"""
    twice = write_spec(text.replace("{rejected}", "ollama:gemma3:4b, ollama:gemma3:4b"), "twice.yaml")
    result = cli("plan", twice)
    assert result.exit_code == 2 and f"{twice}:8: models.rejected.1: 'ollama:gemma3:4b' is listed twice (also " \
                                      "models.rejected.0)" in result.stderr
    fine = write_spec(text.replace("{rejected}", "openai:gpt-4.1-mini"), "fine.yaml")
    assert cli("plan", fine).exit_code == 0


# -- 5. price files -----------------------------------------------------------------------------------------


PRICE_MISTAKES = [
    ("input-at-top", "input: 0.4\nmodels: {}\n", 1, "input", "a price belongs inside a model's entry, under 'models'"),
    ("model-at-top", "openai:gpt-x: {input: 1, output: 2}\n", 1, "openai:gpt-x",
     "a model's price belongs under 'models': models: {openai:gpt-x: {input: ..., output: ...}}"),
    ("misspelt-price-key", "models:\n  openai:gpt-x: {inputs: 1, output: 2}\n", 2, "models.openai:gpt-x.inputs",
     "unknown key 'inputs'; did you mean 'input'?"),
    ("missing-output", "models:\n  openai:gpt-x:\n    input: 1\n", 2, "models.openai:gpt-x",
     "missing 'output': give numeric 'input' and 'output' prices (USD per 1M tokens)"),
    ("misspelt-top-key", "modles:\n  openai:gpt-x: {input: 1, output: 2}\n", 1, "modles",
     "unknown key 'modles'; did you mean 'models'?"),
    ("negative", "models:\n  openai:gpt-x: {input: -1, output: 2}\n", 2, "models.openai:gpt-x.input",
     "a price cannot be negative"),
    ("entry-twice", "models:\n  openai:gpt-x: {input: 1, output: 2}\n  openai:gpt-x: {input: 1, output: 3}\n", 3,
     "models.openai:gpt-x", "duplicate key"),
    ("unknown-runtime", "models:\n  opena:gpt-x: {input: 1, output: 2}\n", 2, "models.opena:gpt-x",
     "unknown runtime 'opena'; did you mean 'openai'?"),
    ("nan-price", "models:\n  openai:gpt-x: {input: .nan, output: 2}\n", 2, "models.openai:gpt-x.input",
     "give numeric 'input' and 'output' prices"),
]


@pytest.mark.parametrize("case", PRICE_MISTAKES, ids=[c[0] for c in PRICE_MISTAKES])
def test_a_misplaced_price_key_is_a_located_error(case, write_spec, cli, tmp_path):
    _, text, line, field, fragment = case
    prices = tmp_path / "prices.yaml"
    prices.write_text(text)
    spec = spec_with(write_spec, "[openai:gpt-4.1-mini]")
    for command in (("plan", spec), ("compile", spec, "-o", tmp_path / "out")):
        result = cli(*command, "--prices", prices)
        assert result.exit_code == 2
        assert f"error: {prices}:{line}: {field}: " in result.stderr and fragment in result.stderr, result.stderr
        assert "Traceback" not in result.stderr
    assert not (tmp_path / "out").exists()


def test_an_unquoted_date_in_a_price_file_is_read_as_text(write_spec, cli, tmp_path):
    prices = tmp_path / "prices.yaml"
    prices.write_text("checked: 2026-11-01\nmodels:\n  openai:gpt-x: {input: 1, output: 2}\n")
    summary = plan_json(cli, spec_with(write_spec, "[openai:gpt-x]"), "--prices", prices)
    assert summary["estimate"]["prices_checked"] == "2026-11-01"


def test_the_readme_price_file_example_is_a_valid_price_file(write_spec, cli, tmp_path):
    import re

    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text("utf-8")
    example = re.search(r"### Price files.*?```yaml\n(.*?)```", readme, re.S)
    assert example is not None
    prices = tmp_path / "prices.yaml"
    prices.write_text(example.group(1))
    summary = plan_json(cli, spec_with(write_spec, "['openai:ft:gpt-4.1-mini:acme::abc123']"), "--prices", prices)
    est = summary["estimate"]
    assert est["prices_checked"] == "2026-11-01" and est["unpriced_models"] == []
    assert est["cost_online"] == pytest.approx((est["input_tokens"] * 0.8 + est["output_tokens"] * 3.2) / 1e6, abs=1e-6)


# -- 6. the wrong kind of argument --------------------------------------------------------------------------


@pytest.mark.parametrize("command", [("submit",), ("status",), ("collect",), ("cancel", "--yes"),
                                     ("push", "--repo", "me/data")])
def test_a_spec_given_to_a_command_taking_an_output_dir(command, write_spec, cli):
    spec = spec_with(write_spec, "[openai:gpt-4.1-mini]")
    result = cli(command[0], spec, *command[1:])
    assert result.exit_code == 2
    assert (f"{spec} is a spec file; `datafast {command[0]}` takes the output dir of a compiled spec: run "
            f"`datafast compile {spec}` first and give its dir (default build/<name>), or `datafast run {spec}` to "
            "do everything") in result.stderr


@pytest.mark.parametrize("command", [("compile",), ("run",), ("preview", "-n", "1")])
def test_an_output_dir_given_to_a_command_taking_a_spec(command, write_spec, cli, tmp_path):
    out = tmp_path / "out"
    assert cli("compile", spec_with(write_spec, "[openai:gpt-4.1-mini]"), "-o", out).exit_code == 0
    result = cli(command[0], out, *command[1:])
    assert result.exit_code == 2
    assert (f"error: {out}: is a directory: the output dir of a compiled spec; compile, run and preview take the "
            "spec file (.yaml); an output dir goes to submit, status, collect, cancel, push or plan") in result.stderr


@pytest.mark.parametrize("name", ["manifest.jsonl", "manifest.json"])
def test_compiled_files_are_not_specs(name, write_spec, cli, tmp_path):
    out = tmp_path / "out"
    assert cli("compile", spec_with(write_spec, "[openai:gpt-4.1-mini]"), "-o", out).exit_code == 0
    result = cli("plan", out / name)
    assert result.exit_code == 2
    assert "not a spec" in result.stderr and "give the spec file, or the output dir" in result.stderr


@pytest.mark.parametrize("command,suffix", [("compile", ".jsonl"), ("run", ".parquet"), ("preview", ".jsonl")])
def test_o_naming_a_dataset_file_is_refused(command, suffix, write_spec, cli, tmp_path):
    target = tmp_path / f"data{suffix}"
    result = cli(command, spec_with(write_spec, "[openai:gpt-4.1-mini]"), "-o", target)
    assert result.exit_code == 2
    assert (f"'{target}' looks like a dataset file: -o names the output directory (manifest, job files, results, "
            f"the dataset inside it); the dataset file is named by `datafast collect DIR -o FILE{suffix}`"
            ) in result.stderr
    assert not target.exists()


def test_collect_o_names_the_dataset_file(write_spec, cli, tmp_path):
    out = tmp_path / "out"
    assert cli("compile", spec_with(write_spec, "[openai:gpt-4.1-mini]"), "-o", out).exit_code == 0
    result = cli("collect", out, "-o", tmp_path / "dataset")
    assert result.exit_code == 2
    assert "output must end in .jsonl, .parquet or .csv (-o names the dataset file; the output dir is the DIR argument)" \
        in result.stderr
    ok = cli("collect", out, "-o", tmp_path / "dataset.jsonl")
    assert ok.exit_code == 0, ok.stderr


def test_python_api_reports_the_same_warnings():
    config = ClassificationDatasetConfig(classes=[{"name": "pos", "description": "Happy."}],
                                         models=["openai:gpt-4.1-minii"], num_samples_per_prompt=50)
    summary = datafast.plan(config)
    assert any("did you mean 'openai:gpt-4.1-mini'" in w for w in summary["warnings"])
    assert any("raise generation.max_tokens to 2,520 or more" in w for w in summary["warnings"])


@pytest.mark.parametrize("example", sorted(p.name for p in (Path(__file__).parent.parent / "specs").glob("*.yaml")))
def test_the_shipped_example_specs_raise_no_output_length_warning(example, cli):
    spec = Path(__file__).parent.parent / "specs" / example
    warnings = plan_json(cli, spec)["warnings"]
    assert not [w for w in warnings if "output tokens" in w], warnings


def test_an_unknown_local_model_is_a_located_error(write_spec, cli):
    result = cli("compile", spec_with(write_spec, "[openai:gpt-4.1-mini, local:smollm2-13m]"))
    assert result.exit_code == 2 and "Traceback" not in result.stderr
    assert "models.1: unknown local model 'smollm2-13m'; did you mean 'smollm2-135m'?" in result.stderr
    # a GGUF file of the user's is checked when it runs (its path may be on the machine that runs it)
    assert cli("plan", spec_with(write_spec, "[local:/models/mine.gguf]")).exit_code == 0


def test_compiling_another_dataset_into_a_dir_says_so(write_spec, cli, tmp_path):
    out = tmp_path / "shared"
    assert cli("compile", spec_with(write_spec, "[openai:gpt-4.1-mini]"), "-o", out).exit_code == 0
    again = cli("compile", spec_with(write_spec, "[openai:gpt-4.1-mini]"), "-o", out)
    assert again.exit_code == 0 and "held the dataset" not in again.stderr  # the same dataset: nothing to say
    other = write_spec("datafast: 1\nname: other\ntype: text\ndocument_types: [memo]\ntopics: [rain]\n"
                       "models: [openai:gpt-4.1-mini]\n", "other.yaml")
    moved = cli("compile", other, "-o", out)
    assert moved.exit_code == 0
    assert "held the dataset" in moved.stderr and "'other' (text)" in moved.stderr
