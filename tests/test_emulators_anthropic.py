# mypy: disable-error-code="arg-type, union-attr, index, misc, list-item, typeddict-item"
# (the tests pass plain dicts where the SDKs declare TypedDicts, and read union members they know the type of)
"""Fidelity of the Anthropic emulator: the real ``anthropic`` SDK drives it and every payload validates
strictly (pydantic ``model_validate``) against the SDK's own types."""

from __future__ import annotations

import json
import time
from typing import Any

import anthropic
import httpx
import jsonschema
import pydantic
import pytest
from anthropic.types import Message
from anthropic.types.messages import MessageBatch, MessageBatchErroredResult, MessageBatchIndividualResponse

from tests.emulators import AnthropicEmulator
from tests.emulators.testing import poll, read_jsonl

pytest_plugins = ["tests.conftest_emulators"]

MODEL = "claude-haiku-4-5"
SCHEMA = {
    "type": "object",
    "properties": {"question": {"type": "string"}, "answer": {"type": "string"},
                   "difficulty": {"type": "string", "enum": ["easy", "hard"]}},
    "required": ["question", "answer", "difficulty"], "additionalProperties": False,
}


def params(i: int, **extra: Any) -> Any:
    return {"model": MODEL, "max_tokens": 1024, "system": "You write quizzes.",
            "messages": [{"role": "user", "content": f"Quiz {i}"}],
            "output_config": {"format": {"type": "json_schema", "schema": SCHEMA}}, **extra}


def tool_params(i: int) -> Any:
    return {"model": MODEL, "max_tokens": 1024, "messages": [{"role": "user", "content": f"Quiz {i}"}],
            "tools": [{"name": "emit", "description": "Emit the quiz.", "input_schema": SCHEMA}],
            "tool_choice": {"type": "tool", "name": "emit"}}


@pytest.fixture
def client(anthropic_emulator: AnthropicEmulator) -> Any:
    with anthropic.Anthropic(base_url=anthropic_emulator.base_url, api_key="test", max_retries=2, timeout=10) as c:
        yield c


def raw_batch(client: anthropic.Anthropic, batch_id: str) -> dict[str, Any]:
    raw = client.messages.batches.with_raw_response.retrieve(batch_id).http_response.json()
    MessageBatch.model_validate(raw)
    return raw


def results(emu: AnthropicEmulator, client: anthropic.Anthropic, batch_id: str) -> dict[str, Any]:
    """Results through the SDK (absolute results_url) and, strictly, as raw JSONL."""
    url = raw_batch(client, batch_id)["results_url"]
    assert url == f"{emu.url}/v1/messages/batches/{batch_id}/results"
    via_sdk = {r.custom_id: r for r in client.messages.batches.results(batch_id)}
    rows = read_jsonl(httpx.get(url, headers={"x-api-key": "test"}).content)
    for row in rows:
        MessageBatchIndividualResponse.model_validate(row)
    assert sorted(r["custom_id"] for r in rows) == sorted(via_sdk)
    return {r["custom_id"]: r["result"] for r in rows}


@pytest.mark.emulator(batch_delay=100)
def test_batch_lifecycle_and_results(anthropic_emulator: AnthropicEmulator, client: anthropic.Anthropic) -> None:
    emu = anthropic_emulator
    emu.faults.error("r-err", status=529, code="overloaded_error")
    emu.faults.add("truncated", request_id="r-cut")
    requests = [
        {"custom_id": "r-json", "params": params(0)},
        {"custom_id": "r-tool", "params": tool_params(1)},
        {"custom_id": "r-err", "params": params(2)},
        {"custom_id": "r-cut", "params": params(3)},
        {"custom_id": "r-both", "params": params(4, temperature=0.5, top_p=0.9)},
        {"custom_id": "r-zero", "params": params(5, max_tokens=0)},
    ]
    batch = client.messages.batches.create(requests=requests)
    assert batch.processing_status == "in_progress" and batch.results_url is None
    raw = raw_batch(client, batch.id)
    assert raw["request_counts"] == {"processing": 6, "succeeded": 0, "errored": 0, "canceled": 0, "expired": 0}
    with pytest.raises(anthropic.AnthropicError, match="results_url"):
        list(client.messages.batches.results(batch.id))
    emu.advance(100)
    ended = raw_batch(client, batch.id)
    assert ended["processing_status"] == "ended" and ended["ended_at"]
    assert ended["request_counts"] == {"processing": 0, "succeeded": 3, "errored": 3, "canceled": 0, "expired": 0}
    got = results(emu, client, batch.id)
    message = Message.model_validate(got["r-json"]["message"])
    assert message.stop_reason == "end_turn" and message.usage.service_tier == "batch"
    jsonschema.validate(json.loads(message.content[0].text), SCHEMA)
    tool = Message.model_validate(got["r-tool"]["message"])
    assert tool.stop_reason == "tool_use" and tool.content[0].type == "tool_use"
    jsonschema.validate(tool.content[0].input, SCHEMA)
    cut = Message.model_validate(got["r-cut"]["message"])
    assert cut.stop_reason == "max_tokens"
    with pytest.raises(ValueError):
        json.loads(cut.content[0].text)
    assert got["r-err"]["error"]["error"]["type"] == "overloaded_error"
    assert "temperature" in got["r-both"]["error"]["error"]["message"]
    assert got["r-zero"]["error"]["error"]["type"] == "invalid_request_error"
    assert emu.stats()["batches"][0]["request_ids"] == [r["custom_id"] for r in requests]


