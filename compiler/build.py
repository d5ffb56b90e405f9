"""Spec -> manifest.jsonl + manifest.json (+ vendor job files): the compile pipeline, streaming."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import __version__
from .caching import count_cache
from .checks import check_spec
from .errors import SpecError, SpecIssue
from .hashing import content_hash
from .loader import LineMap, LoadedSpec, load_spec
from .pricing import PriceTable, estimate_input_tokens, estimate_output_tokens
from .requests import IdAssigner, expand_requests, schema_key
from .spec import DatasetConfigBase
from .stages import BuildContext, Row, Stage, stages_for
from .stages.base import slot_count
from .vendors import RENDERERS

MANIFEST_FORMAT = 1


@dataclass
class Prepared:
    """A spec that passed every check, with where it came from."""

    spec: DatasetConfigBase
    base_dir: Path
    lines: LineMap
    warnings: list[SpecIssue]
    prompts: int  # expanded first-stage prompts, before models

    @property
    def stages(self) -> list[Stage]:
        return stages_for(self.spec)

    def stage(self, name: str) -> Stage:
        for stage in self.stages:
            if stage.name == name:
                return stage
        raise KeyError(f"no stage {name!r}; stages: {', '.join(s.name for s in self.stages)}")


def prepare(spec_or_path: DatasetConfigBase | LoadedSpec | str | Path, base_dir: Path | None = None) -> Prepared:
    """Load (if a path) and check a spec; raise SpecError listing every problem, located.

    Args:
        spec_or_path: a config object, a loaded spec or the path of a YAML/JSON spec file.
        base_dir: where relative source paths start for a config object (default: the working directory).
    """
    if isinstance(spec_or_path, (str, Path)):
        loaded = load_spec(spec_or_path)
    elif isinstance(spec_or_path, LoadedSpec):
        loaded = spec_or_path
    else:
        loaded = LoadedSpec(spec_or_path, (base_dir or Path.cwd()).resolve(), LineMap(None))
    checked = check_spec(loaded.config, loaded.base_dir)
    if checked.errors:
        raise SpecError([loaded.lines.issue(path, msg) for path, msg in checked.errors])
    return Prepared(loaded.config, loaded.base_dir, loaded.lines,
                    [loaded.lines.issue(p, m) for p, m in checked.warnings], checked.prompts)


def stage_requests(prepared: Prepared, stage: Stage, inputs: Mapping[str, Iterable[Row]] | None = None,
                   ids: IdAssigner | None = None) -> Iterator[dict[str, Any]]:
    """The requests of one stage; later stages need the rows of the stages they read (`stage.inputs`)."""
    return (request for request, _ in stage_request_lines(prepared, stage, inputs, ids))


def stage_request_lines(prepared: Prepared, stage: Stage, inputs: Mapping[str, Iterable[Row]] | None = None,
                        ids: IdAssigner | None = None) -> Iterator[tuple[dict[str, Any], bytes]]:
    """Like `stage_requests`, each request with its manifest.jsonl line (canonical JSON and newline)."""
    spec = prepared.spec
    # by document, then row id: requests sharing a document (a prompt-cache prefix) sit together (caching.py)
    rows = {name: sorted(inputs[name], key=lambda r: (str(r.get("document") or ""), r["row_id"]))
            for name in stage.inputs} if inputs else {}
    missing = [name for name in stage.inputs if name not in rows]
    if missing:
        raise ValueError(f"stage {stage.name!r} needs the rows of {', '.join(missing)}")
    base = stage.build(spec, BuildContext(prepared.base_dir), rows)
    return expand_requests(stage.name, schema_key(stage.name, stage.schema), base, spec.expansion,
                           spec.generation.params(), ids or IdAssigner(), stage.documents,
                           long_ttl_from(spec, stage))


# auto: a batch may take longer than the 5-minute cache to reach all the requests of a prefix (Anthropic
# suggests the 1-hour cache for batches with shared context); 1h writes cost 2x the input price, so only
# prefixes read at least twice pay for it (2 + 0.1 + 0.1 < 3 uncached), where 5m costs 1.25 per write
AUTO_LONG_TTL_FROM = 3


def long_ttl_from(spec: DatasetConfigBase, stage: Stage) -> int | None:
    """From how many requests sharing a prefix the stage's Anthropic requests use the 1-hour cache
    (`prompt_cache_ttl`): 2 with 1h, none with 5m; auto: 3 for batch requests, none for online ones."""
    ttl = getattr(spec, "prompt_cache_ttl", "auto")
    if ttl == "1h":
        return 2
    if ttl == "5m" or spec.online_for(stage.role):
        return None
    return AUTO_LONG_TTL_FROM


@dataclass
class Summary:
    """Counts and estimates accumulated while requests stream past.

    The hot path only bumps one group per (stage, model, language, label); totals are derived at the end.
    """

    prices: PriceTable
    groups: dict[tuple[str, str, str, str | None], list[int]] = field(default_factory=dict)
    prefixes: set[str] = field(default_factory=set)  # shared prefixes (caching.py) already sent once

    def add(self, request: Mapping[str, Any], items: int) -> None:
        meta = request["meta"]
        key = (request["stage"], request["model"], meta.get("language", ""), meta.get("label", meta.get("topic")))
        group = self.groups.get(key)
        if group is None:
            group = self.groups[key] = [0] * 6
        messages = request["messages"]
        group[0] += 1
        group[1] += estimate_input_tokens(messages)
        group[2] += estimate_output_tokens(request_items(request, items), request["params"]["max_tokens"])
        count_cache(request, self.prefixes, group)  # the first request with a prefix writes it, the next read

    @property
    def requests(self) -> int:
        return sum(g[0] for g in self.groups.values())

    def as_dict(self) -> dict[str, Any]:
        by: dict[str, Counter[str]] = defaultdict(Counter)
        tokens: dict[str, list[int]] = defaultdict(lambda: [0] * 6)
        for (stage, model, language, label), group in self.groups.items():
            n = group[0]
            by["by_stage"][stage] += n
            by["by_model"][model] += n
            by["by_language"][language] += n
            if label is not None:
                by["by_label"][label] += n
            for i, v in enumerate(group):
                tokens[model][i] += v
        by_model = {}
        totals: dict[str, float | None] = {"online": 0.0, "batch": 0.0}
        unknown = []
        for model in sorted(tokens):
            n, inp, out, read, write, write_1h = tokens[model]
            cost = self.prices.cost(model, inp, out, read, write, write_1h)
            by_model[model] = {"requests": n, "input_tokens": inp, "output_tokens": out,
                               "cache_read_input_tokens": read, "cache_write_input_tokens": write,
                               "cache_write_1h_input_tokens": write_1h,
                               "cost_online": cost["online"], "cost_batch": cost["batch"]}
            if cost["online"] is None:
                unknown.append(model)
            for k in totals:
                if cost[k] is not None:
                    totals[k] = round(totals[k] + cost[k], 6)  # type: ignore[operator]
        counts: dict[str, Any] = {"requests": self.requests}
        counts.update({name: dict(sorted(counter.items())) for name, counter in sorted(by.items())})
        return {
            "counts": counts,
            "estimate": {
                "note": "estimates: input ~4 characters per token; output ~150 tokens per generated item, "
                        "capped by max_tokens; a shared document prefix long enough for the vendor's prompt "
                        "cache is read from it after its first request (cache prices)",
                "input_tokens": sum(t[1] for t in tokens.values()),
                "output_tokens": sum(t[2] for t in tokens.values()),
                "cost_online": totals["online"],
                "cost_batch": totals["batch"],
                "cost_excludes": unknown,
                "currency": self.prices.currency,
                "prices_checked": self.prices.checked,
                "by_model": by_model,
            },
        }


def stage_schemas(stages: Iterable[Stage]) -> dict[str, dict[str, Any]]:
    """manifest.json's `schemas`: every answer schema a request of these stages may carry, by key."""
    return {schema_key(s.name, schema): schema for s in stages for schema in (s.schema, *s.variants)}


