"""Ollama online runtime through the `ollama` SDK: one `/api/chat` per request, from a bounded thread pool.

Ollama has no batch API, so this runtime sends every manifest line itself: `concurrency` worker threads share
one `ollama.Client` (one httpx connection pool, connections kept alive and reused), the calling thread feeds
them lazily (at most 2 x concurrency requests taken from the iterable and not yet reported) and calls
`on_result` itself, in completion order. `on_result` therefore needs no locking: it never runs on a worker.

Workers are daemon threads rather than a `ThreadPoolExecutor`, whose workers are joined at interpreter exit:
after Ctrl-C nothing new is sent, queued requests are dropped, retry waits end at once, and the process can
exit without waiting for the generations in flight (Ollama stops a generation when its client goes away).
Those requests have no result yet, so a later run sends them again.
"""

from __future__ import annotations

import queue
import random
import threading
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any, TypeAlias

from .base import TRANSIENT_KINDS, OnlineRuntime, RuntimeFailure, http_error_kind, model_name, result

if TYPE_CHECKING:
    import ollama

DEFAULT_HOST = "http://127.0.0.1:11434"
CONNECT_TIMEOUT = 10.0  # an unreachable host fails fast; reads may take `timeout` (slow generations)
MAX_DELAY = 30.0  # cap of one backoff wait, seconds
OPTIONS = {"max_tokens": "num_predict", "temperature": "temperature", "top_p": "top_p", "seed": "seed"}

Outcome: TypeAlias = dict[str, Any] | BaseException  # a worker's normalized result, or the bug it hit


def canonical(name: str) -> str:
    """Ollama's own model naming: no tag means `:latest` (`llama3.2` == `llama3.2:latest`)."""
    return name if ":" in name.rpartition("/")[2] else f"{name}:latest"