BAD_PARAMS = {  # custom_id -> (params the API refuses only once it processes the batch, error type, message)
    "unknown-model": (params(0, model="claude-nope-9"), "not_found_error", "model: claude-nope-9"),
    "too-long": (params(1, max_tokens=64_001), "invalid_request_error",
                 "max_tokens: 64001 > 64000, which is the maximum allowed number of output tokens for "
                 "claude-haiku-4-5-20251001"),
    "two-samplers": (params(2, model="claude-opus-4-6", temperature=0.5, top_p=0.9), "invalid_request_error",
                     "`temperature` and `top_p` cannot both be specified for this model. Please use only one."),
    "empty-turn": (params(3, messages=[{"role": "user", "content": ""}]), "invalid_request_error",
                   "messages.0: all messages must have non-empty content except for the optional final assistant "
                   "message"),
    "no-block-type": (params(4, messages=[{"role": "user", "content": [{"text": "hi"}]}]), "invalid_request_error",
                      "messages.0.content.0.type: Field required"),
}


@pytest.mark.emulator(batch_delay=100)
def test_invalid_params_are_accepted_then_errored(anthropic_emulator: AnthropicEmulator,
                                                   client: anthropic.Anthropic) -> None:
    emu = anthropic_emulator
    good = {"ok": params(5), "dated-at-its-limit": params(6, model="claude-opus-4-5-20251101", max_tokens=64_000,
                                                           top_p=0.9)}
    requests = [{"custom_id": rid, "params": p} for rid, p in good.items()]
    requests += [{"custom_id": rid, "params": p} for rid, (p, _, _) in BAD_PARAMS.items()]
    batch = client.messages.batches.create(requests=requests)  # accepted: params are checked while processing
    assert batch.processing_status == "in_progress" and batch.request_counts.processing == len(requests)
    emu.advance(50)
    assert raw_batch(client, batch.id)["request_counts"]["errored"] == 0  # nothing shows before the end
    emu.advance(100)
    counts = raw_batch(client, batch.id)["request_counts"]
    assert (counts["succeeded"], counts["errored"]) == (len(good), len(BAD_PARAMS))
    got = results(emu, client, batch.id)
    for rid in good:
        assert got[rid]["type"] == "succeeded", got[rid]
    for rid, (_, kind, message) in BAD_PARAMS.items():
        errored = MessageBatchErroredResult.model_validate(got[rid])  # {"type": "errored", "error": ErrorResponse}
        assert errored.error.type == "error" and errored.error.error.type == kind, got[rid]
        assert errored.error.error.message == message
    via_sdk = {r.custom_id: r.result for r in client.messages.batches.results(batch.id)}
    assert isinstance(via_sdk["too-long"], MessageBatchErroredResult) and via_sdk["ok"].type == "succeeded"


def test_online_refuses_the_same_params_at_once(client: anthropic.Anthropic) -> None:
    with pytest.raises(anthropic.NotFoundError, match="model: claude-nope-9"):
        client.messages.create(**BAD_PARAMS["unknown-model"][0])
    for rid in ("too-long", "two-samplers", "empty-turn", "no-block-type"):
        body, _, message = BAD_PARAMS[rid]
        samplers = {k: body[k] for k in ("temperature", "top_p") if k in body}  # not in this SDK's signature
        with pytest.raises(anthropic.BadRequestError) as info:
            client.messages.create(**{k: v for k, v in body.items() if k not in samplers}, extra_body=samplers)
        assert info.value.body["error"]["message"] == message
    assert client.messages.create(**params(0, max_tokens=64_000)).type == "message"  # the limit itself is fine


