"""The renderer interface, compile-time diagnostics and the schema helpers every vendor shares.

A renderer turns one manifest request into one line of its vendor's batch input file. Everything that depends
only on (model, schema, params) -- the adapted answer schema, the mapped generation parameters, the warnings --
is computed once and cached; per request a renderer only serializes the messages and the id around a
pre-serialized constant part (`orjson.Fragment`), and estimates the prompt's length when the model's window is
known. What a model accepts (refused parameters, maximum output, window) comes from `compiler.capabilities`:
the manifest keeps the spec's params, the line carries what is sent.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, NoReturn

import orjson

from ..capabilities import CapabilityTable, ModelCapabilities
from ..pricing import estimate_input_tokens
from ..spec import REASONING_PARAMS

JSON = dict[str, Any]

# Canonical job lines: compact UTF-8, sorted keys, '\n'-terminated.
LINE_OPTIONS = orjson.OPT_SORT_KEYS | orjson.OPT_APPEND_NEWLINE

# Keywords that annotate a schema without constraining instances: moving them into the description loses
# nothing a validator would check, so it is not worth a warning.
ANNOTATION_KEYWORDS = frozenset(
    {"title", "description", "default", "examples", "$comment", "deprecated", "readOnly", "writeOnly", "$id",
     "$anchor"}
)

# Keywords that only apply to instances of one JSON type (used to split `"type": [A, B]` into anyOf branches).
TYPE_KEYWORDS: Mapping[str, frozenset[str]] = {
    "object": frozenset({"properties", "required", "additionalProperties", "patternProperties", "minProperties",
                         "maxProperties", "propertyNames", "unevaluatedProperties", "dependentRequired",
                         "dependentSchemas"}),
    "array": frozenset({"items", "prefixItems", "minItems", "maxItems", "uniqueItems", "contains", "minContains",
                        "maxContains", "unevaluatedItems"}),
    "string": frozenset({"minLength", "maxLength", "pattern", "format", "contentEncoding", "contentMediaType"}),
    "number": frozenset({"minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf"}),
    "integer": frozenset({"minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf"}),
}

MOVED = "is not enforced by the vendor; moved into the description"
SENT_AS_ANYOF = "is not enforced by the vendor; sent as anyOf (variants may overlap)"
NOT_SENT = "is not supported by the vendor; not sent"
REFUSED = "is refused by this model (capabilities table); not sent"


class RenderError(ValueError):
    """A manifest request that cannot be rendered for a vendor (bad id, unknown role, missing schema)."""

    def __init__(self, vendor: str, request_id: object, message: str) -> None:
        self.vendor = vendor
        self.request_id = request_id
        super().__init__(f"{vendor}: request {request_id!r}: {message}")


class UnsupportedFeature(ValueError):
    """Something a vendor cannot express: raised in strict mode, or always when the vendor would reject it.

    `schema_key` is None for a generation parameter; `keyword` is then the parameter name.

    Example:
        >>> str(UnsupportedFeature("anthropic", "gen-1", "maxItems", "items"))
        "anthropic: schema 'gen-1' keyword 'maxItems' at items is not supported by the vendor"
    """

    def __init__(self, vendor: str, schema_key: str | None, keyword: str, path: str, message: str | None = None):
        self.vendor = vendor
        self.schema_key = schema_key
        self.keyword = keyword
        self.path = path
        if message is None:
            message = f"{vendor}: schema {schema_key!r} keyword {keyword!r} at {path} is not supported by the vendor"
        super().__init__(message)


@dataclass(frozen=True)
class VendorWarning:
    """A compile-time warning: part of a schema or a parameter that a vendor cannot honour.

    Schema warnings carry the schema key and every path where the keyword occurs; parameter warnings carry
    the model instead.
    """

    vendor: str
    keyword: str
    action: str
    schema_key: str | None = None
    paths: tuple[str, ...] = ()
    model: str | None = None

    @property
    def key(self) -> tuple[str, str | None, str | None, str, str]:
        """Deduplication key: (vendor, schema, keyword, action) for schemas, (vendor, model, parameter, action)."""
        return (self.vendor, self.schema_key, self.model, self.keyword, self.action)

    def __str__(self) -> str:
        if self.schema_key is not None:
            where = ", ".join(self.paths)
            return f"{self.vendor}: schema {self.schema_key!r} keyword {self.keyword!r} at {where} {self.action}"
        return f"{self.vendor}: parameter {self.keyword!r} for model {self.model!r} {self.action}"

    def to_error(self) -> UnsupportedFeature:
        path = self.paths[0] if self.paths else f"params.{self.keyword}"
        return UnsupportedFeature(self.vendor, self.schema_key, self.keyword, path, str(self))


@dataclass(frozen=True)
class ContextWarning(VendorWarning):
    """Requests of one model whose estimated prompt (plus `max_tokens`, where output shares the window) exceeds
    the model's limit: how many, and the longest one. Estimates use ~4 characters per token (`pricing`)."""

    requests: int = 0
    longest_id: str = ""
    longest_tokens: int = 0
    limit: int = 0
    reserved: int = 0  # max_tokens counted into the window; 0 when the limit is on the prompt alone

    def __str__(self) -> str:
        what = (f"its context window of {self.limit:,} tokens (estimated prompt + max_tokens {self.reserved:,})"
                if self.reserved else f"its input limit of {self.limit:,} tokens (estimated prompt)")
        count = "1 request" if self.requests == 1 else f"{self.requests:,} requests"
        return (f"{self.vendor}: {count} for model {self.model!r} may not fit {what}; the longest is "
                f"{self.longest_id!r} at ~{self.longest_tokens:,} tokens")


