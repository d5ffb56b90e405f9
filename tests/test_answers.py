"""Answers that arrive but are not answers: JSON in a wrapper is extracted, the rest is a terminal failure that
status, submit and collect agree on and --retry-failed reaches, in every stage."""

from __future__ import annotations

import json

import pytest

from datafast.compiler.collect import RowBuilder, checked_result, unwrap
from datafast.compiler.stages.base import items_schema, string_field
from datafast.runtimes import OnlineRuntime

SCHEMA = items_schema({"text": string_field("t")})
MANIFEST = {"type": "classification", "schemas": {"s": SCHEMA},
            "spec": {"name": "x", "classes": [{"name": "a", "description": "A."}], "models": ["openai:m"]}}
GOOD = '{"items": [{"text": "hi"}]}'


@pytest.mark.parametrize(("text", "kind"), [
    (f"<think>I should write {{json}}.</think>\n{GOOD}", "think"),
    (f"```json\n{GOOD}\n```", "fence"),
    (f"  ```\n{GOOD}\n```  \n", "fence"),
    (f"<think>\nplan\n</think>\n\n```json\n{GOOD}\n```", "think+fence"),
])
def test_json_inside_a_wrapper_is_extracted(text, kind):
    parsed = RowBuilder(MANIFEST).parse("s", text)
    assert parsed.kind is None and parsed.answer == json.loads(GOOD) and parsed.unwrapped == kind


@pytest.mark.parametrize(("text", "kind"), [
    ("", "empty"),
    ("   ", "empty"),
    (f"Here you go: {GOOD}", "invalid_json"),  # prose around JSON is not a wrapper: never guessed
    (f"```json\n{GOOD}\n``` and more", "invalid_json"),
    (f"{GOOD}\n{GOOD}", "invalid_json"),  # two values
    ("<think>only thinking</think>", "invalid_json"),
    ('{"items": []}', "schema_violation"),
    ('```json\n{"items": [{"txt": "hi"}]}\n```', "schema_violation"),
])
def test_what_is_not_one_answer_is_a_typed_failure(text, kind):
    parsed = RowBuilder(MANIFEST).parse("s", text)
    assert parsed.kind == kind and parsed.reason.startswith(f"{kind}: ")


def test_unwrap_leaves_plain_text_alone():
    assert unwrap(GOOD) == (GOOD, None)


def test_stored_result_of_an_unusable_answer_is_a_terminal_error_with_its_text_kept():
    builder = RowBuilder(MANIFEST)
    ok = {"id": "1", "status": "ok", "text": "not json", "error": None}
    bad = checked_result(builder, "s", ok)
    assert bad["status"] == "error" and bad["text"] == "not json"
    assert bad["error"]["kind"] == "invalid_json" and bad["error"]["retryable"] is False
    good = {"id": "2", "status": "ok", "text": f"```json\n{GOOD}\n```", "error": None}
    assert checked_result(builder, "s", good) is good  # extracted at collect, raw text stored


# -- end to end through a runtime registered the documented way -------------------------------------------

class WrapperRuntime(OnlineRuntime):
    """An online runtime whose model wraps JSON in a fence and answers 'chosen' requests with prose the first
    time it sees them."""

    name = "wrapper"
    default_concurrency = 1
    calls: dict[str, int] = {}

    def __init__(self, env=None, *, schemas=None):
        super().__init__(env)
        self.schemas = dict(schemas or {})

    def run(self, requests, concurrency, on_result):
        from datafast.runtimes.base import result

        from .test_registry import _instance

        for request in requests:
            n = WrapperRuntime.calls[request["id"]] = WrapperRuntime.calls.get(request["id"], 0) + 1
            answer = json.dumps(_instance(self.schemas[request["schema"]], request["id"]))
            text = "Sure! here is my answer" if request["stage"] == "chosen" and n == 1 else f"```json\n{answer}\n```"
            on_result(result(request["id"], self.name, request["model"], text=text, finish_reason="stop"))


@pytest.fixture
def wrapper_runtime(monkeypatch):
    from datafast.compiler import checks
    from datafast.compiler.spec import KNOWN_RUNTIMES
    from datafast.runtimes import RUNTIMES

    monkeypatch.setitem(RUNTIMES, "wrapper", "tests.test_answers:WrapperRuntime")
    monkeypatch.setattr(checks, "KNOWN_RUNTIMES", (*KNOWN_RUNTIMES, "wrapper"))
    WrapperRuntime.calls = {}


def test_wrapped_answers_become_rows_and_rejected_ones_are_retried_in_a_later_stage(tmp_path, wrapper_runtime):
    import yaml

    import datafast
    from datafast.dataset import collect_to
    from datafast.pipeline import advance, status

    spec = {"datafast": 1, "name": "w", "type": "preference", "models": ["wrapper:m"],
            "input_documents": ["A document."], "num_samples_per_prompt": 2}
    (tmp_path / "s.yaml").write_text(yaml.safe_dump(spec))
    out = tmp_path / "out"
    datafast.compile(tmp_path / "s.yaml", out)
    report = advance(out, wait=True)
    chosen = status(out)["stages"][1]
    assert chosen["stage"] == "chosen" and chosen["failed"] == chosen["requests"] > 0  # status agrees with collect
    first = collect_to(out)
    assert first.stages["chosen"]["rejected"] == chosen["requests"] and first.items["rows"] == 0
    assert report.failed == chosen["requests"]
    again = advance(out, wait=True, retry_failed=True)
    assert again.failed == 0 and again.finished
    collected = collect_to(out)
    assert collected.items["rows"] == collected.items["items"] > 0
    assert sum(collected.unwrapped.values()) == collected.with_rows  # every answer came fenced