def test_results_are_deterministic(anthropic_emulator: AnthropicEmulator, client: anthropic.Anthropic) -> None:
    texts = []
    for _ in range(2):
        batch = client.messages.batches.create(requests=[{"custom_id": "same", "params": params(0)}])
        poll(lambda: raw_batch(client, batch.id), lambda b: b["processing_status"] == "ended")  # noqa: B023
        texts.append(results(anthropic_emulator, client, batch.id)["same"]["message"]["content"])
    assert texts[0] == texts[1]


def test_envelope_validation_is_synchronous(anthropic_emulator: AnthropicEmulator,
                                            client: anthropic.Anthropic) -> None:
    for bad in ("has space", "x" * 65, ""):
        with pytest.raises(anthropic.BadRequestError) as info:
            client.messages.batches.create(requests=[{"custom_id": bad, "params": params(0)}])
        assert info.value.body["error"]["type"] == "invalid_request_error"
    with pytest.raises(anthropic.BadRequestError, match="Duplicate"):
        client.messages.batches.create(requests=[{"custom_id": "a", "params": params(0)}] * 2)
    anthropic_emulator.faults.add("validation_failure", message="requests: too many tokens enqueued")
    with pytest.raises(anthropic.BadRequestError, match="enqueued"):
        client.messages.batches.create(requests=[{"custom_id": "a", "params": params(0)}])
    assert anthropic_emulator.stats()["batches"] == []


def test_list_pagination(anthropic_emulator: AnthropicEmulator, client: anthropic.Anthropic) -> None:
    ids = [client.messages.batches.create(requests=[{"custom_id": f"r{i}", "params": params(i)}]).id
           for i in range(5)]
    assert [b.id for b in client.messages.batches.list(limit=2)] == ids[::-1]
    page = client.messages.batches.with_raw_response.list(limit=2).http_response.json()
    assert page["has_more"] and page["first_id"] == ids[4] and page["last_id"] == ids[3]
    older = client.messages.batches.list(limit=2, after_id=ids[3])
    assert [b.id for b in older.data] == [ids[2], ids[1]]
    newer = client.messages.batches.list(limit=2, before_id=ids[1])
    assert [b.id for b in newer.data] == [ids[3], ids[2]] and newer.has_more


@pytest.mark.emulator(batch_delay=100)
def test_cancel_then_delete(anthropic_emulator: AnthropicEmulator, client: anthropic.Anthropic) -> None:
    batch = client.messages.batches.create(
        requests=[{"custom_id": f"r{i}", "params": params(i)} for i in range(4)])
    anthropic_emulator.advance(50)  # half processed
    canceling = client.messages.batches.cancel(batch.id)
    assert canceling.processing_status == "canceling" and canceling.cancel_initiated_at is not None
    with pytest.raises(anthropic.BadRequestError):
        client.messages.batches.delete(batch.id)
    anthropic_emulator.advance(100)
    ended = raw_batch(client, batch.id)
    assert ended["request_counts"]["succeeded"] == 2 and ended["request_counts"]["canceled"] == 2
    kinds = sorted(r["type"] for r in results(anthropic_emulator, client, batch.id).values())
    assert kinds == ["canceled", "canceled", "succeeded", "succeeded"]
    with pytest.raises(anthropic.BadRequestError):
        client.messages.batches.cancel(batch.id)
    assert client.messages.batches.delete(batch.id).type == "message_batch_deleted"
    with pytest.raises(anthropic.NotFoundError):
        client.messages.batches.retrieve(batch.id)


def test_expired_batch(anthropic_emulator: AnthropicEmulator, client: anthropic.Anthropic) -> None:
    anthropic_emulator.faults.add("expire", completed=1)
    batch = client.messages.batches.create(
        requests=[{"custom_id": f"r{i}", "params": params(i)} for i in range(3)])
    ended = poll(lambda: raw_batch(client, batch.id), lambda b: b["processing_status"] == "ended")
    assert ended["request_counts"]["expired"] == 2 and ended["request_counts"]["succeeded"] == 1
    assert sorted(r["type"] for r in results(anthropic_emulator, client, batch.id).values()) == [
        "expired", "expired", "succeeded"]


class Quiz(pydantic.BaseModel):
    question: str
    answer: str
    difficulty: str


