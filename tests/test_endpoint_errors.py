"""Errors of every runtime name the URL it used, the variable that URL came from, and the likely fix (issue 14).

Each runtime (OpenAI, Anthropic, Gemini batch and online, Ollama) is driven through its real SDK against a
closed port, an emulator answering 404 for the path it calls, and an emulator refusing the key (401). A refused
key is a runtime failure (exit 1), not bad input (exit 2): exit 2 means input found wrong before anything is
sent (`RuntimeConfigError`), while a 401 is the server's answer to a call, which may also come from a revoked
key or a wrong server; the run's state stays resumable as for any other runtime failure.
"""

from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

import datafast
from datafast.cli import main
from datafast.outdir import OutputDir
from datafast.runtimes import online_runtime_class
from datafast.runtimes.ollama import OllamaRuntime

pytest_plugins = ["tests.conftest_emulators"]

KEY = "sk-test-SECRET-0123456789"  # must never appear in a message
# runtime -> (model, key variable, base-URL variable, batch create route, online route, 404 hint)
VENDORS: dict[str, tuple[str, str, str, str, str, str]] = {
    "openai": ("gpt-4.1-mini", "OPENAI_API_KEY", "OPENAI_BASE_URL", "POST /v1/files", "POST /v1/chat/completions",
               "does OPENAI_BASE_URL end in /v1?"),
    "anthropic": ("claude-haiku-4-5", "ANTHROPIC_API_KEY", "ANTHROPIC_BASE_URL", "POST /v1/messages/batches",
                  "POST /v1/messages$", "without /v1"),
    "gemini": ("gemini-2.5-flash", "GEMINI_API_KEY", "GOOGLE_GEMINI_BASE_URL", ":batchGenerateContent",
               ":generateContent", "without /v1beta"),
}


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])  # closed when the block ends: connections are refused


def compile_for(tmp_path: Path, runtime: str) -> Path:
    spec = {"datafast": 1, "name": "errors", "type": "classification",
            "classes": [{"name": "pos", "description": "Happy."}], "languages": {"en": "English"},
            "models": [f"{runtime}:{VENDORS[runtime][0]}"]}
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(spec))
    datafast.compile(path, tmp_path / "out")
    return tmp_path / "out"


def env_for(runtime: str, url: str) -> dict[str, str]:
    _, key_var, url_var, *_ = VENDORS[runtime]
    return {key_var: KEY, url_var: url}


def submit(out: Path, env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Any:
    for var in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "ANTHROPIC_API_KEY", "ANTHROPIC_BASE_URL", "GEMINI_API_KEY",
                "GOOGLE_API_KEY", "GOOGLE_GEMINI_BASE_URL"):
        monkeypatch.delenv(var, raising=False)
    for var, value in env.items():
        monkeypatch.setenv(var, value)
    return CliRunner().invoke(main, ["submit", str(out)])


def online_error(out: Path, runtime: str, env: dict[str, str]) -> dict[str, Any]:
    """The error of the first request of `out`, sent online once (no retries)."""
    od = OutputDir.open(out)
    request = json.loads((out / "manifest.jsonl").read_text().splitlines()[0])
    rt = online_runtime_class(runtime)(env, schemas=od.manifest.schemas, max_retries=0)  # type: ignore[call-arg]
    got = rt.run_one(request)
    assert got["status"] == "error", got
    error: dict[str, Any] = got["error"]
    return error


def assert_says(message: str, *parts: str) -> None:
    for part in parts:
        assert part in message, f"{part!r} not in {message!r}"
    assert KEY not in message and "SECRET" not in message, message


def emulator(factory: Any, runtime: str) -> Any:
    return factory(runtime)


