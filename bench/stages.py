"""Benchmark: the stage loop's batch rounds and wall time, on the preference example against the emulators.

Usage (from the repo root): python bench/stages.py [--documents 50] [--turnaround 2] [--poll-interval 0.05]
                                                   [--repeat 3] [--warmup 1] [--validate-bodies] [--json]

`specs/preference.yaml` (questions on OpenAI, chosen on Anthropic, rejected on Ollama online, judge on OpenAI)
with `--documents` input documents (its own two, then generated ones) is compiled, then
`advance(wait=True)` runs every stage against in-process emulators on 127.0.0.1 whose batches all complete
exactly `--turnaround` seconds after their creation (each emulator's `batch_delay` is the turnaround divided
by the number of states its batches walk through). Ideally the wall time is rounds x turnaround.
One untimed warm-up run first (`--warmup`) pays the once-per-process costs: vendor SDK imports (~2 s) and the
OpenAI emulator's load of the OpenAPI document. The OpenAI emulator does not validate request bodies against
that document unless `--validate-bodies`: it does so inside the create call, in this process, ~1 ms a line,
where the real API validates after answering (the batch's `validating` state).

Measured per run, from what the run left behind, not from constants:
- rounds: batch creations (emulator jobs, stage from state.json) split wherever a batch's results were
  fetched (mtime of results/<job>.jsonl) between two creations; online runs (results/<runtime>-<start>.jsonl)
  are listed in the round during which they started;
- graph depth: the longest input chain of the stage graph in manifest.json (expected waves: stages by depth);
- wall: `advance(wait=True)` alone (the first stage's compile is not timed);
- ratio: wall / (rounds x turnaround); it includes the poll interval's granularity (each round's end is seen
  up to one poll interval late);
- per round: when its batches were created, ended and fetched, and when the next stage was compiled
  (mtime of stages/<stage>/manifest.json), relative to the start of `advance`.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parent.parent
SPEC = REPO / "specs" / "preference.yaml"
VENDORS = ("openai", "anthropic", "ollama")
# states a batch walks through before it ends, each lasting `batch_delay` (tests/emulators/README.md, Options)
BATCH_STATES = {"openai": 3, "anthropic": 1, "gemini": 2}
TOPICS = ["the router's guest network", "the mobile app's parental controls", "the mesh satellite units",
          "the warranty and repairs", "port forwarding for game consoles", "the energy-saving night mode",
          "pairing a new device by WPS", "the status light colours"]


def documents(n: int) -> list[str]:
    """The spec's own documents, then distinct generated ones, `n` in all."""
    docs = list(yaml.safe_load(SPEC.read_text())["input_documents"])
    for i in range(len(docs), n):
        topic = TOPICS[i % len(TOPICS)]
        docs.append(f"Help article {i}: about {topic}. Open the app, go to Settings > {topic.split()[-1].title()} "
                    f"and follow the steps; changes apply within {10 + i % 50} seconds and survive a restart.")
    return docs[:n]


def graph_waves(manifest: dict[str, Any]) -> list[list[str]]:
    """Stages grouped by depth in the stage graph (depth = longest input chain, the first stage at 1)."""
    inputs = {s["name"]: s["inputs"] for s in manifest["stages"]}
    depth: dict[str, int] = {}

    def level(stage: str) -> int:
        if stage not in depth:
            depth[stage] = 1 + max((level(i) for i in inputs[stage]), default=0)
        return depth[stage]

    for stage in inputs:
        level(stage)
    return [sorted(s for s in inputs if depth[s] == d) for d in range(1, max(depth.values()) + 1)]


def online_start(path: Path) -> float:
    """Start time of an online run from its results file name (`<runtime>-<UTC stamp>.jsonl`, see runner)."""
    stamp = path.stem.partition("-")[2]
    return datetime.strptime(stamp, "%Y%m%dT%H%M%S%f%z").timestamp()


def stage_of_ids(out: Path) -> dict[str, str]:
    manifests = [out / "manifest.jsonl", *sorted((out / "stages").glob("*/manifest.jsonl"))]
    ids = {}
    for path in manifests:
        with open(path, encoding="utf-8") as fh:
            for line in fh:
                request = json.loads(line)
                ids[request["id"]] = request["stage"]
    return ids


