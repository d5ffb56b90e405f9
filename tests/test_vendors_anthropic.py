"""Anthropic job lines: custom_id rule, system extraction, parameters, schema adaptation (SDK fidelity)."""

from __future__ import annotations

import copy
from typing import Any

import orjson
import pytest

from datafast.compiler.vendors import AnthropicRenderer, Diagnostics, RenderError, UnsupportedFeature
from datafast.compiler.vendors.anthropic import adapt_schema
from datafast.compiler.vendors.base import SchemaFindings

ITEMS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "items": {
            "type": "array", "minItems": 1, "maxItems": 5,
            "items": {
                "type": "object",
                "properties": {"text": {"type": "string", "minLength": 1}},
                "required": ["text"],
                "additionalProperties": False,
            },
        }
    },
    "required": ["items"],
    "additionalProperties": False,
}
KEY = "generate-1a2b3c4d5e6f7a8b"
PLAIN_KEY = "answer-0000000000000000"
SCHEMAS = {KEY: ITEMS_SCHEMA, PLAIN_KEY: {"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"]}}

# Schemas on which our adaptation must equal the SDK's transform_schema exactly.
FIDELITY_SCHEMAS: list[dict[str, Any]] = [
    ITEMS_SCHEMA,
    {"type": "integer", "minimum": 1, "description": "A number"},
    {"type": "integer", "minimum": 1, "maximum": 1000, "description": "A wide range: described, as the SDK"},
    {"type": "object", "properties": {
        "label": {"type": "string", "enum": ["pos", "neg"], "description": "Class."},
        "score": {"type": "number", "exclusiveMinimum": 0, "multipleOf": 0.5},
        "when": {"type": "string", "format": "date-time"},
        "site": {"type": "string", "format": "uri-reference", "pattern": "^https://", "maxLength": 200},
        "kind": {"const": "review"},
        "flag": {"type": "boolean", "default": False},
        "nothing": {"type": "null"},
    }, "required": ["label"], "title": "Answer"},
    {"type": "object", "properties": {
        "tags": {"type": "array", "items": {"type": "string"}, "minItems": 0, "uniqueItems": True},
        "pairs": {"type": "array", "items": {"type": "array", "items": {"type": "integer"}}, "minItems": 2},
    }, "additionalProperties": True},
    {"type": "object", "$defs": {"Turn": {"type": "object", "properties": {"role": {"enum": ["user", "assistant"]},
                                                                          "text": {"type": "string"}},
                                          "required": ["role", "text"]}},
     "properties": {"turns": {"type": "array", "items": {"$ref": "#/$defs/Turn"}, "maxItems": 8},
                    "first": {"$ref": "#/$defs/Turn", "description": "dropped next to $ref"}},
     "required": ["turns"]},
    {"type": "object", "properties": {
        "v": {"anyOf": [{"type": "string", "minLength": 3}, {"type": "null"}]},
        "w": {"oneOf": [{"type": "integer"}, {"type": "string"}]},
        "x": {"allOf": [{"type": "object", "properties": {"a": {"type": "string"}}}]},
        "y": {"type": "object", "properties": {"z": {"type": "object", "properties": {}}}, "minProperties": 1},
    }},
    {"$ref": "#/$defs/Root", "$defs": {"Root": {"type": "object", "properties": {"n": {"type": "integer"}}}}},
    {"enum": [1, "a", None, 2.5, True]},
]


def make_request(i: int = 0, **overrides: Any) -> dict[str, Any]:
    request = {
        "id": f"{i:032x}", "stage": "generate", "model": "anthropic:claude-haiku-4-5",
        "messages": [{"role": "system", "content": "You write reviews."},
                     {"role": "user", "content": f"Write review {i}."}],
        "params": {"max_tokens": 1024}, "schema": KEY, "meta": {},
    }
    request.update(overrides)
    return request


