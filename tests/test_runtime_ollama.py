"""The Ollama online runtime against the Ollama emulator, through the real `ollama` SDK."""

from __future__ import annotations

import json
import signal
import socket
import threading
from collections.abc import Iterator
from typing import Any

import jsonschema
import pytest

from datafast.runtimes import RuntimeFailure, get_runtime
from datafast.runtimes.ollama import OllamaRuntime, canonical
from tests.emulators import OllamaEmulator

pytest_plugins = ["tests.conftest_emulators"]

SCHEMA = {"type": "object", "additionalProperties": False, "required": ["items"],
          "properties": {"items": {"type": "array", "minItems": 1, "maxItems": 3, "items": {
              "type": "object", "additionalProperties": False, "required": ["text", "label"],
              "properties": {"text": {"type": "string"}, "label": {"type": "string", "enum": ["pos", "neg"]}}}}}}
SCHEMAS = {"generate-abc": SCHEMA}
MODEL = "ollama:gemma3:4b"


def request(i: int, **overrides: Any) -> dict[str, Any]:
    line = {"id": f"r{i:04d}", "stage": "generate", "model": MODEL, "schema": "generate-abc",
            "messages": [{"role": "system", "content": "You write reviews. Answer with JSON only."},
                         {"role": "user", "content": f"Write 2 reviews about product {i} — ünïcødé ✓"}],
            "params": {"max_tokens": 512, "temperature": 0.7, "seed": i}, "meta": {"label": "pos"}}
    return {**line, **overrides}


def runtime(emu: OllamaEmulator | None = None, host: str | None = None, **kwargs: Any) -> OllamaRuntime:
    env = {"OLLAMA_HOST": host or (emu.url if emu else "")}
    return OllamaRuntime(env, schemas=SCHEMAS, **{"timeout": 10.0, "backoff": 0.005, **kwargs})


def run_all(rt: OllamaRuntime, requests: Any, concurrency: int = 4) -> dict[str, dict[str, Any]]:
    got: dict[str, dict[str, Any]] = {}

    def on_result(r: dict[str, Any]) -> None:
        assert threading.current_thread() is threading.main_thread()  # never called from a worker
        assert r["id"] not in got
        got[r["id"]] = r

    rt.run(requests, concurrency, on_result)
    return got


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])  # closed when the block ends: connections are refused


def test_every_request_answered_with_schema_valid_json(ollama_emulator: OllamaEmulator) -> None:
    rt = get_runtime("ollama", {"OLLAMA_HOST": ollama_emulator.url})
    assert isinstance(rt, OllamaRuntime) and rt.client._client.base_url.port == ollama_emulator.port
    rt = runtime(ollama_emulator)
    rt.check_models([MODEL, "ollama:llama3.2"])  # both pulled (`:latest` implied)
    requests = [request(i) for i in range(24)] + [request(99, params={"max_tokens": 300, "top_p": 0.5})]
    got = run_all(rt, iter(requests))
    assert set(got) == {r["id"] for r in requests}
    for r in got.values():
        assert r["status"] == "ok" and r["error"] is None and r["finish_reason"] == "stop", r
        assert r["runtime"] == "ollama" and r["model"] == MODEL
        assert r["usage"]["input_tokens"] > 0 and r["usage"]["output_tokens"] > 0
        jsonschema.validate(json.loads(r["text"]), SCHEMA)
    sent = {body["options"].get("seed"): body for body in ollama_emulator.received}
    assert len(ollama_emulator.received) == 25
    assert sent[3]["model"] == "gemma3:4b" and sent[3]["stream"] is False and sent[3]["format"] == SCHEMA
    assert sent[3]["messages"] == requests[3]["messages"]
    assert sent[3]["options"] == {"num_predict": 512, "temperature": 0.7, "seed": 3}
    assert sent[None]["options"] == {"num_predict": 300, "top_p": 0.5}  # only the params present