def request_items(request: Mapping[str, Any], items: int) -> int:
    """Items in the answer of `request`, whose stage's answers have `items`: a request built from several input
    rows (`meta.parents`: grouped mcq distractors, one slot each) answers one item per row."""
    parents = request["meta"].get("parents")
    return len(parents) if parents else items


def _items_per_answer(spec: DatasetConfigBase, stage: Stage) -> int:
    if "items" in stage.schema["properties"]:
        return spec.num_samples_per_prompt  # type: ignore[attr-defined, no-any-return]
    return slot_count(stage.schema) or 1


def vendor_warnings(prepared: Prepared, strict: bool = False) -> list[str]:
    """What each vendor cannot honour, for every stage and every model of its role, before anything is sent.

    The first stage's job files report the same while they are written; checking the whole stage graph here
    also covers later stages (compiled from collected rows), so a user learns before paying for stage one.
    That includes each model's capabilities (`compiler.capabilities`: parameters it refuses, its maximum
    output); whether prompts fit a model's window is checked per request, as job lines are rendered, for
    every stage. With `strict`, the first problem raises `UnsupportedFeature`.
    """
    from .capabilities import CapabilityTable
    from .vendors import RENDERERS, Diagnostics

    diagnostics = Diagnostics(strict=strict)
    capabilities = CapabilityTable.from_environment()
    spec = prepared.spec
    schemas = stage_schemas(prepared.stages)
    for stage in prepared.stages:
        for model in dict.fromkeys(spec.models_for(stage.role)):
            renderer = RENDERERS.get(model.partition(":")[0])
            if renderer is None:
                continue
            renderer(schemas, diagnostics, capabilities).render(_probe_request(spec, stage, model))
    return [str(w) for w in diagnostics.warnings]


