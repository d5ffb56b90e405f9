"""Anthropic online: one Messages call per request (`POST /v1/messages`) through the `anthropic` SDK.

The params are the batch line's params, posted as they are; the answer is normalized by the batch adapter, as a `succeeded` batch
result, and an error is classified by its type as a batch `errored` result is.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .anthropic import ERROR_KINDS, AnthropicRuntime
from .base import CAPACITY_STATUSES, VendorOnlineRuntime, http_error_kind, retry_after_seconds

# the SDK refuses a non-streaming call whose max_tokens could take over 10 minutes unless a timeout is set
TIMEOUT = 3600.0


class AnthropicOnlineRuntime(VendorOnlineRuntime):
    name = "anthropic"
    key_env = ("ANTHROPIC_API_KEY",)
    batch_class = AnthropicRuntime
    base_url_env, default_base_url = AnthropicRuntime.base_url_env, AnthropicRuntime.default_base_url
    not_found_hint = AnthropicRuntime.not_found_hint

    def __init__(self, env: Mapping[str, str] | None = None, **options: Any):
        super().__init__(env, **options)
        import anthropic

        self._anthropic = anthropic
        self._message: type[Any] = anthropic.types.Message
        self.adapter = AnthropicRuntime(self.env)  # its client (base URL, key) and its result normalization
        self.client = self.adapter.client.with_options(max_retries=0, timeout=TIMEOUT)  # PooledRuntime retries

    def send(self, line: dict[str, Any], model: str) -> dict[str, Any]:
        # posted as it is (not through `messages.create`, whose typed keywords lag the API: this SDK has no
        # `temperature`), so the body is the batch line's params exactly
        message = self.client.post("/v1/messages", body=line["params"], cast_to=self._message)
        outcome = {"type": "succeeded", "message": message.model_dump(mode="json")}
        return self.adapter._normalize({"custom_id": line["custom_id"], "result": outcome}, model)

    def classify(self, exc: Exception, request: Mapping[str, Any]) -> tuple[str, str, float | None]:
        if isinstance(exc, self._anthropic.APIStatusError):
            status = exc.status_code
            body = exc.body if isinstance(exc.body, dict) else {}
            etype = str((body.get("error") or {}).get("type") or "")
            kind = ERROR_KINDS.get(etype) or http_error_kind(status)
            wait = retry_after_seconds(exc.response.headers) if status in CAPACITY_STATUSES or status >= 500 else None
            return kind, self.explain(exc, status, f"{etype + ': ' if etype else ''}{(body.get('error') or {}).get('message') or exc.message}"), wait
        if isinstance(exc, self._anthropic.APITimeoutError):
            return "timeout", self.explain(exc), None
        if isinstance(exc, self._anthropic.APIConnectionError):
            return "connection", self.explain(exc), None
        raise exc


__all__ = ["AnthropicOnlineRuntime"]