def rounds_of(out: Path, emus: dict[str, Any], t0: float) -> list[dict[str, Any]]:
    """The batch rounds of a finished run, from the emulators' jobs, state.json and the results store."""
    state_jobs = json.loads((out / "state.json").read_text())["jobs"]
    jobs = state_jobs.values() if isinstance(state_jobs, dict) else state_jobs
    by_vendor_id = {j["vendor_id"]: j for j in jobs if j.get("vendor_id")}
    batches = []
    for vendor, emu in emus.items():
        for batch_id, job in emu.jobs.items():
            key = batch_id if batch_id in by_vendor_id else f"batches/{batch_id}"
            mine = by_vendor_id[key]
            fetched = out / "results" / f"{mine['name']}.jsonl"
            batches.append({"vendor": vendor, "stage": mine["stage"], "created": job.created, "ended": job.t_end,
                            "fetched": fetched.stat().st_mtime if fetched.exists() else None})
    batches.sort(key=lambda b: b["created"])
    fetches = sorted(b["fetched"] for b in batches if b["fetched"] is not None)
    rounds: list[list[dict[str, Any]]] = []
    for b in batches:
        # a new round starts with the first creation after a fetch that happened since the current round began
        if not rounds or any(rounds[-1][0]["created"] < f < b["created"] for f in fetches):
            rounds.append([])
        rounds[-1].append(b)

    stage_of = stage_of_ids(out)
    batch_names = {j["name"] for j in jobs}
    online: list[tuple[float, str]] = []
    for path in sorted((out / "results").glob("*.jsonl")):
        if path.stem in batch_names:
            continue
        with open(path, encoding="utf-8") as fh:
            stages = {stage_of[json.loads(line)["id"]] for line in fh if line.strip()}
        online += [(online_start(path), s) for s in stages]

    compiled = {p.parent.name: p.stat().st_mtime for p in (out / "stages").glob("*/manifest.json")}
    report = []
    for i, group in enumerate(rounds):
        start = group[0]["created"]
        stop = rounds[i + 1][0]["created"] if i + 1 < len(rounds) else float("inf")
        # send() creates a wave's batches, then runs its online requests: a run belongs to the round before it
        extra = sorted({s for t, s in online if (start <= t or i == 0) and t < stop})
        stages = sorted({b["stage"] for b in group} | set(extra))
        report.append({
            "stages": stages, "online_stages": extra, "batches": len(group),
            "created_s": round(start - t0, 3), "created_last_s": round(group[-1]["created"] - t0, 3),
            "ended_s": round(max(b["ended"] for b in group) - t0, 3),
            "fetched_s": round(max(b["fetched"] or 0.0 for b in group) - t0, 3),
            "turnaround_s": sorted({round(b["ended"] - b["created"], 6) for b in group}),
            "compiled_s": {s: round(compiled[s] - t0, 3) for s in stages if s in compiled},
        })
    return report


def overhead(rounds: list[dict[str, Any]], wall: float) -> dict[str, Any]:
    """Where wall time beyond the batches' own turnaround went, from the per-round time stamps (seconds).

    Between two rounds: detect_and_fetch (batch end -> its results stored: poll interval granularity, the
    polls, the download), compile (-> the next stages compiled), send (-> the next batch created).
    """
    out: dict[str, Any] = {"before_first_batch": rounds[0]["created_s"], "detect_and_fetch": [], "compile": [],
                           "send": []}
    for prev, nxt in zip(rounds, rounds[1:], strict=False):  # each round and the next
        compiled = max(nxt["compiled_s"].values(), default=prev["fetched_s"])
        out["detect_and_fetch"].append(round(prev["fetched_s"] - prev["ended_s"], 3))
        out["compile"].append(round(compiled - prev["fetched_s"], 3))
        out["send"].append(round(nxt["created_s"] - compiled, 3))
    out["last_detect_and_fetch"] = round(rounds[-1]["fetched_s"] - rounds[-1]["ended_s"], 3)
    out["after_last_fetch"] = round(wall - rounds[-1]["fetched_s"], 3)
    out["total"] = round(wall - sum(r["ended_s"] - r["created_s"] for r in rounds), 3)
    return out


