"""A dataset shaped for analysis: flat placeholder columns, label as ClassLabel, CSV output."""

from __future__ import annotations

import csv
import json

import pandas as pd
import yaml

import datafast
from datafast.dataset import collect_to, load_dataset
from datafast.pipeline import advance

SPEC = {"datafast": 1, "name": "flat", "type": "classification", "num_samples_per_prompt": 2,
        "classes": [{"name": n, "description": f"{n} text"} for n in ("zeta", "alpha", "mid")],
        "prompts": ["Write {num_samples} {{tone}} texts in {language_name}, class {label_name}: {label_description}"],
        "expansion": {"placeholders": {"tone": ["formal", "casual"]}},
        "models": ["ollama:gemma3:4b"]}


def run(tmp_path, ollama_emulator):
    spec = tmp_path / "spec.yaml"
    spec.write_text(yaml.safe_dump(SPEC))
    datafast.compile(spec, tmp_path / "out")
    advance(tmp_path / "out", wait=True, env={"OLLAMA_HOST": ollama_emulator.base_url})
    return tmp_path / "out"


def test_placeholders_are_flat_columns_and_pandas_can_use_them(tmp_path, ollama_emulator):
    out = run(tmp_path, ollama_emulator)
    collect_to(out)
    rows = [json.loads(x) for x in (out / "dataset.jsonl").read_text().splitlines()]
    assert rows and all("placeholders" not in r and r["placeholder_tone"] in ("formal", "casual") for r in rows)
    frame = pd.DataFrame(rows)
    assert frame.drop_duplicates(subset=["label", "placeholder_tone"]).shape[0] == 6
    assert set(frame.groupby("placeholder_tone").size().index) == {"formal", "casual"}


def test_label_is_a_class_label_in_the_specs_order(tmp_path, ollama_emulator):
    out = run(tmp_path, ollama_emulator)
    dataset = load_dataset(out)
    feature = dataset.features["label"]
    assert feature.names == ["zeta", "alpha", "mid"]
    rows = [json.loads(x) for x in (out / "dataset.jsonl").read_text().splitlines()]
    assert [feature.int2str(i) for i in dataset["label"]] == [r["label"] for r in rows]


def test_collect_writes_csv(tmp_path, ollama_emulator, cli):
    out = run(tmp_path, ollama_emulator)
    result = cli("collect", out, "-o", tmp_path / "data.csv")
    assert result.exit_code == 0, result.output
    with open(tmp_path / "data.csv", newline="", encoding="utf-8") as fh:
        table = list(csv.DictReader(fh))
    rows = [json.loads(x) for x in (out / "rows" / "generate.jsonl").read_text().splitlines()]
    assert len(table) == len(rows) > 0
    assert table[0]["placeholder_tone"] in ("formal", "casual") and float(table[0]["cost_usd"]) == 0.0
    assert not list(tmp_path.glob(".*tmp*")) and not list(out.glob(".dataset.tmp*"))
