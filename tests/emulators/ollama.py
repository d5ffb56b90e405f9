"""Ollama emulator: ``/api/chat`` (JSON or NDJSON stream), ``/api/tags``, ``/api/show``, ``/api/ps``, ``/api/version``.

SDK: ``ollama.Client(host=emu.url)``. Errors are ``{"error": "..."}`` with the HTTP status (404 for an unknown
model). ``format`` may be ``"json"`` or a JSON Schema; the answer is JSON text in ``message.content``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from ._base import Emulator, HTTPError, Request, Response, json_response, rfc3339
from .answers import request_key, respond

DEFAULT_MODELS = ("gemma3:4b", "llama3.2:latest", "smollm2:135m")


def _canonical(name: str) -> str:
    return name if ":" in name else name + ":latest"


def _details(name: str) -> dict[str, Any]:
    family = name.split(":")[0].rstrip("0123456789.") or "llama"
    return {"parent_model": "", "format": "gguf", "family": family, "families": [family],
            "parameter_size": "4.3B", "quantization_level": "Q4_K_M"}


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

    def __init__(self, *, models: tuple[str, ...] | list[str] = DEFAULT_MODELS, **kwargs: Any) -> None:
        self.models = [_canonical(m) for m in models]
        super().__init__(**kwargs)

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
            "capabilities": ["completion"], "modified_at": rfc3339(1_735_689_600, nanos=True),
        })

    def chat(self, req: Request) -> Response:
        body = req.json_object()
        model = self._model(body.get("model"))
        messages = body.get("messages")
        if not isinstance(messages, list) or not all(isinstance(m, dict) and "role" in m for m in messages):
            raise HTTPError(400, "invalid message format: messages must be a list of {role, content}")
        options: dict[str, Any] = body["options"] if isinstance(body.get("options"), dict) else {}
        fmt = body.get("format")
        if fmt not in (None, "", "json") and not isinstance(fmt, dict):
            raise HTTPError(400, f"invalid format: {fmt!r}")
        rid, fault = self.online_call(req, body, model=model, error_status=500)
        ans = respond(rid, schema=fmt if isinstance(fmt, dict) else None, json_mode=fmt == "json",
                      prompt="\n".join(str(m.get("content") or "") for m in messages),
                      max_tokens=options.get("num_predict"), fault=fault)
        created = rfc3339(self.now(), nanos=True)
        final = {
            "model": model, "created_at": created, "message": {"role": "assistant", "content": ans.text},
            "done": True, "done_reason": "length" if ans.finish == "length" else "stop",
            "total_duration": 250_000_000 + ans.output_tokens * 20_000_000, "load_duration": 40_000_000,
            "prompt_eval_count": ans.input_tokens, "prompt_eval_duration": ans.input_tokens * 2_000_000,
            "eval_count": ans.output_tokens, "eval_duration": ans.output_tokens * 20_000_000,
        }
        if not body.get("stream", True):
            return json_response(final)
        return Response(200, headers={"Content-Type": "application/x-ndjson"}, stream=self._stream(final))

    @staticmethod
    def _stream(final: dict[str, Any]) -> Iterator[bytes]:
        text = final["message"]["content"]
        step = max(1, len(text) // 4)
        for start in range(0, len(text), step):
            part = {"model": final["model"], "created_at": final["created_at"],
                    "message": {"role": "assistant", "content": text[start : start + step]}, "done": False}
            yield json.dumps(part).encode() + b"\n"
        yield json.dumps({**final, "message": {"role": "assistant", "content": ""}}).encode() + b"\n"
