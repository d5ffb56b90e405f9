"""Prompt-cache hints in the rendered requests: Anthropic breakpoints, OpenAI prompt_cache_key, and later
stages ordered so requests sharing a document sit together."""

from __future__ import annotations

import json
from collections import Counter

import orjson
import pytest

from datafast.compiler.caching import anthropic_min_tokens, prefix_key, shared_prefix
from datafast.compiler.vendors import RENDERERS
from datafast.compiler.vendors.base import Diagnostics

DOC = "The river delta floods each spring. " * 160  # ~5,800 characters, ~1,450 tokens
SYSTEM = "You generate high-quality synthetic data. Answer with JSON."


def request(question: str, model: str, document: str = DOC, rid: str = "a" * 32) -> dict:
    user = f"Answer in English.\n\nReference document:\n{document}\n\nQuestion: {question}"
    return {"id": rid, "stage": "chosen", "model": model, "schema": "s",
            "messages": [{"role": "system", "content": SYSTEM}, {"role": "user", "content": user}],
            "params": {"max_tokens": 512}, "meta": {"document": document, "question": question}}


SCHEMAS = {"s": {"type": "object", "properties": {"response": {"type": "string"}}, "required": ["response"],
                 "additionalProperties": False}}


def render(vendor: str, req: dict) -> dict:
    renderer = RENDERERS[vendor](SCHEMAS, Diagnostics())
    return orjson.loads(renderer.render(req))


def test_anthropic_gets_a_breakpoint_after_the_document_and_sends_the_same_text():
    req = request("Why does it flood?", "anthropic:claude-sonnet-4-5")
    line = render("anthropic", req)
    content = line["params"]["messages"][-1]["content"]
    assert isinstance(content, list) and len(content) == 2
    assert content[0]["cache_control"] == {"type": "ephemeral"} and "cache_control" not in content[1]
    assert content[0]["text"].endswith(DOC) and content[1]["text"] == "\n\nQuestion: Why does it flood?"
    assert content[0]["text"] + content[1]["text"] == req["messages"][-1]["content"]


def test_anthropic_skips_the_breakpoint_below_the_models_minimum():
    # ~1,450 tokens: enough for Sonnet 4.5 (1,024), not for Haiku 4.5 (4,096)
    assert anthropic_min_tokens("claude-haiku-4-5") == 4096
    line = render("anthropic", request("Why?", "anthropic:claude-haiku-4-5"))
    assert isinstance(line["params"]["messages"][-1]["content"], str)
    short = render("anthropic", request("Why?", "anthropic:claude-sonnet-4-5", document="Short. " * 40))
    assert isinstance(short["params"]["messages"][-1]["content"], str)


def test_openai_groups_requests_sharing_a_document_under_one_prompt_cache_key():
    a = render("openai", request("Why?", "openai:gpt-4.1-mini"))["body"]
    b = render("openai", request("When?", "openai:gpt-4.1-mini", rid="b" * 32))["body"]
    other = render("openai", request("Why?", "openai:gpt-4.1-mini", document=DOC.replace("river", "creek")))["body"]
    assert a["prompt_cache_key"] == b["prompt_cache_key"] != other["prompt_cache_key"]
    assert len(a["prompt_cache_key"]) <= 64
    plain = render("openai", {**request("Why?", "openai:gpt-4.1-mini"), "meta": {}})["body"]
    assert "prompt_cache_key" not in plain


def test_the_prefix_is_found_only_where_the_document_is():
    req = request("Q", "openai:m")
    end = shared_prefix(req)
    assert req["messages"][-1]["content"][:end].endswith(DOC)
    assert shared_prefix({**req, "meta": {"document": "not in the prompt " * 20}}) == 0
    assert prefix_key(req, end) == prefix_key(request("Other question", "openai:m"), end)


