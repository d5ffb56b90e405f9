"""The dataset card (`README.md`) pushed with a dataset: Hub metadata plus how the data was made.

The YAML header is Hub metadata built with `huggingface_hub.DatasetCardData` (`configs`/`data_files` per
split, `language`, `task_categories`, `size_categories`, `tags`, `license`, `pretty_name`); the body tells a
reader who never saw the spec what the dataset is, how it was generated (type, stages, models, batch or online,
prompts, expansion), its counts, its token usage and cost, and how to rebuild it. Everything in it comes from
the output dir and the rows: no clock, no machine name, so pushing the same rows twice gives the same bytes.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# task categories of the Hub's dataset metadata (huggingface.co/docs/hub/datasets-cards, task list as of
# 2026-11); generic pipelines produce text from text
TASK_CATEGORIES = {
    "classification": ["text-classification"],
    "text": ["text-generation"],
    "conversation": ["text-generation"],
    "mcq": ["multiple-choice", "question-answering"],
    "preference": ["text-generation"],
    "generic": ["text-generation"],
}
TYPE_TAGS = {"preference": ["preference", "dpo"], "conversation": ["conversational"], "mcq": ["mcq"]}
TYPE_DESCRIPTION = {
    "classification": "texts labelled with one class each, generated per class and language",
    "text": "raw texts generated per document type, topic and language",
    "conversation": "multi-turn conversations: an opening question, then alternating simulated user and "
                    "assistant turns",
    "mcq": "multiple-choice questions written from source documents: a question and its correct answer, then "
           "three incorrect answers",
    "preference": "preference pairs: questions written from documents, a chosen and a rejected answer to each"
                  " (and, with a judge, a score and an assessment of both)",
    "generic": "new columns generated for each row of an input dataset",
}
# the Hub's size_categories buckets (upper bounds, exclusive)
SIZE_BUCKETS = ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"), (1_000_000, "100K<n<1M"),
                (10_000_000, "1M<n<10M"), (100_000_000, "10M<n<100M"), (1_000_000_000, "100M<n<1B"))
EXAMPLE_CHARS = 1500  # an example prompt longer than this is cut in the card


def size_category(rows: int) -> str:
    for bound, name in SIZE_BUCKETS:
        if rows < bound:
            return name
    return "n>1B"


@dataclass
class StageFacts:
    """One stage as the card shows it."""

    name: str
    role: str
    models: list[str]
    mode: str  # "batch", "online" or "local"
    requests: int
    with_rows: int
    rejected: int
    pending: int
    custom_prompts: list[str] | None  # the spec's templates, None for the built-in ones
    example: list[Mapping[str, str]]  # the messages of the stage's first request


@dataclass
class CardFacts:
    """What the card says; gathered by `datafast.hub` from the output dir, the collect report and the rows."""

    repo_id: str
    name: str
    type: str
    description: str
    languages: Mapping[str, str]
    license: str | None
    datafast_version: str
    spec_hash: str
    manifest_sha256: str  # of the first stage's manifest.jsonl, what `datafast compile` reproduces
    splits: Mapping[str, int]  # split -> rows
    split_rule: str
    columns: Sequence[tuple[str, str]]  # (name, Arrow type)
    json_columns: Sequence[str]
    stages: Sequence[StageFacts]
    generation: Mapping[str, Any]
    expansion: Mapping[str, Any]
    source: str | None  # the spec's input data, as the card should name it
    rows_by: Mapping[str, Mapping[str, int]]  # "label"/"language"/"model" -> value -> rows
    rejects_by_reason: Mapping[str, int]
    items: Mapping[str, Any] | None
    usage: Mapping[str, Any]
    prices_checked: str
    extra_tags: Sequence[str] = field(default_factory=tuple)


def metadata(facts: CardFacts) -> Any:
    """The card's YAML header as a `huggingface_hub.DatasetCardData`."""
    from huggingface_hub import DatasetCardData

    data_files = [{"split": split, "path": f"data/{split}-*"} for split in facts.splits]
    tags = ["synthetic", "datafast", *TYPE_TAGS.get(facts.type, ()), *facts.extra_tags]
    return DatasetCardData(
        language=sorted(facts.languages),
        license=facts.license,
        pretty_name=facts.name,
        size_categories=[size_category(sum(facts.splits.values()))],
        task_categories=TASK_CATEGORIES[facts.type],
        tags=list(dict.fromkeys(tags)),
        configs=[{"config_name": "default", "data_files": data_files}],
    )


def render(facts: CardFacts) -> str:
    """The whole README.md: `---` YAML header `---`, then the body (Markdown)."""
    from huggingface_hub import DatasetCard

    header = metadata(facts).to_yaml()
    card = DatasetCard(f"---\n{header}\n---\n\n" + _body(facts))
    return str(card)


