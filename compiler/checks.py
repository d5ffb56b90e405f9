"""Rules that span several spec fields, checked before anything is written.

Each check returns (path, message) pairs; the caller attaches file and line. Warnings are returned the same
way and never stop a compile.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from .expansion import combination_count
from .loader import did_you_mean
from .sources import SourceError, check_columns
from .spec import (
    KNOWN_RUNTIMES,
    LOCAL_MODELS,
    REASONING_PARAMS,
    ClassificationDatasetConfig,
    DatasetConfigBase,
    GenericPipelineDatasetConfig,
    MCQDatasetConfig,
    PreferenceDatasetConfig,
    RawDatasetConfig,
    UltrachatDatasetConfig,
    _MultiStage,
    trimmed_model,
)
from .stages import BuildContext, PromptRules, prompt_rules, stage_prompts, stages_for
from .templates import Template, parse_template
from .vendors import RENDERERS

Finding = tuple[tuple[str | int, ...], str]


@dataclass
class CheckResult:
    errors: list[Finding]
    warnings: list[Finding]
    prompts: int  # expanded first-stage prompts (before models); 0 when errors stopped the count


def check_spec(spec: DatasetConfigBase, base_dir: Path) -> CheckResult:
    """All errors and warnings of a structurally valid spec, and its first-stage prompt count."""
    errors: list[Finding] = []
    warnings: list[Finding] = []
    errors += _models(spec)
    errors += _duplicate_models(spec)
    errors += _duplicates(spec)
    warnings += _spaced_models(spec)
    reasoning_errors, reasoning_warnings = _reasoning_keys(spec)
    errors += reasoning_errors
    warnings += reasoning_warnings
    prompt_errors, used = _prompts(spec)
    errors += prompt_errors
    errors += _stage_prompts(spec)
    warnings += _cache_layout(spec)
    for name in spec.expansion.placeholders:
        if name not in used:
            warnings.append((("expansion", "placeholders", name), f"no prompt uses {{{{{name}}}}}; its values are ignored"))
    if isinstance(spec.online, list):
        used_roles = {stage.role for stage in stages_for(spec)}
        for role in spec.online:
            if role not in used_roles:
                warnings.append((("online",), f"no stage of this spec has the role {role!r} (e.g. the judge runs only "
                                              "with llm_as_judge: true); it has no effect"))
    errors += _sources(spec, base_dir)
    prompts = 0
    if not errors:
        try:
            prompts = _prompt_count(spec, base_dir)
        except SourceError as exc:  # a row past the first one is unreadable
            return CheckResult([((*exc.field.split("."),), str(exc))], warnings, 0)
        if prompts > spec.expansion.max_samples:
            errors.append((("expansion", "max_samples"), f"the spec expands to {prompts:,} prompts (before models), "
                                                         f"more than max_samples ({spec.expansion.max_samples:,}); "
                                                         "raise expansion.max_samples or narrow the spec"))
        elif prompts == 0:
            where: tuple[str | int, ...] = ("source",) if getattr(spec, "source", None) else ()
            hint = ""
            if isinstance(spec, MCQDatasetConfig):
                where = ("min_document_length",)
                hint = (f": no document of the source has between {spec.min_document_length:,} and "
                        f"{spec.max_document_length:,} characters")
            errors.append((where, f"the spec yields no requests{hint}"))
    return CheckResult(errors, warnings, prompts)


def _models(spec: DatasetConfigBase) -> Iterator[Finding]:
    models = spec.models  # type: ignore[attr-defined]
    if not models:  # a config built in Python without models (the providers of generate() fill them)
        yield (("models",), "no models; give models=['runtime:model', ...] (e.g. 'openai:gpt-4.1-mini'), "
                            "or pass providers to the dataset's generate()")
        return
    lists = models.items() if isinstance(models, dict) else [(None, models)]
    for role, names in lists:
        base: tuple[str | int, ...] = ("models",) if role is None else ("models", role)
        for i, model in enumerate(names):
            runtime, _, name = model.partition(":")
            if runtime not in KNOWN_RUNTIMES:
                yield ((*base, i), f"unknown runtime {runtime!r}{did_you_mean(runtime, KNOWN_RUNTIMES)} "
                                   f"(model {model!r}); runtimes: {', '.join(KNOWN_RUNTIMES)}")
            elif runtime == "local" and name not in LOCAL_MODELS and not name.lower().endswith(".gguf"):
                yield ((*base, i), f"unknown local model {name!r}{did_you_mean(name, LOCAL_MODELS)} (local "
                                   "models: " + ", ".join(f"local:{m}" for m in LOCAL_MODELS)
                                   + " bundled, or a GGUF file as local:/path/to/model.gguf)")
    if isinstance(spec, _MultiStage) and isinstance(models, dict):
        needed = {stage.role for stage in stages_for(spec)}
        for role in models:
            if role not in spec.ROLES:
                yield (("models", role), f"unknown role {role!r}{did_you_mean(role, spec.ROLES)}; roles: {', '.join(spec.ROLES)}")
        for role in sorted(needed - set(models), key=spec.ROLES.index):
            yield (("models",), f"no models for role {role!r}; add 'models.{role}: [runtime:model, ...]' "
                                f"(or give one list for every role)")


def _duplicate_models(spec: DatasetConfigBase) -> Iterator[Finding]:
    """A model listed twice in one list would get every prompt twice: twice the cost for the same prompts."""
    first: dict[tuple[tuple[str | int, ...], str], tuple[str | int, ...]] = {}
    for path, model in spec.model_entries():
        seen = first.setdefault((path[:-1], model), path)
        if seen != path:
            yield (path, f"{model!r} is listed twice (also {'.'.join(map(str, seen))}): every prompt would be sent "
                         "to it twice, at twice the cost; list each model once")


def _spaced_models(spec: DatasetConfigBase) -> Iterator[Finding]:
    for path, raw in spec._trimmed_models:
        yield (path, f"model {raw!r} has spaces around the runtime or the model name; read as "
                     f"{trimmed_model(raw)!r} (write it that way)")


def _reasoning_keys(spec: DatasetConfigBase) -> tuple[list[Finding], list[Finding]]:
    """Reasoning keys no model of the spec takes (a warning), and values the vendor refuses outright."""
    errors: list[Finding] = []
    warnings: list[Finding] = []
    params = spec.generation.params()
    runtimes = {model.partition(":")[0] for _, model in spec.model_entries()}
    for key in REASONING_PARAMS:
        if key not in params:
            continue
        takers = sorted(r for r, renderer in RENDERERS.items() if renderer.PARAMS.get(key) is not None)
        if not runtimes & set(takers):
            warnings.append((("generation", key), f"no model of this spec takes it (only {' and '.join(takers)} "
                                                  "models do); it has no effect"))
        for runtime in sorted(runtimes & set(takers)):
            problem = RENDERERS[runtime].param_problem(key, params)
            if problem:
                errors.append((("generation", key), f"{runtime}: {problem}"))
    return errors, warnings


def _duplicates(spec: DatasetConfigBase) -> Iterator[Finding]:
    lists: list[tuple[str, list[str]]] = []
    if isinstance(spec, ClassificationDatasetConfig):
        lists.append(("classes", [c.name for c in spec.classes]))
    if isinstance(spec, RawDatasetConfig):
        lists += [("document_types", spec.document_types), ("topics", spec.topics)]
    if isinstance(spec, UltrachatDatasetConfig):
        lists.append(("personas", spec.personas))
    if isinstance(spec, GenericPipelineDatasetConfig):
        lists += [("input_columns", spec.input_columns), ("output_columns", spec.output_columns)]
        for i, col in enumerate(spec.forward_columns):
            if col in spec.output_columns:
                yield (("forward_columns", i), f"{col!r} is also an output column; rename one of them")
    for field, values in lists:
        seen: set[str] = set()
        for i, value in enumerate(values):
            if value in seen:
                where = (field, i, "name") if field == "classes" else (field, i)
                yield (where, f"duplicate {value!r}; each entry must be unique")
            seen.add(value)


def _prompts(spec: DatasetConfigBase) -> tuple[list[Finding], set[str]]:
    errors: list[Finding] = []
    used: set[str] = set()
    if spec.prompts is None:
        return errors, used
    rules = prompt_rules(spec)
    for i, source in enumerate(spec.prompts):
        template = parse_template(source)
        where = ("prompts", i)
        errors += _placeholders(spec, where, template, rules, "this type's prompts", first_stage=True)
        if rules.need_one_of and not template.mandatory & rules.need_one_of:
            errors.append((where, "the prompt uses no input column; add at least one of "
                                  + ", ".join(f"{{{c}}}" for c in sorted(rules.need_one_of))))
        for name in template.optional:
            used.add(name)
            if name not in spec.expansion.placeholders:
                errors.append((where, f"{{{{{name}}}}} has no values; add 'expansion: placeholders: {name}: [...]'"
                                      f"{did_you_mean(name, spec.expansion.placeholders)}"))
    return errors, used


def _placeholders(spec: DatasetConfigBase, where: tuple[str | int, ...], template: Template, rules: PromptRules,
                  owner: str, first_stage: bool, other: str = "") -> Iterator[Finding]:
    """Mandatory placeholders missing from a custom prompt, and unknown ones (`other`: the prompt's other
    form, appended to the fix)."""
    for name in sorted(rules.mandatory - template.mandatory):
        yield (where, f"missing mandatory placeholder {{{name}}}; {owner} must contain "
                      + ", ".join(f"{{{m}}}" for m in sorted(rules.mandatory)) + other)
    for name in sorted(template.mandatory - rules.allowed):
        hint = did_you_mean(name, rules.allowed)
        optional = (f"; for an expansion value write {{{{{name}}}}}"
                    if first_stage and name in spec.expansion.placeholders else "")
        yield (where, f"unknown placeholder {{{name}}}{hint}{optional}; allowed: "
                      + ", ".join(f"{{{a}}}" for a in sorted(rules.allowed)))
    if isinstance(spec, MCQDatasetConfig) and "context" in template.mandatory and not spec.context_column:
        yield (where, "{context} needs 'context_column' (the source column holding it)")


def _stage_prompts(spec: DatasetConfigBase) -> list[Finding]:
    """Custom later-stage prompts (chosen_response_generation_prompt, distractor_prompt, ...)."""
    errors: list[Finding] = []
    for prompt in stage_prompts(spec):
        source = getattr(spec, prompt.field)
        if source is None:
            continue
        template = parse_template(source)
        where = (prompt.field,)
        if prompt.alternative is not None and template.mandatory & prompt.rules.mandatory \
                and template.mandatory & prompt.alternative.mandatory:
            errors.append((where, "use either " + ", ".join(f"{{{m}}}" for m in sorted(prompt.rules.mandatory))
                           + " (one request per question) or " + ", ".join(
                               f"{{{m}}}" for m in sorted(prompt.alternative.mandatory))
                           + " (all the questions of a document in one request), not both"))
            continue
        rules = prompt.rules_for(template)
        other = ""
        if prompt.alternative is not None and rules is prompt.rules:
            other = ("; or, for all the questions of a document in one request, "
                     + ", ".join(f"{{{m}}}" for m in sorted(prompt.alternative.mandatory)))
        errors += _placeholders(spec, where, template, rules, prompt.field, first_stage=False, other=other)
        for name in template.optional:
            errors.append((where, f"{{{{{name}}}}}: optional placeholders are filled by expansion, which applies "
                                  "only to the first-stage 'prompts'; write the text itself in this prompt"))
    return errors


# filled per item (a question, an answer): text after them differs between requests of one document
_PER_ITEM = ("question", "questions", "response")


def _cache_layout(spec: DatasetConfigBase) -> list[Finding]:
    """Custom later-stage prompts that put a per-item placeholder before {document}: every request then
    differs before the document, and the vendors' prompt caches cannot reuse it (compiler/caching.py)."""
    notes: list[Finding] = []
    for prompt in stage_prompts(spec):
        source = getattr(spec, prompt.field)
        if source is None:
            continue
        order = [p[1] for p in parse_template(source).parts if isinstance(p, tuple) and p[0] == "m"]
        if "document" not in order:
            continue
        early = [name for name in order[:order.index("document")] if name in _PER_ITEM]
        if early:
            notes.append(((prompt.field,), f"{{{early[0]}}} comes before {{document}}: each request differs "
                                           "before the document, so the vendors' prompt caches cannot reuse it "
                                           f"(cached input costs 0.1-0.5x); put {{document}} before "
                                           f"{{{early[0]}}} to pay for each document's tokens about once"))
    return notes


def _sources(spec: DatasetConfigBase, base_dir: Path) -> list[Finding]:
    columns: dict[str, str] = {}
    source = getattr(spec, "source", None)
    if source is None:
        return []
    if isinstance(spec, (MCQDatasetConfig, PreferenceDatasetConfig)):
        columns["text_column"] = spec.text_column
    if isinstance(spec, MCQDatasetConfig) and spec.context_column:
        columns["context_column"] = spec.context_column
    if isinstance(spec, GenericPipelineDatasetConfig):
        for i, col in enumerate(spec.input_columns):
            columns[f"input_columns.{i}"] = col
        for i, col in enumerate(spec.forward_columns):
            columns[f"forward_columns.{i}"] = col
    findings = check_columns(source, base_dir, columns)
    return [(tuple(int(p) if p.isdigit() else p for p in field.split(".")), msg) for field, msg in findings]


def _prompt_count(spec: DatasetConfigBase, base_dir: Path) -> int:
    first = stages_for(spec)[0]
    return sum(combination_count(bp.template.optional if bp.expand else (), spec.expansion)
               for bp in first.build(spec, BuildContext(base_dir), {}))
