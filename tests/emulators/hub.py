"""Hugging Face Hub emulator: repos, git-style commits, LFS storage, file resolution (tests only).

Point the real clients at it with :func:`use_hub` (``huggingface_hub.HfApi``, ``hf_hub_download``, ``HfFileSystem``
and ``datasets.load_dataset``). Protocol reference: the installed ``huggingface_hub`` 2.4 client (``hf_api.py``,
``_commit_api.py``, ``lfs.py``, ``file_download.py``, ``hf_file_system.py``, ``utils/_http.py``) and ``datasets``
5.2 (``load.py``, ``data_files.py``); facts about the server's own answers come from the client's integration tests
against the Hub (``tests/test_hf_api.py`` of huggingface_hub), huggingface.js (``lib/commit.ts``,
``types/api/*.ts``) and maintainers' issue threads, cited where used.

Two listeners on 127.0.0.1, as on the real service:

- the Hub itself (``url``, what ``HF_ENDPOINT`` points at): ``/api/...``, the LFS batch API on
  ``/{prefix}{repo}.git/info/lfs/objects/{batch,verify}`` and ``/{prefix}{repo}/resolve/{rev}/{path}``
  (``prefix`` = ``datasets/`` or ``spaces/``, empty for models);
- the LFS object storage (``storage_url``, standing for S3 uploads and the cdn-lfs downloads): signed,
  expiring URLs only, no ``Authorization``. It is a different origin on purpose: ``huggingface_hub`` reads a file's
  metadata from the Hub's 302 and does not follow it off the Hub, then downloads from the signed URL without the
  token (``utils/_http.py`` ``_httpx2_follow_hub_redirects_with_backoff``, ``file_download.py``).

Routes (Hub): ``GET /api/whoami-v2``; ``POST /api/repos/create``, ``DELETE /api/repos/delete``,
``PUT /api/{type}s/{repo}/settings``; ``POST /api/validate-yaml``; ``GET /api/{type}s/{repo}[/revision/{rev}]``
(``?blobs=true``, ``expand=``); ``GET /api/{type}s/{repo}/tree/{rev}[/{path}]`` (``recursive``, ``expand``, cursor
pagination in a ``Link`` header: 1000 entries a page, 50 with ``expand``); ``POST .../paths-info/{rev}`` (form or
JSON); ``GET .../commits/{rev}`` (newest first, ``p``/``limit`` pages, ``Link``); ``GET .../refs``;
``POST .../preupload/{rev}``; ``POST .../commit/{rev}`` (ndjson); ``POST /api/complete_multipart``;
``GET .../xet-{read,write}-token/{rev}`` (501: no Xet storage); ``GET /api/agent-harnesses``;
``GET /api/datasets/{repo}/parquet`` (404: no parquet export); LFS ``batch`` / ``verify``; ``GET|HEAD resolve``.
Storage: ``PUT`` (single object or multipart part) and ``GET|HEAD`` (``Range``) on
``/repos/{aa}/{bb}/{repo uid}/{sha256}``.

Hub behaviour reproduced (source in brackets):

- Errors are ``{"error": message}`` with ``X-Error-Code`` (``RepoNotFound``, ``RevisionNotFound``,
  ``EntryNotFound``) and ``X-Error-Message`` headers, which the client maps to its typed errors
  (``utils/_http.py`` ``hf_raise_for_status``). A token that is not valid is refused on every route with 401
  ``Invalid credentials in Authorization header`` (huggingface_hub#3368, the client's own special case). A private
  or missing repo is 401 ``Invalid username or password.`` without a token and 404 ``Repository not found`` with
  someone else's token, both ``RepoNotFound`` (Wauplin's gist cited in ``hf_raise_for_status``). A valid token
  without write access gets 403 ``You have read access but not the required permissions for this operation.``;
  creating in a foreign namespace 403 ``You don't have the rights to create a {type} under this namespace``; an
  existing repo 409 ``You already created this {type} repo`` (``create_repo(exist_ok=True)`` swallows 409).
- A new repo has one commit, ``initial commit``, holding the Hub's default ``.gitattributes``
  (test_hf_api.py: commits[-1].title == "initial commit", list_repo_files contains ".gitattributes"). Repo ids are
  case-insensitive (test_create_commit_repo_id_case_insensitive). Default visibility is public.
- Preupload answers ``uploadMode`` by the Hub's rule: ``lfs`` when ``.gitattributes`` (sent ``gitAttributes`` or
  the one at the revision) tracks the path with ``filter=lfs``, when the file is larger than 10 MiB, or when its
  512-byte sample is binary (NUL byte or not UTF-8); ``regular`` otherwise. ``shouldIgnore`` follows ``gitIgnore``
  or the revision's ``.gitignore``. ``oid`` is the existing file's id in the client's terms (git blob sha1 for a
  regular file, sha256 for an LFS file), so ``create_commit`` drops unchanged files itself.
- LFS batch (``transfers: [basic, multipart]``): an object already stored for the repo comes back without
  ``actions``; others get a signed storage ``upload`` href (or, at or above ``multipart_threshold``, a
  ``chunk_size`` header with parts ``00001``... and a ``/api/complete_multipart`` href) and a ``verify`` href.
  Storage rejects a body whose sha256/size differ from the signed oid (``BadDigest``).
- Commit: header first; ``file`` (base64/utf-8), ``lfsFile`` (must have been uploaded, else 400 ``Your push was
  rejected because an LFS pointer pointed to a file that does not exist...``, huggingface_hub#3829),
  ``deletedFile`` (a folder path deletes the folder, test_create_commit_implicit_delete_folder_is_ok; missing: 404
  ``EntryNotFound`` "A file with this name doesn't exist"), ``deletedFolder``. No operation line: 400 ``Add a line
  with the key `lfsFile`, `file` or `deletedFile``` (huggingface_hub#1371). Operations that change nothing still
  make a (git-empty) commit, as the Hub does (huggingface_hub#1411: the client-side no-op check exists for that).
  ``parentCommit`` not at the branch head: 412 ``The branch was updated since you opened this page. Please refresh
  and try again.`` (test_create_commit_conflict). ``..`` in a path: 422 (test_create_file_with_relative_path). An
  LFS file that ``.gitattributes`` does not track gets a ``{path} filter=lfs ...`` line appended (huggingface.js
  ``ApiPreuploadRequest`` doc). Regular files above 10 MiB, or binary above 1 MB, are refused (huggingface_hub#657).
- Resolve: a regular file is served 200 with ``ETag`` = quoted git blob sha1; an LFS file is a 302 to a signed
  storage URL with ``X-Linked-Etag`` (quoted sha256), ``X-Linked-Size`` and the pointer's blob id as ``ETag``;
  ``X-Repo-Commit`` always, also on a 404 ``EntryNotFound`` (the client caches ``.no_exist`` with it). ``Range:
  bytes=a-b`` gives 206 / ``Content-Range``, 416 past the end. No ``X-Xet-*`` headers: repos here are plain LFS.

Not served: pull requests (a ``create_pr`` commit is a 501), Xet (501), branch/tag creation, discussions, Space
runtime (404 like any unknown path). Simplifications: one linear history per branch; the default ``.gitattributes`` is the Hub's current template as
copied into third-party code (may lag the Hub by a pattern or two); error wording the sources above do not fix is
the emulator's own.

Test-side: ``emu.repo(repo_id)`` (files at head, path -> bytes), ``emu.commits(repo_id)``, ``emu.is_private``,
``emu.lfs_paths``, ``emu.seed(...)``, ``emu.stats()`` (adds ``repos``, ``commits``, ``lfs_uploads``).
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import html
import json
import mimetypes
import re
import secrets
import threading
import time
import traceback
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import parse_qs, parse_qsl, quote, unquote, urlencode, urlsplit

import yaml

from ._base import Emulator, HTTPError, Request, Response, _Handler, _Server, json_response, rfc3339

DEFAULT_TOKENS: dict[str, str] = {"hf_test_token": "test-user"}
REPO_TYPES = ("model", "dataset", "space")
LFS_SIZE_THRESHOLD = 10 * 1024 * 1024  # larger files always go to LFS (Hub docs: "files larger than 10MB")
BINARY_REGULAR_LIMIT = 1_000_000  # binary blobs above 1 MB must be LFS (huggingface_hub#657)
MULTIPART_THRESHOLD = 5 * 1024**3  # S3 single-PUT limit: larger objects are uploaded in parts
MULTIPART_CHUNK_SIZE = 64 * 1024 * 1024
URL_TTL = 3600.0  # seconds a signed storage URL stays valid
NO_REPO_ANON = "Invalid username or password."
NO_REPO = "Repository not found"
BAD_TOKEN = "Invalid credentials in Authorization header"
READ_ONLY = "You have read access but not the required permissions for this operation."
NO_XET = ("The Hub emulator has no Xet storage; set HF_HUB_DISABLE_XET=1 (tests.emulators.hub.use_hub does) so "
          "huggingface_hub uploads with the LFS protocol.")
EMPTY_REGISTRY = {"standardEnvVars": [], "harnesses": {}}
LFS_LINE = "filter=lfs diff=lfs merge=lfs -text"
_GITATTRIBUTES_COMMON = [
    "*.7z", "*.arrow", "*.bin", "*.bz2", "*.ckpt", "*.ftz", "*.gz", "*.h5", "*.joblib", "*.lfs.*", "*.lz4",
    "*.mds", "*.mlmodel", "*.model", "*.msgpack", "*.npy", "*.npz", "*.onnx", "*.ot", "*.parquet", "*.pb",
    "*.pickle", "*.pkl", "*.pt", "*.pth", "*.rar", "*.safetensors", "saved_model/**/*", "*.tar.*", "*.tar",
    "*.tflite", "*.tgz", "*.wasm", "*.xz", "*.zip", "*.zst", "*tfevents*",
]
_GITATTRIBUTES_DATASET = [
    "# Audio files - uncompressed", "*.pcm", "*.sam", "*.raw",
    "# Audio files - compressed", "*.aac", "*.flac", "*.mp3", "*.ogg", "*.wav",
    "# Image files - uncompressed", "*.bmp", "*.gif", "*.png", "*.tiff",
    "# Image files - compressed", "*.jpg", "*.jpeg", "*.webp",
    "# Video files - compressed", "*.mp4", "*.webm",
]
EXPAND = {
    "model": {"author", "baseModels", "cardData", "childrenModelCount", "config", "createdAt", "disabled",
              "downloads", "downloadsAllTime", "evalResults", "gated", "gguf", "inference",
              "inferenceProviderMapping", "lastModified", "library_name", "likes", "mask_token", "model-index",
              "pipeline_tag", "private", "resourceGroup", "safetensors", "sha", "siblings", "spaces", "tags",
              "transformersInfo", "trendingScore", "usedStorage", "widgetData"},
    "dataset": {"author", "cardData", "citation", "createdAt", "description", "disabled", "downloads",
                "downloadsAllTime", "gated", "lastModified", "likes", "mainSize", "paperswithcode_id", "private",
                "resourceGroup", "sha", "siblings", "tags", "trendingScore", "usedStorage"},
    "space": {"author", "cardData", "createdAt", "datasets", "disabled", "lastModified", "likes", "models",
              "private", "region", "resourceGroup", "runtime", "sdk", "sha", "siblings", "subdomain", "tags",
              "trendingScore", "usedStorage"},
}
_YAML_BLOCK = re.compile(r"^(\s*---[\r\n]+)([\S\s]*?)([\r\n]+---(\r\n|\n|$))")  # as huggingface_hub.repocard
_REPO_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,95}$")
_OID = re.compile(r"^[0-9a-f]{64}$")


def default_gitattributes(repo_type: str) -> bytes:
    """The ``.gitattributes`` of the Hub's ``initial commit`` (datasets add media formats)."""
    lines = [f"{p} {LFS_LINE}" for p in _GITATTRIBUTES_COMMON]
    if repo_type == "dataset":
        lines += [p if p.startswith("#") else f"{p} {LFS_LINE}" for p in _GITATTRIBUTES_DATASET]
    return ("\n".join(lines) + "\n").encode()