def _table(head: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(_cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def _cell(value: Any) -> str:
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return str(value).replace("|", "\\|").replace("\n", " ")


def _fence(text: str) -> str:
    """`text` in a code fence longer than any backtick run inside it, so nothing in it closes the fence."""
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    ticks = "`" * max(3, longest + 1)
    return f"{ticks}text\n{text}\n{ticks}"


def _body(f: CardFacts) -> str:
    total = sum(f.splits.values())
    out = [f"# {f.name}", ""]
    if f.description:
        out += [f.description.strip(), ""]
    out += [f"A synthetic dataset of {TYPE_DESCRIPTION[f.type]}. Made with datafast {f.datafast_version} "
            f"(dataset type `{f.type}`): {total:,} rows in {len(f.splits)} split"
            f"{'s' if len(f.splits) != 1 else ''}; languages: "
            + ", ".join(f"{name} (`{code}`)" for code, name in f.languages.items()) + ".", ""]

    out += ["## Loading", "", "```python", "from datasets import load_dataset", "",
            f'dataset = load_dataset("{f.repo_id}")', "```", ""]

    out += ["## Structure", "", _table(["split", "rows"], list(f.splits.items())), "", f.split_rule, "",
            _table(["column", "type"], [(f"`{n}`", t) for n, t in f.columns]), ""]
    if f.json_columns:
        out += ["Stored as JSON text because their values differ in type across rows (decode with "
                "`json.loads`): " + ", ".join(f"`{c}`" for c in f.json_columns) + ".", ""]

    out += ["## How it was generated", ""]
    if f.source:
        out += [f"Input data: {f.source}.", ""]
    out += [_table(["stage", "role", "models", "sent", "requests", "answered with rows", "rejected", "pending"],
                   [(s.name, s.role, ", ".join(f"`{m}`" for m in s.models), s.mode, s.requests, s.with_rows,
                     s.rejected, s.pending) for s in f.stages]), ""]
    out += ["`batch`: the vendor's batch API (half the online price); `online`: one call per request; `local`: "
            "a model on the machine that ran datafast (Ollama or the embedded llama.cpp model).", ""]
    params = {k: v for k, v in f.generation.items() if v is not None}
    out += ["Generation parameters: " + ", ".join(f"`{k}={v}`" for k, v in params.items()) + ".", ""]
    placeholders = f.expansion.get("placeholders") or {}
    if placeholders:
        how = ("every combination of the values" if f.expansion.get("combinatorial", True)
               else f"{f.expansion.get('num_random_samples')} random combination(s) per base prompt, seed "
                    f"{f.expansion.get('seed')}")
        out += ["Prompt expansion (" + how + "):", ""]
        out += [f"- `{{{{{name}}}}}`: " + ", ".join(f"`{v}`" for v in values) for name, values in placeholders.items()]
        out += [""]
    for stage in f.stages:
        out += [f"### Prompts of stage `{stage.name}`", ""]
        if stage.custom_prompts:
            out += ["Templates from the spec:", ""]
            out += [_fence(p) for p in stage.custom_prompts]
            out += [""]
        else:
            out += [f"The built-in templates of datafast {f.datafast_version} for this stage.", ""]
        if stage.example:
            out += ["<details><summary>An example request, as sent</summary>", ""]
            for message in stage.example:
                text = message.get("content", "")
                if len(text) > EXAMPLE_CHARS:
                    text = text[:EXAMPLE_CHARS] + f" [... {len(text) - EXAMPLE_CHARS:,} more characters]"
                out += [f"**{message.get('role', '?')}**", "", _fence(text), ""]
            out += ["</details>", ""]

    out += ["## Counts", ""]
    for key, title in (("label", "class / topic"), ("language", "language"), ("model", "model")):
        values = f.rows_by.get(key)
        if values:
            out += [_table([title, "rows"], sorted(values.items())), ""]
    if f.items:
        out += [f"Items: {f.items['items']:,} started, {f.items['rows']:,} complete rows, {f.items['rejected']:,} "
                f"rejected (a stage of their chain failed), {f.items['pending']:,} pending when pushed.", ""]
    if f.rejects_by_reason:
        out += ["Rejected answers by reason (`rejects.jsonl` of the run keeps each one with its reason):", "",
                _table(["reason", "answers"], list(f.rejects_by_reason.items())), ""]
    else:
        out += ["No answer was rejected.", ""]

    out += ["## Token usage and cost", ""]
    by_model = f.usage.get("by_model") or {}
    if by_model:
        out += [_table(["model", "input tokens", "of which cached", "output tokens", "of which online (in / out)",
                        "cost (USD)"],
                       [(f"`{m}`", u["input_tokens"], u.get("cache_read_input_tokens", 0), u["output_tokens"],
                         f"{u['online_input_tokens']:,} / {u['online_output_tokens']:,}",
                         "unpriced" if u["cost"] is None else f"{u['cost']:.4f}") for m, u in by_model.items()]),
                ""]
    cost = f.usage.get("cost")
    total_cost = "unknown (a model has no price)" if cost is None else f"{cost:.4f} USD"
    files = f.usage.get("prices_files") or []
    table = (f"the price table {', '.join(f'`{Path(x).name}`' for x in files)} merged over datafast's, checked "
             if files else "datafast's price table checked ")
    out += [f"Total cost: {total_cost}, from the tokens the vendors reported, priced with {table}"
            f"{f.usage.get('prices_checked', f.prices_checked)} (batch requests at the batch price, cached input at "
            "the cache price).", ""]
    spent, idle = f.usage.get("spent"), f.usage.get("cost_without_rows")
    if spent is not None and idle and idle >= 5e-5:  # below that it prints as 0.0000
        out += [f"Spent in all, every attempt included: {spent:.4f} USD; {idle:.4f} USD of it gave no row (rejected "
                "answers, failed or superseded attempts). Each row's `cost_usd` is its share of the requests that "
                "made it.", ""]

    out += ["## Reproduce", "",
            "This repository holds the spec (`spec.yaml`) and the compiled manifest summary (`manifest.json`; "
            "`stages/<stage>/manifest.json` for the later stages). With datafast installed:", "",
            "```bash", "datafast compile spec.yaml -o build/reproduce",
            "sha256sum build/reproduce/manifest.jsonl", "datafast run spec.yaml   # the vendors' keys in the "
            "environment", "```", "",
            f"The compile gives a `manifest.jsonl` with sha256 `{f.manifest_sha256}` (spec hash `{f.spec_hash}`): "
            "the same requests, byte for byte, with datafast "
            f"{f.datafast_version}. The answers themselves come from the models and differ between runs unless "
            "the vendor's sampling is deterministic.", ""]
    return "\n".join(out)
