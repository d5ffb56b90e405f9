"""Fidelity of the Ollama emulator: the real ``ollama`` SDK parses every answer into its pydantic types."""

from __future__ import annotations

import json
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
