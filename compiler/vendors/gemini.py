"""Gemini Batch API file lines (`{key, request}`), REST camelCase, with `responseJsonSchema`.

`responseJsonSchema` takes plain JSON Schema; keywords outside the documented subset are silently ignored
by the API, so they are moved into the description (where the model can read them) and reported.
Documented subset (ai.google.dev/gemini-api/docs/structured-output, "JSON Schema support", as of the
Nov 2025 JSON Schema update; re-verify when the API changes): $id, $defs, $ref, $anchor, type, format, title,
description, enum, items, prefixItems, minItems, maxItems, minimum, maximum, anyOf, oneOf (read as anyOf),
properties, additionalProperties, required, and the non-standard propertyOrdering.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, ClassVar

import orjson

from .base import (
    JSON,
    LINE_OPTIONS,
    SENT_AS_ANYOF,
    Renderer,
    RenderError,
    SchemaFindings,
    append_to_description,
    child_path,
    fragment,
    items_path,
)

_KEPT = frozenset(
    {"$id", "$ref", "$anchor", "type", "format", "title", "description", "enum", "minItems", "maxItems",
     "minimum", "maximum", "required", "propertyOrdering"}
)
_ROLES = {"user": "user", "assistant": "model"}


def adapt_schema(schema: Mapping[str, Any], findings: SchemaFindings, path: str = "") -> JSON:
    """Keep the documented subset, turn `oneOf` into `anyOf` and `const` into a one-value `enum`.

    Example:
        >>> adapt_schema({"type": "string", "minLength": 1}, SchemaFindings("gemini", "s"))
        {'type': 'string', 'description': '{minLength: 1}'}
    """
    if not isinstance(schema, Mapping):
        findings.fail("schema", path, "is a boolean schema, which the vendor cannot express")
    out: JSON = {}
    moved: JSON = {}
    for key, value in schema.items():
        if key == "properties" and isinstance(value, Mapping):
            out[key] = {n: adapt_schema(v, findings, child_path(path, n)) for n, v in value.items()}
        elif key == "items" and isinstance(value, Mapping):
            out[key] = adapt_schema(value, findings, items_path(path))
        elif key == "additionalProperties" and isinstance(value, Mapping):
            out[key] = adapt_schema(value, findings, child_path(path, "additionalProperties"))
        elif key in ("anyOf", "prefixItems") and isinstance(value, list):
            out[key] = [adapt_schema(v, findings, f"{path}.{key}[{i}]") for i, v in enumerate(value)]
        elif key == "oneOf" and isinstance(value, list) and "anyOf" not in schema:
            out["anyOf"] = [adapt_schema(v, findings, f"{path}.oneOf[{i}]") for i, v in enumerate(value)]
            findings.note("oneOf", path, SENT_AS_ANYOF)
        elif key in ("$defs", "definitions") and isinstance(value, Mapping):
            out[key] = {n: adapt_schema(d, findings, child_path(path, f"{key}.{n}")) for n, d in value.items()}
        elif key == "const" and "enum" not in schema:
            out["enum"] = [value]  # same constraint, in a keyword the API documents
        elif key in _KEPT or (key == "additionalProperties" and isinstance(value, bool)):
            out[key] = value
        else:
            moved[key] = value
    findings.note_moved(moved, path)
    append_to_description(out, moved)
    return out


class GeminiRenderer(Renderer):
    """`{key, request: {contents, systemInstruction?, generationConfig}}` lines (the model is per batch)."""

    vendor: ClassVar[str] = "gemini"
    PARAMS: ClassVar[Mapping[str, str | None]] = {
        "max_tokens": "maxOutputTokens",
        "temperature": "temperature",
        "top_p": "topP",
        "seed": "seed",
        "reasoning_effort": None,  # Gemini takes a thinking budget, not an effort
        "thinking_budget": "thinkingConfig",
    }
    # generationConfig.thinkingConfig.thinkingBudget (google-genai ThinkingConfig.thinking_budget; 0 turns it off)
    PARAM_VALUES: ClassVar[Mapping[str, Callable[[Any], Any]]] = {
        "thinking_budget": lambda budget: {"thinkingBudget": budget},
    }

    def adapt_schema(self, schema: Mapping[str, Any], findings: SchemaFindings) -> JSON:
        return adapt_schema(schema, findings)

    def schema_part(self, schema_key: str, adapted: JSON) -> orjson.Fragment:
        return fragment(adapted)

    def prepare(self, model_name: str, schema_part: Any, params: JSON) -> orjson.Fragment:
        # The whole generationConfig is constant for (model, schema, params): one fragment.
        # keys sorted here (the fragment keeps order), so the line does not depend on the params' dict order
        config = {"responseMimeType": "application/json", "responseJsonSchema": schema_part, **params}
        return fragment(dict(sorted(config.items())))

    def render_line(self, template: orjson.Fragment, request: Mapping[str, Any]) -> bytes:
        contents: list[JSON] = []
        system: list[JSON] = []
        for message in request["messages"]:
            role = message["role"]
            if role == "system":
                system.append({"text": message["content"]})
            elif role in _ROLES:
                contents.append({"role": _ROLES[role], "parts": [{"text": message["content"]}]})
            else:
                raise RenderError(self.vendor, request["id"], f"message role {role!r} has no Gemini equivalent")
        if not contents:
            raise RenderError(self.vendor, request["id"], "no user message (the vendor needs at least one)")
        body: JSON = {"contents": contents, "generationConfig": template}
        if system:
            body["systemInstruction"] = {"parts": system}
        return orjson.dumps({"key": request["id"], "request": body}, option=LINE_OPTIONS)
