"""Token and cost estimates for `plan` and manifest.json, from a dated price table kept as data."""

from __future__ import annotations

import json
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


def estimate_output_tokens(items: int, max_tokens: int) -> int:
    return min(max_tokens, ANSWER_OVERHEAD_TOKENS + items * TOKENS_PER_ITEM)


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

    def cost(self, model: str, input_tokens: int, output_tokens: int) -> dict[str, float | None]:
        price = self.price(model)
        if price is None:
            return {"online": None, "batch": None}
        online = (input_tokens * price["input"] + output_tokens * price["output"]) / 1e6
        batched = model.partition(":")[0] in ("openai", "anthropic", "gemini")
        return {"online": round(online, 6), "batch": round(online * (self.batch_discount if batched else 1), 6)}


def _read_override(path: Path) -> dict[str, Any]:
    from .errors import SpecError
    from .tables import read_table

    data = read_table(path, "price table", dict,
                      "'models': {'runtime:model': {input: USD per 1M tokens, output: ...}}")
    discount = data.get("batch_discount", 0.5)
    if isinstance(discount, bool) or not isinstance(discount, (int, float)) or not 0 <= discount <= 1:
        raise SpecError.single(str(path), None, "batch_discount", "give a number between 0 and 1 (0.5 = half price)")
    free = data.get("free_runtimes", [])
    if not isinstance(free, list) or not all(isinstance(r, str) for r in free):
        raise SpecError.single(str(path), None, "free_runtimes", "give a list of runtime names, e.g. [ollama, local]")
    for model, price in data.get("models", {}).items():
        if ":" not in str(model):
            raise SpecError.single(str(path), None, f"models.{model}", "name models as 'runtime:model', as in specs")
        if not (isinstance(price, dict) and {"input", "output"} <= set(price)
                and all(isinstance(price[k], (int, float)) for k in ("input", "output"))):
            raise SpecError.single(str(path), None, f"models.{model}", "give numeric 'input' and 'output' prices")
    return data
