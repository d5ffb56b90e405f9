"""Stage graphs of every dataset type: `stages_for(spec)` and the first-stage prompt rules."""

from __future__ import annotations

from ..spec import DatasetConfigBase, GenericPipelineDatasetConfig
from . import classification, conversation, generic, mcq, preference, text
from .base import BasePrompt, BuildContext, PromptRules, Row, Stage

_MODULES = {
    "classification": classification,
    "text": text,
    "conversation": conversation,
    "mcq": mcq,
    "preference": preference,
    "generic": generic,
}


def stages_for(spec: DatasetConfigBase) -> list[Stage]:
    """The stages of the spec's type, first stage first; a stage only reads stages listed before it."""
    return _MODULES[spec.type].stages(spec)  # type: ignore[attr-defined, no-any-return]


def prompt_rules(spec: DatasetConfigBase) -> PromptRules:
    """Placeholders a custom prompt (the `prompts` key, first stage) must and may use."""
    if isinstance(spec, GenericPipelineDatasetConfig):
        return generic.rules(spec)
    return _MODULES[spec.type].RULES  # type: ignore[attr-defined, no-any-return]


__all__ = ["BasePrompt", "BuildContext", "PromptRules", "Row", "Stage", "stages_for", "prompt_rules"]