def run_once(spec: Path, work: Path, turnaround: float, poll_interval: float, validate_bodies: bool) -> dict[str, Any]:
    import datafast
    from datafast.pipeline import advance
    from tests.emulators import EMULATORS

    out = work / "out"
    shutil.rmtree(out, ignore_errors=True)
    datafast.compile(spec, out)
    emus: dict[str, Any] = {}
    try:
        for vendor in VENDORS:
            delay = turnaround / BATCH_STATES.get(vendor, 1)
            options = {"validate_bodies": validate_bodies} if vendor == "openai" else {}
            emus[vendor] = EMULATORS[vendor](batch_delay=delay, **options).start()
        env = {"OPENAI_API_KEY": "test", "OPENAI_BASE_URL": emus["openai"].base_url,
               "ANTHROPIC_API_KEY": "test", "ANTHROPIC_BASE_URL": emus["anthropic"].base_url,
               "OLLAMA_HOST": emus["ollama"].base_url}
        t0 = time.time()
        start = time.perf_counter()
        report = advance(out, wait=True, poll_interval=poll_interval, env=env, on_progress=lambda _msg: None)
        wall = time.perf_counter() - start
        if not report.finished or report.given_up:
            raise SystemExit(f"the run did not finish cleanly: {report}")
        manifest = json.loads((out / "manifest.json").read_text())
        waves = graph_waves(manifest)
        rounds = rounds_of(out, {v: emus[v] for v in VENDORS if v in BATCH_STATES}, t0)
        requests = {s["stage"]: s["requests"] for s in report.stages}
        ollama_calls = len(emus["ollama"].stats()["online_requests"])
    finally:
        for emu in emus.values():
            emu.stop()
    return {
        "rounds": len(rounds), "graph_depth": len(waves), "expected_waves": waves,
        "observed_waves": [r["stages"] for r in rounds], "wall_s": round(wall, 3),
        "ratio": round(wall / (len(rounds) * turnaround), 3), "requests": requests, "ollama_calls": ollama_calls,
        "round_detail": rounds, "overhead_s": overhead(rounds, wall),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--documents", type=int, default=50, help="input documents (the spec has 2)")
    parser.add_argument("--turnaround", type=float, default=2.0, help="seconds from a batch's creation to its end")
    parser.add_argument("--poll-interval", type=float, default=0.05)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--json", action="store_true", help="one JSON object on stdout")
    parser.add_argument("--validate-bodies", action="store_true",
                        help="the OpenAI emulator validates every line against the OpenAPI document while creating "
                             "the batch (~1 ms a line, in this process, before the batch's clock starts)")
    parser.add_argument("--warmup", type=int, default=1,
                        help="untimed runs first (turnaround 0.05 s): vendor SDK imports, the OpenAI emulator's "
                             "OpenAPI document load and other once-per-process costs")
    args = parser.parse_args()

    sys.path.insert(0, str(REPO))
    work = Path(tempfile.mkdtemp(prefix="datafast-bench-stages-"))
    try:
        spec_data = yaml.safe_load(SPEC.read_text())
        spec_data["input_documents"] = documents(args.documents)
        spec = work / "preference.yaml"
        spec.write_text(yaml.safe_dump(spec_data, sort_keys=False))
        warmup = [run_once(spec, work, 0.05, args.poll_interval, args.validate_bodies)["wall_s"]
                  for _ in range(args.warmup)]
        runs = [run_once(spec, work, args.turnaround, args.poll_interval, args.validate_bodies)
                for _ in range(args.repeat)]
    finally:
        shutil.rmtree(work, ignore_errors=True)

    ratios = [r["ratio"] for r in runs]
    summary = {
        "documents": args.documents, "turnaround_s": args.turnaround, "poll_interval_s": args.poll_interval,
        "validate_bodies": args.validate_bodies,
        "repeat": args.repeat, "warmup_wall_s": warmup,
        "rounds": [r["rounds"] for r in runs], "graph_depth": runs[0]["graph_depth"],
        "wall_s": [r["wall_s"] for r in runs], "ratio": ratios, "ratio_median": round(statistics.median(ratios), 3),
        "target_met": all(r["rounds"] == r["graph_depth"] and r["ratio"] <= 1.1 for r in runs),
        "note": "ratio = wall / (rounds x turnaround); it includes the poll interval's granularity",
        "runs": runs,
    }
    if args.json:
        print(json.dumps(summary))
        return
    first = runs[0]
    print(f"preference, {args.documents} documents, requests per stage {first['requests']}; "
          f"turnaround {args.turnaround} s, poll interval {args.poll_interval} s")
    if warmup:
        print(f"untimed warm-up runs (turnaround 0.05 s, first one cold): wall {warmup} s")
    print(f"graph depth {first['graph_depth']}, expected waves {first['expected_waves']}")
    for i, r in enumerate(runs, 1):
        print(f"run {i}: rounds {r['rounds']} {r['observed_waves']}, wall {r['wall_s']:.3f} s, "
              f"ratio {r['ratio']:.3f}")
        for k, rd in enumerate(r["round_detail"], 1):
            print(f"  round {k} {rd['stages']}: {rd['batches']} batches created at {rd['created_s']:.3f} s"
                  f" (last {rd['created_last_s']:.3f}), compiled {rd['compiled_s']}, ended {rd['ended_s']:.3f} s,"
                  f" fetched {rd['fetched_s']:.3f} s (turnaround {rd['turnaround_s']})")
        o = r["overhead_s"]
        print(f"  beyond turnaround {o['total']:.3f} s: before first batch {o['before_first_batch']:.3f}, between "
              f"rounds detect+fetch {o['detect_and_fetch']} compile {o['compile']} send {o['send']}, last "
              f"detect+fetch {o['last_detect_and_fetch']:.3f}, after last fetch {o['after_last_fetch']:.3f}")
    print(f"ratio = wall / (rounds x turnaround), includes the poll interval granularity ({args.poll_interval} s); "
          f"median {summary['ratio_median']:.3f}; target rounds = depth and ratio <= 1.1: "
          f"{'met' if summary['target_met'] else 'NOT met'}")


if __name__ == "__main__":
    main()