class OllamaRuntime(OnlineRuntime):
    name = "ollama"

    def __init__(self, env: Mapping[str, str] | None = None, *, schemas: Mapping[str, Any] | None = None,
                 timeout: float = 600.0, max_retries: int = 4, backoff: float = 0.5):
        super().__init__(env)
        import httpx  # the SDK (and its httpx) are imported only when this runtime is used
        import ollama

        self._ollama, self._httpx = ollama, httpx
        self.host = self.env.get("OLLAMA_HOST") or DEFAULT_HOST
        self.schemas = dict(schemas or {})
        self.max_retries, self.backoff = max(0, max_retries), backoff
        self._random = random.Random()  # jitter only; never the global generator
        self._thinking: set[str] = set()  # models (canonical names) sent `think: false`; see _note_thinking
        # one client for every worker thread (httpx.Client is thread-safe); no cap on connections (the
        # workers are the cap) and enough keep-alive slots that no worker reconnects (httpx keeps 20)
        self.client = ollama.Client(
            host=self.host, timeout=httpx.Timeout(timeout, connect=min(timeout, CONNECT_TIMEOUT)),
            limits=httpx.Limits(max_connections=None, max_keepalive_connections=1024))

    # -- before running ------------------------------------------------------------------------------------
    def check_models(self, models: Iterable[str]) -> None:
        """Fail before sending anything when Ollama is not reachable or a model is not pulled (GET /api/tags)."""
        try:
            listed = self.client.list()
        except (ConnectionError, self._httpx.TransportError) as exc:
            raise RuntimeFailure(self.name, f"Ollama is not reachable at {self.host} ({type(exc).__name__}); "
                                 "start it with `ollama serve`, or set OLLAMA_HOST to where it listens, "
                                 "e.g. OLLAMA_HOST=http://gpu-box:11434") from None
        except self._ollama.ResponseError as exc:
            raise RuntimeFailure(self.name, f"listing models at {self.host} failed: {exc}") from None
        have = {canonical(m.model) for m in listed.models if m.model}
        missing = sorted({name for name in map(model_name, models) if canonical(name) not in have})
        if missing:
            pulls = "; ".join(f"ollama pull {m}" for m in missing)
            plural = "s" if len(missing) > 1 else ""
            raise RuntimeFailure(self.name, f"model{plural} not available at {self.host}: {', '.join(missing)}; "
                                 f"run `{pulls}`")
        for name in {model_name(m) for m in models}:
            self._note_thinking(name)

    def _note_thinking(self, name: str) -> None:
        """Whether a model thinks (capability "thinking" in /api/show): those get `think: false`, so they answer
        with the JSON alone instead of a <think> block first (tokens paid for nothing, and a wrapper around
        the answer). A server too old to say is asked nothing more."""
        try:
            capabilities = self.client.show(name).capabilities or []
        except (self._ollama.ResponseError, self._httpx.HTTPError):
            return
        if "thinking" in capabilities:
            self._thinking.add(canonical(name))

    # -- running -------------------------------------------------------------------------------------------
    def run(self, requests: Iterable[Mapping[str, Any]], concurrency: int,
            on_result: Callable[[dict[str, Any]], None]) -> None:
        """Run every request, `concurrency` at a time; `on_result` is called on the calling thread only."""
        workers = max(1, int(concurrency))
        todo: queue.SimpleQueue[Mapping[str, Any] | None] = queue.SimpleQueue()
        done: queue.SimpleQueue[Outcome] = queue.SimpleQueue()  # results in completion order
        stop = threading.Event()
        threads = [threading.Thread(target=self._work, args=(todo, done, stop), name=f"datafast-ollama-{i}",
                                    daemon=True) for i in range(workers)]
        for thread in threads:
            thread.start()
        pending = 0  # taken from `requests`, not reported yet
        try:
            for request in requests:
                todo.put(request)
                pending += 1
                while pending >= 2 * workers:  # bounded look-ahead: never materialise the iterable
                    self._report(done.get(), on_result)
                    pending -= 1
            for _ in range(pending):
                self._report(done.get(), on_result)
        finally:  # normal end, KeyboardInterrupt or an exception from `requests`/`on_result`
            stop.set()
            for _ in threads:
                todo.put(None)

    @staticmethod
    def _report(outcome: Outcome, on_result: Callable[[dict[str, Any]], None]) -> None:
        if isinstance(outcome, BaseException):
            raise outcome  # a bug in a worker surfaces here, on the calling thread
        on_result(outcome)

    def _work(self, todo: queue.SimpleQueue[Mapping[str, Any] | None], done: queue.SimpleQueue[Outcome],
              stop: threading.Event) -> None:
        while (request := todo.get()) is not None:
            if stop.is_set():
                continue  # interrupted: drop what is queued
            try:
                done.put(self.run_one(request, stop))
            except BaseException as exc:  # handed to the calling thread
                done.put(exc)

    def run_one(self, request: Mapping[str, Any], stop: threading.Event | None = None) -> dict[str, Any]:
        """One manifest line -> its normalized result, retrying transient failures with backoff and jitter."""
        rid, model = str(request["id"]), str(request["model"])
        key = request.get("schema")
        schema = key if isinstance(key, dict) or key is None else self.schemas.get(key)
        if schema is None and key is not None:
            return result(rid, self.name, model, error_kind="invalid_request",
                          error_message=f"schema {key!r} is not in the manifest's schemas table")
        params = request.get("params") or {}
        options = {opt: params[param] for param, opt in OPTIONS.items() if params.get(param) is not None}
        kwargs = {"model": model_name(model), "messages": request["messages"], "format": schema,
                  "options": options, "stream": False}
        if canonical(model_name(model)) in self._thinking:
            kwargs["think"] = False
        stop = stop or threading.Event()
        attempt = 0
        while True:
            try:
                return self._normalize(rid, model, self.client.chat(**kwargs), options.get("num_predict"))
            except Exception as exc:  # classified below; anything else is re-raised
                kind, message = self._classify(exc, kwargs["model"])
            if kind not in TRANSIENT_KINDS or attempt >= self.max_retries or stop.is_set():
                if attempt and kind in TRANSIENT_KINDS:
                    message += f" (after {attempt + 1} attempts)"
                return result(rid, self.name, model, error_kind=kind, error_message=message)
            delay = min(MAX_DELAY, self.backoff * 2**attempt) * (0.5 + self._random.random() / 2)
            attempt += 1
            if stop.wait(delay):  # Ctrl-C: stop waiting, this result will not be reported anyway
                return result(rid, self.name, model, error_kind=kind, error_message=message + " (interrupted)")

    def _classify(self, exc: Exception, name: str) -> tuple[str, str]:
        """(error kind, message) of a failed chat call; re-raises what is not a vendor or transport error."""
        if isinstance(exc, self._ollama.ResponseError):
            kind = http_error_kind(exc.status_code)
            hint = f"; run `ollama pull {name}`" if kind == "not_found" else ""
            return kind, f"HTTP {exc.status_code}: {exc.error}{hint}"
        if isinstance(exc, self._httpx.TimeoutException):
            return ("connection" if isinstance(exc, self._httpx.ConnectTimeout) else "timeout"), \
                f"{type(exc).__name__} talking to Ollama at {self.host}: {exc}"
        if isinstance(exc, (ConnectionError, self._httpx.TransportError)):
            return "connection", f"Ollama at {self.host}: {type(exc).__name__}: {exc}"
        raise exc

    def _normalize(self, rid: str, model: str, response: ollama.ChatResponse, limit: Any) -> dict[str, Any]:
        truncated = response.done_reason == "length"
        # Ollama leaves out any count that is 0 (api.Metrics is all omitempty), and prompt_eval_count when the whole
        # prompt came from its KV cache (ollama#2068, #3427). A missing count is taken as 0, not estimated: usage
        # stays what Ollama measured (the tokens it evaluated), and a local runtime is not billed per token.
        return result(rid, self.name, model, text=response.message.content,
                      finish_reason=response.done_reason, input_tokens=response.prompt_eval_count or 0,
                      output_tokens=response.eval_count or 0,
                      error_kind="truncated" if truncated else None,
                      error_message=f"answer cut at num_predict={limit}" if truncated else "")


__all__ = ["OllamaRuntime", "canonical"]
