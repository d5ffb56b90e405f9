"""Run `datafast submit --wait` and SIGKILL the process at a chosen instant (test driver, not shipped).

Usage: python -m tests.killpoint POINT OUT_DIR. The kill is a real SIGKILL of this process from inside the
chosen call, which is the exact instant an outside `kill -9` could land.
"""

from __future__ import annotations

import os
import signal
import sys
from typing import Any

from datafast.runtimes import openai as openai_runtime
from datafast.runtimes import store


def die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def after(cls: Any, name: str, *, calls: int = 1) -> None:
    """SIGKILL right after the `calls`-th call of cls.name returned (the vendor has acted)."""
    original = getattr(cls, name)
    count = {"n": 0}

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        value = original(*args, **kwargs)
        count["n"] += 1
        if count["n"] >= calls:
            die()
        return value

    setattr(cls, name, wrapper)


def main() -> None:
    point, out_dir = sys.argv[1], sys.argv[2]
    if point.startswith("after-compile:"):  # a wave boundary: a later stage compiled, nothing of it sent
        from datafast.outdir import OutputDir

        stage = point.partition(":")[2]
        original_compile = OutputDir.write_later_stage

        def write_later_stage(self: Any, name: str, *args: Any, **kwargs: Any) -> Any:
            manifest = original_compile(self, name, *args, **kwargs)
            if name == stage:
                die()
            return manifest

        OutputDir.write_later_stage = write_later_stage  # type: ignore[method-assign]
        point = "none"
    if point.count(":") == 2 and point.startswith("after-create:"):  # after-create:<runtime>:<stage>
        from datafast.runtimes import runtime_class

        _, runtime, stage = point.split(":")
        cls = runtime_class(runtime)
        original_create = cls.create

        def create(self: Any, job: Any, path: Any) -> Any:
            vendor_id = original_create(self, job, path)
            if job.stage == stage:
                die()
            return vendor_id

        cls.create = create  # type: ignore[method-assign]
        point = "none"
    if point.startswith("after-create:"):  # another vendor's adapter: batch created, id not recorded
        from datafast.runtimes import runtime_class

        after(runtime_class(point.partition(":")[2]), "create")
        point = "none"
    if point == "after-upload":  # file uploaded, batch not created
        import openai.resources.files as files

        after(files.Files, "create")
    elif point == "after-create":  # batch created at the vendor, its id not yet in state.json
        after(openai_runtime.OpenAIRuntime, "create")
    elif point == "while-polling":
        after(openai_runtime.OpenAIRuntime, "poll")
    elif point == "after-download":  # output fetched, results not yet stored
        original = openai_runtime.OpenAIRuntime.fetch

        def fetch(self: Any, job: Any, raw_dir: Any) -> Any:
            results = list(original(self, job, raw_dir))
            die()
            return iter(results)

        openai_runtime.OpenAIRuntime.fetch = fetch  # type: ignore[method-assign]
    elif point == "mid-results-write":  # results file half written (temporary file), not renamed
        original_write = store.atomic_write

        def atomic_write(path: Any, data: bytes) -> None:
            if path.parent.name == "results":
                tmp = path.with_name(f".{path.name}.tmp")
                tmp.write_bytes(data[: len(data) // 2])
                die()
            original_write(path, data)

        store.atomic_write = atomic_write
    elif point != "none":
        raise SystemExit(f"unknown point {point}")
    from datafast.pipeline import advance as submit

    submit(out_dir, wait=True, poll_interval=0.05)


if __name__ == "__main__":
    main()
