"""Fidelity of the Ollama emulator: the real ``ollama`` SDK parses every answer into its pydantic types."""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import httpx
import jsonschema
import ollama
import pytest

from tests.emulators import OllamaEmulator

pytest_plugins = ["tests.conftest_emulators"]

SCHEMA = {"type": "object", "properties": {"sentiment": {"type": "string", "enum": ["pos", "neg"]},
                                           "reviews": {"type": "array", "items": {"type": "string"},
                                                       "minItems": 1, "maxItems": 3}},
          "required": ["sentiment", "reviews"]}
MESSAGES = [{"role": "system", "content": "You write reviews."}, {"role": "user", "content": "Two reviews."}]


@pytest.fixture
def client(ollama_emulator: OllamaEmulator) -> Any:
    return ollama.Client(host=ollama_emulator.url, timeout=10)


def test_models_listing_and_show(client: ollama.Client) -> None:
    listed = client.list()
    assert {m.model for m in listed.models} >= {"gemma3:4b", "llama3.2:latest"}
    shown = client.show("gemma3:4b")
    assert shown.modelinfo and "general.architecture" in shown.modelinfo
    assert shown.details and shown.details.format == "gguf"
    assert client.show("llama3.2").modelinfo  # the :latest tag is implied
    with pytest.raises(ollama.ResponseError) as info:
        client.show("missing-model")
    assert info.value.status_code == 404 and "not found" in info.value.error


def test_chat_with_schema(ollama_emulator: OllamaEmulator, client: ollama.Client) -> None:
    response = client.chat(model="gemma3:4b", messages=MESSAGES, format=SCHEMA,
                           options={"seed": 1, "temperature": 0.2, "num_predict": 512})
    assert response.done and response.done_reason == "stop"
    assert response.prompt_eval_count and response.eval_count and response.total_duration
    jsonschema.validate(json.loads(response.message.content or ""), SCHEMA)
    again = client.chat(model="gemma3:4b", messages=MESSAGES, format=SCHEMA,
                        options={"seed": 1, "temperature": 0.2, "num_predict": 512})
    assert again.message.content == response.message.content
    sent = ollama_emulator.received[-1]
    assert sent["stream"] is False and sent["format"] == SCHEMA and sent["options"]["num_predict"] == 512
    assert ollama_emulator.submissions(ollama_emulator.stats()["online_requests"][0]["id"]) == 2


def test_chat_json_mode_plain_text_and_truncation(client: ollama.Client) -> None:
    assert isinstance(json.loads(client.chat(model="gemma3:4b", messages=MESSAGES, format="json").message.content
                                 or ""), dict)
    plain = client.chat(model="gemma3:4b", messages=MESSAGES)
    assert plain.message.content and plain.message.content.startswith("Sample text")
    short = client.chat(model="gemma3:4b", messages=MESSAGES, format=SCHEMA, options={"num_predict": 3})
    assert short.done_reason == "length" and short.eval_count == 3


def test_streaming(client: ollama.Client) -> None:
    parts = list(client.chat(model="gemma3:4b", messages=MESSAGES, format=SCHEMA, stream=True))
    assert len(parts) > 2 and parts[-1].done and not any(p.done for p in parts[:-1])
    text = "".join(p.message.content or "" for p in parts)
    jsonschema.validate(json.loads(text), SCHEMA)
    assert parts[-1].eval_count


def test_errors_and_faults(ollama_emulator: OllamaEmulator, client: ollama.Client) -> None:
    with pytest.raises(ollama.ResponseError) as info:
        client.chat(model="nope", messages=MESSAGES)
    assert info.value.status_code == 404
    ollama_emulator.faults.error(path="/api/chat", status=500, message="llama runner process has terminated")
    with pytest.raises(ollama.ResponseError) as info:
        client.chat(model="gemma3:4b", messages=MESSAGES)
    assert info.value.status_code == 500 and "runner" in info.value.error
    ollama_emulator.faults.http("/api/chat", status=503)
    with pytest.raises(ollama.ResponseError) as info:
        client.chat(model="gemma3:4b", messages=MESSAGES)
    assert info.value.status_code == 503 and json.loads(httpx.get(ollama_emulator.url + "/api/version").text)[
        "version"]
    ollama_emulator.faults.add("invalid_json", path="/api/chat")
    broken = client.chat(model="gemma3:4b", messages=MESSAGES, format=SCHEMA)
    with pytest.raises(ValueError):
        json.loads(broken.message.content or "")
    assert ollama_emulator.stats()["calls"]["POST /api/chat"] == 4


