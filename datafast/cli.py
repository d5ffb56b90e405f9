"""The `datafast` command line. Data goes to stdout, progress and logs to stderr.

Exit codes: 0 ok, 1 runtime failure, 2 bad input (spec error, bad arguments), with `file:line: field: message`.
"""

from __future__ import annotations

import json
import sys
from typing import Any, NoReturn

import click

from datafast.compiler.errors import SpecError

from .logs import configure_logger


def _fail_input(err: SpecError) -> NoReturn:
    for issue in err.issues:
        click.echo(f"error: {issue}", err=True)
    sys.exit(2)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="datafast")
@click.option("-v", "--verbose", count=True, help="More progress and diagnostics on stderr (-vv for debug).")
@click.option("-q", "--quiet", is_flag=True, help="Only errors on stderr.")
def main(verbose: int, quiet: bool) -> None:
    """datafast: synthetic text datasets from LLMs, at batch prices, from a reproducible manifest."""
    level = "ERROR" if quiet else ("DEBUG" if verbose > 1 else "INFO" if verbose else "WARNING")
    configure_logger(level)


prices_option = click.option("--prices", type=click.Path(dir_okay=False),
                             help="Price table (JSON/YAML) merged over the built-in one.")


@main.command("compile")
@click.argument("spec")
@click.option("-o", "--out", "out_dir", type=click.Path(file_okay=False), help="Output dir (default build/<name>).")
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
        raise click.ClickException(f"cannot write output: {err}") from None
    jobs = result.manifest["jobs"]
    click.echo(f"{result.out_dir}: {result.requests:,} requests, {len(jobs)} job file(s)")


@main.command("plan")
@click.argument("spec")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@prices_option
def plan_cmd(spec: str, as_json: bool, prices: str | None) -> None:
    """Show requests, estimated tokens and cost of SPEC; writes nothing."""
    from . import api

    try:
        summary = api.plan(spec, prices=prices)
    except SpecError as err:
        _fail_input(err)
    if as_json:
        click.echo(json.dumps(summary, indent=2, ensure_ascii=False))
    else:
        click.echo(render_plan(summary))


def _money(value: float | None, currency: str) -> str:
    return "unknown" if value is None else f"{value:,.4f} {currency}"


def render_plan(summary: dict[str, Any]) -> str:
    counts, est = summary["counts"], summary["estimate"]
    cur = est["currency"]
    lines = [f"{summary['name']} ({summary['type']}), stage {summary['stage']}: {counts['requests']:,} requests", ""]
    for title, key in (("model", "by_model"), ("language", "by_language"), ("class/topic", "by_label")):
        if key in counts:
            lines.append(f"requests by {title}:")
            lines += [f"  {name or '-':<40} {n:>10,}" for name, n in counts[key].items()]
    lines += ["", f"ESTIMATED tokens and cost ({est['note']}; prices checked {est['prices_checked']}):",
              f"  {'model':<36} {'input tok':>12} {'output tok':>12} {'online':>16} {'batch':>16}"]
    for model, m in est["by_model"].items():
        lines.append(f"  {model:<36} {m['input_tokens']:>12,} {m['output_tokens']:>12,} "
                     f"{_money(m['cost_online'], cur):>16} {_money(m['cost_batch'], cur):>16}")
    lines.append(f"  {'total':<36} {est['input_tokens']:>12,} {est['output_tokens']:>12,} "
                 f"{_money(est['cost_online'], cur):>16} {_money(est['cost_batch'], cur):>16}")
    if est["cost_excludes"]:
        lines.append(f"  no price known for {', '.join(est['cost_excludes'])}: totals exclude them (add --prices)")
    return "\n".join(lines)


@main.command("schema")
def schema_cmd() -> None:
    """Print the JSON Schema of the spec format (point your editor's YAML plugin at it)."""
    from datafast.compiler.spec import spec_json_schema

    click.echo(json.dumps(spec_json_schema(), indent=2, ensure_ascii=False))


if __name__ == "__main__":  # pragma: no cover
    main()
