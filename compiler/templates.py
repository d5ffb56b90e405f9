"""Prompt templates: `{x}` mandatory placeholders filled by datafast, `{{x}}` optional ones filled by expansion.

A template is parsed once into segments; rendering concatenates them, so text inserted from data (documents,
class descriptions, placeholder values) is never re-interpreted, whatever braces it contains. Braces that do
not wrap an identifier (`{"a": 1}`, `{ }`) are literal text.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property

_PLACEHOLDER = re.compile(r"\{\{([A-Za-z_][A-Za-z0-9_]*)\}\}|\{([A-Za-z_][A-Za-z0-9_]*)\}")


@dataclass(frozen=True)
class Template:
    """A parsed prompt template.

    `parts` alternates literal text and placeholder references: a reference is a tuple `(kind, name)` with kind
    `"m"` (mandatory) or `"o"` (optional).
    """

    source: str
    parts: tuple[str | tuple[str, str], ...]

    @property
    def mandatory(self) -> frozenset[str]:
        return frozenset(p[1] for p in self.parts if isinstance(p, tuple) and p[0] == "m")

    @property
    def optional(self) -> tuple[str, ...]:
        """Optional placeholder names in first-use order, without repeats."""
        seen: dict[str, None] = {}
        for p in self.parts:
            if isinstance(p, tuple) and p[0] == "o":
                seen.setdefault(p[1], None)
        return tuple(seen)

    def fill(self, mandatory: Mapping[str, str]) -> Template:
        """Substitute the mandatory placeholders given, keeping optional ones for expansion."""
        out: list[str | tuple[str, str]] = []
        for p in self.parts:
            if isinstance(p, tuple) and p[0] == "m" and p[1] in mandatory:
                p = mandatory[p[1]]
            if isinstance(p, str) and out and isinstance(out[-1], str):
                out[-1] = out[-1] + p
            else:
                out.append(p)
        return Template(self.source, tuple(out))

    def render(self, optional: Mapping[str, str]) -> str:
        """Render with every remaining placeholder filled; a missing value is a KeyError."""
        return self._format.format_map(optional)

    @cached_property
    def _format(self) -> str:
        # str.format parses only this string, never the values it inserts: data stays verbatim
        return "".join(p.replace("{", "{{").replace("}", "}}") if isinstance(p, str) else "{" + p[1] + "}"
                       for p in self.parts)


def parse_template(source: str) -> Template:
    parts: list[str | tuple[str, str]] = []
    pos = 0
    for m in _PLACEHOLDER.finditer(source):
        if m.start() > pos:
            parts.append(source[pos : m.start()])
        parts.append(("o", m.group(1)) if m.group(1) else ("m", m.group(2)))
        pos = m.end()
    if pos < len(source):
        parts.append(source[pos:])
    return Template(source, tuple(parts))


def literal(text: str) -> Template:
    """A template that is only text (a message from data): nothing in it is a placeholder."""
    return Template(text, (text,) if text else ())
