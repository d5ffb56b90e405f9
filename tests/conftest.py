"""Shared fixtures: spec files in a temp dir, the CLI in-process, golden-file refresh option."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from datafast.cli import main

REPO = Path(__file__).resolve().parent.parent

pytest_plugins = ["tests.conftest_emulators"]


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--update-golden", action="store_true", help="rewrite tests/golden/ expected files")


@pytest.fixture
def update_golden(request: pytest.FixtureRequest) -> bool:
    return bool(request.config.getoption("--update-golden"))


@pytest.fixture
def write_spec(tmp_path: Path):
    """Write a spec (YAML text or a dict) to tmp_path and return its path."""

    def write(spec: str | dict[str, Any], name: str = "spec.yaml") -> Path:
        path = tmp_path / name
        text = spec if isinstance(spec, str) else yaml.safe_dump(spec, sort_keys=False, allow_unicode=True)
        path.write_text(textwrap.dedent(text), encoding="utf-8")
        return path

    return write


@pytest.fixture
def cli():
    """Run the CLI in-process; returns click's Result (exit_code, stdout, stderr)."""
    runner = CliRunner()

    def run(*args: str | Path):
        return runner.invoke(main, [str(a) for a in args], catch_exceptions=False)

    return run


def minimal_classification(**overrides: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "datafast": 1,
        "name": "tiny",
        "type": "classification",
        "classes": [{"name": "pos", "description": "Happy."}, {"name": "neg", "description": "Sad."}],
        "models": ["openai:gpt-4.1-mini"],
    }
    spec.update(overrides)
    return spec
