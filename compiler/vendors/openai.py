"""OpenAI Batch API lines for `/v1/chat/completions`, with strict Structured Outputs.

Strict mode accepts a subset of JSON Schema: the root is an object, every object is closed and lists every
property in `required` (an optional property becomes nullable: the collector must treat `null` as absent),
and only the keywords in `_KEPT` / `_STRING_FORMATS` are enforced. Everything else is moved into the
description, with a warning. Source: platform.openai.com/docs/guides/structured-outputs ("Supported schemas"),
and the SDK's `openai/lib/_pydantic.py` (`to_strict_json_schema`) for `$ref`/`allOf` handling.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, ClassVar

import orjson

from ..caching import OPENAI_MIN_TOKENS, prefix_key, prefix_tokens, shared_prefix
from .base import (
    JSON,
    LINE_OPTIONS,
    SENT_AS_ANYOF,
    Renderer,
    SchemaFindings,
    append_to_description,
    child_path,
    fragment,
    items_path,
)

URL = "/v1/chat/completions"

_STRING_FORMATS = frozenset(
    {"date-time", "time", "date", "duration", "email", "hostname", "ipv4", "ipv6", "uuid"}
)
# Keywords strict mode enforces (besides the structural ones handled explicitly below).
_KEPT = frozenset(
    {"type", "description", "title", "enum", "const", "pattern", "minimum", "maximum", "exclusiveMinimum",
     "exclusiveMaximum", "multipleOf", "minItems", "maxItems"}
)
_STRUCTURAL = frozenset({"properties", "required", "additionalProperties"})
# Hard limits of strict mode: a schema past them makes every request of the batch fail.
MAX_OBJECT_NESTING = 10
MAX_PROPERTIES = 5000
MAX_ENUM_VALUES = 1000

_NAME_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")
_NULL: JSON = {"type": "null"}


def schema_name(schema_key: str) -> str:
    """`json_schema.name` must match `^[A-Za-z0-9_-]{1,64}$`."""
    return _NAME_UNSAFE.sub("_", schema_key)[:64] or "answer"


def to_strict_schema(schema: Mapping[str, Any], findings: SchemaFindings) -> JSON:
    """Convert a plain JSON Schema (root object) into OpenAI's strict Structured Outputs form.

    Example:
        >>> f = SchemaFindings("openai", "s")
        >>> to_strict_schema({"type": "object", "properties": {"a": {"type": "string", "minLength": 1}}}, f)
        {'type': 'object', 'properties': {'a': {'type': ['string', 'null'], 'description': '{minLength: 1}'}}, \
'required': ['a'], 'additionalProperties': False}
    """
    if schema.get("type") != "object":
        findings.fail("type", "", "must be 'object' at the root for strict structured outputs")
    if "anyOf" in schema or "oneOf" in schema:
        findings.fail("anyOf", "", "cannot be used at the root for strict structured outputs")
    return _StrictConverter(schema, findings).convert()


class _StrictConverter:
    def __init__(self, root: Mapping[str, Any], findings: SchemaFindings) -> None:
        self.root = root
        self.findings = findings
        self.properties = 0
        self.enum_values = 0

    def convert(self) -> JSON:
        out = self.node(self.root, "", 0, frozenset())
        if self.properties > MAX_PROPERTIES:
            self.findings.fail("properties", "", f"declares {self.properties} properties (limit {MAX_PROPERTIES})")
        if self.enum_values > MAX_ENUM_VALUES:
            self.findings.fail("enum", "", f"lists {self.enum_values} enum values (limit {MAX_ENUM_VALUES})")
        return out

    def node(self, schema: Any, path: str, level: int, inlining: frozenset[str]) -> JSON:
        """Convert one subschema; `level` counts the objects enclosing it (the root object is level 1)."""
        if not isinstance(schema, Mapping):
            self.findings.fail("schema", path, "is a boolean schema, which strict mode cannot express")
        s = dict(schema)
        ref = s.get("$ref")
        if ref is not None and len(s) > 1:
            # `$ref` with siblings is refused: inline the target once, the siblings win (as the SDK does).
            return self._inline(s, ref, path, level, inlining)
        all_of = s.pop("allOf", None)
        if isinstance(all_of, list) and len(all_of) == 1 and isinstance(all_of[0], Mapping):
            return self.node({**all_of[0], **s}, path, level, inlining)
        if all_of is not None:
            s["allOf"] = all_of
        if "oneOf" in s and "anyOf" not in s:
            s["anyOf"] = s.pop("oneOf")
            self.findings.note("oneOf", path, SENT_AS_ANYOF)

        out: JSON = {}
        moved: JSON = {}
        for key, value in s.items():
            if key in _STRUCTURAL:
                continue
            if key == "items" and isinstance(value, Mapping):
                out[key] = self.node(value, items_path(path), level, inlining)
            elif key == "anyOf" and isinstance(value, list):
                out[key] = [self.node(v, f"{path}.anyOf[{i}]", level, inlining) for i, v in enumerate(value)]
            elif key in ("$defs", "definitions") and isinstance(value, Mapping):
                out[key] = {n: self.node(d, child_path(path, f"{key}.{n}"), 0, inlining) for n, d in value.items()}
            elif key == "$ref" or (key == "format" and value in _STRING_FORMATS):
                out[key] = value
            elif key in _KEPT:
                out[key] = value
                if key == "enum" and isinstance(value, list):
                    self.enum_values += len(value)
            else:
                moved[key] = value
        if _is_object(s):
            self._object(s, out, path, level + 1, inlining)
            if "type" not in out and "anyOf" not in out:
                out["type"] = "object"  # `properties` without a type: strict mode needs the type spelled out
        if not out.keys() & {"type", "anyOf", "$ref", "enum", "const"}:
            self.findings.fail("type", path, "is missing: strict mode needs a type, anyOf, $ref, enum or const")
        self.findings.note_moved(moved, path)
        append_to_description(out, moved)
        return out

    def _inline(self, s: JSON, ref: str, path: str, level: int, inlining: frozenset[str]) -> JSON:
        if ref in inlining or not ref.startswith("#/"):
            self.findings.fail("$ref", path, f"{ref!r} has sibling keywords and cannot be inlined")
        target: Any = self.root
        for part in ref[2:].split("/"):
            if not isinstance(target, Mapping) or part not in target:
                self.findings.fail("$ref", path, f"{ref!r} does not resolve")
            target = target[part]
        if not isinstance(target, Mapping):
            self.findings.fail("$ref", path, f"{ref!r} does not resolve to a schema")
        siblings = {k: v for k, v in s.items() if k != "$ref"}
        return self.node({**target, **siblings}, path, level, inlining | {ref})

    def _object(self, s: Mapping[str, Any], out: JSON, path: str, level: int, inlining: frozenset[str]) -> None:
        if level > MAX_OBJECT_NESTING:
            self.findings.fail("properties", path, f"nests objects {level} deep (limit {MAX_OBJECT_NESTING})")
        properties = s.get("properties", {})
        if not isinstance(properties, Mapping):
            self.findings.fail("properties", path, "must be a mapping")
        required = s.get("required", [])
        converted: JSON = {}
        for name, sub in properties.items():
            prop = self.node(sub, child_path(path, name), level, inlining)
            converted[name] = prop if name in required else nullable(prop)
        self.properties += len(properties)
        extra = [name for name in required if name not in properties]
        if extra:
            self.findings.note("required", path, f"names {extra} absent from properties; dropped")
        if "additionalProperties" in s and s["additionalProperties"] is not False:
            self.findings.note(
                "additionalProperties", path,
                "cannot be expressed in strict mode; the object is closed (additionalProperties: false)",
            )
        out["properties"] = converted
        out["required"] = list(properties)
        out["additionalProperties"] = False


def _is_object(s: Mapping[str, Any]) -> bool:
    t = s.get("type")
    return t == "object" or (isinstance(t, list) and "object" in t) or "properties" in s


def nullable(schema: JSON) -> JSON:
    """Let an (already strict) schema also accept null: how strict mode spells an optional property."""
    if "$ref" in schema:
        return {"anyOf": [schema, _NULL]}
    out = dict(schema)
    if "type" in out:
        types = out["type"] if isinstance(out["type"], list) else [out["type"]]
        if "null" not in types:
            out["type"] = [*types, "null"]
    elif "anyOf" in out:
        if _NULL not in out["anyOf"]:
            out["anyOf"] = [*out["anyOf"], _NULL]
        return out
    elif "enum" not in out and "const" not in out:
        return {"anyOf": [schema, _NULL]}
    if "const" in out:
        value = out.pop("const")
        out["enum"] = [value] if value is None else [value, None]
    elif "enum" in out and None not in out["enum"]:
        out["enum"] = [*out["enum"], None]
    return out


class OpenAIRenderer(Renderer):
    """`{custom_id, method: "POST", url: "/v1/chat/completions", body}` lines."""

    vendor: ClassVar[str] = "openai"
    PARAMS: ClassVar[Mapping[str, str | None]] = {
        # `max_tokens` is deprecated and refused by reasoning models (o-series, gpt-5); every chat model takes
        # `max_completion_tokens`. Sampling parameters reasoning models refuse: data/capabilities.json.
        "max_tokens": "max_completion_tokens",
        "temperature": "temperature",
        "top_p": "top_p",
        "seed": "seed",
        "reasoning_effort": "reasoning_effort",  # CreateChatCompletionRequest.reasoning_effort (OpenAPI 2026-08-21)
        "thinking_budget": None,  # OpenAI takes an effort, not a token budget
    }

    def select_params(self, model_name: str, params: Mapping[str, Any]) -> Mapping[str, Any]:
        out = dict(super().select_params(model_name, params))
        caps = self.capabilities_of(model_name)
        if "reasoning_effort" in out and caps is not None and caps.reasoning == "optional":
            # models that reason only when asked (gpt-5.1 and later) take sampling parameters only without a
            # reasoning effort (capabilities table note)
            for name in ("temperature", "top_p"):
                if name in out:
                    self.warn_param(model_name, name, "is refused together with 'reasoning_effort' by this model "
                                                      "(capabilities table); only 'reasoning_effort' is sent")
                    del out[name]
        return out

    def adapt_schema(self, schema: Mapping[str, Any], findings: SchemaFindings) -> JSON:
        return to_strict_schema(schema, findings)

    def schema_part(self, schema_key: str, adapted: JSON) -> orjson.Fragment:
        return fragment(
            {"type": "json_schema", "json_schema": {"name": schema_name(schema_key), "schema": adapted, "strict": True}}
        )

    def prepare(self, model_name: str, schema_part: Any, params: JSON) -> JSON:
        return {"model": model_name, "response_format": schema_part, **params}

    def render_line(self, template: JSON, request: Mapping[str, Any]) -> bytes:
        body = template.copy()
        body["messages"] = request["messages"]
        end = shared_prefix(request)
        if end and prefix_tokens(request, end) >= OPENAI_MIN_TOKENS:  # requests sharing a prefix, one cache
            body["prompt_cache_key"] = prefix_key(request, end)
        return orjson.dumps(
            {"body": body, "custom_id": request["id"], "method": "POST", "url": URL}, option=LINE_OPTIONS
        )
