"""Token and cost estimates for `plan` and manifest.json, from a dated price table kept as data."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

CHARS_PER_TOKEN = 4  # rough average for English; an estimate, labelled as such everywhere it is shown
TOKENS_PER_MESSAGE = 4
TOKENS_PER_ITEM = 150  # typical length of one generated item (a text, a question and its answer, ...)
ANSWER_OVERHEAD_TOKENS = 20


def estimate_input_tokens(messages: list[Mapping[str, str]]) -> int:
    chars = 0
    for m in messages:
        chars += len(m["content"])
    return chars // CHARS_PER_TOKEN + TOKENS_PER_MESSAGE * len(messages)


# Reasoning tokens assumed per answer of a reasoning model when no thinking_budget bounds them, by
# reasoning_effort (a model that reasons by default: "medium", OpenAI's default). Vendors publish no typical
# counts; these are deliberately low assumptions, so that the max_tokens check warns only where truncation is
# likely (real reasoning often takes several times more).
REASONING_TOKENS = {"minimal": 0, "low": 512, "medium": 1024, "high": 4096}
DEFAULT_REASONING_EFFORT = "medium"


# The shortest plausible item (a question, a one-sentence text): the max_tokens check warns when even answers
# of items this short would not fit, so it fires where truncation is near-certain, not on every spec asking for
# short texts (our quickstart's two-sentence reviews average ~45 tokens). Cost estimates use TOKENS_PER_ITEM.
MIN_TOKENS_PER_ITEM = 50


def answer_tokens(items: int, per_item: int = TOKENS_PER_ITEM) -> int:
    """Estimated visible length of an answer of `items` generated items, whatever max_tokens allows."""
    return ANSWER_OVERHEAD_TOKENS + items * per_item


def estimate_output_tokens(items: int, max_tokens: int) -> int:
    return min(max_tokens, answer_tokens(items))


@dataclass(frozen=True)
class PriceTable:
    checked: str
    currency: str
    batch_discount: float
    free_runtimes: frozenset[str]
    models: Mapping[str, Mapping[str, float]]
    sources: tuple[str, ...] = field(default=())

    @classmethod
    def load(cls, override: str | Path | None = None) -> PriceTable:
        """The built-in table, with the entries of `override` (JSON or YAML, same format) merged over it."""
        data = json.loads(resources.files("datafast.compiler").joinpath("data/prices.json").read_text("utf-8"))
        sources = ["built-in table"]
        if override is not None:
            extra = _read_override(Path(override))
            data["models"] = {**data["models"], **extra.get("models", {})}
            for key in ("checked", "currency", "batch_discount", "free_runtimes"):
                if key in extra:
                    data[key] = extra[key]
            sources.append(str(override))
        return cls(data["checked"], data["currency"], float(data["batch_discount"]),
                   frozenset(data["free_runtimes"]), data["models"], tuple(sources))

    def price(self, model: str) -> Mapping[str, float] | None:
        if model in self.models:  # an explicit entry wins, even for a local runtime
            return self.models[model]
        if model.partition(":")[0] in self.free_runtimes:
            return {"input": 0.0, "output": 0.0}
        return None

    def cost(self, model: str, input_tokens: int, output_tokens: int, cache_read: int = 0,
             cache_write: int = 0, cache_write_1h: int = 0) -> dict[str, float | None]:
        """USD at the online and the batch price. `input_tokens` is the whole prompt; `cache_read` and
        `cache_write` of them were read from / written to the vendor's prompt cache and cost the model's
        `cache_read` / `cache_write` price; `cache_write_1h` of the writes were for 1 hour (Anthropic) and cost
        `cache_write_1h`. A price the table does not give is the input price."""
        exact = self.cost_exact(model, input_tokens, output_tokens, cache_read, cache_write, cache_write_1h)
        return {k: None if v is None else round(v, 6) for k, v in exact.items()}

    def cost_exact(self, model: str, input_tokens: int, output_tokens: int, cache_read: int = 0,
                   cache_write: int = 0, cache_write_1h: int = 0) -> dict[str, float | None]:
        """`cost` unrounded: what sums of many requests' costs are made of (no rounding error piles up)."""
        price = self.price(model)
        if price is None:
            return {"online": None, "batch": None}
        read = min(max(cache_read, 0), input_tokens)
        write = min(max(cache_write, 0), input_tokens - read)
        long = min(max(cache_write_1h, 0), write)
        online = ((input_tokens - read - write) * price["input"] + read * price.get("cache_read", price["input"])
                  + (write - long) * price.get("cache_write", price["input"])
                  + long * price.get("cache_write_1h", price["input"]) + output_tokens * price["output"]) / 1e6
        batched = model.partition(":")[0] in ("openai", "anthropic", "gemini")
        return {"online": online, "batch": online * (self.batch_discount if batched else 1)}


