"""Vendor batch job-file renderers, one module per vendor, registered by runtime name.

Adding a vendor: its module (a `Renderer` subclass), its tests, one line in `RENDERERS`, one row in
`data/limits.json`. Runtimes without a batch file format (ollama, local) have no renderer: they read the
manifest directly.
"""

from __future__ import annotations

from .anthropic import AnthropicRenderer
from .base import Diagnostics, Renderer, RenderError, UnsupportedFeature, VendorWarning
from .gemini import GeminiRenderer
from .openai import OpenAIRenderer

RENDERERS: dict[str, type[Renderer]] = {
    "openai": OpenAIRenderer,
    "anthropic": AnthropicRenderer,
    "gemini": GeminiRenderer,
}

__all__ = [
    "RENDERERS",
    "AnthropicRenderer",
    "Diagnostics",
    "GeminiRenderer",
    "OpenAIRenderer",
    "RenderError",
    "Renderer",
    "UnsupportedFeature",
    "VendorWarning",
]
