"""The compiled job files, submitted as they are through each vendor's SDK, are accepted and answered.

This joins the two halves of the job-files issue: what the compiler writes and what the vendor (emulator)
accepts. Each answer must validate against the manifest's schema for its request.
"""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

import datafast

from .conftest import REPO

SPEC = REPO / "tests" / "golden" / "classification.yaml"  # 8 requests per model; unicode, braces, 4 runtimes


@pytest.fixture
def compiled(tmp_path):
    out = tmp_path / "out"
    datafast.compile(SPEC, out)
    manifest = json.loads((out / "manifest.json").read_text("utf-8"))
    requests = {}
    for line in (out / "manifest.jsonl").read_text("utf-8").splitlines():
        r = json.loads(line)
        requests[r["id"]] = r
    jobs = {j["vendor"]: out / j["path"] for j in manifest["jobs"]}
    return manifest, requests, jobs


def _check(answers: dict[str, str], manifest, requests, vendor: str):
    expected = {i for i, r in requests.items() if r["model"].startswith(vendor + ":")}
    assert set(answers) == expected
    for request_id, text in answers.items():
        jsonschema.validate(json.loads(text), manifest["schemas"][requests[request_id]["schema"]])


def test_openai_batch_accepts_the_job_file(compiled, openai_emulator):
    import openai

    manifest, requests, jobs = compiled
    client = openai.OpenAI(base_url=openai_emulator.base_url, api_key="test", max_retries=0)
    path: Path = jobs["openai"]
    uploaded = client.files.create(file=(path.name, path.read_bytes(), "application/jsonl"), purpose="batch")
    batch = client.batches.create(input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h")
    openai_emulator.advance(3600)
    batch = client.batches.retrieve(batch.id)
    assert batch.status == "completed", batch.errors
    lines = [json.loads(x) for x in client.files.content(batch.output_file_id).text.splitlines()]
    _check({x["custom_id"]: x["response"]["body"]["choices"][0]["message"]["content"] for x in lines},
           manifest, requests, "openai")


def test_anthropic_batch_accepts_the_job_file(compiled, anthropic_emulator):
    import anthropic

    manifest, requests, jobs = compiled
    client = anthropic.Anthropic(base_url=anthropic_emulator.base_url, api_key="test", max_retries=0)
    lines = [json.loads(x) for x in jobs["anthropic"].read_text("utf-8").splitlines()]
    batch = client.messages.batches.create(requests=lines)
    anthropic_emulator.advance(3600)
    assert client.messages.batches.retrieve(batch.id).processing_status == "ended"
    results = list(client.messages.batches.results(batch.id))
    assert all(r.result.type == "succeeded" for r in results), [r.result for r in results if r.result.type != "succeeded"]
    _check({r.custom_id: r.result.message.content[0].text for r in results}, manifest, requests, "anthropic")


def test_gemini_batch_accepts_the_job_file(compiled, gemini_emulator):
    from google import genai

    manifest, requests, jobs = compiled
    client = genai.Client(api_key="test", http_options={"base_url": gemini_emulator.base_url, "api_version": "v1beta"})
    uploaded = client.files.upload(file=str(jobs["gemini"]), config={"mime_type": "jsonl"})
    job = client.batches.create(model="gemini-2.5-flash", src=uploaded.name)
    gemini_emulator.advance(3600)
    job = client.batches.get(name=job.name)
    assert job.state.name == "JOB_STATE_SUCCEEDED"
    raw = client.files.download(file=job.dest.file_name).decode("utf-8")
    answers = {}
    for line in raw.splitlines():
        item = json.loads(line)
        answers[item["key"]] = item["response"]["candidates"][0]["content"]["parts"][0]["text"]
    _check(answers, manifest, requests, "gemini")
