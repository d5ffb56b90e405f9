"""Project every stage of a spec before anything is paid: requests, tokens and cost of the whole stage graph.

Only the first stage is a function of the spec alone; each later stage is built from the rows answered in its
input stages. So the projection simulates the graph: every request gets a placeholder answer synthesized from
its stage's JSON schema (strings of about `TOKENS_PER_ITEM * CHARS_PER_TOKEN` characters per item, arrays of
`num_samples_per_prompt` items within minItems/maxItems, integers at their minimum...), `stage.rows` turns it
into rows, and the real builders (`stage_requests`) turn those rows into the next stage's requests. Counts are
therefore exact when every answer succeeds with the asked number of items (hash-based choices such as which
conversations continue follow the real ids), and prompt sizes are realistic (documents, questions and
transcripts really are in the prompts); only the answers' own text is a placeholder.

Pure and deterministic: no clocks, no randomness, no I/O besides what the stage builders read.
"""

from __future__ import annotations

import dataclasses
import heapq
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .build import Prepared, request_items, stage_requests
from .caching import count_cache
from .pricing import (
    CHARS_PER_TOKEN,
    TOKENS_PER_ITEM,
    PriceTable,
    estimate_input_tokens,
    estimate_output_tokens,
)
from .stages import Row, Stage
from .stages.base import parents_of, slot_count

SAMPLE_LIMIT = 2000  # first-stage requests simulated at most; above it, a deterministic sample is scaled up
ASSUMPTION = ("projected stages (~) are built from placeholder answers: every answer succeeds with "
              "num_samples_per_prompt items; token counts use the same estimates as the first stage")
_FILLER = "lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod tempor incididunt ut labore "


@dataclass
class KnownStage:
    """What a run in progress already knows of a compiled stage (for `project(..., known=...)`).

    Attributes:
        requests: the stage's manifest requests (the dicts of its manifest.jsonl: id, stage, model, messages,
            params, schema, meta).
        rows: the validated rows collected so far from its answered requests.
        pending: ids of its requests without a final result yet; only these get simulated answers, and their
            tokens are estimated. Requests neither pending nor in `usage` (failed for good) add nothing.
        usage: actual tokens of its answered requests, `{model: (input_tokens, output_tokens[, cache read,
            cache write, 1h cache write])}`.
    """

    requests: list[dict[str, Any]]
    rows: list[Row] = field(default_factory=list)
    pending: set[str] = field(default_factory=set)
    usage: Mapping[str, tuple[int, ...]] = field(default_factory=dict)


