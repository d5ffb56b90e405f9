"""The original datafast's dataset classes: `ClassificationDataset(config).generate([providers])`.

`generate` fills the config's `models` from the providers and runs the spec through `datafast.pipeline.run`,
the same compile -> submit -> collect path as `datafast run`: the work dir sits beside `output_file`
(`sentiment.jsonl` -> `sentiment.datafast/`), the final rows are written to `output_file` (.jsonl or
.parquet). Calling it again resumes: requests with a result are never sent (nor paid for) twice.

Example:
    >>> from datafast.datasets import ClassificationDataset
    >>> from datafast.llms import OpenAIProvider
    >>> from datafast.schema.config import ClassificationDatasetConfig
    >>> config = ClassificationDatasetConfig(
    ...     classes=[{"name": "positive", "description": "Happy reviews"}], output_file="reviews.jsonl")
    >>> dataset = ClassificationDataset(config)
    >>> dataset.get_num_expected_rows([OpenAIProvider(model_id="gpt-4.1-mini")])
    5
    >>> dataset.generate([OpenAIProvider(model_id="gpt-4.1-mini")])  # doctest: +SKIP
"""

from __future__ import annotations

import json
import os
from collections import defaultdict
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

from datafast.compiler.build import _items_per_answer, plan, prepare
from datafast.compiler.pricing import PriceTable
from datafast.compiler.spec import (
    ClassificationDatasetConfig,
    DatasetConfigBase,
    GenerationConfig,
    GenericPipelineDatasetConfig,
    MCQDatasetConfig,
    PreferenceDatasetConfig,
    RawDatasetConfig,
    SourceConfig,
    UltrachatDatasetConfig,
)

from .llms import GENERATION_KEYS, LLMProvider, ProviderError
from .logs import get_logger

log = get_logger("datasets")

Providers = Sequence[LLMProvider] | Mapping[str, Sequence[LLMProvider]]
_PARAMETER = {key: attr for attr, key in GENERATION_KEYS.items()}  # generation key -> provider parameter


def _providers_of(providers: Providers) -> list[LLMProvider]:
    return [p for group in providers.values() for p in group] if isinstance(providers, Mapping) else list(providers)


def _generation(config: DatasetConfigBase, providers: list[LLMProvider]) -> GenerationConfig:
    """The config's generation block with the providers' parameters; they must all agree (one block)."""
    current = config.generation
    update: dict[str, Any] = {}
    for key, attr in _PARAMETER.items():
        by_value: dict[Any, list[str]] = defaultdict(list)
        for provider in providers:
            by_value[getattr(provider, attr)].append(provider.model)
        if len(by_value) > 1:
            listing = "; ".join(f"{'unset' if v is None else v} for {', '.join(models)}" for v, models in by_value.items())
            raise ProviderError(f"the providers disagree on {attr} ({listing}): a dataset has one generation "
                                f"block; give every provider the same {attr}")
        value = next(iter(by_value), None)
        if value is None:
            continue
        if key in current.model_fields_set and getattr(current, key) != value:
            raise ProviderError(f"generation.{key} is {getattr(current, key)} in the config and {value} in the "
                                f"providers ({attr}); give it in one place")
        update[key] = value
    return GenerationConfig(**{**current.model_dump(exclude_unset=True), **update})


def _online(config: DatasetConfigBase, providers: Providers) -> bool | list[str]:
    """The spec's `online` key from the providers' modes: a role goes online when its providers of batch
    vendors are in online mode (the key is per role: they must agree); Ollama and local run online anyway."""
    groups = dict(providers) if isinstance(providers, Mapping) else {"": list(providers)}
    roles = []
    for role, group in groups.items():
        by_mode: dict[str, list[str]] = defaultdict(list)
        for provider in group:
            if provider.batch_capable:
                by_mode[provider.mode].append(provider.model)
        if len(by_mode) > 1:
            where = f" of role {role!r}" if role else ""
            raise ProviderError(f"the providers{where} mix modes (online: {', '.join(by_mode['online'])}; batch: "
                                f"{', '.join(by_mode['batch'])}): the spec's `online` key applies to a role; "
                                "give them the same mode")
        if set(by_mode) == {"online"}:
            roles.append(role)
    if not roles:
        return config.online
    wanted: bool | list[str] = True if len(roles) == len(groups) else roles
    if config.online not in (False, wanted):
        raise ProviderError(f"online is {config.online!r} in the config and {wanted!r} from the providers' modes; "
                            "give it in one place")
    return wanted