def test_online_messages(anthropic_emulator: AnthropicEmulator, client: anthropic.Anthropic) -> None:
    raw = client.messages.with_raw_response.create(**params(0)).http_response.json()
    message = Message.model_validate(raw)
    assert message.usage.input_tokens > 0 and message.usage.output_tokens > 0
    jsonschema.validate(json.loads(message.content[0].text), SCHEMA)
    parsed = client.messages.parse(model=MODEL, max_tokens=512, output_format=Quiz,
                                   messages=[{"role": "user", "content": "Quiz"}])
    assert isinstance(parsed.parsed_output, Quiz)
    assert anthropic_emulator.received[-1]["output_config"]["format"]["type"] == "json_schema"
    tool = client.messages.create(**tool_params(0))
    assert tool.content[0].type == "tool_use"
    jsonschema.validate(tool.content[0].input, SCHEMA)
    plain = client.messages.create(model=MODEL, max_tokens=5, messages=[{"role": "user", "content": "Hi"}])
    assert plain.stop_reason == "max_tokens" and plain.usage.output_tokens == 5


def test_online_validation_errors(client: anthropic.Anthropic) -> None:
    with pytest.raises(anthropic.BadRequestError, match="greater than or equal to 1"):
        client.messages.create(model=MODEL, max_tokens=0, messages=[{"role": "user", "content": "x"}])
    with pytest.raises(anthropic.BadRequestError, match="cannot both be specified"):
        client.messages.create(model=MODEL, max_tokens=10, messages=[{"role": "user", "content": "x"}],
                               extra_body={"temperature": 0.2, "top_p": 0.9})
    with pytest.raises(anthropic.BadRequestError, match="Extra inputs"):
        client.messages.create(model=MODEL, max_tokens=10, messages=[{"role": "user", "content": "x"}],
                               extra_body={"frequency_penalty": 1})
    ok = client.messages.create(model=MODEL, max_tokens=10, messages=[{"role": "user", "content": "x"}],
                                extra_body={"temperature": 0.2})
    assert ok.type == "message"


def test_online_faults(anthropic_emulator: AnthropicEmulator, client: anthropic.Anthropic) -> None:
    anthropic_emulator.faults.add("refusal", path="POST /v1/messages$")
    refused = client.messages.create(**params(0))
    assert refused.stop_reason == "refusal"
    anthropic_emulator.faults.http("POST /v1/messages$", status=429, times=1, retry_after=0.01)
    anthropic_emulator.faults.http("POST /v1/messages$", status=529, times=1, retry_after=0.01)
    start = time.monotonic()
    assert client.messages.create(**params(1)).type == "message"
    assert time.monotonic() - start < 2.0
    assert anthropic_emulator.stats()["calls"]["POST /v1/messages"] == 4
    anthropic_emulator.faults.error(path="POST /v1/messages$", status=400, message="nope")
    with pytest.raises(anthropic.BadRequestError, match="nope"):
        client.messages.create(**params(2))


def test_auth_headers(anthropic_emulator: AnthropicEmulator) -> None:
    url = anthropic_emulator.url + "/v1/messages/batches"
    assert httpx.get(url, headers={"x-api-key": "k"}).status_code == 200
    assert httpx.get(url, headers={"Authorization": "Bearer k"}).status_code == 200
    denied = httpx.get(url)
    assert denied.status_code == 401
    assert denied.json()["type"] == "error" and denied.json()["error"]["type"] == "authentication_error"


# -- prompt caching ------------------------------------------------------------------------------------------
CACHING_MODEL = "claude-opus-4-8"  # minimum cacheable prompt: 1,024 tokens (Haiku 4.5: 4,096)
INTRO = "You answer questions about the harbour log."
# a 6,000-character document: 1,500 tokens at the emulators' 4 characters a token
DOC = "".join(f"Line {i:04d} of the harbour log: the tide turned and the ships came in.\n" for i in range(200))[:6000]
QUESTIONS = ("First question: who keeps the log?", "Second question: when does the tide turn?")
# tokens: INTRO + DOC (the breakpoint prefix) 1,511; whole prompts 1,523 and 1,525 (1,519 / 1,521 before the
# 3 tokens of framing the emulators add)


