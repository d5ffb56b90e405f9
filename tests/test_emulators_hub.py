"""Fidelity of the Hugging Face Hub emulator, driven only by the real clients (huggingface_hub 2.4, datasets 5.2).

Every test points the clients at the emulator with ``use_hub`` and refuses any connection that is not loopback.
"""

from __future__ import annotations

import hashlib
import json
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from huggingface_hub import (
    CommitInfo,
    CommitOperationAdd,
    CommitOperationDelete,
    DatasetCard,
    DatasetInfo,
    GitCommitInfo,
    HfApi,
    HfFileSystem,
    RepoFile,
    RepoFolder,
    get_hf_file_metadata,
    hf_hub_download,
    hf_hub_url,
)
from huggingface_hub.errors import (
    EntryNotFoundError,
    HfHubHTTPError,
    LocalTokenNotFoundError,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)
from huggingface_hub.utils import get_session, hf_raise_for_status

from tests.emulators.hub import URL_TTL, HubEmulator, git_blob_oid, use_hub

pytest_plugins = ["tests.conftest_emulators"]

ROOT = Path(__file__).resolve().parents[1]

REPO = "test-user/synthetic"
ALICE, BOB = "hf_alice_token", "hf_bob_token"
TWO_USERS = {"hf_test_token": "test-user", ALICE: "alice", BOB: "bob", "hf_reader": ("alice", "read")}
CARD = """---
license: mit
pretty_name: Synthetic
configs:
- config_name: default
  data_files:
  - split: train
    path: data/train-*
  - split: test
    path: data/test-*
---
# Synthetic

Made by datafast.
"""


