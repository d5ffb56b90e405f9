"""The `datafast` command line. Data goes to stdout, progress and logs to stderr.

Exit codes: 0 ok, 1 runtime failure, 2 bad input (spec error, bad arguments), with `file:line: field: message`.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import shlex
import sys
from pathlib import Path
from typing import Any, NoReturn

import click

from datafast.compiler.errors import SpecError

from .logs import configure_logger, get_logger

log = get_logger("cli")


def _fail(message: str, code: int) -> NoReturn:
    """Report an error the way every command does: `error: ...` on stderr, then exit 1 (runtime) or 2 (input)."""
    click.echo(f"error: {message}", err=True)
    sys.exit(code)


def _fail_input(err: SpecError) -> NoReturn:
    for issue in err.issues:
        click.echo(f"error: {issue}", err=True)
    sys.exit(2)


EPILOG = """\b
Start: `datafast init` writes an example spec (`--type` for each dataset type), `datafast plan SPEC` shows
counts and cost without a key, `datafast run SPEC` makes the dataset; `datafast emulate all` serves loopback
emulators to try everything without a key.
\b
Models are `runtime:model`: openai:gpt-4.1-mini, anthropic:claude-haiku-4-5, gemini:gemini-2.5-flash,
ollama:gemma3:4b, local:smollm2-135m (embedded) or local:/path/to/model.gguf.
\b
Environment: OPENAI_API_KEY, ANTHROPIC_API_KEY, GEMINI_API_KEY (or GOOGLE_API_KEY); OPENAI_BASE_URL,
ANTHROPIC_BASE_URL, GOOGLE_GEMINI_BASE_URL, OLLAMA_HOST (other endpoints); HF_TOKEN, HF_ENDPOINT (push);
DATAFAST_LOCAL_THREADS, DATAFAST_LOCAL_N_CTX (embedded model). Keys are read from the environment only and
never written to a file or a log.
\b
Exit codes: 0 ok, 1 runtime failure, 2 bad input, 130 interrupted (run the same command again to resume)."""


class _Group(click.Group):
    """The datafast group: whole one-line summaries in `--help` (click cuts them to the terminal width), and
    click's own usage errors in the `error: ...` style of every other message (exit 2)."""

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, command.get_short_help_str(limit=300)) for name in self.list_commands(ctx)
                if (command := self.get_command(ctx, name)) is not None and not command.hidden]
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)

    def main(self, *args: Any, **kwargs: Any) -> Any:
        if kwargs.get("standalone_mode", True) is False:
            return super().main(*args, **kwargs)
        try:
            return super().main(*args, **{**kwargs, "standalone_mode": False})
        except click.exceptions.Exit as done:
            sys.exit(done.exit_code)
        except click.UsageError as err:
            if err.ctx is not None:
                click.echo(err.ctx.get_usage(), err=True)
                if err.ctx.command.get_help_option(err.ctx) is not None:
                    click.echo(f"Try '{err.ctx.command_path} --help' for help.", err=True)
            click.echo(f"error: {err.format_message()}", err=True)
            sys.exit(err.exit_code)
        except click.ClickException as err:
            click.echo(f"error: {err.format_message()}", err=True)
            sys.exit(err.exit_code)
        except click.Abort:
            click.echo("interrupted: nothing is lost; run the same command again to resume", err=True)
            sys.exit(130)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"], "show_default": True,
                                           "max_content_width": 120}, epilog=EPILOG)
@click.version_option(package_name="datafast")
@click.option("-v", "--verbose", count=True, help="More progress and diagnostics on stderr (-vv for debug).")
@click.option("-q", "--quiet", is_flag=True, help="Only errors on stderr.")
def main(verbose: int, quiet: bool) -> None:
    """datafast: synthetic text datasets from LLMs, at batch prices, from a reproducible manifest."""
    level = "ERROR" if quiet else ("DEBUG" if verbose > 1 else "INFO" if verbose else "WARNING")
    configure_logger(level)
    _QUIET[0] = quiet


def _finite_budget(ctx: click.Context, param: click.Parameter, value: float | None) -> float | None:
    if value is not None and not math.isfinite(value):
        raise click.BadParameter("give a finite amount, e.g. --max-cost 25", ctx=ctx, param=param)
    return value


