"""Read a spec file (YAML or JSON) into a validated config, with YAML line numbers on every error."""

from __future__ import annotations

import difflib
import re
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from .errors import SpecError, SpecIssue
from .spec import CONFIG_BY_TYPE, SPEC_FORMAT_VERSION, DatasetConfigBase

Path_ = tuple[str | int, ...]


@dataclass
class LineMap:
    """Line (1-based) of every key and item of a YAML document, by data path."""

    file: str | None
    lines: dict[Path_, int] = field(default_factory=dict)

    def line(self, path: Path_) -> int | None:
        for end in range(len(path), -1, -1):
            if path[:end] in self.lines:
                return self.lines[path[:end]]
        return None

    def issue(self, path: Path_, message: str) -> SpecIssue:
        return SpecIssue(self.file, self.line(path), ".".join(str(p) for p in path), message)


@dataclass
class LoadedSpec:
    config: DatasetConfigBase
    base_dir: Path
    lines: LineMap


def did_you_mean(word: str, choices: typing.Iterable[str]) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""


def _read_text(path: Path) -> str:
    if not path.exists():
        raise SpecError.single(str(path), None, "", "spec file not found; check the path")
    if path.is_dir():
        raise SpecError.single(str(path), None, "", "is a directory; give the path of a .yaml spec file")
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise SpecError.single(str(path), None, "", f"cannot read spec file: {exc.strerror}") from None
    if b"\x00" in raw:
        raise SpecError.single(str(path), None, "", "binary file; a spec is a YAML or JSON text file")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise SpecError.single(str(path), None, "", f"not UTF-8 text (byte {exc.start}); save the spec as UTF-8") from None
    if not text.strip():
        raise SpecError.single(str(path), None, "", "empty spec; see `datafast schema` and specs/ for examples")
    return text


class SpecLoader(yaml.SafeLoader):
    """YAML with only true/false as booleans: `no: Norwegian` and `name: yes` stay strings (YAML 1.2)."""


SpecLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:bool"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
SpecLoader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF"))