def _probe_request(spec: DatasetConfigBase, stage: Stage, model: str) -> dict[str, Any]:
    """A request of `stage` for `model` with the stage's params and a minimal prompt, for `vendor_warnings`."""
    return {"id": "0" * 32, "stage": stage.name, "model": model, "params": spec.generation.params(),
            "schema": schema_key(stage.name, stage.schema), "meta": {},
            "messages": [{"role": "system", "content": "-"}, {"role": "user", "content": "-"}]}


def plan(prepared: Prepared, prices: PriceTable | None = None, *, sample_limit: int | None = None) -> dict[str, Any]:
    """Counts, token and cost estimates of every stage; writes nothing.

    `counts` and `estimate` are those of the first stage (a function of the spec alone); `stages` lists every
    stage, later ones projected from placeholder answers (`compiler.projection.project`), `rounds` the batch
    rounds, `sampled` whether only a sample of the first stage was simulated, and
    `estimate.projected_total` the sum over all stages.
    """
    from .projection import SAMPLE_LIMIT, project

    prices = prices or PriceTable.load()
    stage = prepared.stages[0]
    summary = Summary(prices)
    items = _items_per_answer(prepared.spec, stage)
    projection = project(prepared, prices, sample_limit=SAMPLE_LIMIT if sample_limit is None else sample_limit,
                         observe=lambda request: summary.add(request, items))
    warnings = [issue_text(w) for w in spec_warnings(prepared, prices)] + vendor_warnings(prepared)
    result = {"name": prepared.spec.name, "type": prepared.spec.type, "stage": stage.name, **summary.as_dict(),
              "stages": projection["stages"], "rounds": projection["rounds"], "sampled": projection["sampled"],
              "warnings": warnings}
    result["estimate"]["projected_total"] = {**projection["total"], "note": projection["note"]}
    return mark_unpriced(result)


def spec_warnings(prepared: Prepared, prices: PriceTable) -> list[SpecIssue]:
    """The spec's warnings: those of its checks, then those that need the dated tables (unpriced models, answers
    longer than max_tokens allows)."""
    from .table_checks import table_warnings

    return [*prepared.warnings, *table_warnings(prepared, prices)]


def mark_unpriced(plan: dict[str, Any]) -> dict[str, Any]:
    """Add to a plan's estimate the models without a price (`unpriced_models`, every stage) and whether its cost
    totals are therefore lower bounds (`cost_is_lower_bound`)."""
    unpriced = sorted(plan["estimate"]["projected_total"]["cost_excludes"])
    plan["estimate"]["unpriced_models"] = unpriced
    plan["estimate"]["cost_is_lower_bound"] = bool(unpriced)
    return plan


def issue_text(issue: SpecIssue) -> str:
    """An issue without the spec's path (manifest.json must not depend on where the spec was compiled from)."""
    where = f"line {issue.line}: " if issue.line is not None else ""
    return f"{where}{issue.field + ': ' if issue.field else ''}{issue.message}"