def test_later_stage_requests_sharing_a_document_are_adjacent(tmp_path, emulator_factory):
    from datafast.pipeline import advance

    from .test_stages_e2e import MCQ, compile_spec, env_for, start

    emus = start(emulator_factory, "openai", "gemini")
    # two question models: each document gives two question requests, whose rows' ids are unrelated hashes
    models = {**MCQ["models"], "questions": ["openai:gpt-4.1-mini", "openai:gpt-4.1"]}
    out = compile_spec(tmp_path, {**MCQ, "num_samples_per_prompt": 3, "models": models})
    advance(out, wait=True, poll_interval=0.01, env=env_for(emus))
    docs = [json.loads(x)["meta"]["document"] for x in
            (out / "stages" / "distractors" / "manifest.jsonl").read_text().splitlines()]
    assert len(docs) > len(set(docs)) > 1
    runs = [d for i, d in enumerate(docs) if i == 0 or docs[i - 1] != d]
    assert len(runs) == len(set(runs)), "a document's requests are split apart"


def test_a_preference_run_on_long_documents_reads_the_caches_and_costs_less(tmp_path, emulator_factory):
    from datafast.compiler.pricing import PriceTable
    from datafast.dataset import collect_to
    from datafast.pipeline import advance

    from .test_stages_e2e import PREFERENCE, compile_spec, env_for, start

    emus = start(emulator_factory, "openai", "anthropic")
    documents = [(f"Document {i}. " + DOC.replace("river", word)) for i, word in enumerate(["river", "creek"])]
    spec = {**PREFERENCE, "input_documents": documents, "num_samples_per_prompt": 3,
            # two question models: two questions per document (the emulator answers with one item each)
            "models": {**PREFERENCE["models"], "questions": ["openai:gpt-4.1-mini", "openai:gpt-4.1-nano"],
                       "rejected": ["openai:gpt-4.1-mini"]}}
    out = compile_spec(tmp_path, spec)
    assert advance(out, wait=True, poll_interval=0.01, env=env_for(emus)).finished
    report = collect_to(out)
    usage = report.usage
    chosen = usage["by_model"]["anthropic:claude-sonnet-4-5"]  # Sonnet 4.5 caches from 1,024 tokens
    judge = usage["by_model"]["openai:gpt-4.1"]
    assert chosen["cache_read_input_tokens"] > 0 and chosen["cache_write_input_tokens"] > 0
    assert judge["cache_read_input_tokens"] > 0 and judge["cached_share"] > 0.3
    table = PriceTable.load()
    uncached = sum(table.cost(m, u["input_tokens"], u["output_tokens"])["batch"] for m, u in usage["by_model"].items())
    assert usage["cost"] < uncached
    # plan of the finished run prices what was used as collect does, cache reads included, stage by stage
    from datafast.pipeline import plan_run

    actual = {s["stage"]: s["actual"]["cost_batch"] for s in plan_run(out)["stages"]}
    for stage, numbers in report.stages.items():
        assert actual[stage] == pytest.approx(numbers["cost"], abs=2e-6), stage



def test_estimates_count_cache_reads_after_the_first_request_of_a_prefix(tmp_path, emulator_factory):
    from datafast.compiler.pricing import PriceTable
    from datafast.pipeline import advance

    from .test_stages_e2e import PREFERENCE, compile_spec, env_for, start

    emus = start(emulator_factory, "openai", "anthropic")
    documents = [DOC, DOC.replace("river", "creek")]
    spec = {**PREFERENCE, "input_documents": documents, "llm_as_judge": False,
            "models": {**PREFERENCE["models"], "questions": ["openai:gpt-4.1-mini", "openai:gpt-4.1-nano"],
                       "rejected": ["openai:gpt-4.1-mini"]}}
    out = compile_spec(tmp_path, spec)
    assert advance(out, wait=True, poll_interval=0.01, env=env_for(emus)).finished
    estimate = json.loads((out / "stages" / "chosen" / "manifest.json").read_text())["estimate"]
    sonnet = estimate["by_model"]["anthropic:claude-sonnet-4-5"]
    lines = [json.loads(line) for line in (out / "stages" / "chosen" / "manifest.jsonl").read_text().splitlines()]
    per_document = Counter(r["meta"]["document"] for r in lines if r["model"] == "anthropic:claude-sonnet-4-5")
    assert min(per_document.values()) >= 2  # two question models: several questions per document
    # per document: the first request writes the prefix (the documents are the same length), the others read it
    assert sonnet["cache_write_input_tokens"] > 0
    one = sonnet["cache_write_input_tokens"] / len(documents)
    assert sonnet["cache_read_input_tokens"] == pytest.approx(one * sum(n - 1 for n in per_document.values()),
                                                              rel=0.01)
    table = PriceTable.load()
    plain = table.cost("anthropic:claude-sonnet-4-5", sonnet["input_tokens"], sonnet["output_tokens"])["batch"]
    assert sonnet["cost_batch"] < plain