def _line_map(file: str, text: str) -> tuple[Any, LineMap]:
    try:
        node = yaml.compose(text, Loader=SpecLoader)
        data = yaml.load(text, Loader=SpecLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        raise SpecError.single(file, line, "", f"YAML syntax error: {exc.problem or exc}") from None
    except yaml.YAMLError as exc:
        raise SpecError.single(file, None, "", f"YAML error: {exc}") from None
    lines = LineMap(file)
    issues: list[SpecIssue] = []

    def walk(n: yaml.Node, path: Path_) -> None:
        if isinstance(n, yaml.MappingNode):
            seen: set[str] = set()
            for key_node, value_node in n.value:
                key = key_node.value
                if key in seen:
                    issues.append(SpecIssue(file, key_node.start_mark.line + 1, ".".join(map(str, path + (key,))),
                                            "duplicate key; each key may appear once"))
                seen.add(key)
                lines.lines[path + (key,)] = key_node.start_mark.line + 1
                walk(value_node, path + (key,))
        elif isinstance(n, yaml.SequenceNode):
            for i, item in enumerate(n.value):
                lines.lines[path + (i,)] = item.start_mark.line + 1
                walk(item, path + (i,))

    if node is not None:
        lines.lines[()] = node.start_mark.line + 1
        walk(node, ())
    if issues:
        raise SpecError(issues)
    return data, lines


def load_spec(path: str | Path) -> LoadedSpec:
    """Load and validate a spec file.

    Raises:
        SpecError: with `file:line: field: message` for every problem found.
    """
    path = Path(path)
    file = str(path)
    text = _read_text(path)
    data, lines = _line_map(file, text)
    config = validate_data(data, lines)
    return LoadedSpec(config=config, base_dir=path.resolve().parent, lines=lines)


def validate_data(data: Any, lines: LineMap) -> DatasetConfigBase:
    """Validate already-parsed spec data (a mapping) into the config model of its `type`."""
    if not isinstance(data, dict):
        got = type(data).__name__ if data is not None else "nothing"
        raise SpecError([lines.issue((), f"a spec is a mapping of keys (datafast, name, type, ...), got {got}")])
    if "datafast" not in data:
        raise SpecError([lines.issue((), f"required key 'datafast' missing; add 'datafast: {SPEC_FORMAT_VERSION}'")])
    if type(data["datafast"]) is not int or data["datafast"] != SPEC_FORMAT_VERSION:
        raise SpecError([lines.issue(("datafast",), f"unsupported spec format version {data['datafast']!r}; "
                                     f"this datafast reads version {SPEC_FORMAT_VERSION}")])
    kind = data.get("type")
    if kind is None:
        raise SpecError([lines.issue((), f"required key 'type' missing; one of: {', '.join(CONFIG_BY_TYPE)}")])
    if kind not in CONFIG_BY_TYPE:
        raise SpecError([lines.issue(("type",), f"unknown dataset type {kind!r}{did_you_mean(str(kind), CONFIG_BY_TYPE)}; "
                                     f"one of: {', '.join(CONFIG_BY_TYPE)}")])
    model = CONFIG_BY_TYPE[kind]
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise SpecError(validation_issues(exc, data, model, lines)) from None


def validation_issues(exc: ValidationError, data: Any, model: type[BaseModel], lines: LineMap) -> list[SpecIssue]:
    """Turn pydantic errors into located, plain-language issues."""
    issues: dict[tuple[Path_, str], SpecIssue] = {}
    mismatched: dict[Path_, list[str]] = {}  # union members of the wrong kind, used only if nothing else fits
    for err in exc.errors():
        located = _data_path(data, err["loc"])
        if located is None:
            path, _ = _data_path(data, tuple(e for e in err["loc"] if not (isinstance(e, str) and "[" in e))) or ((), True)
            mismatched.setdefault(path, []).append(err["msg"].lower())
            continue
        path, complete = located
        msg = _message(err, path, model)
        # a missing key has no line of its own: point at its parent mapping
        issues.setdefault((path, msg), SpecIssue(lines.file, lines.line(path if complete else path[:-1]),
                                                 ".".join(str(p) for p in path), msg))
    suggested = {(path[:-1] + (m.group(1),)) for (path, msg) in issues
                 if (m := re.search(r"did you mean '([^']+)'", msg))}
    for key in [k for k in issues if k[1] == "required key missing" and k[0] in suggested]:
        del issues[key]  # the misspelt key's did-you-mean already says it
    for path, msgs in mismatched.items():
        if not any(p[:len(path)] == path for p, _ in issues):
            issues[(path, "")] = lines.issue(path, "wrong type: " + ", or ".join(dict.fromkeys(msgs)))
    return sorted(issues.values(), key=lambda i: (i.line or 0, i.field))


def _data_path(data: Any, loc: tuple[Any, ...]) -> tuple[Path_, bool] | None:
    """Map a pydantic `loc` onto the data, dropping union-member tags; `complete` if the path exists.

    None for the error of a union member that does not match the data's kind (a list given where the union
    also allows a mapping): that member's complaint would only confuse.
    """
    out: list[str | int] = []
    cur = data
    for el in loc:
        if isinstance(cur, dict) and el in cur or isinstance(cur, list) and isinstance(el, int) and 0 <= el < len(cur):
            out.append(el)
            cur = cur[el]
        elif isinstance(el, str) and ("[" in el or el in {"list", "dict"}):
            if (el.startswith("list") and not isinstance(cur, list)) or (el.startswith("dict") and not isinstance(cur, dict)):
                return None
            continue  # tag naming a union member, not a key
        elif isinstance(cur, dict) and isinstance(el, str):
            out.append(el)
            return tuple(out), False
        else:
            continue
    return tuple(out), True


def _message(err: Mapping[str, Any], path: Path_, model: type[BaseModel]) -> str:
    kind = err["type"]
    if kind == "extra_forbidden":
        allowed = _allowed_keys(model, path[:-1])
        return f"unknown key {path[-1]!r}{did_you_mean(str(path[-1]), allowed)}" + (
            f" (allowed: {', '.join(sorted(allowed))})" if allowed and not did_you_mean(str(path[-1]), allowed) else ""
        )
    if kind == "missing":
        return "required key missing"
    msg = err["msg"]
    if msg.startswith("Value error, "):
        msg = msg[len("Value error, "):]
    if kind == "literal_error" and path and path[-1] == "type":
        msg = f"unknown dataset type; {msg[0].lower()}{msg[1:]}"
    return msg[0].lower() + msg[1:] if msg else msg


def _unwrap(annotation: Any) -> list[Any]:
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        return [a for arg in typing.get_args(annotation) for a in _unwrap(arg)]
    if origin is typing.Annotated:
        return _unwrap(typing.get_args(annotation)[0])
    return [annotation]


def _allowed_keys(model: type[BaseModel], path: Path_) -> list[str]:
    """Field names of the model at `path` (walking lists and dicts), for did-you-mean."""
    candidates: list[Any] = [model]
    for el in path:
        nxt: list[Any] = []
        for c in candidates:
            for a in _unwrap(c):
                if isinstance(a, type) and issubclass(a, BaseModel) and isinstance(el, str) and el in a.model_fields:
                    nxt.append(a.model_fields[el].annotation)
                elif typing.get_origin(a) is list and isinstance(el, int):
                    nxt.append(typing.get_args(a)[0])
                elif typing.get_origin(a) is dict and isinstance(el, str):
                    nxt.append(typing.get_args(a)[1])
        candidates = nxt
    for c in candidates:
        for a in _unwrap(c):
            if isinstance(a, type) and issubclass(a, BaseModel):
                return list(a.model_fields)
    return []
