"""Spec warnings that need the dated tables (prices, capabilities), found before anything is paid.

- A model without a price: its cost would be left out of every total. A name close to one the tables know is
  most likely a typo (`openai:gpt-4.1-minii`): the warning says which.
- Answers longer than `generation.max_tokens` allows: items per request x the per-item estimate of
  `compiler.pricing`, plus the reasoning tokens of a reasoning model (they count against the same limit).
  Such answers come back truncated, and truncated answers are paid for.

Each check returns (field path, message) pairs, as `compiler.checks` does; `table_warnings` locates them.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

from .capabilities import CapabilityTable
from .errors import SpecIssue
from .pricing import (
    ANSWER_OVERHEAD_TOKENS,
    DEFAULT_REASONING_EFFORT,
    MIN_TOKENS_PER_ITEM,
    REASONING_TOKENS,
    TOKENS_PER_ITEM,
    PriceTable,
    answer_tokens,
)
from .projection import answer_items
from .spec import REASONING_PARAMS, DatasetConfigBase
from .vendors import RENDERERS

if TYPE_CHECKING:
    from .build import Prepared

Finding = tuple[tuple[str | int, ...], str]


def table_warnings(prepared: Prepared, prices: PriceTable,
                   capabilities: CapabilityTable | None = None) -> list[SpecIssue]:
    """Unpriced models and answers over max_tokens, located in the spec."""
    caps = capabilities if capabilities is not None else CapabilityTable.from_environment()
    findings = [*unpriced_models(prepared.spec, prices, caps), *answer_budget(prepared, caps)]
    return [prepared.lines.issue(path, message) for path, message in findings]


def unpriced_models(spec: DatasetConfigBase, prices: PriceTable, caps: CapabilityTable) -> Iterator[Finding]:
    """Models of a batch vendor without a price, each once, with a did-you-mean against the tables' names.

    Ollama and local models are in no table (they are free): nothing to say about them.
    """
    seen: set[str] = set()
    for path, model in spec.model_entries():
        runtime, _, name = model.partition(":")
        if model in seen or runtime not in RENDERERS or prices.price(model) is not None:
            continue
        seen.add(model)
        close = _close_name(name, runtime, prices, caps)
        if close:
            yield (path, f"unknown model {model!r}: not in the dated price table (checked {prices.checked}); did "
                         f"you mean '{runtime}:{close}'? As written, cost totals leave it out")
        else:
            yield (path, f"no price known for model {model!r} (price table checked {prices.checked}): cost totals "
                         "leave it out; if the name is right, give its price with --prices FILE")


def _close_name(name: str, runtime: str, prices: PriceTable, caps: CapabilityTable) -> str | None:
    known = list(dict.fromkeys([m.partition(":")[2] for m in prices.models if m.partition(":")[0] == runtime]
                               + caps.names(runtime)))
    if name in known or name.startswith("ft:"):  # a fine-tune's name is its own
        return None
    # a name the capability table recognizes (a dated snapshot, a newer release) may well be right: suggest only
    # a near-identical name; an unrecognized one gets the usual did-you-mean
    cutoff = 0.9 if caps.lookup(f"{runtime}:{name}") is not None else 0.6
    close = difflib.get_close_matches(name, known, n=1, cutoff=cutoff)
    return close[0] if close else None


def reasoning_allowance(model: str, params: Mapping[str, Any], caps: CapabilityTable) -> tuple[int, str]:
    """Reasoning tokens counted against max_tokens for one model's answers, and why (empty when 0).

    A thinking budget counts in full (the model may spend all of it); a reasoning effort, or a model that
    reasons by default, counts the assumed `pricing.REASONING_TOKENS`. Keys a vendor does not take count for
    nothing, as does any reasoning key for a model the table says cannot reason.
    """
    renderer = RENDERERS.get(model.partition(":")[0])
    known = caps.lookup(model)
    mode = known.reasoning if known is not None else None
    if renderer is None or mode == "none":
        return 0, ""
    budget = params.get("thinking_budget")
    if budget is not None and renderer.PARAMS.get("thinking_budget") is not None:
        return budget, f"thinking_budget {budget:,}" if budget else ""
    effort = params.get("reasoning_effort")
    if effort is not None and renderer.PARAMS.get("reasoning_effort") is not None:
        return REASONING_TOKENS[effort], f"reasoning at effort {effort!r}, assumed"
    if mode == "always":
        return REASONING_TOKENS[DEFAULT_REASONING_EFFORT], "reasoning by default, assumed"
    return 0, ""


def answer_budget(prepared: Prepared, caps: CapabilityTable) -> Iterator[Finding]:
    """Stages x models whose estimated answers (plus reasoning) exceed max_tokens, grouped by their numbers."""
    spec = prepared.spec
    params = spec.generation.params()
    samples = int(getattr(spec, "num_samples_per_prompt", 1))
    groups: dict[tuple[int, int, str, int, bool], dict[str, list[str]]] = {}
    for stage in prepared.stages:
        items = answer_items(stage.schema, samples)
        # whether num_samples_per_prompt sets the length of this stage's answers (a judge's answer is one item)
        scales = "items" in stage.schema.get("properties", {}) and items == samples
        for model in dict.fromkeys(spec.models_for(stage.role)):
            reasoning, why = reasoning_allowance(model, params, caps)
            limit = spec.generation.max_tokens
            known = caps.lookup(model)
            if known is not None and known.max_output_tokens is not None:
                limit = min(limit, known.max_output_tokens)  # what the renderer clamps max_tokens to
            if answer_tokens(items, MIN_TOKENS_PER_ITEM) + reasoning > limit:
                groups.setdefault((items, reasoning, why, limit, scales), {}).setdefault(model, []).append(stage.name)
    for (items, reasoning, why, limit, scales), models in groups.items():
        yield (_budget_field(prepared, scales),
               _budget_message(models, items, reasoning, why, limit, scales, spec.generation.max_tokens, params))


def _budget_field(prepared: Prepared, scales: bool) -> tuple[str, ...]:
    """Where the warning points: max_tokens if the spec sets it, else num_samples_per_prompt if that is set
    and sets the answers' length; else max_tokens (the default, at the top of the spec)."""
    lines = prepared.lines.lines
    if ("generation", "max_tokens") not in lines and scales and ("num_samples_per_prompt",) in lines:
        return ("num_samples_per_prompt",)
    return ("generation", "max_tokens")


