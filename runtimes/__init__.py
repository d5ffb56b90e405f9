"""datafast.runtimes: model I/O. One adapter module per runtime, imported only when used.

Adding a runtime = its module, its tests, one line in RUNTIMES.
"""

from __future__ import annotations

import difflib
import importlib
from collections.abc import Mapping

from .base import BatchRuntime, OnlineRuntime, Runtime, RuntimeConfigError, RuntimeFailure

RUNTIMES: dict[str, str] = {
    "openai": "datafast.runtimes.openai:OpenAIRuntime",
    "anthropic": "datafast.runtimes.anthropic:AnthropicRuntime",
    "gemini": "datafast.runtimes.gemini:GeminiRuntime",
    "ollama": "datafast.runtimes.ollama:OllamaRuntime",
    "local": "datafast.runtimes.local:LocalRuntime",
}


def runtime_class(name: str) -> type[Runtime]:
    if name not in RUNTIMES:
        close = difflib.get_close_matches(name, list(RUNTIMES), n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise RuntimeConfigError(name, f"unknown runtime{hint} (runtimes: {', '.join(RUNTIMES)})")
    module, _, attr = RUNTIMES[name].partition(":")
    cls: type[Runtime] = getattr(importlib.import_module(module), attr)
    return cls


def get_runtime(name: str, env: Mapping[str, str] | None = None) -> Runtime:
    """An adapter instance, configured from `env` (default: the process environment)."""
    return runtime_class(name)(env)


__all__ = ["RUNTIMES", "BatchRuntime", "OnlineRuntime", "Runtime", "RuntimeConfigError", "RuntimeFailure",
           "get_runtime", "runtime_class"]
