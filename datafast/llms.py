"""The original datafast's provider classes, as descriptions of a model for `Dataset.generate()`.

A provider sends nothing itself: it names a `runtime:model` of the spec, the generation parameters that go
into the spec's `generation` block, and the key (or host) the runtime reads for this process only. Requests
go through the same compile -> submit -> collect path as `datafast run`: OpenAI, Anthropic and Gemini through
their batch APIs at batch prices (`mode="online"`: one call per request, full price, the spec's `online`
key for the provider's role), Ollama and the embedded local model online.

Example:
    >>> from datafast.llms import OpenAIProvider
    >>> OpenAIProvider(model_id="gpt-4.1-mini", temperature=0.7).model
    'openai:gpt-4.1-mini'
"""

from __future__ import annotations

from typing import Any, ClassVar

from .logs import get_logger

log = get_logger("llms")

# provider parameter -> key of the spec's `generation` block
GENERATION_KEYS = {"temperature": "temperature", "top_p": "top_p", "max_completion_tokens": "max_tokens"}


class ProviderError(ValueError):
    """A provider was given something this datafast cannot do; raised before anything is sent."""


class LLMProvider:
    """A model of one runtime, with the generation parameters and credentials to use it.

    Args:
        model_id: the model as the vendor names it (default: the original datafast's default for the vendor).
        api_key: used by this process only, for this provider's runtime; never written to a file or a log.
            Default: the vendor's environment variable.
        temperature, top_p, max_completion_tokens: the spec's `generation.temperature`, `.top_p`,
            `.max_tokens`. Every provider of one generate() call must agree on them (one generation block).
        mode: "batch" (vendor batch APIs, half price; default for OpenAI, Anthropic, Gemini) or "online" (one
            call per request, full price; the only mode of Ollama and the local model). It sets the spec's
            `online` key for the provider's role, so the providers of one role share a mode.
        frequency_penalty: not supported (the spec's generation block has no such key); an error if set.
        rpm_limit, timeout: accepted for compatibility and ignored with a warning: batch jobs are paced by
            the vendor's queue and quotas, online runtimes retry with back-off.
    """

    runtime: ClassVar[str]
    default_model: ClassVar[str]
    key_env: ClassVar[str | None] = None
    modes: ClassVar[tuple[str, ...]] = ("batch",)

    def __init__(self, model_id: str | None = None, api_key: str | None = None, temperature: float | None = None,
                 max_completion_tokens: int | None = None, top_p: float | None = None,
                 frequency_penalty: float | None = None, rpm_limit: int | None = None,
                 timeout: int | None = None, *, mode: str | None = None) -> None:
        self.model_id = model_id or self.default_model
        self._api_key = api_key
        self.temperature = temperature
        self.max_completion_tokens = max_completion_tokens
        self.top_p = top_p
        self.mode = mode or self.modes[0]
        if self.mode not in ("batch", "online"):
            raise ProviderError(f"mode must be 'batch' or 'online', got {self.mode!r}")
        if self.mode not in self.modes:
            raise ProviderError(f"{self.mode} mode for {self.runtime} is not available in this version"
                                f" ({self.runtime} runs {' or '.join(self.modes)})")
        if frequency_penalty is not None:
            raise ProviderError(f"{type(self).__name__}: frequency_penalty is not supported; the spec's generation "
                                "block takes max_tokens, temperature, top_p and seed")
        for name, value in (("rpm_limit", rpm_limit), ("timeout", timeout)):
            if value is not None:
                log.warning("%s: %s is ignored: batch jobs are paced by the vendor, online runtimes retry "
                            "with back-off", type(self).__name__, name)

    @property
    def batch_capable(self) -> bool:
        """Whether this provider's runtime has a batch mode (so its `mode` decides batch or online)."""
        return "batch" in self.modes

    @property
    def model(self) -> str:
        """The spec's model string, `runtime:model`."""
        return f"{self.runtime}:{self.model_id}"

    def generation(self) -> dict[str, Any]:
        """The generation parameters this provider sets, as keys of the spec's `generation` block."""
        return {key: getattr(self, attr) for attr, key in GENERATION_KEYS.items() if getattr(self, attr) is not None}

    def env(self) -> dict[str, str]:
        """What this provider adds to the environment of its runtime (its key), for this process only."""
        return {self.key_env: self._api_key} if self.key_env and self._api_key else {}

    def __repr__(self) -> str:  # never the key
        params = ", ".join(f"{k}={v!r}" for k, v in (("model_id", self.model_id), *(
            (attr, getattr(self, attr)) for attr in GENERATION_KEYS), ("mode", self.mode)) if v is not None)
        return f"{type(self).__name__}({params})"


