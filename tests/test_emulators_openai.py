# mypy: disable-error-code="arg-type, union-attr, index, misc, list-item, typeddict-item"
# (the tests pass plain dicts where the SDKs declare TypedDicts, and read union members they know the type of)
"""Fidelity of the OpenAI emulator: the real ``openai`` SDK drives it, and what crosses the wire validates against
the official OpenAPI document (requests strictly; responses with unset optional fields allowed to be null)."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
import jsonschema
import openai
import pydantic
import pytest
from openai.types import Batch, FileObject
from openai.types.chat import ChatCompletion

from tests.emulators import OpenAIEmulator, openapi
from tests.emulators.testing import poll, read_jsonl

pytest_plugins = ["tests.conftest_emulators"]
pytestmark = pytest.mark.skipif(not openapi.available(), reason="OpenAI OpenAPI document not found")

MODEL = "gpt-4.1-mini"
SCHEMA = {
    "type": "object",
    "properties": {
        "items": {
            "type": "array", "minItems": 2, "maxItems": 4,
            "items": {
                "type": "object",
                "properties": {"text": {"type": "string"}, "label": {"type": "string", "enum": ["pos", "neg"]},
                               "score": {"type": ["number", "null"], "minimum": 0, "maximum": 1}},
                "required": ["text", "label", "score"], "additionalProperties": False,
            },
        },
    },
    "required": ["items"], "additionalProperties": False,
}
TERMINAL = {"completed", "failed", "expired", "cancelled"}


def body(i: int, **extra: Any) -> dict[str, Any]:
    return {"model": MODEL, "max_completion_tokens": 800,
            "messages": [{"role": "system", "content": "You write reviews."},
                         {"role": "user", "content": f"Write reviews, batch {i}."}],
            "response_format": {"type": "json_schema", "json_schema": {"name": "reviews", "schema": SCHEMA,
                                                                       "strict": True}}, **extra}


def line(i: int, **overrides: Any) -> dict[str, Any]:
    return {"custom_id": f"req-{i}", "method": "POST", "url": "/v1/chat/completions", "body": body(i), **overrides}


def to_jsonl(rows: list[Any]) -> bytes:
    return b"".join((r if isinstance(r, bytes) else json.dumps(r).encode()) + b"\n" for r in rows)


def assert_spec(name: str, instance: Any, relaxed: bool = False) -> None:
    problems = openapi.problems(name, instance, relaxed=relaxed)
    assert not problems, f"{name}: {problems}"


@pytest.fixture
def client(openai_emulator: OpenAIEmulator) -> Any:
    with openai.OpenAI(base_url=openai_emulator.base_url, api_key="test", max_retries=2, timeout=10) as c:
        yield c


def submit(client: openai.OpenAI, rows: list[Any], **kwargs: Any) -> Batch:
    upload = client.files.create(file=("input.jsonl", to_jsonl(rows), "application/jsonl"), purpose="batch")
    return client.batches.create(input_file_id=upload.id, endpoint="/v1/chat/completions", completion_window="24h",
                                 **kwargs)


def retrieve_raw(client: openai.OpenAI, batch_id: str) -> dict[str, Any]:
    raw = json.loads(client.batches.with_raw_response.retrieve(batch_id).text)
    assert_spec("Batch", raw, relaxed=True)
    Batch.model_validate(raw)
    return raw


def wait(client: openai.OpenAI, batch_id: str) -> dict[str, Any]:
    return poll(lambda: retrieve_raw(client, batch_id), lambda b: b["status"] in TERMINAL)


def lines_of(client: openai.OpenAI, file_id: str | None) -> list[dict[str, Any]]:
    if file_id is None:
        return []
    meta = client.files.retrieve(file_id)
    assert_spec("OpenAIFile", json.loads(client.files.with_raw_response.retrieve(file_id).text), relaxed=True)
    assert meta.purpose == "batch_output"  # error files too
    return read_jsonl(client.files.content(file_id).content)


def test_request_lines_are_valid_for_the_spec() -> None:
    for i in range(3):
        assert_spec("CreateChatCompletionRequest", body(i))
    assert openapi.problems("CreateChatCompletionRequest", {"model": MODEL, "messages": [{"role": "bogus"}]})


@pytest.mark.emulator(batch_delay=100)
def test_full_lifecycle_with_output_and_error_files(openai_emulator: OpenAIEmulator, client: openai.OpenAI) -> None:
    emu = openai_emulator
    emu.faults.error("req-1", status=500)
    emu.faults.add("truncated", request_id="req-2")
    rows = [line(i) for i in range(6)]
    rows[3]["body"]["messages"][1]["role"] = "robot"  # rejected per request, as the API does
    created = submit(client, rows, metadata={"run": "t1"})
    assert created.status == "validating" and created.metadata == {"run": "t1"}
    assert retrieve_raw(client, created.id)["status"] == "validating"
    emu.advance(150)  # half way through in_progress: requests finish progressively
    mid = retrieve_raw(client, created.id)
    assert mid["status"] == "in_progress" and mid["in_progress_at"] is not None
    assert 0 < mid["request_counts"]["completed"] + mid["request_counts"]["failed"] < 6
    assert mid["output_file_id"] is None
    emu.advance(100)
    assert retrieve_raw(client, created.id)["status"] == "finalizing"
    emu.advance(100)
    done = retrieve_raw(client, created.id)
    assert done["status"] == "completed"
    assert done["request_counts"] == {"total": 6, "completed": 4, "failed": 2}
    assert done["usage"]["total_tokens"] == done["usage"]["input_tokens"] + done["usage"]["output_tokens"] > 0
    assert done["created_at"] <= done["in_progress_at"] <= done["finalizing_at"] <= done["completed_at"]

    output = lines_of(client, done["output_file_id"])
    errors = lines_of(client, done["error_file_id"])
    assert sorted(r["custom_id"] for r in output) == ["req-0", "req-2", "req-4", "req-5"]
    assert sorted(r["custom_id"] for r in errors) == ["req-1", "req-3"]
    for row in output:
        assert row["id"].startswith("batch_req_") and row["error"] is None
        assert row["response"]["status_code"] == 200
        completion = row["response"]["body"]
        assert_spec("CreateChatCompletionResponse", completion)
        choice = ChatCompletion.model_validate(completion).choices[0]
        if row["custom_id"] == "req-2":
            assert choice.finish_reason == "length"
            with pytest.raises(ValueError):
                json.loads(choice.message.content or "")
        else:
            assert choice.finish_reason == "stop"
            jsonschema.validate(json.loads(choice.message.content or ""), SCHEMA)
    by_id = {r["custom_id"]: r for r in errors}
    assert by_id["req-1"]["response"]["status_code"] == 500
    assert by_id["req-3"]["response"]["status_code"] == 400
    assert by_id["req-3"]["response"]["body"]["error"]["param"].startswith("messages")
    for row in errors:
        assert_spec("ErrorResponse", row["response"]["body"])
    assert emu.stats()["batches"][0]["request_ids"] == [f"req-{i}" for i in range(6)]
    assert all(emu.submissions(f"req-{i}") == 1 for i in range(6))


def test_answers_are_deterministic_per_custom_id(openai_emulator: OpenAIEmulator, client: openai.OpenAI) -> None:
    contents = []
    for _ in range(2):
        batch = wait(client, submit(client, [line(7)]).id)
        contents.append(lines_of(client, batch["output_file_id"])[0]["response"]["body"]["choices"][0])
    assert contents[0] == contents[1]
    assert "req-7" in contents[0]["message"]["content"]


def test_list_pagination_with_auto_pager(openai_emulator: OpenAIEmulator, client: openai.OpenAI) -> None:
    ids = [submit(client, [line(i)]).id for i in range(5)]
    page = client.batches.list(limit=2)
    raw = json.loads(client.batches.with_raw_response.list(limit=2).text)
    assert_spec("ListBatchesResponse", raw, relaxed=True)
    assert raw["has_more"] is True and raw["first_id"] == ids[-1] and raw["last_id"] == ids[-2]
    assert [b.id for b in page] == ids[::-1]  # the auto-pager walks every page, newest first
    assert openai_emulator.stats()["calls"]["GET /v1/batches"] == 1 + 3  # one raw call, then pages of 2, 2 and 1


@pytest.mark.emulator(batch_delay=100)
def test_cancel_keeps_partial_results(openai_emulator: OpenAIEmulator, client: openai.OpenAI) -> None:
    batch = submit(client, [line(i) for i in range(4)])
    openai_emulator.advance(150)  # half of the requests are done
    cancelling = client.batches.cancel(batch.id)
    assert cancelling.status == "cancelling" and cancelling.cancelling_at is not None
    openai_emulator.advance(100)
    done = retrieve_raw(client, batch.id)
    assert done["status"] == "cancelled" and done["cancelled_at"] is not None
    output, errors = lines_of(client, done["output_file_id"]), lines_of(client, done["error_file_id"])
    assert len(output) == 2 and len(errors) == 2
    assert all(r["response"] is None and r["error"]["code"] == "batch_cancelled" for r in errors)
    assert done["request_counts"] == {"total": 4, "completed": 2, "failed": 2}
    with pytest.raises(openai.BadRequestError):
        client.batches.cancel(batch.id)


def test_expired_batch_keeps_partial_results(openai_emulator: OpenAIEmulator, client: openai.OpenAI) -> None:
    openai_emulator.faults.add("expire", completed=2)
    done = wait(client, submit(client, [line(i) for i in range(5)]).id)
    assert done["status"] == "expired" and done["expired_at"] is not None
    output, errors = lines_of(client, done["output_file_id"]), lines_of(client, done["error_file_id"])
    assert len(output) == 2 and {r["error"]["code"] for r in errors} == {"batch_expired"} and len(errors) == 3


def test_vendor_side_cancel_fault(openai_emulator: OpenAIEmulator, client: openai.OpenAI) -> None:
    openai_emulator.faults.add("cancel", request_id="req-2", completed=1)  # the batch carrying req-2
    untouched = wait(client, submit(client, [line(9)]).id)
    done = wait(client, submit(client, [line(i) for i in range(3)]).id)
    assert untouched["status"] == "completed" and done["status"] == "cancelled"
    assert done["cancelling_at"] is not None and done["cancelled_at"] is not None
    errors = lines_of(client, done["error_file_id"])
    assert len(lines_of(client, done["output_file_id"])) == 1 and len(errors) == 2
    assert {r["error"]["code"] for r in errors} == {"batch_cancelled"}


def test_validation_failures_end_the_batch_failed(openai_emulator: OpenAIEmulator, client: openai.OpenAI) -> None:
    rows: list[Any] = [
        line(0), b"{not json", line(0), line(2, url="/v1/embeddings"), line(3, method="GET"),
        {"custom_id": "req-4", "method": "POST", "url": "/v1/chat/completions"},
        line(5, body={**body(5), "model": "gpt-4o"}),
    ]
    done = wait(client, submit(client, rows).id)
    assert done["status"] == "failed" and done["failed_at"] is not None and done["output_file_id"] is None
    codes = {(e["line"], e["code"]) for e in done["errors"]["data"]}
    assert codes == {(2, "invalid_json_line"), (3, "duplicate_custom_id"), (4, "url_mismatch"),
                     (5, "invalid_value"), (6, "missing_required_parameter"), (7, "model_mismatch")}
    assert Batch.model_validate(done).errors.data[0].line == 2


def test_injected_validation_failure(openai_emulator: OpenAIEmulator, client: openai.OpenAI) -> None:
    openai_emulator.faults.add("validation_failure", code="token_limit_exceeded", message="Enqueued token limit.")
    done = wait(client, submit(client, [line(0)]).id)
    assert done["status"] == "failed"
    assert done["errors"]["data"][0]["code"] == "token_limit_exceeded"


@pytest.mark.emulator(max_requests=3, max_file_bytes=10_000)
def test_limits(openai_emulator: OpenAIEmulator, client: openai.OpenAI) -> None:
    done = wait(client, submit(client, [line(i) for i in range(4)]).id)
    assert [e["code"] for e in done["errors"]["data"]] == ["too_many_tasks"]
    big = line(0)
    big["body"]["messages"][1]["content"] = "x" * 20_000
    done = wait(client, submit(client, [big]).id)
    assert [e["code"] for e in done["errors"]["data"]] == ["file_too_large"]
    done = wait(client, submit(client, []).id)
    assert [e["code"] for e in done["errors"]["data"]] == ["empty_file"]


def test_create_rejections(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError, match="jsonl"):
        client.files.create(file=("input.txt", b"{}\n", "text/plain"), purpose="batch")
    upload = client.files.create(file=("input.jsonl", to_jsonl([line(0)]), "application/jsonl"), purpose="batch")
    FileObject.model_validate(json.loads(client.files.with_raw_response.retrieve(upload.id).text))
    with pytest.raises(openai.BadRequestError):
        client.batches.create(input_file_id=upload.id, endpoint="/v1/chat/completions",
                              completion_window="48h")
    with pytest.raises(openai.BadRequestError):
        client.batches.create(input_file_id=upload.id, endpoint="/v1/chat/completions", completion_window="24h",
                              metadata={f"k{i}": "v" for i in range(17)})
    with pytest.raises(openai.NotFoundError):
        client.batches.retrieve("batch_missing")
    raw = httpx.get(str(client.base_url) + "batches/batch_missing", headers={"Authorization": "Bearer t"})
    assert raw.status_code == 404
    assert_spec("ErrorResponse", raw.json())


class Review(pydantic.BaseModel):
    title: str
    stars: int = pydantic.Field(ge=1, le=5)
    tags: list[str]


def test_online_structured_output(openai_emulator: OpenAIEmulator, client: openai.OpenAI) -> None:
    messages = [{"role": "user", "content": "Review a bakery."}]
    parsed = client.chat.completions.parse(model=MODEL, messages=messages, response_format=Review)
    review = parsed.choices[0].message.parsed
    assert isinstance(review, Review) and 1 <= review.stars <= 5
    sent = openai_emulator.received[-1]
    assert_spec("CreateChatCompletionRequest", sent)
    raw = client.chat.completions.with_raw_response.create(model=MODEL, messages=body(1)["messages"],
                                                           response_format=body(1)["response_format"])
    completion = json.loads(raw.text)
    assert_spec("CreateChatCompletionResponse", completion)
    jsonschema.validate(json.loads(completion["choices"][0]["message"]["content"]), SCHEMA)
    assert completion["usage"]["total_tokens"] == completion["usage"]["prompt_tokens"] + completion["usage"][
        "completion_tokens"]
    again = client.chat.completions.create(model=MODEL, messages=body(1)["messages"],
                                           response_format=body(1)["response_format"])
    assert again.choices[0].message.content == completion["choices"][0]["message"]["content"]


def test_online_answer_faults(openai_emulator: OpenAIEmulator, client: openai.OpenAI) -> None:
    emu, path = openai_emulator, "POST /v1/chat/completions"
    emu.faults.add("truncated", path=path)
    emu.faults.add("refusal", path=path)
    emu.faults.add("invalid_json", path=path)
    emu.faults.add("error", path=path, status=400, message="bad thing")
    results = [client.chat.completions.create(model=MODEL, messages=body(i)["messages"],
                                              response_format=body(i)["response_format"]) for i in range(3)]
    assert results[0].choices[0].finish_reason == "length"
    assert results[1].choices[0].message.refusal and results[1].choices[0].message.content is None
    with pytest.raises(ValueError):
        json.loads(results[2].choices[0].message.content or "")
    with pytest.raises(openai.BadRequestError, match="bad thing"):
        client.chat.completions.create(model=MODEL, messages=body(0)["messages"])
    short = client.chat.completions.create(model=MODEL, messages=body(0)["messages"], max_completion_tokens=3)
    assert short.choices[0].finish_reason == "length" and short.usage and short.usage.completion_tokens == 3
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(model=MODEL, messages=[{"role": "robot", "content": "x"}])


def test_429_then_success_honours_retry_after(openai_emulator: OpenAIEmulator, client: openai.OpenAI) -> None:
    openai_emulator.faults.http("POST /v1/chat/completions", status=429, times=2, retry_after=0.01)
    start = time.monotonic()
    result = client.chat.completions.create(model=MODEL, messages=body(0)["messages"])
    assert time.monotonic() - start < 2.0  # retry-after-ms (10 ms) honoured, not the SDK's 0.5 s+ backoff
    assert result.choices[0].message.content
    assert openai_emulator.stats()["calls"]["POST /v1/chat/completions"] == 3
    assert openai_emulator.submissions(openai_emulator.stats()["online_requests"][0]["id"]) == 1


def test_5xx_exhausts_retries_and_polling_survives(openai_emulator: OpenAIEmulator, client: openai.OpenAI) -> None:
    openai_emulator.faults.http("POST /v1/chat/completions", status=503, times=3)
    with pytest.raises(openai.InternalServerError) as info:
        client.chat.completions.create(model=MODEL, messages=body(0)["messages"])
    assert info.value.status_code == 503
    batch = submit(client, [line(0)])
    openai_emulator.faults.http(r"GET /v1/batches/batch_", status=500, times=1)
    assert wait(client, batch.id)["status"] == "completed"


def test_latency_fault(openai_emulator: OpenAIEmulator, client: openai.OpenAI) -> None:
    openai_emulator.faults.latency(0.2, path="GET /v1/files")
    start = time.monotonic()
    client.files.list()
    assert time.monotonic() - start >= 0.2


def test_auth_is_required(openai_emulator: OpenAIEmulator) -> None:
    response = httpx.get(openai_emulator.base_url + "/batches")
    assert response.status_code == 401
    assert_spec("ErrorResponse", response.json())


def test_unknown_request_arguments_are_refused(openai_emulator: OpenAIEmulator, client: openai.OpenAI) -> None:
    # the OpenAPI schema lets unknown keys through; the API does not
    with pytest.raises(openai.BadRequestError, match="Unrecognized request argument supplied: max_tokenz"):
        client.chat.completions.create(model=MODEL, messages=body(1)["messages"], extra_body={"max_tokenz": 5})
    bad = {**body(1), "max_tokenz": 5}
    line = {"custom_id": "bad-1", "method": "POST", "url": "/v1/chat/completions", "body": bad}
    uploaded = client.files.create(file=("b.jsonl", (json.dumps(line) + "\n").encode(), "application/jsonl"),
                                   purpose="batch")
    batch = client.batches.create(input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h")
    openai_emulator.advance(3600)
    batch = client.batches.retrieve(batch.id)
    assert batch.status == "completed" and batch.output_file_id is None
    errors = [json.loads(x) for x in client.files.content(batch.error_file_id).text.splitlines()]
    assert errors[0]["custom_id"] == "bad-1" and errors[0]["response"]["status_code"] == 400
    assert "max_tokenz" in errors[0]["response"]["body"]["error"]["message"]


# -- prompt caching ------------------------------------------------------------------------------------------
# a 6,000-character document: 1,500 tokens at the emulators' 4 characters a token
DOC = "".join(f"Line {i:04d} of the harbour log: the tide turned and the ships came in.\n" for i in range(200))[:6000]
QUESTIONS = ("First question: who keeps the log?", "Second question: when does the tide turn?")


def doc_messages(question: str, doc: str = DOC) -> list[dict[str, str]]:
    return [{"role": "system", "content": doc}, {"role": "user", "content": question}]


def ask(client: openai.OpenAI, question: str, **kwargs: Any) -> ChatCompletion:
    return client.chat.completions.create(**{"model": MODEL, "messages": doc_messages(question), **kwargs})


def cached(completion: ChatCompletion) -> int | None:
    assert completion.usage and completion.usage.prompt_tokens_details
    return completion.usage.prompt_tokens_details.cached_tokens


def test_shared_prefix_is_cached_in_128_token_steps(openai_emulator: OpenAIEmulator, client: openai.OpenAI) -> None:
    first, second = (ask(client, q) for q in QUESTIONS)
    assert cached(first) == 0 and first.usage and first.usage.prompt_tokens == 1512
    # shared: the document and the newline before the question, 6,001 characters = 1,500 tokens -> 11 x 128
    assert cached(second) == 1408 and second.usage and second.usage.prompt_tokens == 1514
    raw = client.chat.completions.with_raw_response.create(model=MODEL, messages=doc_messages(QUESTIONS[0]))
    completion = json.loads(raw.text)
    assert_spec("CreateChatCompletionResponse", completion)
    assert completion["usage"]["prompt_tokens_details"]["cached_tokens"] == 1408  # the whole prompt: still 1,408
    other_model = client.chat.completions.create(model="gpt-4.1", messages=doc_messages(QUESTIONS[1]))
    assert cached(other_model) == 0  # caches are per model
    openai_emulator.reset()
    assert cached(ask(client, QUESTIONS[1])) == 0  # reset forgets the cache


def test_short_prefixes_and_changed_schemas_are_not_cached(client: openai.OpenAI) -> None:
    short = DOC[:4000]  # 1,000 tokens: below the 1,024-token minimum
    for question in QUESTIONS:
        assert cached(client.chat.completions.create(model=MODEL, messages=doc_messages(question, short))) == 0
    ask(client, QUESTIONS[0], response_format=body(0)["response_format"])
    assert cached(ask(client, QUESTIONS[1], response_format=body(0)["response_format"])) == 1408
    # the structured-output schema is a prefix of the system message: a different one shares nothing
    assert cached(ask(client, QUESTIONS[1], response_format={"type": "json_object"})) == 0
    # a different first message (same text, split otherwise) is not the same prompt
    split = [{"role": "system", "content": DOC[:3000]}, {"role": "system", "content": DOC[3000:]},
             {"role": "user", "content": QUESTIONS[1]}]
    assert cached(client.chat.completions.create(model=MODEL, messages=split)) == 0


def test_prompt_cache_key_must_match(openai_emulator: OpenAIEmulator, client: openai.OpenAI) -> None:
    ask(client, QUESTIONS[0], prompt_cache_key="doc-a")
    assert cached(ask(client, QUESTIONS[1], prompt_cache_key="doc-b")) == 0  # routed elsewhere: a miss
    assert cached(ask(client, QUESTIONS[1])) == 0  # no key is a key of its own
    assert cached(ask(client, QUESTIONS[1], prompt_cache_key="doc-a")) == 1408
    assert openai_emulator.received[-1]["prompt_cache_key"] == "doc-a"
    with pytest.raises(openai.BadRequestError, match="prompt_cache_key"):  # checked against the OpenAPI document
        client.chat.completions.create(model=MODEL, messages=doc_messages(QUESTIONS[0]),
                                       extra_body={"prompt_cache_key": 42})


def test_batch_requests_are_cached_in_file_order(openai_emulator: OpenAIEmulator, client: openai.OpenAI) -> None:
    rows = [{"custom_id": f"q{i}", "method": "POST", "url": "/v1/chat/completions",
             "body": {"model": MODEL, "messages": doc_messages(q), "prompt_cache_key": "doc"}}
            for i, q in enumerate(QUESTIONS)]
    done = wait(client, submit(client, rows).id)
    lines = {r["custom_id"]: r["response"]["body"] for r in lines_of(client, done["output_file_id"])}
    usage = {rid: ChatCompletion.model_validate(b).usage for rid, b in lines.items()}
    assert usage["q0"] and usage["q0"].prompt_tokens_details and usage["q0"].prompt_tokens_details.cached_tokens == 0
    assert usage["q1"] and usage["q1"].prompt_tokens_details and usage["q1"].prompt_tokens_details.cached_tokens == 1408
    assert done["usage"]["input_tokens"] == 1512 + 1514 and done["usage"]["input_tokens_details"]["cached_tokens"] == 1408
    # the batch filled the cache for later online calls with the same key
    assert cached(ask(client, QUESTIONS[0], prompt_cache_key="doc")) == 1408
