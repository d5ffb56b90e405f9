"""conversation (UltraChat style): questions -> persona rewrite -> assistant-1 -> user-2 -> assistant-2 -> ...

A conversation keeps one model per role, drawn from the role's list by a hash of the conversation id, so that
each conversation is one thread rather than a tree. After assistant turn k < max_turns it continues with
probability `conversation_continuation_prob`, decided by a hash of (seed, conversation id, k).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from ..hashing import stable_int, stable_unit
from ..spec import UltrachatDatasetConfig
from ..templates import literal, parse_template
from .base import (
    BasePrompt,
    BuildContext,
    PromptRules,
    Row,
    Stage,
    items_rows,
    items_schema,
    language_name,
    object_schema,
    prompt_templates,
    provenance,
    string_field,
    system_message,
)

DEFAULT_PROMPTS = (
    "We are building a dataset of conversations between users and an AI assistant about {domain}. Write "
    "{num_samples} diverse opening questions or requests, in {language_name}, that a user might bring to the "
    "assistant on the topic '{topic}', subtopic '{subtopic}'. Make them specific and self-contained, from "
    "simple to demanding.",
)

PERSONA_PROMPT = parse_template(
    "Rewrite this question as it would be asked by the following person, keeping its meaning and its "
    "language ({language_name}); adapt tone, vocabulary and details to the person.\n\nPerson: {persona}\n\n"
    "Question: {question}"
)
ASSISTANT_SYSTEM = parse_template(
    "You are a knowledgeable, helpful AI assistant. Answer in {language_name}, clearly and accurately. "
    "Put your whole reply in the JSON field \"response\"."
)
USER_SYSTEM = parse_template(
    "You play the user in a conversation with an AI assistant. You are: {persona}. Write the user's next "
    "message in {language_name}: a natural follow-up (a clarification, a deeper question, a related request "
    "or a reaction), in the persona's voice. Put it in the JSON field \"message\"."
)
USER_PROMPT = parse_template("The conversation so far:\n\n{transcript}\n\nWrite the user's next message.")

RULES = PromptRules(
    mandatory=frozenset({"num_samples", "language_name", "topic", "subtopic"}),
    allowed=frozenset({"num_samples", "language_name", "language_code", "topic", "subtopic", "domain"}),
)

QUESTIONS_SCHEMA = items_schema({"question": string_field("An opening question or request.")})
OPENING_SCHEMA = object_schema({"question": string_field("The question as the person would ask it.")})
ASSISTANT_SCHEMA = object_schema({"response": string_field("The assistant's reply.")})
USER_SCHEMA = object_schema({"message": string_field("The user's next message.")})


def _pick(spec: UltrachatDatasetConfig, role: str, conversation: str) -> tuple[str, ...]:
    models = spec.models_for(role)
    return (models[stable_int(spec.expansion.seed, "model", role, conversation) % len(models)],)


def continues(spec: UltrachatDatasetConfig, conversation: str, turn: int) -> bool:
    """Whether the conversation gets a user turn after assistant turn `turn`."""
    if turn >= spec.max_turns:
        return False
    return stable_unit(spec.expansion.seed, "continue", conversation, turn) < spec.conversation_continuation_prob


def _build_questions(spec: UltrachatDatasetConfig, ctx: BuildContext, inputs: Mapping[str, Iterable[Row]]) -> Iterator[BasePrompt]:
    templates = prompt_templates(spec, DEFAULT_PROMPTS)
    system = system_message(QUESTIONS_SCHEMA, spec.system_prompt)
    models = tuple(spec.models_for("questions"))
    for topic, subtopics in spec.topics_and_subtopics.items():
        for subtopic in subtopics:
            for code, language in spec.languages.items():
                for t, template in enumerate(templates):
                    filled = template.fill({
                        "num_samples": str(spec.num_samples_per_prompt),
                        "language_name": language,
                        "language_code": code,
                        "domain": spec.domain,
                        "topic": topic,
                        "subtopic": subtopic,
                    })
                    meta = {"topic": topic, "subtopic": subtopic, "language": code, "template": t}
                    yield BasePrompt(system, filled, meta, f"{t}\x1f{topic}\x1f{subtopic}\x1f{code}", models)


def _build_opening(spec: UltrachatDatasetConfig, ctx: BuildContext, inputs: Mapping[str, Iterable[Row]]) -> Iterator[BasePrompt]:
    rows = list(inputs["questions"])
    if spec.num_samples is not None:  # keep the same subset whatever order rows arrive in
        keep = sorted(rows, key=lambda r: stable_int(spec.expansion.seed, "keep", r["row_id"]))[: spec.num_samples]
        kept = {r["row_id"] for r in keep}
        rows = [r for r in rows if r["row_id"] in kept]
    system = system_message(OPENING_SCHEMA)
    for row in rows:
        conversation = row["row_id"]
        persona = spec.personas[stable_int(spec.expansion.seed, "persona", conversation) % len(spec.personas)]
        filled = PERSONA_PROMPT.fill({
            "language_name": language_name(spec, row["language"]),
            "persona": persona,
            "question": row["question"],
        })
        meta = {"conversation": conversation, "persona": persona, "language": row["language"],
                "topic": row["topic"], "subtopic": row["subtopic"], "parent": row["row_id"]}
        yield BasePrompt(system, filled, meta, conversation, _pick(spec, "questions", conversation), expand=False)


def _turn_meta(row: Row, messages: list[dict[str, str]]) -> dict[str, Any]:
    meta = {k: row[k] for k in ("conversation", "persona", "language", "topic", "subtopic")}
    return {**meta, "messages": messages, "parent": row["row_id"]}


def _assistant_builder(source: str) -> Any:
    def build(spec: UltrachatDatasetConfig, ctx: BuildContext, inputs: Mapping[str, Iterable[Row]]) -> Iterator[BasePrompt]:
        for row in inputs[source]:
            messages = row["messages"]
            language = language_name(spec, row["language"])
            system = ASSISTANT_SYSTEM.fill({"language_name": language}).render({})
            yield BasePrompt(system, literal(messages[-1]["content"]), _turn_meta(row, messages),
                             row["conversation"], _pick(spec, "assistant", row["conversation"]),
                             expand=False, history=tuple(messages[:-1]))

    return build


def _user_builder(turn: int) -> Any:
    def build(spec: UltrachatDatasetConfig, ctx: BuildContext, inputs: Mapping[str, Iterable[Row]]) -> Iterator[BasePrompt]:
        for row in inputs[f"assistant-{turn - 1}"]:
            if not continues(spec, row["conversation"], turn - 1):
                continue
            messages = row["messages"]
            language = language_name(spec, row["language"])
            system = USER_SYSTEM.fill({"language_name": language, "persona": row["persona"]}).render({})
            transcript = "\n\n".join(f"{m['role'].upper()}: {m['content']}" for m in messages)
            yield BasePrompt(system, USER_PROMPT.fill({"transcript": transcript}), _turn_meta(row, messages),
                             row["conversation"], _pick(spec, "user", row["conversation"]), expand=False)

    return build


def _question_rows(spec: Any, request: Mapping[str, Any], answer: Mapping[str, Any]) -> list[Row]:
    return items_rows(request, answer, ["question"])


def _opening_rows(spec: Any, request: Mapping[str, Any], answer: Mapping[str, Any]) -> list[Row]:
    row = provenance(request, f"{request['id']}-0")
    row["messages"] = [{"role": "user", "content": answer["question"]}]
    return [row]


def _appender(role: str, field: str) -> Any:
    def rows(spec: Any, request: Mapping[str, Any], answer: Mapping[str, Any]) -> list[Row]:
        row = provenance(request, f"{request['id']}-0")
        row["messages"] = [*request["meta"]["messages"], {"role": role, "content": answer[field]}]
        return [row]

    return rows


def stages(spec: UltrachatDatasetConfig) -> list[Stage]:
    out = [
        Stage("questions", "questions", (), QUESTIONS_SCHEMA, _build_questions, _question_rows),
        Stage("opening", "questions", ("questions",), OPENING_SCHEMA, _build_opening, _opening_rows),
        Stage("assistant-1", "assistant", ("opening",), ASSISTANT_SCHEMA, _assistant_builder("opening"),
              _appender("assistant", "response")),
    ]
    for turn in range(2, spec.max_turns + 1):
        out.append(Stage(f"user-{turn}", "user", (f"assistant-{turn - 1}",), USER_SCHEMA, _user_builder(turn),
                         _appender("user", "message")))
        out.append(Stage(f"assistant-{turn}", "assistant", (f"user-{turn}",), ASSISTANT_SCHEMA,
                         _assistant_builder(f"user-{turn}"), _appender("assistant", "response")))
    return out