def _budget_message(models: Mapping[str, list[str]], items: int, reasoning: int, why: str, limit: int,
                    scales: bool, max_tokens: int, params: Mapping[str, Any]) -> str:
    answer = answer_tokens(items, MIN_TOKENS_PER_ITEM)
    needed = answer + reasoning
    stages = list(dict.fromkeys(name for names in models.values() for name in names))
    what = (f"~{answer:,} for {items} item{'s' if items > 1 else ''} of at least ~{MIN_TOKENS_PER_ITEM} tokens; "
            f"typical items take ~{TOKENS_PER_ITEM}")
    if reasoning:
        what += f", plus ~{reasoning:,} for {why}"
    if limit < max_tokens:
        limit_text, fixes = f"the model's maximum output ({limit:,} tokens)", []
    else:
        limit_text, fixes = f"max_tokens ({limit:,})", [f"raise generation.max_tokens to {needed:,} or more"]
    fit = (limit - reasoning - ANSWER_OVERHEAD_TOKENS) // MIN_TOKENS_PER_ITEM
    if scales and fit >= 1:
        fixes.append(f"lower num_samples_per_prompt to {fit}")
    if reasoning:
        keys = sorted({key for model in models for key in REASONING_PARAMS
                       if (RENDERERS[model.partition(":")[0]].PARAMS.get(key) is not None)})
        given = [key for key in keys if key in params]
        fixes.append(f"lower generation.{' or '.join(given)}" if given else
                     f"bound the reasoning with generation.{' or '.join(keys)}")
    if not fixes:
        fixes.append("use a model with a larger maximum output")
    return (f"stage{'s' if len(stages) > 1 else ''} {', '.join(map(repr, stages))}: answers of {', '.join(models)} need "
            f"at least ~{needed:,} output tokens ({what}), more than {limit_text}: they would come back truncated, and "
            "truncated answers are paid for; " + ", or ".join(fixes))
