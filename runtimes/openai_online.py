"""OpenAI online: one chat completion per request (`POST /v1/chat/completions`) through the `openai` SDK.

The body is the batch line's body; the answer is normalized by the batch adapter, as if it were a line of a
batch output file. Only chat completions are called (no files, no batches), so `OPENAI_BASE_URL` may point at
any OpenAI-compatible server (vLLM, llama.cpp's llama-server): with a base URL set and no `OPENAI_API_KEY`, a
placeholder key is sent, as those servers ask for none.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from .base import CAPACITY_STATUSES, VendorOnlineRuntime, http_error_kind, retry_after_seconds
from .openai import BILLING_CODES, OpenAIRuntime

NO_KEY = "no-key"  # sent to an OpenAI-compatible server at OPENAI_BASE_URL when no key is set


class OpenAIOnlineRuntime(VendorOnlineRuntime):
    name = "openai"
    key_env = ("OPENAI_API_KEY",)
    placeholder_key = NO_KEY
    batch_class = OpenAIRuntime
    base_url_env, default_base_url = OpenAIRuntime.base_url_env, OpenAIRuntime.default_base_url
    not_found_hint = OpenAIRuntime.not_found_hint

    def __init__(self, env: Mapping[str, str] | None = None, **options: Any):
        env = dict(os.environ if env is None else env)
        if env.get("OPENAI_BASE_URL") and not env.get("OPENAI_API_KEY"):
            env["OPENAI_API_KEY"] = NO_KEY
        super().__init__(env, **options)
        self.adapter = OpenAIRuntime(self.env)  # its client (base URL, key) and its result normalization
        self._openai = self.adapter._openai
        self._completion: type[Any] = self._openai.types.chat.ChatCompletion
        self.client = self.adapter.client.with_options(max_retries=0)  # retried by PooledRuntime

    def send(self, line: dict[str, Any], model: str) -> dict[str, Any]:
        # posted as it is (not through `chat.completions.create`, whose typed keywords may lag the API), so the
        # body is the batch line's body exactly
        completion = self.client.post("/chat/completions", body=line["body"], cast_to=self._completion)
        response = {"status_code": 200, "body": completion.model_dump(mode="json")}
        return self.adapter._normalize({"custom_id": line["custom_id"], "response": response}, model)

    def classify(self, exc: Exception, request: Mapping[str, Any]) -> tuple[str, str, float | None]:
        if isinstance(exc, self._openai.APIStatusError):
            status = exc.status_code
            # an exhausted credit balance comes as a 429 too, and does not clear by waiting
            kind = "auth" if exc.code in BILLING_CODES else http_error_kind(status)
            wait = retry_after_seconds(exc.response.headers) if status in CAPACITY_STATUSES or status >= 500 else None
            return kind, self.explain(exc, status), wait
        if isinstance(exc, self._openai.APITimeoutError):
            return "timeout", self.explain(exc), None
        if isinstance(exc, self._openai.APIConnectionError):
            return "connection", self.explain(exc), None
        raise exc


__all__ = ["OpenAIOnlineRuntime"]