class Diagnostics:
    """Collects warnings from every renderer of one compile, deduplicated, in first-occurrence order.

    With `strict=True` the first warning is raised as `UnsupportedFeature` instead.
    """

    def __init__(self, strict: bool = False) -> None:
        self.strict = strict
        self._items: dict[tuple[str, str | None, str | None, str, str], VendorWarning] = {}

    def warn(self, warning: VendorWarning) -> None:
        if self.strict:
            raise warning.to_error()
        self._items.setdefault(warning.key, warning)

    def too_long(self, vendor: str, model: str, request_id: str, tokens: int, limit: int, reserved: int) -> None:
        """Count one request that cannot fit its model's window; one warning per model names the longest."""
        key = (vendor, None, model, "context_window", "")
        seen = self._items.get(key)
        if isinstance(seen, ContextWarning):
            longest = tokens > seen.longest_tokens
            self._items[key] = ContextWarning(
                vendor, "context_window", "", model=model, requests=seen.requests + 1,
                longest_id=request_id if longest else seen.longest_id,
                longest_tokens=tokens if longest else seen.longest_tokens, limit=limit, reserved=reserved)
            return
        self.warn(ContextWarning(vendor, "context_window", "", model=model, requests=1, longest_id=request_id,
                                 longest_tokens=tokens, limit=limit, reserved=reserved))

    @property
    def warnings(self) -> list[VendorWarning]:
        return list(self._items.values())


class SchemaFindings:
    """What adapting one schema for one vendor changed: one warning per (keyword, action), listing its paths."""

    def __init__(self, vendor: str, schema_key: str) -> None:
        self.vendor = vendor
        self.schema_key = schema_key
        self._paths: dict[tuple[str, str], list[str]] = {}

    def note(self, keyword: str, path: str, action: str = MOVED) -> None:
        paths = self._paths.setdefault((keyword, action), [])
        shown = display_path(path)
        if shown not in paths:
            paths.append(shown)

    def note_moved(self, moved: Mapping[str, Any], path: str) -> None:
        for keyword in moved:
            if keyword not in ANNOTATION_KEYWORDS:
                self.note(keyword, path)

    def fail(self, keyword: str, path: str, reason: str) -> NoReturn:
        """Reject a construct the vendor refuses outright (the whole batch would fail), whatever the mode."""
        shown = display_path(path)
        raise UnsupportedFeature(
            self.vendor, self.schema_key, keyword, shown,
            f"{self.vendor}: schema {self.schema_key!r} keyword {keyword!r} at {shown} {reason}",
        )

    def warnings(self) -> list[VendorWarning]:
        return [
            VendorWarning(self.vendor, keyword, action, schema_key=self.schema_key, paths=tuple(paths))
            for (keyword, action), paths in self._paths.items()
        ]


