"""datafast: synthetic text datasets from LLMs at batch prices, from a reproducible request manifest.

Example:
    >>> import datafast
    >>> spec = datafast.ClassificationDatasetConfig(
    ...     name="sentiment",
    ...     classes=[{"name": "positive", "description": "Happy customer reviews"},
    ...              {"name": "negative", "description": "Unhappy customer reviews"}],
    ...     models=["openai:gpt-4.1-mini"])
    >>> datafast.plan(spec)["counts"]["requests"]
    2
"""

from __future__ import annotations

import os as _os

_here = _os.path.dirname(__file__)
if not _os.path.isdir(_os.path.join(_here, "compiler")) and _os.path.isfile(
        _os.path.join(_here, "..", "compiler", "__init__.py")):
    # imported from a source checkout (e.g. python run in the repository root next to an installed copy):
    # compiler/ and runtimes/ sit beside datafast/ there, as the installed package maps them
    __path__.append(_os.path.dirname(_here))

from datafast.compiler import __version__
from datafast.compiler.errors import SpecError
from datafast.compiler.spec import (
    ClassificationDatasetConfig,
    GenerationConfig,
    GenericPipelineDatasetConfig,
    MCQDatasetConfig,
    PreferenceDatasetConfig,
    PromptExpansionConfig,
    RawDatasetConfig,
    SourceConfig,
    UltrachatDatasetConfig,
)

from .api import cancel, collect, compile, plan, run, status, submit
from .logs import configure_logger

__all__ = [
    "__version__",
    "ClassificationDatasetConfig",
    "GenerationConfig",
    "GenericPipelineDatasetConfig",
    "MCQDatasetConfig",
    "PreferenceDatasetConfig",
    "PromptExpansionConfig",
    "RawDatasetConfig",
    "SourceConfig",
    "SpecError",
    "UltrachatDatasetConfig",
    "cancel",
    "collect",
    "compile",
    "configure_logger",
    "plan",
    "run",
    "status",
    "submit",
]
