# mypy: disable-error-code="arg-type, union-attr, index, misc, list-item, typeddict-item"
# (the tests pass plain dicts where the SDKs declare TypedDicts, and read union members they know the type of)
"""Fidelity of the Gemini emulator: the real ``google-genai`` SDK (which pydantic-validates what it parses)
uploads, creates, polls, lists, cancels, downloads and generates against it."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import pydantic
import pytest
from google import genai
from google.genai import _api_client, errors, types
from google.genai.models import _GenerateContentResponse_from_mldev

from tests.emulators import GeminiEmulator
from tests.emulators.testing import poll, read_jsonl

pytest_plugins = ["tests.conftest_emulators"]

MODEL = "gemini-2.5-flash"
SCHEMA = {
    "type": "object",
    "properties": {"title": {"type": "string", "minLength": 3}, "year": {"type": "integer", "minimum": 1900,
                                                                         "maximum": 2030},
                   "genres": {"type": "array", "items": {"type": "string"}, "minItems": 1}},
    "required": ["title", "year", "genres"],
}
TERMINAL = {"JOB_STATE_SUCCEEDED", "JOB_STATE_FAILED", "JOB_STATE_CANCELLED", "JOB_STATE_EXPIRED"}


def request(i: int, **config: Any) -> Any:
    return {"contents": [{"role": "user", "parts": [{"text": f"Describe film {i}"}]}],
            "systemInstruction": {"parts": [{"text": "You describe films."}]},
            "generationConfig": {"responseMimeType": "application/json", "responseJsonSchema": SCHEMA,
                                 "maxOutputTokens": 1024, **config}}


def client_for(emu: GeminiEmulator, **http: Any) -> genai.Client:
    options: Any = {"base_url": emu.base_url, "api_version": "v1beta", "timeout": 10_000, **http}
    return genai.Client(api_key="test-key", http_options=options)


@pytest.fixture
def client(gemini_emulator: GeminiEmulator) -> genai.Client:
    return client_for(gemini_emulator)


def upload_lines(client: genai.Client, tmp_path: Path, rows: list[Any]) -> types.File:
    path = tmp_path / "requests.jsonl"
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))
    return client.files.upload(file=str(path), config={"mime_type": "jsonl", "display_name": "requests"})


def wait(client: genai.Client, name: str) -> types.BatchJob:
    return poll(lambda: client.batches.get(name=name), lambda j: j.state is not None and j.state.value in TERMINAL)


def parse_response(payload: dict[str, Any]) -> types.GenerateContentResponse:
    return types.GenerateContentResponse._from_response(response=_GenerateContentResponse_from_mldev(payload),
                                                        kwargs={})


def test_resumable_upload_in_chunks(gemini_emulator: GeminiEmulator, client: genai.Client, tmp_path: Path,
                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_api_client, "CHUNK_SIZE", 64)  # several upload calls, then finalize
    rows = [{"key": f"k{i}", "request": request(i)} for i in range(3)]
    uploaded = upload_lines(client, tmp_path, rows)
    assert uploaded.name and uploaded.name.startswith("files/") and uploaded.state == types.FileState.ACTIVE
    assert uploaded.size_bytes == (tmp_path / "requests.jsonl").stat().st_size
    assert gemini_emulator.stats()["calls"]["POST /upload/{v}/files"] > 3
    assert client.files.get(name=uploaded.name).display_name == "requests"
    file_id = uploaded.name.removeprefix("files/")
    assert gemini_emulator.contents[file_id] == (tmp_path / "requests.jsonl").read_bytes()
    with pytest.raises(errors.ClientError):  # as the API: only generated files can be downloaded
        client.files.download(file=uploaded.name)


@pytest.mark.emulator(batch_delay=100)
def test_file_batch_lifecycle(gemini_emulator: GeminiEmulator, client: genai.Client, tmp_path: Path) -> None:
    emu = gemini_emulator
    emu.faults.error("k1", status=500)
    emu.faults.add("truncated", request_id="k2")
    rows = [{"key": f"k{i}", "request": request(i)} for i in range(5)]
    rows[3]["request"]["contents"] = []  # invalid request -> per-line error
    job = client.batches.create(model=MODEL, src=upload_lines(client, tmp_path, rows).name,
                                config={"display_name": "films"})
    assert job.state == types.JobState.JOB_STATE_PENDING and job.name and job.name.startswith("batches/")
    assert job.display_name == "films" and job.model == f"models/{MODEL}"
    emu.advance(100)
    assert client.batches.get(name=job.name).state == types.JobState.JOB_STATE_RUNNING
    emu.advance(100)
    done = client.batches.get(name=job.name)
    assert done.state == types.JobState.JOB_STATE_SUCCEEDED and done.done and done.end_time is not None
    assert done.dest and done.dest.file_name
    lines = {r["key"]: r for r in read_jsonl(client.files.download(file=done.dest.file_name))}
    assert sorted(lines) == ["k0", "k1", "k2", "k3", "k4"]
    assert lines["k1"]["error"]["code"] == 500 and lines["k3"]["error"]["status"] == "INVALID_ARGUMENT"
    for key in ("k0", "k4"):
        response = parse_response(lines[key]["response"])
        assert response.candidates and response.candidates[0].finish_reason == types.FinishReason.STOP
        jsonschema.validate(json.loads(response.text or ""), SCHEMA)
        assert response.usage_metadata and response.usage_metadata.total_token_count
    truncated = parse_response(lines["k2"]["response"])
    assert truncated.candidates and truncated.candidates[0].finish_reason == types.FinishReason.MAX_TOKENS
    raw = httpx.get(f"{emu.url}/v1beta/{job.name}", headers={"x-goog-api-key": "k"}).json()
    assert raw["done"] is True and raw["metadata"]["output"]["responsesFile"] == done.dest.file_name
    assert raw["metadata"]["batchStats"] == {"requestCount": "5", "successfulRequestCount": "3",
                                             "failedRequestCount": "2", "pendingRequestCount": "0"}
    assert emu.stats()["batches"][0]["request_ids"] == [f"k{i}" for i in range(5)]


def test_inline_batch(gemini_emulator: GeminiEmulator, client: genai.Client) -> None:
    gemini_emulator.faults.error("b", status=429)
    src: Any = [{"contents": [{"role": "user", "parts": [{"text": f"film {key}"}]}], "metadata": {"key": key},
            "config": {"response_mime_type": "application/json", "response_json_schema": SCHEMA}}
           for key in ("a", "b", "c")]
    job = wait(client, client.batches.create(model=MODEL, src=src).name or "")
    assert job.state == types.JobState.JOB_STATE_SUCCEEDED
    inlined = job.dest.inlined_responses if job.dest else None
    assert inlined is not None and [r.metadata for r in inlined] == [{"key": "a"}, {"key": "b"}, {"key": "c"}]
    assert inlined[1].error is not None and inlined[1].error.code == 429 and inlined[1].response is None
    for item in (inlined[0], inlined[2]):
        assert item.response is not None
        jsonschema.validate(json.loads(item.response.text or ""), SCHEMA)


def test_list_pagination_and_delete(gemini_emulator: GeminiEmulator, client: genai.Client) -> None:
    names = [client.batches.create(model=MODEL, src=[{"contents": "hi", "metadata": {"key": str(i)}}]).name
             for i in range(5)]
    pager = client.batches.list(config={"page_size": 2})
    assert len(pager.page) == 2
    assert [j.name for j in pager] == names[::-1]
    client.batches.delete(name=names[0] or "")
    assert [j.name for j in client.batches.list(config={"page_size": 10})] == names[:0:-1]
    with pytest.raises(errors.ClientError) as info:
        client.batches.get(name=names[0] or "")
    assert info.value.code == 404 and info.value.status == "NOT_FOUND"


@pytest.mark.emulator(batch_delay=100)
def test_cancel_with_partial_results(gemini_emulator: GeminiEmulator, client: genai.Client,
                                     tmp_path: Path) -> None:
    rows = [{"key": f"k{i}", "request": request(i)} for i in range(4)]
    job = client.batches.create(model=MODEL, src=upload_lines(client, tmp_path, rows).name)
    gemini_emulator.advance(150)
    client.batches.cancel(name=job.name or "")
    gemini_emulator.advance(100)
    done = client.batches.get(name=job.name or "")
    assert done.state == types.JobState.JOB_STATE_CANCELLED and done.dest and done.dest.file_name
    assert len(read_jsonl(client.files.download(file=done.dest.file_name))) == 2
    with pytest.raises(errors.ClientError) as info:
        client.batches.cancel(name=job.name or "")
    assert info.value.code == 400


def test_expired_and_failed_batches(gemini_emulator: GeminiEmulator, client: genai.Client, tmp_path: Path) -> None:
    gemini_emulator.faults.add("expire", completed=1)
    src = [{"contents": "hi", "metadata": {"key": str(i)}} for i in range(3)]
    expired = wait(client, client.batches.create(model=MODEL, src=src).name or "")
    assert expired.state == types.JobState.JOB_STATE_EXPIRED
    assert expired.dest and expired.dest.inlined_responses and len(expired.dest.inlined_responses) == 1
    bad = upload_lines(client, tmp_path, [{"key": "k0", "request": request(0)}, "{broken"])
    failed = wait(client, client.batches.create(model=MODEL, src=bad.name).name or "")
    assert failed.state == types.JobState.JOB_STATE_FAILED and failed.dest is None
    raw = httpx.get(f"{gemini_emulator.url}/v1beta/{failed.name}", headers={"x-goog-api-key": "k"}).json()
    assert "Line 2" in raw["error"]["message"]


class Film(pydantic.BaseModel):
    title: str
    year: int
    genres: list[str]


def test_generate_content(gemini_emulator: GeminiEmulator, client: genai.Client) -> None:
    config = {"response_mime_type": "application/json", "response_json_schema": SCHEMA}
    first = client.models.generate_content(model=MODEL, contents="A film", config=config)
    jsonschema.validate(json.loads(first.text or ""), SCHEMA)
    again = client.models.generate_content(model=MODEL, contents="A film", config=config)
    assert again.text == first.text  # deterministic per request
    typed = client.models.generate_content(model=MODEL, contents="A film",
                                           config={"response_mime_type": "application/json",
                                                   "response_schema": Film})
    assert isinstance(typed.parsed, Film)
    assert "responseSchema" in gemini_emulator.received[-1]["generationConfig"]
    short = client.models.generate_content(model=MODEL, contents="A film", config={"max_output_tokens": 4})
    assert short.candidates and short.candidates[0].finish_reason == types.FinishReason.MAX_TOKENS
    gemini_emulator.faults.add("refusal", path=":generateContent")
    blocked = client.models.generate_content(model=MODEL, contents="A film")
    assert blocked.candidates and blocked.candidates[0].finish_reason == types.FinishReason.SAFETY
    assert blocked.text is None
    refused = httpx.post(f"{gemini_emulator.url}/v1beta/models/{MODEL}:generateContent",  # the SDK refuses [] itself
                         headers={"x-goog-api-key": "k"}, json={"contents": []})
    assert refused.status_code == 400 and refused.json()["error"]["status"] == "INVALID_ARGUMENT"


def test_default_v1_and_retry(gemini_emulator: GeminiEmulator) -> None:
    plain = genai.Client(api_key="k", http_options={"base_url": gemini_emulator.base_url})  # SDK default: v1
    assert plain.models.generate_content(model=MODEL, contents="hi").text
    assert "POST /{v}/models/{model}:generateContent" in gemini_emulator.stats()["calls"]
    gemini_emulator.faults.http(":generateContent", status=429, times=2)
    with pytest.raises(errors.ClientError) as info:  # no retries unless retry_options is set
        plain.models.generate_content(model=MODEL, contents="hi")
    assert info.value.code == 429 and info.value.status == "RESOURCE_EXHAUSTED"
    retrying = client_for(gemini_emulator, retry_options={"attempts": 3, "initial_delay": 0.01, "max_delay": 0.02,
                                                          "jitter": 0})
    start = time.monotonic()
    assert retrying.models.generate_content(model=MODEL, contents="hi").text
    assert time.monotonic() - start < 2.0


def test_api_key_required(gemini_emulator: GeminiEmulator) -> None:
    response = httpx.get(gemini_emulator.url + "/v1beta/batches")
    assert response.status_code == 403 and response.json()["error"]["status"] == "PERMISSION_DENIED"


# -- implicit caching ----------------------------------------------------------------------------------------
# a 10,000-character document: 2,500 tokens at the emulators' 4 characters a token (2.5 Flash caches from 2,048)
DOC = "".join(f"Line {i:04d} of the harbour log: the tide turned and the ships came in.\n" for i in range(400))[:10_000]
QUESTIONS = ("First question: who keeps the log?", "Second question: when does the tide turn?")


def ask(client: genai.Client, question: str, *, doc: str = DOC,
        model: str = MODEL) -> types.GenerateContentResponseUsageMetadata:
    response = client.models.generate_content(model=model, contents=question, config={"system_instruction": doc})
    assert response.usage_metadata is not None
    return response.usage_metadata


def test_repeated_prefix_is_reported_as_cached_content(gemini_emulator: GeminiEmulator, client: genai.Client) -> None:
    first = ask(client, QUESTIONS[0])
    assert first.cached_content_token_count is None and first.prompt_token_count == 2512
    second = ask(client, QUESTIONS[1])
    # shared: the document and the newline before the question, 10,001 characters = 2,500 tokens, all of them
    assert second.cached_content_token_count == 2500 and second.prompt_token_count == 2514  # included
    assert second.cache_tokens_details and second.cache_tokens_details[0].token_count == 2500
    assert ask(client, QUESTIONS[1], model="gemini-2.5-pro").cached_content_token_count is None  # per model
    gemini_emulator.reset()
    assert ask(client, QUESTIONS[0]).cached_content_token_count is None


def test_short_prefixes_and_older_models_are_not_cached(client: genai.Client) -> None:
    for question in QUESTIONS:  # 1,500 tokens: below 2.5 Flash's 2,048
        assert ask(client, question, doc=DOC[:6000]).cached_content_token_count is None
    for question in QUESTIONS:  # implicit caching starts with Gemini 2.5
        assert ask(client, question, model="gemini-2.0-flash").cached_content_token_count is None
    three = "gemini-3.5-flash"  # 4,096 tokens
    for question in QUESTIONS:
        assert ask(client, question, model=three).cached_content_token_count is None
    ask(client, QUESTIONS[0], model=three, doc=DOC * 2)
    assert ask(client, QUESTIONS[1], model=three, doc=DOC * 2).cached_content_token_count == 5000


def test_batch_responses_carry_cached_content(gemini_emulator: GeminiEmulator, client: genai.Client,
                                              tmp_path: Path) -> None:
    src: Any = [{"contents": q, "metadata": {"key": f"q{i}"}, "config": {"system_instruction": DOC}}
                for i, q in enumerate(QUESTIONS)]
    job = wait(client, client.batches.create(model=MODEL, src=src).name or "")
    inlined = job.dest.inlined_responses if job.dest else None
    assert inlined and [r.metadata for r in inlined] == [{"key": "q0"}, {"key": "q1"}]
    usage = [r.response.usage_metadata if r.response else None for r in inlined]
    assert usage[0] and usage[0].cached_content_token_count is None and usage[0].prompt_token_count == 2512
    assert usage[1] and usage[1].cached_content_token_count == 2500 and usage[1].prompt_token_count == 2514
    rows = [{"key": f"f{i}", "request": {"systemInstruction": {"parts": [{"text": DOC}]},
                                         "contents": [{"role": "user", "parts": [{"text": q}]}]}}
            for i, q in enumerate(reversed(QUESTIONS))]
    done = wait(client, client.batches.create(model=MODEL, src=upload_lines(client, tmp_path, rows).name).name or "")
    assert done.dest and done.dest.file_name
    lines = {r["key"]: r for r in read_jsonl(client.files.download(file=done.dest.file_name))}
    # both prompts were seen whole in the inline batch: (10,001 + 41) // 4 and (10,001 + 34) // 4 tokens
    for key, count in (("f0", 2510), ("f1", 2508)):
        meta = parse_response(lines[key]["response"]).usage_metadata
        assert meta and meta.cached_content_token_count == count
        assert lines[key]["response"]["usageMetadata"]["cachedContentTokenCount"] == count
