"""The emulators' answer generator: schema-valid, deterministic per request id, text that looks like text."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any, Literal, Optional

import jsonschema
import pydantic
import pytest
from anthropic.lib._parse._transform import transform_schema
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from openai.lib._pydantic import to_strict_json_schema

from tests.emulators import answers

REPO = Path(__file__).resolve().parents[1]
FORMATS = ["date-time", "date", "time", "email", "uuid", "uri", "hostname", "ipv4", "ipv6", "duration"]
SIMPLE = {"string": {"type": "string"}, "integer": {"type": "integer"}, "boolean": {"type": "boolean"},
          "null": {"type": "null"}, "array": {"type": "array", "items": {"type": "integer"}},
          "object": {"type": "object", "properties": {"k": {"type": "string"}}, "required": ["k"]}}


def check(schema: dict[str, Any], value: Any) -> None:
    cls = jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator)
    cls(schema, format_checker=cls.FORMAT_CHECKER).validate(value)


scalars = st.one_of(
    st.just({"type": "string"}),
    st.builds(lambda lo, extra: {"type": "string", "minLength": lo, "maxLength": lo + extra},
              st.integers(0, 30), st.integers(0, 40)),
    st.sampled_from([{"type": "string", "format": f} for f in FORMATS]),
    st.builds(lambda lo, width, ex: {"type": "integer", "minimum": lo, "maximum": lo + width,
                                     **({"exclusiveMinimum": lo - 1} if ex else {})},
              st.integers(-1000, 1000), st.integers(0, 50), st.booleans()),
    st.builds(lambda step, k, width: {"type": "integer", "multipleOf": step, "minimum": step * k,
                                      "maximum": step * (k + width)},
              st.integers(1, 9), st.integers(-20, 20), st.integers(0, 5)),
    st.builds(lambda lo, width: {"type": "number", "minimum": lo, "maximum": lo + width},
              st.floats(-1e3, 1e3, allow_nan=False).map(lambda f: round(f, 2)), st.floats(0.5, 100).map(round)),
    st.builds(lambda hi: {"type": "number", "exclusiveMaximum": hi}, st.integers(-5, 5)),
    st.just({"type": "boolean"}),
    st.just({"type": "null"}),
    st.sampled_from([{"type": ["string", "null"]}, {"type": ["integer", "string"]}, {"type": ["number", "null"]}]),
    st.builds(lambda values: {"enum": values},
              st.lists(st.one_of(st.text(max_size=6), st.integers(), st.none(), st.booleans()), min_size=1,
                       max_size=5, unique_by=lambda v: json.dumps(v))),
    st.builds(lambda value: {"const": value}, st.one_of(st.text(max_size=6), st.integers(), st.booleans())),
    st.builds(lambda kinds: {"oneOf": [SIMPLE[k] for k in kinds]},
              st.lists(st.sampled_from(sorted(SIMPLE)), min_size=1, max_size=4, unique=True)),
)


def containers(children: st.SearchStrategy[dict[str, Any]]) -> st.SearchStrategy[dict[str, Any]]:
    names = st.text("abcdefghijklmnopqrstuvwxyz_", min_size=1, max_size=8)
    objects = st.builds(
        lambda props, req_mask, closed: {
            "type": "object", "properties": props, "additionalProperties": not closed,
            "required": [k for k, keep in zip(props, req_mask, strict=False) if keep]},
        st.dictionaries(names, children, max_size=5), st.lists(st.booleans(), min_size=5, max_size=5),
        st.booleans())
    arrays = st.builds(lambda items, lo, extra: {"type": "array", "items": items, "minItems": lo,
                                                 "maxItems": lo + extra},
                       children, st.integers(0, 3), st.integers(0, 3))
    unique = st.builds(lambda lo: {"type": "array", "items": {"type": "string"}, "uniqueItems": True,
                                   "minItems": lo}, st.integers(0, 5))
    any_of = st.builds(lambda options: {"anyOf": options}, st.lists(children, min_size=1, max_size=3))
    return st.one_of(objects, arrays, unique, any_of)


trees = st.recursive(scalars, containers, max_leaves=15)
with_defs = st.builds(lambda target: {"$defs": {"node": target}, "type": "object",  # $ref resolves from the root
                                      "properties": {"a": {"$ref": "#/$defs/node"},
                                                     "b": {"type": "array", "items": {"$ref": "#/$defs/node"}}},
                                      "required": ["a", "b"]}, trees)
schemas = st.one_of(trees, with_defs)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(schema=schemas, rid=st.text("abcdefghijklmnopqrstuvwxyz0123456789_-", min_size=1, max_size=64))
def test_generated_instances_validate_and_are_deterministic(schema: dict[str, Any], rid: str) -> None:
    value = answers.instance(schema, rid)
    check(schema, value)
    assert answers.instance(schema, rid) == value
    json.dumps(value)


def test_text_looks_like_text_and_depends_on_the_id() -> None:
    schema = {"type": "object", "properties": {"question": {"type": "string"}, "answers": {
        "type": "array", "items": {"type": "string"}, "minItems": 2, "maxItems": 2}},
        "required": ["question", "answers"], "additionalProperties": False}
    first, second = answers.instance(schema, "id-1"), answers.instance(schema, "id-2")
    assert first["question"].startswith("Sample question") and first["question"].endswith("for id-1")
    assert len(first["answers"]) == 2 and first != second
    assert answers.plain_text("id-1").startswith("Sample text") and "id-1" in answers.plain_text("id-1")


def test_recursive_schema_terminates() -> None:
    tree = {"$defs": {"node": {"type": "object", "properties": {
        "name": {"type": "string"}, "children": {"type": "array", "items": {"$ref": "#/$defs/node"}}},
        "required": ["name", "children"]}}, "$ref": "#/$defs/node"}
    for i in range(20):
        check(tree, answers.instance(tree, f"tree-{i}"))


class Choice(pydantic.BaseModel):
    label: Literal["A", "B", "C", "D"]
    text: str = pydantic.Field(min_length=1, max_length=80)


class Question(pydantic.BaseModel):
    question: str
    choices: list[Choice] = pydantic.Field(min_length=2, max_length=4)
    answer: Literal["A", "B", "C", "D"]
    difficulty: Optional[int] = pydantic.Field(default=None, ge=1, le=5)  # noqa: UP045 - pydantic schema shape


class Quiz(pydantic.BaseModel):
    topic: str
    questions: list[Question]


@pytest.mark.parametrize(("make", "keeps_constraints"), [
    (to_strict_json_schema, True),
    (lambda m: m.model_json_schema(), True),
    (lambda m: transform_schema(m.model_json_schema()), False),  # moves maxItems, minimum... into descriptions
], ids=["openai-strict", "pydantic", "anthropic"])
def test_vendor_transformed_schemas(make: Any, keeps_constraints: bool) -> None:
    schema = make(Quiz)
    for i in range(10):
        value = answers.instance(schema, f"quiz-{i}")
        check(schema, value)
        if keeps_constraints:
            Quiz.model_validate(value)


def test_gemini_openapi_schema_is_normalized() -> None:
    schema = {"type": "OBJECT", "properties": {"name": {"type": "STRING", "nullable": True},
                                               "kind": {"type": "STRING", "format": "enum", "enum": ["a", "b"]},
                                               "n": {"type": "INTEGER", "minimum": 2, "maximum": 3}},
              "required": ["name", "kind", "n"], "propertyOrdering": ["name", "kind", "n"]}
    plain = answers.normalize_openapi(schema)
    assert plain["properties"]["name"]["type"] == ["string", "null"]
    check(plain, answers.instance(plain, "g"))


def test_respond_faults_and_limits() -> None:
    schema = {"type": "object", "properties": {"text": {"type": "string"}}, "required": ["text"]}
    ok = answers.respond("r", schema=schema, prompt="hello world", max_tokens=500)
    assert ok.finish == "stop" and json.loads(ok.text) == ok.data and ok.input_tokens > 0 and ok.output_tokens > 0
    cut = answers.respond("r", schema=schema, fault="truncated")
    assert cut.finish == "length" and ok.text.startswith(cut.text) and len(cut.text) < len(ok.text)
    limited = answers.respond("r", schema=schema, max_tokens=2)
    assert limited.finish == "length" and limited.output_tokens == 2 and len(limited.text) <= 8
    for fault in ("truncated", "invalid_json"):
        with pytest.raises(ValueError):
            json.loads(answers.respond("r", schema=schema, fault=fault).text)
    refusal = answers.respond("r", schema=schema, fault="refusal")
    assert refusal.finish == "refusal" and refusal.data is None
    assert answers.respond("r").data is None and answers.respond("r", json_mode=True).data is not None


def test_deterministic_across_processes() -> None:
    code = ("import json; from tests.emulators import answers; "
            "print(json.dumps(answers.instance({'type': 'array', 'items': {'type': 'object', 'properties': "
            "{'x': {'type': 'number'}, 's': {'type': 'string', 'format': 'uuid'}}}, 'minItems': 3}, 'id-9')))")
    outputs = {
        subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True, timeout=60,
                       env={**os.environ, "PYTHONHASHSEED": seed}).stdout
        for seed in ("1", "2")
    }
    assert len(outputs) == 1 and json.loads(outputs.pop())
