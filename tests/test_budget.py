"""--max-cost: a budget the run never exceeds; raising it resumes."""

from __future__ import annotations

import json

import yaml

import datafast
from datafast.compiler.pricing import PriceTable, estimate_input_tokens
from datafast.dataset import collect_to

from .test_stages_e2e import PREFERENCE, compile_spec, env_for, start

SPEC = {"datafast": 1, "name": "budget", "type": "classification", "num_samples_per_prompt": 2,
        "classes": [{"name": c, "description": f"{c} text"} for c in "abcdef"],
        "generation": {"max_tokens": 1000}, "models": ["openai:gpt-4.1"]}


def worst(out, online=False):
    table = PriceTable.load()
    lines = [json.loads(x) for x in (out / "manifest.jsonl").read_text().splitlines()]
    return [table.cost(r["model"], estimate_input_tokens(r["messages"]), r["params"]["max_tokens"])
            ["online" if online else "batch"] for r in lines]


def test_a_batch_wave_over_the_budget_is_not_sent_and_a_higher_cap_resumes(tmp_path, openai_emulator, cli,
                                                                          monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "test")
    monkeypatch.setenv("OPENAI_BASE_URL", openai_emulator.base_url)
    spec = tmp_path / "spec.yaml"
    spec.write_text(yaml.safe_dump(SPEC))
    datafast.compile(spec, tmp_path / "out")
    out = tmp_path / "out"
    need = sum(worst(out))
    low = cli("submit", out, "--wait", "--poll-interval", "0.01", "--max-cost", f"{need * 0.9:.6f}")
    assert low.exit_code == 2 and "may cost up to" in low.output and "Nothing was sent" in low.output
    assert not openai_emulator.stats()["batches"]
    ok = cli("submit", out, "--wait", "--poll-interval", "0.01", "--max-cost", f"{need * 1.01:.6f}")
    assert ok.exit_code == 0, ok.output
    usage = collect_to(out).usage
    assert 0 < usage["spent"] <= need * 1.01


def test_online_requests_stop_at_the_cap_and_what_was_spent_counts(tmp_path, openai_emulator, cli, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "test")
    monkeypatch.setenv("OPENAI_BASE_URL", openai_emulator.base_url)
    spec = tmp_path / "spec.yaml"
    spec.write_text(yaml.safe_dump({**SPEC, "online": True}))
    datafast.compile(spec, tmp_path / "out")
    out = tmp_path / "out"
    costs = worst(out, online=True)
    cap = sum(costs[:3]) * 1.0001  # room for three requests at their worst
    first = cli("submit", out, "--wait", "--max-cost", f"{cap:.8f}")
    assert first.exit_code == 2 and "max_cost" in first.output and "not sent" in first.output
    # the numbers to act on: what the next request may cost, and the cap that sends everything
    assert f"the next online request may cost up to {costs[3]:.4f}" in first.output
    assert f"{len(costs) - 3:,} request(s) were not sent (up to {sum(costs[3:]):.4f} in all)" in first.output
    assert f"Raise --max-cost to at least {sum(costs):.4f}" in first.output
    report = collect_to(out)
    assert report.with_rows == 3 and report.pending == len(costs) - 3
    assert report.usage["spent"] <= cap
    # a higher cap resumes: the three answers are kept, the rest is sent
    again = cli("submit", out, "--wait", "--max-cost", f"{sum(costs) * 1.0001:.8f}")
    assert again.exit_code == 0, again.output
    assert collect_to(out).with_rows == len(costs)


def test_max_cost_in_the_spec_and_unpriced_models(tmp_path, emulator_factory):
    from datafast.budget import BudgetExceeded
    from datafast.pipeline import advance

    emus = start(emulator_factory, "openai", "anthropic", "ollama")
    out = compile_spec(tmp_path, {**PREFERENCE, "max_cost": 0.000001})
    try:
        advance(out, wait=True, poll_interval=0.01, env=env_for(emus))
        raise AssertionError("the spec's max_cost was not applied")
    except BudgetExceeded as exc:
        assert "max_cost 0.0000" in str(exc)
    unpriced = compile_spec(tmp_path, {**PREFERENCE, "models": {**PREFERENCE["models"],
                                                                "questions": ["openai:my-finetune"]}}, "unpriced")
    try:
        advance(unpriced, wait=True, poll_interval=0.01, env=env_for(emus), max_cost=5.0)
        raise AssertionError("an unpriced model passed the budget check")
    except BudgetExceeded as exc:
        assert "no price for openai:my-finetune" in str(exc) and "--prices" in str(exc)


def test_submit_takes_the_price_file_its_budget_is_checked_with(tmp_path, openai_emulator, cli, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "test")
    monkeypatch.setenv("OPENAI_BASE_URL", openai_emulator.base_url)
    spec = tmp_path / "spec.yaml"
    spec.write_text(yaml.safe_dump(SPEC))
    out = tmp_path / "out"
    datafast.compile(spec, out)
    need = sum(worst(out))
    dear = tmp_path / "dear.yaml"  # ten times the built-in price
    price = PriceTable.load().price("openai:gpt-4.1")
    dear.write_text(yaml.safe_dump({"models": {"openai:gpt-4.1": {k: v * 10 for k, v in price.items()}}}))
    refused = cli("submit", out, "--max-cost", f"{need * 2:.6f}", "--prices", str(dear))
    assert refused.exit_code == 2 and "Nothing was sent" in refused.output
    assert not openai_emulator.stats()["batches"]
    nan = tmp_path / "nan.yaml"
    nan.write_text("models:\n  openai:gpt-4.1: {input: .nan, output: 8}\n")
    bad = cli("submit", out, "--max-cost", "1", "--prices", str(nan))
    assert bad.exit_code == 2 and "nan.yaml" in bad.output and "input" in bad.output
    assert cli("submit", out, "--max-cost", "nan").exit_code == 2
    assert not openai_emulator.stats()["batches"]


def test_every_missing_key_is_named_at_once(tmp_path, cli, monkeypatch):
    for key in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY"):
        monkeypatch.delenv(key, raising=False)
    spec = tmp_path / "spec.yaml"
    spec.write_text(yaml.safe_dump({**SPEC, "models": ["openai:gpt-4.1", "anthropic:claude-haiku-4-5"]}))
    datafast.compile(spec, tmp_path / "out")
    got = cli("submit", tmp_path / "out")
    assert got.exit_code == 2
    assert "OPENAI_API_KEY" in got.output and "ANTHROPIC_API_KEY" in got.output