def test_a_custom_prompt_putting_the_question_before_the_document_gets_a_note(write_spec, cli):
    spec = write_spec({"datafast": 1, "name": "p", "type": "preference", "input_documents": ["A document."],
                       "chosen_response_generation_prompt": "Question: {question}\n\nDocument:\n{document}",
                       "judge_prompt": "Document:\n{document}\n\nQuestion: {question}\n\nResponse: {response}",
                       "llm_as_judge": True,
                       "models": {"questions": ["openai:gpt-4.1-mini"], "chosen": ["openai:gpt-4.1-mini"],
                                  "rejected": ["openai:gpt-4.1-mini"], "judge": ["openai:gpt-4.1-mini"]}})
    result = cli("plan", spec)
    assert result.exit_code == 0
    notes = [line for line in result.output.splitlines() if "prompt caches" in line]
    assert len(notes) == 1 and "chosen_response_generation_prompt" in notes[0]
    assert "put {document} before {question}" in notes[0]


def test_plan_projects_cache_reads_for_stages_not_compiled_yet():
    import datafast

    documents = [DOC, DOC.replace("river", "creek")]
    spec = {"datafast": 1, "name": "proj", "type": "preference", "input_documents": documents,
            "num_samples_per_prompt": 3, "llm_as_judge": True,
            "models": {"questions": ["openai:gpt-4.1-mini"], "chosen": ["anthropic:claude-sonnet-4-5"],
                       "rejected": ["openai:gpt-4.1-mini"], "judge": ["openai:gpt-4.1"]}}
    summary = datafast.plan(spec)
    stages = {s["stage"]: s for s in summary["projection"]["stages"]} if "projection" in summary else \
        {s["stage"]: s for s in summary["stages"]}
    chosen = stages["chosen"]["by_model"]["anthropic:claude-sonnet-4-5"]
    judge = stages["judge"]["by_model"]["openai:gpt-4.1"]
    # three questions a document: the first chosen request writes the document's prefix, two read it
    assert chosen["cache_write_input_tokens"] > 0
    assert chosen["cache_read_input_tokens"] == pytest.approx(2 * chosen["cache_write_input_tokens"], rel=0.01)
    # six judgements a document (two per question): five read it
    assert judge["cache_read_input_tokens"] > 0 and judge["cache_write_input_tokens"] == 0


def test_a_prefix_no_other_request_sends_gets_no_hint_and_no_cache_write():
    lone = request("Why?", "anthropic:claude-sonnet-4-5")
    lone["meta"]["prefix_shared_by"] = 1
    assert shared_prefix(lone) == 0
    assert isinstance(render("anthropic", lone)["params"]["messages"][-1]["content"], str)  # no 1.25x write
    openai = {**lone, "model": "openai:gpt-4.1-mini"}
    assert "prompt_cache_key" not in render("openai", openai)["body"]
    shared = {**lone, "meta": {**lone["meta"], "prefix_shared_by": 2}}
    assert shared_prefix(shared) > 0 and "prompt_cache_key" in render("openai", {**shared, "model": "openai:m"})["body"]


