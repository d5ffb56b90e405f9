"""Gemini online: one generateContent per request through the `google-genai` SDK's API client.

The request is the batch line's `request` (REST camelCase), POSTed as it is to `models/{model}:generateContent`
with the SDK's auth and base URL; the raw REST answer is normalized by the batch adapter, as an output-file
line. (The typed `models.generate_content` would rebuild the body from its own config model, and its typed
response drops fields the batch path reads.)
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from .base import VendorOnlineRuntime, model_name
from .gemini import GeminiRuntime, _error_kind, _retry_delay, _status_detail


class GeminiOnlineRuntime(VendorOnlineRuntime):
    name = "gemini"
    key_env = ("GEMINI_API_KEY", "GOOGLE_API_KEY")
    batch_class = GeminiRuntime
    base_url_env, default_base_url = GeminiRuntime.base_url_env, GeminiRuntime.default_base_url
    not_found_hint = GeminiRuntime.not_found_hint

    def __init__(self, env: Mapping[str, str] | None = None, **options: Any):
        super().__init__(env, **options)
        import httpx
        from google import genai
        from google.genai import errors

        self._api_error: type[Exception] = errors.APIError
        self._timeouts: tuple[type[Exception], ...] = (httpx.TimeoutException,)
        self._transport: tuple[type[Exception], ...] = (httpx.HTTPError,)
        try:  # newer SDKs may send through httpx2
            import httpx2

            self._timeouts += (httpx2.TimeoutException,)
            self._transport += (httpx2.HTTPError,)
        except ImportError:  # pragma: no cover - depends on the installed SDK
            pass
        self.adapter = GeminiRuntime(self.env)  # its result normalization
        # no retry_options: the SDK retries nothing, PooledRuntime does
        http_options: Any = {"api_version": "v1beta"}
        if self.env.get("GOOGLE_GEMINI_BASE_URL"):
            http_options["base_url"] = self.env["GOOGLE_GEMINI_BASE_URL"]
        # kept: the client closes its HTTP connections when garbage-collected
        self.client = genai.Client(api_key=self.key(), vertexai=False, http_options=http_options)
        self._api = self.client._api_client

    def send(self, line: dict[str, Any], model: str) -> dict[str, Any]:
        response = self._api.request("post", f"models/{model_name(model)}:generateContent", dict(line["request"]))
        return self.adapter._normalize({"key": line["key"], "response": json.loads(response.body or "{}")}, model)

    def classify(self, exc: Exception, request: Mapping[str, Any]) -> tuple[str, str, float | None]:
        if isinstance(exc, self._api_error):
            code, status = getattr(exc, "code", None), getattr(exc, "status", None)
            kind = _error_kind({"code": code, "status": status})
            return kind, self.explain(exc, *_status_detail(exc)), _retry_delay(exc)
        if isinstance(exc, self._timeouts):
            return "timeout", self.explain(exc), None
        if isinstance(exc, self._transport):
            return "connection", self.explain(exc), None
        raise exc


__all__ = ["GeminiOnlineRuntime"]
