"""Ollama emulator: ``/api/chat`` (JSON or NDJSON stream), ``/api/tags``, ``/api/show``, ``/api/ps``, ``/api/version``.

SDK: ``ollama.Client(host=emu.url)``. Errors are ``{"error": "..."}`` with the HTTP status (404 for an unknown
model). ``format`` may be ``"json"`` or a JSON Schema; the answer is JSON text in ``message.content``.

Scheduling, as the real server does it: each model serves at most ``num_parallel`` chats at once (the runner's
semaphore, ``OLLAMA_NUM_PARALLEL``, default 1 since Ollama 0.9.6 / ollama#11330; earlier releases chose 4 or 1
from free memory); later chats wait in FIFO order, at most ``max_queue`` of them in all (``OLLAMA_MAX_QUEUE``,
default 512); beyond that a chat is refused with 503 ``server busy, please try again.  maximum pending requests
exceeded`` (server/sched.go ``ErrMaxQueue``, routes.go ``handleScheduleError``; docs/faq "How does Ollama handle
concurrent requests?"). Unset options are read from those environment variables, like the server. A ``latency``
fault on ``/api/chat`` is spent while the chat holds its slot (it stands for generation time), so queueing is
observable; ``stats()["scheduler"]`` reports peaks and refusals. Simplification: the real server bounds only
requests waiting for the scheduler (e.g. while a model loads); those waiting on a loaded runner's semaphore are
not counted against ``OLLAMA_MAX_QUEUE``. The emulator bounds every waiting chat, which is what the FAQ states.

Token counts follow the Go ``api.Metrics`` struct, whose fields are all ``omitempty``: a zero count is left out.
With ``prompt_cache=True`` a chat whose model and messages equal an earlier one is served from the KV cache and
its ``prompt_eval_count`` / ``prompt_eval_duration`` are left out, as Ollama releases before ollama#5371 did and
as users still report (ollama#2068, ollama#3427).
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections import Counter, defaultdict, deque
from collections.abc import Iterator
from typing import Any

from ._base import MAX_LATENCY, Emulator, HTTPError, Request, Response, json_response, rfc3339
from .answers import request_key, respond
from .faults import Fault, FaultPlan

DEFAULT_MODELS = ("gemma3:4b", "llama3.2:latest", "smollm2:135m", "qwen3:4b")
# models with the "thinking" capability (/api/show), as qwen3 and deepseek-r1 have: without `think` in the
# request their answer starts with a <think>...</think> block in message.content (Ollama >= 0.9 keeps that for
# requests that do not ask); `think: false` turns it off, `think: true` moves it to message.thinking; `think:
# true` to a model without the capability is a 400 '"<model>" does not support thinking'
THINKING_FAMILIES = ("qwen3", "deepseek-r1")
THOUGHT = "Okay, the user wants JSON. Let me think about what fits the schema."
DEFAULT_NUM_PARALLEL = 1  # envconfig.NumParallel
DEFAULT_MAX_QUEUE = 512  # envconfig.MaxQueue
BUSY = "server busy, please try again.  maximum pending requests exceeded"  # sched.go ErrMaxQueue, verbatim
METRICS = ("total_duration", "load_duration", "prompt_eval_count", "prompt_eval_duration", "eval_count",
           "eval_duration")  # api.Metrics: every field omitempty


def _canonical(name: str) -> str:
    return name if ":" in name else name + ":latest"


def _thinks(name: str) -> bool:
    return name.split(":")[0] in THINKING_FAMILIES


def _details(name: str) -> dict[str, Any]:
    family = name.split(":")[0].rstrip("0123456789.") or "llama"
    return {"parent_model": "", "format": "gguf", "family": family, "families": [family],
            "parameter_size": "4.3B", "quantization_level": "Q4_K_M"}


def _env_int(name: str, default: int) -> int:
    try:
        return int(os.environ.get(name) or default)
    except ValueError:
        return default


class _Faults(FaultPlan):
    """A FaultPlan whose ``latency`` faults on ``/api/chat`` are handed to the chat handler (spent inside the
    model's slot) instead of being slept before it; per thread, as each HTTP request runs on its own thread."""

    def __init__(self) -> None:
        super().__init__()
        self._deferred = threading.local()

    def for_call(self, method: str, path: str) -> list[Fault]:
        fired = super().for_call(method, path)
        if path != "/api/chat":
            return fired
        self._deferred.seconds = sum(max(f.seconds, 0.0) for f in fired if f.kind == "latency")
        return [f for f in fired if f.kind != "latency"]

    def take_latency(self) -> float:
        seconds, self._deferred.seconds = getattr(self._deferred, "seconds", 0.0), 0.0
        return float(seconds)


class _Scheduler:
    """``num_parallel`` running chats per model, the others waiting FIFO; at most ``max_queue`` waiting in all."""

    def __init__(self, num_parallel: int, max_queue: int) -> None:
        self.num_parallel, self.max_queue = max(1, num_parallel), max(0, max_queue)
        self._cond = threading.Condition()
        self._running: Counter[str] = Counter()
        self._waiting: defaultdict[str, deque[object]] = defaultdict(deque)
        self._queued = 0
        self.peak_running: Counter[str] = Counter()
        self.peak_queued = 0
        self.rejected = 0

    def enter(self, model: str) -> None:
        """Take a slot of ``model``, waiting in line for it; HTTPError 503 when the queue is full."""
        with self._cond:
            line = self._waiting[model]
            if self._running[model] >= self.num_parallel or line:
                if self._queued >= self.max_queue:
                    self.rejected += 1
                    raise HTTPError(503, BUSY)
                ticket = object()
                line.append(ticket)
                self._queued += 1
                self.peak_queued = max(self.peak_queued, self._queued)
                while line[0] is not ticket or self._running[model] >= self.num_parallel:
                    self._cond.wait()
                line.popleft()
                self._queued -= 1
                self._cond.notify_all()  # the next in line may fit too
            self._running[model] += 1
            self.peak_running[model] = max(self.peak_running[model], self._running[model])

    def leave(self, model: str) -> None:
        with self._cond:
            self._running[model] -= 1
            self._cond.notify_all()

    def snapshot(self) -> dict[str, Any]:
        with self._cond:
            return {"num_parallel": self.num_parallel, "max_queue": self.max_queue,
                    "running": {m: n for m, n in self._running.items() if n}, "queued": self._queued,
                    "peak_running": dict(self.peak_running), "peak_queued": self.peak_queued,
                    "rejected": self.rejected}


class _Holding:
    """A streamed answer that keeps its model's slot until it has been sent, or dropped unsent."""

    def __init__(self, stream: Iterator[bytes], scheduler: _Scheduler, slot: str) -> None:
        self._stream, self._scheduler, self._slot, self._held = stream, scheduler, slot, True

    def __iter__(self) -> Iterator[bytes]:
        try:
            yield from self._stream
        finally:
            self.release()

    def release(self) -> None:
        held, self._held = self._held, False
        if held:
            self._scheduler.leave(self._slot)

    def __del__(self) -> None:
        self.release()


class OllamaEmulator(Emulator):
    vendor = "ollama"
    api_prefix = ""
    ROUTES = [
        ("POST", "/api/chat", "chat"),
        ("GET", "/api/tags", "tags"),
        ("POST", "/api/show", "show"),
        ("GET", "/api/ps", "ps"),
        ("GET", "/api/version", "version"),
        ("GET", "/", "root"),
    ]

    def __init__(self, *, models: tuple[str, ...] | list[str] = DEFAULT_MODELS, num_parallel: int | None = None,
                 max_queue: int | None = None, prompt_cache: bool = False, **kwargs: Any) -> None:
        self.models = [_canonical(m) for m in models]
        self.num_parallel = _env_int("OLLAMA_NUM_PARALLEL", DEFAULT_NUM_PARALLEL) if num_parallel is None \
            else num_parallel
        self.max_queue = _env_int("OLLAMA_MAX_QUEUE", DEFAULT_MAX_QUEUE) if max_queue is None else max_queue
        self.prompt_cache = prompt_cache  # repeated prompts come back without prompt_eval_count
        if kwargs.get("faults") is None:
            kwargs["faults"] = _Faults()
        super().__init__(**kwargs)

    def reset_state(self) -> None:
        super().reset_state()
        self.scheduler = _Scheduler(self.num_parallel, self.max_queue)  # chats in flight keep the old one
        self.cached_prompts: set[str] = set()

    def stats(self) -> dict[str, Any]:
        return {**super().stats(), "scheduler": self.scheduler.snapshot()}

    def error_response(self, err: HTTPError) -> Response:
        return json_response({"error": err.message}, err.status, err.headers)

    def _model(self, name: Any) -> str:
        if not isinstance(name, str) or not name:
            raise HTTPError(400, "model is required")
        if _canonical(name) not in self.models:
            raise HTTPError(404, f'model "{name}" not found, try pulling it first')
        return name

    def root(self, req: Request) -> Response:
        return Response(200, b"Ollama is running", {"Content-Type": "text/plain; charset=utf-8"})

    def version(self, req: Request) -> Response:
        return json_response({"version": "0.12.6"})

    def _entry(self, name: str) -> dict[str, Any]:
        digest = request_key(name)[4:] * 3
        return {"name": name, "model": name, "modified_at": rfc3339(1_735_689_600, nanos=True),
                "size": 3_338_801_804, "digest": digest[:64], "details": _details(name)}

    def tags(self, req: Request) -> Response:
        return json_response({"models": [self._entry(m) for m in self.models]})

    def ps(self, req: Request) -> Response:
        return json_response({"models": [{**self._entry(m), "expires_at": rfc3339(self.now() + 300, nanos=True),
                                          "size_vram": 0, "context_length": 4096} for m in self.models[:1]]})

    def show(self, req: Request) -> Response:
        body = req.json_object()
        name = _canonical(self._model(body.get("model") or body.get("name")))
        family = _details(name)["family"]
        return json_response({
            "license": "", "modelfile": f"FROM {name}\n", "parameters": "temperature 1\ntop_k 64",
            "template": "{{ .Prompt }}", "details": _details(name),
            "model_info": {"general.architecture": family, "general.parameter_count": 4_300_000_000,
                           f"{family}.context_length": 131072, f"{family}.embedding_length": 2560},
            "capabilities": ["completion", "thinking"] if _thinks(name) else ["completion"],
            "modified_at": rfc3339(1_735_689_600, nanos=True),
        })

    def chat(self, req: Request) -> Response:
        body = req.json_object()
        model = self._model(body.get("model"))
        messages = body.get("messages")
        if not isinstance(messages, list) or not all(isinstance(m, dict) and "role" in m for m in messages):
            raise HTTPError(400, "invalid message format: messages must be a list of {role, content}")
        options: dict[str, Any] = body["options"] if isinstance(body.get("options"), dict) else {}
        think = body.get("think")
        if think is True and not _thinks(_canonical(model)):
            raise HTTPError(400, f'"{model}" does not support thinking')
        fmt = body.get("format")
        if fmt not in (None, "", "json") and not isinstance(fmt, dict):
            raise HTTPError(400, f"invalid format: {fmt!r}")
        latency = self.faults.take_latency() if isinstance(self.faults, _Faults) else 0.0
        scheduler, slot = self.scheduler, _canonical(model)
        scheduler.enter(slot)  # validated first: a bad request is answered at once, never queued
        try:
            if latency:
                time.sleep(min(latency, MAX_LATENCY))  # generation time, holding the slot
            rid, fault = self.online_call(req, body, model=model, error_status=500)
            ans = respond(rid, schema=fmt if isinstance(fmt, dict) else None, json_mode=fmt == "json",
                          prompt="\n".join(str(m.get("content") or "") for m in messages),
                          max_tokens=options.get("num_predict"), fault=fault)
            cached = False
            if self.prompt_cache:
                key = request_key({"model": slot, "messages": messages})
                with self.lock:
                    cached = key in self.cached_prompts
                    self.cached_prompts.add(key)
            created = rfc3339(self.now(), nanos=True)
            message: dict[str, Any] = {"role": "assistant", "content": ans.text}
            if _thinks(_canonical(model)) and think is None:
                message["content"] = f"<think>\n{THOUGHT}\n</think>\n\n{ans.text}"
            elif _thinks(_canonical(model)) and think is True:
                message["thinking"] = THOUGHT
            final = {
                "model": model, "created_at": created, "message": message,
                "done": True, "done_reason": "length" if ans.finish == "length" else "stop",
                "total_duration": 250_000_000 + ans.output_tokens * 20_000_000, "load_duration": 40_000_000,
                "prompt_eval_count": 0 if cached else ans.input_tokens,
                "prompt_eval_duration": 0 if cached else ans.input_tokens * 2_000_000,
                "eval_count": ans.output_tokens, "eval_duration": ans.output_tokens * 20_000_000,
            }
            final = {k: v for k, v in final.items() if k not in METRICS or v}  # omitempty, as in api.Metrics
        except BaseException:
            scheduler.leave(slot)
            raise
        if not body.get("stream", True):
            scheduler.leave(slot)
            return json_response(final)
        return Response(200, headers={"Content-Type": "application/x-ndjson"},
                        stream=_Holding(self._stream(final), scheduler, slot))

    @staticmethod
    def _stream(final: dict[str, Any]) -> Iterator[bytes]:
        text = final["message"]["content"]
        step = max(1, len(text) // 4)
        for start in range(0, len(text), step):
            part = {"model": final["model"], "created_at": final["created_at"],
                    "message": {"role": "assistant", "content": text[start : start + step]}, "done": False}
            yield json.dumps(part).encode() + b"\n"
        yield json.dumps({**final, "message": {"role": "assistant", "content": ""}}).encode() + b"\n"
