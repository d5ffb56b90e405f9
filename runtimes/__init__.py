"""datafast.runtimes: model I/O. One adapter module per runtime, imported only when used.

Adding a runtime = its module, its tests, one line in RUNTIMES; the online variant of a batch runtime (the
same vendor called one request at a time, `--online` or the spec's `online` key) = its module, one line in
RUNTIMES_ONLINE.
"""

from __future__ import annotations

import difflib
import importlib
from collections.abc import Mapping
from typing import Any

from .base import BatchRuntime, OnlineRuntime, Runtime, RuntimeConfigError, RuntimeFailure

RUNTIMES: dict[str, str] = {
    "openai": "datafast.runtimes.openai:OpenAIRuntime",
    "anthropic": "datafast.runtimes.anthropic:AnthropicRuntime",
    "gemini": "datafast.runtimes.gemini:GeminiRuntime",
    "ollama": "datafast.runtimes.ollama:OllamaRuntime",
    "local": "datafast.runtimes.local:LocalRuntime",
}
# batch runtime name -> its online variant (an OnlineRuntime of the same name)
RUNTIMES_ONLINE: dict[str, str] = {
    "openai": "datafast.runtimes.openai_online:OpenAIOnlineRuntime",
    "anthropic": "datafast.runtimes.anthropic_online:AnthropicOnlineRuntime",
    "gemini": "datafast.runtimes.gemini_online:GeminiOnlineRuntime",
}


def runtime_class(name: str) -> type[Runtime]:
    if name not in RUNTIMES:
        close = difflib.get_close_matches(name, list(RUNTIMES), n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise RuntimeConfigError(name, f"unknown runtime{hint} (runtimes: {', '.join(RUNTIMES)})")
    return _load(RUNTIMES[name])


def has_online(name: str) -> bool:
    """Whether a runtime can run requests online: an online runtime, or a batch one with an online variant."""
    return name in RUNTIMES_ONLINE or not runtime_class(name).batch


def online_runtime_class(name: str) -> type[OnlineRuntime]:
    """The class that runs `name`'s requests online: the runtime itself, or the online variant of a batch one."""
    cls = runtime_class(name)
    if name in RUNTIMES_ONLINE:
        cls = _load(RUNTIMES_ONLINE[name])
    if not issubclass(cls, OnlineRuntime):
        raise RuntimeConfigError(name, f"no online mode (online variants: {', '.join(RUNTIMES_ONLINE)})")
    return cls


def _load(path: str) -> type[Any]:
    module, _, attr = path.partition(":")
    cls: type[Any] = getattr(importlib.import_module(module), attr)
    return cls


def get_runtime(name: str, env: Mapping[str, str] | None = None) -> Runtime:
    """An adapter instance, configured from `env` (default: the process environment)."""
    return runtime_class(name)(env)


__all__ = ["RUNTIMES", "RUNTIMES_ONLINE", "BatchRuntime", "OnlineRuntime", "Runtime", "RuntimeConfigError", "RuntimeFailure",
           "get_runtime", "has_online", "online_runtime_class",
           "runtime_class"]