max_cost_option = click.option(
    "--max-cost", type=click.FloatRange(min=0, min_open=True), metavar="USD", callback=_finite_budget,
    help="Budget: a wave that could take the dir's spending past it is not sent (default: the spec's max_cost).")
prices_option = click.option("--prices", type=click.Path(dir_okay=False),
                             help="Price table (JSON/YAML) merged over the built-in one.")

SPEC_SUFFIXES = (".yaml", ".yml", ".json")
DATASET_SUFFIXES = (".jsonl", ".parquet")


class OutDirPath(click.Path):
    """The OUT_DIR argument of submit/status/cancel/collect/push: a spec file given instead says what to run."""

    def __init__(self) -> None:
        super().__init__(file_okay=False)

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        path = Path(value)
        if path.is_file():
            command = f"datafast {ctx.info_name}" if ctx is not None and ctx.info_name else "this command"
            if path.suffix in SPEC_SUFFIXES:
                self.fail(f"{value} is a spec file; `{command}` takes the output dir of a compiled spec: run "
                          f"`datafast compile {value}` first and give its dir (default build/<name>), or "
                          f"`datafast run {value}` to do everything", param, ctx)
            self.fail(f"{value} is a file; `{command}` takes the output dir of a compiled spec "
                      "(`datafast compile SPEC -o DIR`)", param, ctx)
        return super().convert(value, param, ctx)


OUT_DIR = OutDirPath()


