"""Anthropic Message Batches requests (`{custom_id, params}`) with native structured output.

Structured output uses `output_config.format` (json_schema), not a forced tool: the answer then arrives as
JSON text in `content[0].text`, like every other vendor's, so result parsing has one path; there is no tool
name to invent nor `tool_use` block to unwrap, and a forced `tool_choice` is refused together with extended
thinking. (Older models without structured-output support would need the tool form; none is special-cased
here because the runtime is never guessed from a model name.)
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any, ClassVar

import orjson

from ..caching import anthropic_min_tokens, prefix_tokens, shared_prefix
from .base import (
    ANNOTATION_KEYWORDS,
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
    split_type_list,
)

CUSTOM_ID = re.compile(r"[a-zA-Z0-9_-]{1,64}")
_is_custom_id = CUSTOM_ID.fullmatch

# Mirrors `SupportedStringFormats` in anthropic/lib/_parse/_transform.py (anthropic 2.13).
STRING_FORMATS = frozenset(
    {"date-time", "time", "date", "duration", "email", "hostname", "uri", "ipv4", "ipv6", "uuid"}
)
_PLAIN_TYPES = frozenset({"boolean", "integer", "number", "null"})
_DROPPED = "is not supported by the vendor; dropped"
MAX_INTEGER_ENUM = 100  # integer ranges up to this wide are sent as an enum of their values
THINKING_MIN_BUDGET = 1024  # budget_tokens: "Must be ≥1024 and less than `max_tokens`" (ThinkingConfigEnabledParam)
THINKING_MIN_TOP_P = 0.95


def adapt_schema(schema: Mapping[str, Any], findings: SchemaFindings, path: str = "") -> JSON:
    """Adapt a JSON Schema to Anthropic's structured-output subset.

    Follows the rules of the SDK's `transform_schema` (anthropic/lib/_parse/_transform.py) keyword for
    keyword and produces the same output, so that this compiler need not import the SDK. Differences, all on
    inputs the SDK crashes on or breaks: a list `type` becomes anyOf branches, `definitions` is adapted like
    `$defs` (the SDK would flatten it into a description and leave its `$ref`s dangling), a schema without
    a type raises `UnsupportedFeature`. Every keyword moved or dropped is recorded in `findings`.

    Example:
        >>> adapt_schema({"type": "integer", "minimum": 1}, SchemaFindings("anthropic", "s"))
        {'type': 'integer', 'description': '{minimum: 1}'}
    """
    if not isinstance(schema, Mapping):
        findings.fail("schema", path, "is a boolean schema, which the vendor cannot express")
    s = dict(schema)
    if isinstance(s.get("type"), list):
        s = split_type_list(s, findings, path)
    out: JSON = {}
    for defs_key in ("$defs", "definitions"):
        defs = s.pop(defs_key, None)
        if isinstance(defs, Mapping):
            out[defs_key] = {
                name: adapt_schema(d, findings, child_path(path, f"{defs_key}.{name}")) for name, d in defs.items()
            }
        elif defs is not None:
            s[defs_key] = defs

    ref = s.pop("$ref", None)
    if ref is not None:
        out["$ref"] = ref
        for key in s:
            if key not in ANNOTATION_KEYWORDS:
                findings.note(key, path, f"next to $ref {_DROPPED}")
        return out

    type_ = s.pop("type", None)
    any_of = s.pop("anyOf", None)
    one_of = s.pop("oneOf", None)
    all_of = s.pop("allOf", None)

    low, high = s.get("minimum"), s.get("maximum")
    if (type_ == "integer" and not {"enum", "const", "multipleOf", "exclusiveMinimum", "exclusiveMaximum"} & s.keys()
            and isinstance(low, int) and isinstance(high, int) and not isinstance(low, bool)
            and not isinstance(high, bool) and 0 <= high - low <= MAX_INTEGER_ENUM):
        # a small integer range (a judge's 1-10 score) as the enum of its values, which the vendor enforces:
        # nothing is lost, so nothing is reported (the SDK would describe minimum/maximum, unenforced)
        s["enum"] = list(range(low, high + 1))
        del s["minimum"], s["maximum"]
    enum = s.get("enum")
    if isinstance(enum, list) and enum and all(_is_primitive(v) for v in enum):
        out["enum"] = list(s.pop("enum"))
    if "const" in s and _is_primitive(s["const"]):
        out["const"] = s.pop("const")
    has_literals = "enum" in out or "const" in out
    if has_literals:
        type_ = None  # the literals say it all; the SDK drops the type

    if isinstance(any_of, list):
        out["anyOf"] = [adapt_schema(v, findings, f"{path}.anyOf[{i}]") for i, v in enumerate(any_of)]
        _note_unused(findings, path, oneOf=one_of, allOf=all_of)
    elif isinstance(one_of, list):
        out["anyOf"] = [adapt_schema(v, findings, f"{path}.oneOf[{i}]") for i, v in enumerate(one_of)]
        findings.note("oneOf", path, SENT_AS_ANYOF)
        _note_unused(findings, path, allOf=all_of)
    elif isinstance(all_of, list):
        out["allOf"] = [adapt_schema(v, findings, f"{path}.allOf[{i}]") for i, v in enumerate(all_of)]
    elif not has_literals:
        if type_ is None:
            findings.fail("type", path, "is missing: the vendor needs a type, anyOf, oneOf, allOf, const or enum")
        out["type"] = type_

    for key in ("description", "title"):
        value = s.pop(key, None)
        if value is not None:
            out[key] = value

    if type_ == "object":
        out["properties"] = {
            name: adapt_schema(sub, findings, child_path(path, name))
            for name, sub in s.pop("properties", {}).items()
        }
        extra = s.pop("additionalProperties", None)
        if extra is not None and extra is not False:
            findings.note("additionalProperties", path, "is not supported by the vendor; the object is closed")
        out["additionalProperties"] = False
        required = s.pop("required", None)
        if required is not None:
            out["required"] = list(required) if isinstance(required, list) else required
    elif type_ == "string":
        fmt = s.pop("format", None)
        if fmt and fmt in STRING_FORMATS:
            out["format"] = fmt
        elif fmt:
            s["format"] = fmt  # re-added last, so it is described after the other moved keywords (as the SDK)
    elif type_ == "array":
        items = s.pop("items", None)
        if items is not None:
            out["items"] = adapt_schema(items, findings, items_path(path))
        min_items = s.pop("minItems", None)
        if min_items in (0, 1):
            out["minItems"] = min_items
        elif min_items is not None:
            s["minItems"] = min_items
    elif type_ is not None and type_ not in _PLAIN_TYPES:
        findings.fail("type", path, f"{type_!r} is not a JSON Schema type")

    if s:
        findings.note_moved(s, path)
        append_to_description(out, s)
    return out


def _note_unused(findings: SchemaFindings, path: str, **ignored: object) -> None:
    for keyword, value in ignored.items():
        if value is not None:
            findings.note(keyword, path, f"next to anyOf {_DROPPED}")


def _is_primitive(value: object) -> bool:
    return value is None or isinstance(value, (str, int, float, bool))


class AnthropicRenderer(Renderer):
    """`{custom_id, params: {model, max_tokens, messages, system?, output_config, ...}}` lines.

    Which Claude models refuse temperature together with top_p, or sampling parameters altogether, is a
    per-model fact kept in `data/capabilities.json` and applied by `Renderer.select_params`.
    """

    vendor: ClassVar[str] = "anthropic"
    PARAMS: ClassVar[Mapping[str, str | None]] = {
        "max_tokens": "max_tokens",
        "temperature": "temperature",
        "top_p": "top_p",
        "seed": None,  # the Messages API has no seed
        "reasoning_effort": None,  # Anthropic takes a thinking budget, not an effort
        "thinking_budget": "thinking",
    }
    # extended thinking (anthropic SDK: ThinkingConfigEnabledParam, ThinkingConfigDisabledParam); 0 turns it off
    PARAM_VALUES: ClassVar[Mapping[str, Callable[[Any], Any]]] = {
        "thinking_budget": lambda budget: {"type": "enabled", "budget_tokens": budget} if budget else {"type": "disabled"},
    }

    @classmethod
    def param_problem(cls, name: str, params: Mapping[str, Any]) -> str | None:
        budget = params.get("thinking_budget")
        if name != "thinking_budget" or not budget:
            return None
        if budget < THINKING_MIN_BUDGET:
            return (f"thinking_budget {budget:,} is below the vendor's minimum of {THINKING_MIN_BUDGET:,}; raise it, "
                    "or give 0 to turn thinking off")
        if budget >= params["max_tokens"]:
            return (f"thinking_budget {budget:,} must be below max_tokens ({params['max_tokens']:,}): thinking tokens "
                    "count toward max_tokens, and the answer needs room too")
        return None

    def select_params(self, model_name: str, params: Mapping[str, Any]) -> Mapping[str, Any]:
        out = dict(super().select_params(model_name, params))
        if out.get("thinking_budget"):
            # extended thinking refuses temperature, and top_p below 0.95 (Anthropic's extended-thinking guide)
            if "temperature" in out:
                self.warn_param(model_name, "temperature", "is refused with extended thinking (thinking_budget); "
                                                           "not sent")
                del out["temperature"]
            if out.get("top_p", 1) < THINKING_MIN_TOP_P:
                self.warn_param(model_name, "top_p", f"is refused below {THINKING_MIN_TOP_P} with extended thinking "
                                                     "(thinking_budget); not sent")
                del out["top_p"]
        return out

    def adapt_schema(self, schema: Mapping[str, Any], findings: SchemaFindings) -> JSON:
        return adapt_schema(schema, findings)

    def schema_part(self, schema_key: str, adapted: JSON) -> orjson.Fragment:
        return fragment({"format": {"type": "json_schema", "schema": adapted}})

    def prepare(self, model_name: str, schema_part: Any, params: JSON) -> JSON:
        if "max_tokens" not in params:
            raise RenderError(self.vendor, None, f"model {model_name!r}: max_tokens is required by the vendor")
        return {"model": model_name, "output_config": schema_part, **params}

    def render_line(self, template: JSON, request: Mapping[str, Any]) -> bytes:
        custom_id = request["id"]
        if not (isinstance(custom_id, str) and _is_custom_id(custom_id)):
            raise RenderError(self.vendor, custom_id, "custom_id must match ^[a-zA-Z0-9_-]{1,64}$")
        messages = request["messages"]
        params = template.copy()
        if messages and messages[0]["role"] == "system":
            system: list[str] = [messages[0]["content"]]
            messages = messages[1:]
        else:
            system = []
        for message in messages:
            if message["role"] == "system":  # rare: system messages further down, collected in order
                system = [m["content"] for m in request["messages"] if m["role"] == "system"]
                messages = [m for m in messages if m["role"] != "system"]
                break
        if system:
            # One system message stays a string; several become text blocks, in order.
            params["system"] = system[0] if len(system) == 1 else [{"type": "text", "text": t} for t in system]
        if not messages:
            raise RenderError(self.vendor, custom_id, "no user message (the vendor needs at least one)")
        params["messages"] = with_cache_breakpoint(request, messages, str(params.get("model", "")))
        return orjson.dumps({"custom_id": custom_id, "params": params}, option=LINE_OPTIONS)


def with_cache_breakpoint(request: Mapping[str, Any], messages: list[Any], model_name: str) -> list[Any]:
    """`messages` with a `cache_control` breakpoint ending the request's shared prefix (compiler/caching.py),
    when it is long enough for the model to cache; unchanged otherwise. The text sent is the same: the last
    user message becomes two text blocks, the first one cached, for 1 hour when `meta.cache_ttl` is "1h"
    (the compiler's choice, `prompt_cache_ttl`), else for the default 5 minutes."""
    end = shared_prefix(request)
    if not end or prefix_tokens(request, end) < anthropic_min_tokens(model_name):
        return messages
    last = messages[-1]
    content = last["content"]
    control = {"type": "ephemeral"}
    if (request.get("meta") or {}).get("cache_ttl") == "1h":
        control["ttl"] = "1h"
    blocks: list[dict[str, Any]] = [{"type": "text", "text": content[:end], "cache_control": control}]
    if content[end:]:
        blocks.append({"type": "text", "text": content[end:]})
    return [*messages[:-1], {"role": last["role"], "content": blocks}]
