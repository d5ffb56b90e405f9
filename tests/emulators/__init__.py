"""Protocol-faithful loopback emulators of the OpenAI, Anthropic, Gemini and Ollama HTTP APIs (tests only).

    with OpenAIEmulator(batch_delay=0.05) as emu:
        client = openai.OpenAI(base_url=emu.base_url, api_key="test")
        emu.faults.add("error", request_id="r1", status=500)
        ...
        emu.stats()  # batches created, online requests, calls per route, submissions per request id

Started by hand: ``python -m tests.emulators openai|anthropic|gemini|ollama|all --port N``.
"""

from ._base import Emulator, HTTPError
from .anthropic import AnthropicEmulator
from .faults import Fault, FaultPlan
from .gemini import GeminiEmulator
from .hub import HubEmulator
from .ollama import OllamaEmulator
from .openai import OpenAIEmulator

EMULATORS: dict[str, type[Emulator]] = {
    "openai": OpenAIEmulator,
    "anthropic": AnthropicEmulator,
    "gemini": GeminiEmulator,
    "ollama": OllamaEmulator,
    "hub": HubEmulator,
}

__all__ = [
    "EMULATORS",
    "AnthropicEmulator",
    "Emulator",
    "Fault",
    "FaultPlan",
    "GeminiEmulator",
    "HTTPError",
    "HubEmulator",
    "OllamaEmulator",
    "OpenAIEmulator",
]
