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

from .api import compile, plan
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
    "compile",
    "configure_logger",
    "plan",
]