def render(request: dict[str, Any], strict: bool = False) -> tuple[dict[str, Any], Diagnostics]:
    diagnostics = Diagnostics(strict)
    line = AnthropicRenderer(SCHEMAS, diagnostics).render(request)
    assert line.endswith(b"\n") and line.count(b"\n") == 1
    return orjson.loads(line), diagnostics


def adapt(schema: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    findings = SchemaFindings("anthropic", "s")
    out = adapt_schema(schema, findings)
    return out, [str(w) for w in findings.warnings()]


# -- schema adaptation ------------------------------------------------------------------------------------


@pytest.mark.parametrize("schema", FIDELITY_SCHEMAS, ids=range(len(FIDELITY_SCHEMAS)))
def test_adaptation_matches_the_sdk_transform(schema):
    transform = pytest.importorskip("anthropic.lib._parse._transform").transform_schema
    before = copy.deepcopy(schema)
    assert adapt(schema)[0] == transform(copy.deepcopy(schema))
    assert schema == before  # input not mutated


def test_a_small_integer_range_is_sent_as_an_enum_the_vendor_enforces():
    # datafast's one departure from the SDK: a judge's 1-10 score would otherwise only be described, and out
    # of range answers rejected after they are paid for
    schema = {"type": "integer", "minimum": 1, "maximum": 10, "description": "A number"}
    out, warnings = adapt(schema)
    transform = pytest.importorskip("anthropic.lib._parse._transform").transform_schema
    assert out == transform({"enum": list(range(1, 11)), "description": "A number"}) == {
        "enum": list(range(1, 11)), "description": "A number"}
    assert warnings == []  # enforced as given: nothing to warn about, and --strict accepts it
    assert adapt({**schema, "minimum": 0, "maximum": 100})[0]["enum"] == list(range(101))
    assert "enum" not in adapt({**schema, "type": "number"})[0]
    for extra in ({"multipleOf": 2}, {"exclusiveMaximum": 10}):  # an enum would admit values the schema refuses
        assert "enum" not in adapt({**schema, **extra})[0]


def test_unsupported_keywords_warn_with_keyword_and_path():
    out, warnings = adapt(ITEMS_SCHEMA)
    assert out["properties"]["items"]["minItems"] == 1
    assert out["properties"]["items"]["description"] == "{maxItems: 5}"
    assert warnings == [
        "anthropic: schema 's' keyword 'minLength' at items[].text is not enforced by the vendor; "
        "moved into the description",
        "anthropic: schema 's' keyword 'maxItems' at items is not enforced by the vendor; moved into the description",
    ]


def test_annotations_move_without_warning_and_paths_aggregate():
    _, warnings = adapt({"type": "object", "properties": {
        "a": {"type": "string", "default": "x", "maxLength": 5},
        "b": {"type": "string", "maxLength": 9, "examples": ["y"]},
    }})
    assert warnings == ["anthropic: schema 's' keyword 'maxLength' at a, b is not enforced by the vendor; "
                        "moved into the description"]


def test_type_list_becomes_anyof():
    out, _ = adapt({"type": "object", "properties": {"n": {"type": ["string", "null"], "maxLength": 3,
                                                           "description": "d"}}})
    assert out["properties"]["n"] == {
        "anyOf": [{"type": "string", "description": "{maxLength: 3}"}, {"type": "null"}], "description": "d"}


def test_oneof_and_ref_siblings_are_reported():
    _, warnings = adapt(FIDELITY_SCHEMAS[4] | {"properties": {
        **FIDELITY_SCHEMAS[4]["properties"],
        "u": {"oneOf": [{"type": "string"}, {"type": "integer"}]},
        "r": {"$ref": "#/$defs/Turn", "maxItems": 3}}})
    assert any("'oneOf' at u is not enforced by the vendor; sent as anyOf" in w for w in warnings)
    assert any("'maxItems' at r next to $ref is not supported by the vendor; dropped" in w for w in warnings)


def test_untyped_schema_is_an_error():
    with pytest.raises(UnsupportedFeature) as info:
        adapt({"type": "object", "properties": {"x": {"description": "anything"}}})
    assert (info.value.keyword, info.value.path) == ("type", "x")


def test_root_dollar_schema_is_not_sent():
    line, diagnostics = render(make_request())
    schemas = {KEY: {"$schema": "https://json-schema.org/draft/2020-12/schema", **ITEMS_SCHEMA}}
    other = AnthropicRenderer(schemas, Diagnostics()).render(make_request())
    assert orjson.loads(other) == line


# -- line shape ---------------------------------------------------------------------------------------------


def test_line_shape_and_output_config():
    request = make_request(3)
    line, _ = render(request)
    assert set(line) == {"custom_id", "params"}
    assert line["custom_id"] == request["id"]
    params = line["params"]
    assert params["model"] == "claude-haiku-4-5"
    assert params["max_tokens"] == 1024
    assert params["output_config"] == {"format": {"type": "json_schema", "schema": adapt(ITEMS_SCHEMA)[0]}}


def test_line_validates_against_sdk_request_type():
    pydantic = pytest.importorskip("pydantic")
    batch_params = pytest.importorskip("anthropic.types.messages.batch_create_params")
    message_params = pytest.importorskip("anthropic.types.message_create_params")
    line, _ = render(make_request(params={"max_tokens": 9}))
    pydantic.TypeAdapter(batch_params.Request).validate_python(line)
    known = message_params.MessageCreateParamsNonStreaming.__optional_keys__
    assert set(line["params"]) <= known | message_params.MessageCreateParamsNonStreaming.__required_keys__


@pytest.mark.parametrize("bad_id", ["has space", "x" * 65, "", "é", "a.b"])
def test_custom_id_rule(bad_id):
    with pytest.raises(RenderError, match=r"custom_id must match"):
        render(make_request(id=bad_id))


def test_custom_id_accepts_the_full_alphabet():
    line, _ = render(make_request(id="Az09_-" * 10 + "abcd"))
    assert line["custom_id"] == "Az09_-" * 10 + "abcd"


def test_system_goes_to_params_system():
    line, _ = render(make_request())
    assert line["params"]["system"] == "You write reviews."
    assert line["params"]["messages"] == [{"role": "user", "content": "Write review 0."}]


def test_conversation_history_and_several_system_messages():
    messages = [{"role": "system", "content": "A"}, {"role": "user", "content": "u1"},
                {"role": "assistant", "content": "a1"}, {"role": "system", "content": "B"},
                {"role": "user", "content": "u2"}]
    line, _ = render(make_request(messages=messages))
    assert line["params"]["system"] == [{"type": "text", "text": "A"}, {"type": "text", "text": "B"}]
    assert [m["role"] for m in line["params"]["messages"]] == ["user", "assistant", "user"]


def test_no_system_message():
    line, _ = render(make_request(messages=[{"role": "user", "content": "hi"}]))
    assert "system" not in line["params"]


def test_only_system_is_an_error():
    with pytest.raises(RenderError, match="no user message"):
        render(make_request(messages=[{"role": "system", "content": "s"}]))


# -- parameters ---------------------------------------------------------------------------------------------


def test_temperature_with_top_p_sends_only_temperature_and_warns():
    line, diagnostics = render(make_request(params={"max_tokens": 10, "temperature": 0.5, "top_p": 0.9}))
    assert line["params"]["temperature"] == 0.5
    assert "top_p" not in line["params"]
    parameter_warnings = [str(w) for w in diagnostics.warnings if w.schema_key is None]
    assert parameter_warnings == [
        "anthropic: parameter 'top_p' for model 'claude-haiku-4-5' is refused together with 'temperature' by this "
        "model (capabilities table); only 'temperature' is sent",
    ]


def test_temperature_with_top_p_under_strict_is_an_error():
    plain = {KEY: {"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"]}}
    renderer = AnthropicRenderer(plain, Diagnostics(strict=True))  # nothing to warn about but the parameter
    renderer.render(make_request(model="anthropic:claude-sonnet-4-5", params={"max_tokens": 10, "top_p": 0.9}))
    with pytest.raises(UnsupportedFeature, match="'top_p' for model 'claude-sonnet-4-5'") as info:
        renderer.render(make_request(1, model="anthropic:claude-sonnet-4-5",
                                     params={"max_tokens": 10, "temperature": 0.5, "top_p": 0.9}))
    assert (info.value.schema_key, info.value.keyword) == (None, "top_p")


