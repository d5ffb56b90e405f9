"""conversation (UltraChat style): questions -> persona rewrite -> assistant-1 -> user-2 -> assistant-2 -> ...

A conversation keeps one model per role, drawn from the role's list by a hash of the conversation id, so that
each conversation is one thread rather than a tree. After assistant turn k < max_turns it continues with
probability `conversation_continuation_prob`, decided by a hash of (seed, conversation id, k).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from ..hashing import content_hash, stable_int, stable_unit
from ..spec import UltrachatDatasetConfig
from ..templates import literal, parse_template
from .base import (
    Assembly,
    BasePrompt,
    Broken,
    BuildContext,
    PromptRules,
    Row,
    Stage,
    StageOutcomes,
    StagePrompt,
    assembly_of,
    by_parent,
    first_stage_extras,
    items_rows,
    items_schema,
    language_name,
    next_link,
    object_schema,
    pick_model,
    prompt_templates,
    provenance,
    row_order,
    string_field,
    system_message,
)

DEFAULT_PROMPTS = (
    "We are building a dataset of conversations between users and an AI assistant about {domain}. Write "
    "{num_samples} diverse opening questions or requests, in {language_name}, that a user might bring to the "
    "assistant on the topic '{topic}', subtopic '{subtopic}'. Make them specific and self-contained, from "
    "simple to demanding.",
)

_CONTEXT = frozenset({"language_name", "language_code", "domain", "topic", "subtopic"})
PERSONA_PROMPT = StagePrompt("persona_question_reformulation_prompt", parse_template(
    "Rewrite this question as it would be asked by the following person, keeping its meaning and its "
    "language ({language_name}); adapt tone, vocabulary and details to the person.\n\nPerson: {persona}\n\n"
    "Question: {question}"
), PromptRules(mandatory=frozenset({"question", "persona"}), allowed=_CONTEXT | {"question", "persona"}))
ASSISTANT_SYSTEM = StagePrompt("simulated_assistant_prompt", parse_template(
    "You are a knowledgeable, helpful AI assistant. Answer in {language_name}, clearly and accurately. "
    "Put your whole reply in the JSON field \"response\"."
), PromptRules(mandatory=frozenset(), allowed=_CONTEXT))
USER_SYSTEM = StagePrompt("user_system_prompt", parse_template(
    "You play the user in a conversation with an AI assistant. You are: {persona}. Write the user's next "
    "message in {language_name}: a natural follow-up (a clarification, a deeper question, a related request "
    "or a reaction), in the persona's voice. Put it in the JSON field \"message\"."
), PromptRules(mandatory=frozenset({"persona"}), allowed=_CONTEXT | {"persona"}))
USER_PROMPT = StagePrompt("user_followup_prompt", parse_template(
    "The conversation so far:\n\n{transcript}\n\nWrite the user's next message."
), PromptRules(mandatory=frozenset({"transcript"}), allowed=_CONTEXT | {"transcript", "persona"}))
STAGE_PROMPTS = (PERSONA_PROMPT, ASSISTANT_SYSTEM, USER_SYSTEM, USER_PROMPT)

RULES = PromptRules(
    mandatory=frozenset({"num_samples", "language_name", "topic", "subtopic"}),
    allowed=frozenset({"num_samples", "language_name", "language_code", "topic", "subtopic", "domain"}),
)

QUESTIONS_SCHEMA = items_schema({"question": string_field("An opening question or request.")})
OPENING_SCHEMA = object_schema({"question": string_field("The question as the person would ask it.")})
ASSISTANT_SCHEMA = object_schema({"response": string_field("The assistant's reply.")})
USER_SCHEMA = object_schema({"message": string_field("The user's next message.")})


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


def selected_questions(spec: UltrachatDatasetConfig, questions: Iterable[Row]) -> list[Row]:
    """The question rows that start a conversation: all, or `num_samples` of them drawn by hash of their id
    (the same subset whatever order the rows arrive in), in the order given."""
    rows = list(questions)
    if spec.num_samples is not None:
        keep = sorted(rows, key=lambda r: stable_int(spec.expansion.seed, "keep", r["row_id"]))[: spec.num_samples]
        kept = {r["row_id"] for r in keep}
        rows = [r for r in rows if r["row_id"] in kept]
    return rows


def _context(spec: UltrachatDatasetConfig, row: Row) -> dict[str, str]:
    """What every later-stage prompt may use about a conversation."""
    return {"language_name": language_name(spec, row["language"]), "language_code": row["language"],
            "domain": spec.domain, "topic": row["topic"], "subtopic": row["subtopic"]}


def _build_opening(spec: UltrachatDatasetConfig, ctx: BuildContext, inputs: Mapping[str, Iterable[Row]]) -> Iterator[BasePrompt]:
    system = system_message(OPENING_SCHEMA)
    template = PERSONA_PROMPT.template(spec)
    for row in selected_questions(spec, inputs["questions"]):
        conversation = row["row_id"]
        persona = spec.personas[stable_int(spec.expansion.seed, "persona", conversation) % len(spec.personas)]
        filled = template.fill({**_context(spec, row), "persona": persona, "question": row["question"]})
        meta = {"conversation": conversation, "persona": persona, "language": row["language"],
                "topic": row["topic"], "subtopic": row["subtopic"], "parent": row["row_id"]}
        yield BasePrompt(system, filled, meta, conversation, pick_model(spec, "questions", conversation),
                         expand=False)


def _turn_meta(row: Row, messages: list[dict[str, str]]) -> dict[str, Any]:
    meta = {k: row[k] for k in ("conversation", "persona", "language", "topic", "subtopic")}
    return {**meta, "messages": messages, "parent": row["row_id"]}


def _assistant_builder(source: str) -> Any:
    def build(spec: UltrachatDatasetConfig, ctx: BuildContext, inputs: Mapping[str, Iterable[Row]]) -> Iterator[BasePrompt]:
        template = ASSISTANT_SYSTEM.template(spec)
        for row in inputs[source]:
            messages = row["messages"]
            system = template.fill(_context(spec, row)).render({})
            yield BasePrompt(system, literal(messages[-1]["content"]), _turn_meta(row, messages),
                             row["conversation"], pick_model(spec, "assistant", row["conversation"]),
                             expand=False, history=tuple(messages[:-1]))

    return build


def _user_builder(turn: int) -> Any:
    def build(spec: UltrachatDatasetConfig, ctx: BuildContext, inputs: Mapping[str, Iterable[Row]]) -> Iterator[BasePrompt]:
        system_template, prompt_template = USER_SYSTEM.template(spec), USER_PROMPT.template(spec)
        for row in inputs[f"assistant-{turn - 1}"]:
            if not continues(spec, row["conversation"], turn - 1):
                continue
            messages = row["messages"]
            values = {**_context(spec, row), "persona": row["persona"]}
            system = system_template.fill(values).render({})
            transcript = "\n\n".join(f"{m['role'].upper()}: {m['content']}" for m in messages)
            yield BasePrompt(system, prompt_template.fill({**values, "transcript": transcript}),
                             _turn_meta(row, messages), row["conversation"],
                             pick_model(spec, "user", row["conversation"]), expand=False)

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


def turn_stages(spec: UltrachatDatasetConfig, conversation: str) -> list[str]:
    """The stages one conversation goes through, in order: opening, assistant-1, then user-k, assistant-k
    while `continues` says so."""
    out = ["opening", "assistant-1"]
    turn = 1
    while continues(spec, conversation, turn):
        turn += 1
        out += [f"user-{turn}", f"assistant-{turn}"]
    return out


def assemble(spec: UltrachatDatasetConfig, outcomes: Mapping[str, StageOutcomes]) -> Assembly:
    """Final conversation rows: one item per conversation started (per opening request), its whole thread."""
    index = {name: by_parent(outcome.rows) for name, outcome in outcomes.items() if name != "questions"}
    questions = sorted(selected_questions(spec, outcomes["questions"].rows), key=lambda r: row_order(r["row_id"]))
    return assembly_of((q["row_id"], _thread(spec, q, outcomes, index)) for q in questions)


def _thread(spec: UltrachatDatasetConfig, q: Row, outcomes: Mapping[str, StageOutcomes],
            index: Mapping[str, Mapping[str, Row]]) -> Row | Broken | None:
    chain: dict[str, Row] = {}
    parent = q["row_id"]
    for stage in turn_stages(spec, q["row_id"]):
        link = next_link(stage, outcomes[stage], index[stage], parent)
        if not isinstance(link, dict):
            return link
        chain[stage] = link
        parent = link["row_id"]
    opening, last = chain["opening"], next(reversed(chain.values()))
    return {
        "row_id": content_hash([q["row_id"], *(row["row_id"] for row in chain.values())]),
        "opening_question": opening["messages"][0]["content"],
        "seed_question": q["question"],
        "messages": last["messages"],
        "persona": opening["persona"],
        "topic": q["topic"],
        "subtopic": q["subtopic"],
        "language": q["language"],
        "model_id": chain["assistant-1"]["model"],
        "models": {"questions": q["model"], **{name: row["model"] for name, row in chain.items()}},
        "request_ids": {"questions": q["request_id"], **{name: row["request_id"] for name, row in chain.items()}},
        "num_turns": len(chain) // 2,
        **first_stage_extras(q),
    }