def git_blob_oid(data: bytes) -> str:
    """git's object id of a blob: sha1 of ``blob <size>\\0<data>``."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def lfs_pointer(sha256: str, size: int) -> bytes:
    """The git-lfs pointer file stored in git in place of an LFS file (git-lfs spec v1)."""
    return f"version https://git-lfs.github.com/spec/v1\noid sha256:{sha256}\nsize {size}\n".encode()


def looks_binary(sample: bytes) -> bool:
    """A NUL byte or bytes that are not UTF-8 (a multi-byte character cut at the end of the sample is fine)."""
    if b"\0" in sample:
        return True
    for cut in range(4):
        with contextlib.suppress(UnicodeDecodeError):
            sample[: len(sample) - cut].decode("utf-8")
            return False
    return True


def card_metadata(text: str) -> dict[str, Any] | None:
    """The YAML header of a README (None when there is none); raises ``yaml.YAMLError`` / ``ValueError``."""
    match = _YAML_BLOCK.search(text)
    if not match:
        return None
    data = yaml.safe_load(match.group(2))
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ValueError("repo card metadata must be a YAML mapping")
    return data


def _glob(pattern: str) -> re.Pattern[str]:
    """git wildmatch: ``*``/``?`` within a segment, ``**`` across, ``[...]``; no slash = basename at any depth."""
    body = pattern.replace("[[:space:]]", "\0").rstrip("/")
    anchored = "/" in body
    body = body.lstrip("/")
    out, i = "", 0
    while i < len(body):
        if body.startswith("**/", i):
            out, i = out + "(?:.*/)?", i + 3
        elif body.startswith("**", i):
            out, i = out + ".*", i + 2
        elif body[i] == "*":
            out, i = out + "[^/]*", i + 1
        elif body[i] == "?":
            out, i = out + "[^/]", i + 1
        elif body[i] == "\0":
            out, i = out + r"\s", i + 1
        elif body[i] == "[" and (end := body.find("]", i + 2)) != -1:
            cls = body[i + 1 : end]
            out, i = out + "[" + ("^" + cls[1:] if cls[:1] in "!^" else cls).replace("\\", "\\\\") + "]", end + 1
        else:
            out, i = out + re.escape(body[i]), i + 1
    return re.compile(("^" if anchored else "^(?:.*/)?") + out + "$")


def lfs_tracked(gitattributes: str, path: str) -> bool:
    """Whether ``.gitattributes`` gives ``path`` ``filter=lfs`` (the last matching line wins, as in git)."""
    tracked = False
    for line in gitattributes.splitlines():
        fields = line.split()
        if not fields or fields[0].startswith("#"):
            continue
        for attr in fields[1:]:
            if attr.startswith(("filter=", "-filter", "!filter")) and _glob(fields[0]).match(path):
                tracked = attr == "filter=lfs"
    return tracked


def git_ignored(gitignore: str, path: str) -> bool:
    """Whether ``.gitignore`` ignores ``path`` (or one of its folders); ``!`` re-includes, last match wins."""
    parts = path.split("/")
    candidates = [("/".join(parts[:n]), n < len(parts)) for n in range(1, len(parts) + 1)]
    ignored = False
    for raw in gitignore.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        negate = line.startswith("!")
        pattern = line[1:] if negate else line
        dir_only = pattern.endswith("/")
        regex = _glob(pattern)
        if any(regex.match(c) and (is_dir or not dir_only) for c, is_dir in candidates):
            ignored = not negate
    return ignored


def _url_path(repo_type: str, repo_id: str) -> str:
    """Where a repo lives on the Hub: ``{id}`` for models, ``datasets/{id}``, ``spaces/{id}``."""
    return {"model": "", "dataset": "datasets/", "space": "spaces/"}[repo_type] + repo_id


def _header(value: str) -> str:
    """A header-safe (latin-1, single line) version of ``value``."""
    return " ".join(value.split()).encode("latin-1", "replace").decode("latin-1")[:500]


@dataclass(frozen=True)
class Blob:
    """A file's content as git stores it: inline (``lfs=False``) or as an LFS pointer to ``sha256``."""

    data: bytes
    lfs: bool
    sha256: str
    oid: str  # git blob id: of the content, or of the pointer for an LFS file

    @classmethod
    def of(cls, data: bytes, lfs: bool) -> Blob:
        sha = hashlib.sha256(data).hexdigest()
        return cls(data, lfs, sha, git_blob_oid(lfs_pointer(sha, len(data)) if lfs else data))

    @property
    def size(self) -> int:
        return len(self.data)

    @property
    def client_oid(self) -> str:
        """What preupload answers as ``oid``: sha256 for LFS, git sha1 otherwise (``_commit_api._local_oid``)."""
        return self.sha256 if self.lfs else self.oid

    def entry(self, path: str) -> dict[str, Any]:
        out: dict[str, Any] = {"type": "file", "oid": self.oid, "size": self.size, "path": path}
        if self.lfs:
            out["lfs"] = {"oid": self.sha256, "size": self.size,
                          "pointerSize": len(lfs_pointer(self.sha256, self.size))}
        return out


@dataclass
class Commit:
    """One commit: a full snapshot of the tree (path -> Blob) plus git-style metadata."""

    oid: str
    parent: str | None
    title: str
    description: str
    author: str
    date: float
    files: dict[str, Blob]
    _folders: dict[str, str] | None = field(default=None, repr=False)

    def folders(self) -> dict[str, str]:
        """Every folder path ("" = root) -> its git tree id, computed once."""
        if self._folders is None:
            children: dict[str, dict[str, tuple[str, str]]] = {"": {}}
            for path in self.files:
                parts = path.split("/")
                for n in range(1, len(parts)):
                    children.setdefault("/".join(parts[:n]), {})
            for path, blob in self.files.items():
                parent, _, name = path.rpartition("/")
                children[parent][name] = ("100644", blob.oid)
            oids: dict[str, str] = {}
            for folder in sorted(children, key=lambda f: -f.count("/") if f else 1):  # deepest first, root last
                entries = children[folder]
                for sub in [f for f in children if f and f.rpartition("/")[0] == folder]:
                    entries[sub.rpartition("/")[2]] = ("40000", oids[sub])
                raw = b"".join(
                    f"{mode} {name}\0".encode() + bytes.fromhex(oid)
                    for name, (mode, oid) in sorted(entries.items(), key=lambda kv: kv[0] + ("/" if kv[1][0] == "40000" else ""))
                )
                oids[folder] = hashlib.sha1(b"tree %d\0" % len(raw) + raw).hexdigest()
            self._folders = oids
        return self._folders

    @property
    def message(self) -> str:
        return self.title + ("\n\n" + self.description if self.description else "")