def test_concurrency_is_bounded_and_requests_are_consumed_lazily(ollama_emulator: OllamaEmulator) -> None:
    ollama_emulator.faults.latency(0.01, "/api/chat")
    concurrency, rounds = 4, 6
    rt = runtime(ollama_emulator)
    chat = rt.client.chat
    # every call waits until `concurrency` calls are in flight together: fewer workers would break the barrier
    barrier = threading.Barrier(concurrency, timeout=5)
    lock, in_flight, peak = threading.Lock(), [0], [0]

    def counted_chat(**kwargs: Any) -> Any:
        with lock:
            in_flight[0] += 1
            peak[0] = max(peak[0], in_flight[0])
        try:
            barrier.wait()
            return chat(**kwargs)
        finally:
            with lock:
                in_flight[0] -= 1

    rt.client.chat = counted_chat  # type: ignore[method-assign]
    taken, reported, lookahead = [0], [0], [0]

    def requests() -> Iterator[dict[str, Any]]:
        for i in range(concurrency * rounds):
            taken[0] += 1
            lookahead[0] = max(lookahead[0], taken[0] - reported[0])
            yield request(i)

    def on_result(r: dict[str, Any]) -> None:
        assert r["status"] == "ok", r
        reported[0] += 1

    rt.run(requests(), concurrency, on_result)
    assert reported[0] == concurrency * rounds and peak[0] == concurrency
    assert lookahead[0] == 2 * concurrency  # the iterable is never read far ahead of the results
    assert ollama_emulator.stats()["calls"]["POST /api/chat"] == concurrency * rounds


def test_rate_limit_and_overload_are_retried(ollama_emulator: OllamaEmulator) -> None:
    ollama_emulator.faults.http("/api/chat", 429, times=2)
    ollama_emulator.faults.http("/api/chat", 503, times=1)
    got = run_all(runtime(ollama_emulator), [request(1), request(2)], concurrency=1)
    assert all(r["status"] == "ok" for r in got.values())
    stats = ollama_emulator.stats()
    assert stats["calls"]["POST /api/chat"] == 5  # 2 x 429 + 1 x 503 + 2 answers
    assert [f["fired"] for f in stats["faults"]] == [2, 1]
    assert sorted(stats["request_counts"].values()) == [1, 1]  # each request answered once


def test_persistent_server_error_becomes_a_transient_result(ollama_emulator: OllamaEmulator) -> None:
    ollama_emulator.faults.http("/api/chat", 500, times=None)
    got = run_all(runtime(ollama_emulator, max_retries=2), [request(1)])
    error = got["r0001"]["error"]
    assert got["r0001"]["status"] == "error" and error["kind"] == "server_error" and error["retryable"]
    assert "3 attempts" in error["message"]
    assert ollama_emulator.stats()["calls"]["POST /api/chat"] == 3


def test_terminal_errors_are_not_retried(ollama_emulator: OllamaEmulator) -> None:
    ollama_emulator.faults.error(path="/api/chat", status=400, message="invalid options")
    requests = [request(1), request(2, model="ollama:nope"), request(3, schema="missing-key")]
    got = run_all(runtime(ollama_emulator), requests)
    assert got["r0001"]["error"]["kind"] == "invalid_request" and not got["r0001"]["error"]["retryable"]
    assert got["r0002"]["error"]["kind"] == "not_found" and "ollama pull nope" in got["r0002"]["error"]["message"]
    assert got["r0003"]["error"]["kind"] == "invalid_request" and "missing-key" in got["r0003"]["error"]["message"]
    assert ollama_emulator.stats()["calls"]["POST /api/chat"] == 2  # the unknown schema key is never sent


def test_check_models_names_the_missing_ones(ollama_emulator: OllamaEmulator) -> None:
    with pytest.raises(RuntimeFailure) as info:
        runtime(ollama_emulator).check_models([MODEL, "ollama:qwen3:8b", "ollama:phi4"])
    message = str(info.value)
    assert "qwen3:8b" in message and "ollama pull qwen3:8b" in message and "ollama pull phi4" in message
    assert "gemma3" not in message
    assert canonical("hf.co/org/model") == "hf.co/org/model:latest" and canonical("host:5000/m:q4") == "host:5000/m:q4"


def test_missing_prompt_eval_count_counts_zero() -> None:
    import ollama  # a cached prompt: Ollama leaves out prompt_eval_count (the emulator always sends it)

    response = ollama.ChatResponse(message=ollama.Message(role="assistant", content="{}"), done=True,
                                   done_reason="stop", eval_count=7)
    r = runtime(host="http://127.0.0.1:1")._normalize("r1", MODEL, response, 512)
    assert r["status"] == "ok" and r["usage"] == {"input_tokens": 0, "output_tokens": 7}


