"""Collect prices each request at the rate that applied: batch requests at batch prices, online calls at the
online price (the same request online costs twice as much at the vendors' 50% batch discount)."""

from __future__ import annotations

from datafast.compiler.pricing import PriceTable
from datafast.dataset import collect_to
from datafast.pipeline import advance

from .test_submit_openai import compile_spec, env_for


def test_online_calls_are_priced_online_and_batches_at_batch_price(tmp_path, openai_emulator):
    prices = PriceTable.load()
    costs = {}
    for online in (False, True):
        (tmp_path / str(online)).mkdir()
        out, _ = compile_spec(tmp_path / str(online))
        assert advance(out, wait=True, poll_interval=0.01, online=online, env=env_for(openai_emulator)).finished
        usage = collect_to(out).usage
        (model, used), = usage["by_model"].items()
        mode = "online" if online else "batch"
        assert used["online_input_tokens"] == (used["input_tokens"] if online else 0)
        expected = prices.cost(model, used["input_tokens"], used["output_tokens"])[mode]
        assert usage["cost"] == used["cost"] == round(expected, 6) and expected > 0
        costs[mode] = usage["cost"]
    assert costs["online"] > costs["batch"]
