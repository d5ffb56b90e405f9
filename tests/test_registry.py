"""The runtime registries agree, and a runtime registered the documented way (its module + one line) runs."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from typing import Any, ClassVar

import pytest
import yaml

import datafast
from datafast.compiler import checks
from datafast.compiler.spec import KNOWN_RUNTIMES
from datafast.compiler.vendors import RENDERERS
from datafast.dataset import collect_to
from datafast.pipeline import advance
from datafast.runtimes import (
    RUNTIMES,
    RUNTIMES_ONLINE,
    OnlineRuntime,
    has_online,
    online_runtime_class,
    runtime_class,
)
from datafast.runtimes.base import result


def test_every_registry_names_the_same_runtimes():
    assert set(KNOWN_RUNTIMES) == set(RUNTIMES)
    for name in RUNTIMES:
        cls = runtime_class(name)
        assert cls.name == name
        # batch runtimes have job files (a renderer); online ones read the manifest and have none
        assert (name in RENDERERS) == cls.batch, name
    assert set(RENDERERS) <= set(RUNTIMES)


def test_every_online_variant_is_an_online_runtime_of_a_batch_runtime():
    for name in RUNTIMES_ONLINE:
        assert runtime_class(name).batch, name  # an online variant is only for a batch runtime
        cls = online_runtime_class(name)
        assert cls.name == name and not cls.batch and issubclass(cls, OnlineRuntime)
    for name in RUNTIMES:  # every runtime can run online: batch ones through their variant
        assert has_online(name) and issubclass(online_runtime_class(name), OnlineRuntime)


class EchoRuntime(OnlineRuntime):
    """A new online runtime: answers every request with a schema-shaped JSON built from the request id."""

    name = "echo"
    seen: ClassVar[list[str]] = []

    def __init__(self, env: Mapping[str, str] | None = None, *, schemas: Mapping[str, Any] | None = None):
        super().__init__(env)
        self.schemas = dict(schemas or {})

    def run(self, requests: Iterable[Mapping[str, Any]], concurrency: int,
            on_result: Callable[[dict[str, Any]], None]) -> None:
        for request in requests:
            EchoRuntime.seen.append(request["id"])
            answer = _instance(self.schemas[request["schema"]], request["id"])
            on_result(result(request["id"], self.name, request["model"], text=json.dumps(answer),
                             input_tokens=10, output_tokens=5, finish_reason="stop"))


def _instance(schema: Mapping[str, Any], tag: str) -> Any:
    kind = schema.get("type")
    if kind == "object":
        return {k: _instance(v, f"{tag}.{k}") for k, v in schema["properties"].items()}
    if kind == "array":
        return [_instance(schema["items"], f"{tag}.{i}") for i in range(max(2, schema.get("minItems", 1)))]
    if kind == "integer":
        return schema.get("maximum", 1)
    return f"text {tag}"


@pytest.fixture
def echo_registered(monkeypatch):
    monkeypatch.setitem(RUNTIMES, "echo", "tests.test_registry:EchoRuntime")
    monkeypatch.setattr(checks, "KNOWN_RUNTIMES", (*KNOWN_RUNTIMES, "echo"))
    EchoRuntime.seen.clear()


@pytest.mark.parametrize("spec", [
    {"datafast": 1, "name": "echo-c", "type": "classification", "models": ["echo:any"],
     "classes": [{"name": "a", "description": "A."}, {"name": "b", "description": "B."}]},
    {"datafast": 1, "name": "echo-p", "type": "preference", "models": ["echo:any"], "llm_as_judge": True,
     "input_documents": ["One document."], "num_samples_per_prompt": 2},
])
def test_a_newly_registered_online_runtime_is_sent_every_stage(tmp_path, echo_registered, spec):
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(spec))
    datafast.compile(path, tmp_path / "out")
    report = advance(tmp_path / "out", wait=True)
    assert report.finished and report.pending == 0 and report.ok == len(EchoRuntime.seen) > 0
    assert len(set(EchoRuntime.seen)) == len(EchoRuntime.seen)  # each request once
    collected = collect_to(tmp_path / "out")
    assert collected.rejected == 0 and collected.rows > 0
