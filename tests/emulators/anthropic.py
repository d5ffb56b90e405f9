"""Anthropic emulator: Messages and Message Batches, as the ``anthropic`` SDK uses them.

SDK base URL: ``emu.base_url`` (``http://127.0.0.1:PORT``; paths carry ``/v1``). Batch creation checks the
envelope synchronously (custom_id format and uniqueness, counts, size -> HTTP 400); each request's ``params``
are validated like ``POST /v1/messages`` and a bad one becomes an ``errored`` result once the batch has ended
(``{"type": "errored", "error": {"type": "error", "error": {"type": "invalid_request_error", "message"}}}``,
``MessageBatchErroredResult``), the others succeeding, as the API validates params asynchronously ("validation
of the params object is performed asynchronously, and validation errors are returned when processing of the
entire batch has ended": docs build-with-claude/batch-processing). ``results_url`` is absolute, built from the
request's Host header.

Models: ``MODELS`` (or the ``models`` option) lists the models served with their output-token limit and whether
they refuse ``temperature`` together with ``top_p``. An unknown model is a ``not_found_error`` ``model: <name>``
(404 online); ``max_tokens`` above the limit is ``max_tokens: N > M, which is the maximum allowed number of output
tokens for <model id>`` (anthropics/claude-code#24451, OpenHands#11090); both samplers on a model that refuses
them is "`temperature` and `top_p` cannot both be specified for this model. Please use only one." (chatbox#2670).

Prompt caching: ``cache_control`` breakpoints on system / message blocks (or top-level: the last block) are
validated (shape, at most 4, no ``1h`` after ``5m``: the API's messages, seen in Wei-Shaw/sub2api#176 and
headroomlabs-ai/headroom#2939) and cache the prefix through their block when it has at least the model's
``cache_min`` tokens; a later request reads the longest live prefix ending at, or up to 20 blocks before, one of
its breakpoints (``cache_read_input_tokens``), writes its later breakpoints (``cache_creation_input_tokens``, split
by TTL in ``cache_creation``) and counts the rest as ``input_tokens``. Batch requests are cached at creation, in
order.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any, NamedTuple

from ._base import Emulator, HTTPError, Request, Response, digest, json_response, jsonl, new_id, rfc3339
from ._jobs import Item, Job
from .answers import respond
from .caching import Block, BreakpointCache, CacheUse, prompt_text

CUSTOM_ID = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
MAX_REQUESTS, MAX_BYTES, DAY = 100_000, 256 * 1024 * 1024, 86400
KNOWN_PARAMS = frozenset({
    "model", "messages", "max_tokens", "system", "temperature", "top_p", "top_k", "stop_sequences", "stream",
    "metadata", "tools", "tool_choice", "output_config", "thinking", "service_tier", "container", "cache_control",
    "diagnostics", "inference_geo", "speed", "context_management", "mcp_servers", "user_profile_id",
})
_KINDS = {400: "invalid_request_error", 401: "authentication_error", 402: "billing_error", 403: "permission_error",
          404: "not_found_error", 413: "request_too_large", 429: "rate_limit_error", 504: "timeout_error",
          529: "overloaded_error"}




class Model(NamedTuple):
    id: str  # the snapshot an alias resolves to (named in error messages)
    max_tokens: int  # output-token limit
    one_sampler: bool  # refuses temperature together with top_p
    cache_min: int = 1024  # minimum cacheable prompt length, tokens: a shorter prefix is not cached


def _models(*rows: tuple[tuple[str, ...], int, bool]) -> dict[str, Model]:
    return {name: Model(names[-1], limit, one, CACHE_MIN.get(names[-1], 1024))
            for names, limit, one in rows for name in names}


# Minimum cacheable prompt length (tokens), from platform.claude.com/docs/en/build-with-claude/prompt-caching as
# quoted in anthropics/anthropic-sdk-python#1194 (Opus 4.5 / 4.6 and Haiku 4.5 4096; Sonnet 4.5 / 4.6 1024 --
# that issue observes 2048 in practice for Sonnet 4.6), and for later models the litellm prompt-caching docs
# (updated 2026-10-07: Opus 5, Fable 5, Mythos 5 512; Sonnet 5, Opus 4.8 1024) and dev.to/creeta (2026: Opus 4.7
# 2048); all seen 2026-12-01. Assumed, by family: the 5.x point releases and Mythos preview like their x.0, Haiku
# 5.5 like Haiku 4.5. (Retired models the emulator does not serve: Haiku 3.5 / 3 2048, Sonnet/Opus 4.x 1024.)
CACHE_MIN: dict[str, int] = {
    "claude-haiku-4-5-20251001": 4096, "claude-opus-4-5-20251101": 4096, "claude-opus-4-6": 4096,
    "claude-sonnet-4-5-20250929": 1024, "claude-sonnet-4-6": 1024, "claude-opus-4-7": 2048, "claude-opus-4-8": 1024,
    "claude-sonnet-5": 1024, "claude-sonnet-5-5": 1024, "claude-haiku-5-5": 4096,
    **dict.fromkeys(("claude-opus-5", "claude-opus-5-5", "claude-fable-5", "claude-fable-5-1", "claude-fable-5-2",
                     "claude-mythos-5", "claude-mythos-5-1", "claude-mythos-5-2", "claude-mythos-preview"), 512),
}
MAX_BREAKPOINTS = 4
_TTL_ORDER = ("a ttl='1h' cache_control block must not come after a ttl='5m' cache_control block. Note that blocks "
              "are processed in the following order: `tools`, `system`, `messages`.")

# The models this SDK version names (anthropic.types.ModelParam, anthropic 2.14); older ones taken as retired. Output
# limits: platform.claude.com models pages (Haiku 4.5 64K, Opus 4.6 128K, Fable 5.1 / Opus 5.5 / Sonnet 5 128K),
# anthropics/claude-code#24451 (Opus 4.5 64K), Effect-TS/effect#7129 (Sonnet 4.6, Opus 4.7, 4.8 128K); others
# (Haiku/Sonnet 5.5, Fable 5 / 5.2, Mythos, Opus 5) assumed 128K. One sampler: every model from Opus 4.1 on
# (chatbox#2670, langfuse#9882, OpenHands#12909, bedrock-access-gateway#208).
MODELS: dict[str, Model] = _models(
    (("claude-haiku-4-5", "claude-haiku-4-5-20251001"), 64_000, True),
    (("claude-sonnet-4-5", "claude-sonnet-4-5-20250929"), 64_000, True),
    (("claude-opus-4-5", "claude-opus-4-5-20251101"), 64_000, True),
    *(((name,), 128_000, True) for name in (
        "claude-opus-4-6", "claude-sonnet-4-6", "claude-opus-4-7", "claude-opus-4-8", "claude-mythos-preview",
        "claude-opus-5", "claude-sonnet-5", "claude-fable-5", "claude-mythos-5", "claude-fable-5-1",
        "claude-mythos-5-1", "claude-opus-5-5", "claude-sonnet-5-5", "claude-haiku-5-5", "claude-fable-5-2",
        "claude-mythos-5-2")),
)


def _bad(message: str) -> HTTPError:
    return HTTPError(400, message, kind="invalid_request_error")


def _empty(content: Any) -> bool:
    if isinstance(content, str):
        return not content
    return not content or all(isinstance(b, dict) and b.get("type") == "text" and not b.get("text") for b in content)


def _cache_controls(params: dict[str, Any]) -> list[tuple[str, Any]]:
    """Every ``cache_control`` of the request with its path, in processing order (tools, system, messages), then
    the top-level one (automatic caching: a breakpoint on the last block, which takes one of the 4 slots)."""
    found: list[tuple[str, Any]] = []

    def scan(path: str, blocks: Any) -> None:
        for j, block in enumerate(blocks if isinstance(blocks, list) else []):
            if isinstance(block, dict) and block.get("cache_control") is not None:
                found.append((f"{path}.{j}.cache_control", block["cache_control"]))

    scan("tools", params.get("tools"))
    scan("system", params.get("system"))
    for i, msg in enumerate(params.get("messages") or []):
        scan(f"messages.{i}.content", msg.get("content") if isinstance(msg, dict) else None)
    if params.get("cache_control") is not None:
        found.append(("cache_control", params["cache_control"]))
    return found


def _cache_control_problem(path: str, value: Any) -> HTTPError | None:
    if not isinstance(value, dict):
        return _bad(f"{path}: Input should be a valid dictionary")
    for key in value:
        if key not in ("type", "ttl"):
            return _bad(f"{path}.{key}: Extra inputs are not permitted")
    if value.get("type") != "ephemeral":
        return _bad(f"{path}.type: Input should be 'ephemeral'")
    if "ttl" in value and value["ttl"] not in ("5m", "1h"):
        return _bad(f"{path}.ttl: Input should be '5m' or '1h'")
    return None


def params_problem(params: Any, *, batch: bool = False, models: Mapping[str, Model] = MODELS) -> HTTPError | None:
    """The error the Messages API gives for these params (400, or 404 for an unknown model), or None."""
    if not isinstance(params, dict):
        return _bad("params: Input should be a valid dictionary")
    for key in params:
        if key not in KNOWN_PARAMS:
            return _bad(f"{key}: Extra inputs are not permitted")
    for key in ("model", "max_tokens", "messages"):
        if key not in params:
            return _bad(f"{key}: Field required")
    if not isinstance(params["model"], str) or not params["model"]:
        return _bad("model: Input should be a valid string")
    if not isinstance(params["max_tokens"], int) or isinstance(params["max_tokens"], bool):
        return _bad("max_tokens: Input should be a valid integer")
    if params["max_tokens"] < 1:
        return _bad("max_tokens: Input should be greater than or equal to 1")
    messages = params["messages"]
    if not isinstance(messages, list) or not messages:
        return _bad("messages: at least one message is required")
    for i, msg in enumerate(messages):
        if not isinstance(msg, dict) or msg.get("role") not in ("user", "assistant"):
            return _bad(f"messages.{i}.role: Input should be 'user' or 'assistant'")
        content = msg.get("content")
        if not isinstance(content, (str, list)):
            return _bad(f"messages.{i}.content: Field required")
        for j, block in enumerate(content if isinstance(content, list) else []):
            if not isinstance(block, dict) or not isinstance(block.get("type"), str):
                return _bad(f"messages.{i}.content.{j}.type: Field required")
    system = params.get("system")
    if system is not None and not isinstance(system, (str, list)):
        return _bad("system: Input should be a valid string or a list of text blocks")
    for j, block in enumerate(system if isinstance(system, list) else []):
        if not isinstance(block, dict) or block.get("type") != "text":
            return _bad(f"system.{j}.type: Input should be 'text'")
        if not isinstance(block.get("text"), str):
            return _bad(f"system.{j}.text: Field required")
    controls = _cache_controls(params)
    for path, value in controls:
        problem = _cache_control_problem(path, value)
        if problem is not None:
            return problem
    for key in ("temperature", "top_p"):
        value = params.get(key)
        if key in params and (not isinstance(value, (int, float)) or not 0 <= value <= 1):
            return _bad(f"{key}: Input should be less than or equal to 1")
    model = models.get(params["model"])
    if model is None:
        return HTTPError(404, f"model: {params['model']}", kind="not_found_error")
    for i, msg in enumerate(messages):
        if _empty(msg["content"]) and not (i == len(messages) - 1 and msg["role"] == "assistant"):
            return _bad(f"messages.{i}: all messages must have non-empty content except for the optional final "
                        "assistant message")
    if params["max_tokens"] > model.max_tokens:
        return _bad(f"max_tokens: {params['max_tokens']} > {model.max_tokens}, which is the maximum allowed number "
                    f"of output tokens for {model.id}")
    if model.one_sampler and "temperature" in params and "top_p" in params:
        return _bad("`temperature` and `top_p` cannot both be specified for this model. Please use only one.")
    if len(controls) > MAX_BREAKPOINTS:
        return _bad(f"A maximum of {MAX_BREAKPOINTS} blocks with cache_control may be provided. Found {len(controls)}.")
    five_minutes = False
    for path, value in controls:
        if value.get("ttl") == "1h" and five_minutes:
            return _bad(f"{path}.ttl: {_TTL_ORDER}")
        five_minutes = five_minutes or value.get("ttl", "5m") == "5m"
    if batch and params.get("stream"):
        return _bad("stream: Input should be False")
    fmt = (params.get("output_config") or {}).get("format") if isinstance(params.get("output_config"), dict) else None
    if fmt is not None and (not isinstance(fmt, dict) or fmt.get("type") != "json_schema"
                            or not isinstance(fmt.get("schema"), dict)):
        return _bad("output_config.format: expected {type: 'json_schema', schema: {...}}")
    choice = params.get("tool_choice")
    if isinstance(choice, dict) and choice.get("type") == "tool":
        names = [t.get("name") for t in params.get("tools") or [] if isinstance(t, dict)]
        if choice.get("name") not in names:
            return _bad(f"tool_choice.name: tool {choice.get('name')!r} is not in `tools`")
    return None


def prompt_blocks(params: dict[str, Any]) -> tuple[list[Block], dict[int, str]]:
    """The prompt as blocks (system blocks, then each message's content blocks) and its cache breakpoints:
    block index -> TTL ("5m" when not given). A top-level ``cache_control`` marks the last block."""
    blocks: list[Block] = []
    points: dict[int, str] = {}

    def add(tag: str, block: Any) -> None:
        if isinstance(block, str):
            blocks.append(Block(tag, block))
            return
        if not isinstance(block, dict):
            return
        text = block["text"] if isinstance(block.get("text"), str) else None
        sig = "" if text is not None else json.dumps({k: v for k, v in block.items() if k != "cache_control"},
                                                     sort_keys=True)
        if isinstance(block.get("cache_control"), dict):
            points[len(blocks)] = str(block["cache_control"].get("ttl", "5m"))
        blocks.append(Block(tag, text, sig))

    system = params.get("system")
    for block in [system] if isinstance(system, str) else system if isinstance(system, list) else []:
        add("system", block)
    for i, msg in enumerate(params.get("messages") or []):
        content = msg.get("content") if isinstance(msg, dict) else None
        for block in [content] if isinstance(content, str) else content if isinstance(content, list) else []:
            add(f"{msg.get('role')}#{i}", block)
    top = params.get("cache_control")
    if isinstance(top, dict) and blocks:
        points.setdefault(len(blocks) - 1, str(top.get("ttl", "5m")))
    return blocks, points


def _prompt(params: dict[str, Any]) -> str:
    return prompt_text(prompt_blocks(params)[0])


def _forced_tool(params: dict[str, Any]) -> dict[str, Any] | None:
    tools = [t for t in params.get("tools") or [] if isinstance(t, dict) and "input_schema" in t]
    choice: dict[str, Any] = params["tool_choice"] if isinstance(params.get("tool_choice"), dict) else {}
    if choice.get("type") == "tool":
        return next((t for t in tools if t.get("name") == choice.get("name")), None)
    if choice.get("type") == "any" and len(tools) == 1:
        return tools[0]
    return None


class AnthropicEmulator(Emulator):
    vendor = "anthropic"
    api_prefix = ""
    ROUTES = [
        ("POST", "/v1/messages", "create_message"),
        ("POST", "/v1/messages/batches", "create_batch"),
        ("GET", "/v1/messages/batches", "list_batches"),
        ("GET", "/v1/messages/batches/{batch_id}", "get_batch"),
        ("DELETE", "/v1/messages/batches/{batch_id}", "delete_batch"),
        ("POST", "/v1/messages/batches/{batch_id}/cancel", "cancel_batch"),
        ("GET", "/v1/messages/batches/{batch_id}/results", "batch_results"),
    ]

    def __init__(self, *, models: Mapping[str, Model] | None = None, **kwargs: Any) -> None:
        self.models = dict(MODELS if models is None else models)
        super().__init__(**kwargs)

    def reset_state(self) -> None:
        super().reset_state()
        self.prompt_cache = BreakpointCache()

    def cache_use(self, params: dict[str, Any]) -> CacheUse:
        """What this (valid) request reads from and writes to the prompt cache, now."""
        model = self.models[params["model"]]
        # tools come first in the prompt; the output format changes the prompt too (a cache miss when it changes)
        fmt = params["output_config"].get("format") if isinstance(params.get("output_config"), dict) else None
        partition = json.dumps([model.id, params.get("tools"), fmt], sort_keys=True)
        blocks, points = prompt_blocks(params)
        with self.lock:
            return self.prompt_cache.use(partition, blocks, points, minimum=model.cache_min, now=self.now())

    def check_auth(self, req: Request) -> None:
        auth = req.headers.get("Authorization") or ""
        if not (req.headers.get("x-api-key") or (auth.startswith("Bearer ") and auth[7:].strip())):
            raise HTTPError(401, "x-api-key header is required", kind="authentication_error")

    def error_response(self, err: HTTPError) -> Response:
        known = {*_KINDS.values(), "api_error"}
        kind = next((k for k in (err.code, err.kind) if k in known), None) or _KINDS.get(err.status, "api_error")
        request_id = new_id("req_011C", 20)
        body = {"type": "error", "error": {"type": kind, "message": err.message}, "request_id": request_id}
        return json_response(body, err.status, {"request-id": request_id, **err.headers})

    # -- messages ------------------------------------------------------------------------------------------
    def message(self, params: dict[str, Any], rid: str, fault: str | None, tier: str,
                cache: CacheUse | None = None) -> dict[str, Any]:
        """A Message answering ``params``, deterministic for ``rid``; ``cache``: its prompt-cache read and writes."""
        cache = cache or CacheUse()
        tool = _forced_tool(params)
        fmt = (params.get("output_config") or {}).get("format") or {}
        schema = tool["input_schema"] if tool is not None else fmt.get("schema")
        ans = respond(rid, schema=schema, prompt=_prompt(params), max_tokens=params.get("max_tokens"),
                      fault=fault)
        stop = {"stop": "end_turn", "length": "max_tokens", "refusal": "refusal"}[ans.finish]
        if ans.finish == "refusal":
            content: list[dict[str, Any]] = []
        elif tool is not None:
            value = ans.data if ans.data is not None and fault != "invalid_json" else {}
            content = [{"type": "tool_use", "id": "toolu_01" + digest("toolu", rid, n=22), "name": tool["name"],
                        "input": value}]
            stop = "tool_use" if stop == "end_turn" else stop
        else:
            content = [{"type": "text", "text": ans.text}]
        return {
            "id": "msg_01" + digest("msg", rid, n=22), "type": "message", "role": "assistant",
            "model": params.get("model"), "content": content, "stop_reason": stop, "stop_sequence": None,
            # input_tokens: only the prompt tokens after the last cache read or write
            "usage": {"input_tokens": ans.input_tokens - cache.read - cache.write, "output_tokens": ans.output_tokens,
                      "cache_creation_input_tokens": cache.write, "cache_read_input_tokens": cache.read,
                      "cache_creation": {"ephemeral_5m_input_tokens": cache.write_5m,
                                         "ephemeral_1h_input_tokens": cache.write_1h},
                      "service_tier": tier},
        }

    def create_message(self, req: Request) -> Response:
        params = req.json_object()
        problem = params_problem(params, models=self.models)
        if problem is not None:
            raise problem
        if params.get("stream"):
            raise _bad("stream: the emulator does not implement streaming")
        rid, fault = self.online_call(req, params, model=params["model"])
        return json_response(self.message(params, rid, fault, "standard", self.cache_use(params)))

    # -- batches -------------------------------------------------------------------------------------------
    def create_batch(self, req: Request) -> Response:
        if len(req.body) > MAX_BYTES:
            raise HTTPError(413, f"Request exceeds the maximum allowed size of {MAX_BYTES} bytes.")
        requests = req.json_object().get("requests")
        if not isinstance(requests, list) or not requests:
            raise _bad("requests: at least one request is required")
        if len(requests) > MAX_REQUESTS:
            raise _bad(f"requests: a batch holds at most {MAX_REQUESTS} requests")
        items, seen = [], set()
        for i, entry in enumerate(requests):
            if not isinstance(entry, dict) or "custom_id" not in entry or "params" not in entry:
                raise _bad(f"requests.{i}: both `custom_id` and `params` are required")
            rid = entry["custom_id"]
            if not isinstance(rid, str) or not CUSTOM_ID.match(rid):
                raise _bad(f"requests.{i}.custom_id: String should match pattern '^[a-zA-Z0-9_-]{{1,64}}$'")
            if rid in seen:
                raise _bad(f"requests.{i}.custom_id: Duplicate custom_id {rid!r} in the batch")
            seen.add(rid)
            # a bad request is still accepted: its problem shows only as an `errored` result once the batch ends
            items.append(Item(rid, entry["params"], params_problem(entry["params"], batch=True, models=self.models)))
        ids = [it.rid for it in items]
        fault = self.faults.for_batch(ids)
        if fault is not None and fault.kind == "validation_failure":
            raise _bad(fault.message or "Injected batch validation failure.")
        for item in items:
            item.fault = self.faults.for_request(item.rid)
            if item.ok:  # through the prompt cache in submission order
                item.cached = self.cache_use(item.body)
        job = Job("msgbatch_01" + new_id("", 22), items, self.now(), self.batch_delay, ("in_progress",), 0,
                  fault=fault)
        with self.lock:
            self.jobs[job.id] = job
        models = sorted({str(it.body["model"]) for it in items if isinstance(it.body, dict)
                         and isinstance(it.body.get("model"), str)})
        self.record_batch(job.id, ids, models=models)
        return json_response(self._render(job, req, initial=True))

    def _job(self, batch_id: str) -> Job:
        return self.job(batch_id, f"Message batch {batch_id} not found.")

    def _render(self, job: Job, req: Request, initial: bool = False) -> dict[str, Any]:
        view = job.initial_view() if initial else job.view(self.now())
        n = len(job.items)
        counts = {"processing": n, "succeeded": 0, "errored": 0, "canceled": 0, "expired": 0}
        if view.terminal:
            left = n - view.done
            counts = {"processing": 0, "succeeded": view.succeeded, "errored": view.failed,
                      "canceled": left if view.state == "cancelled" else 0,
                      "expired": left if view.state == "expired" else 0}
        status = "ended" if view.terminal else ("canceling" if view.state == "cancelling" else "in_progress")
        ended = next((view.times[s] for s in ("completed", "cancelled", "expired") if s in view.times), None)
        return {
            "id": job.id, "type": "message_batch", "processing_status": status, "request_counts": counts,
            "created_at": rfc3339(job.created), "expires_at": rfc3339(job.created + DAY),
            "ended_at": rfc3339(ended) if view.terminal and ended is not None else None,
            "cancel_initiated_at": rfc3339(view.times["cancelling"]) if "cancelling" in view.times else None,
            "archived_at": None,
            "results_url": f"http://{req.host}/v1/messages/batches/{job.id}/results" if view.terminal else None,
        }

    def get_batch(self, req: Request) -> Response:
        return json_response(self._render(self._job(req.params["batch_id"]), req))

    def list_batches(self, req: Request) -> Response:
        try:
            limit = int(req.query.get("limit", 20))
        except ValueError:
            raise _bad("limit: Input should be a valid integer") from None
        if not 1 <= limit <= 1000:
            raise _bad("limit: Input should be between 1 and 1000")
        with self.lock:
            ids = list(reversed(self.jobs))  # newest first
        after, before = req.query.get("after_id"), req.query.get("before_id")
        if before is not None:
            end = ids.index(before) if before in ids else 0
            start = max(0, end - limit)
            page, has_more = ids[start:end], start > 0
        else:
            start = ids.index(after) + 1 if after in ids else (len(ids) if after else 0)
            page, has_more = ids[start : start + limit], start + limit < len(ids)
        data = [self._render(self._job(i), req) for i in page]
        return json_response({"data": data, "has_more": has_more, "first_id": page[0] if page else None,
                              "last_id": page[-1] if page else None})

    def cancel_batch(self, req: Request) -> Response:
        job = self._job(req.params["batch_id"])
        with self.lock:
            current = job.view(self.now())
            if current.state != "cancelling" and job.cancel(self.now()) is None:
                raise _bad(f"Message batch {job.id} has already ended and cannot be canceled.")
        return json_response(self._render(job, req))

    def delete_batch(self, req: Request) -> Response:
        job = self._job(req.params["batch_id"])
        if not job.view(self.now()).terminal:
            raise _bad(f"Message batch {job.id} is still processing: cancel it before deleting it.")
        with self.lock:
            self.jobs.pop(job.id, None)
        return json_response({"id": job.id, "type": "message_batch_deleted"})

    def batch_results(self, req: Request) -> Response:
        job = self._job(req.params["batch_id"])
        view = job.view(self.now())
        if not view.terminal:
            raise HTTPError(404, f"Results for message batch {job.id} are not available until it has ended.",
                            kind="not_found_error")
        pending = {id(it) for it in job.items[view.done:]}
        rows = []
        for item in job.ordered(job.items, self.shuffle_results):
            if id(item) in pending:
                result: dict[str, Any] = {"type": "canceled" if view.state == "cancelled" else "expired"}
            elif item.ok:
                result = {"type": "succeeded",
                          "message": self.message(item.body, item.rid, item.answer_fault, "batch", item.cached)}
            else:
                error = self.error_response(self.request_error(item.problem, item.fault))
                result = {"type": "errored", "error": json.loads(error.body)}
            rows.append({"custom_id": item.rid, "result": result})
        return Response(200, jsonl(rows), {"Content-Type": "application/binary"})