TABLE_KEYS = ("checked", "currency", "unit", "note", "batch_discount", "free_runtimes", "models")
PRICE_KEYS = ("input", "output")
OPTIONAL_PRICE_KEYS = ("cache_read", "cache_write", "cache_write_1h")  # USD per 1M cached input tokens
_PRICE_SHAPE = "models: {'runtime:model': {input: USD per 1M input tokens, output: USD per 1M output tokens}}"


def _read_override(path: Path) -> dict[str, Any]:
    """A price file (format of data/prices.json), every key checked: a misplaced or misspelt one is an error
    naming it, not a price silently ignored."""
    from .errors import SpecError
    from .loader import did_you_mean
    from .tables import read_located_table

    data, lines = read_located_table(path, "price table", dict, f"'models' ({_PRICE_SHAPE})")

    def fail(where: tuple[str | int, ...], message: str) -> SpecError:
        return SpecError([lines.issue(where, message)])

    for key in data:
        if key in TABLE_KEYS:
            continue
        if str(key) in PRICE_KEYS or did_you_mean(str(key), PRICE_KEYS):
            raise fail((key,), f"a price belongs inside a model's entry, under 'models': {_PRICE_SHAPE}")
        if ":" in str(key):
            raise fail((key,), f"a model's price belongs under 'models': models: {{{key}: {{input: ..., output: ...}}}}")
        raise fail((key,), f"unknown key {key!r}{did_you_mean(str(key), TABLE_KEYS)} (keys: {', '.join(TABLE_KEYS)})")
    for key in ("checked", "currency"):
        if key in data and not isinstance(data[key], str):
            raise fail((key,), "give text, e.g. checked: '2026-11-01', currency: USD")
    discount = data.get("batch_discount", 0.5)
    if isinstance(discount, bool) or not isinstance(discount, (int, float)) or not 0 <= discount <= 1:
        raise fail(("batch_discount",), "give a number between 0 and 1 (0.5 = half price)")
    free = data.get("free_runtimes", [])
    if not isinstance(free, list) or not all(isinstance(r, str) for r in free):
        raise fail(("free_runtimes",), "give a list of runtime names, e.g. [ollama, local]")
    for model, price in data.get("models", {}).items():
        _check_price(model, price, fail)
    return data


def _check_price(model: Any, price: Any, fail: Any) -> None:
    from .loader import did_you_mean
    from .spec import KNOWN_RUNTIMES

    where: tuple[str | int, ...] = ("models", model)
    if ":" not in str(model):
        raise fail(where, "name models as 'runtime:model', as in specs")
    runtime = str(model).partition(":")[0]
    if runtime not in KNOWN_RUNTIMES:  # a price no request could ever use
        raise fail(where, f"unknown runtime {runtime!r}{did_you_mean(runtime, KNOWN_RUNTIMES)} (runtimes: "
                          f"{', '.join(KNOWN_RUNTIMES)})")
    if not isinstance(price, dict):
        raise fail(where, f"give numeric 'input' and 'output' prices (USD per 1M tokens): {_PRICE_SHAPE}")
    known = PRICE_KEYS + OPTIONAL_PRICE_KEYS
    for key in price:
        if key not in known:
            raise fail((*where, key), f"unknown key {key!r}{did_you_mean(str(key), known)} (a model's price has "
                                      "'input' and 'output', optionally 'cache_read', 'cache_write' and 'cache_write_1h', USD per "
                                      "1M tokens)")
    for key in OPTIONAL_PRICE_KEYS:
        value = price.get(key, 0)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
            raise fail((*where, key), f"give a non-negative number (USD per 1M tokens), not {value!r}")
    for key in PRICE_KEYS:
        if key not in price:
            raise fail(where, f"missing '{key}': give numeric 'input' and 'output' prices (USD per 1M tokens)")
        value = price[key]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise fail((*where, key), f"give numeric 'input' and 'output' prices (USD per 1M tokens), not {value!r}")
        if value < 0:
            raise fail((*where, key), "a price cannot be negative")
