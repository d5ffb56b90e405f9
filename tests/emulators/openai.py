"""OpenAI emulator: files, batches (chat completions) and online chat completions, as the ``openai`` SDK uses them.

SDK base URL: ``emu.base_url`` (``http://127.0.0.1:PORT/v1``). Input lines are validated like the Batch API
does (the batch ends ``failed`` with ``errors.data[{code, message, param, line}]``); request bodies are
validated against ``CreateChatCompletionRequest`` of the OpenAPI document (invalid ones get a 400 line in the
error file, as the API reports per-request errors).

Prompt caching (automatic, as the API does it for gpt-4o and newer): a prompt that shares a prefix of at least
``CACHE_MIN_TOKENS`` tokens with an earlier prompt to the same model, with the same ``prompt_cache_key`` (the key
is combined with the prefix hash to route requests, so different keys do not share) and the same
``response_format``/``tools`` (the schema is a prefix of the system message), reports the shared prefix rounded
down to a multiple of ``CACHE_INCREMENT`` as ``usage.prompt_tokens_details.cached_tokens`` (included in
``prompt_tokens``). Batch requests go through the cache when the batch is created, in file order.
"""

from __future__ import annotations

import email.parser
import email.policy
import json
from typing import Any

from . import openapi
from ._base import Emulator, HTTPError, Request, Response, digest, json_response, jsonl, new_id
from ._jobs import Item, Job
from .answers import respond
from .caching import Block, PrefixCache, prompt_text

ENDPOINTS = ("/v1/responses", "/v1/chat/completions", "/v1/embeddings", "/v1/completions", "/v1/moderations",
             "/v1/images/generations", "/v1/images/edits", "/v1/videos")
PURPOSES = ("assistants", "batch", "fine-tune", "vision", "user_data", "evals")
DAY = 86400
# developers.openai.com/api/docs/guides/prompt-caching (seen 2026-12-01): caching starts at 1024 prompt tokens and
# hits come in increments of 128 tokens (models before the GPT-5.6 family, whose managed breakpoints are not modelled)
CACHE_MIN_TOKENS, CACHE_INCREMENT = 1024, 128
_KINDS = {400: "invalid_request_error", 401: "invalid_request_error", 403: "invalid_request_error",
          404: "invalid_request_error", 409: "invalid_request_error", 429: "requests"}


def prompt_blocks(messages: Any) -> list[Block]:
    """Chat messages as prompt blocks: one per string content or content part (text counted, others by value)."""
    out = []
    for i, message in enumerate(messages if isinstance(messages, list) else []):
        if not isinstance(message, dict):
            continue
        tag, content = f"{message.get('role')}#{i}", message.get("content")
        if isinstance(content, str):
            out.append(Block(tag, content))
        elif isinstance(content, list):
            out += [Block(tag, p["text"]) if isinstance(p, dict) and isinstance(p.get("text"), str)
                    else Block(tag, None, json.dumps(p, sort_keys=True)) for p in content]
    return out


def cache_partition(body: dict[str, Any]) -> tuple[str, str, str]:
    """Requests share cached prefixes only with the same model, prompt_cache_key, and schema/tools prefix."""
    prefix = json.dumps([body.get(k) for k in ("response_format", "tools", "functions")], sort_keys=True)
    return str(body.get("model")), str(body.get("prompt_cache_key")), prefix