def cached_params(question: str, *, doc: str = DOC, model: str = CACHING_MODEL, cache: Any = None,
                  question_cache: Any = None, **extra: Any) -> Any:
    doc_block = {"type": "text", "text": doc, **({"cache_control": cache} if cache else {})}
    content = [{"type": "text", "text": question, **({"cache_control": question_cache} if question_cache else {})}]
    return {"model": model, "max_tokens": 256, "system": [{"type": "text", "text": INTRO}, doc_block],
            "messages": [{"role": "user", "content": content}], **extra}


def usage_of(message: Message) -> tuple[int, int | None, int | None]:
    """(input_tokens, cache_read_input_tokens, cache_creation_input_tokens) as the SDK parses them."""
    return message.usage.input_tokens, message.usage.cache_read_input_tokens, message.usage.cache_creation_input_tokens


def ask(client: anthropic.Anthropic, question: str, **kwargs: Any) -> Message:
    raw = client.messages.with_raw_response.create(**cached_params(question, **kwargs)).http_response.json()
    return Message.model_validate(raw)


EPHEMERAL = {"type": "ephemeral"}


def test_breakpoint_prefix_is_written_then_read(anthropic_emulator: AnthropicEmulator,
                                                client: anthropic.Anthropic) -> None:
    first = ask(client, QUESTIONS[0], cache=EPHEMERAL)
    assert usage_of(first) == (1523 - 1511, 0, 1511)
    assert first.usage.cache_creation and first.usage.cache_creation.ephemeral_5m_input_tokens == 1511
    assert first.usage.cache_creation.ephemeral_1h_input_tokens == 0
    second = ask(client, QUESTIONS[1], cache=EPHEMERAL)
    assert usage_of(second) == (1525 - 1511, 1511, 0)
    # the same prompt again reads only up to the breakpoint: the question after it is not cached
    assert usage_of(ask(client, QUESTIONS[0], cache=EPHEMERAL)) == (12, 1511, 0)
    assert usage_of(ask(client, QUESTIONS[0], cache=EPHEMERAL, model="claude-sonnet-5")) == (12, 0, 1511)  # per model
    anthropic_emulator.reset()
    assert usage_of(ask(client, QUESTIONS[1], cache=EPHEMERAL)) == (14, 0, 1511)


def test_without_cache_control_nothing_is_cached(client: anthropic.Anthropic) -> None:
    for question, total in zip(QUESTIONS, (1523, 1525), strict=True):
        assert usage_of(ask(client, question)) == (total, 0, 0)
    ask(client, QUESTIONS[0], cache=EPHEMERAL)
    assert usage_of(ask(client, QUESTIONS[0])) == (1523, 0, 0)  # an entry is read only through a breakpoint


def test_a_breakpoint_reads_an_earlier_prefix_within_20_blocks(client: anthropic.Anthropic) -> None:
    ask(client, QUESTIONS[0], cache=EPHEMERAL)  # writes INTRO + DOC
    later = ask(client, QUESTIONS[1], question_cache=EPHEMERAL)  # breakpoint on the question only
    assert usage_of(later) == (1525 - 1521, 1511, 1521 - 1511)  # reads the earlier prefix, writes the rest


def test_prefixes_below_the_model_minimum_are_not_cached(client: anthropic.Anthropic) -> None:
    haiku = "claude-haiku-4-5"  # 4,096 tokens: the 1,511-token prefix is too short
    for question in QUESTIONS:
        assert usage_of(ask(client, question, cache=EPHEMERAL, model=haiku))[1:] == (0, 0)
    long_doc = DOC * 3  # INTRO + 18,000 characters: 4,511 tokens
    assert usage_of(ask(client, QUESTIONS[0], cache=EPHEMERAL, model=haiku, doc=long_doc))[1:] == (0, 4511)
    snapshot = "claude-haiku-4-5-20251001"  # an alias and its snapshot are one model: one cache
    assert usage_of(ask(client, QUESTIONS[1], cache=EPHEMERAL, model=snapshot, doc=long_doc))[1:] == (4511, 0)