@dataclass
class Repo:
    type: str
    id: str  # canonical "namespace/name"
    private: bool
    created: float
    uid: str  # 24-hex id, also the storage prefix of its LFS objects
    commits: dict[str, Commit] = field(default_factory=dict)
    branches: dict[str, str] = field(default_factory=dict)
    lfs: dict[str, bytes] = field(default_factory=dict)  # sha256 -> bytes uploaded for this repo

    @property
    def namespace(self) -> str:
        return self.id.split("/")[0]

    @property
    def url_path(self) -> str:
        return _url_path(self.type, self.id)

    def history(self, oid: str) -> list[Commit]:
        out, cur = [], self.commits.get(oid)
        while cur is not None:
            out.append(cur)
            cur = self.commits.get(cur.parent) if cur.parent else None
        return out


@dataclass
class _HubRequest(Request):
    query_all: dict[str, list[str]] = field(default_factory=dict)


class _HubHandler(_Handler):
    """The base handler plus ``HEAD`` (headers of the GET answer, no body) and repeated query parameters."""

    def make_request(self, parts: Any, body: bytes) -> Request:
        return _HubRequest(self.command, parts.path, dict(parse_qsl(parts.query, keep_blank_values=True)),
                           self.headers, body, query_all=parse_qs(parts.query, keep_blank_values=True))

    def respond(self, resp: Response) -> None:
        if self.command != "HEAD":
            return self._write(resp)
        self.send_response(resp.status)
        for key, value in resp.headers.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(resp.body)))
        self.end_headers()

    do_HEAD = _Handler._run


class _Storage:
    """The storage listener's front: routes its requests to ``HubEmulator.storage_*`` (S3-style XML errors)."""

    def __init__(self, hub: HubEmulator) -> None:
        self.hub = hub

    def handle(self, req: Request) -> Response:
        return self.hub.handle_storage(req)

    def error_response(self, err: HTTPError) -> Response:
        return self.hub.storage_error(err)


def _route_regex(template: str) -> re.Pattern[str]:
    """``{type}s`` = models/datasets/spaces, ``{prefix}`` = the optional ``datasets/``/``spaces/`` of web URLs,
    ``{name}`` one segment (``.git`` may follow), ``{path}`` the rest (slashes included), ``[/{path}]`` optional."""
    out = re.escape(template)
    for name, regex in {
        "[/{path}]": r"(?:/(?P<path>.*))?", "{type}": r"(?P<type>model|dataset|space)",
        "{prefix}": r"(?:(?P<prefix>dataset|space)s/)?", "{ns}": r"(?P<ns>[^/]+)", "{name}": r"(?P<name>[^/]+?)",
        "{rev}": r"(?P<rev>[^/]+)", "{path}": r"(?P<path>.+)",
    }.items():
        out = out.replace(re.escape(name), regex)
    return re.compile("^" + out + "$")


@dataclass(frozen=True)
class _Who:
    user: str
    role: str  # "write" | "read"


