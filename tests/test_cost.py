"""What a run cost: cache prices, every attempt counted, rejects' cost apart, and each final row's cost_usd
adding up with the money that gave no row to what was spent."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from datafast.compiler.errors import SpecError
from datafast.compiler.pricing import PriceTable
from datafast.dataset import collect_to
from datafast.pipeline import advance
from datafast.runtimes.base import result
from datafast.runtimes.store import ResultStore

from .test_stages_e2e import MCQ, PREFERENCE, all_requests, compile_spec, env_for, start


def test_cached_input_is_priced_at_the_cache_prices():
    table = PriceTable.load()
    # claude-haiku-4-5: input 1.0, cache_read 0.1, cache_write 1.25, output 5.0 USD per 1M tokens
    cost = table.cost("anthropic:claude-haiku-4-5", 10_000, 1_000, cache_read=6_000, cache_write=2_000)
    assert cost["online"] == pytest.approx((2_000 * 1.0 + 6_000 * 0.1 + 2_000 * 1.25 + 1_000 * 5.0) / 1e6)
    assert cost["batch"] == pytest.approx(cost["online"] * 0.5)
    # a model without cache prices: cached tokens at the input price
    plain = PriceTable(checked="x", currency="USD", batch_discount=0.5, free_runtimes=frozenset(),
                       models={"openai:m": {"input": 1.0, "output": 2.0}})
    assert plain.cost("openai:m", 1000, 0, cache_read=800)["online"] == pytest.approx(0.001)
    # counts larger than the prompt are clamped, never negative
    assert table.cost("openai:gpt-4.1-mini", 100, 0, cache_read=500)["online"] == pytest.approx(100 * 0.1 / 1e6)


def test_price_files_take_cache_prices_and_name_a_misspelt_one(tmp_path):
    good = tmp_path / "prices.yaml"
    good.write_text("models:\n  openai:custom: {input: 2.0, output: 4.0, cache_read: 0.5}\n")
    assert PriceTable.load(good).price("openai:custom")["cache_read"] == 0.5
    bad = tmp_path / "bad.yaml"
    bad.write_text("models:\n  openai:custom: {input: 2.0, output: 4.0, cache_reads: 0.5}\n")
    with pytest.raises(SpecError, match=r"bad.yaml:2: .*cache_reads.*did you mean 'cache_read'"):
        PriceTable.load(bad)
    negative = tmp_path / "neg.yaml"
    negative.write_text("models:\n  openai:custom: {input: 2.0, output: 4.0, cache_write: -1}\n")
    with pytest.raises(SpecError, match="non-negative"):
        PriceTable.load(negative)


def _rows(out: Path) -> list[dict]:
    return [json.loads(x) for x in (out / "dataset.jsonl").read_text().splitlines() if x.strip()]


def test_rows_carry_their_chain_cost_and_everything_adds_up(tmp_path, emulator_factory):
    emus = start(emulator_factory, "openai", "anthropic", "ollama")
    spec = {**PREFERENCE, "models": {**PREFERENCE["models"], "rejected": ["openai:gpt-4.1-mini"]}}
    out = compile_spec(tmp_path, spec)
    assert advance(out, wait=True, poll_interval=0.01, env=env_for(emus)).finished
    report = collect_to(out)
    usage = report.usage
    rows = _rows(out)
    assert rows and all(isinstance(r["cost_usd"], float) and r["cost_usd"] > 0 for r in rows)
    assert sum(r["cost_usd"] for r in rows) == pytest.approx(usage["rows_cost"], abs=1e-6)
    # nothing failed: every cent went into a row
    assert usage["spent"] == pytest.approx(usage["cost"], abs=1e-6)
    assert usage["rows_cost"] + usage["cost_without_rows"] == pytest.approx(usage["spent"], abs=1e-6)
    # exactly, in the 6 decimals reported: request costs are split unrounded, so no rounding error piles up
    assert round(usage["rows_cost"] + usage["cost_without_rows"], 6) == usage["spent"]
    assert usage["rows_cost"] == round(sum(r["cost_usd"] for r in rows), 6)
    # a row's cost is its share of the question request plus its own answers and judgements
    table = PriceTable.load()
    prices = {}
    for _stage, rid, model in all_requests(out):
        r = _result_of(out, rid)
        prices[rid] = table.cost_exact(model, r["usage"]["input_tokens"], r["usage"]["output_tokens"])["batch"]
    row = rows[0]
    questions = [q for q in map(json.loads, (out / "rows" / "questions.jsonl").read_text().splitlines())
                 if q["request_id"] == row["request_ids"]["questions"]]
    expected = prices[row["request_ids"]["questions"]] / len(questions) + sum(
        prices[rid] for key, rid in row["request_ids"].items() if key != "questions")
    assert row["cost_usd"] == pytest.approx(expected, rel=1e-6)
    # per stage, the stage costs sum to the total
    assert sum(s["cost"] for s in report.stages.values()) == pytest.approx(usage["cost"], abs=1e-6)


def _result_of(out: Path, request_id: str) -> dict:
    for path in sorted((out / "results").glob("*.jsonl")):
        for line in path.read_text().splitlines():
            r = json.loads(line)
            if r["id"] == request_id and r["status"] == "ok":
                return r
    raise AssertionError(f"no ok result for {request_id}")


def test_failed_and_superseded_attempts_count_in_spent_and_rejects_apart(tmp_path, emulator_factory):
    probe = start(emulator_factory, "openai", "gemini")
    first = compile_spec(tmp_path, MCQ, "probe")
    advance(first, wait=True, poll_interval=0.01, env=env_for(probe))
    question = sorted(rid for stage, rid, _ in all_requests(first) if stage == "questions")[0]

    emus = start(emulator_factory, "openai", "gemini")
    emus["openai"].faults.add("truncated", request_id=question)  # answered, cut at max_tokens: paid, rejected
    out = compile_spec(tmp_path, MCQ, "run")
    advance(out, wait=True, poll_interval=0.01, env=env_for(emus))
    before = collect_to(out).usage
    assert before["rejected_cost"] > 0
    assert before["spent"] == pytest.approx(before["cost"], abs=1e-6)  # one attempt each so far
    assert before["cost_without_rows"] >= before["rejected_cost"] - 1e-6

    advance(out, wait=True, poll_interval=0.01, retry_failed=True, env=env_for(emus))  # the resend succeeds
    after = collect_to(out).usage
    assert emus["openai"].submissions(question) == 2
    # the first, truncated attempt drops out of the final results but stays in what was spent
    assert after["spent"] > after["cost"]
    assert after["rows_cost"] + after["cost_without_rows"] == pytest.approx(after["spent"], abs=1e-6)
    assert sum(r["cost_usd"] for r in _rows(out)) == pytest.approx(after["rows_cost"], abs=1e-6)


def test_single_stage_rows_split_their_request_cost(tmp_path):
    from datafast import compile as compile_spec_file

    spec = tmp_path / "spec.yaml"
    spec.write_text("datafast: 1\nname: c\ntype: classification\nnum_samples_per_prompt: 2\n"
                    "classes: [{name: a, description: x}]\nmodels: [openai:gpt-4.1-mini]\n")
    compile_spec_file(spec, tmp_path / "out")
    out = tmp_path / "out"
    request = json.loads((out / "manifest.jsonl").read_text().splitlines()[0])
    store = ResultStore(out)
    answer = json.dumps({"items": [{"text": "one"}, {"text": "two"}]})
    line = result(request["id"], "openai", request["model"], text=answer, input_tokens=1_000_000,
                  output_tokens=100_000)
    line["usage"]["cache_read_input_tokens"] = 500_000
    store.write_batch("b1", [line])
    report = collect_to(out)
    # batch: (500k input x 0.4 + 500k cached x 0.1 + 100k output x 1.6) / 1M x 0.5
    cost = (500_000 * 0.4 + 500_000 * 0.1 + 100_000 * 1.6) / 1e6 * 0.5
    assert [r["cost_usd"] for r in _rows(out)] == [pytest.approx(cost / 2)] * 2
    model = report.usage["by_model"]["openai:gpt-4.1-mini"]
    assert model["cache_read_input_tokens"] == 500_000 and model["cached_share"] == 0.5
    assert report.usage["cost"] == pytest.approx(cost)