class OpenAIProvider(LLMProvider):
    """OpenAI models through the Batch API, or online (key: `api_key` or OPENAI_API_KEY).

    `reasoning_effort` is accepted for compatibility; the spec has no such setting and it is not sent.
    """

    runtime = "openai"
    default_model = "gpt-5-mini-2025-08-07"
    key_env = "OPENAI_API_KEY"
    modes = ("batch", "online")

    def __init__(self, model_id: str = default_model, api_key: str | None = None,
                 max_completion_tokens: int | None = None, reasoning_effort: str | None = None,
                 temperature: float | None = None, top_p: float | None = None,
                 frequency_penalty: float | None = None, timeout: int | None = None, *,
                 mode: str | None = None) -> None:
        super().__init__(model_id, api_key, temperature, max_completion_tokens, top_p, frequency_penalty,
                         timeout=timeout, mode=mode)
        if reasoning_effort is not None:
            log.warning("OpenAIProvider: reasoning_effort=%r is not sent (the spec has no such setting)",
                        reasoning_effort)


class AnthropicProvider(LLMProvider):
    """Anthropic models through the Message Batches API, or online (key: `api_key` or ANTHROPIC_API_KEY)."""

    runtime = "anthropic"
    default_model = "claude-haiku-4-5-20251001"
    key_env = "ANTHROPIC_API_KEY"
    modes = ("batch", "online")

    def __init__(self, model_id: str = default_model, api_key: str | None = None, temperature: float | None = None,
                 max_completion_tokens: int | None = None, timeout: int | None = None, *,
                 top_p: float | None = None, mode: str | None = None) -> None:
        super().__init__(model_id, api_key, temperature, max_completion_tokens, top_p, timeout=timeout, mode=mode)


class GeminiProvider(LLMProvider):
    """Gemini models through the Gemini Batch API, or online (key: `api_key` or GEMINI_API_KEY / GOOGLE_API_KEY)."""

    runtime = "gemini"
    default_model = "gemini-2.0-flash"
    key_env = "GEMINI_API_KEY"
    modes = ("batch", "online")

    def __init__(self, model_id: str = default_model, api_key: str | None = None, temperature: float | None = None,
                 max_completion_tokens: int | None = None, top_p: float | None = None,
                 frequency_penalty: float | None = None, rpm_limit: int | None = None,
                 timeout: int | None = None, *, mode: str | None = None) -> None:
        super().__init__(model_id, api_key, temperature, max_completion_tokens, top_p, frequency_penalty,
                         rpm_limit, timeout, mode=mode)


class OllamaProvider(LLMProvider):
    """A model served by Ollama, online (`api_base`, else OLLAMA_HOST, else http://127.0.0.1:11434)."""

    runtime = "ollama"
    default_model = "gemma3:4b"
    modes = ("online",)

    def __init__(self, model_id: str = default_model, temperature: float | None = None,
                 max_completion_tokens: int | None = None, top_p: float | None = None,
                 frequency_penalty: float | None = None, api_base: str | None = None,
                 rpm_limit: int | None = None, timeout: int | None = None, *, mode: str | None = None) -> None:
        super().__init__(model_id, None, temperature, max_completion_tokens, top_p, frequency_penalty,
                         rpm_limit, timeout, mode=mode)
        self.api_base = api_base

    def env(self) -> dict[str, str]:
        return {"OLLAMA_HOST": self.api_base} if self.api_base else {}


class LocalProvider(LLMProvider):
    """The embedded model run in this process by llama.cpp (`pip install 'datafast[local]'`), online."""

    runtime = "local"
    default_model = "smollm2-135m"
    modes = ("online",)

    def __init__(self, model_id: str = default_model, temperature: float | None = None,
                 max_completion_tokens: int | None = None, top_p: float | None = None, *,
                 mode: str | None = None) -> None:
        super().__init__(model_id, None, temperature, max_completion_tokens, top_p, mode=mode)


__all__ = ["AnthropicProvider", "GeminiProvider", "LLMProvider", "LocalProvider", "OllamaProvider",
           "OpenAIProvider", "ProviderError"]
