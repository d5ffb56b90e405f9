"""Expansion properties: counts follow the formula, subsets are distinct and a function of the seed."""

from __future__ import annotations

from math import prod

from hypothesis import given, settings
from hypothesis import strategies as st

from datafast.compiler.build import plan, prepare, stage_requests
from datafast.compiler.expansion import combinations, random_indices
from datafast.compiler.spec import ClassificationDatasetConfig, PromptExpansionConfig

value_lists = st.lists(st.text(min_size=1, max_size=5), min_size=1, max_size=4)
placeholder_maps = st.dictionaries(st.sampled_from(["a", "b", "c"]), value_lists, min_size=1, max_size=3)


@given(placeholder_maps)
def test_combinatorial_yields_every_combination_once(placeholders):
    names = sorted(placeholders)
    exp = PromptExpansionConfig(placeholders=placeholders)
    combos = list(combinations(names, exp, "k"))
    assert len(combos) == prod(len(v) for v in placeholders.values())
    # positions, not values: duplicate values in a list are distinct requests
    as_positions = {tuple(placeholders[n].index(c[n]) for n in names) for c in combos}
    if all(len(set(v)) == len(v) for v in placeholders.values()):
        assert len(as_positions) == len(combos)


@given(st.integers(1, 500), st.integers(1, 600), st.integers(0, 2**32), st.text(max_size=8))
def test_random_indices_are_distinct_in_range_and_deterministic(total, k, seed, key):
    picked = random_indices(total, k, seed, key)
    assert len(picked) == min(total, k)
    assert len(set(picked)) == len(picked)
    assert all(0 <= i < total for i in picked)
    assert picked == sorted(picked)
    assert picked == random_indices(total, k, seed, key)


def test_random_subsets_depend_on_the_seed():
    subsets = {tuple(random_indices(1000, 10, seed, "k")) for seed in range(20)}
    assert len(subsets) == 20


def _spec(**expansion) -> ClassificationDatasetConfig:
    return ClassificationDatasetConfig(
        name="t",
        classes=[{"name": "a", "description": "A."}, {"name": "b", "description": "B."}],
        languages={"en": "English", "fr": "French"},
        prompts=["{num_samples} {language_name} {label_name} {label_description} {{x}} {{y}}",
                 "{num_samples} {language_name} {label_name} {label_description} {{x}}"],
        models=["openai:m1", "anthropic:m2"],
        expansion=expansion,
    )


@settings(max_examples=25, deadline=None)
@given(st.integers(1, 4), st.integers(1, 4), st.booleans(), st.integers(1, 20), st.integers(0, 10**6))
def test_request_count_follows_the_formula_and_ids_are_unique(nx, ny, combinatorial, k, seed):
    spec = _spec(placeholders={"x": [f"x{i}" for i in range(nx)], "y": [f"y{i}" for i in range(ny)]},
                 combinatorial=combinatorial, num_random_samples=k, seed=seed)
    prepared = prepare(spec)
    requests = list(stage_requests(prepared, prepared.stages[0]))
    per_base = [nx * ny, nx] if combinatorial else [min(k, nx * ny), min(k, nx)]
    assert len(requests) == 2 * 2 * sum(per_base) * 2  # classes x languages x prompts x models
    ids = [r["id"] for r in requests]
    assert len(set(ids)) == len(ids)
    assert all(len(i) == 32 and i.isalnum() for i in ids)
    assert ids == [r["id"] for r in stage_requests(prepared, prepared.stages[0])]  # stable
    assert plan(prepared)["counts"]["requests"] == len(requests)


def test_random_subset_is_a_function_of_seed_and_base_prompt_only():
    values = {"x": [f"x{i}" for i in range(30)], "y": [f"y{i}" for i in range(30)]}

    def picked(seed, classes):
        spec = _spec(placeholders=values, combinatorial=False, num_random_samples=5, seed=seed)
        spec = ClassificationDatasetConfig.model_validate({**spec.model_dump(), "classes": classes})
        prepared = prepare(spec)
        return {(r["meta"]["label"], r["meta"]["language"], r["meta"]["template"], tuple(r["meta"]["placeholders"].items()))
                for r in stage_requests(prepared, prepared.stages[0])}

    a = [{"name": "a", "description": "A."}]
    both = [{"name": "a", "description": "A."}, {"name": "b", "description": "B."}]
    assert picked(1, a) == picked(1, a)
    assert picked(1, a) != picked(2, a)
    # adding a class does not change the subsets drawn for the existing one
    assert picked(1, a) <= picked(1, both)


def test_identical_requests_asked_for_separately_stay_separate():
    spec = _spec(placeholders={"x": ["same", "same"], "y": ["v"]})
    prepared = prepare(spec)
    requests = list(stage_requests(prepared, prepared.stages[0]))
    ids = [r["id"] for r in requests]
    assert len(set(ids)) == len(ids)
    contents = [(r["model"], r["messages"][1]["content"]) for r in requests]
    assert len(set(contents)) < len(contents)  # some requests really are identical in content
