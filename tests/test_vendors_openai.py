"""OpenAI job lines: shape, parameter mapping, strict Structured Outputs schema, OpenAPI validity."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import jsonschema
import orjson
import pytest
import yaml
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from datafast.compiler.vendors import Diagnostics, OpenAIRenderer, UnsupportedFeature
from datafast.compiler.vendors.base import SchemaFindings
from datafast.compiler.vendors.openai import nullable, schema_name, to_strict_schema

OPENAPI = Path("/work/shared/reference/openai-openapi.yaml")

ITEMS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "items": {
            "type": "array", "minItems": 1, "maxItems": 5,
            "items": {
                "type": "object",
                "properties": {
                    "text": {"type": "string", "minLength": 1},
                    "rating": {"type": "integer", "minimum": 1, "maximum": 5},
                    "tone": {"type": "string", "enum": ["formal", "casual"]},
                },
                "required": ["text"],
                "additionalProperties": False,
            },
        }
    },
    "required": ["items"],
    "additionalProperties": False,
}
DEFS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "$defs": {"Pair": {"type": "object", "properties": {"q": {"type": "string"}, "a": {"type": "string"}},
                       "required": ["q", "a"]}},
    "properties": {
        "pairs": {"type": "array", "items": {"$ref": "#/$defs/Pair"}},
        "best": {"$ref": "#/$defs/Pair", "description": "The best pair."},
        "extra": {"$ref": "#/$defs/Pair"},
        "kind": {"oneOf": [{"type": "string"}, {"type": "integer"}]},
    },
    "required": ["pairs", "best", "kind"],
}
SCHEMAS = {"generate-1a2b3c4d5e6f7a8b": ITEMS_SCHEMA, "judge-0011223344556677": DEFS_SCHEMA}


def make_request(i: int = 0, *, model: str = "openai:gpt-4.1-mini", schema: str = "generate-1a2b3c4d5e6f7a8b",
                 params: dict[str, Any] | None = None, messages: list[dict[str, str]] | None = None) -> dict[str, Any]:
    return {
        "id": f"{i:032x}", "stage": "generate", "model": model,
        "messages": messages or [{"role": "system", "content": "You write reviews."},
                                 {"role": "user", "content": f"Write review {i} — «ünïcode»."}],
        "params": {"max_tokens": 2048} if params is None else params,
        "schema": schema, "meta": {"label": "pos"},
    }


def render(request: dict[str, Any], schemas: dict[str, Any] = SCHEMAS, strict: bool = False
           ) -> tuple[dict[str, Any], bytes, Diagnostics]:
    diagnostics = Diagnostics(strict)
    line = OpenAIRenderer(schemas, diagnostics).render(request)
    return orjson.loads(line), line, diagnostics


def strict(schema: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    findings = SchemaFindings("openai", "s")
    out = to_strict_schema(schema, findings)
    return out, [str(w) for w in findings.warnings()]


@pytest.fixture(scope="session")
def chat_request_validator() -> jsonschema.protocols.Validator:
    if not OPENAPI.exists():
        pytest.skip(f"{OPENAPI} not available")
    with OPENAPI.open("rb") as fh:
        document = yaml.load(fh, Loader=yaml.CSafeLoader)
    registry: Registry = Registry().with_resource(
        "urn:openai", Resource.from_contents(document, default_specification=DRAFT202012)
    )
    return jsonschema.Draft202012Validator(
        {"$ref": "urn:openai#/components/schemas/CreateChatCompletionRequest"}, registry=registry
    )


# -- OpenAPI validity -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("schema", "params"),
    [
        ("generate-1a2b3c4d5e6f7a8b", {"max_tokens": 2048}),
        ("generate-1a2b3c4d5e6f7a8b", {"max_tokens": 512, "temperature": 0.7, "top_p": 0.9, "seed": 1}),
        ("judge-0011223344556677", {"max_tokens": 100, "temperature": 0.0}),
    ],
)
def test_body_validates_against_create_chat_completion_request(chat_request_validator, schema, params):
    line, _, _ = render(make_request(schema=schema, params=params))
    errors = list(chat_request_validator.iter_errors(line["body"]))
    assert not errors, [e.message for e in errors]


@pytest.mark.parametrize(
    "mutate",
    [
        lambda b: b.pop("messages"),
        lambda b: b["response_format"].update(type="json_schemas"),
        lambda b: b.update(max_completion_tokens="many"),
        lambda b: b.update(temperature=3),
    ],
)
def test_validator_rejects_broken_bodies(chat_request_validator, mutate):
    # Control: the OpenAPI validator is able to fail, so the test above means something.
    line, _, _ = render(make_request(params={"max_tokens": 10, "temperature": 1.0}))
    body = copy.deepcopy(line["body"])
    mutate(body)
    assert list(chat_request_validator.iter_errors(body))


# -- line shape and parameters ----------------------------------------------------------------------------


def test_line_shape_and_canonical_bytes():
    request = make_request(7)
    line, raw, diagnostics = render(request)
    assert set(line) == {"custom_id", "method", "url", "body"}
    assert line["custom_id"] == request["id"]
    assert line["method"] == "POST"
    assert line["url"] == "/v1/chat/completions"
    assert line["body"]["messages"] == request["messages"]
    assert raw == orjson.dumps(line) + b"\n"  # compact UTF-8, one line
    assert list(line) == sorted(line) and list(line["body"]) == sorted(line["body"])
    assert "«ünïcode»".encode() in raw  # UTF-8, not \u escapes
    rf = line["body"]["response_format"]
    assert rf["type"] == "json_schema"
    assert rf["json_schema"]["strict"] is True
    assert rf["json_schema"]["name"] == "generate-1a2b3c4d5e6f7a8b"


def test_model_name_split_on_first_colon_only():
    line, _, _ = render(make_request(model="openai:ft:gpt-4o-mini-2024-07-18:acme::abc123"))
    assert line["body"]["model"] == "ft:gpt-4o-mini-2024-07-18:acme::abc123"


def test_parameter_mapping():
    line, _, diagnostics = render(make_request(params={"max_tokens": 300, "temperature": 0.2, "top_p": 0.5, "seed": 9}))
    body = line["body"]
    assert body["max_completion_tokens"] == 300
    assert "max_tokens" not in body
    assert (body["temperature"], body["top_p"], body["seed"]) == (0.2, 0.5, 9)
    assert not [w for w in diagnostics.warnings if w.schema_key is None]


@pytest.mark.parametrize("model", ["o3-mini", "gpt-5-mini", "o3-mini-2025-01-31", "gpt-5"])
def test_reasoning_models_get_no_sampling_parameters(model):
    line, _, diagnostics = render(make_request(model=f"openai:{model}",
                                               params={"max_tokens": 300, "temperature": 0.7, "top_p": 0.5, "seed": 9}))
    body = line["body"]
    assert "temperature" not in body and "top_p" not in body
    assert body["seed"] == 9
    assert body["max_completion_tokens"] == 300 and "max_tokens" not in body  # reasoning models refuse max_tokens
    assert [str(w) for w in diagnostics.warnings if w.schema_key is None] == [
        f"openai: parameter '{name}' for model '{model}' is refused by this model (capabilities table); not sent"
        for name in ("temperature", "top_p")
    ]


@pytest.mark.parametrize("model", ["gpt-4.1-mini", "gpt-5-chat-latest", "gpt-5.1"])
def test_models_that_take_sampling_parameters_keep_them(model):
    line, _, diagnostics = render(make_request(model=f"openai:{model}",
                                               params={"max_tokens": 300, "temperature": 0.7, "top_p": 0.5}))
    assert (line["body"]["temperature"], line["body"]["top_p"]) == (0.7, 0.5)
    assert not [w for w in diagnostics.warnings if w.schema_key is None]


def test_refused_parameter_under_strict_is_an_error():
    plain = {"s": {"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"],
                   "additionalProperties": False}}  # nothing to warn about but the parameter
    render(make_request(schema="s", params={"max_tokens": 10, "temperature": 0.7}), plain, strict=True)
    with pytest.raises(UnsupportedFeature, match="'temperature' for model 'o3-mini'") as info:
        render(make_request(model="openai:o3-mini", schema="s", params={"max_tokens": 10, "temperature": 0.7}),
               plain, strict=True)
    assert (info.value.schema_key, info.value.keyword, info.value.path) == (None, "temperature", "params.temperature")


def test_max_tokens_above_the_model_maximum_is_clamped_in_the_line():
    line, _, diagnostics = render(make_request(model="openai:gpt-4o-mini", params={"max_tokens": 50_000}))
    assert line["body"]["max_completion_tokens"] == 16_384
    assert [w.keyword for w in diagnostics.warnings if w.schema_key is None] == ["max_tokens"]
    line, _, diagnostics = render(make_request(model="openai:gpt-4o-mini", params={"max_tokens": 16_384}))
    assert line["body"]["max_completion_tokens"] == 16_384
    assert not [w for w in diagnostics.warnings if w.schema_key is None]


def test_reasoning_model_body_validates(chat_request_validator):
    line, _, _ = render(make_request(model="openai:o3-mini", params={"max_tokens": 200_000, "temperature": 0.7}))
    assert line["body"]["max_completion_tokens"] == 100_000
    assert not list(chat_request_validator.iter_errors(line["body"]))


def test_unset_parameters_are_not_sent():
    line, _, _ = render(make_request(params={"max_tokens": 300}))
    assert not {"temperature", "top_p", "seed"} & set(line["body"])


def test_unknown_parameter_is_a_warning_and_not_sent():
    line, _, diagnostics = render(make_request(params={"max_tokens": 3, "top_k": 40}))
    assert "top_k" not in line["body"]
    assert "openai: parameter 'top_k' for model 'gpt-4.1-mini' is not supported by the vendor; not sent" in [
        str(w) for w in diagnostics.warnings
    ]


def test_schema_name_is_sanitized():
    assert schema_name("gen.v2/x" + "y" * 100) == ("gen_v2_x" + "y" * 100)[:64]


# -- strict schema conversion -----------------------------------------------------------------------------


def test_optional_properties_become_nullable_and_required():
    out, _ = strict(ITEMS_SCHEMA)
    item = out["properties"]["items"]["items"]
    assert item["required"] == ["text", "rating", "tone"]
    assert item["properties"]["text"]["type"] == "string"  # required: untouched
    assert item["properties"]["rating"]["type"] == ["integer", "null"]
    assert item["properties"]["tone"] == {"type": ["string", "null"], "enum": ["formal", "casual", None]}


def test_every_object_is_closed():
    out, _ = strict({"type": "object", "properties": {"a": {"type": "object", "properties": {"b": {"type": "string"}}}}})
    assert out["additionalProperties"] is False
    assert out["properties"]["a"]["additionalProperties"] is False
    assert out["properties"]["a"]["required"] == ["b"]


def test_unsupported_keywords_move_into_description_with_a_warning():
    out, warnings = strict({
        "type": "object",
        "properties": {"t": {"type": "string", "description": "A title.", "minLength": 2, "maxLength": 80},
                       "u": {"type": "array", "items": {"type": "string"}, "uniqueItems": True}},
        "required": ["t", "u"],
    })
    assert out["properties"]["t"] == {"type": "string", "description": "A title.\n\n{minLength: 2, maxLength: 80}"}
    assert out["properties"]["u"]["description"] == "{uniqueItems: True}"
    assert "uniqueItems" not in out["properties"]["u"]
    assert warnings == [
        "openai: schema 's' keyword 'minLength' at t is not enforced by the vendor; moved into the description",
        "openai: schema 's' keyword 'maxLength' at t is not enforced by the vendor; moved into the description",
        "openai: schema 's' keyword 'uniqueItems' at u is not enforced by the vendor; moved into the description",
    ]


def test_supported_keywords_are_kept_silently():
    schema = {"type": "object", "properties": {
        "n": {"type": "integer", "minimum": 0, "exclusiveMaximum": 10, "multipleOf": 2},
        "d": {"type": "string", "format": "date", "pattern": "^[0-9-]+$"},
        "l": {"type": "array", "items": {"type": "number"}, "minItems": 1, "maxItems": 3},
    }, "required": ["n", "d", "l"], "additionalProperties": False}
    out, warnings = strict(schema)
    assert out == schema
    assert warnings == []


def test_unsupported_format_is_moved():
    out, warnings = strict({"type": "object", "properties": {"u": {"type": "string", "format": "uri"}},
                            "required": ["u"]})
    assert out["properties"]["u"] == {"type": "string", "description": "{format: uri}"}
    assert len(warnings) == 1 and "'format' at u" in warnings[0]


def test_defs_and_refs_are_preserved():
    out, warnings = strict(DEFS_SCHEMA)
    assert out["$defs"]["Pair"] == {"type": "object", "properties": {"q": {"type": "string"}, "a": {"type": "string"}},
                                    "required": ["q", "a"], "additionalProperties": False}
    assert out["properties"]["pairs"]["items"] == {"$ref": "#/$defs/Pair"}
    # a $ref with siblings is refused by strict mode: inlined once, the sibling kept
    assert out["properties"]["best"]["description"] == "The best pair."
    assert out["properties"]["best"]["required"] == ["q", "a"]
    # an optional $ref becomes a nullable union
    assert out["properties"]["extra"] == {"anyOf": [{"$ref": "#/$defs/Pair"}, {"type": "null"}]}
    assert out["required"] == ["pairs", "best", "extra", "kind"]
    assert out["properties"]["kind"] == {"anyOf": [{"type": "string"}, {"type": "integer"}]}
    assert warnings == ["openai: schema 's' keyword 'oneOf' at kind is not enforced by the vendor; "
                        "sent as anyOf (variants may overlap)"]


def test_single_allof_is_merged_and_others_are_moved():
    out, warnings = strict({"type": "object", "properties": {
        "a": {"allOf": [{"type": "string", "minLength": 1}], "description": "merged"},
        "b": {"type": "string", "not": {"enum": ["x"]}},
    }, "required": ["a", "b"]})
    assert out["properties"]["a"] == {"type": "string", "description": "merged\n\n{minLength: 1}"}
    assert out["properties"]["b"]["description"] == "{not: {'enum': ['x']}}"
    assert [w.split("'")[3] for w in warnings] == ["minLength", "not"]


def test_open_map_is_closed_with_a_warning():
    out, warnings = strict({"type": "object", "properties": {"m": {"type": "object", "additionalProperties": {"type": "string"}}},
                            "required": ["m"]})
    assert out["properties"]["m"] == {"type": "object", "properties": {}, "required": [], "additionalProperties": False}
    assert warnings and "'additionalProperties' at m" in warnings[0]


def test_strict_schema_accepts_answers_of_the_original():
    original_answer = {"items": [{"text": "Great.", "rating": 5}, {"text": "Meh.", "tone": "casual"}]}
    vendor_answer = {"items": [{"text": "Great.", "rating": 5, "tone": None},
                               {"text": "Meh.", "rating": None, "tone": "casual"}]}
    out, _ = strict(ITEMS_SCHEMA)
    jsonschema.validate(original_answer, ITEMS_SCHEMA)
    jsonschema.validate(vendor_answer, out)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"items": [{"text": "x"}]}, out)  # strict: every property present


@pytest.mark.parametrize(
    ("schema", "expected"),
    [
        ({"type": "string"}, {"type": ["string", "null"]}),
        ({"type": ["string", "integer"]}, {"type": ["string", "integer", "null"]}),
        ({"enum": ["a", "b"]}, {"enum": ["a", "b", None]}),
        ({"const": "a"}, {"enum": ["a", None]}),
        ({"anyOf": [{"type": "string"}]}, {"anyOf": [{"type": "string"}, {"type": "null"}]}),
        ({"type": ["string", "null"]}, {"type": ["string", "null"]}),
    ],
)
def test_nullable(schema, expected):
    assert nullable(schema) == expected


@pytest.mark.parametrize(
    ("schema", "keyword"),
    [
        ({"type": "array", "items": {"type": "string"}}, "type"),
        ({"type": "object", "anyOf": [{"type": "object"}]}, "anyOf"),
        ({"type": "object", "properties": {"x": {}}}, "type"),
        ({"type": "object", "properties": {"x": {"enum": list(range(1001))}}}, "enum"),
    ],
)
def test_constructs_the_vendor_refuses_are_errors_even_without_strict(schema, keyword):
    with pytest.raises(UnsupportedFeature) as info:
        strict(schema)
    assert info.value.keyword == keyword and info.value.vendor == "openai"


def test_nesting_limit():
    leaf: dict[str, Any] = {"type": "string"}
    for _ in range(10):
        leaf = {"type": "object", "properties": {"x": leaf}, "required": ["x"]}
    strict(leaf)  # 10 levels: fine
    with pytest.raises(UnsupportedFeature, match="nests objects 11 deep"):
        strict({"type": "object", "properties": {"x": leaf}, "required": ["x"]})


def test_warnings_deduplicated_per_schema_and_keyword():
    diagnostics = Diagnostics()
    renderer = OpenAIRenderer(SCHEMAS, diagnostics)
    for i in range(3):
        renderer.render(make_request(i))
        renderer.render(make_request(i, params={"max_tokens": 5, "temperature": 0.1}))
    assert [str(w) for w in diagnostics.warnings] == [
        "openai: schema 'generate-1a2b3c4d5e6f7a8b' keyword 'minLength' at items[].text is not enforced by the "
        "vendor; moved into the description",
    ]


def test_strict_mode_raises_typed_error():
    with pytest.raises(UnsupportedFeature) as info:
        render(make_request(), strict=True)
    error = info.value
    assert (error.vendor, error.schema_key, error.keyword, error.path) == (
        "openai", "generate-1a2b3c4d5e6f7a8b", "minLength", "items[].text")