class HubEmulator(Emulator):
    vendor = "hub"
    api_prefix = ""
    ROUTES: ClassVar[list[tuple[str, str, str]]] = [
        ("GET", "/api/whoami-v2", "whoami"),
        ("GET", "/api/agent-harnesses", "agent_harnesses"),
        ("POST", "/api/repos/create", "create_repo"),
        ("DELETE", "/api/repos/delete", "delete_repo"),
        ("POST", "/api/validate-yaml", "validate_yaml"),
        ("POST", "/api/complete_multipart", "complete_multipart"),
        ("PUT", "/api/{type}s/{ns}/{name}/settings", "repo_settings"),
        ("GET", "/api/{type}s/{ns}/{name}/revision/{rev}", "repo_info"),
        ("GET", "/api/{type}s/{ns}/{name}/tree/{rev}[/{path}]", "tree"),
        ("POST", "/api/{type}s/{ns}/{name}/paths-info/{rev}", "paths_info"),
        ("GET", "/api/{type}s/{ns}/{name}/commits/{rev}", "list_commits"),
        ("GET", "/api/{type}s/{ns}/{name}/refs", "refs"),
        ("POST", "/api/{type}s/{ns}/{name}/preupload/{rev}", "preupload"),
        ("POST", "/api/{type}s/{ns}/{name}/commit/{rev}", "commit"),
        ("GET", "/api/{type}s/{ns}/{name}/xet-write-token/{rev}", "xet_token"),
        ("GET", "/api/{type}s/{ns}/{name}/xet-read-token/{rev}", "xet_token"),
        ("GET", "/api/{type}s/{ns}/{name}/parquet[/{path}]", "parquet_export"),
        ("GET", "/api/{type}s/{ns}/{name}", "repo_info"),
        ("POST", "/{prefix}{ns}/{name}.git/info/lfs/objects/batch", "lfs_batch"),
        ("POST", "/{prefix}{ns}/{name}.git/info/lfs/objects/verify", "lfs_verify"),
        ("GET", "/{prefix}{ns}/{name}/resolve/{rev}/{path}", "resolve"),
        ("HEAD", "/{prefix}{ns}/{name}/resolve/{rev}/{path}", "resolve"),
    ]
    _patterns: ClassVar[list[tuple[str, str, re.Pattern[str], str]]] = [
        (m, t, _route_regex(t), h) for m, t, h in ROUTES
    ]
    STORAGE_ROUTES: ClassVar[list[tuple[str, re.Pattern[str]]]] = [
        (m, re.compile(r"^/repos/[0-9a-f]{2}/[0-9a-f]{2}/(?P<uid>[0-9a-f]{24})/(?P<oid>[0-9a-f]{64})$"))
        for m in ("PUT", "GET", "HEAD")
    ]

    def __init__(
        self,
        *,
        tokens: Mapping[str, str | tuple[str, str]] | None = None,
        orgs: Mapping[str, Iterable[str]] | None = None,
        tree_page_size: int = 1000,
        tree_expand_page_size: int = 50,
        commits_page_size: int = 50,
        multipart_threshold: int = MULTIPART_THRESHOLD,
        multipart_chunk_size: int = MULTIPART_CHUNK_SIZE,
        url_ttl: float = URL_TTL,
        max_seconds: float | None = None,
        **kwargs: Any,
    ) -> None:
        """``tokens``: token -> user name, or (user, "read"|"write"); ``orgs``: org name -> member user names.

        ``max_seconds``: stop by itself after this long (None = until ``stop()``).
        """
        self.tokens = {t: (v, "write") if isinstance(v, str) else (v[0], v[1])
                       for t, v in (DEFAULT_TOKENS if tokens is None else tokens).items()}
        self.orgs = {org: set(members) for org, members in (orgs or {}).items()}
        self.tree_page_size, self.tree_expand_page_size = tree_page_size, tree_expand_page_size
        self.commits_page_size = commits_page_size
        self.multipart_threshold, self.multipart_chunk_size = multipart_threshold, max(1, multipart_chunk_size)
        self.url_ttl, self.max_seconds = url_ttl, max_seconds
        self._secret = secrets.token_bytes(32)
        self.storage_port = 0
        self._storage_server: _Server | None = None
        self._storage_thread: threading.Thread | None = None
        self._timer: threading.Timer | None = None
        super().__init__(**kwargs)

    # -- lifecycle: the Hub listener plus the storage listener ------------------------------------------------
    def start(self) -> HubEmulator:
        if self._server is None:
            self._server = self._listen(self.port, self)
            self.port = self._server.server_address[1]
            self._storage_server = self._listen(self.storage_port, _Storage(self))
            self.storage_port = self._storage_server.server_address[1]
            self._thread = self._serve(self._server, "hub-emulator")
            self._storage_thread = self._serve(self._storage_server, "hub-storage-emulator")
            if self.max_seconds is not None:
                self._timer = threading.Timer(self.max_seconds, self.stop)
                self._timer.daemon = True
                self._timer.start()
        return self

    def _listen(self, port: int, front: Any) -> _Server:
        server = _Server((self.host, port), front)
        server.RequestHandlerClass = _HubHandler
        return server

    @staticmethod
    def _serve(server: _Server, name: str) -> threading.Thread:
        thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True, name=name)
        thread.start()
        return thread

    def stop(self) -> None:
        timer, self._timer = self._timer, None
        if timer is not None and timer is not threading.current_thread():
            timer.cancel()
        storage, self._storage_server = self._storage_server, None
        if storage is not None:
            storage.shutdown()
            storage.close_connections()
            storage.server_close()
            if self._storage_thread is not None:
                self._storage_thread.join(timeout=5)
        super().stop()

    @property
    def storage_url(self) -> str:
        return f"http://{self.host}:{self.storage_port}"

    # -- state ------------------------------------------------------------------------------------------------
    def reset_state(self) -> None:
        super().reset_state()
        self.repos: dict[tuple[str, str], Repo] = {}
        self.multipart: dict[str, dict[str, Any]] = {}
        self.commit_log: list[dict[str, Any]] = []
        self.lfs_uploads: list[dict[str, Any]] = []

    def stats(self) -> dict[str, Any]:
        with self.lock:
            repos = {f"{r.type}/{r.id}": {"private": r.private, "commits": len(r.history(r.branches["main"])),
                                          "files": len(r.commits[r.branches["main"]].files)}
                     for r in self.repos.values()}
            extra = json.loads(json.dumps({"repos": repos, "commits": self.commit_log,
                                           "lfs_uploads": self.lfs_uploads}))
        return {**super().stats(), **extra}

    # -- test-side accessors ------------------------------------------------------------------------------------
    def _find(self, repo_id: str, repo_type: str | None) -> Repo:
        with self.lock:
            found = [r for (t, key), r in self.repos.items()
                     if key == repo_id.lower() and (repo_type is None or t == repo_type)]
        if len(found) != 1:
            raise KeyError(f"{'no' if not found else 'several'} repo {repo_id!r} (type {repo_type or 'any'})")
        return found[0]

    def repo(self, repo_id: str, repo_type: str | None = None, revision: str = "main") -> dict[str, bytes]:
        """Files at ``revision`` (default: the head of main), path -> bytes."""
        repo = self._find(repo_id, repo_type)
        with self.lock:
            return {p: b.data for p, b in sorted(self._commit(repo, revision).files.items())}

    def lfs_paths(self, repo_id: str, repo_type: str | None = None, revision: str = "main") -> set[str]:
        """Paths stored as LFS pointers at ``revision``."""
        repo = self._find(repo_id, repo_type)
        with self.lock:
            return {p for p, b in self._commit(repo, revision).files.items() if b.lfs}

    def commits(self, repo_id: str, repo_type: str | None = None, revision: str = "main") -> list[dict[str, Any]]:
        """Commits reachable from ``revision``, newest first (as the API lists them): id, title, message, author."""
        repo = self._find(repo_id, repo_type)
        with self.lock:
            return [{"id": c.oid, "title": c.title, "message": c.description, "author": c.author,
                     "date": c.date} for c in repo.history(self._commit(repo, revision).oid)]

    def is_private(self, repo_id: str, repo_type: str | None = None) -> bool:
        return self._find(repo_id, repo_type).private

    def seed(self, repo_id: str, files: Mapping[str, bytes] | None = None, *, repo_type: str = "dataset",
             private: bool = False, message: str = "Seed files") -> str:
        """Create ``repo_id`` (if missing) and commit ``files`` as its owner would; returns the commit id."""
        key = (repo_type, repo_id.lower())
        with self.lock:
            repo = self.repos.get(key) or self._new_repo(repo_type, repo_id, private, repo_id.split("/")[0])
            if not files:
                return repo.branches["main"]
            head = repo.commits[repo.branches["main"]]
            tree = dict(head.files)
            attributes = tree[".gitattributes"].data.decode() if ".gitattributes" in tree else ""
            for path, data in files.items():
                lfs = self._upload_mode(attributes, path, len(data), data[:512]) == "lfs"
                tree[path] = Blob.of(data, lfs)
                if lfs:
                    repo.lfs[tree[path].sha256] = data
            return self._add_commit(repo, "main", tree, message, "", repo.namespace).oid

    # -- auth -----------------------------------------------------------------------------------------------------
    def check_auth(self, req: Request) -> None:
        token = self._token(req)
        if token is not None and token not in self.tokens:
            raise HTTPError(401, BAD_TOKEN)

    @staticmethod
    def _token(req: Request) -> str | None:
        auth = req.headers.get("Authorization") or ""
        scheme, _, value = auth.partition(" ")
        return value.strip() or None if scheme.lower() == "bearer" else None

    def _who(self, req: Request) -> _Who | None:
        token = self._token(req)
        if token is None or token not in self.tokens:
            return None
        user, role = self.tokens[token]
        return _Who(user, role)

    def _member(self, who: _Who | None, namespace: str) -> bool:
        return who is not None and (who.user.lower() == namespace.lower() or who.user in self.orgs.get(namespace, ()))

    def _readable(self, req: Request, repo_type: str, ns: str, name: str) -> Repo:
        who = self._who(req)
        with self.lock:
            repo = self.repos.get((repo_type, f"{ns}/{name}".lower()))
        if repo is None or (repo.private and not self._member(who, repo.namespace)):
            if who is None:
                raise HTTPError(401, NO_REPO_ANON, code="RepoNotFound")
            raise HTTPError(404, NO_REPO, code="RepoNotFound")
        return repo

    def _writable(self, req: Request, repo_type: str, ns: str, name: str) -> Repo:
        repo = self._readable(req, repo_type, ns, name)
        who = self._who(req)
        if who is None:
            raise HTTPError(401, NO_REPO_ANON)
        if who.role != "write" or not self._member(who, repo.namespace):
            raise HTTPError(403, READ_ONLY)
        return repo

    # -- dispatch -------------------------------------------------------------------------------------------------
    def _route(self, req: Request) -> tuple[str, Any] | None:
        for method, template, pattern, handler in self._patterns:
            m = pattern.match(req.path)
            if m and method == req.method:
                params = {k: unquote(v) for k, v in m.groupdict().items() if v is not None}
                if "type" not in params:
                    params["type"] = params.pop("prefix", "model") if "ns" in params else ""
                req.params = params
                return template, getattr(self, handler)
        return None

    def error_response(self, err: HTTPError) -> Response:
        headers = {"X-Request-Id": uuid.uuid4().hex, "X-Error-Message": _header(err.message), **err.headers}
        if err.code:
            headers["X-Error-Code"] = err.code
        return json_response({"error": err.message}, err.status, headers)

    def _base(self, req: Request) -> str:
        return f"http://{req.host}"

    @staticmethod
    def _multi(req: Request, key: str) -> list[str]:
        """Every value of a repeated query parameter (``expand=a&expand=b``)."""
        return list(req.query_all.get(key, [])) if isinstance(req, _HubRequest) else []

    def _repo_args(self, req: Request) -> tuple[str, str, str]:
        return req.params["type"], req.params["ns"], req.params["name"]

    def _commit(self, repo: Repo, rev: str) -> Commit:
        """The commit a revision names: a branch, a full commit id or an unambiguous prefix of 7+ hex digits."""
        if rev in repo.branches:
            return repo.commits[repo.branches[rev]]
        if rev in repo.commits:
            return repo.commits[rev]
        if re.fullmatch(r"[0-9a-f]{7,39}", rev):
            matches = [c for oid, c in repo.commits.items() if oid.startswith(rev)]
            if len(matches) == 1:
                return matches[0]
        raise HTTPError(404, f"Invalid rev id: {rev}", code="RevisionNotFound")

    # -- account ----------------------------------------------------------------------------------------------------
    def whoami(self, req: Request) -> Response:
        who = self._who(req)
        if who is None:
            raise HTTPError(401, NO_REPO_ANON)
        orgs = [{"type": "org", "id": self._uid("org", org), "name": org, "fullname": org, "email": None,
                 "canPay": False, "periodEnd": None, "avatarUrl": f"/avatars/{org}.svg", "roleInOrg": "write",
                 "isEnterprise": False}
                for org, members in sorted(self.orgs.items()) if who.user in members]
        return json_response({
            "type": "user", "id": self._uid("user", who.user), "name": who.user, "fullname": who.user,
            "email": f"{who.user}@example.com", "emailVerified": True, "canPay": False, "periodEnd": None,
            "isPro": False, "avatarUrl": f"/avatars/{who.user}.svg", "orgs": orgs,
            "auth": {"type": "access_token",
                     "accessToken": {"displayName": "emulator", "role": who.role,
                                     "createdAt": rfc3339(1_735_689_600)}},
        })

    @staticmethod
    def _uid(*parts: str) -> str:
        return hashlib.sha256("|".join(parts).encode()).hexdigest()[:24]

    def agent_harnesses(self, req: Request) -> Response:
        return json_response(EMPTY_REGISTRY)  # fetched by the client's user-agent builder (utils/_detect_agent.py)

    # -- repos ----------------------------------------------------------------------------------------------------
    def _new_repo(self, repo_type: str, repo_id: str, private: bool, author: str) -> Repo:
        now = self.now()
        repo = Repo(repo_type, repo_id, private, now, uuid.uuid4().hex[:24])
        self.repos[(repo_type, repo_id.lower())] = repo
        self._add_commit(repo, None, {".gitattributes": Blob.of(default_gitattributes(repo_type), False)},
                         "initial commit", "", author)
        return repo

    def create_repo(self, req: Request) -> Response:
        who = self._who(req)
        if who is None:
            raise HTTPError(401, NO_REPO_ANON)
        body = req.json_object()
        repo_type = body.get("type") or "model"
        name, ns = body.get("name"), body.get("organization") or who.user
        if repo_type not in REPO_TYPES:
            raise HTTPError(400, f"Invalid repo type: {repo_type}")
        if not isinstance(name, str) or not _REPO_NAME.match(name) or "--" in name or ".." in name:
            raise HTTPError(400, "Invalid repo name: use letters, digits, '-', '_' and '.' (no '--' or '..')")
        if who.role != "write" or not self._member(who, ns):
            raise HTTPError(403, f"You don't have the rights to create a {repo_type} under this namespace")
        visibility = body.get("visibility")
        private = visibility == "private" if visibility is not None else bool(body.get("private", False))
        with self.lock:
            existing = self.repos.get((repo_type, f"{ns}/{name}".lower()))
            url = f"{self._base(req)}/{_url_path(repo_type, existing.id if existing else f'{ns}/{name}')}"
            if existing is not None:
                return json_response({"error": f"You already created this {repo_type} repo", "url": url}, 409,
                                     {"X-Error-Message": f"You already created this {repo_type} repo"})
            repo = self._new_repo(repo_type, f"{ns}/{name}", private, who.user)
        return json_response({"url": url, "name": repo.id, "id": repo.uid})

    def delete_repo(self, req: Request) -> Response:
        body = req.json_object()
        who = self._who(req)
        ns = body.get("organization") or (who.user if who else "")
        repo = self._writable(req, body.get("type") or "model", ns, str(body.get("name")))
        with self.lock:
            self.repos.pop((repo.type, repo.id.lower()), None)
        return Response(200, b"", {"Content-Type": "text/plain; charset=utf-8"})

    def repo_settings(self, req: Request) -> Response:
        repo = self._writable(req, *self._repo_args(req))
        body = req.json_object()
        with self.lock:
            if "visibility" in body:
                repo.private = body["visibility"] == "private"
            elif "private" in body:
                repo.private = bool(body["private"])
        return json_response({})

    def validate_yaml(self, req: Request) -> Response:
        """``{"errors": [...]}`` with 400, or ``{"warnings": [...]}``; plain text lines for ``Accept: text/plain``
        (``RepoCard.validate`` asks so and raises ``ValueError(response.text)`` on 400)."""
        body = req.json_object()
        content, repo_type = str(body.get("content") or ""), body.get("repoType") or "model"
        warnings: list[str] = []
        try:
            meta = card_metadata(content)
            errors = self._metadata_errors(meta, repo_type) if meta else []
            if not meta:
                warnings.append("Empty or missing yaml metadata in repo card "
                                "(https://huggingface.co/docs/hub/model-cards#model-card-metadata)")
        except (yaml.YAMLError, ValueError) as exc:
            errors = [f"Invalid YAML in README.md metadata: {exc}"]
        status = 400 if errors else 200
        if "text/plain" in (req.headers.get("Accept") or ""):
            return Response(status, "\n".join(errors or warnings).encode(), {"Content-Type": "text/plain; charset=utf-8"})
        if errors:
            return json_response({"errors": [{"message": e} for e in errors]}, 400)
        return json_response({"warnings": [{"message": w} for w in warnings]})

    @staticmethod
    def _metadata_errors(meta: dict[str, Any], repo_type: str) -> list[str]:
        """The structural checks the Hub's card validation makes on what datasets/transformers read back."""
        errors = []
        if "model-index" in meta and not isinstance(meta["model-index"], list):
            errors.append('"model-index" must be an array')
        configs = meta.get("configs")
        if configs is not None:
            if not isinstance(configs, list):
                errors.append('"configs" must be an array')
            for i, cfg in enumerate(configs if isinstance(configs, list) else []):
                if not isinstance(cfg, dict) or not isinstance(cfg.get("config_name"), str):
                    errors.append(f'"configs[{i}].config_name" is required and must be a string')
                    continue
                files = cfg.get("data_files")
                items = files if isinstance(files, list) else [files] if files is not None else []
                for item in items:
                    ok = isinstance(item, str) or (isinstance(item, dict) and isinstance(item.get("split"), str)
                                                   and isinstance(item.get("path"), (str, list)))
                    if not ok:
                        errors.append(f'"configs[{i}].data_files" must be a path, a list of paths or a list of '
                                      '{split, path}')
                        break
        return errors

    def repo_info(self, req: Request) -> Response:
        repo_type, ns, name = self._repo_args(req)
        repo = self._readable(req, repo_type, ns, name)
        expand = self._multi(req, "expand") + self._multi(req, "expand[]")
        unknown = [e for e in expand if e not in EXPAND[repo_type]]
        if unknown:
            raise HTTPError(400, f"Invalid expand value(s): {', '.join(unknown)}")
        blobs = (req.query.get("blobs") or "").lower() in ("1", "true")
        with self.lock:
            commit = self._commit(repo, req.params.get("rev", "main"))
            info = self._info(repo, commit, blobs)
        if expand:
            info = {k: v for k, v in info.items() if k in ("_id", "id") or k in expand}
        return json_response(info)

    def _info(self, repo: Repo, commit: Commit, blobs: bool) -> dict[str, Any]:
        card: dict[str, Any] = {}
        if "README.md" in commit.files:
            with contextlib.suppress(yaml.YAMLError, ValueError, UnicodeDecodeError):
                card = card_metadata(commit.files["README.md"].data.decode()) or {}
        siblings = []
        for path, blob in sorted(commit.files.items()):
            sib: dict[str, Any] = {"rfilename": path}
            if blobs:
                sib.update({"size": blob.size, "blobId": blob.oid})
                if blob.lfs:
                    sib["lfs"] = {"sha256": blob.sha256, "size": blob.size,
                                  "pointerSize": len(lfs_pointer(blob.sha256, blob.size))}
            siblings.append(sib)
        tags = [str(t) for t in card.get("tags") or [] if isinstance(t, (str, int, float))]
        for key in ("license", "language", "task_categories", "task_ids", "size_categories", "library_name"):
            values = card.get(key)
            tags += [f"{key.removesuffix('_name')}:{v}" for v in (values if isinstance(values, list) else [values])
                     if isinstance(v, str)]
        info: dict[str, Any] = {
            "_id": repo.uid, "id": repo.id, "author": repo.namespace, "sha": commit.oid,
            "lastModified": rfc3339(commit.date)[:23] + "Z", "createdAt": rfc3339(repo.created)[:23] + "Z",
            "private": repo.private, "gated": False, "disabled": False, "downloads": 0, "likes": 0,
            "tags": tags + ["region:us"], "cardData": card, "siblings": siblings,
            "usedStorage": sum(len(data) for data in repo.lfs.values())
            + sum(b.size for c in repo.commits.values() for b in c.files.values() if not b.lfs),
        }
        if repo.type == "model":
            info.update({"modelId": repo.id, "library_name": card.get("library_name"),
                         "pipeline_tag": card.get("pipeline_tag"), "spaces": []})
            if "model-index" in card:
                info["model-index"] = card["model-index"]
        elif repo.type == "dataset":
            info.update({"description": "", "downloadsAllTime": 0, "trendingScore": 0,
                         "mainSize": sum(b.size for b in commit.files.values())})
            for key in ("citation", "paperswithcode_id"):
                if key in card:
                    info[key] = card[key]
        else:
            info.update({"sdk": card.get("sdk"), "subdomain": repo.id.replace("/", "-").lower()})
        return info

    def parquet_export(self, req: Request) -> Response:
        self._readable(req, *self._repo_args(req))
        raise HTTPError(404, "This dataset has no parquet export (the emulator runs no dataset viewer)")

    def xet_token(self, req: Request) -> Response:
        self._readable(req, *self._repo_args(req))
        raise HTTPError(501, NO_XET)

    def refs(self, req: Request) -> Response:
        repo = self._readable(req, *self._repo_args(req))
        with self.lock:
            branches = [{"name": b, "ref": f"refs/heads/{b}", "targetCommit": oid} for b, oid in repo.branches.items()]
        out: dict[str, Any] = {"branches": branches, "converts": [], "tags": []}
        if req.query.get("include_prs"):
            out["pullRequests"] = []
        return json_response(out)

    # -- tree / paths-info / commits ------------------------------------------------------------------------------
    def _last_commit(self, repo: Repo, commit: Commit, path: str, folder: bool) -> dict[str, Any]:
        def key(c: Commit) -> str | None:
            if folder:
                return c.folders().get(path)
            return c.files[path].oid if path in c.files else None

        target, cur = key(commit), commit
        while cur.parent is not None and key(repo.commits[cur.parent]) == target:
            cur = repo.commits[cur.parent]
        return {"id": cur.oid, "title": cur.title, "date": rfc3339(cur.date)[:23] + "Z"}

    def _entry(self, repo: Repo, commit: Commit, path: str, expand: bool) -> dict[str, Any] | None:
        if path in commit.files:
            out = commit.files[path].entry(path)
        elif path in commit.folders() and path:
            out = {"type": "directory", "oid": commit.folders()[path], "size": 0, "path": path}
        else:
            return None
        if expand:
            out["lastCommit"] = self._last_commit(repo, commit, path, out["type"] == "directory")
        return out

    def _listing(self, commit: Commit, folder: str, recursive: bool) -> list[str]:
        """Paths under ``folder``: folders first then files at each level, a folder followed by its content."""
        prefix = folder + "/" if folder else ""
        folders = sorted(f for f in commit.folders() if f and f.startswith(prefix) and "/" not in f[len(prefix):])
        files = sorted(p for p in commit.files if p.startswith(prefix) and "/" not in p[len(prefix):])
        out: list[str] = []
        for sub in folders:
            out.append(sub)
            if recursive:
                out += self._listing(commit, sub, True)
        return out + files

    def tree(self, req: Request) -> Response:
        repo = self._readable(req, *self._repo_args(req))
        folder = req.params.get("path", "").strip("/")
        truthy = ("1", "true")
        recursive = (req.query.get("recursive") or "").lower() in truthy
        expand = (req.query.get("expand") or "").lower() in truthy
        cursor = self._decode_cursor(req.query.get("cursor"))
        with self.lock:
            commit = repo.commits.get(cursor["commit"]) if cursor else None
            commit = commit or self._commit(repo, req.params["rev"])
            if folder and folder not in commit.folders():
                raise HTTPError(404, f"{folder} does not exist on \"{req.params['rev']}\"", code="EntryNotFound",
                                headers={"X-Repo-Commit": commit.oid})
            paths = self._listing(commit, folder, recursive)
            size = self.tree_expand_page_size if expand else self.tree_page_size
            start = cursor["offset"] if cursor else 0
            page = [self._entry(repo, commit, p, expand) for p in paths[start : start + size]]
        headers = {}
        if start + size < len(paths):
            token = base64.urlsafe_b64encode(json.dumps({"commit": commit.oid, "offset": start + size}).encode())
            query = {k: v for k, v in req.query.items() if k != "cursor"} | {"cursor": token.decode()}
            headers["Link"] = f'<{self._base(req)}{req.path}?{urlencode(query)}>; rel="next"'
        return json_response(page, headers=headers)

    @staticmethod
    def _decode_cursor(raw: str | None) -> dict[str, Any] | None:
        if not raw:
            return None
        try:
            cursor = json.loads(base64.urlsafe_b64decode(raw.encode()))
            return {"commit": str(cursor["commit"]), "offset": int(cursor["offset"])}
        except (ValueError, KeyError, TypeError):
            raise HTTPError(400, "Invalid cursor") from None

    def paths_info(self, req: Request) -> Response:
        repo = self._readable(req, *self._repo_args(req))
        ctype = (req.headers.get("Content-Type") or "").lower()
        if "json" in ctype:
            body = req.json_object()
            paths, expand = body.get("paths") or [], bool(body.get("expand"))
        else:
            form = parse_qs(req.body.decode(), keep_blank_values=True)
            paths = form.get("paths", [])
            expand = (form.get("expand") or ["false"])[-1].lower() in ("1", "true")
        if isinstance(paths, str):
            paths = [paths]
        with self.lock:
            commit = self._commit(repo, req.params["rev"])
            found = [self._entry(repo, commit, str(p).strip("/"), expand) for p in paths]
        return json_response([f for f in found if f is not None])

    def list_commits(self, req: Request) -> Response:
        repo = self._readable(req, *self._repo_args(req))
        formatted = "formatted" in self._multi(req, "expand[]")
        try:
            page = max(0, int(req.query.get("p") or 0))
            limit = min(1000, max(1, int(req.query.get("limit") or self.commits_page_size)))
        except ValueError:
            raise HTTPError(400, "Invalid pagination parameters") from None
        with self.lock:
            history = repo.history(self._commit(repo, req.params["rev"]).oid)
        items = []
        for c in history[page * limit : (page + 1) * limit]:
            item: dict[str, Any] = {"id": c.oid, "title": c.title, "message": c.description,
                                    "authors": [{"user": c.author, "avatar": f"/avatars/{c.author}.svg"}],
                                    "date": rfc3339(c.date)[:23] + "Z"}
            if formatted:
                item["formatted"] = {"title": html.escape(c.title), "message": html.escape(c.description)}
            items.append(item)
        headers = {}
        if (page + 1) * limit < len(history):
            query = {k: v for k, v in req.query.items() if k != "p"} | {"p": str(page + 1)}
            headers["Link"] = f'<{self._base(req)}{req.path}?{urlencode(query)}>; rel="next"'
        return json_response(items, headers=headers)

    # -- upload: preupload, LFS batch, storage, verify, commit ----------------------------------------------------
    @staticmethod
    def _upload_mode(gitattributes: str, path: str, size: int, sample: bytes) -> str:
        if lfs_tracked(gitattributes, path) or size > LFS_SIZE_THRESHOLD or looks_binary(sample):
            return "lfs"
        return "regular"

    def _branch(self, repo: Repo, rev: str) -> Commit:
        if rev not in repo.branches:
            self._commit(repo, rev)  # an unknown rev is a 404 RevisionNotFound
            raise HTTPError(400, f"Invalid rev id: {rev} is not a branch; commits go to a branch")
        return repo.commits[repo.branches[rev]]

    def preupload(self, req: Request) -> Response:
        repo = self._writable(req, *self._repo_args(req))
        body = req.json_object()
        files = body.get("files")
        if not isinstance(files, list):
            raise HTTPError(400, "files must be an array of {path, size, sample}")
        with self.lock:
            head = self._commit(repo, req.params["rev"])
            attributes = body.get("gitAttributes")
            if not isinstance(attributes, str):
                blob = head.files.get(".gitattributes")
                attributes = blob.data.decode("utf-8", "replace") if blob else ""
            ignore = body.get("gitIgnore")
            if not isinstance(ignore, str):
                blob = head.files.get(".gitignore")
                ignore = blob.data.decode("utf-8", "replace") if blob else ""
            out = []
            for f in files:
                if not isinstance(f, dict) or not isinstance(f.get("path"), str):
                    raise HTTPError(400, "each file needs a path, a size and a base64 sample")
                path = f["path"]
                try:
                    sample = base64.b64decode(f.get("sample") or "")
                except ValueError:
                    raise HTTPError(400, f"sample of {path} is not base64") from None
                item: dict[str, Any] = {
                    "path": path, "uploadMode": self._upload_mode(attributes, path, int(f.get("size") or 0), sample),
                    "shouldIgnore": git_ignored(ignore, path),
                }
                if path in head.files:
                    item["oid"] = head.files[path].client_oid
                out.append(item)
        return json_response({"files": out})

    def _sign(self, method: str, path: str, params: Mapping[str, str]) -> str:
        canonical = method + "\n" + path + "\n" + urlencode(sorted(params.items()))
        return hmac.new(self._secret, canonical.encode(), hashlib.sha256).hexdigest()

    def _signed_url(self, base: str, method: str, path: str, params: dict[str, str]) -> str:
        params = {**params, "Expires": str(int(self.now() + self.url_ttl))}
        return f"{base}{path}?{urlencode({**params, 'Signature': self._sign(method, path, params)})}"

    def _check_signature(self, method: str, path: str, query: Mapping[str, str]) -> None:
        params = {k: v for k, v in query.items() if k != "Signature"}
        if not hmac.compare_digest(query.get("Signature", ""), self._sign(method, path, params)):
            raise HTTPError(403, "The request signature we calculated does not match the signature you provided.",
                            code="SignatureDoesNotMatch")
        if float(params.get("Expires") or 0) < self.now():
            raise HTTPError(403, "Request has expired", code="AccessDenied")

    @staticmethod
    def _object_path(repo: Repo, oid: str) -> str:
        return f"/repos/{repo.uid[:2]}/{repo.uid[2:4]}/{repo.uid}/{oid}"

    def lfs_batch(self, req: Request) -> Response:
        repo = self._writable(req, *self._repo_args(req))
        body = req.json_object()
        if body.get("operation") != "upload":
            raise HTTPError(400, "Only the upload operation is served (downloads go through /resolve)")
        transfers = body.get("transfers") or ["basic"]
        ref = (body.get("ref") or {}).get("name") if isinstance(body.get("ref"), dict) else None
        with self.lock:
            if ref is not None:
                self._branch(repo, ref)
            objects, used_multipart = [], False
            for obj in body.get("objects") or []:
                oid, size = obj.get("oid") if isinstance(obj, dict) else None, obj.get("size") if isinstance(obj, dict) else None
                out: dict[str, Any] = {"oid": oid, "size": size}
                if not isinstance(oid, str) or not _OID.match(oid) or not isinstance(size, int) or size < 0:
                    out["error"] = {"code": 422, "message": "oid must be a sha256 (64 hex) and size an integer >= 0"}
                    out["oid"], out["size"] = str(oid), size if isinstance(size, int) else -1
                elif oid in repo.lfs and len(repo.lfs[oid]) == size:
                    out["authenticated"] = True  # already stored: no actions, nothing to upload
                elif size >= self.multipart_threshold and "multipart" not in transfers:
                    out["error"] = {"code": 422, "message": f"Object of {size} bytes needs the multipart transfer"}
                else:
                    out["authenticated"] = True
                    out["actions"] = {"upload": self._upload_action(repo, oid, size), "verify": {
                        "href": f"{self._base(req)}/{repo.url_path}.git/info/lfs/objects/verify",
                        "header": {"Authorization": req.headers.get("Authorization") or ""}}}
                    used_multipart |= "chunk_size" in (out["actions"]["upload"].get("header") or {})
                objects.append(out)
        return json_response({"transfer": "multipart" if used_multipart else "basic", "objects": objects},
                             headers={"Content-Type": "application/vnd.git-lfs+json"})

    def _upload_action(self, repo: Repo, oid: str, size: int) -> dict[str, Any]:
        expires_at = rfc3339(self.now() + self.url_ttl)[:19] + "Z"
        path = self._object_path(repo, oid)
        if size < self.multipart_threshold:
            return {"href": self._signed_url(self.storage_url, "PUT", path, {"x-id": "PutObject", "size": str(size)}),
                    "expires_at": expires_at}
        upload_id = uuid.uuid4().hex
        n_parts = -(-size // self.multipart_chunk_size)
        self.multipart[upload_id] = {"repo": (repo.type, repo.id.lower()), "oid": oid, "size": size,
                                     "n_parts": n_parts, "parts": {}}
        header: dict[str, str] = {"chunk_size": str(self.multipart_chunk_size)}
        for n in range(1, n_parts + 1):
            header[f"{n:05d}"] = self._signed_url(self.storage_url, "PUT", path, {
                "x-id": "UploadPart", "uploadId": upload_id, "partNumber": str(n)})
        completion = self._signed_url("", "POST", "/api/complete_multipart", {
            "uploadId": upload_id, "bucket": "hf-hub-lfs-emulator", "prefix": path.rsplit("/", 1)[0].lstrip("/")})
        return {"href": self.url + completion, "header": header, "expires_at": expires_at}

    def complete_multipart(self, req: Request) -> Response:
        self._check_signature("POST", req.path, req.query)
        body = req.json_object()
        with self.lock:
            upload = self.multipart.get(req.query.get("uploadId", ""))
            if upload is None or body.get("oid") != upload["oid"]:
                raise HTTPError(404, "No such upload")
            parts = body.get("parts") or []
            numbers = [p.get("partNumber") for p in parts if isinstance(p, dict)]
            if numbers != list(range(1, upload["n_parts"] + 1)):
                raise HTTPError(400, f"Expected parts 1..{upload['n_parts']} in order, got {numbers}")
            for p in parts:
                data = upload["parts"].get(p["partNumber"])
                if data is None or p.get("etag") != f'"{hashlib.md5(data).hexdigest()}"':
                    raise HTTPError(400, f"Part {p['partNumber']} is missing or its etag does not match")
            data = b"".join(upload["parts"][n] for n in numbers)
            repo = self.repos.get(upload["repo"])
            if repo is None:
                raise HTTPError(404, NO_REPO, code="RepoNotFound")
            self._store_object(repo, upload["oid"], upload["size"], data, "multipart")
            del self.multipart[req.query["uploadId"]]
        return json_response({"message": "Upload completed"})

    def _store_object(self, repo: Repo, oid: str, size: int, data: bytes, transfer: str) -> None:
        if len(data) != size or hashlib.sha256(data).hexdigest() != oid:
            raise HTTPError(400, f"The uploaded content does not match sha256 {oid} / size {size}", code="BadDigest")
        repo.lfs[oid] = data
        self.lfs_uploads.append({"repo": f"{repo.type}/{repo.id}", "oid": oid, "size": size, "transfer": transfer})

    def lfs_verify(self, req: Request) -> Response:
        repo = self._writable(req, *self._repo_args(req))
        body = req.json_object()
        with self.lock:
            data = repo.lfs.get(str(body.get("oid")))
        if data is None or len(data) != body.get("size"):
            raise HTTPError(404, f"Object {body.get('oid')} of size {body.get('size')} was not uploaded")
        return json_response({"message": "Object verified"})

    def handle_storage(self, req: Request) -> Response:
        """The storage listener: signed PUT (object or part) and GET/HEAD of stored objects (faults apply)."""
        try:
            for method, pattern in self.STORAGE_ROUTES:
                m = pattern.match(req.path)
                if m and method == req.method:
                    break
            else:
                raise HTTPError(404, "The specified key does not exist.", code="NoSuchKey")
            req.route = f"{req.method} storage:/repos/{{uid}}/{{oid}}"
            with self.lock:
                self.calls[req.route] += 1
            for fault in self.faults.for_call(req.method, req.path):
                if fault.kind == "latency":
                    time.sleep(min(max(fault.seconds, 0.0), 30.0))
                elif fault.kind == "http":
                    raise self.fault_error(fault.status or 503, fault.message, fault.code or "SlowDown")
            self._check_signature("GET" if req.method == "HEAD" else req.method, req.path, req.query)
            with self.lock:
                repo = next((r for r in self.repos.values() if r.uid == m["uid"]), None)
                if repo is None:
                    raise HTTPError(404, "The specified key does not exist.", code="NoSuchKey")
                if req.method == "PUT":
                    return self._storage_put(repo, m["oid"], req)
                data = repo.lfs.get(m["oid"])
            if data is None:
                raise HTTPError(404, "The specified key does not exist.", code="NoSuchKey")
            headers = {"Content-Type": "binary/octet-stream", "ETag": f'"{hashlib.md5(data).hexdigest()}"',
                       "Last-Modified": time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(repo.created))}
            if req.query.get("response-content-disposition"):
                headers["Content-Disposition"] = req.query["response-content-disposition"]
            return self._ranged(req, data, headers)
        except HTTPError as err:
            return self.storage_error(err)
        except Exception as exc:  # an emulator bug must surface as a 500, not a hung client
            traceback.print_exc()
            return self.storage_error(HTTPError(500, f"Emulator internal error: {exc!r}"))

    def _storage_put(self, repo: Repo, oid: str, req: Request) -> Response:
        etag = f'"{hashlib.md5(req.body).hexdigest()}"'
        if req.query.get("x-id") == "UploadPart":
            upload = self.multipart.get(req.query.get("uploadId", ""))
            if upload is None or upload["oid"] != oid:
                raise HTTPError(404, "The specified upload does not exist.", code="NoSuchUpload")
            upload["parts"][int(req.query.get("partNumber") or 0)] = req.body
        else:
            self._store_object(repo, oid, int(req.query.get("size") or -1), req.body, "basic")
        return Response(200, b"", {"ETag": etag})

    def storage_error(self, err: HTTPError) -> Response:
        code = err.code or {403: "AccessDenied", 404: "NoSuchKey"}.get(err.status, "InternalError")
        body = (f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{code}</Code>'
                f"<Message>{html.escape(err.message)}</Message></Error>").encode()
        return Response(err.status, body, {"Content-Type": "application/xml", **err.headers})

    def commit(self, req: Request) -> Response:
        repo = self._writable(req, *self._repo_args(req))
        if req.query.get("create_pr") in ("1", "true"):
            raise HTTPError(501, "Pull requests are not served by the Hub emulator")
        try:
            lines = [json.loads(line) for line in req.body.decode().splitlines() if line.strip()]
        except (ValueError, UnicodeDecodeError) as exc:
            raise HTTPError(400, f"Invalid ndjson payload: {exc}") from None
        if not lines or not isinstance(lines[0], dict) or lines[0].get("key") != "header":
            raise HTTPError(400, "The first line must be the header: {\"key\": \"header\", \"value\": {...}}")
        header = lines[0].get("value") or {}
        ops = lines[1:]
        if not ops:
            raise HTTPError(400, "Add a line with the key `lfsFile`, `file` or `deletedFile`")
        who = self._who(req)
        assert who is not None  # _writable
        with self.lock:
            head = self._branch(repo, req.params["rev"])
            parent = header.get("parentCommit")
            if parent and not head.oid.startswith(str(parent)):
                raise HTTPError(412, "The branch was updated since you opened this page. Please refresh and try "
                                     "again.")
            tree = dict(head.files)
            missing_lfs: list[str] = []
            lfs_added: list[str] = []
            for op in ops:
                key, value = (op.get("key"), op.get("value")) if isinstance(op, dict) else (None, None)
                if not isinstance(value, dict) or not isinstance(value.get("path"), str):
                    raise HTTPError(400, f"Invalid operation line: {json.dumps(op)[:200]}")
                path = self._valid_path(value["path"].rstrip("/") if key == "deletedFolder" else value["path"])
                if key == "file":
                    tree[path] = Blob.of(self._file_content(path, value), False)
                elif key == "lfsFile":
                    oid = value.get("oid")
                    data = repo.lfs.get(oid) if isinstance(oid, str) else None
                    if data is None or ("size" in value and value["size"] != len(data)):
                        missing_lfs.append(path)
                        continue
                    tree[path] = Blob.of(data, True)
                    lfs_added.append(path)
                elif key in ("deletedFile", "deletedFolder"):
                    below = [p for p in tree if p.startswith(path + "/")]
                    if key == "deletedFile" and path in tree:
                        del tree[path]
                    elif below:
                        for p in below:
                            del tree[p]
                    else:
                        what = "file" if key == "deletedFile" else "folder"
                        raise HTTPError(404, f"A {what} with this name doesn't exist: {path}", code="EntryNotFound")
                else:
                    raise HTTPError(400, "Add a line with the key `lfsFile`, `file` or `deletedFile`")
            if missing_lfs:
                raise HTTPError(400, "Your push was rejected because an LFS pointer pointed to a file that does not "
                                     "exist. For instance, this can happen if you used git push --no-verify to push "
                                     "your changes. Offending file: " + " ".join(f"- {p}" for p in missing_lfs))
            self._track_lfs(tree, lfs_added)
            commit = self._add_commit(repo, req.params["rev"], tree, str(header.get("summary") or "").strip()
                                      or "Update files", str(header.get("description") or ""), who.user)
        return json_response({"success": True, "commitOid": commit.oid, "hookOutput": "",
                              "commitUrl": f"{self._base(req)}/{repo.url_path}/commit/{commit.oid}"})

    @staticmethod
    def _valid_path(path: str) -> str:
        parts = re.split(r"[/\\]", path)
        if not path or path.startswith("/") or any(p in ("", ".", "..") for p in parts[:-1]) \
                or parts[-1] in ("", ".", "..") or ".git" in parts:
            raise HTTPError(422, f"Invalid path in repository: {path!r}")
        return path

    @staticmethod
    def _file_content(path: str, value: dict[str, Any]) -> bytes:
        content = value.get("content")
        if not isinstance(content, str):
            raise HTTPError(400, f"file {path} has no content")
        try:
            data = base64.b64decode(content, validate=True) if value.get("encoding") == "base64" else content.encode()
        except ValueError:
            raise HTTPError(400, f"content of {path} is not valid base64") from None
        if len(data) > LFS_SIZE_THRESHOLD:
            raise HTTPError(400, "Your push was rejected because it contains files larger than 10 MiB. Please use "
                                 f"https://git-lfs.github.com/ to store large files. Offending file: {path}")
        if len(data) > BINARY_REGULAR_LIMIT and looks_binary(data[:8000]):
            raise HTTPError(400, "Your push was rejected because it contains binary files. Please use "
                                 f"https://huggingface.co/docs/hub/xet to store binary files. Offending file: {path}")
        return data

    @staticmethod
    def _track_lfs(tree: dict[str, Blob], lfs_added: list[str]) -> None:
        """Append a ``{path} filter=lfs ...`` line for LFS files ``.gitattributes`` does not track yet."""
        attributes = tree[".gitattributes"].data.decode("utf-8", "replace") if ".gitattributes" in tree else ""
        extra = [p for p in lfs_added if not lfs_tracked(attributes, p)]
        if extra:
            text = attributes + ("" if not attributes or attributes.endswith("\n") else "\n")
            text += "".join(f"{p.replace(' ', '[[:space:]]')} {LFS_LINE}\n" for p in extra)
            tree[".gitattributes"] = Blob.of(text.encode(), False)

    def _add_commit(self, repo: Repo, branch: str | None, tree: dict[str, Blob], title: str, description: str,
                    author: str) -> Commit:
        parent = repo.branches.get(branch) if branch else None
        date = max(self.now(), repo.commits[parent].date + 0.001) if parent else self.now()
        commit = Commit("", parent, title, description, author, date, tree)
        stamp = f"{author} <{author}@users.noreply.huggingface.co> {int(date)} +0000"
        raw = (f"tree {commit.folders()['']}\n" + (f"parent {parent}\n" if parent else "")
               + f"author {stamp}\ncommitter {stamp}\n\n{commit.message}\n").encode()
        commit.oid = hashlib.sha1(b"commit %d\0" % len(raw) + raw).hexdigest()
        repo.commits[commit.oid] = commit
        repo.branches[branch or "main"] = commit.oid
        before = repo.commits[parent].files if parent else {}
        changed = sorted(p for p in set(before) | set(tree) if (before.get(p) or None) != (tree.get(p) or None))
        self.commit_log.append({"repo": f"{repo.type}/{repo.id}", "id": commit.oid, "title": title,
                                "changed": changed})
        return commit

    # -- resolve --------------------------------------------------------------------------------------------------
    def resolve(self, req: Request) -> Response:
        repo = self._readable(req, *self._repo_args(req))
        path = req.params["path"]
        with self.lock:
            commit = self._commit(repo, req.params["rev"])
            blob = commit.files.get(path)
        headers = {"X-Repo-Commit": commit.oid, "Accept-Ranges": "bytes", "X-Request-Id": uuid.uuid4().hex,
                   "Vary": "Origin, Accept"}
        if blob is None:
            raise HTTPError(404, "Entry not found", code="EntryNotFound", headers={"X-Repo-Commit": commit.oid})
        name = Path(path).name
        disposition = f"inline; filename*=UTF-8''{quote(name)}; filename=\"{name}\";"
        if blob.lfs:
            location = self._signed_url(self.storage_url, "GET", self._object_path(repo, blob.sha256),
                                        {"response-content-disposition": disposition})
            body = f"Found. Redirecting to {location}".encode()
            return Response(302, body, {**headers, "Location": location, "ETag": f'"{blob.oid}"',
                                        "X-Linked-Etag": f'"{blob.sha256}"', "X-Linked-Size": str(blob.size),
                                        "Content-Type": "text/plain; charset=utf-8"})
        ctype = (mimetypes.guess_type(name)[0] or "application/octet-stream") if looks_binary(blob.data[:8000]) \
            else "text/plain; charset=utf-8"
        headers.update({"ETag": f'"{blob.oid}"', "Content-Type": ctype, "Content-Disposition": disposition})
        return self._ranged(req, blob.data, headers)

    @staticmethod
    def _ranged(req: Request, data: bytes, headers: dict[str, str]) -> Response:
        """200 with ``data``, or 206 for a single ``Range: bytes=a-b`` / ``a-`` / ``-n`` (416 past the end)."""
        spec = (req.headers.get("Range") or "").strip()
        m = re.fullmatch(r"bytes=(\d*)-(\d*)", spec)
        if not m or (not m[1] and not m[2]):
            return Response(200, data, {**headers, "Accept-Ranges": "bytes"})
        size = len(data)
        if m[1]:
            start, end = int(m[1]), min(int(m[2]) if m[2] else size - 1, size - 1)
        else:
            start, end = max(0, size - int(m[2])), size - 1
        if start >= size or start > end:
            return Response(416, b"", {**headers, "Content-Range": f"bytes */{size}"})
        return Response(206, data[start : end + 1], {**headers, "Accept-Ranges": "bytes",
                                                      "Content-Range": f"bytes {start}-{end}/{size}"})


