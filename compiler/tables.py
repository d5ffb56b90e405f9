"""Reading a user's override of a dated data table (prices, quotas, capabilities): one YAML/JSON file whose
`models` entry has the table's shape; problems are SpecErrors naming the file, the line and the field."""

from __future__ import annotations

import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import SpecError

if TYPE_CHECKING:
    from .loader import LineMap


def read_table(path: Path, what: str, models_type: type, shape: str) -> dict[str, Any]:
    """The mapping in `path` (YAML or JSON), whose `models` (if present) is a `models_type`.

    Args:
        what: the table's name in messages ("price table (--prices)").
        shape: the expected form, shown when the file is not such a mapping.
    """
    return read_located_table(path, what, models_type, shape)[0]


def read_located_table(path: Path, what: str, models_type: type, shape: str) -> tuple[dict[str, Any], LineMap]:
    """`read_table`, with the line of every key (for `file:line: field: message` errors)."""
    import yaml

    from .loader import _lines_of

    try:
        loader = yaml.SafeLoader(path.read_text("utf-8"))
        try:
            node = loader.get_single_node()
            lines, issues = _lines_of(str(path), node)
            data = loader.construct_document(node) if node is not None else None
        finally:
            loader.dispose()
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise SpecError.single(str(path), None, "", f"cannot read {what}: {exc}") from None
    if issues:  # a key given twice: the second would silently win
        raise SpecError(issues)
    if not isinstance(data, dict) or not isinstance(data.get("models", models_type()), models_type):
        raise SpecError([lines.issue(("models",) if isinstance(data, dict) else (),
                                     f"a {what.split(' (')[0]} is a mapping with {shape}")])
    if isinstance(data.get("checked"), datetime.date):  # YAML reads an unquoted 2026-11-01 as a date
        data["checked"] = data["checked"].isoformat()
    return data, lines