def concurrently(call: Any, n: int) -> list[Any]:
    """``call(i)`` for i in range(n), all at once on n threads: each answer, or the exception it raised."""
    out: list[Any] = [None] * n
    start = threading.Barrier(n, timeout=10)

    def run(i: int) -> None:
        start.wait()
        try:
            out[i] = call(i)
        except Exception as exc:  # noqa: BLE001 - the test inspects it
            out[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    return out


def ask(i: int) -> list[dict[str, str]]:
    return [{"role": "user", "content": f"Review number {i}."}]


def test_defaults_are_ollamas(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OLLAMA_NUM_PARALLEL", raising=False)
    monkeypatch.delenv("OLLAMA_MAX_QUEUE", raising=False)
    emu = OllamaEmulator()  # never started
    assert (emu.num_parallel, emu.max_queue) == (1, 512)
    monkeypatch.setenv("OLLAMA_NUM_PARALLEL", "4")
    monkeypatch.setenv("OLLAMA_MAX_QUEUE", "8")
    assert (OllamaEmulator().num_parallel, OllamaEmulator().max_queue) == (4, 8)  # like `ollama serve`
    assert OllamaEmulator(num_parallel=2, max_queue=0).stats()["scheduler"]["max_queue"] == 0


@pytest.mark.emulator(num_parallel=2)
def test_parallel_limit_per_model_queues_the_rest(ollama_emulator: OllamaEmulator, client: ollama.Client) -> None:
    ollama_emulator.faults.latency(0.15, "/api/chat")  # generation time: spent while holding a slot
    started = time.monotonic()
    answers = concurrently(lambda i: client.chat(model="gemma3:4b", messages=ask(i), format=SCHEMA), 6)
    wall = time.monotonic() - started
    assert all(isinstance(a, ollama.ChatResponse) and a.done for a in answers), answers
    for a in answers:
        jsonschema.validate(json.loads(a.message.content or ""), SCHEMA)
    scheduler = ollama_emulator.stats()["scheduler"]
    assert scheduler["peak_running"] == {"gemma3:4b": 2}  # never more than OLLAMA_NUM_PARALLEL at once
    assert scheduler["peak_queued"] == 4 and scheduler["rejected"] == 0 and scheduler["running"] == {}
    assert wall >= 3 * 0.15  # three waves of two
    # the limit is per model: another model's chats run beside a busy one
    both = concurrently(lambda i: client.chat(model=["gemma3:4b", "llama3.2"][i % 2], messages=ask(i)), 4)
    assert all(isinstance(a, ollama.ChatResponse) for a in both), both
    assert ollama_emulator.stats()["scheduler"]["peak_running"] == {"gemma3:4b": 2, "llama3.2:latest": 2}


@pytest.mark.emulator(num_parallel=1, max_queue=2)
def test_full_queue_answers_503_server_busy(ollama_emulator: OllamaEmulator, client: ollama.Client) -> None:
    ollama_emulator.faults.latency(0.3, "/api/chat")
    answers = concurrently(lambda i: client.chat(model="gemma3:4b", messages=ask(i)), 5)
    busy = [a for a in answers if isinstance(a, ollama.ResponseError)]
    assert len(busy) == 2 and sum(isinstance(a, ollama.ChatResponse) for a in answers) == 3  # 1 runs, 2 wait
    for err in busy:  # the server's own words (server/sched.go ErrMaxQueue), as a 503
        assert err.status_code == 503
        assert err.error == "server busy, please try again.  maximum pending requests exceeded"
    stats = ollama_emulator.stats()
    assert stats["scheduler"]["rejected"] == 2 and stats["scheduler"]["peak_queued"] == 2
    assert stats["calls"]["POST /api/chat"] == 5 and len(stats["online_requests"]) == 3  # refused = not run
    ollama_emulator.faults.clear()
    assert client.chat(model="gemma3:4b", messages=ask(9)).done  # drained: served again
    with pytest.raises(ollama.ResponseError) as info:  # an unknown model is answered at once, not queued
        client.chat(model="nope", messages=ask(0))
    assert info.value.status_code == 404


@pytest.mark.emulator(num_parallel=1)
def test_streams_take_turns(ollama_emulator: OllamaEmulator, client: ollama.Client) -> None:
    ollama_emulator.faults.latency(0.05, "/api/chat")
    streams = concurrently(lambda i: list(client.chat(model="gemma3:4b", messages=ask(i), stream=True)), 3)
    assert all(isinstance(s, list) and s[-1].done and s[-1].eval_count for s in streams), streams
    scheduler = ollama_emulator.stats()["scheduler"]
    assert scheduler["peak_running"] == {"gemma3:4b": 1} and scheduler["running"] == {}  # each slot given back


@pytest.mark.emulator(prompt_cache=True)
def test_cached_prompt_has_no_prompt_eval_count(ollama_emulator: OllamaEmulator, client: ollama.Client) -> None:
    body = {"model": "gemma3:4b", "messages": MESSAGES, "format": SCHEMA, "stream": False}
    first = httpx.post(ollama_emulator.url + "/api/chat", json=body).json()
    assert first["prompt_eval_count"] > 0 and first["prompt_eval_duration"] > 0
    again = httpx.post(ollama_emulator.url + "/api/chat", json=body).json()  # whole prompt in the KV cache
    assert "prompt_eval_count" not in again and "prompt_eval_duration" not in again and again["eval_count"] > 0
    parsed = client.chat(model="gemma3:4b", messages=MESSAGES, format=SCHEMA)
    assert parsed.prompt_eval_count is None and parsed.eval_count and parsed.done
    last = list(client.chat(model="gemma3:4b", messages=MESSAGES, stream=True))[-1]
    assert last.done and last.prompt_eval_count is None
    other = client.chat(model="gemma3:4b", messages=ask(1))  # another prompt is evaluated, and counted
    assert other.prompt_eval_count and other.prompt_eval_count > 0