def use_hub(monkeypatch: Any, emu: HubEmulator, cache_dir: str | Path, *, token: str | None = "hf_test_token") -> None:
    """Make ``HfApi()``, ``hf_hub_download``, ``HfFileSystem`` and ``datasets.load_dataset`` talk to ``emu`` only.

    ``huggingface_hub`` and ``datasets`` read ``HF_ENDPOINT``, cache dirs and switches into module constants at
    import time, so the environment (for subprocesses) and the constants (for this process) are both set, through
    ``monkeypatch`` so everything is undone at teardown. Caches and the token file live under ``cache_dir``; the
    user's ``~/.cache/huggingface`` and stored token are neither read nor written. ``token`` becomes ``HF_TOKEN``
    (None: no token at all). Also set: ``HF_HUB_DISABLE_XET=1`` (the client picks Xet on its own whenever
    ``hf_xet`` is installed and the emulator has no Xet storage), telemetry off (no agent-registry fetch),
    ``datasets`` download counting off (a HEAD to s3.amazonaws.com) and ``datasets.config.USE_PARQUET_EXPORT``
    off (the dataset viewer is another service, at ``datasets-server.<host>``; for a freshly pushed repo it has
    no export either, which is the path this takes).
    """
    import huggingface_hub
    from huggingface_hub import constants
    from huggingface_hub.utils import _http

    root = Path(cache_dir)
    home = root / "hf_home"
    hub_cache = home / "hub"
    datasets_cache = home / "datasets"
    env = {"HF_ENDPOINT": emu.url, "HF_HOME": str(home), "HF_HUB_CACHE": str(hub_cache),
           "HF_DATASETS_CACHE": str(datasets_cache), "HF_XET_CACHE": str(home / "xet"),
           "HF_TOKEN_PATH": str(home / "token"), "HF_HUB_DISABLE_XET": "1", "HF_HUB_DISABLE_TELEMETRY": "1",
           "HF_UPDATE_DOWNLOAD_COUNTS": "0", "HF_HUB_DISABLE_UPDATE_CHECK": "1", "HF_HUB_OFFLINE": "0",
           "HF_DATASETS_OFFLINE": "0"}
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    for key in ("HUGGING_FACE_HUB_TOKEN", "HF_OIDC_RESOURCE", "HUGGINGFACE_HUB_CACHE", "TRANSFORMERS_OFFLINE",
                "HUGGINGFACE_CO_STAGING", "HF_HUB_DISABLE_IMPLICIT_TOKEN", "HF_HUB_ENABLE_HF_TRANSFER"):
        monkeypatch.delenv(key, raising=False)
    if token is None:
        monkeypatch.delenv("HF_TOKEN", raising=False)
    else:
        monkeypatch.setenv("HF_TOKEN", token)

    host = urlsplit(emu.url).hostname or emu.host
    for name, value in {
        "ENDPOINT": emu.url, "HUGGINGFACE_CO_URL_TEMPLATE": emu.url + "/{repo_id}/resolve/{revision}/{filename}",
        "HF_URL_HOSTS": constants.HF_URL_HOSTS | {host}, "HF_HOME": str(home), "default_cache_path": str(hub_cache),
        "HF_HUB_CACHE": str(hub_cache), "HUGGINGFACE_HUB_CACHE": str(hub_cache),
        "HF_ASSETS_CACHE": str(home / "assets"), "HUGGINGFACE_ASSETS_CACHE": str(home / "assets"),
        "HF_XET_CACHE": str(home / "xet"), "HF_TOKEN_PATH": str(home / "token"),
        "HF_STORED_TOKENS_PATH": str(home / "stored_tokens"), "AGENT_HARNESSES_PATH": str(home / ".agent_harnesses.json"),
        "CHECK_FOR_UPDATE_DONE_PATH": str(home / ".check_for_update_done"), "HF_HUB_DISABLE_XET": True,
        "HF_HUB_OFFLINE": False, "HF_HUB_DISABLE_TELEMETRY": True, "HF_HUB_DISABLE_IMPLICIT_TOKEN": False,
    }.items():
        if hasattr(constants, name):
            monkeypatch.setattr(constants, name, value)
    monkeypatch.setattr(_http, "_HUB_ORIGINS", _http._HUB_ORIGINS | {_http._url_origin(emu.url)})
    huggingface_hub.HfFileSystem.clear_instance_cache()  # instances are cached per (endpoint, token)

    try:
        from datasets import config as ds_config
    except ImportError:  # datasets is a test-only dependency
        return
    for name, value in {
        "HF_ENDPOINT": emu.url, "HUB_DATASETS_URL": emu.url + "/datasets/{repo_id}/resolve/{revision}/{path}",
        "HF_CACHE_HOME": str(home), "HF_DATASETS_CACHE": datasets_cache, "HF_MODULES_CACHE": home / "modules",
        "DOWNLOADED_DATASETS_PATH": datasets_cache / "downloads",
        "EXTRACTED_DATASETS_PATH": datasets_cache / "downloads" / "extracted", "HF_HUB_OFFLINE": False,
        "HF_DATASETS_OFFLINE": False, "HF_UPDATE_DOWNLOAD_COUNTS": False, "USE_PARQUET_EXPORT": False,
    }.items():
        if hasattr(ds_config, name):
            monkeypatch.setattr(ds_config, name, value)
