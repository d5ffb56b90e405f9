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
from .spec import CONFIG_BY_TYPE, KNOWN_RUNTIMES, SPEC_FORMAT_VERSION, DatasetConfigBase

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
        if (path / "manifest.json").is_file():
            raise SpecError.single(str(path), None, "", "is a directory: the output dir of a compiled spec; compile, "
                                   "run and preview take the spec file (.yaml); an output dir goes to submit, "
                                   "status, collect, cancel, push or plan")
        raise SpecError.single(str(path), None, "", "is a directory; give the path of a .yaml spec file (an "
                               "output dir goes to submit, status, collect, cancel, push or plan)")
    if path.suffix.lower() == ".jsonl":  # a manifest, a job file or a dataset: compiled output, not a spec
        raise SpecError.single(str(path), None, "", "a .jsonl file is not a spec (a spec is YAML or JSON); give the "
                               "spec file, or the output dir it was compiled into to submit, status, collect or plan")
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
    """YAML 1.2 core scalars: `no: Norwegian`, `name: yes`, `12:30`, `1_000`, `2024-01-01` stay strings.

    PyYAML follows YAML 1.1, which reads `no`/`on` as booleans, `017` as octal 15, `12:30` as the sexagesimal
    750 and `2024-01-01` as a date. Here only true/false are booleans; ints are decimal, 0o octal or 0x hex;
    floats are `1.5`, `.5`, `1e3`, `.inf`, `.nan`; null is `~`, `null` or nothing. Besides, a plain (unquoted)
    scalar in a field that only takes text keeps the text as written (`_as_written_nodes`): a class named
    `1.10` is "1.10", not "1.1".
    """

    def __init__(self, stream: str):
        super().__init__(stream)
        self.as_written: set[yaml.Node] = set()

    def construct_object(self, node: yaml.Node, deep: bool = False) -> Any:
        if node in self.as_written:
            return node.value
        return super().construct_object(node, deep=deep)


