"""The results store: per request id, ok wins, else the latest error; attempts counted; torn lines ignored."""

from __future__ import annotations

import hashlib
import json

from datafast.runtimes.base import Job, result
from datafast.runtimes.store import ResultStore, State


def _id(n: int) -> str:
    return hashlib.sha256(str(n).encode()).hexdigest()[:32]  # like request ids: content hashes


def test_index_picks_ok_over_errors_and_counts_attempts(tmp_path):
    store = ResultStore(tmp_path)
    store.write_batch("a1", [result(_id(1), "openai", "openai:m", error_kind="server_error", error_message="boom"),
                             result(_id(2), "openai", "openai:m", text="{}"),
                             result(_id(3), "openai", "openai:m", error_kind="rate_limit")])
    store.write_batch("a2", [result(_id(1), "openai", "openai:m", text='{"ok": 1}'),
                             result(_id(2), "openai", "openai:m", error_kind="server_error"),  # after an ok: ignored
                             result(_id(3), "openai", "openai:m", error_kind="truncated")])
    with store.appender("online") as fh:
        fh.write(json.dumps(result(_id(4), "ollama", "ollama:m", text="{}")) + "\n")
        fh.write('{"id": "' + _id(5) + '", "status": "ok", "te')  # torn by a kill mid-append
    with store.index() as index:
        pos = index.positions([_id(1), _id(2), _id(3), _id(4), _id(5), _id(6)]).tolist()
        assert pos[4] == -1 and pos[5] == -1
        assert index.read(pos[0])["text"] == '{"ok": 1}'
        assert [bool(index.ok[p]) for p in pos[:4]] == [True, True, False, True]
        assert index.read(pos[2])["error"]["kind"] == "truncated"  # the latest error
        assert not index.retryable[pos[2]] and int(index.errors[pos[2]]) == 2
        assert int(index.errors[pos[0]]) == 1


def test_state_survives_reload_and_replaces_atomically(tmp_path):
    state = State(tmp_path)
    job = Job(name="openai-x-a1", runtime="openai", model="openai:m", stage="generate", file="submit/x.jsonl",
              requests=3)
    state.add(job)
    state.update(job, status="submitted", vendor_id="batch_1")
    again = State(tmp_path)
    assert again.jobs["openai-x-a1"].vendor_id == "batch_1" and again.jobs["openai-x-a1"].status == "submitted"
    assert not list(tmp_path.glob(".state.json.tmp"))