def _env(providers: list[LLMProvider]) -> dict[str, str]:
    """The process environment plus the providers' keys/hosts, for this process's runtimes only."""
    added: dict[str, str] = {}
    for provider in providers:
        for var, value in provider.env().items():
            if added.get(var, value) != value:
                raise ProviderError(f"two different values for {var} among the {provider.runtime} providers: "
                                    f"one key (or host) per runtime")
            added[var] = value
    return {**os.environ, **added}


def _check_runtimes(providers: list[LLMProvider], env: Mapping[str, str]) -> None:
    """Fail (RuntimeConfigError) before anything is sent: a key missing, a runtime not installed, a model
    Ollama does not serve or the embedded runtime cannot load."""
    from datafast.runtimes import RuntimeConfigError, online_runtime_class, runtime_class
    from datafast.runtimes.base import MissingKey

    by_runtime: dict[tuple[str, bool], set[str]] = defaultdict(set)
    classes = {provider.runtime: type(provider).__name__ for provider in providers}
    for provider in providers:
        by_runtime[provider.runtime, provider.mode == "online"].add(provider.model)
    for (runtime, online), names in sorted(by_runtime.items()):
        try:
            adapter = (online_runtime_class if online else runtime_class)(runtime)(env)
        except MissingKey as exc:  # in Python, the provider takes the key too
            raise RuntimeConfigError(runtime, f"no API key: pass api_key=... to {classes[runtime]}(...), or set "
                                     f"{' or '.join(exc.key_env)} in the environment") from None
        check = getattr(adapter, "check_models", None)
        if check is not None:
            check(sorted(names))