def test_the_compiler_counts_the_requests_sharing_each_prefix(tmp_path):
    from datafast.compiler.build import prepare, stage_requests
    from datafast.compiler.spec import PreferenceDatasetConfig

    spec = PreferenceDatasetConfig(name="p", input_documents=[DOC, DOC.replace("river", "creek")],
                                   models={"questions": ["openai:q"], "chosen": ["anthropic:claude-sonnet-4-5"],
                                           "rejected": ["openai:gpt-4.1-mini"]})
    prepared = prepare(spec)
    rows = [{"row_id": f"r{i}-0", "request_id": f"r{i}", "stage": "questions", "model": "openai:q", "language": "en",
             "document": doc, "question": f"Question {i}?"}
            for i, doc in enumerate([DOC, DOC, DOC, DOC.replace("river", "creek")])]
    chosen = list(stage_requests(prepared, prepared.stage("chosen"), {"questions": rows}))
    shared = {r["meta"]["question"]: r["meta"]["prefix_shared_by"] for r in chosen}
    assert shared == {"Question 0?": 3, "Question 1?": 3, "Question 2?": 3, "Question 3?": 1}
    from datafast.compiler.build import Summary, stage_schemas
    from datafast.compiler.pricing import PriceTable

    renderer = RENDERERS["anthropic"](stage_schemas(prepared.stages), Diagnostics())
    lines = {r["meta"]["question"]: orjson.loads(renderer.render(r))["params"]["messages"][-1]["content"]
             for r in chosen}
    assert isinstance(lines["Question 3?"], str)  # its document is sent once: no breakpoint, no 1.25x write
    assert all(isinstance(lines[f"Question {i}?"], list) for i in range(3))

    summary = Summary(PriceTable.load())
    for r in chosen:
        summary.add(r, 1)
    sonnet = summary.as_dict()["estimate"]["by_model"]["anthropic:claude-sonnet-4-5"]
    one_prefix = sonnet["cache_write_input_tokens"]
    assert one_prefix > 0 and sonnet["cache_read_input_tokens"] == 2 * one_prefix  # the lone one neither writes


def chosen_requests(spec_extra: dict, questions_per_document: tuple[int, ...]) -> list[dict]:
    from datafast.compiler.build import prepare, stage_requests
    from datafast.compiler.spec import PreferenceDatasetConfig

    docs = [DOC.replace("river", f"river {i}") for i in range(len(questions_per_document))]
    spec = PreferenceDatasetConfig(name="p", input_documents=docs,
                                   models={"questions": ["openai:q"], "chosen": ["anthropic:claude-sonnet-4-5"],
                                           "rejected": ["openai:gpt-4.1-mini"]}, **spec_extra)
    prepared = prepare(spec)
    rows = [{"row_id": f"r{d}-{k}", "request_id": f"r{d}", "stage": "questions", "model": "openai:q",
             "language": "en", "document": docs[d], "question": f"Question {d}.{k}?"}
            for d, n in enumerate(questions_per_document) for k in range(n)]
    return list(stage_requests(prepared, prepared.stage("chosen"), {"questions": rows}))


def ttl_by_document(requests: list[dict]) -> dict[int, set]:
    out: dict[int, set] = {}
    for r in requests:
        line = render("anthropic", {**r, "schema": "s"})
        content = line["params"]["messages"][-1]["content"]
        ttl = content[0]["cache_control"].get("ttl", "5m") if isinstance(content, list) else None
        out.setdefault(int(r["meta"]["question"].split()[1].split(".")[0]), set()).add(ttl)
    return out


def test_prompt_cache_ttl_auto_uses_one_hour_for_batch_prefixes_read_twice_or_more():
    # a prefix of 3+ batch requests: 1h (2x write + 0.1x reads beats 3 uncached whenever the batch outlasts
    # 5 minutes); of 2: 5m (a 1h write and one read cost more than 2 uncached); of 1: no breakpoint at all
    assert ttl_by_document(chosen_requests({}, (3, 2, 1))) == {0: {"1h"}, 1: {"5m"}, 2: {None}}
    assert ttl_by_document(chosen_requests({"prompt_cache_ttl": "1h"}, (3, 2, 1))) == {0: {"1h"}, 1: {"1h"}, 2: {None}}
    assert ttl_by_document(chosen_requests({"prompt_cache_ttl": "5m"}, (3, 2))) == {0: {"5m"}, 1: {"5m"}}
    # sent online, in order and close together: the 5-minute cache is enough
    assert ttl_by_document(chosen_requests({"online": ["chosen"]}, (3,))) == {0: {"5m"}}


