"""Validation against the official OpenAI OpenAPI document (``shared/reference/openai-openapi.yaml``).

``problems("CreateChatCompletionRequest", body)`` lists schema violations (empty when valid). The document is
OpenAPI 3.1 (JSON Schema 2020-12); ``nullable: true`` (3.0 leftovers) is honoured. With ``relaxed=True``,
properties that a schema does not list as ``required`` may also be ``null``: the API sends ``null`` for unset
optional fields (``output_file_id``, ``failed_at``, ``errors`` ... see the document's own examples), which the
document types as plain strings/integers. Required fields stay strict.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Any

import jsonschema
import yaml
from referencing import Registry
from referencing.jsonschema import DRAFT202012

ENV_VAR = "DATAFAST_OPENAI_OPENAPI"
_URI = "urn:openai-openapi"


def spec_path() -> Path | None:
    """The OpenAPI document: ``$DATAFAST_OPENAI_OPENAPI``, else ``<repo>/../shared/reference/``."""
    candidates = [os.environ.get(ENV_VAR, "")]
    repo = Path(__file__).resolve().parents[2]
    candidates += [str(repo.parent / "shared" / "reference" / "openai-openapi.yaml"),
                   str(repo / "shared" / "reference" / "openai-openapi.yaml")]
    for candidate in candidates:
        if candidate and Path(candidate).is_file():
            return Path(candidate)
    return None


def available() -> bool:
    return spec_path() is not None


def _transform(node: Any, relaxed: bool) -> Any:
    if isinstance(node, list):
        return [_transform(n, relaxed) for n in node]
    if not isinstance(node, dict):
        return node
    out = {k: _transform(v, relaxed) for k, v in node.items()}
    if relaxed and isinstance(out.get("properties"), dict):
        required = set(out.get("required") or [])
        out["properties"] = {
            name: sub if name in required else {"anyOf": [sub, {"type": "null"}]}
            for name, sub in out["properties"].items()
        }
    if out.pop("nullable", False) is True:
        out = {"anyOf": [out, {"type": "null"}]}
    return out


@lru_cache(maxsize=1)
def _raw() -> dict[str, Any]:
    path = spec_path()
    if path is None:
        raise FileNotFoundError(f"OpenAI OpenAPI document not found (set ${ENV_VAR})")
    with open(path, encoding="utf-8") as fh:
        return yaml.load(fh, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))


@lru_cache(maxsize=2)
def _registry(relaxed: bool) -> Registry:
    doc = {"components": _transform(_raw()["components"], relaxed)}
    return Registry().with_resource(_URI, DRAFT202012.create_resource(doc))


@lru_cache(maxsize=64)
def validator(name: str, relaxed: bool = False) -> jsonschema.Draft202012Validator:
    schema = {"$ref": f"{_URI}#/components/schemas/{name}"}
    return jsonschema.Draft202012Validator(schema, registry=_registry(relaxed))


def problems(name: str, instance: Any, *, relaxed: bool = False, limit: int = 5) -> list[str]:
    """Schema violations of ``instance`` against ``components.schemas[name]`` (best matches first)."""
    errors = sorted(validator(name, relaxed).iter_errors(instance), key=jsonschema.exceptions.relevance)
    return [f"{'/'.join(map(str, e.absolute_path)) or '<root>'}: {e.message[:300]}" for e in errors[:limit]]


def first_problem(name: str, instance: Any) -> tuple[str, str] | None:
    """(param path, message) of the most relevant violation, for an API-style error; None when valid."""
    error = jsonschema.exceptions.best_match(validator(name).iter_errors(instance))
    if error is None:
        return None
    return ".".join(map(str, error.absolute_path)), error.message[:500]


@lru_cache(maxsize=16)
def property_names(name: str) -> frozenset[str]:
    """Every top-level property ``components.schemas[name]`` declares (through allOf and $ref).

    JSON Schema lets unknown keys through, but the API answers them with 400 "Unrecognized request
    argument supplied", so the emulator checks them separately.
    """
    schemas = _raw()["components"]["schemas"]
    names: set[str] = set()
    todo: list[Any] = [schemas[name]]
    for _ in range(1000):  # bounded walk of a finite document
        if not todo:
            break
        node = todo.pop()
        if not isinstance(node, dict):
            continue
        if "$ref" in node:
            todo.append(schemas[node["$ref"].rsplit("/", 1)[-1]])
        names.update(node.get("properties", {}))
        todo.extend(node.get("allOf", []))
    return frozenset(names)
