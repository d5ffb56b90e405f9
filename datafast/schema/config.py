"""The original datafast's import path for the dataset configs: the spec models of `datafast.compiler.spec`.

Built in Python they take the original fields; `name` (default: from `output_file`) and `models` (default:
the providers given to `generate()`) may be left out, while a YAML spec must give both.

Example:
    >>> from datafast.schema.config import ClassificationDatasetConfig
    >>> config = ClassificationDatasetConfig(
    ...     classes=[{"name": "positive", "description": "Happy reviews"}], output_file="reviews.jsonl")
    >>> config.name
    'reviews'
"""

from __future__ import annotations

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

__all__ = [
    "ClassificationDatasetConfig",
    "GenerationConfig",
    "GenericPipelineDatasetConfig",
    "MCQDatasetConfig",
    "PreferenceDatasetConfig",
    "PromptExpansionConfig",
    "RawDatasetConfig",
    "SourceConfig",
    "UltrachatDatasetConfig",
]
