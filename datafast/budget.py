"""`--max-cost USD`: a budget that a run never exceeds.

Before each wave is sent, the money already spent in the output dir (every result ever stored, priced as
collect prices it), what the batches still in flight may cost at most, and what the wave may cost at most
are added up. A request's worst case is its estimated input (chars / 4) plus `max_tokens` of output, all
uncached, at the price that applies (batch or online): answers can be shorter, never longer. A batch wave
that would not fit is not sent (`BudgetExceeded`, exit 2, with the numbers); online requests are sent while
they fit, in order, and the rest waits. Raising the cap and running again resumes where it stopped.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import orjson

from datafast.compiler.pricing import PriceTable, estimate_input_tokens
from datafast.runtimes.store import TOKEN_FIELDS

from .outdir import BadInput, Manifest, OutputDir
from .runner import Plan, in_flight_ids


class BudgetExceeded(BadInput):
    """The next wave would take the run past its max_cost (exit 2; nothing of it was sent)."""


@dataclass(frozen=True)
class Budget:
    """The cap and where the run stands against it, in the price table's currency."""

    max_cost: float
    spent: float  # every result stored in the dir
    in_flight: float  # worst case of the requests in live batches

    @property
    def left(self) -> float:
        return self.max_cost - self.spent - self.in_flight


def worst_case(request: dict[str, Any], prices: PriceTable, online: bool) -> float:
    """The most a request can cost: estimated input plus max_tokens of output, uncached. BudgetExceeded if
    its model has no price (a budget cannot be kept without one)."""
    model = request["model"]
    cost = prices.cost(model, estimate_input_tokens(request["messages"]), int(request["params"].get("max_tokens") or 0))
    value = cost["online" if online else "batch"]
    if value is None:
        raise BudgetExceeded(f"max_cost: no price for {model}, so its cost cannot be bounded; give one with "
                             "--prices FILE (see README, Price files)")
    return value


def spent(index_spent: dict[str, list[int]], prices: PriceTable) -> float:
    """USD of every stored result (`ResultIndex.spent`), unpriced models (local, free runtimes) at 0."""
    n = len(TOKEN_FIELDS)
    total = 0.0
    for model, t in index_spent.items():
        total += prices.cost_exact(model, *t[:n])["batch"] or 0.0
        total += prices.cost_exact(model, *t[n:])["online"] or 0.0
    return total


def _requests(od: OutputDir, manifests: Iterable[Manifest], ids: set[str]) -> Iterable[dict[str, Any]]:
    if not ids:
        return
    for manifest in manifests:
        for line in od.manifest_lines(manifest.stage):
            request = orjson.loads(line)
            if request["id"] in ids:
                yield request


def check(od: OutputDir, plan: Plan, manifests: list[Manifest], max_cost: float, prices: PriceTable) -> Plan:
    """The part of `plan` that fits the budget: the whole plan, or its batch waves with the online requests
    that fit. Raises BudgetExceeded when a batch wave does not fit, or nothing at all does."""
    with od.store.index() as index:
        already = spent(index.spent, prices)
    flying = in_flight_ids(od)
    batch_ids = set().union(*plan.batch.values()) if plan.batch else set()
    live = batch = 0.0
    for request in _requests(od, manifests, flying | batch_ids):  # one pass over the manifests for both
        cost = worst_case(request, prices, False)
        if request["id"] in flying:
            live += cost
        else:
            batch += cost
    budget = Budget(max_cost, already, live)
    currency = prices.currency
    if batch > budget.left + 1e-12:
        raise BudgetExceeded(
            f"max_cost {max_cost:.4f} {currency}: the next batch wave ({len(batch_ids):,} requests) may cost up to "
            f"{batch:.4f} {currency} (estimated input + max_tokens of output), and {already:.4f} is spent, "
            f"{live:.4f} in flight: {budget.left:.4f} left. Nothing was sent; raise --max-cost to at least "
            f"{already + live + batch:.4f}, or lower generation.max_tokens, then run again")
    left = budget.left - batch
    trimmed = Plan(batch=plan.batch, stages=plan.stages)
    held, held_cost, next_cost, sent = 0, 0.0, 0.0, 0.0
    for runtime, requests in plan.online.items():
        for request in requests:
            cost = worst_case(request, prices, True)
            if cost <= left + 1e-12:
                trimmed.online[runtime].append(request)
                left -= cost
                sent += cost
            else:
                held += 1
                held_cost += cost
                next_cost = next_cost or cost
    if held:
        trimmed.budget_note = (
            f"max_cost {max_cost:.4f} {currency}: {already:.4f} spent, {live:.4f} in flight, "
            f"{batch + sent:.4f} for what is sent now (at most), {left:.4f} left; the next online request may cost "
            f"up to {next_cost:.4f} (estimated input + max_tokens of output, at the online price), so {held:,} "
            f"request(s) were not sent (up to {held_cost:.4f} in all). Raise --max-cost to at least "
            f"{already + live + batch + sent + held_cost:.4f} to send them, or lower generation.max_tokens, "
            "then run again")
    if held and trimmed.empty:
        raise BudgetExceeded(trimmed.budget_note.replace(": ", " reached: ", 1) + "; nothing was sent")
    trimmed.held_by_budget = held
    return trimmed