def project(prepared: Prepared, prices: PriceTable, known: Mapping[str, KnownStage] | None = None, *,
            sample_limit: int = SAMPLE_LIMIT,
            observe: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
    """Requests, tokens and cost of every stage of `prepared`, the later ones projected from placeholder answers.

    Args:
        prepared: a checked spec (`compiler.build.prepare`).
        prices: the price table (USD per 1M tokens; batch runtimes at `batch_discount`).
        known: stage name -> `KnownStage`, for a run in progress. A known stage counts its actual requests, its
            actual tokens (`usage`) plus estimates for its pending requests, and feeds the next stages with its
            actual rows plus the simulated rows of its pending requests. Stages not in `known` are built from
            the spec (the first stage) or projected from the rows of their inputs.
        sample_limit: at most this many first-stage requests are simulated. Above it, a deterministic sample
            (the requests with the smallest ids, ids being content hashes) and the rows descending from it
            feed the later stages, whose numbers are scaled by (first-stage requests / sample). The first
            stage and known stages are always counted in full.
        observe: called with every first-stage request built from the spec, as it streams past (`plan` feeds
            its per-language/label counts with it, so the first stage is built once).

    Returns:
        A JSON-ready dict. Token counts are estimates (see `compiler.pricing`) except `actual` ones; costs are
        in `prices.currency`, None for a model without a price (totals then exclude it, see `cost_excludes`):

            {"stages": [{"stage", "role", "round", "projected", "requests", "input_tokens", "output_tokens",
                         "cost_online", "cost_batch",
                         "by_model": {model: {"requests", "input_tokens", "output_tokens", "cost_online",
                                              "cost_batch"}},
                         "actual": {<same five numbers>}, "remaining": {<same five numbers>}}, ...],
             "rounds": <batch rounds: depth of the stage graph over stages with requests>,
             "sampled": {"requests": N, "of": M} or None,
             "total": {<five numbers>, "actual", "remaining", "by_model", "cost_excludes"},
             "note": <the assumption behind projected stages>}

        `projected` is true for stages built from simulated rows; `actual` holds what answered requests of a
        known stage used, `remaining` what is still to be paid (all of it for a stage not yet run).
    """
    if sample_limit < 1:
        raise ValueError(f"sample_limit must be at least 1, not {sample_limit}")
    known = known or {}
    stages = prepared.stages
    first = stages[0]
    later = len(stages) > 1
    keep = sample_limit if later else 0  # a single stage needs no simulated rows

    first_tally = _Tally()
    if first.name in known:
        total_first = len(known[first.name].requests)
        over = later and total_first > sample_limit
        sample = _smallest((r["id"] for r in known[first.name].requests), sample_limit) if over else None
        first_requests: list[dict[str, Any]] = []
    else:
        first_requests, total_first = _first_stage(prepared, first, first_tally, observe, keep)
        sample = {r["id"] for r in first_requests} if later and total_first > sample_limit else None
    scale = total_first / len(sample) if sample else 1.0
    builder = _sampled(prepared, len(sample) / total_first) if sample else prepared

    rows: dict[str, list[Row]] = {}
    included: set[str] = set()  # row ids of the simulated slice (every row when not sampling)
    tallies: list[tuple[Stage, bool, _Tally, _Tally]] = []  # stage, projected, actual, remaining
    for index, stage in enumerate(stages):
        if stage.name in known:
            actual, remaining, stage_rows = _known_stage(prepared, stage, known[stage.name], index == 0, sample,
                                                         included)
            tallies.append((stage, False, actual, remaining))
        elif index == 0:
            stage_rows = _simulated_rows(prepared, stage, first_requests) if later else []
            tallies.append((stage, False, _Tally(), first_tally))
        else:
            built = list(stage_requests(builder, stage, {name: rows[name] for name in stage.inputs}))
            tally = _Tally()
            items = answer_items(stage.schema, _samples(prepared))
            for request in built:
                tally.add_request(request, items)
            stage_rows = _simulated_rows(prepared, stage, built)
            tallies.append((stage, True, _Tally(), tally.scaled(scale)))
        included.update(r["row_id"] for r in stage_rows)
        rows[stage.name] = stage_rows

    rounds_of = _rounds(stages)
    entries = [_entry(stage, rounds_of[stage.name], projected, actual, remaining, prices)
               for stage, projected, actual, remaining in tallies]
    rounds = max((e["round"] for e in entries if e["requests"]), default=0)
    return {"stages": entries, "rounds": rounds,
            "sampled": {"requests": len(sample), "of": total_first} if sample is not None else None,
            "total": _total([(a, r) for _, _, a, r in tallies], prices), "note": ASSUMPTION}


def placeholder_answer(schema: Mapping[str, Any], samples: int, tag: str) -> Any:
    """A value valid against `schema` standing for a typical answer.

    Arrays get `samples` elements (within minItems/maxItems); the answer's strings share
    `items * TOKENS_PER_ITEM * CHARS_PER_TOKEN` characters, where `items` is the length of its top-level
    "items" array (1 without one), and each starts with `tag` and its path, so no two answers are the same.
    Integers and numbers sit at their minimum (0 without one), booleans are false, enums take their first value.
    """
    leaves = _count_strings(schema, samples)
    budget = answer_items(schema, samples) * TOKENS_PER_ITEM * CHARS_PER_TOKEN
    return _fill(schema, samples, budget // max(1, leaves), tag)


# -- simulation ----------------------------------------------------------------------------------------------


def _first_stage(prepared: Prepared, stage: Stage, tally: _Tally, observe: Callable[[dict[str, Any]], None] | None,
                 keep: int) -> tuple[list[dict[str, Any]], int]:
    """Count every first-stage request; return the `keep` with the smallest ids (in order) and the count."""
    items = answer_items(stage.schema, _samples(prepared))
    heap: list[tuple[int, int, dict[str, Any]]] = []  # (-id key, -position, request): max-heap of the smallest
    n = 0
    for n, request in enumerate(stage_requests(prepared, stage), 1):
        tally.add_request(request, items)
        if observe is not None:
            observe(request)
        if keep:
            entry = (-_id_key(request["id"]), -n, request)
            if len(heap) < keep:
                heapq.heappush(heap, entry)
            else:
                heapq.heappushpop(heap, entry)
    return [e[2] for e in sorted(heap, key=lambda e: -e[1])], n


def _smallest(ids: Iterable[str], limit: int) -> set[str]:
    return set(heapq.nsmallest(limit, ids, key=_id_key))


def _id_key(request_id: str) -> int:
    # ids are content hashes (hex), so their order is a deterministic shuffle of the requests
    try:
        return int(request_id[:16], 16)
    except ValueError:
        return int.from_bytes(request_id.encode()[:8].ljust(8, b"\0"), "big")


def _sampled(prepared: Prepared, fraction: float) -> Prepared:
    """The spec later stages are built with when only a slice of the first stage is simulated.

    A spec key capping a later stage's whole input (conversation `num_samples`: conversations started) must
    shrink with the slice, or the slice would keep up to the full cap and scaling would multiply it.
    """
    cap = getattr(prepared.spec, "num_samples", None)
    if not isinstance(cap, int) or isinstance(cap, bool):
        return prepared
    spec = prepared.spec.model_copy(update={"num_samples": max(1, round(cap * fraction))})
    return dataclasses.replace(prepared, spec=spec)


def _known_stage(prepared: Prepared, stage: Stage, known: KnownStage, first: bool, sample: set[str] | None,
                 included: set[str]) -> tuple[_Tally, _Tally, list[Row]]:
    """Actual and remaining numbers of a compiled stage, and its rows: actual ones + those of pending requests."""
    items = answer_items(stage.schema, _samples(prepared))
    actual, remaining = _Tally(), _Tally()
    simulate = []
    for request in known.requests:
        if request["id"] in known.pending:
            remaining.add_request(request, items)
            if _in_slice(request, first, sample, included):
                simulate.append(request)
        else:
            actual.count(request["model"], 1)
    for model, tokens in known.usage.items():
        actual.add(model, *tokens)
    rows = [r for r in known.rows if _row_in_slice(r, first, sample, included)]
    return actual, remaining, rows + _simulated_rows(prepared, stage, simulate)


def _in_slice(request: Mapping[str, Any], first: bool, sample: set[str] | None, included: set[str]) -> bool:
    if sample is None:
        return True
    if first:
        return request["id"] in sample
    return any(parent in included for parent in parents_of(request.get("meta", {})))


def _row_in_slice(row: Row, first: bool, sample: set[str] | None, included: set[str]) -> bool:
    """Rows are traced to their first-stage request through `parent` (the input row a request was built from)."""
    if sample is None:
        return True
    if first:
        return row.get("request_id") in sample
    return row.get("parent") in included


def _simulated_rows(prepared: Prepared, stage: Stage, requests: Iterable[dict[str, Any]]) -> list[Row]:
    samples = _samples(prepared)
    out: list[Row] = []
    for request in requests:
        out += stage.rows(prepared.spec, request, placeholder_answer(stage.schema, samples, request["id"][:12]))
    return out


def _samples(prepared: Prepared) -> int:
    return int(getattr(prepared.spec, "num_samples_per_prompt", 1))


def _rounds(stages: list[Stage]) -> dict[str, int]:
    """Batch round of each stage: 1 + the latest round among its inputs (stages only read earlier ones)."""
    out: dict[str, int] = {}
    for stage in stages:
        out[stage.name] = 1 + max((out[name] for name in stage.inputs), default=0)
    return out


# -- placeholder answers -------------------------------------------------------------------------------------


def answer_items(schema: Mapping[str, Any], samples: int) -> int:
    """Generated items in one answer (as `plan` counts): the length of its top-level "items" array; the number
    of its properties when each is an object (one slot per item: grouped mcq distractors); else 1."""
    properties = schema.get("properties", {})
    items = properties.get("items")
    if isinstance(items, Mapping) and items.get("type") == "array":
        return _array_length(items, samples)
    return slot_count(schema) or 1


def _array_length(schema: Mapping[str, Any], samples: int) -> int:
    n = max(samples, int(schema.get("minItems", 0)))
    return min(n, int(schema["maxItems"])) if "maxItems" in schema else n


def _type(schema: Mapping[str, Any]) -> str | None:
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), kind[0] if kind else None)
    return kind