def test_one_hour_writes_are_estimated_at_their_price():
    from datafast.compiler.build import Summary
    from datafast.compiler.pricing import PriceTable

    def estimate(extra: dict) -> dict:
        summary = Summary(PriceTable.load())
        for r in chosen_requests(extra, (3,)):
            summary.add(r, 1)
        return summary.as_dict()["estimate"]["by_model"]["anthropic:claude-sonnet-4-5"]

    hour, five = estimate({}), estimate({"prompt_cache_ttl": "5m"})
    assert hour["cache_write_1h_input_tokens"] == hour["cache_write_input_tokens"] > 0
    assert five["cache_write_1h_input_tokens"] == 0 and five["cache_write_input_tokens"] == hour["cache_write_input_tokens"]
    extra = hour["cache_write_input_tokens"] * (6.0 - 3.75) / 1e6  # sonnet 4.5: 1h writes 6 USD/M, 5m 3.75
    assert hour["cost_online"] == pytest.approx(five["cost_online"] + extra, abs=1e-6)


def test_a_batch_run_writes_one_hour_caches_and_collect_prices_them(tmp_path, emulator_factory):
    from datafast.compiler.pricing import PriceTable
    from datafast.dataset import collect_to
    from datafast.pipeline import advance

    from .test_stages_e2e import PREFERENCE, compile_spec, env_for, start

    emus = start(emulator_factory, "openai", "anthropic")
    documents = [(f"Document {i}. " + DOC.replace("river", word)) for i, word in enumerate(["river", "creek"])]
    spec = {**PREFERENCE, "input_documents": documents, "num_samples_per_prompt": 3, "llm_as_judge": False,
            "models": {**PREFERENCE["models"], "questions": ["openai:gpt-4.1-mini", "openai:gpt-4.1-nano",
                                                             "openai:gpt-4.1"], "rejected": ["openai:gpt-4.1-mini"]}}
    out = compile_spec(tmp_path, spec)
    assert advance(out, wait=True, poll_interval=0.01, env=env_for(emus)).finished
    chosen = [json.loads(x) for x in (out / "stages" / "chosen" / "manifest.jsonl").read_text().splitlines()]
    hour = {r["id"] for r in chosen if r["meta"].get("cache_ttl") == "1h"}
    assert hour and all(r["meta"]["prefix_shared_by"] >= 3 for r in chosen if r["id"] in hour)
    results = [json.loads(x) for f in (out / "results").glob("*.jsonl") for x in f.read_text().splitlines()]
    written = [r["usage"] for r in results if r["id"] in hour and r["usage"].get("cache_write_input_tokens")]
    assert written and all(u["cache_write_1h_input_tokens"] == u["cache_write_input_tokens"] for u in written)
    sonnet = collect_to(out).usage["by_model"]["anthropic:claude-sonnet-4-5"]
    assert sonnet["cache_write_1h_input_tokens"] == sum(u["cache_write_1h_input_tokens"] for u in written)
    expected = PriceTable.load().cost("anthropic:claude-sonnet-4-5", sonnet["input_tokens"], sonnet["output_tokens"],
                                      sonnet["cache_read_input_tokens"], sonnet["cache_write_input_tokens"],
                                      sonnet["cache_write_1h_input_tokens"])["batch"]
    assert sonnet["cost"] == pytest.approx(expected, abs=1e-6)


