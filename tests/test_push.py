"""`datafast push` without a Hub: the folder it uploads (--dry-run), splits, the card, exports on awkward
rows, and bad input. The round trip through the Hub client is tests/test_push_hub.py.

Golden cards: tests/golden/cards/<type>.md, one spec of each type (tests/golden/<type>.yaml) run on the
emulators. Refresh: pytest tests/test_push.py --update-golden
"""

from __future__ import annotations

import json
import shutil
from collections import Counter
from pathlib import Path

import datasets
import pyarrow.parquet as pq
import pytest
import yaml
from huggingface_hub import DatasetCard, DatasetCardData

import datafast
from datafast.export import ExportError, RowSchema, jsonl_to_parquet, write_parquet
from datafast.hub import SplitOptions, assign_splits, push
from datafast.outdir import BadInput
from datafast.pipeline import advance

from .test_stages_e2e import env_for

GOLDEN = Path(__file__).parent / "golden"
TYPES = ["classification", "text", "conversation", "mcq", "preference", "generic"]
VENDORS = ("openai", "anthropic", "gemini", "ollama")


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Each golden spec compiled and run to the end on the emulators (answers are deterministic)."""
    from tests.emulators import EMULATORS

    emus = {v: EMULATORS[v](batch_delay=0.01).start() for v in VENDORS[:3]}
    emus["ollama"] = EMULATORS["ollama"](models=("gemma3:4b", "gemma3:1b")).start()
    try:
        root = tmp_path_factory.mktemp("runs")
        out = {}
        for kind in TYPES:
            shutil.copytree(GOLDEN / "data", root / "data", dirs_exist_ok=True)
            spec = root / f"{kind}.yaml"
            shutil.copyfile(GOLDEN / f"{kind}.yaml", spec)
            datafast.compile(spec, root / kind)
            report = advance(root / kind, wait=True, poll_interval=0.01, env=env_for(emus))
            assert report.finished, kind
            out[kind] = root / kind
        yield out
    finally:
        for emu in emus.values():
            emu.stop()


def dry(out: Path, target: Path, **options) -> object:
    return push(out, "test-user/data", options=SplitOptions(**options), dry_run=target)


def rows_of(folder: Path, split: str) -> list[dict]:
    files = sorted((folder / "data").glob(f"{split}-*.parquet"))
    return [row for f in files for row in pq.read_table(f).to_pylist()]


@pytest.mark.parametrize("kind", TYPES)
def test_card_matches_golden_and_is_valid_hub_metadata(kind, runs, tmp_path, update_golden):
    folder = tmp_path / "upload"
    result = dry(runs[kind], folder, train_size=0.5)
    text = (folder / "README.md").read_text(encoding="utf-8")
    golden = GOLDEN / "cards" / f"{kind}.md"
    if update_golden:
        golden.parent.mkdir(exist_ok=True)
        golden.write_text(text, encoding="utf-8")
    assert text == golden.read_text(encoding="utf-8"), f"card of {kind} differs (refresh with --update-golden)"

    card = DatasetCard(text)
    assert isinstance(card.data, DatasetCardData)
    meta = card.data.to_dict()
    spec = yaml.safe_load((GOLDEN / f"{kind}.yaml").read_text())
    assert meta["language"] == sorted(spec.get("languages", {"en": "English"}))
    assert {"synthetic", "datafast"} <= set(meta["tags"]) and meta["task_categories"]
    assert meta["size_categories"] == ["n<1K"]
    assert meta["configs"] == [{"config_name": "default", "data_files": [
        {"split": split, "path": f"data/{split}-*"} for split in result.splits]}]
    # the data files the card declares resolve with `datasets`, and hold every collected row
    loaded = datasets.load_dataset(str(folder), cache_dir=str(tmp_path / "cache"))
    assert {name: len(loaded[name]) for name in loaded} == result.splits
    final = [json.loads(x) for x in (runs[kind] / "dataset.jsonl").read_text().splitlines()]
    assert sorted(r["row_id"] for name in loaded for r in loaded[name]) == sorted(r["row_id"] for r in final)


def test_card_says_what_was_made_and_how_to_rebuild_it(runs, tmp_path):
    folder = tmp_path / "upload"
    dry(runs["preference"], folder)
    card = (folder / "README.md").read_text()
    manifest = json.loads((runs["preference"] / "manifest.json").read_text())
    for stage in ("questions", "chosen", "rejected", "judge"):
        assert f"### Prompts of stage `{stage}`" in card
    assert manifest["spec_hash"] in card and "## Token usage and cost" in card
    # the spec in the repo compiles to the manifest whose sha256 the card states
    rebuilt = tmp_path / "rebuilt"
    datafast.compile(folder / "spec.yaml", rebuilt)
    import hashlib

    digest = hashlib.sha256((rebuilt / "manifest.jsonl").read_bytes()).hexdigest()
    assert digest in card
    assert (rebuilt / "manifest.jsonl").read_bytes() == (runs["preference"] / "manifest.jsonl").read_bytes()
    later = sorted(p.relative_to(folder).as_posix() for p in (folder / "stages").rglob("manifest.json"))
    assert later == [f"stages/{s}/manifest.json" for s in ("chosen", "judge", "rejected")]


def test_dry_run_is_deterministic_and_replaces_an_earlier_dry_run(runs, tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    dry(runs["classification"], a, train_size=0.75, seed=3)
    dry(runs["classification"], b, train_size=0.75, seed=3)
    files = sorted(p.relative_to(a).as_posix() for p in a.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(b).as_posix() for p in b.rglob("*") if p.is_file())
    assert all((a / f).read_bytes() == (b / f).read_bytes() for f in files)
    dry(runs["classification"], a)  # one split now: the earlier test files are gone
    assert sorted(p.name for p in (a / "data").iterdir()) == ["train-00000-of-00001.parquet"]
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep")
    with pytest.raises(BadInput, match="not empty"):
        dry(runs["classification"], tmp_path / "mine")
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep"


def test_mcq_rows_of_one_document_never_straddle_the_split(runs, tmp_path):
    folder = tmp_path / "upload"
    dry(runs["mcq"], folder, train_size=0.5)
    train, test = rows_of(folder, "train"), rows_of(folder, "test")
    assert train and test
    assert not {r["source_document"] for r in train} & {r["source_document"] for r in test}


def test_splits_are_stable_grouped_and_never_empty():
    groups = [f"doc-{i % 50}" for i in range(1000)]
    options = SplitOptions(train_size=0.8, seed=7)
    first = assign_splits(groups, options)
    assert first == assign_splits(list(groups), options)  # same rows + seed => same split
    by_group: dict[str, set[str]] = {}
    for g, s in zip(groups, first, strict=True):
        by_group.setdefault(g, set()).add(s)
    assert all(len(s) == 1 for s in by_group.values())
    share = Counter(first)["train"] / len(first)
    assert 0.6 < share < 0.95
    # more rows later: every earlier row keeps its split
    more = assign_splits(groups + [f"doc-{i}" for i in range(50, 80)], options)
    assert more[:1000] == first
    assert assign_splits(groups, SplitOptions(train_size=0.8, seed=8)) != first
    # two groups: one on each side, whatever their hashes
    assert sorted(set(assign_splits(["a", "b"], SplitOptions(train_size=0.99)))) == ["test", "train"]
    assert sorted(set(assign_splits(["a", "b"], SplitOptions(train_size=0.01)))) == ["test", "train"]
    assert all(assign_splits([g, g], SplitOptions(train_size=0.5, seed=s)) == ["train"] * 2
               for g in "abcdef" for s in range(5))  # one group cannot be split: all train


def test_shards_split_large_data_and_keep_every_row(runs, tmp_path):
    folder = tmp_path / "upload"
    push(runs["classification"], "test-user/data", options=SplitOptions(train_size=0.8), dry_run=folder,
         max_shard_bytes=2000)
    train = sorted((folder / "data").glob("train-*.parquet"))
    assert len(train) > 1 and train[-1].name.endswith(f"-of-{len(train):05d}.parquet")
    final = [json.loads(x) for x in (runs["classification"] / "dataset.jsonl").read_text().splitlines()]
    assert sorted(r["row_id"] for r in rows_of(folder, "train") + rows_of(folder, "test")) == \
        sorted(r["row_id"] for r in final)
    unshuffled = tmp_path / "plain"
    dry(runs["classification"], unshuffled, shuffle=False)
    assert [r["row_id"] for r in rows_of(unshuffled, "train")] == [r["row_id"] for r in final]


def test_awkward_rows_export_and_load(tmp_path):
    rows = [
        {"row_id": "a", "score": 1, "answer": "x", "meta": {}, "nested": {"k": [1, 2]}, "text": "été 東京 🚀"},
        {"row_id": "b", "score": 2.5, "answer": 3, "meta": {}, "nested": {"k": [], "z": None}, "text": "x" * 3_000_000},
        {"row_id": "c", "score": None, "answer": {"a": 1}, "tags": []},
    ]
    source = tmp_path / "rows.jsonl"
    source.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    target = tmp_path / "rows.parquet"
    assert jsonl_to_parquet(source, target) == 3
    schema = RowSchema.infer(rows)
    assert schema.json_columns == ["answer", "meta"]
    got = pq.read_table(target).to_pylist()
    assert [json.loads(r["answer"]) for r in got] == ["x", 3, {"a": 1}]
    assert got[0]["text"] == "été 東京 🚀" and len(got[1]["text"]) == 3_000_000
    assert got[1]["score"] == 2.5 and got[0]["score"] == 1.0 and got[2]["score"] is None
    assert got[0]["nested"] == {"k": [1, 2], "z": None} and got[2]["tags"] == []
    # an integer beyond int64 (possible from Python rows) is kept exactly, as JSON text
    big = [{"row_id": "d", "n": 2**80}, {"row_id": "e", "n": 1}]
    write_parquet(big, tmp_path / "big.parquet", RowSchema.infer(big))
    assert [json.loads(r["n"]) for r in pq.read_table(tmp_path / "big.parquet").to_pylist()] == [2**80, 1]
    (tmp_path / "big.parquet").unlink()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rows.jsonl", "rows.parquet"]
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    assert jsonl_to_parquet(empty, tmp_path / "empty.parquet") == 0
    assert pq.read_table(tmp_path / "empty.parquet").num_rows == 0


def test_a_failed_export_names_the_row_and_column_and_leaves_no_file(tmp_path):
    rows = [{"row_id": "r1", "n": 1}, {"row_id": "r2", "n": "two"}]
    schema = RowSchema()
    schema.add(rows[0])  # a schema that does not cover row 2: Arrow refuses its value
    with pytest.raises(ExportError, match=r"row 2 \(row_id 'r2'\): column 'n'"):
        write_parquet(rows, tmp_path / "out.parquet", schema)
    assert list(tmp_path.iterdir()) == []


def test_collect_to_parquet_survives_mixed_types(tmp_path, runs):
    out = tmp_path / "copy"
    shutil.copytree(runs["generic"], out)
    rows = (out / "rows" / "generate.jsonl").read_text().splitlines()
    assert rows
    from datafast.dataset import collect_to

    report = collect_to(out, tmp_path / "data.parquet")
    assert pq.read_table(tmp_path / "data.parquet").num_rows == report.rows > 0


@pytest.mark.parametrize("args, message", [
    (["--repo", "no-namespace"], "expected NAMESPACE/NAME"),
    (["--repo", "a/b/c"], "expected NAMESPACE/NAME"),
    (["--repo", "user/-bad"], "expected NAMESPACE/NAME"),
    (["--repo", "user/ok", "--train-size", "1.5"], "between 0 and 1"),
    (["--repo", "user/ok", "--train-size", "0"], "between 0 and 1"),
    (["--repo", "user/ok", "--max-shard-size", "lots"], "expected a size"),
])
def test_bad_arguments_exit_2_before_anything(args, message, runs, cli, tmp_path):
    target = tmp_path / "dry"
    result = cli("push", str(runs["classification"]), *args, "--dry-run", str(target))
    assert result.exit_code == 2 and message in result.output and "Traceback" not in result.output
    assert not target.exists()


def test_missing_token_exits_2_naming_the_fix(runs, cli, monkeypatch, tmp_path):
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))  # no stored login either
    monkeypatch.setattr("huggingface_hub.constants.HF_TOKEN_PATH", str(tmp_path / "hf-home" / "token"))
    result = cli("push", str(runs["classification"]), "--repo", "test-user/data")
    assert result.exit_code == 2 and "HF_TOKEN" in result.output and "hf auth login" in result.output


def test_a_dir_with_no_rows_is_refused(tmp_path, cli):
    spec = tmp_path / "spec.yaml"
    shutil.copyfile(GOLDEN / "classification.yaml", spec)
    datafast.compile(spec, tmp_path / "out")
    result = cli("push", str(tmp_path / "out"), "--repo", "test-user/data", "--dry-run", str(tmp_path / "dry"))
    assert result.exit_code == 2 and "no rows collected" in result.output and "submit" in result.output
    assert not (tmp_path / "dry").exists()
    not_compiled = cli("push", str(tmp_path), "--repo", "test-user/data", "--dry-run", str(tmp_path / "dry"))
    assert not_compiled.exit_code == 2 and "compile" in not_compiled.output


def test_split_by_an_unknown_column_is_refused(runs, cli, tmp_path):
    result = cli("push", str(runs["classification"]), "--repo", "test-user/data", "--split-by", "nope",
                 "--train-size", "0.8", "--dry-run", str(tmp_path / "dry"))
    assert result.exit_code == 2 and "--split-by nope" in result.output and "columns:" in result.output


def test_license_key_reaches_the_card(tmp_path, runs):
    spec = yaml.safe_load((GOLDEN / "classification.yaml").read_text())
    spec["license"] = "cc-by-4.0"
    out = tmp_path / "lic"
    shutil.copytree(runs["classification"], out)
    manifest = json.loads((out / "manifest.json").read_text())
    manifest["spec"]["license"] = "cc-by-4.0"
    (out / "manifest.json").write_text(json.dumps(manifest))
    dry(out, tmp_path / "dry")
    assert DatasetCard((tmp_path / "dry" / "README.md").read_text()).data.license == "cc-by-4.0"
    spec["license"] = "Not A License!"
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(spec))
    from datafast.compiler.errors import SpecError

    with pytest.raises(SpecError, match="license"):
        datafast.compile(bad, tmp_path / "bad")


def test_the_card_names_the_price_file_its_costs_come_from(runs, tmp_path):
    out = tmp_path / "priced"
    shutil.copytree(runs["classification"], out)
    table = tmp_path / "our-prices.yaml"
    table.write_text(yaml.safe_dump({"checked": "2026-11-01", "models": {}}))
    push(out, "test-user/data", options=SplitOptions(), dry_run=tmp_path / "dry", prices=table)
    card = (tmp_path / "dry" / "README.md").read_text()
    assert "priced with the price table `our-prices.yaml` merged over datafast's, checked 2026-11-01" in card
    dry(runs["classification"], tmp_path / "plain")
    assert "priced with datafast's price table checked" in (tmp_path / "plain" / "README.md").read_text()
