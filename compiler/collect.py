"""Results -> rows (pure): parse each answer as JSON, validate it against its request's schema, fan out.

Everything that does not become rows gets a reason: the runtime's error, a truncated answer, invalid JSON,
or the schema violation (path and message).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import fastjsonschema
import jsonschema
import orjson

from .spec import CONFIG_BY_TYPE, DatasetConfigBase
from .stages import Row, Stage, stages_for


def _fast_validator(schema: Mapping[str, Any]) -> Callable[[Any], Any] | None:
    """fastjsonschema's compiled check, 20x faster than jsonschema on valid answers; None if it cannot compile."""
    try:
        return fastjsonschema.compile(dict(schema))  # type: ignore[no-any-return]
    except fastjsonschema.JsonSchemaDefinitionException:
        return None


@dataclass
class Outcome:
    rows: list[Row]
    reason: str | None = None  # why the request produced no rows
    unwrapped: str | None = None  # the wrapper the JSON answer came in ("think", "fence", "think+fence")


@dataclass
class Parsed:
    """An answer's text checked against its schema: the JSON value, or why it is not an answer.

    `kind` is one of `empty`, `invalid_json`, `schema_violation` (terminal error kinds of a result that
    arrived but is not usable); the reason shown everywhere is `f"{kind}: {message}"`.
    """

    answer: Any = None
    kind: str | None = None
    message: str = ""
    unwrapped: str | None = None

    @property
    def reason(self) -> str | None:
        return None if self.kind is None else f"{self.kind}: {self.message}"


_THINK = re.compile(r"\A\s*<think>.*?</think>\s*", re.S)
_FENCE = re.compile(r"\A\s*```[A-Za-z]*[ \t]*\r?\n(.*?)\r?\n?```\s*\Z", re.S)


def unwrap(text: str) -> tuple[str, str | None]:
    """The text inside the wrappers online models put around JSON: a leading `<think>...</think>` block and/or
    a ```json fence around the whole rest. Returns (inner text, wrapper kind or None)."""
    kinds = []
    think = _THINK.match(text)
    if think:
        text = text[think.end():]
        kinds.append("think")
    fence = _FENCE.match(text)
    if fence:
        text = fence.group(1)
        kinds.append("fence")
    return text, "+".join(kinds) or None


class RowBuilder:
    """Turns (request, ok result) pairs into rows for one compiled spec (from manifest.json)."""

    def __init__(self, manifest: Mapping[str, Any]):
        self.spec: DatasetConfigBase = CONFIG_BY_TYPE[manifest["type"]].model_validate(manifest["spec"])
        self.stages: dict[str, Stage] = {s.name: s for s in stages_for(self.spec)}
        self._validators = {key: jsonschema.Draft202012Validator(schema) for key, schema in manifest["schemas"].items()}
        self._fast = {key: _fast_validator(schema) for key, schema in manifest["schemas"].items()}

    def parse(self, schema: str, text: Any) -> Parsed:
        """Parse an answer as JSON and validate it against the schema `schema` (a key of manifest.json's
        `schemas`). The whole answer must be one JSON value, or one JSON value inside a wrapper (`unwrap`)."""
        if not isinstance(text, str):
            return Parsed(kind="empty", message="no answer text" if text is None else "answer is not text")
        if not text.strip():
            return Parsed(kind="empty", message="empty answer")
        unwrapped = None
        try:
            answer = orjson.loads(text)
        except orjson.JSONDecodeError:
            inner, unwrapped = unwrap(text)
            if unwrapped is None:
                return Parsed(kind="invalid_json", message=_json_error(text))
            try:
                answer = orjson.loads(inner)
            except orjson.JSONDecodeError:
                return Parsed(kind="invalid_json", message=_json_error(inner), unwrapped=unwrapped)
        if not self._valid_fast(schema, answer):
            # jsonschema is the judge: it explains the failure (and overrules the fast path if they differ)
            problem = jsonschema.exceptions.best_match(self._validators[schema].iter_errors(answer))
            if problem is not None:
                where = "/".join(map(str, problem.absolute_path)) or "<root>"
                return Parsed(kind="schema_violation", message=f"at {where}: {problem.message[:300]}",
                              unwrapped=unwrapped)
        return Parsed(answer, unwrapped=unwrapped)

    def outcome(self, request: Mapping[str, Any], result: Mapping[str, Any] | None) -> Outcome | None:
        """Rows of a request, or the reason it has none; None while it has no result (pending)."""
        if result is None:
            return None
        if result["status"] != "ok":
            error = result.get("error") or {}
            return Outcome([], f"{error.get('kind', 'error')}: {error.get('message', '')}".strip())
        parsed = self.parse(request["schema"], result.get("text"))
        if parsed.kind is not None:
            return Outcome([], parsed.reason, parsed.unwrapped)
        rows = self.stages[request["stage"]].rows(self.spec, request, parsed.answer)
        return Outcome(rows, None if rows else "empty: answer has no items", parsed.unwrapped)

    def _valid_fast(self, key: str, answer: Any) -> bool:
        check = self._fast[key]
        if check is None:
            return self._validators[key].is_valid(answer)  # type: ignore[no-any-return]
        try:
            check(answer)
        except fastjsonschema.JsonSchemaValueException:
            return False
        return True


def _json_error(text: str) -> str:
    try:
        json.loads(text)  # for the position in the message
    except json.JSONDecodeError as exc:
        return f"{exc.msg} at line {exc.lineno} column {exc.colno}"
    except RecursionError:
        return "nested too deeply"
    return "not JSON"


def checked_result(builder: RowBuilder, schema: str, result: dict[str, Any]) -> dict[str, Any]:
    """An ok result whose text is not an answer (empty, invalid JSON, schema violation) becomes a terminal
    error result of that kind, text kept; anything else is returned as is.

    Applied when results are stored, so `status`, `submit` (`--retry-failed` resends them) and `collect`
    agree on what is done (DESIGN.md §3: schema-invalid is a terminal failure).
    """
    if result.get("status") != "ok":
        return result
    parsed = builder.parse(schema, result.get("text"))
    if parsed.kind is None:
        return result
    return {**result, "status": "error",
            "error": {"kind": parsed.kind, "message": parsed.message[:2000], "retryable": False}}