@pytest.fixture(autouse=True)
def loopback_only(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Refuse (and record) every name resolution that is not loopback: no test may leave the machine."""
    attempts: list[str] = []
    real = socket.getaddrinfo

    def guarded(host: Any, *args: Any, **kwargs: Any) -> Any:
        name = host.decode() if isinstance(host, bytes) else str(host)
        if name not in ("127.0.0.1", "localhost", "::1"):
            attempts.append(name)
            raise socket.gaierror(f"network access outside 127.0.0.1 refused in tests: {name}")
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", guarded)
    yield attempts
    assert attempts == [], f"tests tried to reach {attempts}"


@pytest.fixture
def hub(hub_emulator: HubEmulator, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> HubEmulator:
    use_hub(monkeypatch, hub_emulator, tmp_path / "hf-cache")
    return hub_emulator


def write_parquet(path: Path, rows: dict[str, list[Any]]) -> bytes:
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table(rows), path)
    return path.read_bytes()


def dataset_folder(root: Path, *, card: str | None = CARD) -> dict[str, bytes]:
    """README.md (YAML header), two parquet splits and a small JSON file; returns path -> bytes."""
    files: dict[str, bytes] = {}
    root.mkdir(parents=True, exist_ok=True)
    if card is not None:
        (root / "README.md").write_text(card)
        files["README.md"] = card.encode()
    files["data/train-00000-of-00001.parquet"] = write_parquet(
        root / "data/train-00000-of-00001.parquet", {"prompt": ["a", "b", "c"], "score": [1, 2, 3]})
    files["data/test-00000-of-00001.parquet"] = write_parquet(
        root / "data/test-00000-of-00001.parquet", {"prompt": ["z"], "score": [9]})
    (root / "stats.json").write_text(json.dumps({"rows": 4}))
    files["stats.json"] = (root / "stats.json").read_bytes()
    return files


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# -- auth ---------------------------------------------------------------------------------------------------------
def test_whoami_with_good_bad_and_missing_token(hub: HubEmulator) -> None:
    me = HfApi().whoami()
    assert (me["name"], me["type"], me["auth"]["accessToken"]["role"]) == ("test-user", "user", "write")

    with pytest.raises(HfHubHTTPError) as bad:
        HfApi(token="hf_not_a_token").whoami()
    assert bad.value.response.status_code == 401
    assert bad.value.response.headers["X-Error-Message"] == "Invalid credentials in Authorization header"

    anonymous = get_session().get(f"{hub.url}/api/whoami-v2")
    with pytest.raises(HfHubHTTPError) as missing:
        hf_raise_for_status(anonymous)
    assert missing.value.response.status_code == 401


def test_no_token_at_all_is_a_client_side_error(hub_emulator: HubEmulator, monkeypatch: pytest.MonkeyPatch,
                                                tmp_path: Path) -> None:
    use_hub(monkeypatch, hub_emulator, tmp_path, token=None)
    with pytest.raises(LocalTokenNotFoundError):
        HfApi().whoami()
    assert hub_emulator.stats()["calls"] == {}  # the user's own token file was not found either


@pytest.mark.emulator(tokens=TWO_USERS)
def test_create_repo_public_by_default_private_on_request_and_exist_ok(hub: HubEmulator) -> None:
    api = HfApi()
    url = api.create_repo(REPO, repo_type="dataset")
    assert (url.repo_id, url.repo_type, url.endpoint) == (REPO, "dataset", hub.url)
    assert hub.is_private(REPO) is False and api.dataset_info(REPO).private is False
    assert [c["title"] for c in hub.commits(REPO)] == ["initial commit"]
    assert set(hub.repo(REPO)) == {".gitattributes"}

    with pytest.raises(HfHubHTTPError) as exists:
        api.create_repo(REPO, repo_type="dataset")
    assert exists.value.response.status_code == 409
    assert api.create_repo(REPO.upper(), repo_type="dataset", exist_ok=True).repo_id == REPO  # case-insensitive
    assert len(hub.commits(REPO)) == 1

    private = api.create_repo("test-user/secret", repo_type="dataset", private=True)
    assert hub.is_private(private.repo_id) and api.dataset_info(private.repo_id).private is True

    with pytest.raises(HfHubHTTPError) as foreign:
        api.create_repo("alice/mine", repo_type="dataset")
    assert foreign.value.response.status_code == 403
    HfApi(token=ALICE).create_repo("alice/public", repo_type="dataset")
    # exist_ok on someone else's existing repo: the client turns the 403 into success after a repo_info
    assert api.create_repo("alice/public", repo_type="dataset", exist_ok=True).repo_id == "alice/public"


@pytest.mark.emulator(tokens=TWO_USERS)
def test_private_repo_is_invisible_to_others(hub: HubEmulator, tmp_path: Path) -> None:
    alice, bob = HfApi(token=ALICE), HfApi(token=BOB)
    alice.create_repo("alice/private", repo_type="dataset", private=True)
    alice.upload_file(path_or_fileobj=b"secret", path_in_repo="notes.txt", repo_id="alice/private",
                      repo_type="dataset")
    assert alice.repo_exists("alice/private", repo_type="dataset")
    assert not bob.repo_exists("alice/private", repo_type="dataset")

    with pytest.raises(RepositoryNotFoundError) as other:
        bob.dataset_info("alice/private")
    assert other.value.response.status_code == 404
    with pytest.raises(RepositoryNotFoundError) as anonymous:
        HfApi().dataset_info("alice/private", token=False)
    assert anonymous.value.response.status_code == 401
    with pytest.raises(RepositoryNotFoundError):
        hf_hub_download("alice/private", "notes.txt", repo_type="dataset", token=BOB, cache_dir=tmp_path)
    with pytest.raises(RepositoryNotFoundError):
        bob.upload_file(path_or_fileobj=b"x", path_in_repo="x.txt", repo_id="alice/private", repo_type="dataset")
    assert set(hub.repo("alice/private")) == {".gitattributes", "notes.txt"}


@pytest.mark.emulator(tokens=TWO_USERS)
def test_writes_need_a_write_token_of_the_namespace(hub: HubEmulator) -> None:
    HfApi(token=ALICE).create_repo("alice/open", repo_type="dataset")
    for token in (BOB, "hf_reader"):  # another user; alice's own read-only token
        with pytest.raises(HfHubHTTPError) as denied:
            HfApi(token=token).upload_file(path_or_fileobj=b"x", path_in_repo="x.txt", repo_id="alice/open",
                                           repo_type="dataset")
        assert denied.value.response.status_code == 403
        assert "You have read access but not the required permissions" in str(denied.value)
    assert [c["title"] for c in hub.commits("alice/open")] == ["initial commit"]


# -- upload ---------------------------------------------------------------------------------------------------------
def test_upload_folder_round_trip_types_lfs_and_card(hub: HubEmulator, tmp_path: Path) -> None:
    api = HfApi()
    api.create_repo(REPO, repo_type="dataset")
    local = dataset_folder(tmp_path / "out")

    info = api.upload_folder(folder_path=tmp_path / "out", repo_id=REPO, repo_type="dataset",
                             commit_message="Push synthetic dataset")
    assert isinstance(info, CommitInfo)
    head = hub.commits(REPO)[0]
    assert (info.oid, info.commit_message, head["title"]) == (head["id"], "Push synthetic dataset",
                                                              "Push synthetic dataset")
    assert info.commit_url == f"{hub.url}/datasets/{REPO}/commit/{info.oid}"
    assert info.repo_url.repo_id == REPO

    stored = hub.repo(REPO)
    assert {p: stored[p] for p in local} == local  # bytes stored == bytes sent
    assert hub.lfs_paths(REPO) == {"data/train-00000-of-00001.parquet", "data/test-00000-of-00001.parquet"}
    uploads = hub.stats()["lfs_uploads"]
    assert sorted(u["oid"] for u in uploads) == sorted(sha256(local[p]) for p in hub.lfs_paths(REPO))
    assert {u["transfer"] for u in uploads} == {"basic"}

    tree = list(api.list_repo_tree(REPO, repo_type="dataset", recursive=True))
    assert all(isinstance(e, (RepoFile, RepoFolder)) for e in tree)
    by_path = {e.path: e for e in tree}
    assert isinstance(by_path["data"], RepoFolder)
    train = by_path["data/train-00000-of-00001.parquet"]
    assert isinstance(train, RepoFile) and train.lfs is not None
    assert (train.lfs.sha256, train.size) == (sha256(local[train.path]), len(local[train.path]))
    readme = by_path["README.md"]
    assert isinstance(readme, RepoFile) and readme.lfs is None and readme.blob_id == git_blob_oid(local["README.md"])

    dinfo = api.dataset_info(REPO, files_metadata=True)
    assert isinstance(dinfo, DatasetInfo) and dinfo.sha == info.oid and dinfo.id == REPO
    assert dinfo.card_data is not None and dinfo.card_data.license == "mit"
    assert dinfo.card_data.pretty_name == "Synthetic"
    assert dinfo.card_data.to_dict()["configs"][0]["data_files"][1] == {"split": "test", "path": "data/test-*"}
    assert {s.rfilename for s in dinfo.siblings or []} == {".gitattributes", *local}
    assert "license:mit" in (dinfo.tags or [])

    commits = api.list_repo_commits(REPO, repo_type="dataset")
    assert all(isinstance(c, GitCommitInfo) for c in commits)
    assert [(c.commit_id, c.title, c.authors) for c in commits] == [
        (info.oid, "Push synthetic dataset", ["test-user"]), (hub.commits(REPO)[1]["id"], "initial commit", ["test-user"])]
    refs = api.list_repo_refs(REPO, repo_type="dataset")
    assert [(b.name, b.ref, b.target_commit) for b in refs.branches] == [("main", "refs/heads/main", info.oid)]

    paths = api.get_paths_info(REPO, ["stats.json", "data", "missing.txt"], repo_type="dataset", expand=True)
    assert [type(p).__name__ for p in paths] == ["RepoFile", "RepoFolder"]
    assert paths[0].last_commit is not None and paths[0].last_commit.oid == info.oid


def test_upload_mode_comes_from_the_preupload_answer(hub: HubEmulator) -> None:
    """A text file is regular, binary content is LFS whatever its name, and .gitattributes decides by pattern."""
    api = HfApi()
    api.create_repo(REPO, repo_type="dataset")
    binary = bytes(range(256)) * 4
    api.create_commit(REPO, repo_type="dataset", commit_message="mixed", operations=[
        CommitOperationAdd("notes.txt", b"plain text\n"), CommitOperationAdd("blob.dat", binary),
        CommitOperationAdd("rows.jsonl", b'{"a": 1}\n')])
    assert hub.lfs_paths(REPO) == {"blob.dat"}
    attributes = hub.repo(REPO)[".gitattributes"].decode()
    assert "blob.dat filter=lfs diff=lfs merge=lfs -text" in attributes  # the Hub tracks an untracked LFS file

    api.upload_file(path_or_fileobj=(attributes + "*.jsonl filter=lfs diff=lfs merge=lfs -text\n").encode(),
                    path_in_repo=".gitattributes", repo_id=REPO, repo_type="dataset")
    api.upload_file(path_or_fileobj=b'{"a": 2}\n', path_in_repo="more.jsonl", repo_id=REPO, repo_type="dataset")
    assert hub.lfs_paths(REPO) == {"blob.dat", "more.jsonl"}
    assert hub.repo(REPO)["more.jsonl"] == b'{"a": 2}\n'


def test_same_folder_twice_makes_no_commit_and_a_change_makes_one(hub: HubEmulator, tmp_path: Path) -> None:
    api = HfApi()
    api.create_repo(REPO, repo_type="dataset")
    folder = tmp_path / "out"
    dataset_folder(folder)
    first = api.upload_folder(folder_path=folder, repo_id=REPO, repo_type="dataset")
    commit_calls = hub.stats()["calls"]["POST /api/{type}s/{ns}/{name}/commit/{rev}"]

    again = api.upload_folder(folder_path=folder, repo_id=REPO, repo_type="dataset")
    assert again.oid == first.oid
    assert len(hub.commits(REPO)) == 2
    stats = hub.stats()
    assert stats["calls"]["POST /api/{type}s/{ns}/{name}/commit/{rev}"] == commit_calls  # skipped by the client
    assert len(stats["lfs_uploads"]) == 2  # stored objects are not sent again

    (folder / "stats.json").write_text(json.dumps({"rows": 5}))
    changed = api.upload_folder(folder_path=folder, repo_id=REPO, repo_type="dataset")
    assert changed.oid != first.oid
    assert [c["id"] for c in hub.commits(REPO)][:2] == [changed.oid, first.oid]
    assert hub.stats()["commits"][-1]["changed"] == ["stats.json"]
    assert hub.repo(REPO)["stats.json"] == b'{"rows": 5}'
    assert len(hub.stats()["lfs_uploads"]) == 2


def test_commit_semantics_deletes_conflicts_and_bad_paths(hub: HubEmulator) -> None:
    api = HfApi()
    api.create_repo(REPO, repo_type="dataset")
    first = api.create_commit(REPO, repo_type="dataset", commit_message="add", operations=[
        CommitOperationAdd("a/one.txt", b"1"), CommitOperationAdd("a/two.txt", b"2"),
        CommitOperationAdd("keep.txt", b"k")])
    api.create_commit(REPO, repo_type="dataset", commit_message="drop folder",
                      operations=[CommitOperationDelete("a/")])
    assert set(hub.repo(REPO)) == {".gitattributes", "keep.txt"}

    with pytest.raises(EntryNotFoundError):
        api.delete_file("nothing.txt", REPO, repo_type="dataset")
    with pytest.raises(HfHubHTTPError) as conflict:
        api.create_commit(REPO, repo_type="dataset", commit_message="late", parent_commit=first.oid,
                          operations=[CommitOperationAdd("late.txt", b"l")])
    assert conflict.value.response.status_code == 412
    with pytest.raises(HfHubHTTPError) as bad_path:
        api.upload_file(path_or_fileobj=b"x", path_in_repo="..\\escape", repo_id=REPO, repo_type="dataset")
    assert bad_path.value.response.status_code == 422
    assert [c["title"] for c in hub.commits(REPO)] == ["drop folder", "add", "initial commit"]


def test_injected_500_on_commit_commits_nothing_and_a_retry_reuses_lfs(hub: HubEmulator, tmp_path: Path) -> None:
    api = HfApi()
    api.create_repo(REPO, repo_type="dataset")
    local = dataset_folder(tmp_path / "out")
    hub.faults.http(r"POST /api/datasets/.*/commit/", status=500)

    with pytest.raises(HfHubHTTPError) as failed:
        api.upload_folder(folder_path=tmp_path / "out", repo_id=REPO, repo_type="dataset")
    assert failed.value.response.status_code == 500
    assert [c["title"] for c in hub.commits(REPO)] == ["initial commit"]
    assert set(hub.repo(REPO)) == {".gitattributes"}

    api.upload_folder(folder_path=tmp_path / "out", repo_id=REPO, repo_type="dataset")
    assert {p: hub.repo(REPO)[p] for p in local} == local
    assert len(hub.stats()["lfs_uploads"]) == 2  # uploaded before the failed commit, not sent again
    assert hub.stats()["faults"][0]["fired"] == 1


@pytest.mark.emulator(multipart_threshold=1000, multipart_chunk_size=400)
def test_large_objects_use_the_multipart_transfer(hub: HubEmulator) -> None:
    api = HfApi()
    api.create_repo(REPO, repo_type="dataset")
    data = bytes(i % 251 for i in range(2500))
    api.upload_file(path_or_fileobj=data, path_in_repo="big.bin", repo_id=REPO, repo_type="dataset")
    assert hub.repo(REPO)["big.bin"] == data and hub.lfs_paths(REPO) == {"big.bin"}
    assert hub.stats()["lfs_uploads"] == [{"repo": f"dataset/{REPO}", "oid": sha256(data), "size": 2500,
                                           "transfer": "multipart"}]
    assert hub.stats()["calls"]["PUT storage:/repos/{uid}/{oid}"] == 7  # ceil(2500 / 400) parts


# -- download -------------------------------------------------------------------------------------------------------
def test_hf_hub_download_and_file_metadata(hub: HubEmulator, tmp_path: Path) -> None:
    api = HfApi()
    api.create_repo(REPO, repo_type="dataset")
    local = dataset_folder(tmp_path / "out")
    info = api.upload_folder(folder_path=tmp_path / "out", repo_id=REPO, repo_type="dataset")

    for path, data in local.items():
        downloaded = hf_hub_download(REPO, path, repo_type="dataset")
        assert Path(downloaded).read_bytes() == data
        assert f"/snapshots/{info.oid}/" in downloaded
    by_commit = hf_hub_download(REPO, "stats.json", repo_type="dataset", revision=info.oid[:10],
                                cache_dir=tmp_path / "other-cache")
    assert Path(by_commit).read_bytes() == local["stats.json"]

    parquet = "data/train-00000-of-00001.parquet"
    lfs_meta = get_hf_file_metadata(hf_hub_url(REPO, parquet, repo_type="dataset"))
    assert (lfs_meta.etag, lfs_meta.size, lfs_meta.commit_hash) == (sha256(local[parquet]), len(local[parquet]),
                                                                    info.oid)
    assert lfs_meta.location.startswith(hub.storage_url) and lfs_meta.xet_file_data is None
    regular = get_hf_file_metadata(hf_hub_url(REPO, "stats.json", repo_type="dataset"))
    assert (regular.etag, regular.size) == (git_blob_oid(local["stats.json"]), len(local["stats.json"]))

    with pytest.raises(EntryNotFoundError):
        hf_hub_download(REPO, "nope.txt", repo_type="dataset")
    with pytest.raises(RevisionNotFoundError):
        hf_hub_download(REPO, "stats.json", repo_type="dataset", revision="v9")
    assert api.file_exists(REPO, parquet, repo_type="dataset")
    assert not api.file_exists(REPO, "nope.txt", repo_type="dataset")


def test_range_requests_and_signed_storage_urls(hub: HubEmulator, tmp_path: Path) -> None:
    api = HfApi()
    api.create_repo(REPO, repo_type="dataset")
    local = dataset_folder(tmp_path / "out")
    api.upload_folder(folder_path=tmp_path / "out", repo_id=REPO, repo_type="dataset")
    session, parquet = get_session(), "data/train-00000-of-00001.parquet"

    ranged = session.get(hf_hub_url(REPO, parquet, repo_type="dataset"), headers={"Range": "bytes=4-19"})
    assert ranged.status_code == 206 and ranged.content == local[parquet][4:20]
    assert ranged.headers["Content-Range"] == f"bytes 4-19/{len(local[parquet])}"
    tail = session.get(hf_hub_url(REPO, "stats.json", repo_type="dataset"), headers={"Range": "bytes=-4"})
    assert tail.status_code == 206 and tail.content == local["stats.json"][-4:]
    past = session.get(hf_hub_url(REPO, "stats.json", repo_type="dataset"), headers={"Range": "bytes=999-"})
    assert past.status_code == 416

    location = get_hf_file_metadata(hf_hub_url(REPO, parquet, repo_type="dataset")).location
    assert session.get(location).content == local[parquet]
    assert session.get(location.split("?")[0]).status_code == 403  # unsigned
    hub.advance(URL_TTL + 1)
    assert session.get(location).status_code == 403  # expired


def test_hffs_ls_glob_info_and_ranged_reads(hub: HubEmulator, tmp_path: Path) -> None:
    api = HfApi()
    api.create_repo(REPO, repo_type="dataset")
    local = dataset_folder(tmp_path / "out")
    api.upload_folder(folder_path=tmp_path / "out", repo_id=REPO, repo_type="dataset")
    fs, root, parquet = HfFileSystem(), f"datasets/{REPO}", "data/train-00000-of-00001.parquet"

    listing = {e["name"]: e for e in fs.ls(root)}
    assert set(listing) == {f"{root}/{p}" for p in (".gitattributes", "README.md", "stats.json", "data")}
    assert listing[f"{root}/data"]["type"] == "directory"
    assert fs.glob(f"{root}/**/*.parquet") == [f"{root}/data/test-00000-of-00001.parquet", f"{root}/{parquet}"]
    assert fs.info(f"{root}/{parquet}")["size"] == len(local[parquet])
    assert fs.cat_file(f"{root}/{parquet}", start=8, end=40) == local[parquet][8:40]
    with fs.open(f"{root}/{parquet}", "rb", block_size=16) as f:
        f.seek(len(local[parquet]) - 8)
        assert f.read() == local[parquet][-8:]  # the parquet footer: length + "PAR1"
    assert fs.read_text(f"{root}/stats.json") == local["stats.json"].decode()
    assert pq.read_table(fs.open(f"{root}/{parquet}", "rb")).to_pydict() == {"prompt": ["a", "b", "c"],
                                                                             "score": [1, 2, 3]}


def test_load_dataset_follows_the_card_configs(hub: HubEmulator, tmp_path: Path) -> None:
    datasets = pytest.importorskip("datasets")
    card = CARD.replace("data/train-*", "data/alpha.parquet").replace("split: test", "split: validation") \
        .replace("data/test-*", "data/beta.parquet")
    folder = tmp_path / "out"
    folder.mkdir()
    (folder / "README.md").write_text(card)
    write_parquet(folder / "data/alpha.parquet", {"prompt": ["a", "b"], "score": [1, 2]})
    write_parquet(folder / "data/beta.parquet", {"prompt": ["c"], "score": [3]})
    api = HfApi()
    api.create_repo(REPO, repo_type="dataset", private=True)
    api.upload_folder(folder_path=folder, repo_id=REPO, repo_type="dataset")

    loaded = datasets.load_dataset(REPO)
    assert sorted(loaded) == ["train", "validation"]
    assert loaded["train"].to_dict() == {"prompt": ["a", "b"], "score": [1, 2]}
    assert loaded["validation"].to_dict() == {"prompt": ["c"], "score": [3]}
    assert DatasetCard.load(REPO, repo_type="dataset").data.pretty_name == "Synthetic"


def test_load_dataset_default_layout_without_configs(hub: HubEmulator, tmp_path: Path) -> None:
    datasets = pytest.importorskip("datasets")
    dataset_folder(tmp_path / "out", card=None)
    api = HfApi()
    api.create_repo(REPO, repo_type="dataset")
    api.upload_folder(folder_path=tmp_path / "out", repo_id=REPO, repo_type="dataset", allow_patterns="data/*")

    loaded = datasets.load_dataset(REPO)
    assert sorted(loaded) == ["test", "train"]
    assert loaded["train"]["prompt"] == ["a", "b", "c"] and loaded["test"]["score"] == [9]
    streamed = datasets.load_dataset(REPO, split="train", streaming=True)
    assert [row["score"] for row in streamed] == [1, 2, 3]


# -- listing, errors, models ---------------------------------------------------------------------------------------
@pytest.mark.emulator(tree_page_size=2, commits_page_size=2)
def test_tree_and_commits_paginate_through_link_headers(hub: HubEmulator) -> None:
    api = HfApi()
    api.create_repo(REPO, repo_type="dataset")
    for n in range(4):
        api.upload_file(path_or_fileobj=f"{n}".encode(), path_in_repo=f"d{n % 2}/f{n}.txt", repo_id=REPO,
                        repo_type="dataset", commit_message=f"add {n}")
    tree = [e.path for e in api.list_repo_tree(REPO, repo_type="dataset", recursive=True)]
    assert sorted(tree) == sorted([".gitattributes", "d0", "d1", "d0/f0.txt", "d0/f2.txt", "d1/f1.txt", "d1/f3.txt"])
    assert [c.title for c in api.list_repo_commits(REPO, repo_type="dataset")] == [
        "add 3", "add 2", "add 1", "add 0", "initial commit"]
    calls = hub.stats()["calls"]
    assert calls["GET /api/{type}s/{ns}/{name}/tree/{rev}[/{path}]"] == 4  # 7 entries, 2 a page
    assert calls["GET /api/{type}s/{ns}/{name}/commits/{rev}"] == 3


def test_missing_repo_revision_and_folder_are_typed_errors(hub: HubEmulator) -> None:
    api = HfApi()
    with pytest.raises(RepositoryNotFoundError) as repo:
        api.list_repo_tree("test-user/nothing", repo_type="dataset").__iter__().__next__()
    assert repo.value.response.status_code == 404
    with pytest.raises(RepositoryNotFoundError):
        api.upload_file(path_or_fileobj=b"x", path_in_repo="x.txt", repo_id="test-user/nothing",
                        repo_type="dataset")
    api.create_repo(REPO, repo_type="dataset")
    with pytest.raises(RevisionNotFoundError):
        api.dataset_info(REPO, revision="refs/convert/parquet")
    with pytest.raises(EntryNotFoundError):
        list(api.list_repo_tree(REPO, "data", repo_type="dataset"))
    with pytest.raises(HfHubHTTPError) as expand:
        api.dataset_info(REPO, expand=["nonsense"])  # type: ignore[list-item]
    assert expand.value.response.status_code == 400


def test_model_repos_share_the_same_protocol(hub: HubEmulator) -> None:
    api = HfApi()
    repo_id = api.create_repo("test-user/tiny-model").repo_id
    weights = b"\0" * 64 + b"weights"
    api.upload_file(path_or_fileobj=weights, path_in_repo="model.safetensors", repo_id=repo_id)
    api.upload_file(path_or_fileobj=b"---\nlibrary_name: transformers\n---\n", path_in_repo="README.md",
                    repo_id=repo_id)
    info = api.model_info(repo_id)
    assert (info.sha, info.library_name) == (hub.commits(repo_id)[0]["id"], "transformers")
    assert {s.rfilename for s in info.siblings or []} == {".gitattributes", "model.safetensors", "README.md"}
    assert Path(hf_hub_download(repo_id, "model.safetensors")).read_bytes() == weights
    assert hub.lfs_paths(repo_id, repo_type="model") == {"model.safetensors"}


def test_seeded_repo_and_invalid_card_metadata(hub: HubEmulator, tmp_path: Path) -> None:
    oid = hub.seed(REPO, {"data/train.parquet": b"PAR1\0\0PAR1", "README.md": b"# no metadata\n"})
    assert HfApi().dataset_info(REPO).sha == oid and hub.lfs_paths(REPO) == {"data/train.parquet"}
    with pytest.raises(ValueError, match="Invalid metadata in README.md"):
        HfApi().upload_file(path_or_fileobj=b"---\nconfigs: 3\n---\n", path_in_repo="README.md", repo_id=REPO,
                            repo_type="dataset")
    with pytest.warns(UserWarning, match="Empty or missing yaml metadata"):
        HfApi().upload_file(path_or_fileobj=b"just text\n", path_in_repo="README.md", repo_id=REPO,
                            repo_type="dataset")
    assert hub.repo(REPO)["README.md"] == b"just text\n"


def test_cli_serves_the_hub_and_exits_after_max_seconds() -> None:
    proc = subprocess.Popen([sys.executable, "-m", "tests.emulators", "hub", "--max-seconds", "3"], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.append(proc.stdout.readline() if proc.stdout else ""), daemon=True)
    reader.start()
    reader.join(timeout=20)
    try:
        assert lines and lines[0].startswith("hub http://127.0.0.1:"), lines
        endpoint = lines[0].split("env=HF_ENDPOINT=")[1].strip()
        me = get_session().get(f"{endpoint}/api/whoami-v2", headers={"Authorization": "Bearer hf_test_token"})
        assert me.json()["name"] == "test-user"
    finally:
        assert proc.wait(timeout=15) == 0
