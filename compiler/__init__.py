"""datafast.compiler: spec models, expansion, stage graphs, manifest and vendor job files. Pure: no network."""

from __future__ import annotations

__version__ = "0.1.0"