def test_generic_rows_sent_in_several_languages_share_their_long_input(tmp_path):
    from datafast.compiler.build import prepare, stage_requests, stage_schemas
    from datafast.compiler.spec import GenericPipelineDatasetConfig

    (tmp_path / "in.jsonl").write_text("".join(json.dumps({"text": DOC.replace("river", w), "short": "s"}) + "\n"
                                               for w in ("river", "creek")))

    def requests(prompt: str) -> list[dict]:
        spec = GenericPipelineDatasetConfig(
            name="g", source={"file": "in.jsonl"}, input_columns=["text", "short"], output_columns=["summary"],
            languages={"en": "English", "fr": "French"}, prompts=[prompt], models=["anthropic:claude-sonnet-4-5"])
        prepared = prepare(spec, base_dir=tmp_path)
        return list(stage_requests(prepared, prepared.stages[0])), prepared

    first, prepared = requests("{text}\n\n{short}: {num_samples} summary of the text above in {language_name}.")
    assert [r["meta"]["prefix_shared_by"] for r in first] == [2, 2, 2, 2]  # per row: its two languages
    renderer = RENDERERS["anthropic"](stage_schemas(prepared.stages), Diagnostics())
    assert all(isinstance(orjson.loads(renderer.render(r))["params"]["messages"][-1]["content"], list) for r in first)
    rows = prepared.stages[0].rows(prepared.spec, first[0], {"items": [{"summary": "A delta."}]})
    assert not {"document", "prefix_shared_by", "cache_ttl"} & set(rows[0])  # sending details stay out of rows
    late, _ = requests("{num_samples} summary in {language_name}: {text} ({short})")  # the language comes first
    assert [r["meta"]["prefix_shared_by"] for r in late] == [1, 1, 1, 1]
    assert all(isinstance(orjson.loads(renderer.render(r))["params"]["messages"][-1]["content"], str) for r in late)


def test_sent_online_the_auto_ttl_stays_five_minutes(tmp_path, emulator_factory):
    from datafast.pipeline import advance

    from .test_stages_e2e import PREFERENCE, compile_spec, env_for, start

    emus = start(emulator_factory, "openai", "anthropic")
    spec = {**PREFERENCE, "input_documents": [DOC], "num_samples_per_prompt": 3, "llm_as_judge": False,
            "models": {**PREFERENCE["models"], "questions": ["openai:gpt-4.1-mini", "openai:gpt-4.1-nano",
                                                             "openai:gpt-4.1"], "rejected": ["openai:gpt-4.1-mini"]}}
    out = compile_spec(tmp_path, spec)
    assert advance(out, wait=True, poll_interval=0.01, env=env_for(emus), online=True).finished
    chosen = [json.loads(x) for x in (out / "stages" / "chosen" / "manifest.jsonl").read_text().splitlines()]
    assert any(r["meta"].get("cache_ttl") == "1h" for r in chosen)  # compiled for batch
    results = [json.loads(x) for f in (out / "results").glob("*.jsonl") for x in f.read_text().splitlines()]
    sonnet = [r["usage"] for r in results if r["model"] == "anthropic:claude-sonnet-4-5"]
    assert any(u.get("cache_write_input_tokens") for u in sonnet)  # cached, online, for 5 minutes:
    assert not any(u.get("cache_write_1h_input_tokens") for u in sonnet)


def test_generic_prefixes_are_counted_whatever_the_first_row(tmp_path):
    from datafast.compiler.build import prepare, stage_requests
    from datafast.compiler.spec import GenericPipelineDatasetConfig

    rows = [{"text": "tiny"}, *({"text": DOC.replace("river", w)} for w in ("river", "creek"))]
    (tmp_path / "in.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    spec = GenericPipelineDatasetConfig(
        name="g", source={"file": "in.jsonl"}, input_columns=["text"], output_columns=["document", "summary"],
        languages={"en": "English", "fr": "French"}, models=["anthropic:claude-sonnet-4-5"],
        prompts=["{text}\n\n{num_samples} document and summary in {language_name}."])
    prepared = prepare(spec, base_dir=tmp_path)
    requests = list(stage_requests(prepared, prepared.stages[0]))
    assert [r["meta"].get("prefix_shared_by") for r in requests] == [None, None, 2, 2, 2, 2]
    # an output column named like the request's cache details is the model's answer, kept in the row
    row = prepared.stages[0].rows(spec, requests[2], {"items": [{"document": "D.", "summary": "S."}]})[0]
    assert (row["document"], row["summary"]) == ("D.", "S.") and "prefix_shared_by" not in row