@dataclass
class CompileResult:
    out_dir: Path
    requests: int
    manifest: dict[str, Any]
    warnings: list[str]  # as in manifest.json: spec warnings without the spec's path, then vendor warnings
    spec_warnings: list[SpecIssue]


def write_stage(prepared: Prepared, stage_name: str, target: Path, *,
                inputs: Mapping[str, Iterable[Row]] | None = None, input_hash: str | None = None,
                prices: PriceTable | None = None, strict: bool = False,
                limits: Mapping[str, Mapping[str, int]] | None = None) -> CompileResult:
    """Write one stage's manifest.jsonl, manifest.json and vendor job files into the empty dir `target`.

    The first stage is a function of the spec alone; a later stage also of `inputs` (the rows of the stages
    it reads), whose hash `input_hash` is recorded in its manifest.json. Same spec + same rows => same bytes.
    `target` is a staging dir owned by the caller (`datafast.outdir`), which moves it into place: this
    function decides what the files hold, never where the run lives.

    Raises:
        UnsupportedFeature: with `strict`, a schema keyword or parameter a vendor cannot honour.
        JobFileError: requests that cannot be laid out in the vendors' files.
    """
    from .jobsink import job_sink

    spec = prepared.spec
    stage = prepared.stage(stage_name)
    first = stage.name == prepared.stages[0].name
    schemas = stage_schemas(prepared.stages)
    checked = vendor_warnings(prepared, strict) if first else []  # the whole graph is checked with stage one
    prices = prices or PriceTable.load()
    summary = Summary(prices)
    items = _items_per_answer(spec, stage)
    models = spec.models_for(stage.role)
    batched = any(m.partition(":")[0] in RENDERERS for m in models)
    rows: dict[str, list[Row]] | None = None
    if not first:
        rows = {name: list((inputs or {}).get(name, ())) for name in stage.inputs}
        expected = sum(len(r) for r in rows.values())
    else:
        expected = prepared.prompts * max(1, len(models))
    sink = job_sink(expected, target, schemas, limits, strict, batch_models=batched)
    try:
        with (target / "manifest.jsonl").open("wb", buffering=1 << 20) as fh:
            for request, line in stage_request_lines(prepared, stage, rows):
                if request["schema"] not in schemas:  # a builder's schema missing from its stage's variants
                    raise ValueError(f"stage {stage.name!r}: request schema {request['schema']} is not listed")
                fh.write(line)
                summary.add(request, items)
                sink.add(request, line)
        jobs, job_warnings = sink.close()
    except BaseException:
        sink.abort()
        raise
    first_warnings = spec_warnings(prepared, prices) if first else []
    warnings = [issue_text(w) for w in first_warnings] + list(dict.fromkeys(checked + job_warnings))
    normalized = spec.model_dump(mode="json")
    manifest: dict[str, Any] = {
        "format": MANIFEST_FORMAT,
        "datafast_version": __version__,
        "name": spec.name,
        "type": spec.type,
        "spec_hash": content_hash(normalized),
        "spec": normalized,
        "stages": [{"name": s.name, "role": s.role, "inputs": list(s.inputs),
                    "schema": schema_key(s.name, s.schema)} for s in prepared.stages],
        "compiled_stages": [stage.name],
    }
    if not first:
        manifest["input_hash"] = input_hash
        manifest["input_rows"] = {name: len(r) for name, r in (rows or {}).items()}
    manifest.update({
        "schemas": schemas,
        **summary.as_dict(),
        "jobs": [{"vendor": j.vendor, "stage": j.stage, "model": j.model, "path": j.path,
                  "requests": j.requests, "bytes": j.bytes} for j in jobs],
        "warnings": warnings,
    })
    (target / "manifest.json").write_bytes(_pretty_json(manifest))
    return CompileResult(target, summary.requests, manifest, warnings, list(first_warnings))


def _pretty_json(obj: Any) -> bytes:
    """manifest.json: indented, keys in the order they are built (deterministic), so that each answer
    schema keeps its property order, the order models generate fields in."""
    import orjson

    return orjson.dumps(obj, option=orjson.OPT_INDENT_2) + b"\n"