def test_claude_3_models_take_temperature_with_top_p():
    line, diagnostics = render(make_request(model="anthropic:claude-3-5-haiku-latest",
                                            params={"max_tokens": 10, "temperature": 0.5, "top_p": 0.9}))
    assert (line["params"]["temperature"], line["params"]["top_p"]) == (0.5, 0.9)
    assert not [w for w in diagnostics.warnings if w.schema_key is None]


@pytest.mark.parametrize("model", ["claude-opus-4-7", "claude-opus-4-7-20260416"])
def test_models_without_sampling_parameters_get_neither(model):
    line, diagnostics = render(make_request(model=f"anthropic:{model}",
                                            params={"max_tokens": 10, "temperature": 0.5, "top_p": 0.9}))
    assert "temperature" not in line["params"] and "top_p" not in line["params"]
    assert line["params"]["max_tokens"] == 10
    assert [str(w) for w in diagnostics.warnings if w.schema_key is None] == [
        f"anthropic: parameter '{name}' for model '{model}' is refused by this model (capabilities table); not sent"
        for name in ("temperature", "top_p")
    ]


def test_max_tokens_above_the_model_maximum_is_clamped():
    line, diagnostics = render(make_request(params={"max_tokens": 100_000}))
    assert line["params"]["max_tokens"] == 64_000
    assert [str(w) for w in diagnostics.warnings if w.schema_key is None] == [
        "anthropic: parameter 'max_tokens' for model 'claude-haiku-4-5' is 100,000, above the model's maximum "
        "output of 64,000 tokens (capabilities table); 64,000 is sent",
    ]