def child_path(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def items_path(path: str) -> str:
    return f"{path}[]"


def display_path(path: str) -> str:
    return path or "(root)"


def append_to_description(out: JSON, moved: Mapping[str, Any]) -> None:
    """Append keywords a vendor cannot enforce to the description, so the model may still follow them.

    Same text format as the Anthropic SDK's `transform_schema` (`{maxItems: 5, pattern: ^a}`), used for every
    vendor so one schema reads the same everywhere.
    """
    if not moved:
        return
    text = "{" + ", ".join(f"{key}: {value}" for key, value in moved.items()) + "}"
    description = out.get("description")
    out["description"] = f"{description}\n\n{text}" if description is not None else text


def split_type_list(schema: Mapping[str, Any], findings: SchemaFindings, path: str) -> JSON:
    """`{"type": [A, B], ...}` -> `{"anyOf": [{"type": A, <A's keywords>}, {"type": B, ...}], <the rest>}`.

    For vendors that accept unions only as anyOf. Keywords specific to one type go into that type's branch.
    """
    types = schema["type"]
    if len(types) == 1:
        return {**schema, "type": types[0]}
    if "anyOf" in schema:
        findings.fail("type", path, "is a list of types next to anyOf, which this vendor cannot express")
    specific = frozenset().union(*(TYPE_KEYWORDS.get(t, frozenset()) for t in types))
    out: JSON = {k: v for k, v in schema.items() if k != "type" and k not in specific}
    out["anyOf"] = [
        {"type": t, **{k: v for k, v in schema.items() if k in TYPE_KEYWORDS.get(t, frozenset())}} for t in types
    ]
    return out


def fragment(obj: Any) -> orjson.Fragment:
    """Pre-serialize a schema-bearing part of every line once, spliced verbatim by orjson.

    Keys keep their order (deterministic: schemas are built by code): OpenAI and Gemini generate the
    answer's fields in schema order, so sorting would make a model write `correct_answer` before `question`.
    """
    return orjson.Fragment(orjson.dumps(obj))


class Renderer(ABC):
    """Renders manifest requests into one vendor's batch-file lines.

    Subclasses declare `vendor` and `PARAMS` (manifest parameter -> vendor field, None when the vendor has
    no such parameter) and implement the four hooks below. `render()` is the only per-request path.

    Example:
        >>> r = RENDERERS["openai"](schemas, Diagnostics())      # doctest: +SKIP
        >>> r.render(request)                                   # doctest: +SKIP
        b'{"body":{...},"custom_id":"3fa9...","method":"POST","url":"/v1/chat/completions"}\\n'
    """

    vendor: ClassVar[str]
    PARAMS: ClassVar[Mapping[str, str | None]]
    # manifest parameter -> how its value is sent, for parameters not sent as they are (e.g. a budget that
    # the vendor takes inside an object)
    PARAM_VALUES: ClassVar[Mapping[str, Callable[[Any], Any]]] = {}

    @classmethod
    def param_problem(cls, name: str, params: Mapping[str, Any]) -> str | None:
        """Why the vendor would refuse every request carrying `params[name]` (checked with the spec), or None."""
        return None

    def __init__(self, schemas: Mapping[str, Mapping[str, Any]], diagnostics: Diagnostics,
                 capabilities: CapabilityTable | None = None) -> None:
        self._schemas = schemas
        self._diagnostics = diagnostics
        self._capabilities = capabilities if capabilities is not None else CapabilityTable.from_environment()
        self._model_caps: dict[str, ModelCapabilities | None] = {}
        self._schema_parts: dict[str, Any] = {}
        # (model, schema) -> (params, template, window budget: (limit, reserved tokens) or None)
        self._templates: dict[tuple[str, str], tuple[dict[str, Any], Any, tuple[int, int] | None]] = {}

    # -- hooks -------------------------------------------------------------------------------------------
    @abstractmethod
    def adapt_schema(self, schema: Mapping[str, Any], findings: SchemaFindings) -> JSON:
        """Return the schema this vendor accepts; record every change in `findings`."""

    @abstractmethod
    def schema_part(self, schema_key: str, adapted: JSON) -> Any:
        """The constant, schema-bearing part of the line (usually an `orjson.Fragment`)."""

    @abstractmethod
    def prepare(self, model_name: str, schema_part: Any, params: JSON) -> Any:
        """Everything constant for (model, schema, params): what `render_line` copies per request."""

    @abstractmethod
    def render_line(self, template: Any, request: Mapping[str, Any]) -> bytes:
        """Serialize one request around its template; a canonical line ending in '\\n'."""

    def select_params(self, model_name: str, params: Mapping[str, Any]) -> Mapping[str, Any]:
        """The parameters this model accepts, by the capabilities table (each change warned about).

        Refused parameters are left out; of parameters refused together only the first present is kept;
        `max_tokens` above the model's maximum output is clamped. A model the table does not know keeps all.
        """
        caps = self.capabilities_of(model_name)
        if caps is None:
            return params
        out = dict(params)
        for name in params:
            if name in caps.refuses:
                self.warn_param(model_name, name, REFUSED)
                del out[name]
        for group in caps.mutually_exclusive:
            present = [name for name in group if name in out]
            for name in present[1:]:
                self.warn_param(model_name, name, f"is refused together with {present[0]!r} by this model "
                                                  f"(capabilities table); only {present[0]!r} is sent")
                del out[name]
        if caps.reasoning == "none":
            for name in REASONING_PARAMS:
                if name in out:
                    self.warn_param(model_name, name, "is refused: the model does not reason (capabilities table); "
                                                      "not sent")
                    del out[name]
        limit = caps.max_output_tokens
        max_tokens = out.get("max_tokens")
        if limit is not None and isinstance(max_tokens, int) and max_tokens > limit:
            self.warn_param(model_name, "max_tokens", f"is {max_tokens:,}, above the model's maximum output of "
                                                      f"{limit:,} tokens (capabilities table); {limit:,} is sent")
            out["max_tokens"] = limit
        return out

    # -- shared machinery --------------------------------------------------------------------------------
    def render(self, request: Mapping[str, Any]) -> bytes:
        # One template per (model, schema), reused while the params are equal to those it was made from: the
        # compiler shares one params dict per stage, so the comparison is cheap and the cache stays tiny even
        # if params did vary per request (they would just be re-prepared).
        key = (request["model"], request["schema"])
        params = request["params"]
        cached = self._templates.get(key)
        if cached is None or cached[0] != params:
            template, budget = self._new_template(request)
            cached = self._templates[key] = (dict(params), template, budget)
        budget = cached[2]
        if budget is not None:
            # every request of every stage passes here: prompts built from rows are checked like the first
            tokens = estimate_input_tokens(request["messages"]) + budget[1]
            if tokens > budget[0]:
                self._diagnostics.too_long(self.vendor, request["model"].partition(":")[2], request["id"], tokens,
                                           *budget)
        return self.render_line(cached[1], request)

    def adapted_schema(self, schema_key: str) -> JSON:
        """The vendor form of `schemas[schema_key]`, with its warnings reported (not cached; for tests/tools)."""
        findings = SchemaFindings(self.vendor, schema_key)
        adapted = self.adapt_schema(strip_meta(self._schemas[schema_key]), findings)
        for warning in findings.warnings():
            self._diagnostics.warn(warning)
        return adapted

    def capabilities_of(self, model_name: str) -> ModelCapabilities | None:
        """What the capabilities table knows about `<vendor>:<model_name>` (None: nothing)."""
        try:
            return self._model_caps[model_name]
        except KeyError:
            caps = self._model_caps[model_name] = self._capabilities.lookup(f"{self.vendor}:{model_name}")
            return caps

    def warn_param(self, model_name: str, parameter: str, action: str) -> None:
        self._diagnostics.warn(VendorWarning(self.vendor, parameter, action, model=model_name))

    def _new_template(self, request: Mapping[str, Any]) -> tuple[Any, tuple[int, int] | None]:
        """The line template for the request's (model, schema, params), and the model's window budget."""
        model_name = request["model"].partition(":")[2]
        if not model_name:
            raise RenderError(self.vendor, request.get("id"), f"model {request['model']!r} is not 'runtime:model'")
        schema_key = request["schema"]
        part = self._schema_parts.get(schema_key)
        if part is None:
            if schema_key not in self._schemas:
                raise RenderError(self.vendor, request.get("id"), f"schema {schema_key!r} is not in the schemas table")
            part = self._schema_parts[schema_key] = self.schema_part(schema_key, self.adapted_schema(schema_key))
        sent: JSON = {}
        selected = self.select_params(model_name, request["params"])
        for name, value in selected.items():
            field = self.PARAMS.get(name)
            if field is None:
                self.warn_param(model_name, name, NOT_SENT)
            else:
                convert = self.PARAM_VALUES.get(name)
                sent[field] = value if convert is None else convert(value)
        return self.prepare(model_name, part, sent), self._window_budget(model_name, selected)

    def _window_budget(self, model_name: str, params: Mapping[str, Any]) -> tuple[int, int] | None:
        """(limit, tokens reserved for output) for the model's window, or None when the table gives none."""
        caps = self.capabilities_of(model_name)
        if caps is None:
            return None
        if caps.context_window is not None:
            max_tokens = params.get("max_tokens")
            return caps.context_window, max_tokens if isinstance(max_tokens, int) else 0
        if caps.max_input_tokens is not None:
            return caps.max_input_tokens, 0
        return None


def strip_meta(schema: Mapping[str, Any]) -> Mapping[str, Any]:
    """Drop the root `$schema` (a dialect marker, not part of the answer's shape) before adaptation."""
    if "$schema" in schema:
        return {k: v for k, v in schema.items() if k != "$schema"}
    return schema
