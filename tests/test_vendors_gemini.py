"""Gemini job lines: REST camelCase, systemInstruction, generationConfig, schema subset."""

from __future__ import annotations

import re
from typing import Any

import orjson
import pytest

from datafast.compiler.vendors import Diagnostics, GeminiRenderer, RenderError
from datafast.compiler.vendors.base import SchemaFindings
from datafast.compiler.vendors.gemini import adapt_schema

SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "items": {
            "type": "array", "minItems": 1, "maxItems": 5,
            "items": {"type": "object",
                      "properties": {"full_text": {"type": "string", "minLength": 1},
                                     "stars": {"type": "integer", "minimum": 1, "maximum": 5}},
                      "required": ["full_text"], "additionalProperties": False},
        }
    },
    "required": ["items"],
    "additionalProperties": False,
}
KEY = "generate-1a2b3c4d5e6f7a8b"
CAMEL = re.compile(r"[a-z][a-zA-Z0-9]*")


def make_request(i: int = 0, **overrides: Any) -> dict[str, Any]:
    request = {
        "id": f"{i:032x}", "stage": "generate", "model": "gemini:gemini-2.5-flash",
        "messages": [{"role": "system", "content": "You write reviews."},
                     {"role": "user", "content": f"Write review {i}."}],
        "params": {"max_tokens": 2048, "temperature": 0.7, "top_p": 0.9, "seed": 1},
        "schema": KEY, "meta": {},
    }
    request.update(overrides)
    return request


def render(request: dict[str, Any]) -> tuple[dict[str, Any], Diagnostics]:
    diagnostics = Diagnostics()
    line = GeminiRenderer({KEY: SCHEMA}, diagnostics).render(request)
    parsed = orjson.loads(line)
    assert line == orjson.dumps(parsed) + b"\n"  # compact UTF-8, one line
    assert list(parsed) == sorted(parsed) and list(parsed["request"]) == sorted(parsed["request"])
    schema = parsed["request"]["generationConfig"]["responseJsonSchema"]
    assert list(schema["properties"]) == list(SCHEMA["properties"])  # property order kept: models follow it
    return parsed, diagnostics


def keys_outside_schema(obj: Any) -> list[str]:
    """Every object key of a line, except inside responseJsonSchema (whose property names are user data)."""
    if isinstance(obj, list):
        return [k for item in obj for k in keys_outside_schema(item)]
    if not isinstance(obj, dict):
        return []
    found = list(obj)
    for key, value in obj.items():
        if key != "responseJsonSchema":
            found += keys_outside_schema(value)
    return found


def test_line_shape():
    request = make_request(4)
    line, _ = render(request)
    assert set(line) == {"key", "request"}
    assert line["key"] == request["id"]
    assert set(line["request"]) == {"contents", "systemInstruction", "generationConfig"}


def test_keys_are_rest_camel_case():
    line, _ = render(make_request())
    keys = keys_outside_schema(line)
    assert "maxOutputTokens" in keys and "responseJsonSchema" in keys
    assert [k for k in keys if not CAMEL.fullmatch(k)] == []


def test_contents_and_system_instruction():
    line, _ = render(make_request())
    assert line["request"]["systemInstruction"] == {"parts": [{"text": "You write reviews."}]}
    assert line["request"]["contents"] == [{"role": "user", "parts": [{"text": "Write review 0."}]}]


def test_assistant_turns_become_model_turns():
    messages = [{"role": "user", "content": "u1"}, {"role": "assistant", "content": "a1"},
                {"role": "user", "content": "u2"}]
    line, _ = render(make_request(messages=messages))
    assert [c["role"] for c in line["request"]["contents"]] == ["user", "model", "user"]
    assert "systemInstruction" not in line["request"]


def test_unknown_role_is_an_error():
    with pytest.raises(RenderError, match="role 'tool'"):
        render(make_request(messages=[{"role": "tool", "content": "x"}]))


def test_generation_config_mapping():
    line, diagnostics = render(make_request())
    config = line["request"]["generationConfig"]
    assert config == {
        "responseMimeType": "application/json",
        "responseJsonSchema": config["responseJsonSchema"],
        "maxOutputTokens": 2048, "temperature": 0.7, "topP": 0.9, "seed": 1,
    }
    assert not [w for w in diagnostics.warnings if w.schema_key is None]


def test_unset_parameters_are_not_sent():
    line, _ = render(make_request(params={"max_tokens": 64}))
    assert set(line["request"]["generationConfig"]) == {"responseMimeType", "responseJsonSchema", "maxOutputTokens"}