def _check_out_dir(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    if value is not None and Path(value).suffix.lower() in DATASET_SUFFIXES:
        raise click.BadParameter(
            f"{value!r} looks like a dataset file: -o names the output directory (manifest, job files, results, "
            f"the dataset inside it); the dataset file is named by `datafast collect DIR -o FILE{Path(value).suffix}`",
            ctx, param)
    return value


out_dir_option = click.option("-o", "--out", "out_dir", type=click.Path(file_okay=False), callback=_check_out_dir,
                              help="Output dir (default build/<name>).")


def _quiet_stdout() -> None:
    """Point stdout at /dev/null, so the interpreter's final flush of a closed pipe raises nothing more."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())


def _runtime_errors(fn: Any) -> Any:
    """Map runtime-side failures to exit codes: bad input 2, runtime failure 1, interrupt 130."""
    import functools

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from datafast.runtimes import RuntimeConfigError, RuntimeFailure

        from .outdir import BadInput

        try:
            return fn(*args, **kwargs)
        except SpecError as err:
            _fail_input(err)
        except (BadInput, RuntimeConfigError) as err:
            _fail(str(err), 2)
        except RuntimeFailure as err:
            _fail(str(err), 1)
        except BrokenPipeError:  # stdout piped into `head` and closed: the reader has what it wanted
            _quiet_stdout()
            sys.exit(0)
        except OSError as err:  # an output path that cannot be written (missing dir, read-only, full disk)
            where = f": {err.filename}" if err.filename else ""
            _fail(f"{err.strerror or err}{where}", 1)
        except click.UsageError:
            raise  # click's own: usage line, exit 2
        except click.ClickException as err:  # raised by a command: same style as ours
            _fail(err.format_message(), err.exit_code)
        except KeyboardInterrupt:
            click.echo("interrupted: nothing is lost; run the same command again to resume", err=True)
            sys.exit(130)

    return wrapper


@main.command("compile")
@click.argument("spec")
@out_dir_option
@click.option("--strict", is_flag=True, help="Fail on schema keywords a vendor cannot enforce.")
@prices_option
def compile_cmd(spec: str, out_dir: str | None, strict: bool, prices: str | None) -> None:
    """Compile SPEC into manifest.jsonl, manifest.json and vendor job files."""
    from . import api

    try:
        result = api.compile(spec, out_dir, strict=strict, prices=prices)
    except SpecError as err:
        _fail_input(err)
    except OSError as err:
        _fail(f"cannot write output: {err}", 1)
    jobs = result.manifest["jobs"]
    click.echo(f"{result.out_dir}: {result.requests:,} requests, {len(jobs)} job file(s)")


@main.command("plan")
@click.argument("spec")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@prices_option
@_runtime_errors
def plan_cmd(spec: str, as_json: bool, prices: str | None) -> None:
    """Show requests, estimated tokens and cost of every stage of SPEC; writes nothing.

    SPEC may also be the output dir of a run in progress: actual counts and tokens so far, plus the
    projection of what remains.
    """
    from . import api

    if Path(spec).is_dir():
        from datafast.compiler.pricing import PriceTable

        from .outdir import BadInput
        from .pipeline import plan_run

        if not (Path(spec) / "manifest.json").is_file():
            raise BadInput(f"{spec}: is a directory with no compiled manifest; plan takes a spec file, or the "
                           "output dir of a compiled run")

        summary = plan_run(spec, PriceTable.load(prices))
    else:
        summary = api.plan(spec, prices=prices)
    if as_json:
        click.echo(json.dumps(summary, indent=2, ensure_ascii=False))
    else:
        click.echo(render_plan(summary))


def _money(value: float | None, currency: str) -> str:
    return "unknown" if value is None else f"{value:,.4f} {currency}"


def render_plan(summary: dict[str, Any]) -> str:
    counts, est = summary["counts"], summary["estimate"]
    cur = est["currency"]
    stages = summary["stages"]
    lines = [f"{summary['name']} ({summary['type']}): {len(stages)} stage(s) in {summary['rounds']} batch round(s); "
             f"first stage {summary['stage']}: {counts['requests']:,} requests", ""]
    # the per-stage table below replaces counts["by_stage"]; these counts are the first stage's
    for title, key in (("model", "by_model"), ("language", "by_language"), ("label", "by_label")):
        if key in counts:
            lines.append(f"{summary['stage']} requests by {title}:")
            lines += [f"  {name or '-':<40} {n:>10,}" for name, n in counts[key].items()]
    total = est["projected_total"]
    header = f"{'input tok':>12} {'output tok':>12} {'online':>16} {'batch':>16}"

    unpriced = est.get("unpriced_models") or total["cost_excludes"]

    def numbers(n: dict[str, Any], at_least: bool = False) -> str:
        mark = ">=" if at_least else ""  # a total that leaves unpriced models out is a lower bound
        return (f"{n['input_tokens']:>12,} {n['output_tokens']:>12,} {mark + _money(n['cost_online'], cur):>16} "
                f"{mark + _money(n['cost_batch'], cur):>16}")

    lines += ["", f"ESTIMATED tokens and cost ({est['note']}; prices checked {est['prices_checked']}):",
              f"  {'round':>5}  {'stage':<26} {'requests':>10} {header}"]
    for s in stages:
        name = ("~" if s["projected"] else " ") + s["stage"]
        partial = any(m["cost_online"] is None for m in s["by_model"].values())
        lines.append(f"  {s['round']:>5}  {name:<26} {s['requests']:>10,} {numbers(s, partial)}")
    lines.append(f"  {'':>5}  {' total':<26} {total['requests']:>10,} {numbers(total, bool(unpriced))}")
    if any(s["projected"] for s in stages):
        lines.append(f"  ~ {total['note']}")
    if summary.get("sampled"):
        sampled = summary["sampled"]
        lines.append(f"  sampled: {sampled['requests']:,} of {sampled['of']:,} first-stage requests simulated; "
                     "projected stages scaled up")
    lines += ["", f"  {'model (all stages)':<36} {'requests':>10} {header} {'of input: cached':>17}"]
    for model, m in total["by_model"].items():
        lines.append(f"  {model:<36} {m['requests']:>10,} {numbers(m)} "
                     f"{m.get('cache_read_input_tokens', 0):>17,}")
    lines.append("  batch: every request at its vendor's batch price; requests sent online (the spec's `online`, "
                 "`--online`) cost the online column")
    if unpriced:
        lines.append(f"  total cost: at least {_money(total['cost_online'], cur)} online, at least "
                     f"{_money(total['cost_batch'], cur)} batch; {len(unpriced)} model(s) unpriced: {', '.join(unpriced)}")
        lines.append(f"  no price known for {', '.join(unpriced)}: totals exclude them (give prices with "
                     "--prices FILE)")
    if summary["warnings"]:
        lines += ["", *(f"warning: {w}" for w in summary["warnings"])]
    return "\n".join(lines)


_QUIET = [False]


def _display() -> Any:
    """Live progress bars on stderr for this command (none with -q)."""
    from .progress import Display

    return Display(enabled=not _QUIET[0])


def _progress(message: str) -> None:
    """Progress of submit/run on stderr (silenced by -q); also logged at INFO for log files."""
    from .progress import Display

    log.info(message)
    if not _QUIET[0] and not log.isEnabledFor(logging.INFO):
        Display().message(message)  # above any bar in progress


@main.command("submit")
@click.argument("out_dir", type=OUT_DIR)
@click.option("--wait", is_flag=True, help="Poll until every job ended, then fetch the results.")
@click.option("--poll-interval", type=click.FloatRange(min=0), default=30.0, show_default=True, help="Seconds.")
@click.option("--retry-failed", is_flag=True, help="Also resend the failed requests (terminal errors: truncated, invalid...; or out of attempts).")
@click.option("--max-tokens", type=click.IntRange(min=1), help="With --retry-failed: a new output-token limit.")
@click.option("--concurrency", type=click.IntRange(min=1), help="Parallel requests for online runtimes.")
@click.option("--online", is_flag=True,
              help="Send every request online (one call each, full price), not in batches.")
@prices_option
@max_cost_option
@_runtime_errors
def submit_cmd(out_dir: str, wait: bool, poll_interval: float, retry_failed: bool, max_tokens: int | None,
               concurrency: int | None, online: bool, prices: str | None, max_cost: float | None) -> None:
    """Advance OUT_DIR: send what has no result yet, and each later stage once its inputs are answered.

    Without --wait it polls, fetches, compiles and sends as far as it can without waiting, then returns (run
    it from cron to walk the whole pipeline); with --wait it goes to the end. Resumable at any point.
    """
    from .compiler.pricing import PriceTable
    from .pipeline import advance

    if max_tokens is not None and not retry_failed:
        raise click.UsageError("--max-tokens applies to --retry-failed")
    # the prices of --max-cost and of the estimates of later stages compiled by this submit
    table = PriceTable.load(prices) if prices is not None else None
    report = advance(out_dir, wait=wait, poll_interval=poll_interval, retry_failed=retry_failed,
                     max_tokens=max_tokens, concurrency=concurrency, on_progress=_progress, display=_display(),
                     online=online, max_cost=max_cost, prices=table)
    click.echo(f"{out_dir}: " + render_counts(report.counts()))
    counts = report.counts()
    here = _here(out_dir)
    if counts["in_flight"]:
        click.echo(f"next: datafast status {here}   # how the batches are doing; `datafast submit {here}` again "
                   "(or from cron) fetches them and sends the next stage, `--wait` stays until the end")
    elif counts["failed"]:
        click.echo(f"next: datafast submit {here} --retry-failed   # send the failed requests again "
                   "(add --max-tokens N if they were truncated)")


def render_counts(c: dict[str, Any]) -> str:
    """The summary of `status` and `submit`, a sum that adds up: requests = ok + in flight + failed + to send,
    over the current manifests; then stale results (an earlier compile's) and stages not compiled, if any."""
    jobs = c["live_jobs"]
    text = (f"{c['requests']:,} requests = {c['ok']:,} ok + {c['in_flight']:,} in flight ({jobs} live "
            f"job{'s' if jobs != 1 else ''}) + {c['failed']:,} failed + {c['to_send']:,} to send")
    if c["waiting"]:
        text += f"; stages not compiled yet: {', '.join(c['waiting'])}"
    if c["stale_results"]:
        text += (f"\n{c['stale_results']:,} stale results: stored results whose ids are in no current manifest "
                 "(an earlier compile's), not counted above")
    return text


@main.command("status")
@click.argument("out_dir", type=OUT_DIR)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@_runtime_errors
def status_cmd(out_dir: str, as_json: bool) -> None:
    """Show every stage and job of OUT_DIR with request counts (polls live jobs once).

    Needs no key and no network: what cannot be polled is said, and the recorded state is shown.
    """
    from .pipeline import status

    info = status(out_dir)
    if as_json:
        click.echo(json.dumps(info, indent=2, ensure_ascii=False))
        return
    click.echo(render_counts(info))
    if len(info["stages"]) > 1:
        click.echo(f"  {'stage':<16} {'requests':>9} {'ok':>9} {'in flight':>9} {'failed':>9} {'to send':>9}")
        for st in info["stages"]:
            if st["compiled"]:
                click.echo(f"  {st['stage']:<16} {st['requests']:>9,} {st['ok']:>9,} {st['in_flight']:>9,} "
                           f"{st['failed']:>9,} {st['to_send']:>9,}")
            else:
                waiting = ", ".join(st["waiting_for"])
                click.echo(f"  {st['stage']:<16} not compiled: "
                           + (f"waits for {waiting}" if waiting else "ready: the next submit compiles it"))
    width = max((len(job["name"]) for job in info["jobs"]), default=0)  # names carry stage, model and tag
    if info["jobs"]:
        click.echo(f"  {'job':<{width}} {'status':<10} {'requests':>8} vendor id")
    for job in info["jobs"]:
        click.echo(f"  {job['name']:<{width}} {job['status']:<10} {job['requests']:>8,} {job['vendor_id'] or ''}")
    for runtime, why in sorted(info["not_polled"].items()):
        click.echo(f"{runtime}: not polled: {why} (counts above are as last recorded)")
    if info.get("note"):
        click.echo(info["note"])


@main.command("cancel")
@click.argument("out_dir", type=OUT_DIR)
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@_runtime_errors
def cancel_cmd(out_dir: str, yes: bool) -> None:
    """Cancel the live batch jobs of OUT_DIR (finished results are kept)."""
    from .outdir import OutputDir
    from .pipeline import cancel, ensure_idle

    od = OutputDir.open(out_dir)
    ensure_idle(od, "cancel")
    live = [j for j in od.state.live() if j.status != "ended"]
    if not live:
        click.echo(f"{out_dir}: no live jobs")
        return
    if not yes:
        if not sys.stdin.isatty():
            raise click.UsageError("cannot ask for confirmation (stdin is not a terminal): pass --yes to cancel "
                                   f"the {len(live)} live job(s)")
        if not click.confirm(f"Cancel {len(live)} live job(s) of {out_dir}?", err=True):
            sys.exit(1)
    for name in cancel(out_dir, on_progress=_progress):
        click.echo(f"cancelled {name}")


@main.command("collect")
@click.argument("out_dir", type=OUT_DIR)
@click.option("-o", "--output", type=click.Path(dir_okay=False), help="Dataset file (.jsonl or .parquet).")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
@prices_option
@_runtime_errors
def collect_cmd(out_dir: str, output: str | None, as_json: bool, prices: str | None) -> None:
    """Validate the results of OUT_DIR into a dataset file and rejects.jsonl."""
    from .dataset import collect_to

    report = collect_to(out_dir, output, prices)
    if as_json:
        click.echo(json.dumps(report.as_dict(), indent=2, ensure_ascii=False))
    else:
        click.echo(render_collect(report.as_dict()))


def render_collect(r: dict[str, Any]) -> str:
    lines = [f"{r['requests']:,} requests = {r['with_rows']:,} with rows + {r['rejected']:,} rejected + "
             f"{r['pending']:,} pending"]
    if len(r["stages"]) > 1:
        for name, st in r["stages"].items():
            if st["compiled"]:
                lines.append(f"  {name:<16} {st['requests']:>7,} requests = {st['with_rows']:,} with rows + "
                             f"{st['rejected']:,} rejected + {st['pending']:,} pending; {st['rows']:,} rows")
            else:
                lines.append(f"  {name:<16} not compiled yet (run `datafast submit`)")
    if r["items"] is not None:
        it = r["items"]
        broken = ", ".join(f"{k} {v:,}" for k, v in it["rejected_by_stage"].items())
        lines.append(f"{it['items']:,} items = {it['rows']:,} final rows + {it['rejected']:,} rejected"
                     + (f" ({broken})" if broken else "") + f" + {it['pending']:,} pending")
    lines.append(f"{r['rows']:,} rows -> {r['output']}")
    if r["rows_by_label"]:
        lines.append("rows by label: " + ", ".join(f"{k} {v:,}" for k, v in r["rows_by_label"].items()))
    if r["rejected"]:
        lines.append(f"rejected ({r['rejects']}): " + ", ".join(f"{k} {v:,}" for k, v in r["reasons"].items()))
    if r["unwrapped"]:
        lines.append("answers whose JSON came wrapped (extracted, raw text kept in results/): "
                     + ", ".join(f"{k} {v:,}" for k, v in r["unwrapped"].items()))
    usage = r["usage"]
    cost, cur = usage["cost"], usage["currency"]
    if usage["by_model"]:
        def one(m: str, u: dict[str, Any]) -> str:
            cached = f" ({u['cached_share']:.0%} cached)" if u.get("cache_read_input_tokens") else ""
            return f"{m} {u['input_tokens']:,} in{cached} / {u['output_tokens']:,} out"

        lines.append("usage: " + ", ".join(one(m, u) for m, u in usage["by_model"].items())
                     + (f"; cost {cost:,.4f} {cur}" if cost is not None else "; cost unknown"))
        spent, idle = usage.get("spent"), usage.get("cost_without_rows")
        if spent is not None and idle and idle >= 5e-5:  # below that it prints as 0.0000
            lines.append(f"spent {spent:,.4f} {cur} in all (every attempt): {usage['rows_cost']:,.4f} in the rows' "
                         f"cost_usd, {idle:,.4f} gave no row (rejected {usage['rejected_cost'] or 0:,.4f}, the rest "
                         "failed or superseded attempts and chains not complete)")
    else:
        lines.append("usage: no results yet (run `datafast submit`)")
    return "\n".join(lines)


def render_samples(dataset: Path, count: int = 3) -> str:
    """A few rows of the dataset, one line each, for people reading the summary."""
    lines = ["sample rows:"]
    with open(dataset, encoding="utf-8") as fh:
        for line in fh:
            if len(lines) > count:
                break
            row = json.loads(line)
            tag = row.get("label") or row.get("topic") or row.get("stage") or row.get("language", "")
            # the field a reader looks at first: the text, the question, the opening of a conversation
            body = row.get("text") or row.get("question") or row.get("opening_question") or json.dumps(
                {k: v for k, v in row.items() if k not in PROVENANCE}, ensure_ascii=False)
            body = " ".join(str(body).split())
            lines.append(f"  [{tag}] {body[:110]}{'...' if len(body) > 110 else ''}")
    return "\n".join(lines) if len(lines) > 1 else "sample rows: none"


PROVENANCE = frozenset({"row_id", "request_id", "stage", "model", "language", "template", "placeholders",
                        "input_key", "parent", "models", "request_ids"})


@main.command("run")
@click.argument("spec")
@out_dir_option
@click.option("--poll-interval", type=click.FloatRange(min=0), default=30.0, show_default=True, help="Seconds.")
@click.option("--concurrency", type=click.IntRange(min=1), help="Parallel requests for online runtimes.")
@click.option("--online", is_flag=True,
              help="Send every request online (one call each, full price), not in batches.")
@prices_option
@max_cost_option
@_runtime_errors
def run_cmd(spec: str, out_dir: str | None, poll_interval: float, concurrency: int | None, prices: str | None,
            online: bool, max_cost: float | None) -> None:
    """Compile SPEC, run every stage (submit, wait, compile the next) and collect, in one resumable command."""
    from .pipeline import run

    result, report = run(spec, out_dir, poll_interval=poll_interval, concurrency=concurrency, prices=prices,
                         on_progress=_progress, display=_display(), online=online, max_cost=max_cost)
    click.echo(render_collect(report.as_dict()))
    click.echo(render_samples(Path(report.output)))
    stages = "stages/, " if len(report.stages) > 1 else ""
    click.echo(f"files: {result.out_dir}/ (manifest.jsonl, {stages}rows/, results/, rejects.jsonl, "
               f"{Path(report.output).name})")
    truncated = report.reasons.get("truncated", 0)
    if truncated:
        click.echo(f"{truncated:,} answer(s) were cut at max_tokens: `datafast submit {_here(result.out_dir)} "
                   f"--retry-failed --max-tokens N` (N above the spec's generation.max_tokens) sends them again, "
                   f"then `datafast collect {_here(result.out_dir)}`")
    if report.rows:
        click.echo(render_next(Path(spec), Path(result.out_dir), Path(report.output), len(report.stages) > 1))


def _here(path: Path | str) -> str:
    """`path` as the user can type it from the working directory (relative when below it), shell-quoted."""
    import os

    text = str(path)
    with contextlib.suppress(ValueError):  # another drive (Windows): keep it absolute
        rel = os.path.relpath(text)
        text = text if rel.startswith("..") else rel
    return shlex.quote(text)


def render_next(spec: Path, out_dir: Path, dataset: Path, multi_stage: bool) -> str:
    """What to do after a run: each line a command that works as printed from this working directory."""
    import shutil

    exe = Path(sys.argv[0])
    on_path = shutil.which("datafast")
    datafast_cmd = "datafast" if exe.name != "datafast" or not exe.is_file() or (
        on_path and Path(on_path).resolve() == exe.resolve()) else _here(exe)
    python = _here(sys.executable)
    load = f'import datasets; print(datasets.load_dataset("json", data_files={json.dumps(str(dataset))})["train"][0])'
    lines = ["next:", f"  {python} -c {shlex.quote(load)}   # the dataset in Python"]
    preference = spec.parent / "quickstart-preference.yaml"
    if not multi_stage and preference.is_file() and preference.resolve() != spec.resolve():
        lines.append(f"  {datafast_cmd} run {_here(preference)}   # every stage of a preference dataset, "
                     "on this machine too")
    api_spec = spec.parent / "classification.yaml"
    if api_spec.is_file() and api_spec.resolve() != spec.resolve():
        lines.append(f"  {datafast_cmd} plan {_here(api_spec)}   # an API model at batch price: counts and cost, "
                     "no key needed; then `run` it with OPENAI_API_KEY set")
    lines.append(f"  {datafast_cmd} push {_here(out_dir)} --repo YOUR-USER/{out_dir.name} --dry-run "
                 f"{_here(out_dir.with_name(out_dir.name + '-upload'))}   # what publishing to the Hub uploads")
    return "\n".join(lines)


@main.command("preview")
@click.argument("spec")
@click.option("-n", "count", type=click.IntRange(min=1), default=3, show_default=True,
              help="First-stage requests to run, with their chains through every stage.")
@out_dir_option
@click.option("--poll-interval", type=click.FloatRange(min=0), default=5.0, show_default=True, help="Seconds.")
@click.option("--concurrency", type=click.IntRange(min=1), help="Parallel requests for online runtimes.")
@prices_option
@max_cost_option
@_runtime_errors
def preview_cmd(spec: str, count: int, out_dir: str | None, poll_interval: float, concurrency: int | None,
                prices: str | None, max_cost: float | None) -> None:
    """Run a few items of SPEC through every stage online, show them, and project the full run's cost
    from the measured tokens. The full run reuses these answers (paid once)."""
    from .preview import preview

    report = preview(spec, count, out_dir, poll_interval=poll_interval, concurrency=concurrency, prices=prices,
                     on_progress=_progress, display=_display(), max_cost=max_cost)
    collected = report.collect.as_dict()
    click.echo(f"preview of {report.picked} first-stage request(s) in {report.out_dir}")
    click.echo(render_collect(collected))
    click.echo(render_samples(Path(collected["output"]), count=5))
    if collected["rejected"]:
        click.echo(f"rejects: {collected['rejects']}")
    proj = report.projection
    cur = proj["currency"]
    click.echo("full run at the measured tokens per request (estimate from plan for stages not reached):")
    click.echo(f"  {'stage':<16} {'requests':>9} {'input tok':>12} {'output tok':>12} {'online':>14} {'batch':>14}")
    for st in proj["stages"]:
        mark = "" if st["measured"] else " ~"
        click.echo(f"  {st['stage'] + mark:<16} {st['requests']:>9,} {st['input_tokens']:>12,} "
                   f"{st['output_tokens']:>12,} {_money(st['cost_online'], cur):>14} {_money(st['cost_batch'], cur):>14}")
    t, e = proj["total"], proj["estimate_total"]
    click.echo(f"  {'total':<16} {t['requests']:>9,} {t['input_tokens']:>12,} {t['output_tokens']:>12,} "
               f"{_money(t['cost_online'], cur):>14} {_money(t['cost_batch'], cur):>14}")
    click.echo(f"  plan's chars/4 estimate: {_money(e['cost_online'], cur)} online, {_money(e['cost_batch'], cur)} batch")


@main.command("push")
@click.argument("out_dir", type=OUT_DIR)
@click.option("--repo", "repo_id", required=True, metavar="NAMESPACE/NAME",
              help="Dataset repo on the Hugging Face Hub (created if missing).")
@click.option("--private/--public", default=None,
              help="Visibility of a new repo (default private); given, also applied to an existing repo.")
@click.option("--train-size", type=float, help="Share of rows in `train`, the rest in `test` (e.g. 0.8); "
              "default: one `train` split.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the split and of --shuffle.")
@click.option("--shuffle/--no-shuffle", default=True, show_default=True,
              help="Order rows within a split by a hash of (seed, row id) rather than as collected.")
@click.option("--split-by", metavar="COLUMN", help="Keep rows sharing this column's value in one split "
              "(default: source_document for mcq, input_document for preference, none otherwise; '' for none).")
@click.option("--dry-run", "dry_run", type=click.Path(file_okay=False), metavar="DIR",
              help="Write exactly the folder that would be uploaded to DIR; send nothing (no token needed).")
@click.option("--max-shard-size", default="500MB", show_default=True, metavar="SIZE",
              help="Parquet files per split hold at most this much row text (e.g. 200MB, 1GB).")
@click.option("--message", "commit_message", help="Commit message (default: rows per split and spec hash).")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@prices_option
@_runtime_errors
def push_cmd(out_dir: str, repo_id: str, private: bool | None, train_size: float | None, seed: int, shuffle: bool,
             split_by: str | None, dry_run: str | None, max_shard_size: str, commit_message: str | None,
             as_json: bool, prices: str | None) -> None:
    """Collect OUT_DIR and publish its rows to the Hugging Face Hub with a dataset card.

    Uploads data/<split>-*.parquet, README.md (the card: models, prompts, counts, cost, how to reproduce),
    spec.yaml and manifest.json in one commit; pushing the same rows again changes nothing. The token comes
    from HF_TOKEN or `hf auth login`; HF_ENDPOINT names another Hub.
    """
    from .hub import SplitOptions, push

    if _QUIET[0]:
        from huggingface_hub.utils import disable_progress_bars

        disable_progress_bars()
    result = push(out_dir, repo_id, private=private, dry_run=dry_run, commit_message=commit_message,
                  options=SplitOptions(train_size, seed, shuffle, split_by), prices=prices,
                  max_shard_bytes=_size(max_shard_size), update_visibility=private is not None)
    for warning in result.warnings:
        log.warning(warning)
    if as_json:
        click.echo(json.dumps(result.as_dict(), indent=2, ensure_ascii=False))
        return
    splits = ", ".join(f"{name} {rows:,}" for name, rows in result.splits.items())
    if result.dry_run:
        click.echo(f"dry run: {len(result.files)} files ({splits} rows) in {result.folder}; nothing was sent")
    elif result.unchanged:
        click.echo(f"{result.url}: already up to date ({splits} rows); no commit made")
    else:
        click.echo(f"pushed {splits} rows to {result.url} (commit {result.commit})")


def _size(text: str) -> int:
    """`500MB`, `1GB`, `64KB` or a byte count -> bytes (powers of 1024, as `datasets`' max_shard_size)."""
    import re

    from .outdir import BadInput

    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([KMG]i?B?|B)?\s*", text, re.IGNORECASE)
    if not match:
        raise BadInput(f"--max-shard-size {text!r}: expected a size such as 500MB, 1GB or 1048576")
    unit = (match.group(2) or "B").upper()[0]
    return max(1, int(float(match.group(1)) * {"B": 1, "K": 1024, "M": 1024**2, "G": 1024**3}[unit]))


@main.command("schema")
def schema_cmd() -> None:
    """Print the JSON Schema of the spec format (point your editor's YAML plugin at it)."""
    from datafast.compiler.spec import spec_json_schema

    click.echo(json.dumps(spec_json_schema(), indent=2, ensure_ascii=False))


def _register_starter_commands() -> None:
    from .starter import commands

    for command in commands():
        main.add_command(command)


_register_starter_commands()


if __name__ == "__main__":  # pragma: no cover
    main()
