"""Deterministic, schema-valid answers for the emulators.

``instance(schema, request_id)`` builds a JSON value that validates against ``schema`` (JSON Schema as carried
by the request), seeded by the request id only: the same id and schema give the same value on any machine.
``respond(...)`` wraps it into an :class:`Answer` (text, finish reason, token counts) and applies the answer-level
faults (invalid JSON, truncation, refusal) and the request's own max-tokens limit.
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import jsonschema

MAX_DEPTH = 6  # past this depth only required members and minimum sizes are generated
HARD_DEPTH = 40  # recursion guard for self-referencing schemas
ATTEMPTS = 8  # re-seeded attempts when a draw does not validate (oneOf, uniqueItems, ...)
REFUSAL_TEXT = "I'm sorry, but I can't help with that request."


class _Rng:
    """Counter-mode SHA-256 generator: stable across Python versions and PYTHONHASHSEED."""

    def __init__(self, seed: str) -> None:
        self._seed = seed
        self._n = 0

    def bits(self) -> int:
        self._n += 1
        digest = hashlib.sha256(f"{self._seed}|{self._n}".encode()).digest()
        return int.from_bytes(digest[:8], "big")

    def random(self) -> float:
        return self.bits() / 2**64

    def randint(self, lo: int, hi: int) -> int:
        return lo if hi <= lo else lo + self.bits() % (hi - lo + 1)

    def choice(self, seq: list[Any]) -> Any:
        return seq[self.randint(0, len(seq) - 1)]


def tokens(text: str) -> int:
    """Rough token count (4 characters a token), never below 1."""
    return max(1, (len(text) + 3) // 4)


def request_key(body: Any) -> str:
    """Id of an online request that carries none: a hash of its canonical JSON body."""
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return "req-" + hashlib.sha256(canonical.encode()).hexdigest()[:24]


def normalize_openapi(schema: Any) -> Any:
    """Gemini ``responseSchema`` (OpenAPI subset: upper-case types, ``nullable``) -> plain JSON Schema."""
    if isinstance(schema, list):
        return [normalize_openapi(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out = {k: normalize_openapi(v) for k, v in schema.items() if k not in ("nullable", "propertyOrdering")}
    if isinstance(out.get("type"), str):
        out["type"] = out["type"].lower()
    if out.get("format") == "enum":
        out.pop("format")
    if schema.get("nullable") is True:
        if isinstance(out.get("type"), str):
            out["type"] = [out["type"], "null"]
        if "enum" in out:
            out["enum"] = [*out["enum"], None]
    return out


# ----------------------------------------------------------------------------------------------- generation
class _Unsatisfiable(Exception):
    pass


class _Gen:
    def __init__(self, root: Any, seed: str, label: str) -> None:
        self.root = root
        self.rng = _Rng(seed)
        self.label = label
        self.count = 0

    def resolve(self, ref: str) -> Any:
        if not ref.startswith("#"):
            raise _Unsatisfiable(f"remote $ref not supported: {ref}")
        node = self.root
        for part in ref[1:].lstrip("/").split("/") if ref != "#" else []:
            part = part.replace("~1", "/").replace("~0", "~")
            node = node[int(part)] if isinstance(node, list) else node[part]
        return node

    def gen(self, s: Any, depth: int = 0, name: str = "text") -> Any:
        if depth > HARD_DEPTH:
            raise _Unsatisfiable("schema recursion too deep")
        if s is True or s is None or s == {}:
            return self.text({}, name)
        if s is False:
            raise _Unsatisfiable("false schema")
        if "$ref" in s:
            rest = {k: v for k, v in s.items() if k != "$ref"}
            return self.gen({**self.resolve(s["$ref"]), **rest}, depth + 1, name)
        if "const" in s:
            return copy.deepcopy(s["const"])
        if "enum" in s:
            return copy.deepcopy(self.rng.choice(list(s["enum"])))
        if "allOf" in s:
            merged = {k: v for k, v in s.items() if k != "allOf"}
            for sub in s["allOf"]:
                merged = _merge(merged, self.resolve(sub["$ref"]) if "$ref" in sub else sub)
            return self.gen(merged, depth + 1, name)
        for key in ("anyOf", "oneOf"):
            if key in s:
                rest = {k: v for k, v in s.items() if k != key}
                branches = list(s[key])
                if depth >= MAX_DEPTH:  # prefer a branch that cannot recurse
                    simple = [b for b in branches if "$ref" not in json.dumps(b)]
                    branches = simple or branches
                return self.gen({**rest, **self.rng.choice(branches)}, depth + 1, name)
        kind = s.get("type")
        if isinstance(kind, list):
            options = [t for t in kind if t != "null"] or ["null"]
            if "null" in kind and (depth >= MAX_DEPTH or self.rng.random() < 0.15):
                return None
            kind = self.rng.choice(options)
        if kind is None:
            kind = _infer_type(s)
        method = getattr(self, "g_" + str(kind), None)
        if method is None:
            raise _Unsatisfiable(f"unknown type {kind!r}")
        return method(s, depth, name)

    def g_object(self, s: dict[str, Any], depth: int, name: str) -> Any:
        props = s.get("properties") or {}
        required = list(s.get("required") or [])
        extra = s.get("additionalProperties", True)
        out: dict[str, Any] = {}
        for key, sub in props.items():
            if key in required or (depth < MAX_DEPTH and self.rng.random() < 0.75):
                out[key] = self.gen(sub, depth + 1, key)
        for key in required:
            if key not in out:
                out[key] = self.gen(extra if isinstance(extra, dict) else {}, depth + 1, key)
        max_props = s.get("maxProperties")
        if max_props is not None:
            for key in [k for k in list(out) if k not in required][: max(0, len(out) - max_props)]:
                del out[key]
        need = s.get("minProperties", 0) - len(out)
        spare = [k for k in props if k not in out]
        while need > 0 and spare:
            key = spare.pop(0)
            out[key] = self.gen(props[key], depth + 1, key)
            need -= 1
        for i in range(need if extra is not False else 0):
            out[f"extra_{i + 1}"] = self.gen(extra if isinstance(extra, dict) else {}, depth + 1, "extra")
        return out

    def g_array(self, s: dict[str, Any], depth: int, name: str) -> Any:
        lo = int(s.get("minItems", 0))
        hi = int(s.get("maxItems", lo + 3))
        count = lo if depth >= MAX_DEPTH else self.rng.randint(min(max(lo, 1), hi), min(hi, max(lo, 1) + 2))
        prefix: list[Any] = s.get("prefixItems") or (s["items"] if isinstance(s.get("items"), list) else [])
        items = s.get("items") if isinstance(s.get("items"), dict) else s.get("additionalItems", {})
        out: list[Any] = []
        seen: set[str] = set()
        for i in range(count):
            sub = prefix[i] if i < len(prefix) else items
            for _ in range(ATTEMPTS):
                value = self.gen(sub, depth + 1, _singular(name))
                key = json.dumps(value, sort_keys=True)
                if not s.get("uniqueItems") or key not in seen:
                    break
            else:
                if len(out) >= lo:
                    break
            seen.add(key)
            out.append(value)
        return out

    def text(self, s: dict[str, Any], name: str) -> str:
        self.count += 1
        n = self.count
        fmt = s.get("format")
        digest = hashlib.sha256(f"{self.label}|{n}".encode()).hexdigest()
        day = 1 + n % 28
        formats = {
            "date-time": f"2024-05-{day:02d}T{n % 24:02d}:{n * 7 % 60:02d}:00Z",
            "date": f"2024-05-{day:02d}",
            "time": f"{n % 24:02d}:{n * 7 % 60:02d}:00Z",
            "email": f"user{n}@example.com",
            "uuid": f"{digest[:8]}-{digest[8:12]}-4{digest[13:16]}-a{digest[17:20]}-{digest[20:32]}",
            "uri": f"https://example.com/{name.replace(' ', '-')}/{n}",
            "hostname": f"host{n}.example.com",
            "ipv4": f"192.0.2.{n % 250 + 1}",
            "ipv6": f"2001:db8::{n:x}",
            "duration": f"P{n}D",
        }
        value = formats.get(fmt) if isinstance(fmt, str) else None
        if value is None:
            label = name.replace("_", " ").strip() or "text"
            value = f"Sample {label} {n} for {self.label}"
        lo, hi = int(s.get("minLength", 0)), s.get("maxLength")
        if len(value) < lo:
            filler = " lorem ipsum dolor sit amet"
            value = (value + filler * (1 + (lo - len(value)) // len(filler)))[:lo]
        if hi is not None and len(value) > int(hi):
            value = value[: int(hi)]
        return value

    def g_string(self, s: dict[str, Any], depth: int, name: str) -> Any:
        return self.text(s, name)

    def g_integer(self, s: dict[str, Any], depth: int, name: str) -> Any:
        lo, hi = _bounds(s, integer=True)
        step = s.get("multipleOf")
        if isinstance(step, (int, float)) and step > 0:
            k_lo, k_hi = math.ceil(lo / step), math.floor(hi / step)
            if k_lo > k_hi:
                raise _Unsatisfiable("no multiple in range")
            value = self.rng.randint(k_lo, k_hi) * step
            return int(value) if float(value).is_integer() else value
        return self.rng.randint(int(lo), int(hi))

    def g_number(self, s: dict[str, Any], depth: int, name: str) -> Any:
        if isinstance(s.get("multipleOf"), (int, float)):
            return self.g_integer(s, depth, name)
        lo, hi = _bounds(s, integer=False)
        value = round(lo + (hi - lo) * self.rng.random(), 2)
        if not lo <= value <= hi or value in (s.get("exclusiveMinimum"), s.get("exclusiveMaximum")):
            value = (lo + hi) / 2
        return value

    def g_boolean(self, s: dict[str, Any], depth: int, name: str) -> Any:
        return self.rng.random() < 0.5

    def g_null(self, s: dict[str, Any], depth: int, name: str) -> Any:
        return None


def _singular(name: str) -> str:
    return name[:-1] if name.endswith("s") and len(name) > 3 else name


def _infer_type(s: dict[str, Any]) -> str:
    if {"properties", "required", "additionalProperties", "minProperties"} & s.keys():
        return "object"
    if {"items", "prefixItems", "minItems", "maxItems"} & s.keys():
        return "array"
    if {"minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf"} & s.keys():
        return "number"
    return "string"


def _bounds(s: dict[str, Any], *, integer: bool) -> tuple[float, float]:
    lo, hi = s.get("minimum"), s.get("maximum")
    ex_lo, ex_hi = s.get("exclusiveMinimum"), s.get("exclusiveMaximum")
    delta = 1 if integer else 0.01
    if isinstance(ex_lo, bool):  # draft 4 style
        ex_lo = lo if ex_lo else None
    if isinstance(ex_hi, bool):
        ex_hi = hi if ex_hi else None
    if ex_lo is not None:
        lo = max(lo, ex_lo + delta) if lo is not None else ex_lo + delta
    if ex_hi is not None:
        hi = min(hi, ex_hi - delta) if hi is not None else ex_hi - delta
    if lo is None:
        lo = 0 if hi is None or hi >= 0 else hi - 100
    if hi is None:
        hi = lo + 100
    if integer:
        lo, hi = math.ceil(lo), math.floor(hi)
    if lo > hi:
        raise _Unsatisfiable("empty numeric range")
    return lo, hi


def _merge(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    out = dict(a)
    for key, value in b.items():
        if key == "properties":
            out["properties"] = {**out.get("properties", {}), **value}
        elif key == "required":
            out["required"] = sorted(set(out.get("required", [])) | set(value))
        else:
            out.setdefault(key, value)
    return out


@lru_cache(maxsize=256)
def _validator(schema_json: str) -> jsonschema.protocols.Validator:
    schema = json.loads(schema_json)
    cls = jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator)
    return cls(schema, format_checker=cls.FORMAT_CHECKER)


def is_valid(schema: Any, value: Any) -> bool:
    return _validator(json.dumps(schema, sort_keys=True)).is_valid(value)


def instance(schema: Any, request_id: str) -> Any:
    """A value valid for ``schema``, deterministic for ``request_id`` (best effort after ATTEMPTS draws)."""
    value: Any = None
    for attempt in range(ATTEMPTS):
        seed = request_id if attempt == 0 else f"{request_id}#{attempt}"
        try:
            value = _Gen(schema, seed, request_id).gen(schema)
        except (_Unsatisfiable, KeyError, IndexError, TypeError, ValueError):
            continue
        if is_valid(schema, value):
            return value
    return value


def plain_text(request_id: str) -> str:
    rng = _Rng(request_id)
    topics = ["the harbour at dawn", "a small bakery", "mountain weather", "a late train", "the city library"]
    return (
        f"Sample text {rng.randint(1, 9)} for {request_id}: a short paragraph about {rng.choice(topics)}, "
        "written by the emulator so that tests have realistic prose to parse."
    )


# ------------------------------------------------------------------------------------------------ answers
@dataclass
class Answer:
    text: str  # what the model "wrote" (JSON text, prose, or a refusal)
    finish: str  # "stop" | "length" | "refusal"
    input_tokens: int
    output_tokens: int
    data: Any = None  # the structured value when the answer is complete JSON


def respond(
    request_id: str,
    *,
    schema: Any = None,
    json_mode: bool = False,
    prompt: str = "",
    max_tokens: int | None = None,
    fault: str | None = None,
) -> Answer:
    """The answer to one request. ``fault`` is one of None, invalid_json, truncated, refusal."""
    input_tokens = tokens(prompt) + 3
    if fault == "refusal":
        return Answer(REFUSAL_TEXT, "refusal", input_tokens, tokens(REFUSAL_TEXT))
    if schema is None and json_mode:
        schema = {"type": "object", "properties": {"text": {"type": "string"}}, "required": ["text"]}
    data = instance(schema, request_id) if schema is not None else None
    text = json.dumps(data, ensure_ascii=False) if schema is not None else plain_text(request_id)
    if fault == "invalid_json":
        text = text[:-1] + ',"note": }' if text.endswith("}") else "Here is the JSON you asked for:\n" + text
        return Answer(text, "stop", input_tokens, tokens(text))
    limit = max_tokens if isinstance(max_tokens, int) and max_tokens > 0 else None
    if fault == "truncated" or (limit is not None and tokens(text) > limit):
        cut = min(len(text) - 1, limit * 4) if limit is not None and tokens(text) > limit else len(text) * 3 // 5
        text = text[: max(1, cut)]
        return Answer(text, "length", input_tokens, limit or tokens(text))
    return Answer(text, "stop", input_tokens, tokens(text), data)