# -- batch runtimes, through the CLI: exit 1 and one `error: ` line naming URL, variable and fix -------------------
@pytest.mark.parametrize("runtime", list(VENDORS))
def test_batch_closed_port_names_url_variable_and_fix(runtime: str, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    url = f"http://127.0.0.1:{closed_port()}" + ("/v1" if runtime == "openai" else "")
    out = compile_for(tmp_path, runtime)
    got = submit(out, env_for(runtime, url), monkeypatch)
    assert got.exit_code == 1, got.output
    assert got.stderr.startswith("error: "), got.stderr
    assert_says(got.stderr, f"nothing listens at {url} (from {VENDORS[runtime][2]})",
                f"start the server or fix {VENDORS[runtime][2]}")


@pytest.mark.parametrize("runtime", list(VENDORS))
def test_batch_404_asks_whether_the_base_url_has_the_right_path(runtime: str, tmp_path: Path, emulator_factory: Any,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    emu = emulator(emulator_factory, runtime)
    emu.faults.http(VENDORS[runtime][3], status=404, times=None)
    out = compile_for(tmp_path, runtime)
    got = submit(out, env_for(runtime, emu.base_url), monkeypatch)
    assert got.exit_code == 1, got.output
    assert got.stderr.startswith("error: "), got.stderr
    assert_says(got.stderr, "HTTP 404", "base URL from " + VENDORS[runtime][2], VENDORS[runtime][5],
                f"{VENDORS[runtime][2]}={emu.base_url}")


@pytest.mark.parametrize("runtime", list(VENDORS))
def test_batch_refused_key_names_the_key_variable_and_url(runtime: str, tmp_path: Path, emulator_factory: Any,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    emu = emulator(emulator_factory, runtime)
    emu.faults.http(VENDORS[runtime][3], status=401, times=None)
    out = compile_for(tmp_path, runtime)
    got = submit(out, env_for(runtime, emu.base_url), monkeypatch)
    assert got.exit_code == 1, got.output  # a runtime failure, see the module docstring
    assert got.stderr.startswith("error: "), got.stderr
    assert_says(got.stderr, "HTTP 401", f"the key in {VENDORS[runtime][1]} was refused by {emu.base_url}",
                f"that {VENDORS[runtime][2]} points at the server the key is for")


# -- online variants: the same facts in each request's error ------------------------------------------------------
@pytest.mark.parametrize("runtime", list(VENDORS))
def test_online_closed_port(runtime: str, tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{closed_port()}" + ("/v1" if runtime == "openai" else "")
    error = online_error(compile_for(tmp_path, runtime), runtime, env_for(runtime, url))
    assert error["kind"] == "connection" and error["retryable"]
    assert_says(error["message"], f"nothing listens at {url} (from {VENDORS[runtime][2]})")


@pytest.mark.parametrize("runtime", list(VENDORS))
def test_online_404_and_401(runtime: str, tmp_path: Path, emulator_factory: Any) -> None:
    emu = emulator(emulator_factory, runtime)
    out, env = compile_for(tmp_path, runtime), env_for(runtime, emu.base_url)
    emu.faults.http(VENDORS[runtime][4], status=404, times=1)
    error = online_error(out, runtime, env)
    assert error["kind"] == "not_found"
    assert_says(error["message"], "HTTP 404", "base URL from " + VENDORS[runtime][2], VENDORS[runtime][5])
    emu.faults.http(VENDORS[runtime][4], status=401, times=1)
    error = online_error(out, runtime, env)
    assert error["kind"] == "auth" and not error["retryable"]
    assert_says(error["message"], "HTTP 401", f"the key in {VENDORS[runtime][1]} was refused by {emu.base_url}")


def test_openai_online_without_key_says_the_server_wants_one(tmp_path: Path, openai_emulator: Any) -> None:
    out = compile_for(tmp_path, "openai")
    openai_emulator.faults.http("POST /v1/chat/completions", status=401, times=1)
    error = online_error(out, "openai", {"OPENAI_BASE_URL": openai_emulator.base_url})
    assert_says(error["message"], f"no key is set and {openai_emulator.base_url} asks for one; set OPENAI_API_KEY")


def test_the_default_endpoint_is_named_when_no_variable_is_set() -> None:
    from datafast.runtimes.openai import OpenAIRuntime

    rt = OpenAIRuntime({"OPENAI_API_KEY": KEY})
    err = ConnectionError("refused")
    err.__cause__ = ConnectionRefusedError(111, f"Connection refused (key {KEY})")
    message = rt.explain(err)
    assert_says(message, "nothing listens at https://api.openai.com/v1 (the default endpoint)", "check the network")


# -- Ollama ------------------------------------------------------------------------------------------------------
def ollama_request() -> dict[str, Any]:
    return {"id": "r1", "model": "ollama:gemma3:4b", "schema": None, "params": {},
            "messages": [{"role": "user", "content": "Say hi."}]}


def test_ollama_closed_port_names_ollama_host_and_ollama_serve() -> None:
    host = f"http://127.0.0.1:{closed_port()}"
    rt = OllamaRuntime({"OLLAMA_HOST": host}, max_retries=0, timeout=5.0)
    with pytest.raises(datafast.runtimes.RuntimeFailure) as info:
        rt.check_models(["ollama:gemma3:4b"])
    assert_says(str(info.value), f"nothing listens at {host} (from OLLAMA_HOST)", "ollama serve")
    error = rt.run_one(ollama_request())["error"]
    assert error["kind"] == "connection"
    assert_says(error["message"], f"nothing listens at {host} (from OLLAMA_HOST)", "ollama serve")


def test_ollama_404_on_the_path_is_the_host_not_the_model(ollama_emulator: Any) -> None:
    ollama_emulator.faults.http("POST /api/chat", status=404, times=None)
    rt = OllamaRuntime({"OLLAMA_HOST": ollama_emulator.url}, max_retries=0, timeout=5.0)
    error = rt.run_one(ollama_request())["error"]
    assert error["kind"] == "not_found"
    assert_says(error["message"], "HTTP 404", "from OLLAMA_HOST", "without /api", f"OLLAMA_HOST={ollama_emulator.url}")
    assert "ollama pull" not in error["message"]


def test_ollama_401_names_the_url(ollama_emulator: Any) -> None:
    ollama_emulator.faults.http("GET /api/tags", status=401, times=None)
    rt = OllamaRuntime({"OLLAMA_HOST": ollama_emulator.url}, max_retries=0, timeout=5.0)
    with pytest.raises(datafast.runtimes.RuntimeFailure) as info:
        rt.check_models(["ollama:gemma3:4b"])
    assert_says(str(info.value), "HTTP 401", ollama_emulator.url, "from OLLAMA_HOST")


# -- TLS, DNS, timeouts ------------------------------------------------------------------------------------------
def test_https_to_a_plain_http_server_is_a_tls_error_saying_http(tmp_path: Path, openai_emulator: Any) -> None:
    url = openai_emulator.base_url.replace("http://", "https://")
    error = online_error(compile_for(tmp_path, "openai"), "openai", env_for("openai", url))
    assert error["kind"] == "connection"
    assert_says(error["message"], f"TLS with {url} (from OPENAI_BASE_URL) failed",
                "needs an http:// URL in OPENAI_BASE_URL")


def test_unknown_host_says_check_the_host_name() -> None:
    import socket as sock

    from datafast.runtimes.anthropic import AnthropicRuntime

    rt = AnthropicRuntime({"ANTHROPIC_API_KEY": KEY, "ANTHROPIC_BASE_URL": "http://no-such-host.invalid"})
    err = OSError("Connection error.")
    err.__cause__ = sock.gaierror(-2, "Name or service not known")
    assert_says(rt.explain(err), "cannot resolve the host of http://no-such-host.invalid (from ANTHROPIC_BASE_URL)",
                "check the host name in ANTHROPIC_BASE_URL")


def test_slow_server_is_a_timeout_naming_the_url(ollama_emulator: Any) -> None:
    ollama_emulator.faults.latency(1.0, "/api/chat")
    rt = OllamaRuntime({"OLLAMA_HOST": ollama_emulator.url}, max_retries=0, timeout=0.2)
    error = rt.run_one(ollama_request())["error"]
    assert error["kind"] == "timeout"
    assert_says(error["message"], f"no answer from {ollama_emulator.url} (from OLLAMA_HOST) in time")