def test_unknown_model_gets_no_capability_change():
    line, diagnostics = render(make_request(model="anthropic:some-future-model",
                                            params={"max_tokens": 500_000, "temperature": 0.5, "top_p": 0.9}))
    assert (line["params"]["max_tokens"], line["params"]["temperature"], line["params"]["top_p"]) == \
        (500_000, 0.5, 0.9)
    assert not [w for w in diagnostics.warnings if w.schema_key is None]


def test_top_p_alone_is_sent():
    line, diagnostics = render(make_request(params={"max_tokens": 10, "top_p": 0.9}))
    assert line["params"]["top_p"] == 0.9
    assert not [w for w in diagnostics.warnings if w.schema_key is None]


def test_seed_is_not_sent_and_warns_once_per_model():
    diagnostics = Diagnostics()
    renderer = AnthropicRenderer(SCHEMAS, diagnostics)
    for i in range(3):
        line = orjson.loads(renderer.render(make_request(i, params={"max_tokens": 10, "seed": 1})))
        assert "seed" not in line["params"]
    renderer.render(make_request(9, model="anthropic:claude-sonnet-4-5", params={"max_tokens": 10, "seed": 1}))
    seed_warnings = [str(w) for w in diagnostics.warnings if w.keyword == "seed"]
    assert seed_warnings == [
        "anthropic: parameter 'seed' for model 'claude-haiku-4-5' is not supported by the vendor; not sent",
        "anthropic: parameter 'seed' for model 'claude-sonnet-4-5' is not supported by the vendor; not sent",
    ]


def test_strict_mode_makes_parameter_warnings_errors():
    with pytest.raises(UnsupportedFeature) as info:
        render(make_request(params={"max_tokens": 10, "seed": 1}, schema=PLAIN_KEY), strict=True)
    assert (info.value.vendor, info.value.schema_key, info.value.keyword) == ("anthropic", None, "seed")