_YAML12 = {
    "tag:yaml.org,2002:bool": (r"^(?:true|True|TRUE|false|False|FALSE)$", "tTfF"),
    "tag:yaml.org,2002:int": (r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$", "-+0123456789"),
    "tag:yaml.org,2002:float": (r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?"
                                r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$", "-+.0123456789"),
}
SpecLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag in ("tag:yaml.org,2002:null", "tag:yaml.org,2002:merge")]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
for _tag, (_pattern, _first) in _YAML12.items():  # int before float: "12" is both
    SpecLoader.add_implicit_resolver(_tag, re.compile(_pattern), list(_first))


def _construct_int(loader: yaml.SafeLoader, node: yaml.Node) -> int:
    text = str(loader.construct_scalar(node)).replace("_", "")  # type: ignore[arg-type]
    sign = -1 if text.startswith("-") else 1
    digits = text.lstrip("+-")
    base = {"0o": 8, "0x": 16, "0b": 2}.get(digits[:2].lower(), 10)
    try:
        return sign * int(digits[2:] if base != 10 else digits, base)
    except ValueError:
        raise yaml.constructor.ConstructorError(None, None, f"{text!r} is not an integer", node.start_mark) from None


def _construct_float(loader: yaml.SafeLoader, node: yaml.Node) -> float:
    text = str(loader.construct_scalar(node)).replace("_", "")  # type: ignore[arg-type]
    special = {".inf": "inf", "+.inf": "inf", "-.inf": "-inf", ".nan": "nan"}.get(text.lower(), text)
    try:
        return float(special)
    except ValueError:
        raise yaml.constructor.ConstructorError(None, None, f"{text!r} is not a number", node.start_mark) from None


def _construct_text(loader: yaml.SafeLoader, node: yaml.Node) -> str:
    return str(loader.construct_scalar(node))  # type: ignore[arg-type]


SpecLoader.add_constructor("tag:yaml.org,2002:int", _construct_int)
SpecLoader.add_constructor("tag:yaml.org,2002:float", _construct_float)
# an explicit !!timestamp is read by PyYAML with an unchecked regex; dates in a spec are text anyway
SpecLoader.add_constructor("tag:yaml.org,2002:timestamp", _construct_text)

MAX_SPEC_VALUES = 1_000_000  # values after aliases are expanded: a "billion laughs" spec is an error, not a hang


def _line_map(file: str, text: str) -> tuple[Any, LineMap]:
    loader: SpecLoader | None = None
    try:
        loader = SpecLoader(text)
        node = loader.get_single_node()
        if node is not None and _expanded_size(node) > MAX_SPEC_VALUES:
            raise SpecError.single(file, None, "", f"the spec expands (through YAML aliases) to more than "
                                                   f"{MAX_SPEC_VALUES:,} values")
        lines, issues = _lines_of(file, node)  # before _as_written_nodes merges `<<` keys into their mappings
        if node is not None:
            loader.as_written = _as_written_nodes(node, loader)
        data = loader.construct_document(node) if node is not None else None
    except yaml.constructor.ConstructorError as exc:
        mark = exc.problem_mark or exc.context_mark
        raise SpecError.single(file, mark.line + 1 if mark else None, "",
                               f"unsupported YAML value: {exc.problem or exc}") from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        raise SpecError.single(file, line, "", f"YAML syntax error: {exc.problem or exc}") from None
    except yaml.reader.ReaderError as exc:  # a control character: YAML allows printable text only
        raise SpecError.single(file, text.count("\n", 0, exc.position) + 1, "",
                               f"character U+{_code(exc.character):04X} is not allowed in YAML; delete it") from None
    except yaml.YAMLError as exc:
        raise SpecError.single(file, None, "", f"YAML error: {exc}") from None
    except RecursionError:
        raise SpecError.single(file, None, "", "YAML nested too deeply") from None
    finally:
        if loader is not None:
            loader.dispose()
    if issues:
        raise SpecError(issues)
    return data, lines


def _code(character: int | str) -> int:
    return character if isinstance(character, int) else ord(character)


def _lines_of(file: str, node: yaml.Node | None) -> tuple[LineMap, list[SpecIssue]]:
    """The line of every key and item, and the keys given twice in one mapping."""
    lines = LineMap(file)
    issues: list[SpecIssue] = []
    walked: set[yaml.Node] = set()

    def walk(n: yaml.Node, path: Path_) -> None:
        if n in walked:  # an alias: its lines are those of its anchor
            return
        walked.add(n)
        if isinstance(n, yaml.MappingNode):
            seen: set[str] = set()
            for key_node, value_node in n.value:
                if not isinstance(key_node, yaml.ScalarNode):
                    continue  # a list or mapping as key: construction reports it
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
    return lines, issues


def _expanded_size(root: yaml.Node) -> int:
    """How many nodes the document has once every alias is expanded (each node counted once per use)."""
    sizes: dict[yaml.Node, int] = {}
    order: list[yaml.Node] = []
    stack = [root]
    while stack:  # iterative post-order: a deep document must not exhaust Python's stack
        n = stack.pop()
        if n in sizes:
            continue
        sizes[n] = 0
        order.append(n)
        if isinstance(n, yaml.SequenceNode):
            stack.extend(n.value)
        elif isinstance(n, yaml.MappingNode):
            stack.extend(x for pair in n.value for x in pair)
    for n in reversed(order):
        children = n.value if isinstance(n, yaml.SequenceNode) else [
            x for pair in n.value for x in pair] if isinstance(n, yaml.MappingNode) else []
        sizes[n] = 1 + sum(sizes[c] for c in children)  # a cycle counts as already-visited 0
    return sizes[root]


# what a plain scalar may resolve to besides text (str) and null; other tags (!!binary, !custom) stay errors
_KEPT_TAGS = {f"tag:yaml.org,2002:{t}" for t in ("int", "float", "bool", "timestamp")}


def _as_written_nodes(root: yaml.Node, loader: SpecLoader) -> set[yaml.Node]:
    """Plain scalars YAML would read as numbers or booleans, in fields that only take text.

    Their text goes to the prompt exactly as written. The spec's `type` picks the model whose annotations
    say which fields are text; with no known type there is nothing to keep (validation reports it).
    """
    if not isinstance(root, yaml.MappingNode):
        return set()
    kind = next((v.value for k, v in root.value if isinstance(k, yaml.ScalarNode) and k.value == "type"
                 and isinstance(v, yaml.ScalarNode)), None)
    model = CONFIG_BY_TYPE.get(kind) if isinstance(kind, str) else None
    if model is None:
        return set()
    out: set[yaml.Node] = set()
    done: set[tuple[int, tuple[int, ...]]] = set()

    def keep(n: yaml.Node, annotations: list[Any]) -> None:
        if isinstance(n, yaml.ScalarNode) and n.style is None and n.tag in _KEPT_TAGS and _is_text(annotations):
            out.add(n)

    def visit(n: yaml.Node, annotations: list[Any]) -> None:
        mark = (id(n), tuple(map(id, annotations)))
        if mark in done or not annotations:
            return
        done.add(mark)
        keep(n, annotations)
        if isinstance(n, yaml.MappingNode):
            loader.flatten_mapping(n)  # merged keys (<<: *base) are read like the mapping's own
            for key_node, value_node in n.value:
                key_types, value_types = _mapping_child(annotations, key_node)
                keep(key_node, key_types)
                visit(value_node, value_types)
        elif isinstance(n, yaml.SequenceNode):
            item_types = [typing.get_args(a)[0] for a in _leaves(annotations) if typing.get_origin(a) is list]
            for item in n.value:
                visit(item, item_types)

    visit(root, [model])
    return out


def _leaves(annotations: list[Any]) -> list[Any]:
    return [leaf for a in annotations for leaf in _unwrap(a)]


def _is_text(annotations: list[Any]) -> bool:
    leaves = _leaves(annotations)
    return str in leaves and all(leaf in (str, type(None)) for leaf in leaves)


def _mapping_child(annotations: list[Any], key_node: yaml.Node) -> tuple[list[Any], list[Any]]:
    """(annotations of the key, annotations of the value) of one entry of a mapping."""
    key_types: list[Any] = []
    value_types: list[Any] = []
    for a in _leaves(annotations):
        if isinstance(a, type) and issubclass(a, BaseModel):
            name = key_node.value if isinstance(key_node, yaml.ScalarNode) else None
            if name in a.model_fields:
                value_types.append(a.model_fields[name].annotation)
        elif typing.get_origin(a) is dict:
            key_type, value_type = typing.get_args(a)
            key_types.append(key_type)
            value_types.append(value_type)
    return key_types, value_types


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
    if "datafast" not in data and {"spec_hash", "spec", "format"} <= set(data):
        raise SpecError([lines.issue((), "this is a compiled manifest.json, not a spec: give the spec file, or the "
                                         "output dir it is in to submit, status, collect or plan")])
    if "datafast" not in data:
        raise SpecError([lines.issue((), f"required key 'datafast' missing; add 'datafast: {SPEC_FORMAT_VERSION}'")])
    if type(data["datafast"]) is not int or data["datafast"] != SPEC_FORMAT_VERSION:
        raise SpecError([lines.issue(("datafast",), f"unsupported spec format version {data['datafast']!r}; "
                                     f"this datafast reads version {SPEC_FORMAT_VERSION}")])
    kind = data.get("type")
    if kind is None:
        raise SpecError([lines.issue((), f"required key 'type' missing; one of: {', '.join(CONFIG_BY_TYPE)}")])
    if not isinstance(kind, str) or kind not in CONFIG_BY_TYPE:
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
    shape = _shape_hint(kind, err.get("input"), path)
    if shape:
        return shape
    msg = err["msg"]
    if kind == "string_type" and err.get("input", "") is None:
        return "no text: YAML reads an empty value, ~ and null as null; write the text (quote it: '~')"
    if kind == "string_type" and not isinstance(err.get("input"), (list, dict)):
        return f"{msg[0].lower()}{msg[1:]}; quote it to keep it as written"
    if msg.startswith("Value error, "):
        msg = msg[len("Value error, "):]
    if kind == "literal_error" and path and path[-1] == "type":
        msg = f"unknown dataset type; {msg[0].lower()}{msg[1:]}"
    return msg[0].lower() + msg[1:] if msg else msg


# names for the example of `languages: [en, de]` -> `languages: {en: English, de: German}`
_LANGUAGE_NAMES = {"ar": "Arabic", "de": "German", "en": "English", "es": "Spanish", "fr": "French", "hi": "Hindi",
                   "it": "Italian", "ja": "Japanese", "ko": "Korean", "nl": "Dutch", "pl": "Polish",
                   "pt": "Portuguese", "ru": "Russian", "sv": "Swedish", "tr": "Turkish", "zh": "Chinese"}


def _shape_hint(kind: str, value: Any, path: Path_) -> str | None:
    """The expected form of a YAML mapping/list mix-up, written with the user's own values.

    `models: [openai: gpt-4.1-mini]`: a space after the colon makes YAML read a mapping {openai: gpt-4.1-mini}
    where a 'runtime:model' string is expected. `languages: [en, de]`: a list where a mapping is expected.
    """
    if path and path[0] == "models":
        pairs = _model_pairs(value, kind, path)
        if pairs:
            names = ", ".join(f"{runtime}:{model}" for runtime, model in pairs)
            written = ", ".join(f"{runtime}: {model}" for runtime, model in pairs)
            key = f"{path[1]}" if len(path) > 2 or (len(path) == 2 and isinstance(path[1], str)
                                                   and path[1] not in KNOWN_RUNTIMES) else "models"
            return (f"YAML reads '{written}' as a mapping (a space after the colon); a model is one "
                    f"'runtime:model' word: write `{key}: [{names}]` (no space after the colon), or quote it: "
                    f"'{names.split(', ')[0]}'")
    if kind == "dict_type" and isinstance(value, list):
        if path == ("languages",):
            entries: dict[str, str] = {}
            for item in value:
                if isinstance(item, dict):
                    entries.update({str(k): str(v) for k, v in item.items()})
                elif isinstance(item, (str, int)) and str(item):
                    entries[str(item)] = _LANGUAGE_NAMES.get(str(item).lower(), "<language name>")
            example = ", ".join(f"{code}: {name}" for code, name in entries.items()) or "en: English"
            return f"a mapping of language code to name is expected, not a list: write `languages: {{{example}}}`"
        key = str(path[-1]) if path else "this key"
        return f"a mapping is expected here, not a list: write `{key}: {{key: value, ...}}`"
    return None


def _model_pairs(value: Any, kind: str, path: Path_) -> list[tuple[str, str]]:
    """(runtime, model) pairs of a model written with a space after its colon, as YAML parsed it."""
    if kind == "string_type" and isinstance(value, dict):
        mapping = value  # an item of a models list: `- openai: gpt-4.1-mini` or `[openai: gpt-4.1-mini]`
    elif kind == "list_type" and isinstance(value, dict) and path == ("models",):
        mapping = value  # the whole list written as a block mapping `models:\n  openai: gpt-4.1-mini`
    elif kind == "list_type" and isinstance(value, (str, int, float)) and len(path) == 2 and path[1] in KNOWN_RUNTIMES:
        mapping = {path[1]: value}  # a multi-stage `models: {openai: gpt-4.1-mini}` read as a role 'openai'
    else:
        return []
    if not mapping or not all(isinstance(k, str) and isinstance(v, (str, int, float)) and not isinstance(v, bool)
                              for k, v in mapping.items()):
        return []
    return [(k, str(v)) for k, v in mapping.items()]


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
