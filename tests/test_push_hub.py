"""`datafast push` through the real huggingface_hub client against the Hub emulator, and back with
`datasets.load_dataset`: the round trip, idempotent pushes, updates in one commit, tokens and namespaces,
failures that leave nothing behind."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import datasets
import pytest
from huggingface_hub import DatasetCard

from datafast.datasets import ClassificationDataset
from datafast.schema.config import ClassificationDatasetConfig
from tests.emulators.hub import use_hub

from .test_push import runs  # noqa: F401 - the module-scoped fixture: every golden spec run on the emulators

REPO = "test-user/reviews"


@pytest.fixture
def hub(hub_emulator, monkeypatch, tmp_path):
    use_hub(monkeypatch, hub_emulator, tmp_path / "hf")
    return hub_emulator


def copy_run(runs, kind: str, tmp_path: Path) -> Path:  # noqa: F811
    out = tmp_path / kind
    shutil.copytree(runs[kind], out)
    return out


def final_rows(out: Path) -> list[dict]:
    return [json.loads(x) for x in (out / "dataset.jsonl").read_text().splitlines() if x.strip()]


def load(repo: str, tmp_path: Path):
    return datasets.load_dataset(repo, cache_dir=str(tmp_path / f"load-{len(list(tmp_path.iterdir()))}"))


def test_push_then_load_dataset_returns_the_same_rows_and_splits(runs, hub, cli, tmp_path):  # noqa: F811
    out = copy_run(runs, "mcq", tmp_path)
    result = cli("push", out, "--repo", REPO, "--train-size", "0.5", "--json")
    assert result.exit_code == 0, result.output
    pushed = json.loads(result.stdout)
    assert pushed["commit"] and not pushed["unchanged"] and hub.is_private(REPO)

    files = hub.repo(REPO)
    assert {"README.md", "spec.yaml", "manifest.json", "stages/distractors/manifest.json"} <= set(files)
    parquet = sorted(f for f in files if f.startswith("data/"))
    assert parquet == ["data/test-00000-of-00001.parquet", "data/train-00000-of-00001.parquet"]
    assert set(parquet) <= hub.lfs_paths(REPO)  # Parquet went through LFS, the card as a regular file
    assert (files["manifest.json"]) == (out / "manifest.json").read_bytes()

    loaded = load(REPO, tmp_path)
    assert {name: len(loaded[name]) for name in loaded} == pushed["splits"]
    got = {r["row_id"]: r for name in loaded for r in loaded[name]}
    want = {r["row_id"]: r for r in final_rows(out)}
    assert got.keys() == want.keys()
    for row_id, row in want.items():
        assert {k: got[row_id][k] for k in row} == row
    # documents never straddle the split
    assert not {r["source_document"] for r in loaded["train"]} & {r["source_document"] for r in loaded["test"]}

    card = DatasetCard(files["README.md"].decode())
    assert card.data.pretty_name == "golden-mcq" and "multiple-choice" in card.data.task_categories


def test_pushing_the_same_rows_again_makes_no_commit(runs, hub, cli, tmp_path):  # noqa: F811
    out = copy_run(runs, "classification", tmp_path)
    assert cli("push", out, "--repo", REPO, "--train-size", "0.8").exit_code == 0
    commits = hub.commits(REPO)
    again = cli("push", out, "--repo", REPO, "--train-size", "0.8")
    assert again.exit_code == 0 and "already up to date" in again.stdout
    assert hub.commits(REPO) == commits


def test_more_rows_update_data_and_card_in_one_commit_and_no_row_changes_split(runs, hub, cli, tmp_path):  # noqa: F811
    out = copy_run(runs, "classification", tmp_path)
    results = sorted((out / "results").glob("*.jsonl"))
    full = {p: p.read_bytes() for p in results}
    for p in results:  # keep a third of the results: the rest is pending
        lines = p.read_bytes().splitlines(keepends=True)
        p.write_bytes(b"".join(lines[: max(1, len(lines) // 3)]))
    assert cli("push", out, "--repo", REPO, "--train-size", "0.7").exit_code == 0
    first = load(REPO, tmp_path)
    before = {r["row_id"]: name for name in first for r in first[name]}
    card_before = hub.repo(REPO)["README.md"]
    commits = len(hub.commits(REPO))

    for p, data in full.items():
        p.write_bytes(data)
    assert cli("push", out, "--repo", REPO, "--train-size", "0.7").exit_code == 0
    assert len(hub.commits(REPO)) == commits + 1
    assert hub.repo(REPO)["README.md"] != card_before
    second = load(REPO, tmp_path)
    after = {r["row_id"]: name for name in second for r in second[name]}
    assert len(after) == len(final_rows(out)) > len(before)
    assert all(after[row_id] == split for row_id, split in before.items())


def test_fewer_shards_replace_the_old_ones_in_the_same_commit(runs, hub, cli, tmp_path):  # noqa: F811
    out = copy_run(runs, "classification", tmp_path)
    assert cli("push", out, "--repo", REPO, "--max-shard-size", "2KB").exit_code == 0
    assert len([f for f in hub.repo(REPO) if f.startswith("data/")]) > 1
    commits = len(hub.commits(REPO))
    assert cli("push", out, "--repo", REPO).exit_code == 0
    assert [f for f in hub.repo(REPO) if f.startswith("data/")] == ["data/train-00000-of-00001.parquet"]
    assert len(hub.commits(REPO)) == commits + 1
    assert len(load(REPO, tmp_path)["train"]) == len(final_rows(out))


def test_visibility_private_by_default_public_on_request(runs, hub, cli, tmp_path):  # noqa: F811
    out = copy_run(runs, "text", tmp_path)
    assert cli("push", out, "--repo", "test-user/open", "--public").exit_code == 0
    assert not hub.is_private("test-user/open")
    assert cli("push", out, "--repo", "test-user/open").exit_code == 0  # no flag: visibility kept
    assert not hub.is_private("test-user/open")
    assert cli("push", out, "--repo", "test-user/open", "--private").exit_code == 0
    assert hub.is_private("test-user/open")


@pytest.mark.parametrize("token, message", [("hf_not_a_token", "refused"), (None, "HF_TOKEN")])
def test_a_bad_or_missing_token_is_exit_2_and_nothing_is_sent(runs, hub_emulator, monkeypatch, cli, tmp_path,  # noqa: F811
                                                             token, message):
    use_hub(monkeypatch, hub_emulator, tmp_path / "hf", token=token)
    out = copy_run(runs, "text", tmp_path)
    result = cli("push", out, "--repo", REPO)
    assert result.exit_code == 2 and message in result.output and "Traceback" not in result.output
    assert hub_emulator.stats()["repos"] == {}
    assert "hf_not_a_token" not in result.output


def test_a_namespace_the_token_cannot_write_is_exit_2(runs, hub, cli, tmp_path):  # noqa: F811
    out = copy_run(runs, "text", tmp_path)
    result = cli("push", out, "--repo", "someone-else/data")
    assert result.exit_code == 2 and "someone-else" in result.output and "test-user" in result.output
    assert hub.stats()["repos"] == {}


def test_a_failed_commit_is_exit_1_commits_nothing_and_leaves_no_temporary_files(runs, hub, cli, tmp_path):  # noqa: F811
    out = copy_run(runs, "text", tmp_path)
    hub.faults.http(r"POST /api/datasets/.*/commit/", status=500, times=None)
    result = cli("push", out, "--repo", REPO)
    assert result.exit_code == 1 and "500" in result.output
    assert set(hub.repo(REPO)) <= {".gitattributes"}
    assert not [p for p in out.iterdir() if p.name.startswith(".datafast-push-")]
    hub.faults.clear()
    assert cli("push", out, "--repo", REPO).exit_code == 0  # the same command again completes it
    assert "README.md" in hub.repo(REPO)


def test_python_push_to_hub_with_the_original_signature(runs, hub, tmp_path):  # noqa: F811
    out = copy_run(runs, "classification", tmp_path)
    work = tmp_path / "sentiment.datafast"
    out.rename(work)
    config = ClassificationDatasetConfig(classes=[{"name": "positive", "description": "good"}],
                                         output_file=str(tmp_path / "sentiment.jsonl"))
    dataset = ClassificationDataset(config)
    url = dataset.push_to_hub("test-user/sentiment", train_size=0.8, seed=1, shuffle=False)
    assert url.endswith("/datasets/test-user/sentiment") and hub.is_private("test-user/sentiment")
    loaded = load("test-user/sentiment", tmp_path)
    assert set(loaded) == {"train", "test"}
    rows = [r["row_id"] for r in final_rows(work)]
    assert [r["row_id"] for r in loaded["train"]] == [r for r in rows if r in set(loaded["train"]["row_id"])]
    no_card = dataset.push_to_hub("test-user/bare", upload_card=False)
    assert "README.md" not in hub.repo("test-user/bare") and no_card.endswith("test-user/bare")
    assert len(load("test-user/bare", tmp_path)["train"]) == len(rows)


def test_an_unreachable_hub_is_exit_1_naming_the_endpoint(runs, hub, cli, tmp_path):  # noqa: F811
    out = copy_run(runs, "text", tmp_path)
    hub.stop()
    result = cli("push", out, "--repo", REPO)
    assert result.exit_code == 1 and f"cannot reach the Hub at {hub.url}" in result.output
    assert "HF_ENDPOINT" in result.output and "Traceback" not in result.output