@pytest.mark.emulator(prompt_cache=True)
def test_cached_prompt_counts_zero_input_tokens(ollama_emulator: OllamaEmulator) -> None:
    rt = runtime(ollama_emulator)
    first = run_all(rt, [request(1)])["r0001"]
    again = run_all(rt, [request(1)])["r0001"]  # same prompt: Ollama sends no prompt_eval_count
    assert first["status"] == again["status"] == "ok" and first["text"] == again["text"]
    assert first["usage"]["input_tokens"] > 0 and again["usage"] == {"input_tokens": 0,
                                                                     "output_tokens": first["usage"]["output_tokens"]}


@pytest.mark.emulator(num_parallel=2)
def test_limited_server_queues_without_losing_or_duplicating(ollama_emulator: OllamaEmulator) -> None:
    ollama_emulator.faults.latency(0.02, "/api/chat")
    requests = [request(i) for i in range(18)]
    got = run_all(runtime(ollama_emulator), requests, concurrency=6)  # more workers than Ollama's slots
    assert sorted(got) == sorted(r["id"] for r in requests) and all(r["status"] == "ok" for r in got.values())
    stats = ollama_emulator.stats()
    assert stats["scheduler"]["peak_running"] == {"gemma3:4b": 2}  # never more than Ollama's slots
    # 6 workers, 2 slots: 4 wait in line. A slot is released just after its answer's last byte is written (as
    # Ollama does), so a worker's next request can arrive while its previous one still holds it: one more
    # may wait for that instant (seen under load); more than that would mean the runtime exceeded concurrency
    assert 4 <= stats["scheduler"]["peak_queued"] <= 5
    assert sorted(stats["request_counts"].values()) == [1] * 18  # each request generated exactly once


@pytest.mark.emulator(num_parallel=1, max_queue=1)
def test_server_busy_503_is_retried(ollama_emulator: OllamaEmulator) -> None:
    ollama_emulator.faults.latency(0.05, "/api/chat")
    requests = [request(i) for i in range(8)]
    got = run_all(runtime(ollama_emulator, max_retries=40, backoff=0.01), requests, concurrency=4)
    assert sorted(got) == sorted(r["id"] for r in requests) and all(r["status"] == "ok" for r in got.values())
    stats = ollama_emulator.stats()
    rejected = stats["scheduler"]["rejected"]
    assert rejected > 0  # 4 workers, 1 slot, 1 place in the queue: some were refused, and sent again
    assert stats["calls"]["POST /api/chat"] == 8 + rejected
    assert sorted(stats["request_counts"].values()) == [1] * 8  # a refused request was never generated


@pytest.mark.emulator(num_parallel=1, max_queue=0)
def test_server_still_busy_after_the_retries_is_a_transient_result(ollama_emulator: OllamaEmulator) -> None:
    ollama_emulator.faults.latency(0.5, "/api/chat")
    got = run_all(runtime(ollama_emulator, max_retries=1, backoff=0.01), [request(1), request(2)], concurrency=2)
    (busy,) = [r for r in got.values() if r["status"] == "error"]
    assert busy["error"]["kind"] == "server_error" and busy["error"]["retryable"]
    assert "HTTP 503: server busy" in busy["error"]["message"] and "2 attempts" in busy["error"]["message"]
    assert [r["status"] for r in got.values()].count("ok") == 1


def test_truncated_answer_is_terminal(ollama_emulator: OllamaEmulator) -> None:
    ollama_emulator.faults.add("truncated", path="/api/chat")
    got = run_all(runtime(ollama_emulator), [request(1)], concurrency=1)
    got.update(run_all(runtime(ollama_emulator), [request(2, params={"max_tokens": 3})]))
    for r in got.values():
        assert r["status"] == "error" and r["finish_reason"] == "length" and r["text"] is not None
        assert r["error"]["kind"] == "truncated" and not r["error"]["retryable"]
    assert "num_predict=3" in got["r0002"]["error"]["message"] and got["r0002"]["usage"]["output_tokens"] == 3
    assert ollama_emulator.stats()["calls"]["POST /api/chat"] == 2