def _count_strings(schema: Mapping[str, Any], samples: int) -> int:
    if "const" in schema or "enum" in schema:
        return 0
    kind = _type(schema)
    if kind == "object":
        return sum(_count_strings(s, samples) for s in schema.get("properties", {}).values())
    if kind == "array":
        return _array_length(schema, samples) * _count_strings(schema.get("items", {}), samples)
    return 1 if kind == "string" else 0


def _fill(schema: Mapping[str, Any], samples: int, size: int, path: str) -> Any:
    if "const" in schema:
        return schema["const"]
    if "enum" in schema:
        return schema["enum"][0]
    kind = _type(schema)
    if kind == "object":
        return {k: _fill(s, samples, size, f"{path}/{k}") for k, s in schema.get("properties", {}).items()}
    if kind == "array":
        return [_fill(schema.get("items", {}), samples, size, f"{path}/{i}") for i in range(_array_length(schema, samples))]
    if kind == "string":
        length = max(int(schema.get("minLength", 0)), min(size, int(schema.get("maxLength", size))))
        text = f"{path} " + _FILLER * (length // len(_FILLER) + 1)
        return text[:length] if len(text) > length else text
    if kind in ("integer", "number"):
        if "minimum" in schema:
            return schema["minimum"]
        if "exclusiveMinimum" in schema:
            return schema["exclusiveMinimum"] + 1
        return 0
    if kind == "boolean":
        return False
    return None


# -- tallies -------------------------------------------------------------------------------------------------


class _Tally:
    """Per model: [requests, input tokens, output tokens, cache-read, cache-write, of which 1h cache-write
    input tokens]."""

    def __init__(self) -> None:
        self.models: dict[str, list[int]] = {}
        self.prefixes: set[str] = set()  # shared prefixes (caching.py) already counted once

    def _get(self, model: str) -> list[int]:
        return self.models.setdefault(model, [0] * 6)

    def add_request(self, request: Mapping[str, Any], items: int) -> None:
        group = self._get(request["model"])
        group[0] += 1
        group[1] += estimate_input_tokens(request["messages"])
        group[2] += estimate_output_tokens(request_items(request, items), request["params"]["max_tokens"])
        count_cache(request, self.prefixes, group)  # as the compiled estimates count it

    def add(self, model: str, input_tokens: int, output_tokens: int, *cached: int) -> None:
        """Actual tokens: input, output, then optionally cache read, cache write, 1h cache write."""
        group = self._get(model)
        group[1] += input_tokens
        group[2] += output_tokens
        for i, n in enumerate(cached[:3], 3):
            group[i] += n

    def count(self, model: str, requests: int) -> None:
        self._get(model)[0] += requests

    def scaled(self, factor: float) -> _Tally:
        out = _Tally()
        out.models = {m: [round(v * factor) for v in g] for m, g in self.models.items()}
        return out


def _numbers(tally: Mapping[str, list[int]], prices: PriceTable) -> dict[str, Any]:
    """requests, tokens and cost (sum over models with a price) of per-model groups."""
    out: dict[str, Any] = {"requests": 0, "input_tokens": 0, "output_tokens": 0, "cost_online": 0.0, "cost_batch": 0.0}
    for model in sorted(tally):
        n, inp, outp, *cached = tally[model]
        out["requests"] += n
        out["input_tokens"] += inp
        out["output_tokens"] += outp
        cost = prices.cost(model, inp, outp, *cached)
        for kind in ("online", "batch"):
            if cost[kind] is not None:
                out[f"cost_{kind}"] = round(out[f"cost_{kind}"] + cost[kind], 6)
    return out


def _by_model(tally: Mapping[str, list[int]], prices: PriceTable) -> dict[str, dict[str, Any]]:
    out = {}
    for model in sorted(tally):
        n, inp, outp, read, write, write_1h = tally[model]
        cost = prices.cost(model, inp, outp, read, write, write_1h)
        out[model] = {"requests": n, "input_tokens": inp, "output_tokens": outp, "cache_read_input_tokens": read,
                      "cache_write_input_tokens": write, "cache_write_1h_input_tokens": write_1h,
                      "cost_online": cost["online"], "cost_batch": cost["batch"]}
    return out


def _merge(*tallies: Mapping[str, list[int]]) -> dict[str, list[int]]:
    out: dict[str, list[int]] = {}
    for tally in tallies:
        for model, group in tally.items():
            total = out.setdefault(model, [0] * 6)
            for i, v in enumerate(group):
                total[i] += v
    return out


def _entry(stage: Stage, round_: int, projected: bool, actual: _Tally, remaining: _Tally,
           prices: PriceTable) -> dict[str, Any]:
    both = _merge(actual.models, remaining.models)
    return {"stage": stage.name, "role": stage.role, "round": round_, "projected": projected,
            **_numbers(both, prices), "by_model": _by_model(both, prices),
            "actual": _numbers(actual.models, prices), "remaining": _numbers(remaining.models, prices)}


def _total(tallies: list[tuple[_Tally, _Tally]], prices: PriceTable) -> dict[str, Any]:
    actual = _merge(*(a.models for a, _ in tallies))
    remaining = _merge(*(r.models for _, r in tallies))
    both = _merge(actual, remaining)
    by_model = _by_model(both, prices)
    return {**_numbers(both, prices), "actual": _numbers(actual, prices), "remaining": _numbers(remaining, prices),
            "by_model": by_model, "cost_excludes": [m for m, v in by_model.items() if v["cost_online"] is None]}
