"""Prompt caching in the normalized results: every OpenAI, Anthropic and Gemini adapter, batch and online, reads
the vendor's cache counts (from the emulators, through the real SDKs) into `usage.cache_read_input_tokens` and
`usage.cache_write_input_tokens`, both part of `usage.input_tokens` and present only when not 0."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from datafast.runtimes.anthropic import AnthropicRuntime
from datafast.runtimes.anthropic_online import AnthropicOnlineRuntime
from datafast.runtimes.base import BatchRuntime, Job
from datafast.runtimes.gemini import GeminiRuntime
from datafast.runtimes.gemini_online import GeminiOnlineRuntime
from datafast.runtimes.openai import OpenAIRuntime
from datafast.runtimes.openai_online import OpenAIOnlineRuntime
from tests.emulators import AnthropicEmulator, GeminiEmulator, OpenAIEmulator

# 4 characters a token in the emulators: the document is 1,500 tokens (2,500 for Gemini, whose 2.5 Flash caches
# from 2,048); the questions differ from their first character
DOC = "".join(f"Line {i:04d} of the harbour log: the tide turned and the ships came in.\n" for i in range(400))
QUESTIONS = ("First question: who keeps the log?", "Second question: when does the tide turn?")
INTRO = "You answer questions about the harbour log."


def run_batch(rt: BatchRuntime, emu: Any, tmp_path: Path, model: str, lines: list[dict[str, Any]]) -> dict[str, Any]:
    """Submit `lines` as one job, let the emulator finish it, fetch: normalized usage by request id."""
    path = tmp_path / "job.jsonl"
    path.write_text("".join(json.dumps(x) + "\n" for x in lines), encoding="utf-8")
    job = Job(name="cache-test", runtime=model.split(":")[0], model=model, stage="generate", file=path.name,
              requests=len(lines))
    job.vendor_id = rt.create(job, path)
    emu.advance(7200)
    assert rt.poll(job).state == "ended"
    results = {r["id"]: r for r in rt.fetch(job, tmp_path / "raw")}
    assert all(r["status"] == "ok" for r in results.values())
    return {rid: r["usage"] for rid, r in results.items()}


def openai_line(rid: str, question: str) -> dict[str, Any]:
    return {"custom_id": rid, "method": "POST", "url": "/v1/chat/completions",
            "body": {"model": "gpt-4.1-mini", "max_completion_tokens": 200, "prompt_cache_key": "harbour",
                     "messages": [{"role": "system", "content": DOC[:6000]}, {"role": "user", "content": question}]}}


def test_openai_cached_tokens_are_read_tokens(openai_emulator: OpenAIEmulator, tmp_path: Path) -> None:
    env = {"OPENAI_API_KEY": "test", "OPENAI_BASE_URL": openai_emulator.base_url}
    usage = run_batch(OpenAIRuntime(env), openai_emulator, tmp_path, "openai:gpt-4.1-mini",
                      [openai_line(f"q{i}", q) for i, q in enumerate(QUESTIONS)])
    # 6,001 shared characters = 1,500 tokens, cached in steps of 128: 1,408
    assert usage["q0"] == {"input_tokens": 1512, "output_tokens": usage["q0"]["output_tokens"]}
    assert usage["q1"] == {"input_tokens": 1514, "output_tokens": usage["q1"]["output_tokens"],
                           "cache_read_input_tokens": 1408}
    online = OpenAIOnlineRuntime(env)
    again = online.send(openai_line("q2", "Third question: how high is the tide?"), "openai:gpt-4.1-mini")
    assert again["status"] == "ok" and again["usage"]["cache_read_input_tokens"] == 1408
    assert again["usage"]["input_tokens"] == (6001 + 37 + 3) // 4 + 3 and "cache_write_input_tokens" not in again["usage"]


def test_openai_cache_writes_and_missing_details(tmp_path: Path) -> None:
    """GPT-5.6 and later report (and bill) cache writes; OpenAI-compatible servers may send no details at all."""
    rt = OpenAIRuntime({"OPENAI_API_KEY": "test", "OPENAI_BASE_URL": "http://127.0.0.1:9/v1"})

    def normalized(usage: dict[str, Any]) -> dict[str, Any]:
        body = {"choices": [{"message": {"content": "{}"}, "finish_reason": "stop"}], "usage": usage}
        line = {"custom_id": "r", "response": {"status_code": 200, "body": body}}
        return dict(rt._normalize(line, "openai:gpt-5.6")["usage"])

    written = normalized({"prompt_tokens": 3000, "completion_tokens": 10,
                          "prompt_tokens_details": {"cached_tokens": 1024, "cache_write_tokens": 1900}})
    assert written == {"input_tokens": 3000, "output_tokens": 10, "cache_read_input_tokens": 1024,
                       "cache_write_input_tokens": 1900}
    assert normalized({"prompt_tokens": 5, "completion_tokens": 2}) == {"input_tokens": 5, "output_tokens": 2}
    assert normalized({"prompt_tokens": 5, "completion_tokens": 2, "prompt_tokens_details": None}) == {
        "input_tokens": 5, "output_tokens": 2}


def anthropic_line(rid: str, question: str) -> dict[str, Any]:
    return {"custom_id": rid, "params": {
        "model": "claude-opus-4-8", "max_tokens": 200,
        "system": [{"type": "text", "text": INTRO},
                   {"type": "text", "text": DOC[:6000], "cache_control": {"type": "ephemeral"}}],
        "messages": [{"role": "user", "content": question}]}}


def test_anthropic_cache_reads_and_writes_count_in_input(anthropic_emulator: AnthropicEmulator,
                                                         tmp_path: Path) -> None:
    env = {"ANTHROPIC_API_KEY": "test", "ANTHROPIC_BASE_URL": anthropic_emulator.base_url}
    usage = run_batch(AnthropicRuntime(env), anthropic_emulator, tmp_path, "anthropic:claude-opus-4-8",
                      [anthropic_line(f"q{i}", q) for i, q in enumerate(QUESTIONS)])
    # the breakpoint prefix (INTRO + DOC) is 1,511 tokens; Anthropic's own input_tokens (12, 14) is only the rest
    assert usage["q0"] == {"input_tokens": 1523, "output_tokens": usage["q0"]["output_tokens"],
                           "cache_write_input_tokens": 1511}
    assert usage["q1"] == {"input_tokens": 1525, "output_tokens": usage["q1"]["output_tokens"],
                           "cache_read_input_tokens": 1511}
    online = AnthropicOnlineRuntime(env)
    # the batch ended two hours ago on the emulator clock: its 5-minute entry has expired and is written again
    rewritten = online.send(anthropic_line("q2", QUESTIONS[0]), "anthropic:claude-opus-4-8")["usage"]
    assert rewritten == {"input_tokens": 1523, "output_tokens": rewritten["output_tokens"],
                         "cache_write_input_tokens": 1511}
    again = online.send(anthropic_line("q2", QUESTIONS[1]), "anthropic:claude-opus-4-8")["usage"]
    assert again == {"input_tokens": 1525, "output_tokens": again["output_tokens"], "cache_read_input_tokens": 1511}
    uncached = anthropic_line("q3", QUESTIONS[0])
    del uncached["params"]["system"][1]["cache_control"]
    assert set(online.send(uncached, "anthropic:claude-opus-4-8")["usage"]) == {"input_tokens", "output_tokens"}


def gemini_line(key: str, question: str) -> dict[str, Any]:
    return {"key": key, "request": {"systemInstruction": {"parts": [{"text": DOC[:10_000]}]},
                                    "contents": [{"role": "user", "parts": [{"text": question}]}],
                                    "generationConfig": {"maxOutputTokens": 200}}}


def test_gemini_cached_content_is_read_tokens(gemini_emulator: GeminiEmulator, tmp_path: Path) -> None:
    env = {"GEMINI_API_KEY": "test", "GOOGLE_GEMINI_BASE_URL": gemini_emulator.base_url}
    usage = run_batch(GeminiRuntime(env), gemini_emulator, tmp_path, "gemini:gemini-2.5-flash",
                      [gemini_line(f"q{i}", q) for i, q in enumerate(QUESTIONS)])
    # 10,001 shared characters = 2,500 tokens, all reported (promptTokenCount includes them)
    assert usage["q0"] == {"input_tokens": 2512, "output_tokens": usage["q0"]["output_tokens"]}
    assert usage["q1"] == {"input_tokens": 2514, "output_tokens": usage["q1"]["output_tokens"],
                           "cache_read_input_tokens": 2500}
    online = GeminiOnlineRuntime(env)
    again = online.send(gemini_line("q2", "Third question: how high is the tide?"), "gemini:gemini-2.5-flash")
    assert again["status"] == "ok" and again["usage"]["cache_read_input_tokens"] == 2500
    assert again["usage"]["input_tokens"] == (10_001 + 37 + 3) // 4 + 3


def test_anthropic_one_hour_writes_are_counted_apart(anthropic_emulator: AnthropicEmulator, tmp_path: Path) -> None:
    """`cache_creation.ephemeral_1h_input_tokens` -> usage.cache_write_1h_input_tokens (part of the writes), which
    the price table prices at `cache_write_1h` (2x the input price; 5-minute writes 1.25x)."""
    from datafast.compiler.pricing import PriceTable

    env = {"ANTHROPIC_API_KEY": "test", "ANTHROPIC_BASE_URL": anthropic_emulator.base_url}
    lines = [anthropic_line(f"q{i}", q) for i, q in enumerate(QUESTIONS)]
    for line in lines:
        line["params"]["system"][1]["cache_control"]["ttl"] = "1h"
    usage = run_batch(AnthropicRuntime(env), anthropic_emulator, tmp_path, "anthropic:claude-opus-4-8", lines)
    assert usage["q0"] == {"input_tokens": 1523, "output_tokens": usage["q0"]["output_tokens"],
                           "cache_write_input_tokens": 1511, "cache_write_1h_input_tokens": 1511}
    assert usage["q1"] == {"input_tokens": 1525, "output_tokens": usage["q1"]["output_tokens"],
                           "cache_read_input_tokens": 1511}
    table = PriceTable.load()
    sonnet = table.price("anthropic:claude-sonnet-4-5")
    assert sonnet is not None and sonnet["cache_write_1h"] == 2 * sonnet["input"]
    five = table.cost("anthropic:claude-sonnet-4-5", 1523, 0, 0, 1511)["online"]
    hour = table.cost("anthropic:claude-sonnet-4-5", 1523, 0, 0, 1511, 1511)["online"]
    assert five == round((12 * 3.0 + 1511 * 3.75) / 1e6, 6) and hour == round((12 * 3.0 + 1511 * 6.0) / 1e6, 6)
