"""Reading a user's override of a dated data table (prices, quotas, capabilities): one YAML/JSON file whose
`models` entry has the table's shape; problems are SpecErrors naming the file and field."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .errors import SpecError


def read_table(path: Path, what: str, models_type: type, shape: str) -> dict[str, Any]:
    """The mapping in `path` (YAML or JSON), whose `models` (if present) is a `models_type`.

    Args:
        what: the table's name in messages ("price table (--prices)").
        shape: the expected form, shown when the file is not such a mapping.
    """
    import yaml

    try:
        data = yaml.safe_load(path.read_text("utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise SpecError.single(str(path), None, "", f"cannot read {what}: {exc}") from None
    if not isinstance(data, dict) or not isinstance(data.get("models", models_type()), models_type):
        raise SpecError.single(str(path), None, "models", f"a {what.split(' (')[0]} is a mapping with {shape}")
    return data