class OpenAIEmulator(Emulator):
    vendor = "openai"
    api_prefix = "/v1"
    ROUTES = [
        ("POST", "/v1/files", "create_file"),
        ("GET", "/v1/files", "list_files"),
        ("GET", "/v1/files/{file_id}", "get_file"),
        ("DELETE", "/v1/files/{file_id}", "delete_file"),
        ("GET", "/v1/files/{file_id}/content", "file_content"),
        ("POST", "/v1/batches", "create_batch"),
        ("GET", "/v1/batches", "list_batches"),
        ("GET", "/v1/batches/{batch_id}", "get_batch"),
        ("POST", "/v1/batches/{batch_id}/cancel", "cancel_batch"),
        ("POST", "/v1/chat/completions", "chat_completions"),
    ]

    def __init__(self, *, max_requests: int = 50_000, max_file_bytes: int = 200 * 1024 * 1024,
                 validate_bodies: bool = True, **kwargs: Any) -> None:
        self.max_requests, self.max_file_bytes = max_requests, max_file_bytes
        self.validate_bodies = validate_bodies and openapi.available()
        super().__init__(**kwargs)

    def reset_state(self) -> None:
        super().reset_state()
        self.files: dict[str, dict[str, Any]] = {}
        self.contents: dict[str, bytes] = {}
        self.prompt_cache = PrefixCache()

    def cached_tokens(self, body: dict[str, Any]) -> int:
        """Prompt tokens this request reads from the cache (its prompt is remembered for later requests)."""
        with self.lock:
            shared = self.prompt_cache.shared(cache_partition(body), prompt_blocks(body.get("messages")),
                                              remember=CACHE_MIN_TOKENS)
        return shared // CACHE_INCREMENT * CACHE_INCREMENT if shared >= CACHE_MIN_TOKENS else 0

    # -- protocol plumbing ---------------------------------------------------------------------------------
    def check_auth(self, req: Request) -> None:
        auth = req.headers.get("Authorization") or ""
        if not auth.startswith("Bearer ") or not auth[7:].strip():
            raise HTTPError(401, "You didn't provide an API key. You need to provide your API key in an "
                                 "Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).")

    def error_response(self, err: HTTPError) -> Response:
        kind = err.kind if err.kind in (*_KINDS.values(), "server_error") else None
        kind = kind or _KINDS.get(err.status, "server_error" if err.status >= 500 else "invalid_request_error")
        code = err.code if err.code is not None else ("rate_limit_exceeded" if err.status == 429 else None)
        body = {"error": {"message": err.message, "type": kind, "param": err.param, "code": code}}
        return json_response(body, err.status, {"x-request-id": new_id("req_"), **err.headers})

    # -- files ---------------------------------------------------------------------------------------------
    def _store_file(self, name: str, purpose: str, content: bytes) -> dict[str, Any]:
        now = int(self.now())
        obj: dict[str, Any] = {"id": new_id("file-", 22), "object": "file", "bytes": len(content), "created_at": now,
               "filename": name, "purpose": purpose, "status": "processed",
               "expires_at": now + 30 * DAY if purpose.startswith("batch") else None, "status_details": None}
        with self.lock:
            self.files[obj["id"]] = obj
            self.contents[obj["id"]] = content
        return obj

    def create_file(self, req: Request) -> Response:
        ctype = req.headers.get("Content-Type") or ""
        if not ctype.startswith("multipart/form-data"):
            raise HTTPError(400, "Expected a multipart/form-data body.")
        msg = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
            b"Content-Type: " + ctype.encode() + b"\r\n\r\n" + req.body)
        fields: dict[str, Any] = {}
        for part in msg.iter_parts():
            name = part.get_param("name", header="content-disposition")
            fields[str(name)] = (part.get_filename(), part.get_payload(decode=True) or b"")
        if "file" not in fields or fields["file"][0] is None:
            raise HTTPError(400, "Missing required parameter: 'file'.", param="file")
        purpose = (fields.get("purpose") or (None, b""))[1].decode()
        if purpose not in PURPOSES:
            raise HTTPError(400, f"'{purpose}' is not one of {list(PURPOSES)} - 'purpose'", param="purpose")
        filename, content = fields["file"]
        if purpose == "batch" and not str(filename).endswith(".jsonl"):
            raise HTTPError(400, "Invalid file format for Batch API. Must be .jsonl", param="file")
        return json_response(self._store_file(str(filename), purpose, content))

    def _file(self, file_id: str) -> dict[str, Any]:
        with self.lock:
            if file_id not in self.files:
                raise HTTPError(404, f"No such File object: {file_id}", param="id")
            return self.files[file_id]

    def list_files(self, req: Request) -> Response:
        with self.lock:
            data = sorted(self.files.values(), key=lambda f: f["created_at"], reverse=True)
        return json_response({"object": "list", "data": data, "has_more": False,
                              "first_id": data[0]["id"] if data else None, "last_id": data[-1]["id"] if data else None})

    def get_file(self, req: Request) -> Response:
        return json_response(self._file(req.params["file_id"]))

    def delete_file(self, req: Request) -> Response:
        file_id = self._file(req.params["file_id"])["id"]
        with self.lock:
            self.files.pop(file_id, None)
            self.contents.pop(file_id, None)
        return json_response({"id": file_id, "object": "file", "deleted": True})

    def file_content(self, req: Request) -> Response:
        file_id = self._file(req.params["file_id"])["id"]
        return Response(200, self.contents[file_id], {"Content-Type": "application/octet-stream"})

    # -- batches -------------------------------------------------------------------------------------------
    def create_batch(self, req: Request) -> Response:
        body = req.json_object()
        for key in ("input_file_id", "endpoint", "completion_window"):
            if not isinstance(body.get(key), str):
                raise HTTPError(400, f"Missing required parameter: '{key}'.", param=key,
                                code="missing_required_parameter")
        if body["endpoint"] not in ENDPOINTS:
            raise HTTPError(400, f"Invalid value for 'endpoint': {body['endpoint']!r}.", param="endpoint",
                            code="invalid_value")
        if body["endpoint"] != "/v1/chat/completions":
            raise HTTPError(400, "The emulator implements only /v1/chat/completions batches.", param="endpoint")
        if body["completion_window"] != "24h":
            raise HTTPError(400, "Invalid value for 'completion_window': only '24h' is supported.",
                            param="completion_window", code="invalid_value")
        metadata = body.get("metadata")
        if metadata is not None and not (
            isinstance(metadata, dict) and len(metadata) <= 16
            and all(isinstance(k, str) and len(k) <= 64 and isinstance(v, str) and len(v) <= 512
                    for k, v in metadata.items())
        ):
            raise HTTPError(400, "Invalid 'metadata': at most 16 string pairs, keys <= 64 and values <= 512 "
                                 "characters.", param="metadata", code="invalid_value")
        source = self._file(body["input_file_id"])
        if source["purpose"] != "batch":
            raise HTTPError(400, f"File {source['id']} has purpose '{source['purpose']}', expected 'batch'.",
                            param="input_file_id")
        items, failure, model = self._parse_input(self.contents[source["id"]], body["endpoint"])
        ids = [it.rid for it in items]
        for item in items if not failure else []:  # through the prompt cache in file order, as they are sent
            if item.ok and isinstance(item.body, dict):
                item.cached = self.cached_tokens(item.body)
        job = Job(new_id("batch_", 32), items, self.now(), self.batch_delay,
                  ("validating", "in_progress", "finalizing"), 1, fault=self.faults.for_batch(ids),
                  failure=failure or None,
                  meta={"endpoint": body["endpoint"], "input_file_id": source["id"], "metadata": metadata,
                        "model": model, "completion_window": "24h"})
        with self.lock:
            self.jobs[job.id] = job
        self.record_batch(job.id, ids, endpoint=body["endpoint"], model=model, input_file_id=source["id"])
        return json_response(self._render(job, initial=True))

    def _parse_input(self, content: bytes, endpoint: str) -> tuple[list[Item], list[dict[str, Any]], str | None]:
        errors: list[dict[str, Any]] = []

        def fail(line: int | None, code: str, message: str, param: str | None = None) -> None:
            if len(errors) < 100:
                errors.append({"code": code, "message": message, "param": param, "line": line})

        lines = content.split(b"\n")
        if lines and lines[-1].strip() == b"":
            lines.pop()
        if len(content) > self.max_file_bytes:
            fail(None, "file_too_large", f"The input file is larger than {self.max_file_bytes} bytes.")
        if not lines:
            fail(None, "empty_file", "The input file is empty.")
        if len(lines) > self.max_requests:
            fail(None, "too_many_tasks", f"The batch has {len(lines)} requests; the limit is {self.max_requests}.")
        items: list[Item] = []
        seen: set[str] = set()
        model: str | None = None
        for number, raw in enumerate(lines, start=1):
            try:
                row = json.loads(raw)
            except ValueError:
                row = None
            if not isinstance(row, dict):
                fail(number, "invalid_json_line", "This line is not parseable as valid JSON.")
                continue
            missing = [k for k in ("custom_id", "method", "url", "body") if k not in row]
            if missing:
                fail(number, "missing_required_parameter", f"Missing required parameter: '{missing[0]}'.",
                     missing[0])
                continue
            rid, body = row["custom_id"], row["body"]
            if not isinstance(rid, str) or not rid:
                fail(number, "invalid_value", "'custom_id' must be a non-empty string.", "custom_id")
                continue
            if row["method"] != "POST":
                fail(number, "invalid_value", f"Invalid method {row['method']!r}: only POST is supported.", "method")
            if row["url"] != endpoint:
                fail(number, "url_mismatch", f"The URL provided for this request does not match the batch "
                                             f"endpoint {endpoint}.", "url")
            if not isinstance(body, dict) or not isinstance(body.get("model"), str):
                fail(number, "missing_required_parameter", "Missing required parameter: 'body.model'.", "body.model")
            elif model is None:
                model = body["model"]
            elif body["model"] != model:
                fail(number, "model_mismatch", f"The model {body['model']!r} does not match the model {model!r} "
                                               "of the previous lines: a batch serves one model.", "body.model")
            if rid in seen:
                fail(number, "duplicate_custom_id", f"The custom_id {rid!r} is used more than once in the file.",
                     "custom_id")
            seen.add(rid)
            items.append(Item(rid, body))
        for item in items if not errors else []:  # a failed file consumes no per-request fault
            item.problem, item.fault = self._body_problem(item.body), self.faults.for_request(item.rid)
        return items, errors, model

    def _body_problem(self, body: Any) -> HTTPError | None:
        if not self.validate_bodies or not isinstance(body, dict):
            return None
        unknown = sorted(set(body) - openapi.property_names("CreateChatCompletionRequest"))
        if unknown:
            return HTTPError(400, f"Unrecognized request argument supplied: {unknown[0]}", param=unknown[0])
        found = openapi.first_problem("CreateChatCompletionRequest", body)
        if found is None:
            return None
        param, message = found
        return HTTPError(400, f"Invalid request body at '{param or '<root>'}': {message}", param=param or None)

    def _job(self, batch_id: str) -> Job:
        return self.job(batch_id, f"No batch found with id '{batch_id}'.")

    def _render(self, job: Job, initial: bool = False) -> dict[str, Any]:
        with self.lock:
            view = job.initial_view() if initial else job.view(self.now())
            if view.terminal and view.state != "failed":
                self._finalize(job, view.done, view.state)
            times = {k: int(v) for k, v in view.times.items()}
            done_items = job.items[: view.done]
            usage = [self._answer(job, it)[1] for it in done_items if it.ok]
        succeeded = view.succeeded
        failed = len(job.items) - succeeded if view.terminal and view.state != "failed" else view.failed
        input_tokens = sum(u["prompt_tokens"] for u in usage)
        cached_tokens = sum(u["prompt_tokens_details"]["cached_tokens"] for u in usage)
        output_tokens = sum(u["completion_tokens"] for u in usage)
        return {
            "id": job.id, "object": "batch", "endpoint": job.meta["endpoint"],
            "errors": {"object": "list", "data": job.failure} if job.failure else None,
            "input_file_id": job.meta["input_file_id"], "completion_window": "24h", "status": view.state,
            "output_file_id": job.cache.get("output_file_id"), "error_file_id": job.cache.get("error_file_id"),
            "created_at": int(job.created), "in_progress_at": times.get("in_progress"),
            "expires_at": int(job.created) + DAY, "finalizing_at": times.get("finalizing"),
            "completed_at": times.get("completed"), "failed_at": times.get("failed"),
            "expired_at": times.get("expired"), "cancelling_at": times.get("cancelling"),
            "cancelled_at": times.get("cancelled"),
            "request_counts": {"total": 0 if job.failure else len(job.items), "completed": succeeded, "failed": failed},
            "metadata": job.meta["metadata"], "model": job.meta["model"],
            "usage": {"input_tokens": input_tokens, "input_tokens_details": {"cached_tokens": cached_tokens},
                      "output_tokens": output_tokens, "output_tokens_details": {"reasoning_tokens": 0},
                      "total_tokens": input_tokens + output_tokens},
        }

    def _answer(self, job: Job, item: Item) -> tuple[dict[str, Any], dict[str, Any]]:
        answers = job.cache.setdefault("answers", {})
        if item.rid not in answers:
            answers[item.rid] = self.completion(item.body, item.rid, item.answer_fault, item.cached or 0)
        completion = answers[item.rid]
        return completion, completion["usage"]

    def _finalize(self, job: Job, done: int, state: str) -> None:
        if "finalized" in job.cache:
            return
        out: list[dict[str, Any]] = []
        err: list[dict[str, Any]] = []
        pending = {id(it) for it in job.items[done:]}
        for item in job.ordered(job.items, self.shuffle_results):
            line_id, request_id = "batch_req_" + digest(job.id, item.rid, n=32), digest("req", job.id, item.rid)
            if id(item) in pending:
                code = "batch_expired" if state == "expired" else "batch_cancelled"
                message = ("This request could not be executed before the completion window expired."
                           if state == "expired" else "This request was not executed because the batch was "
                                                      "cancelled.")
                err.append({"id": line_id, "custom_id": item.rid, "response": None,
                            "error": {"code": code, "message": message}})
            elif item.ok:
                out.append({"id": line_id, "custom_id": item.rid, "error": None, "response": {
                    "status_code": 200, "request_id": request_id, "body": self._answer(job, item)[0]}})
            else:
                problem = self.request_error(item.problem, item.fault)
                body = json.loads(self.error_response(problem).body)
                err.append({"id": line_id, "custom_id": item.rid, "error": None, "response": {
                    "status_code": problem.status, "request_id": request_id, "body": body}})
        for key, rows, suffix in (("output_file_id", out, "output"), ("error_file_id", err, "error")):
            if rows:
                job.cache[key] = self._store_file(f"batch_{job.id}_{suffix}.jsonl", "batch_output",
                                                  jsonl(rows))["id"]
        job.cache["finalized"] = True

    def get_batch(self, req: Request) -> Response:
        return json_response(self._render(self._job(req.params["batch_id"])))

    def list_batches(self, req: Request) -> Response:
        try:
            limit = int(req.query.get("limit", 20))
        except ValueError:
            raise HTTPError(400, "Invalid 'limit': expected an integer.", param="limit") from None
        if not 1 <= limit <= 100:
            raise HTTPError(400, "Invalid 'limit': must be between 1 and 100.", param="limit")
        with self.lock:
            ids = list(reversed(self.jobs))  # newest first
        after = req.query.get("after")
        start = ids.index(after) + 1 if after in ids else (len(ids) if after else 0)
        page = ids[start : start + limit]
        data = [self._render(self._job(i)) for i in page]
        return json_response({"object": "list", "data": data, "first_id": page[0] if page else None,
                              "last_id": page[-1] if page else None, "has_more": start + limit < len(ids)})

    def cancel_batch(self, req: Request) -> Response:
        job = self._job(req.params["batch_id"])
        with self.lock:
            current = job.view(self.now())
            if current.state != "cancelling" and job.cancel(self.now()) is None:
                raise HTTPError(400, f"Cannot cancel a batch with status '{current.state}'.")
        return json_response(self._render(job))

    # -- chat completions ----------------------------------------------------------------------------------
    def completion(self, body: dict[str, Any], rid: str, fault: str | None, cached: int = 0) -> dict[str, Any]:
        """A ChatCompletion for ``body``, deterministic for ``rid``; ``cached`` prompt tokens read from the cache."""
        fmt: dict[str, Any] = body["response_format"] if isinstance(body.get("response_format"), dict) else {}
        spec: dict[str, Any] = fmt["json_schema"] if isinstance(fmt.get("json_schema"), dict) else {}
        schema = (spec.get("schema") or {"type": "object"}) if fmt.get("type") == "json_schema" else None
        max_tokens = body.get("max_completion_tokens") or body.get("max_tokens")
        prompt = prompt_text(prompt_blocks(body.get("messages")))
        choices: list[dict[str, Any]] = []
        prompt_tokens = completion_tokens = 0
        for index in range(max(1, int(body.get("n") or 1))):
            ans = respond(rid if index == 0 else f"{rid}#{index}", schema=schema,
                          json_mode=fmt.get("type") == "json_object", prompt=prompt, max_tokens=max_tokens,
                          fault=fault)
            refused = ans.finish == "refusal"
            choices.append({
                "index": index, "logprobs": None, "finish_reason": "length" if ans.finish == "length" else "stop",
                "message": {"role": "assistant", "content": None if refused else ans.text,
                            "refusal": ans.text if refused else None, "annotations": []},
            })
            prompt_tokens, completion_tokens = ans.input_tokens, completion_tokens + ans.output_tokens
        return {
            "id": "chatcmpl-" + digest("chatcmpl", rid, n=29), "object": "chat.completion",
            "created": int(self.now()), "model": body.get("model"), "choices": choices,
            "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                      "total_tokens": prompt_tokens + completion_tokens,
                      "prompt_tokens_details": {"cached_tokens": min(cached, prompt_tokens), "audio_tokens": 0},
                      "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0,
                                                    "accepted_prediction_tokens": 0,
                                                    "rejected_prediction_tokens": 0}},
            "service_tier": "default", "system_fingerprint": "fp_emulator",
        }

    def chat_completions(self, req: Request) -> Response:
        body = req.json_object()
        problem = self._body_problem(body) if self.validate_bodies else None
        if problem is None and not isinstance(body.get("model"), str):
            problem = HTTPError(400, "Missing required parameter: 'model'.", param="model")
        if problem is not None:
            raise problem
        if body.get("stream"):
            raise HTTPError(400, "The emulator does not implement streaming.", param="stream")
        rid, fault = self.online_call(req, body, model=body["model"])
        completion = self.completion(body, rid, fault, self.cached_tokens(body))
        return json_response(completion, headers={"x-request-id": digest("req", rid)})
