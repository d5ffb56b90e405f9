"""Pytest plugin: fixtures that serve the vendor emulators (``tests/emulators``) for one test each.

Register with ``pytest_plugins = ["tests.conftest_emulators"]``. Fixtures: ``openai_emulator``,
``anthropic_emulator``, ``gemini_emulator``, ``ollama_emulator`` (started on 127.0.0.1:0, stopped at teardown)
and ``emulator_factory`` (``factory("openai", batch_delay=...)``). Options for the four fixtures come from the
``emulator`` marker: ``@pytest.mark.emulator(batch_delay=3600, max_requests=10)``; default batch_delay 0.02 s.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.emulators import (
    EMULATORS,
    AnthropicEmulator,
    Emulator,
    GeminiEmulator,
    HubEmulator,
    OllamaEmulator,
    OpenAIEmulator,
)

DEFAULT_BATCH_DELAY = 0.02


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "emulator(**options): options for the vendor emulator fixtures")


def _serve(request: pytest.FixtureRequest, cls: type[Emulator]) -> Iterator[Any]:
    marker = request.node.get_closest_marker("emulator")
    options = {"batch_delay": DEFAULT_BATCH_DELAY, **(marker.kwargs if marker else {})}
    emu = cls(**options).start()
    try:
        yield emu
    finally:
        emu.stop()
        assert not emu.running


@pytest.fixture
def openai_emulator(request: pytest.FixtureRequest) -> Iterator[OpenAIEmulator]:
    yield from _serve(request, OpenAIEmulator)


@pytest.fixture
def anthropic_emulator(request: pytest.FixtureRequest) -> Iterator[AnthropicEmulator]:
    yield from _serve(request, AnthropicEmulator)


@pytest.fixture
def gemini_emulator(request: pytest.FixtureRequest) -> Iterator[GeminiEmulator]:
    yield from _serve(request, GeminiEmulator)


@pytest.fixture
def ollama_emulator(request: pytest.FixtureRequest) -> Iterator[OllamaEmulator]:
    yield from _serve(request, OllamaEmulator)


HUB_MAX_SECONDS = 600.0


@pytest.fixture
def hub_emulator(request: pytest.FixtureRequest) -> Iterator[HubEmulator]:
    """The Hugging Face Hub emulator (stops by itself after ``HUB_MAX_SECONDS``); point clients at it with
    ``tests.emulators.hub.use_hub(monkeypatch, hub_emulator, tmp_path)``. Options from the ``emulator`` marker,
    e.g. ``@pytest.mark.emulator(tokens={"hf_a": "alice", "hf_b": "bob"}, orgs={"team": ["alice"]})``."""
    marker = request.node.get_closest_marker("emulator")
    emu = HubEmulator(**{"max_seconds": HUB_MAX_SECONDS, **(marker.kwargs if marker else {})}).start()
    try:
        yield emu
    finally:
        emu.stop()
        assert not emu.running


@pytest.fixture
def emulator_factory() -> Iterator[Callable[..., Emulator]]:
    """``factory(vendor, **options)`` starts an emulator; all are stopped at teardown."""
    started: list[Emulator] = []

    def factory(vendor: str, **options: Any) -> Emulator:
        emu = EMULATORS[vendor](**{"batch_delay": DEFAULT_BATCH_DELAY, **options}).start()
        started.append(emu)
        return emu

    yield factory
    for emu in started:
        emu.stop()
