"""Stage graphs of every dataset type: `stages_for(spec)`, the prompt rules and the final-row assemblers."""

from __future__ import annotations

from ..spec import DatasetConfigBase, GenericPipelineDatasetConfig
from . import classification, conversation, generic, mcq, preference, text
from .base import (
    Assembler,
    Assembly,
    BasePrompt,
    BuildContext,
    PromptRules,
    Row,
    Stage,
    StageOutcomes,
    StagePrompt,
    single_stage_assembly,
)

_MODULES = {
    "classification": classification,
    "text": text,
    "conversation": conversation,
    "mcq": mcq,
    "preference": preference,
    "generic": generic,
}

_ASSEMBLERS: dict[str, Assembler] = {
    "conversation": conversation.assemble,
    "mcq": mcq.assemble,
    "preference": preference.assemble,
}


def stages_for(spec: DatasetConfigBase) -> list[Stage]:
    """The stages of the spec's type, first stage first; a stage only reads stages listed before it."""
    return _MODULES[spec.type].stages(spec)  # type: ignore[attr-defined, no-any-return]


def prompt_rules(spec: DatasetConfigBase) -> PromptRules:
    """Placeholders a custom prompt (the `prompts` key, first stage) must and may use."""
    if isinstance(spec, GenericPipelineDatasetConfig):
        return generic.rules(spec)
    return _MODULES[spec.type].RULES  # type: ignore[attr-defined, no-any-return]


def stage_prompts(spec: DatasetConfigBase) -> tuple[StagePrompt, ...]:
    """The later-stage prompts of the spec's type that the spec may replace (each its own key)."""
    return getattr(_MODULES[spec.type], "STAGE_PROMPTS", ())


def assembler_for(spec: DatasetConfigBase) -> Assembler:
    """The function that turns the rows of every stage into the final dataset rows of the spec's type.

    Single-stage types get their one stage's rows unchanged. `outcomes` must name every stage of
    `stages_for(spec)`; a stage not compiled yet is `StageOutcomes()` (no rows, not complete).

    Example:
        assemble = assembler_for(spec)
        final = assemble(spec, {stage.name: outcomes[stage.name] for stage in stages_for(spec)})
        # final.items == len(final.rows) + len(final.rejects) + final.pending
    """
    return _ASSEMBLERS.get(spec.type, single_stage_assembly)


__all__ = [
    "Assembler",
    "Assembly",
    "BasePrompt",
    "BuildContext",
    "PromptRules",
    "Row",
    "Stage",
    "StageOutcomes",
    "StagePrompt",
    "assembler_for",
    "prompt_rules",
    "stage_prompts",
    "stages_for",
]