def _read_rows(path: Path) -> list[dict[str, Any]]:
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq

        rows: list[dict[str, Any]] = pq.read_table(path).to_pylist()
        return rows
    with open(path, encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


class DatasetBase:
    """Common to every dataset class: run the pipeline from providers, hold and export the rows.

    Attributes:
        config: the dataset's config (spec).
        data_rows: the final rows (dicts) after `generate`, named as the original datafast names them, plus
            provenance; `uuid` is the content-derived row id.
    """

    config_class: ClassVar[type[DatasetConfigBase]] = DatasetConfigBase

    def __init__(self, config: DatasetConfigBase) -> None:
        if not isinstance(config, self.config_class):
            raise TypeError(f"{type(self).__name__} takes a {self.config_class.__name__}, "
                            f"got {type(config).__name__}")
        self.config = config
        self.data_rows: list[dict[str, Any]] = []
        self.report: Any = None  # the CollectReport of the last generate()
        self._hf_dataset: Any = None

    @property
    def output_file(self) -> Path:
        """Where `generate` writes the final rows: the config's `output_file`, or the type's default."""
        return Path(self.config.output_file or self.config.DEFAULT_OUTPUT_FILE)

    @property
    def work_dir(self) -> Path:
        """The output dir of the run (manifest, job files, state, results): `<output_file stem>.datafast/`."""
        return self.output_file.with_name(self.output_file.stem + ".datafast")

    def spec(self, providers: Providers) -> DatasetConfigBase:
        """The config with `models`, the generation parameters and `online` filled from the providers; with
        no providers, the config as it is (its own `models`)."""
        flat = _providers_of(providers)
        if not flat:
            return self.config
        models: list[str] | dict[str, list[str]] = (
            {role: [p.model for p in group] for role, group in providers.items()}
            if isinstance(providers, Mapping) else [p.model for p in flat])
        data = {**self.config.model_dump(), "models": models, "online": _online(self.config, providers),
                "generation": _generation(self.config, flat).model_dump(exclude_unset=True)}
        return type(self.config).model_validate(data)

    def _expected_rows(self, providers: Providers) -> int:
        prepared = prepare(self.spec(providers))
        spec = prepared.spec
        first = plan(prepared, PriceTable.load())["stages"][0]
        rows = int(first["requests"]) * _items_per_answer(spec, prepared.stages[0])
        if isinstance(spec, UltrachatDatasetConfig) and spec.num_samples is not None:
            rows = min(rows, spec.num_samples)  # conversations started, at most
        return rows

    def _generate(self, providers: Providers, poll_interval: float, concurrency: int | None) -> DatasetBase:
        from .pipeline import run

        flat = _providers_of(providers)
        spec = self.spec(providers)
        env = _env(flat)
        if flat:
            prepare(spec)  # a spec error first: checking runtimes may load a model
            _check_runtimes(flat, env)
        self.output_file.parent.mkdir(parents=True, exist_ok=True)
        from .progress import Display

        # messages: the "datafast" logger; live bars for online/local requests and batch waits: stderr
        _, self.report = run(spec, self.work_dir, poll_interval=poll_interval, concurrency=concurrency, env=env,
                             output=self.output_file, display=Display())
        self.data_rows = _read_rows(self.output_file)
        self._hf_dataset = None
        log.info("%s: %s rows written to %s (%s rejected, %s pending; run dir %s)", type(self).__name__,
                 f"{len(self.data_rows):,}", self.output_file, f"{self.report.rejected:,}",
                 f"{self.report.pending:,}", self.work_dir)
        return self

    def _preview(self, providers: Providers, n: int, poll_interval: float, concurrency: int | None) -> Any:
        from .preview import preview

        flat = _providers_of(providers)
        spec = self.spec(providers)
        env = _env(flat)
        if flat:
            prepare(spec)
            _check_runtimes(flat, env)
        from .progress import Display

        return preview(spec, n, self.work_dir, poll_interval=poll_interval, concurrency=concurrency, env=env,
                       display=Display())

    @property
    def hf_dataset(self) -> Any:
        """The rows as a `datasets.Dataset` (after `generate`)."""
        if self.report is None:
            raise RuntimeError(f"{type(self).__name__}: no rows yet; call generate() first")
        if self._hf_dataset is None:
            import datasets

            from .dataset import load_dataset

            if self.output_file.suffix == ".parquet":
                self._hf_dataset = datasets.Dataset.from_parquet(str(self.output_file),
                                                                 cache_dir=str(self.work_dir / ".hf-cache"))
            else:
                self._hf_dataset = load_dataset(self.work_dir, self.report)
        return self._hf_dataset

    def push_to_hub(self, repo_id: str, token: str | None = None, private: bool = True,
                    commit_message: str | None = None, train_size: float | None = None, seed: int | None = None,
                    shuffle: bool = True, upload_card: bool = True) -> str:
        """Publish the generated rows to the Hugging Face Hub (as `datafast push WORK_DIR --repo REPO_ID`).

        Args (the original datafast's): `private` applies when the repo is created; `train_size` (0 < x < 1)
        splits into train/test, deterministically by `seed` (None: 0), grouped by source document for mcq
        and preference; `shuffle` orders rows within a split by a hash of (seed, row id); `upload_card`
        writes the dataset card (README.md). `token`: default HF_TOKEN or `hf auth login`; never stored.
        Returns:
            The dataset's URL on the Hub.
        Raises:
            RuntimeError: nothing generated yet; datafast.outdir.BadInput: bad arguments or token.
        """
        from .hub import SplitOptions, push

        if self.report is None and not (self.work_dir / "manifest.json").is_file():
            raise RuntimeError(f"{type(self).__name__}: no rows yet; call generate() first")
        result = push(self.work_dir, repo_id, private=private, token=token, commit_message=commit_message,
                      options=SplitOptions(train_size, 0 if seed is None else seed, shuffle), card_file=upload_card)
        for warning in result.warnings:
            log.warning(warning)
        log.info("%s: %s (%s)", repo_id, "unchanged, no commit made" if result.unchanged else
                 f"pushed commit {result.commit}", ", ".join(f"{k} {v:,} rows" for k, v in result.splits.items()))
        return result.url

    def to_jsonl(self, filepath: str | Path, rows: list[dict[str, Any]] | None = None, append: bool = False) -> None:
        """Write the rows (default: `data_rows`) as JSON lines; `append` adds to an existing file."""
        with open(filepath, "a" if append else "w", encoding="utf-8") as fh:
            for row in self.data_rows if rows is None else rows:
                fh.write(json.dumps(row, ensure_ascii=False) + "\n")

    def to_parquet(self, filepath: str | Path) -> None:
        """Write the rows as a Parquet file (datafast.export: a column of mixed types is JSON text)."""
        from .export import RowSchema, write_parquet

        write_parquet(self.data_rows, filepath, RowSchema.infer(self.data_rows))

    def to_csv(self, filepath: str | Path) -> None:
        """Write the rows as CSV (nested fields such as the chat `messages` as JSON text; labels as text)."""
        from .export import write_csv

        write_csv(lambda: self.data_rows, filepath)


class _ListDataset(DatasetBase):
    """Types whose providers are one list: every expanded prompt goes to every provider (every role)."""

    def generate(self, llms: Sequence[LLMProvider] | LLMProvider | None = None, *, poll_interval: float = 30.0,
                 concurrency: int | None = None) -> DatasetBase:
        """Generate the dataset with these providers (default: the config's `models`), write `output_file`.

        Args:
            llms: the providers; each expanded prompt goes to each of them.
            poll_interval: seconds between polls of running batch jobs.
            concurrency: requests in flight at once for online runtimes.

        Returns:
            self, with `data_rows` filled.

        Raises:
            SpecError: the config (with these models) is invalid; nothing was sent.
            ProviderError: the providers disagree on a generation parameter; nothing was sent.
            RuntimeFailure: a runtime failed (RuntimeConfigError: missing key, runtime not installed, model
                not served, before anything was sent). Run generate() again to resume.
        """
        return self._generate(self._list(llms), poll_interval, concurrency)

    def preview(self, n: int = 3, llms: Sequence[LLMProvider] | LLMProvider | None = None, *,
                poll_interval: float = 5.0, concurrency: int | None = None) -> Any:
        """Run `n` first-stage requests and their chains online in `<work_dir>/preview/` (see `datafast preview`);
        `generate` later reuses their answers. Returns a `PreviewReport` (`collect`: the preview's CollectReport,
        `projection`: the full run's tokens and cost at the measured tokens per request)."""
        return self._preview(self._list(llms), n, poll_interval, concurrency)

    def get_num_expected_rows(self, llms: Sequence[LLMProvider] | LLMProvider | None = None) -> int:
        """The rows `generate(llms)` is expected to produce if every answer is valid (from the plan)."""
        return self._expected_rows(self._list(llms))

    @staticmethod
    def _list(llms: Sequence[LLMProvider] | LLMProvider | None) -> list[LLMProvider]:
        return [llms] if isinstance(llms, LLMProvider) else list(llms or [])


class ClassificationDataset(_ListDataset):
    """Labelled texts (`ClassificationDatasetConfig`)."""

    config_class = ClassificationDatasetConfig


class RawDataset(_ListDataset):
    """Unlabelled texts per document type and topic (`RawDatasetConfig`)."""

    config_class = RawDatasetConfig


class UltrachatDataset(_ListDataset):
    """Multi-turn conversations (`UltrachatDatasetConfig`); the providers serve every role, one per item and
    role drawn by a hash of its id."""

    config_class = UltrachatDatasetConfig


class MCQDataset(_ListDataset):
    """Multiple-choice questions from documents (`MCQDatasetConfig`); the providers serve both roles."""

    config_class = MCQDatasetConfig

    def get_num_expected_rows(self, llms: Sequence[LLMProvider] | LLMProvider | None = None,
                              source_data_num_rows: int | None = None) -> int:
        """Expected rows; `source_data_num_rows` (the original's argument) is not needed: the source is read."""
        return self._expected_rows(self._list(llms))


class GenericPipelineDataset(_ListDataset):
    """A prompt over each row of a source dataset (`GenericPipelineDatasetConfig`)."""

    config_class = GenericPipelineDatasetConfig

    def spec(self, providers: Providers) -> DatasetConfigBase:
        """As `DatasetBase.spec`; with the original's `skip_function`, the source is the rows it keeps, written
        to `<output stem>.datafast/source-kept.jsonl` (the manifest then pins exactly those rows)."""
        spec = super().spec(providers)
        config = self.config
        assert isinstance(config, GenericPipelineDatasetConfig) and isinstance(spec, GenericPipelineDatasetConfig)
        skip = config.skip_function
        if skip is None:
            return spec
        from datafast.compiler.sources import iter_rows, json_safe

        kept = [json_safe(row) for row in iter_rows(spec.source, Path.cwd()) if not skip(dict(row))]
        path = self.work_dir / "source-kept.jsonl"
        path.parent.mkdir(parents=True, exist_ok=True)
        text = "".join(json.dumps(row, ensure_ascii=False, sort_keys=True) + "\n" for row in kept)
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            path.write_text(text, encoding="utf-8")
        log.info("skip_function kept %s source rows (%s)", f"{len(kept):,}", path)
        return spec.model_copy(update={"source": SourceConfig(file=str(path.absolute()))})


class PreferenceDataset(DatasetBase):
    """Preference pairs (`PreferenceDatasetConfig`), one provider per role as in the original datafast."""

    config_class = PreferenceDatasetConfig

    def _roles(self, question_gen_llm: LLMProvider | None, chosen_response_gen_llm: LLMProvider | None,
               rejected_response_gen_llm: LLMProvider | None, evolution_llm: LLMProvider | None,
               judge_llm: LLMProvider | None) -> dict[str, list[LLMProvider]]:
        given = {"questions": question_gen_llm, "chosen": chosen_response_gen_llm,
                 "rejected": rejected_response_gen_llm}
        if all(p is None for p in (*given.values(), judge_llm)):
            return {}  # the config's own models
        missing = [name for name, p in zip(("question_gen_llm", "chosen_response_gen_llm",
                                            "rejected_response_gen_llm"), given.values(), strict=True) if p is None]
        if missing:
            raise ProviderError(f"PreferenceDataset.generate: give {', '.join(missing)}")
        if evolution_llm is not None:
            log.warning("evolution_llm is ignored: evol-instruct is not supported (the original never ran it)")
        roles = {role: [p] for role, p in given.items() if p is not None}
        config = self.config
        assert isinstance(config, PreferenceDatasetConfig)
        if config.llm_as_judge:
            if judge_llm is None:
                raise ProviderError("llm_as_judge is set: give judge_llm")
            roles["judge"] = [judge_llm]
        elif judge_llm is not None:
            log.warning("judge_llm is ignored: llm_as_judge is not set in the config")
        return roles

    def generate(self, question_gen_llm: LLMProvider | None = None,
                 chosen_response_gen_llm: LLMProvider | None = None,
                 rejected_response_gen_llm: LLMProvider | None = None, evolution_llm: LLMProvider | None = None,
                 judge_llm: LLMProvider | None = None, *, poll_interval: float = 30.0,
                 concurrency: int | None = None) -> DatasetBase:
        """Questions from the documents, a chosen and a rejected answer to each, judge scores if
        `llm_as_judge`; with no providers, the config's `models`. See `ClassificationDataset.generate`."""
        roles = self._roles(question_gen_llm, chosen_response_gen_llm, rejected_response_gen_llm, evolution_llm,
                            judge_llm)
        return self._generate(roles, poll_interval, concurrency)

    def preview(self, n: int = 3, question_gen_llm: LLMProvider | None = None,
                chosen_response_gen_llm: LLMProvider | None = None,
                rejected_response_gen_llm: LLMProvider | None = None, judge_llm: LLMProvider | None = None, *,
                poll_interval: float = 5.0, concurrency: int | None = None) -> Any:
        """`n` questions' chains through every stage online, reused by `generate`; see `ClassificationDataset.preview`."""
        roles = self._roles(question_gen_llm, chosen_response_gen_llm, rejected_response_gen_llm, None, judge_llm)
        return self._preview(roles, n, poll_interval, concurrency)

    def get_num_expected_rows(self, llms: Sequence[LLMProvider] | LLMProvider | None = None) -> int:
        """Expected pairs with these question providers (the original passes `[question_gen_llm]`)."""
        questions = [llms] if isinstance(llms, LLMProvider) else list(llms or [])
        return self._expected_rows(questions)


__all__ = ["ClassificationDataset", "DatasetBase", "GenericPipelineDataset", "MCQDataset", "PreferenceDataset",
           "RawDataset", "UltrachatDataset"]