def test_slow_answer_times_out(ollama_emulator: OllamaEmulator) -> None:
    ollama_emulator.faults.latency(1.0, "/api/chat")
    got = run_all(runtime(ollama_emulator, timeout=0.2, max_retries=1), [request(1)])
    assert got["r0001"]["error"]["kind"] == "timeout" and got["r0001"]["error"]["retryable"]
    assert ollama_emulator.stats()["calls"]["POST /api/chat"] == 2


def test_unreachable_host() -> None:
    host = f"http://127.0.0.1:{closed_port()}"
    rt = runtime(host=host, max_retries=1)
    with pytest.raises(RuntimeFailure) as info:
        rt.check_models([MODEL])
    assert "not reachable" in str(info.value) and host in str(info.value) and "OLLAMA_HOST" in str(info.value)
    got = run_all(rt, [request(1)])
    assert got["r0001"]["error"]["kind"] == "connection" and got["r0001"]["error"]["retryable"]


def test_ctrl_c_stops_submitting(ollama_emulator: OllamaEmulator) -> None:
    rt, concurrency = runtime(ollama_emulator), 2
    chat, release, started, taken = rt.client.chat, threading.Event(), [0], [0]

    def held_chat(**kwargs: Any) -> Any:  # every call waits until the test lets it through
        started[0] += 1
        assert release.wait(5)
        return chat(**kwargs)

    rt.client.chat = held_chat  # type: ignore[method-assign]

    def endless() -> Iterator[dict[str, Any]]:
        while True:
            taken[0] += 1
            yield request(taken[0])

    def press_ctrl_c() -> None:  # once the window is full and every worker is busy, like a user would
        for _ in range(1000):
            if taken[0] == 2 * concurrency and started[0] == concurrency:
                break
            threading.Event().wait(0.005)
        signal.pthread_kill(threading.main_thread().ident or 0, signal.SIGINT)

    threading.Thread(target=press_ctrl_c, daemon=True).start()
    with pytest.raises(KeyboardInterrupt):
        rt.run(endless(), concurrency, lambda r: None)
    assert taken[0] == 2 * concurrency  # nothing more read from the iterable
    release.set()  # let the two calls in flight finish; the two queued ones must be dropped
    for worker in [t for t in threading.enumerate() if t.name.startswith("datafast-ollama-")]:
        worker.join(timeout=5)
        assert not worker.is_alive()
    assert started[0] == concurrency and ollama_emulator.stats()["calls"]["POST /api/chat"] == concurrency


def test_thinking_models_are_asked_not_to_think_and_others_are_not_sent_the_flag(ollama_emulator):
    from datafast.runtimes.ollama import OllamaRuntime

    runtime = OllamaRuntime({"OLLAMA_HOST": ollama_emulator.base_url}, schemas={"s": SCHEMA})
    requests = [{"id": f"r{i}", "model": model, "schema": "s", "params": {"max_tokens": 200},
                 "messages": [{"role": "user", "content": f"q{i}"}]}
                for i, model in enumerate(["ollama:qwen3:4b", "ollama:gemma3:4b"])]
    runtime.check_models([r["model"] for r in requests])
    results: list[dict] = []
    runtime.run(requests, 2, results.append)
    assert [r["status"] for r in results] == ["ok", "ok"]
    assert all(not r["text"].lstrip().startswith("<think>") for r in results)
    sent = {b["model"]: b for b in ollama_emulator.received}
    assert sent["qwen3:4b"]["think"] is False and "think" not in sent["gemma3:4b"]


def test_a_thinking_model_asked_nothing_answers_with_a_think_block_that_collect_unwraps(ollama_emulator):
    import ollama

    from datafast.compiler.collect import RowBuilder

    client = ollama.Client(host=ollama_emulator.base_url)
    reply = client.chat(model="qwen3:4b", messages=[{"role": "user", "content": "q"}], format=SCHEMA)
    assert reply.message.content.startswith("<think>")  # what a runtime that does not ask gets
    manifest = {"type": "classification", "schemas": {"s": SCHEMA},
                "spec": {"name": "x", "classes": [{"name": "a", "description": "A."}], "models": ["ollama:m"]}}
    parsed = RowBuilder(manifest).parse("s", reply.message.content)
    assert parsed.kind is None and parsed.unwrapped == "think"
