"""Ollama online runtime through the `ollama` SDK: one `/api/chat` per request, from a bounded thread pool.

Ollama has no batch API, so this runtime sends every manifest line itself (`PooledRuntime`: bounded worker
threads, retries with backoff). The workers share one `ollama.Client` (one httpx connection pool, connections
kept alive and reused). After Ctrl-C, Ollama stops a generation when its client goes away.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from .base import Call, PooledRuntime, RuntimeFailure, http_error_kind, model_name, result

if TYPE_CHECKING:
    import ollama

DEFAULT_HOST = "http://127.0.0.1:11434"
CONNECT_TIMEOUT = 10.0  # an unreachable host fails fast; reads may take `timeout` (slow generations)
OPTIONS = {"max_tokens": "num_predict", "temperature": "temperature", "top_p": "top_p", "seed": "seed"}


def canonical(name: str) -> str:
    """Ollama's own model naming: no tag means `:latest` (`llama3.2` == `llama3.2:latest`)."""
    return name if ":" in name.rpartition("/")[2] else f"{name}:latest"


class OllamaRuntime(PooledRuntime):
    name = "ollama"
    base_url_env, default_base_url = "OLLAMA_HOST", DEFAULT_HOST
    not_found_hint = "OLLAMA_HOST is the server's root (e.g. http://gpu-box:11434), without /api"
    unreachable_fix = ("start it with `ollama serve`, or set OLLAMA_HOST to where it listens, "
                       "e.g. OLLAMA_HOST=http://gpu-box:11434")

    def __init__(self, env: Mapping[str, str] | None = None, *, schemas: Mapping[str, Any] | None = None,
                 timeout: float = 600.0, max_retries: int = 4, backoff: float = 0.5):
        super().__init__(env, max_retries=max_retries, backoff=backoff)
        import httpx  # the SDK (and its httpx) are imported only when this runtime is used
        import ollama

        self._ollama, self._httpx = ollama, httpx
        self.host = self.env.get("OLLAMA_HOST") or DEFAULT_HOST
        self.schemas = dict(schemas or {})
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
            raise RuntimeFailure(self.name, f"Ollama is not reachable: {self.explain(exc)}") from None
        except self._ollama.ResponseError as exc:
            raise RuntimeFailure(self.name, f"listing models failed: {self.explain(exc, detail=exc.error)}") from None
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
    def prepare(self, request: Mapping[str, Any]) -> Call | dict[str, Any]:
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
        return lambda: self._normalize(rid, model, self.client.chat(**kwargs), options.get("num_predict"))

    def classify(self, exc: Exception, request: Mapping[str, Any]) -> tuple[str, str, float | None]:
        """(error kind, message, None) of a failed chat call; re-raises what is not a vendor or transport error."""
        name = model_name(str(request["model"]))
        if isinstance(exc, self._ollama.ResponseError):
            kind = http_error_kind(exc.status_code)
            if kind == "not_found" and "model" in str(exc.error).lower():  # not pulled, not a wrong path
                return kind, f"HTTP {exc.status_code}: {exc.error}; run `ollama pull {name}`", None
            return kind, self.explain(exc, detail=exc.error), None
        if isinstance(exc, self._httpx.TimeoutException):
            return ("connection" if isinstance(exc, self._httpx.ConnectTimeout) else "timeout"), self.explain(exc), None
        if isinstance(exc, (ConnectionError, self._httpx.TransportError)):
            return "connection", self.explain(exc), None
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
