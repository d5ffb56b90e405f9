"""`datafast push`: the collected rows of an output dir, split and published to the Hugging Face Hub.

What is uploaded (and what `--dry-run DIR2` writes, byte for byte):
```
README.md                              the dataset card (datafast.card): Hub metadata + how the data was made
data/<split>-NNNNN-of-NNNNN.parquet    the final rows, one file set per split, sharded by `max_shard_bytes`
spec.yaml                              the normalized spec: `datafast compile spec.yaml` rebuilds the manifest
manifest.json                          the first stage's manifest summary; stages/<stage>/manifest.json the rest
```
Splits are deterministic and stable: a row's split depends only on the seed and its group key (the
`split_by` column, default the source document for mcq and preference, else the row id), never on the other
rows, so pushing again after more rows were collected moves no row between train and test, and rows of the
same document are never on both sides. Everything written is a function of the rows and the output dir
(no clock), so pushing the same rows again uploads nothing and makes no commit (the client skips files
whose content the Hub already has).

The token comes from `HF_TOKEN` or huggingface_hub's own login (`hf auth login`) and is checked (whoami)
before any work; it is passed to the client only, never written or logged.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import shutil
import tempfile
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import yaml

from datafast.compiler import __version__
from datafast.compiler.hashing import stable_unit
from datafast.compiler.pricing import PriceTable

from . import card
from .export import RowSchema, write_parquet
from .logs import get_logger
from .outdir import STAGES_DIR, BadInput, OutputDir

log = get_logger("push")

DEFAULT_SPLIT_BY = {"mcq": "source_document", "preference": "input_document"}
MAX_SHARD_BYTES = 500 * 1024 * 1024  # of JSON row text per shard; the Hub's viewer and `datasets` like < 1 GB
SHARD_PATTERN = "data/*-of-*.parquet"  # what an earlier push wrote and a new one replaces
BATCH_RUNTIMES = ("openai", "anthropic", "gemini")
LOCAL_RUNTIMES = ("ollama", "local")
# per dataset type: stage name (or its prefix before "-") -> the spec key holding its custom prompt(s)
CUSTOM_PROMPT_KEYS = {
    "conversation": {"opening": "persona_question_reformulation_prompt", "assistant": "simulated_assistant_prompt",
                     "user": "user_followup_prompt"},
    "mcq": {"distractors": "distractor_prompt"},
    "preference": {"chosen": "chosen_response_generation_prompt", "rejected": "rejected_response_generation_prompt",
                   "judge": "judge_prompt"},
}
_REPO_PART = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?$")
DRY_RUN_NAMES = {"README.md", "spec.yaml", "manifest.json", "data", STAGES_DIR}


@dataclass(frozen=True)
class SplitOptions:
    """How rows are split. `train_size` None: one `train` split; else the share of groups in `train`
    (0 < train_size < 1). `split_by`: the column grouping rows ("" = the row id; None = the type's default).
    `shuffle`: rows within a split ordered by a hash of (seed, row id) instead of the dataset's order."""

    train_size: float | None = None
    seed: int = 0
    shuffle: bool = True
    split_by: str | None = None

    def check(self) -> None:
        if self.train_size is not None and not 0 < self.train_size < 1:
            raise BadInput(f"--train-size {self.train_size}: must be between 0 and 1 (exclusive), e.g. 0.8 "
                           "for 80% train and 20% test")


@dataclass
class PushResult:
    """What a push did. `commit` is None when nothing changed on the Hub (or for a dry run)."""

    repo_id: str
    folder: str  # the folder uploaded (a temporary one, removed after the upload) or the dry-run dir
    splits: dict[str, int]
    files: list[str]
    dry_run: bool
    url: str = ""
    commit: str | None = None
    unchanged: bool = False
    warnings: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def check_repo_id(repo_id: str) -> str:
    """`USER/NAME` or `ORG/NAME` as the Hub accepts it; BadInput (exit 2) with the expected form otherwise."""
    parts = repo_id.split("/")
    ok = len(parts) == 2 and all(_REPO_PART.match(p) and ".." not in p and "--" not in p for p in parts) \
        and len(parts[1]) <= 96
    if not ok:
        raise BadInput(f"--repo {repo_id!r}: expected NAMESPACE/NAME (your user or organization, then the dataset "
                       "name), e.g. my-user/sentiment-reviews; letters, digits, '-', '_' and '.', at most 96 "
                       "characters in the name, not starting or ending with '-' or '.'")
    return repo_id


def _token(token: str | None) -> str:
    from huggingface_hub import get_token

    found = token or get_token()
    if not found:
        raise BadInput("no Hugging Face token: set HF_TOKEN (a write token from huggingface.co/settings/tokens) "
                       "or run `hf auth login`; `--dry-run DIR` writes what would be uploaded without one")
    return found


def _transport_errors() -> tuple[type[BaseException], ...]:
    """The connection-level errors of whichever HTTP stack huggingface_hub uses (httpx2 in 2.x, httpx in 1.x,
    requests before)."""
    found: list[type[BaseException]] = []
    for module, name in (("httpx2", "TransportError"), ("httpx", "TransportError"), ("requests", "ConnectionError")):
        try:
            found.append(getattr(__import__(module), name))
        except (ImportError, AttributeError):
            continue
    return tuple(found)


def _unreachable(api: Any, exc: BaseException) -> Exception:
    from datafast.runtimes import RuntimeFailure

    return RuntimeFailure("hub", f"cannot reach the Hub at {api.endpoint} ({type(exc).__name__}: {exc}); check "
                                 "the network, or HF_ENDPOINT if you set it; nothing was committed")


def _check_access(api: Any, repo_id: str, token: str) -> str:
    """whoami with the token; BadInput if the Hub refuses it or the namespace is not the user's or one of
    their organizations. Returns the user name."""
    from huggingface_hub.errors import HfHubHTTPError

    try:
        who = api.whoami(token=token)
    except _transport_errors() as exc:
        raise _unreachable(api, exc) from None
    except HfHubHTTPError as exc:
        status = exc.response.status_code if exc.response is not None else None
        if status in (401, 403):
            raise BadInput(f"the Hugging Face token was refused by {api.endpoint} (HTTP {status}): check HF_TOKEN "
                           "or run `hf auth login` again") from None
        raise
    namespaces = {who.get("name")} | {org.get("name") for org in who.get("orgs") or ()}
    namespace = repo_id.split("/")[0]
    if namespace not in namespaces:
        raise BadInput(f"--repo {repo_id}: the token belongs to {who.get('name')!r}, who cannot write to "
                       f"{namespace!r}; namespaces you can push to: {', '.join(sorted(n for n in namespaces if n))}")
    return str(who.get("name"))


# -- splitting -------------------------------------------------------------------------------------------
@dataclass
class _Plan:
    """Pass one over dataset.jsonl: where each row is, its split and order, the schema and the counts."""

    offsets: list[int] = field(default_factory=list)
    sizes: list[int] = field(default_factory=list)
    order: list[float] = field(default_factory=list)
    groups: list[str] = field(default_factory=list)
    schema: RowSchema = field(default_factory=RowSchema)
    counts: dict[str, Counter[str]] = field(default_factory=lambda: {k: Counter() for k in ("label", "language",
                                                                                            "model")})


def _scan(path: Path, options: SplitOptions, split_by: str) -> _Plan:
    plan = _Plan()
    offset = 0
    with open(path, "rb") as fh:
        for number, line in enumerate(fh, 1):
            size = len(line)
            if line.strip():
                try:
                    row = orjson.loads(line)
                except orjson.JSONDecodeError as exc:
                    raise BadInput(f"{path}:{number}: not a JSON row ({exc}); run `datafast collect` again") from None
                if split_by and split_by not in row:
                    raise BadInput(f"--split-by {split_by}: row {number} of {path} has no such column; columns: "
                                   + ", ".join(row))
                row_id = str(row.get("row_id", number))
                plan.offsets.append(offset)
                plan.sizes.append(size)
                plan.groups.append(_group_key(row[split_by]) if split_by else row_id)
                plan.order.append(stable_unit(options.seed, "order", row_id) if options.shuffle else len(plan.order))
                plan.schema.add(row)
                label = row.get("label") or row.get("topic")
                if label is not None:
                    plan.counts["label"][str(label)] += 1
                if row.get("language") is not None:
                    plan.counts["language"][str(row["language"])] += 1
                if row.get("model") is not None:
                    plan.counts["model"][str(row["model"])] += 1
            offset += size
    return plan


def _group_key(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True, ensure_ascii=False)


def assign_splits(groups: list[str], options: SplitOptions) -> list[str]:
    """The split of each row: `train`, or `test` when the group's hash of (seed, key) is >= train_size.

    With two groups or more, neither split is left empty: the group with the highest hash moves to test (or
    the lowest to train); a single group is all train. A row's split depends on its own group alone otherwise.
    """
    if options.train_size is None:
        return ["train"] * len(groups)
    unit = {key: stable_unit(options.seed, "split", key) for key in set(groups)}
    test = {key for key, u in unit.items() if u >= options.train_size}
    if len(unit) == 1:  # one group cannot be split: it is the train split
        test = set()
    elif not test:
        test = {max(unit, key=lambda k: (unit[k], k))}
    elif len(test) == len(unit):
        test.discard(min(unit, key=lambda k: (unit[k], k)))
    return ["test" if g in test else "train" for g in groups]


# -- the folder ------------------------------------------------------------------------------------------
def build_folder(od: OutputDir, folder: Path, repo_id: str, options: SplitOptions, report: Any,
                 max_shard_bytes: int = MAX_SHARD_BYTES, card_file: bool = True
                 ) -> tuple[dict[str, int], list[str], list[str]]:
    """Write the upload folder (see the module docstring) into the empty dir `folder`.

    Returns (rows per split, files written relative to `folder`, warnings).
    """
    spec = od.spec
    split_by = options.split_by if options.split_by is not None else DEFAULT_SPLIT_BY.get(spec.type, "")
    source = Path(report.output)
    plan = _scan(source, options, split_by)
    splits = assign_splits(plan.groups, options)
    names = ["train", "test"] if options.train_size is not None else ["train"]
    files: list[str] = []
    counts: dict[str, int] = {}
    warnings: list[str] = []
    with open(source, "rb") as fh:
        for name in names:
            members = sorted((i for i, s in enumerate(splits) if s == name), key=lambda i: (plan.order[i], i))
            if not members:  # one group only: the card declares no empty split
                warnings.append(f"split {name!r} is empty: all rows share one value of "
                                f"{split_by or 'the row id'}; pushed as one split")
                continue
            counts[name] = len(members)
            shards = max(1, math.ceil(sum(plan.sizes[i] for i in members) / max_shard_bytes))
            for shard in range(shards):
                part = members[shard * len(members) // shards:(shard + 1) * len(members) // shards]
                rel = f"data/{name}-{shard:05d}-of-{shards:05d}.parquet"
                write_parquet(_read_at(fh, plan, part), folder / rel, plan.schema, label=f"{source} ({name})")
                files.append(rel)
    if plan.schema.json_columns:
        warnings.append("columns stored as JSON text (values of different types across rows): "
                        + ", ".join(plan.schema.json_columns))
    files += _write_provenance(od, folder)
    if card_file:
        facts = _facts(od, repo_id, options, split_by, report, plan, counts)
        (folder / "README.md").write_text(card.render(facts), encoding="utf-8")
        files.append("README.md")
    return counts, sorted(files), warnings


def _read_at(fh: Any, plan: _Plan, rows: list[int]) -> Iterator[dict[str, Any]]:
    for i in rows:
        fh.seek(plan.offsets[i])
        yield orjson.loads(fh.read(plan.sizes[i]))


def _write_provenance(od: OutputDir, folder: Path) -> list[str]:
    spec_text = yaml.safe_dump(od.manifest.data["spec"], sort_keys=False, allow_unicode=True, width=110)
    (folder / "spec.yaml").write_text(f"# the normalized spec of {od.manifest.name} (datafast {__version__})\n"
                                      + spec_text, encoding="utf-8")
    written = ["spec.yaml", "manifest.json"]
    shutil.copyfile(od.path / "manifest.json", folder / "manifest.json")
    for stage in od.stage_names[1:]:
        if od.stage_manifest(stage) is not None:
            rel = f"{STAGES_DIR}/{stage}/manifest.json"
            (folder / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(od.stage_dir(stage) / "manifest.json", folder / rel)
            written.append(rel)
    return written


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _facts(od: OutputDir, repo_id: str, options: SplitOptions, split_by: str, report: Any, plan: _Plan,
           counts: dict[str, int]) -> card.CardFacts:
    spec = od.spec
    data = od.manifest.data
    if options.train_size is None:
        rule = "One split, `train`."
    else:
        key = f"the `{split_by}` column" if split_by else "the row id"
        rule = (f"Split by a hash of {key} with seed {options.seed}, train_size {options.train_size}: the same rows "
                "and seed give the same split on any machine, a row's split never depends on the other rows, and "
                + ("rows sharing a value of the column are always in the same split." if split_by else
                   "rows are assigned one by one."))
    arrow = plan.schema.arrow()
    return card.CardFacts(
        repo_id=repo_id, name=od.manifest.name, type=spec.type, description=spec.description,
        languages=dict(spec.languages), license=getattr(spec, "license", None),
        datafast_version=str(data.get("datafast_version", __version__)), spec_hash=od.manifest.spec_hash,
        manifest_sha256=_sha256(od.path / "manifest.jsonl"), splits=counts, split_rule=rule,
        columns=[(f.name, str(f.type)) for f in arrow], json_columns=plan.schema.json_columns,
        stages=[_stage_facts(od, s.name, s.role, report) for s in od.manifest.stages],
        generation=spec.generation.model_dump(), expansion=spec.expansion.model_dump(),
        source=_source(spec), rows_by={k: dict(v) for k, v in plan.counts.items() if v},
        rejects_by_reason=dict(report.reasons), items=report.items, usage=report.usage,
        prices_checked=PriceTable.load().checked,
    )


def _stage_facts(od: OutputDir, name: str, role: str, report: Any) -> card.StageFacts:
    spec = od.spec
    models = list(spec.models.get(role, ()) if isinstance(spec.models, dict) else spec.models)
    modes = []
    for model in models:
        runtime = model.partition(":")[0]
        modes.append("local" if runtime in LOCAL_RUNTIMES else
                     "online" if runtime not in BATCH_RUNTIMES or spec.online_for(role) else "batch")
    counts = report.stages.get(name, {})
    example: list[dict[str, str]] = []
    if od.stage_manifest(name) is not None:
        for request in od.requests(name):
            example = list(request["messages"])
            break
    return card.StageFacts(name, role, models, ", ".join(dict.fromkeys(modes)),
                           int(counts.get("requests", 0)), int(counts.get("with_rows", 0)),
                           int(counts.get("rejected", 0)), int(counts.get("pending", 0)),
                           _custom_prompts(od, name), example)


def _custom_prompts(od: OutputDir, stage: str) -> list[str] | None:
    spec = od.spec
    if stage == od.first_stage:
        return list(spec.prompts) if spec.prompts else None
    keys = CUSTOM_PROMPT_KEYS.get(spec.type, {})
    key = keys.get(stage) or keys.get(stage.split("-")[0])
    value = getattr(spec, key, None) if key else None
    return [value] if value else None


def _source(spec: Any) -> str | None:
    source = getattr(spec, "source", None)
    if source is None:
        return None
    if source.file:
        return (f"the file `{source.file}` named in the spec (not included in this repository; to reproduce, "
                "place it at that path relative to spec.yaml)")
    if source.hf_dataset:
        pin = f" at revision `{source.revision}`" if source.revision else ""
        return f"the Hub dataset `{source.hf_dataset}` (split `{source.split}`{pin})"
    return None


# -- push ------------------------------------------------------------------------------------------------
def push(out_dir: str | Path, repo_id: str, *, private: bool | None = None, options: SplitOptions | None = None,
         dry_run: str | Path | None = None, token: str | None = None, commit_message: str | None = None,
         max_shard_bytes: int = MAX_SHARD_BYTES, prices: str | Path | None = None,
         update_visibility: bool = False, card_file: bool = True) -> PushResult:
    """Collect the output dir, then upload its rows (split), spec, manifest summary and card to `repo_id`.

    Args:
        repo_id: `NAMESPACE/NAME` of a dataset repo; created if missing (private unless `private=False`).
        update_visibility: also set an existing repo's visibility to `private` (the CLI's explicit
            --private/--public); otherwise an existing repo keeps its visibility.
        card_file: upload README.md (without it the Hub and `datasets` read the splits from the file names).
        dry_run: write exactly the folder that would be uploaded there, send nothing (no token needed).
        token: default `HF_TOKEN` or huggingface_hub's login.
    Returns:
        PushResult; `unchanged` when the Hub already had exactly these files (no commit was made).
    Raises:
        BadInput (exit 2): repo id, split size, missing/refused token, namespace not writable, no rows
            collected, a non-empty dry-run dir; checked before anything is uploaded.
    """
    from .dataset import collect_to

    options = options or SplitOptions()
    options.check()
    check_repo_id(repo_id)
    if max_shard_bytes < 1:
        raise BadInput(f"max shard size {max_shard_bytes}: must be at least 1 byte")
    od = OutputDir.open(out_dir)
    api = None
    if dry_run is None:
        from huggingface_hub import HfApi

        secret = _token(token)
        api = HfApi(token=secret)
        _check_access(api, repo_id, secret)
    target = _dry_run_dir(Path(dry_run)) if dry_run is not None else None
    report = collect_to(od.path, prices=prices)
    if report.rows == 0:
        raise BadInput(f"{od.path}: no rows collected ({report.requests:,} requests: {report.with_rows:,} with rows, "
                       f"{report.rejected:,} rejected, {report.pending:,} pending); run `datafast submit "
                       f"{od.path} --wait` first, then push")
    if target is not None:
        staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
        try:  # built aside, then moved into place: a failed export leaves no partial folder
            splits, files, warnings = build_folder(od, staging, repo_id, options, report, max_shard_bytes,
                                                   card_file)
            if target.exists():
                shutil.rmtree(target)
            staging.rename(target)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        return PushResult(repo_id, str(target), splits, files, True, warnings=warnings)
    assert api is not None
    with tempfile.TemporaryDirectory(prefix=".datafast-push-", dir=od.path) as tmp:
        splits, files, warnings = build_folder(od, Path(tmp), repo_id, options, report, max_shard_bytes,
                                               card_file)
        return _upload(api, Path(tmp), repo_id, private, update_visibility, splits, files, warnings,
                       commit_message or _message(splits, od))


def _message(splits: dict[str, int], od: OutputDir) -> str:
    sizes = ", ".join(f"{name} {rows:,}" for name, rows in splits.items())
    return f"datafast push: {sum(splits.values()):,} rows ({sizes}), spec {od.manifest.spec_hash[:8]}"


def _dry_run_dir(target: Path) -> Path:
    """Check the dry-run dir: missing, empty or an earlier dry run's (replaced); BadInput otherwise."""
    if target.exists():
        if not target.is_dir():
            raise BadInput(f"--dry-run {target}: is a file; name a directory (created if missing)")
        others = sorted(p.name for p in target.iterdir() if p.name not in DRY_RUN_NAMES)
        if others:
            raise BadInput(f"--dry-run {target}: not empty ({', '.join(others[:5])}); name a new or empty "
                           "directory, or an earlier dry run's")
    target.parent.mkdir(parents=True, exist_ok=True)
    return target


def _upload(api: Any, folder: Path, repo_id: str, private: bool | None, update_visibility: bool,
            splits: dict[str, int], files: list[str], warnings: list[str], message: str) -> PushResult:
    from huggingface_hub.errors import HfHubHTTPError, RepositoryNotFoundError

    from datafast.runtimes import RuntimeFailure

    try:
        try:
            before = api.repo_info(repo_id, repo_type="dataset").sha
            if update_visibility and private is not None:
                api.update_repo_settings(repo_id, private=private, repo_type="dataset")
        except RepositoryNotFoundError:
            before = None
            api.create_repo(repo_id, repo_type="dataset", private=True if private is None else private,
                            exist_ok=True)
        info = api.upload_folder(folder_path=str(folder), repo_id=repo_id, repo_type="dataset",
                                 commit_message=message, delete_patterns=[SHARD_PATTERN, f"{STAGES_DIR}/**"])
    except _transport_errors() as exc:
        raise _unreachable(api, exc) from None
    except HfHubHTTPError as exc:  # the client's message names the URL and the Hub's own reason
        raise RuntimeFailure("hub", f"push to {repo_id} failed, nothing was committed ({exc}); run the same "
                                    "command again") from None
    commit = getattr(info, "oid", None)
    unchanged = before is not None and commit == before
    url = f"{api.endpoint}/datasets/{repo_id}"
    return PushResult(repo_id, str(folder), splits, files, False, url=url, commit=None if unchanged else commit,
                      unchanged=unchanged, warnings=warnings)