def test_max_tokens_above_the_model_maximum_is_clamped():
    line, diagnostics = render(make_request(model="gemini:gemini-2.0-flash", params={"max_tokens": 20_000}))
    assert line["request"]["generationConfig"]["maxOutputTokens"] == 8_192
    assert [str(w) for w in diagnostics.warnings if w.schema_key is None] == [
        "gemini: parameter 'max_tokens' for model 'gemini-2.0-flash' is 20,000, above the model's maximum output "
        "of 8,192 tokens (capabilities table); 8,192 is sent",
    ]
    line, _ = render(make_request(model="gemini:gemini-2.5-flash", params={"max_tokens": 20_000}))
    assert line["request"]["generationConfig"]["maxOutputTokens"] == 20_000


def test_prompt_over_the_input_limit_is_counted_without_max_tokens():
    # Gemini bounds the prompt alone: 1,048,576 tokens; ~4 characters a token.
    diagnostics = Diagnostics()
    renderer = GeminiRenderer({KEY: SCHEMA}, diagnostics)
    fits = [{"role": "user", "content": "x" * (4 * 1_048_000)}]
    renderer.render(make_request(0, messages=fits, params={"max_tokens": 60_000}))
    assert not [w for w in diagnostics.warnings if w.keyword == "context_window"]
    renderer.render(make_request(1, messages=[{"role": "user", "content": "x" * (4 * 1_049_000)}]))
    assert [str(w) for w in diagnostics.warnings if w.keyword == "context_window"] == [
        f"gemini: 1 request for model 'gemini-2.5-flash' may not fit its input limit of 1,048,576 tokens "
        f"(estimated prompt); the longest is '{1:032x}' at ~1,049,004 tokens",
    ]


def test_matches_the_sdk_rest_conversion():
    # google-genai's own snake_case -> REST converter for a batch request must give the same request body.
    batches = pytest.importorskip("google.genai.batches")
    to_rest = getattr(batches, "_InlinedRequest_to_mldev", None)
    if to_rest is None:
        pytest.skip("google-genai has no _InlinedRequest_to_mldev")
    line, _ = render(make_request(messages=[{"role": "system", "content": "S"}, {"role": "user", "content": "U"},
                                            {"role": "assistant", "content": "A"}, {"role": "user", "content": "V"}]))
    expected = to_rest(None, {
        "contents": [{"role": "user", "parts": [{"text": "U"}]}, {"role": "model", "parts": [{"text": "A"}]},
                     {"role": "user", "parts": [{"text": "V"}]}],
        "config": {"system_instruction": {"parts": [{"text": "S"}]}, "max_output_tokens": 2048, "temperature": 0.7,
                   "top_p": 0.9, "seed": 1, "response_mime_type": "application/json",
                   "response_json_schema": line["request"]["generationConfig"]["responseJsonSchema"]},
    })
    assert expected["request"] == line["request"]


def test_schema_keeps_the_documented_subset():
    line, diagnostics = render(make_request())
    schema = line["request"]["generationConfig"]["responseJsonSchema"]
    items = schema["properties"]["items"]
    assert (items["minItems"], items["maxItems"]) == (1, 5)
    assert items["items"]["properties"]["stars"] == {"type": "integer", "minimum": 1, "maximum": 5}
    assert items["items"]["properties"]["full_text"] == {"type": "string", "description": "{minLength: 1}"}
    assert items["items"]["additionalProperties"] is False
    assert [str(w) for w in diagnostics.warnings] == [
        "gemini: schema 'generate-1a2b3c4d5e6f7a8b' keyword 'minLength' at items[].full_text is not enforced by "
        "the vendor; moved into the description",
    ]


def test_schema_rewrites():
    findings = SchemaFindings("gemini", "s")
    out = adapt_schema({"type": "object", "$defs": {"T": {"type": "string", "pattern": "^a"}},
                        "properties": {"k": {"const": "x"}, "u": {"oneOf": [{"$ref": "#/$defs/T"}, {"type": "null"}]},
                                       "t": {"type": ["string", "null"], "exclusiveMaximum": 3}}},
                       findings)
    assert out["properties"]["k"] == {"enum": ["x"]}
    assert out["properties"]["u"] == {"anyOf": [{"$ref": "#/$defs/T"}, {"type": "null"}]}
    assert out["properties"]["t"] == {"type": ["string", "null"], "description": "{exclusiveMaximum: 3}"}
    assert out["$defs"]["T"] == {"type": "string", "description": "{pattern: ^a}"}
    assert sorted(w.keyword for w in findings.warnings()) == ["exclusiveMaximum", "oneOf", "pattern"]
