"""Gemini Developer API emulator: files (resumable upload), batchGenerateContent, batches, generateContent.

SDK: ``genai.Client(api_key="x", http_options={"base_url": emu.base_url, "api_version": "v1beta"})``.
Paths are accepted under ``/v1/`` and ``/v1beta/``. Batch output sits under ``metadata.output``: a
``responsesFile`` for file input, ``inlinedResponses`` for inline requests. Upload chunk calls carry no API key
(the SDK authenticates them by the upload URL), every other call needs ``x-goog-api-key``.

Implicit caching (Gemini 2.5 and newer): a prompt (systemInstruction, then contents) sharing a prefix of at least
the model's minimum (``cache_min``) with an earlier prompt to the same model reports it as
``usageMetadata.cachedContentTokenCount`` (included in ``promptTokenCount``), online and in batch responses; batch
requests go through the cache when the batch is created, in input order.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from typing import Any

from ._base import Emulator, HTTPError, Request, Response, digest, json_response, jsonl, new_id, rfc3339
from ._jobs import Item, Job
from .answers import normalize_openapi, respond
from .caching import Block, PrefixCache, prompt_text

MAX_INLINE_BYTES, MAX_FILE_BYTES, DAY = 20 * 1024 * 1024, 2 * 1024**3, 86400
_STATUS = {400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED", 404: "NOT_FOUND",
           409: "ABORTED", 413: "INVALID_ARGUMENT", 429: "RESOURCE_EXHAUSTED", 500: "INTERNAL", 503: "UNAVAILABLE",
           504: "DEADLINE_EXCEEDED"}
_STATES = {"BATCH_STATE_PENDING": "BATCH_STATE_PENDING", "BATCH_STATE_RUNNING": "BATCH_STATE_RUNNING",
           "cancelling": "BATCH_STATE_RUNNING", "completed": "BATCH_STATE_SUCCEEDED", "failed": "BATCH_STATE_FAILED",
           "cancelled": "BATCH_STATE_CANCELLED", "expired": "BATCH_STATE_EXPIRED"}


def _get(d: dict[str, Any], camel: str) -> Any:
    """Proto JSON accepts both lowerCamelCase and snake_case field names."""
    snake = "".join("_" + c.lower() if c.isupper() else c for c in camel)
    return d.get(camel, d.get(snake))


def request_problem(request: Any) -> HTTPError | None:
    if not isinstance(request, dict):
        return HTTPError(400, "Invalid JSON payload: the request must be an object.")
    contents = request.get("contents")
    if not isinstance(contents, list) or not contents:
        return HTTPError(400, "* GenerateContentRequest.contents: contents is not specified")
    for i, content in enumerate(contents):
        if not isinstance(content, dict) or not isinstance(content.get("parts"), list) or not content["parts"]:
            return HTTPError(400, f"* GenerateContentRequest.contents[{i}].parts: contents.parts must not be empty.")
    config = _get(request, "generationConfig") or {}
    if not isinstance(config, dict):
        return HTTPError(400, "Invalid value at 'generation_config': expected an object.")
    return None


def prompt_blocks(request: dict[str, Any]) -> list[Block]:
    """systemInstruction's parts, then each content's parts (text counted, other parts by value)."""
    system = _get(request, "systemInstruction")
    tagged = [("system", system), *((f"{c.get('role')}#{i}" if isinstance(c, dict) else str(i), c)
                                     for i, c in enumerate(request.get("contents") or []))]
    return [Block(tag, p["text"]) if isinstance(p.get("text"), str) else Block(tag, None, json.dumps(p, sort_keys=True))
            for tag, content in tagged if isinstance(content, dict)
            for p in content.get("parts") or [] if isinstance(p, dict)]


def _prompt(request: dict[str, Any]) -> str:
    return prompt_text(prompt_blocks(request))


def cache_min(model: str) -> int | None:
    """Minimum prompt tokens for an implicit cache hit; None for models without implicit caching.

    ai.google.dev/gemini-api/docs/caching (last updated 2026-10-13, seen 2026-12-01): implicit caching is on
    for Gemini 2.5 and newer; 2.5 Flash and 2.5 Pro 2,048, every Gemini 3.x (and later) model listed 4,096. Earlier
    versions of that page said 1,024 (2.5 Flash) and 4,096 (2.5 Pro). 2.5 Flash-Lite, not listed, is taken as 2.5.
    """
    found = re.match(r"(?:models/)?gemini-(\d+)(?:\.(\d+))?", model)
    if found is None:
        return None
    version = (int(found.group(1)), int(found.group(2) or 0))
    return None if version < (2, 5) else 2048 if version < (3, 0) else 4096


class GeminiEmulator(Emulator):
    vendor = "gemini"
    api_prefix = ""
    ROUTES = [
        ("POST", "/upload/{v}/files", "upload"),
        ("GET", "/{v}/files", "list_files"),
        ("GET", "/{v}/files/{file_id}", "get_file"),
        ("DELETE", "/{v}/files/{file_id}", "delete_file"),
        ("GET", "/{v}/files/{file_id}:download", "download_file"),
        ("POST", "/{v}/models/{model}:batchGenerateContent", "create_batch"),
        ("POST", "/{v}/models/{model}:generateContent", "generate_content"),
        ("GET", "/{v}/batches", "list_batches"),
        ("GET", "/{v}/batches/{batch_id}", "get_batch"),
        ("POST", "/{v}/batches/{batch_id}:cancel", "cancel_batch"),
        ("DELETE", "/{v}/batches/{batch_id}", "delete_batch"),
    ]

    def reset_state(self) -> None:
        super().reset_state()
        self.files: dict[str, dict[str, Any]] = {}
        self.contents: dict[str, bytes] = {}
        self.uploads: dict[str, dict[str, Any]] = {}
        self.prompt_cache = PrefixCache()

    def cached_tokens(self, request: dict[str, Any], model: str) -> int:
        """Prompt tokens of this (valid) request found in the implicit cache (it is remembered for later ones)."""
        minimum = cache_min(model)
        if minimum is None:
            return 0
        with self.lock:
            shared = self.prompt_cache.shared(model.removeprefix("models/"), prompt_blocks(request),
                                              remember=minimum)
        return shared if shared >= minimum else 0

    def check_auth(self, req: Request) -> None:
        if req.path.startswith("/upload/") and "upload_id" in req.query:
            return
        if not (req.headers.get("x-goog-api-key") or req.query.get("key")):
            raise HTTPError(403, "Method doesn't allow unregistered callers (callers without established "
                                 "identity). Please use API Key or other form of API consumer identity to call "
                                 "this API.")

    def error_response(self, err: HTTPError) -> Response:
        status = next((k for k in (err.code, err.kind) if k and k.isupper()), None) or _STATUS.get(err.status, "UNKNOWN")
        body = {"error": {"code": err.status, "message": err.message, "status": status}}
        return json_response(body, err.status, err.headers)

    # -- files ---------------------------------------------------------------------------------------------
    def _new_file(self, req: Request, content: bytes, mime: str, display: str | None, source: str) -> dict[str, Any]:
        now, file_id = self.now(), new_id("", 12)
        version = req.params.get("v", "v1beta")
        obj = {"name": f"files/{file_id}", "mimeType": mime, "sizeBytes": str(len(content)),
               "createTime": rfc3339(now), "updateTime": rfc3339(now), "expirationTime": rfc3339(now + 2 * DAY),
               "sha256Hash": base64.b64encode(hashlib.sha256(content).hexdigest().encode()).decode(),
               "uri": f"http://{req.host}/{version}/files/{file_id}", "state": "ACTIVE", "source": source}
        if display:
            obj["displayName"] = display
        if source == "GENERATED":
            obj["downloadUri"] = f"http://{req.host}/{version}/files/{file_id}:download?alt=media"
        with self.lock:
            self.files[file_id], self.contents[file_id] = obj, content
        return obj

    def upload(self, req: Request) -> Response:
        command = (req.headers.get("X-Goog-Upload-Command") or "").lower()
        if "upload_id" not in req.query:
            if (req.headers.get("X-Goog-Upload-Protocol") or "").lower() != "resumable" or command != "start":
                raise HTTPError(400, "Only the resumable upload protocol is implemented (X-Goog-Upload-Command: "
                                     "start).")
            size = req.headers.get("X-Goog-Upload-Header-Content-Length")
            if size is None or not size.isdigit():
                raise HTTPError(400, "X-Goog-Upload-Header-Content-Length is required.")
            meta = (req.json() or {}).get("file") or {}
            upload_id = new_id("", 32)
            with self.lock:
                self.uploads[upload_id] = {"size": int(size), "data": bytearray(), "meta": meta,
                                           "mime": req.headers.get("X-Goog-Upload-Header-Content-Type")}
            url = f"http://{req.host}{req.path}?upload_id={upload_id}&upload_protocol=resumable"
            return Response(200, b"", {"X-Goog-Upload-URL": url, "X-Goog-Upload-Status": "active",
                                       "X-Goog-Upload-Chunk-Granularity": str(8 * 1024 * 1024)})
        with self.lock:
            session = self.uploads.get(req.query["upload_id"])
        if session is None:
            raise HTTPError(404, "Upload session not found.")
        offset = req.headers.get("X-Goog-Upload-Offset")
        if offset is None or int(offset) != len(session["data"]) or "upload" not in command:
            raise HTTPError(400, f"Bad upload offset {offset}; expected {len(session['data'])}.")
        session["data"] += req.body
        if "finalize" not in command:
            return Response(200, b"", {"X-Goog-Upload-Status": "active"})
        if len(session["data"]) != session["size"]:
            raise HTTPError(400, f"Upload finalized with {len(session['data'])} bytes; {session['size']} declared.")
        meta = session["meta"]
        mime = _get(meta, "mimeType") or session["mime"] or "application/octet-stream"
        obj = self._new_file(req, bytes(session["data"]), mime, _get(meta, "displayName"), "UPLOADED")
        with self.lock:
            self.uploads.pop(req.query["upload_id"], None)
        return json_response({"file": obj}, headers={"X-Goog-Upload-Status": "final"})

    def _file(self, file_id: str) -> str:
        with self.lock:
            if file_id not in self.files:
                raise HTTPError(403, f"You do not have permission to access the File {file_id} or it may not "
                                     "exist.")
        return file_id

    def list_files(self, req: Request) -> Response:
        with self.lock:
            files = list(reversed(self.files.values()))
        return json_response({"files": files} if files else {})

    def get_file(self, req: Request) -> Response:
        return json_response(self.files[self._file(req.params["file_id"])])

    def delete_file(self, req: Request) -> Response:
        file_id = self._file(req.params["file_id"])
        with self.lock:
            self.files.pop(file_id, None)
            self.contents.pop(file_id, None)
        return json_response({})

    def download_file(self, req: Request) -> Response:
        file_id = self._file(req.params["file_id"])
        if req.query.get("alt") != "media":
            raise HTTPError(400, "Downloads need alt=media.")
        if self.files[file_id]["source"] != "GENERATED":  # the SDK refuses these too (no downloadUri)
            raise HTTPError(400, "Only generated files can be downloaded; uploaded files can't be downloaded.")
        return Response(200, self.contents[file_id], {"Content-Type": self.files[file_id]["mimeType"]})

    # -- generation ----------------------------------------------------------------------------------------
    def generate(self, request: dict[str, Any], rid: str, fault: str | None, model: str,
                 cached: int = 0) -> dict[str, Any]:
        """A GenerateContentResponse (REST JSON) for ``request``, deterministic for ``rid``; ``cached`` prompt
        tokens came from the implicit cache."""
        config = _get(request, "generationConfig") or {}
        schema = _get(config, "responseJsonSchema")
        if schema is None and _get(config, "responseSchema") is not None:
            schema = normalize_openapi(_get(config, "responseSchema"))
        ans = respond(rid, schema=schema, json_mode=_get(config, "responseMimeType") == "application/json",
                      prompt=_prompt(request), max_tokens=_get(config, "maxOutputTokens"),
                      fault=fault)
        usage = {"promptTokenCount": ans.input_tokens, "totalTokenCount": ans.input_tokens,
                 "promptTokensDetails": [{"modality": "TEXT", "tokenCount": ans.input_tokens}]}
        if cached:  # proto3 JSON: zero counts are left out
            usage.update(cachedContentTokenCount=cached, cacheTokensDetails=[{"modality": "TEXT", "tokenCount": cached}])
        if ans.finish == "refusal":
            candidate: dict[str, Any] = {"finishReason": "SAFETY", "index": 0, "safetyRatings": [
                {"category": "HARM_CATEGORY_DANGEROUS_CONTENT", "probability": "HIGH", "blocked": True}]}
        else:
            candidate = {"content": {"parts": [{"text": ans.text}], "role": "model"},
                         "finishReason": "MAX_TOKENS" if ans.finish == "length" else "STOP", "index": 0}
            usage.update(candidatesTokenCount=ans.output_tokens, totalTokenCount=ans.input_tokens + ans.output_tokens)
        return {"candidates": [candidate], "usageMetadata": usage, "modelVersion": model,
                "responseId": digest("resp", rid, n=22)}

    def generate_content(self, req: Request) -> Response:
        body = req.json_object()
        problem = request_problem(body)
        if problem is not None:
            raise problem
        model = req.params["model"]
        rid, fault = self.online_call(req, body, model=model, key={"model": model, **body})
        return json_response(self.generate(body, rid, fault, model, self.cached_tokens(body, model)))

    # -- batches -------------------------------------------------------------------------------------------
    def create_batch(self, req: Request) -> Response:
        if len(req.body) > MAX_INLINE_BYTES + 1024 * 1024:
            raise HTTPError(400, f"Request payload size exceeds the limit: {MAX_INLINE_BYTES} bytes.")
        batch = req.json_object().get("batch")
        source = _get(batch, "inputConfig") if isinstance(batch, dict) else None
        if not isinstance(source, dict):
            raise HTTPError(400, "* BatchGenerateContentRequest.batch.input_config: input_config is required")
        failure: list[dict[str, Any]] = []
        metas: list[Any] = []
        if _get(source, "fileName") is not None:
            file_id = self._file(str(_get(source, "fileName")).removeprefix("files/"))
            items, failure = self._parse_file(self.contents[file_id])
            mode = "file"
        else:
            requests = (source.get("requests") or {}).get("requests")
            if not isinstance(requests, list) or not requests:
                raise HTTPError(400, "* BatchGenerateContentRequest.batch.input_config.requests: requests is empty")
            items = []
            for i, entry in enumerate(requests):
                entry = entry if isinstance(entry, dict) else {}
                metas.append(entry.get("metadata") if isinstance(entry.get("metadata"), dict) else None)
                key = (metas[-1] or {}).get("key")
                items.append(Item(str(key) if key is not None else str(i), entry.get("request"),
                                  request_problem(entry.get("request"))))
            mode = "inline"
        ids = [it.rid for it in items]
        for item in items if not failure else []:
            item.fault = self.faults.for_request(item.rid)
            if item.ok:  # through the implicit cache in input order
                item.cached = self.cached_tokens(item.body, req.params["model"])
        job = Job(new_id("", 24), items, self.now(), self.batch_delay, ("BATCH_STATE_PENDING", "BATCH_STATE_RUNNING"),
                  1, fault=self.faults.for_batch(ids), failure=failure or None,
                  meta={"model": "models/" + req.params["model"], "displayName": _get(batch or {}, "displayName"),
                        "mode": mode, "inline_meta": metas})
        with self.lock:
            self.jobs[job.id] = job
        self.record_batch(f"batches/{job.id}", ids, model=req.params["model"], mode=mode)
        return json_response(self._render(job, req, initial=True))

    def _parse_file(self, content: bytes) -> tuple[list[Item], list[dict[str, Any]]]:
        items, failure = [], []
        lines = content.split(b"\n")
        if lines and not lines[-1].strip():
            lines.pop()
        for number, raw in enumerate(lines, start=1):
            try:
                row = json.loads(raw)
            except ValueError:
                row = None
            if not isinstance(row, dict):
                failure.append({"line": number, "message": f"Line {number} of the input file is not valid JSON."})
                continue
            key = row.get("key")
            items.append(Item(str(key) if key is not None else str(number), row.get("request"),
                              request_problem(row.get("request"))))
        if not lines:
            failure.append({"line": None, "message": "The input file is empty."})
        return items, failure

    def _job(self, batch_id: str) -> Job:
        return self.job(batch_id, f"Batch batches/{batch_id} not found.")

    def _result(self, job: Job, item: Item) -> dict[str, Any]:
        if item.ok:
            model = job.meta["model"].removeprefix("models/")
            return {"response": self.generate(item.body, item.rid, item.answer_fault, model, item.cached or 0)}
        return json.loads(self.error_response(self.request_error(item.problem, item.fault)).body)  # {"error": ...}

    def _output(self, job: Job, req: Request, done: int) -> dict[str, Any]:
        if "output" not in job.cache:
            if job.meta["mode"] == "inline":
                rows = [{**self._result(job, it), **({"metadata": m} if (m := job.meta["inline_meta"][i]) else {})}
                        for i, it in enumerate(job.items[:done])]
                job.cache["output"] = {"inlinedResponses": {"inlinedResponses": rows}}
            else:
                finished = job.ordered(job.items[:done], self.shuffle_results)
                content = jsonl({"key": it.rid, **self._result(job, it)} for it in finished)
                name = self._new_file(req, content, "application/jsonl", f"batch-{job.id}-output", "GENERATED")
                job.cache["output"] = {"responsesFile": name["name"]}
        return job.cache["output"]

    def _render(self, job: Job, req: Request, initial: bool = False) -> dict[str, Any]:
        with self.lock:
            view = job.initial_view() if initial else job.view(self.now())
            n = len(job.items)
            meta: dict[str, Any] = {
                "@type": "type.googleapis.com/google.ai.generativelanguage.v1beta.GenerateContentBatch",
                "model": job.meta["model"], "name": f"batches/{job.id}", "state": _STATES[view.state],
                "createTime": rfc3339(job.created, nanos=True),
                "updateTime": rfc3339(max(view.times.values()), nanos=True),
                "batchStats": {"requestCount": str(n), "successfulRequestCount": str(view.succeeded),
                               "failedRequestCount": str(view.failed), "pendingRequestCount": str(n - view.done)},
            }
            if job.meta["displayName"]:
                meta["displayName"] = job.meta["displayName"]
            op: dict[str, Any] = {"name": f"batches/{job.id}", "metadata": meta}
            if view.terminal:
                meta["endTime"] = meta["updateTime"]
                op["done"] = True
                if view.state == "failed":
                    # google.rpc.Status: INVALID_ARGUMENT (3), or RESOURCE_EXHAUSTED (8) for a quota failure
                    quota = any(f.get("code") == "RESOURCE_EXHAUSTED" for f in job.failure or [])
                    op["error"] = {"code": 8 if quota else 3,
                                   "message": "; ".join(f["message"] for f in job.failure or [])}
                else:
                    meta["output"] = self._output(job, req, view.done)
                    op["response"] = {"@type": "type.googleapis.com/google.ai.generativelanguage.v1beta."
                                               "GenerateContentBatchOutput", **meta["output"]}
        return op

    def get_batch(self, req: Request) -> Response:
        return json_response(self._render(self._job(req.params["batch_id"]), req))

    def list_batches(self, req: Request) -> Response:
        try:
            size = int(req.query.get("pageSize", 50))
            start = int(base64.urlsafe_b64decode(req.query["pageToken"]).decode()) if req.query.get("pageToken") else 0
        except ValueError:
            raise HTTPError(400, "Invalid pageSize or pageToken.") from None
        size = min(max(size, 1), 1000)
        with self.lock:
            ids = list(reversed(self.jobs))
        page = ids[start : start + size]
        out: dict[str, Any] = {"operations": [self._render(self._job(i), req) for i in page]}
        if start + size < len(ids):
            out["nextPageToken"] = base64.urlsafe_b64encode(str(start + size).encode()).decode()
        return json_response(out)

    def cancel_batch(self, req: Request) -> Response:
        job = self._job(req.params["batch_id"])
        with self.lock:
            current = job.view(self.now())
            if current.state != "cancelling" and job.cancel(self.now()) is None:
                raise HTTPError(400, f"Batch batches/{job.id} is already in a terminal state.",
                                kind="FAILED_PRECONDITION")
        return json_response({})

    def delete_batch(self, req: Request) -> Response:
        job = self._job(req.params["batch_id"])
        with self.lock:
            self.jobs.pop(job.id, None)
        return json_response({})