def test_ttl_expiry_and_one_hour_writes(anthropic_emulator: AnthropicEmulator, client: anthropic.Anthropic) -> None:
    ask(client, QUESTIONS[0], cache=EPHEMERAL)
    anthropic_emulator.advance(301)  # past 5 minutes: written again
    assert usage_of(ask(client, QUESTIONS[1], cache=EPHEMERAL)) == (14, 0, 1511)
    hour = {"type": "ephemeral", "ttl": "1h"}
    longer = ask(client, QUESTIONS[0], cache=hour, doc=DOC[::-1])
    assert longer.usage.cache_creation and longer.usage.cache_creation.ephemeral_1h_input_tokens == 1511
    assert longer.usage.cache_creation.ephemeral_5m_input_tokens == 0
    anthropic_emulator.advance(1800)
    assert usage_of(ask(client, QUESTIONS[1], cache=hour, doc=DOC[::-1]))[1:] == (1511, 0)
    # 1h on the document and 5m on the question: the stretches written are split by TTL
    both = ask(client, QUESTIONS[0], cache=hour, question_cache=EPHEMERAL)
    assert usage_of(both) == (1523 - 1519, 0, 1519)
    assert both.usage.cache_creation and (both.usage.cache_creation.ephemeral_1h_input_tokens,
                                          both.usage.cache_creation.ephemeral_5m_input_tokens) == (1511, 8)


def test_automatic_caching_marks_the_last_block(client: anthropic.Anthropic) -> None:
    first = ask(client, QUESTIONS[0], cache_control=EPHEMERAL)
    assert usage_of(first) == (1523 - 1519, 0, 1519)
    assert usage_of(ask(client, QUESTIONS[0], cache_control=EPHEMERAL)) == (4, 1519, 0)


def test_cache_control_is_validated(client: anthropic.Anthropic) -> None:
    blocks = [{"type": "text", "text": f"part {i}", "cache_control": EPHEMERAL} for i in range(5)]
    with pytest.raises(anthropic.BadRequestError, match="A maximum of 4 blocks with cache_control may be provided. "
                                                        "Found 5."):
        client.messages.create(model=CACHING_MODEL, max_tokens=10, messages=[{"role": "user", "content": blocks}])
    with pytest.raises(anthropic.BadRequestError, match="Found 5"):  # the top-level one takes a slot too
        client.messages.create(model=CACHING_MODEL, max_tokens=10, cache_control=EPHEMERAL,
                               messages=[{"role": "user", "content": blocks[:4]}])
    with pytest.raises(anthropic.BadRequestError) as info:
        client.messages.create(**cached_params(QUESTIONS[0], cache=EPHEMERAL,
                                               question_cache={"type": "ephemeral", "ttl": "1h"}))
    assert info.value.body["error"]["message"] == (
        "messages.0.content.0.cache_control.ttl: a ttl='1h' cache_control block must not come after a ttl='5m' "
        "cache_control block. Note that blocks are processed in the following order: `tools`, `system`, `messages`.")
    for bad, message in (({"type": "ephemeral", "ttl": "10m"}, "system.1.cache_control.ttl: Input should be '5m' or "
                                                               "'1h'"),
                         ({"type": "persistent"}, "system.1.cache_control.type: Input should be 'ephemeral'"),
                         ({"type": "ephemeral", "scope": "x"}, "system.1.cache_control.scope: Extra inputs")):
        with pytest.raises(anthropic.BadRequestError, match=message):
            client.messages.create(**cached_params(QUESTIONS[0], cache=bad))
    with pytest.raises(anthropic.BadRequestError, match="system.0.type: Input should be 'text'"):
        client.messages.create(model=CACHING_MODEL, max_tokens=10, system=[{"type": "image"}],
                               messages=[{"role": "user", "content": "x"}])
    ok = client.messages.create(**cached_params(QUESTIONS[0], cache={"type": "ephemeral", "ttl": "1h"},
                                                question_cache={"type": "ephemeral", "ttl": "5m"}))
    assert ok.type == "message"


def test_batch_requests_are_cached_in_submission_order(anthropic_emulator: AnthropicEmulator,
                                                        client: anthropic.Anthropic) -> None:
    requests = [{"custom_id": f"q{i}", "params": cached_params(q, cache=EPHEMERAL)} for i, q in enumerate(QUESTIONS)]
    batch = client.messages.batches.create(requests=requests)
    poll(lambda: raw_batch(client, batch.id), lambda b: b["processing_status"] == "ended")
    got = {r.custom_id: r.result for r in client.messages.batches.results(batch.id)}
    assert got["q0"].type == "succeeded" and got["q1"].type == "succeeded"
    assert usage_of(got["q0"].message) == (12, 0, 1511) and usage_of(got["q1"].message) == (14, 1511, 0)
    assert got["q1"].message.usage.service_tier == "batch"
    again = results(anthropic_emulator, client, batch.id)  # decided at submission: the same on every download
    assert again["q1"]["message"]["usage"]["cache_read_input_tokens"] == 1511
    assert again["q0"]["message"]["usage"]["cache_creation_input_tokens"] == 1511
