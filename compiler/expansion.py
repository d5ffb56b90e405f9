"""Prompt expansion: the `{{x}}` combinations each base prompt gets.

Combinatorial expansion yields every combination of the values of the placeholders the template uses (last
placeholder varying fastest). Random expansion draws `num_random_samples` distinct combinations without
replacement with Floyd's algorithm, fed by hashes of (seed, base prompt key): the subset depends only on the
seed and the base prompt, never on global random state, and costs O(k) memory, not O(combinations).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from itertools import product
from math import prod

from .hashing import stable_int
from .spec import PromptExpansionConfig


def combination_count(names: Sequence[str], expansion: PromptExpansionConfig) -> int:
    """How many prompts one base prompt using `names` expands into."""
    total = prod(len(expansion.placeholders[n]) for n in names)
    return total if expansion.combinatorial else min(total, expansion.num_random_samples)


def random_indices(total: int, k: int, seed: int, key: str) -> list[int]:
    """`k` distinct indices in [0, total), sorted; all of them when k >= total."""
    if k >= total:
        return list(range(total))
    chosen: set[int] = set()
    for j in range(total - k, total):
        t = stable_int(seed, key, j) % (j + 1)
        chosen.add(j if t in chosen else t)
    return sorted(chosen)


def _decode(index: int, sizes: Sequence[int]) -> list[int]:
    digits = []
    for size in reversed(sizes):
        index, digit = divmod(index, size)
        digits.append(digit)
    return digits[::-1]


def combinations(names: Sequence[str], expansion: PromptExpansionConfig, key: str) -> Iterator[Mapping[str, str]]:
    """The placeholder values for each expanded prompt of one base prompt, in a stable order."""
    if not names:
        yield {}
        return
    values = [expansion.placeholders[n] for n in names]
    if expansion.combinatorial:
        for combo in product(*values):
            yield dict(zip(names, combo, strict=True))
        return
    sizes = [len(v) for v in values]
    for index in random_indices(prod(sizes), expansion.num_random_samples, expansion.seed, key):
        digits = _decode(index, sizes)
        yield {n: vals[d] for n, vals, d in zip(names, values, digits, strict=True)}
