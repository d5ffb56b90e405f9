"""specs/quickstart-preference.yaml end to end on the REAL embedded model (SmolLM2-135M through llama.cpp):
every stage of a preference run with judge, in process, no key, no server (about 30 s on 2 cores).

Like tests/test_runtime_local.py these fail (they do not skip) when `datafast[local]` is not installed.
What a 135M model writes varies with the machine's floating point, so nothing here depends on its wording or
on every chain completing: the counts must reconcile whatever broke, and at least one pair must come out.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from datafast.pipeline import run

from .conftest import REPO

SPEC = REPO / "specs" / "quickstart-preference.yaml"
MODEL = "local:smollm2-135m"
FIELDS = {"row_id", "input_document", "question", "chosen_response", "rejected_response", "chosen_model_id",
          "rejected_model_id", "language", "models", "request_ids", "chosen_response_score",
          "rejected_response_score", "chosen_response_assessment", "rejected_response_assessment",
          "judge_model_id", "swapped"}


def jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def snapshot(directory: Path) -> dict[str, bytes]:
    return {str(p.relative_to(directory)): p.read_bytes() for p in sorted(directory.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def first_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Any]:
    out = tmp_path_factory.mktemp("quickstart-preference") / "out"
    _, report = run(SPEC, out)
    return out, report


def test_the_spec_runs_on_the_embedded_model_only() -> None:
    spec = yaml.safe_load(SPEC.read_text(encoding="utf-8"))
    assert spec["type"] == "preference" and spec["llm_as_judge"] is True
    assert spec["models"] == {role: [MODEL] for role in ("questions", "chosen", "rejected", "judge")}


def test_every_stage_is_compiled_and_the_summary_reconciles(first_run: tuple[Path, Any]) -> None:
    out, report = first_run
    for stage in ("chosen", "rejected", "judge"):
        assert (out / "stages" / stage / "manifest.jsonl").is_file(), stage
    assert list(report.stages) == ["questions", "chosen", "rejected", "judge"]
    for name, stage in report.stages.items():
        assert stage["compiled"] and stage["complete"] and stage["pending"] == 0, (name, stage)
        assert stage["requests"] == stage["with_rows"] + stage["rejected"] + stage["pending"], (name, stage)
        assert len(jsonl(out / "rows" / f"{name}.jsonl")) == stage["rows"], name
    questions = report.stages["questions"]
    assert questions["requests"] == 2  # 2 documents x 1 language x 1 prompt
    # one chosen and one rejected answer per question; the judge scores both answers of each complete pair
    assert report.stages["chosen"]["requests"] == report.stages["rejected"]["requests"] == questions["rows"]
    assert report.stages["judge"]["requests"] == 2 * len(
        {r["parent"] for r in jsonl(out / "rows" / "chosen.jsonl")}
        & {r["parent"] for r in jsonl(out / "rows" / "rejected.jsonl")})
    items = report.items
    assert items["items"] == questions["rows"] and items["pending"] == 0
    assert items["items"] == items["rows"] + items["rejected"]
    assert sum(items["rejected_by_stage"].values()) == items["rejected"]
    assert report.rows == items["rows"] >= 1
    item_rejects = [r for r in jsonl(out / "rejects.jsonl") if r.get("level") == "item"]
    assert len(item_rejects) == items["rejected"]


def test_final_rows_are_judged_pairs_with_the_chosen_scored_higher(first_run: tuple[Path, Any]) -> None:
    out, report = first_run
    spec = yaml.safe_load(SPEC.read_text(encoding="utf-8"))
    rows = jsonl(out / "dataset.jsonl")
    assert len(rows) == report.rows and len({r["row_id"] for r in rows}) == len(rows)
    answers = {r["request_id"]: r["response"] for s in ("chosen", "rejected") for r in jsonl(out / "rows" / f"{s}.jsonl")}
    scores = {r["request_id"]: r["score"] for r in jsonl(out / "rows" / "judge.jsonl")}
    for row in rows:
        assert set(row) >= FIELDS, FIELDS - set(row)
        assert row["input_document"] in spec["input_documents"] and row["language"] == "en"
        assert row["question"].strip() and row["chosen_response"].strip() and row["rejected_response"].strip()
        assert row["chosen_model_id"] == row["rejected_model_id"] == row["judge_model_id"] == MODEL
        assert row["models"] == {role: MODEL for role in ("questions", "chosen", "rejected", "judge")}
        for key in ("chosen_response_score", "rejected_response_score"):
            assert type(row[key]) is int and 1 <= row[key] <= 10, (key, row[key])
        assert row["chosen_response_score"] >= row["rejected_response_score"]
        # the swap, checked against what each stage answered and what the judge gave each answer
        ids = row["request_ids"]
        by_stage = (answers[ids["chosen"]], answers[ids["rejected"]])
        stage_scores = (scores[ids["judge_chosen"]], scores[ids["judge_rejected"]])
        assert row["swapped"] is (stage_scores[1] > stage_scores[0])
        order = slice(None, None, -1 if row["swapped"] else 1)
        assert (row["chosen_response"], row["rejected_response"]) == by_stage[order]
        assert (row["chosen_response_score"], row["rejected_response_score"]) == stage_scores[order]


def test_a_second_run_sends_nothing(first_run: tuple[Path, Any]) -> None:
    out, report = first_run
    before = {part: snapshot(out / part) for part in ("results", "stages")}
    dataset = (out / "dataset.jsonl").read_bytes()
    _, again = run(SPEC, out)
    assert {part: snapshot(out / part) for part in ("results", "stages")} == before
    assert (out / "dataset.jsonl").read_bytes() == dataset
    assert again.stages == report.stages and again.items == report.items
