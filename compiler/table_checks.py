"""Spec warnings that need the dated tables (prices, capabilities), found before anything is paid.

- A model without a price: its cost would be left out of every total. A name close to one the tables know is
  most likely a typo (`openai:gpt-4.1-minii`): the warning says which.

Each check returns (field path, message) pairs, as `compiler.checks` does; `table_warnings` locates them.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterator
from typing import TYPE_CHECKING

from .capabilities import CapabilityTable
from .errors import SpecIssue
from .pricing import PriceTable
from .spec import DatasetConfigBase
from .vendors import RENDERERS

if TYPE_CHECKING:
    from .build import Prepared

Finding = tuple[tuple[str | int, ...], str]


def table_warnings(prepared: Prepared, prices: PriceTable,
                   capabilities: CapabilityTable | None = None) -> list[SpecIssue]:
    """Unpriced models, located in the spec."""
    caps = capabilities if capabilities is not None else CapabilityTable.from_environment()
    findings = list(unpriced_models(prepared.spec, prices, caps))
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
