"""Starting without a checkout: the example specs and the vendor emulators ship in the package.

`datafast init [--type T]` copies a commented example spec (and the data file it reads) into the working
directory; `datafast emulate` serves the loopback emulators of OpenAI, Anthropic, Gemini, Ollama and the
Hugging Face Hub, so every command can be tried without a key. Installed, the examples are the package
`datafast.examples` (the repository's `specs/`) and the emulators `datafast.emulators` (`tests/emulators/`);
in a source checkout they are read from those folders.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import yaml

from .outdir import BadInput

EXAMPLES = {"classification": "classification.yaml", "text": "text.yaml", "conversation": "conversation.yaml",
            "mcq": "mcq.yaml", "preference": "preference.yaml", "generic": "generic.yaml",
            "quickstart": "quickstart.yaml", "quickstart-preference": "quickstart-preference.yaml"}


def examples_dir() -> Path:
    """Where the example specs are: the installed `datafast.examples`, else the checkout's `specs/`."""
    try:
        from importlib import resources

        found = Path(str(resources.files("datafast.examples")))
        if (found / "classification.yaml").is_file():
            return found
    except (ModuleNotFoundError, TypeError):
        pass
    return Path(__file__).resolve().parent.parent / "specs"


def init(kind: str, target_dir: str | Path = ".", *, force: bool = False) -> list[Path]:
    """Copy the example spec of a dataset type (and the data file it reads) into `target_dir`.

    Returns the files written. Raises BadInput for an unknown type or a file that exists (unless `force`).
    """
    if kind not in EXAMPLES:
        raise BadInput(f"--type {kind!r}: one of {', '.join(EXAMPLES)}")
    source_dir = examples_dir()
    spec = source_dir / EXAMPLES[kind]
    target = Path(target_dir)
    wanted = [(spec, target / spec.name)]
    source = (yaml.safe_load(spec.read_text(encoding="utf-8")) or {}).get("source") or {}
    if isinstance(source, dict) and source.get("file"):
        wanted.append((source_dir / source["file"], target / source["file"]))
    existing = [str(dst) for _, dst in wanted if dst.exists()]
    if existing and not force:
        raise BadInput(f"{', '.join(existing)} exists already; pass --force to overwrite, or run init elsewhere")
    written = []
    for src, dst in wanted:
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, dst)
        written.append(dst)
    return written


def emulators_main(argv: list[str]) -> int:
    """Run `python -m datafast.emulators ARGS` in this process (the checkout's tests.emulators as fallback)."""
    module: Any
    try:
        from datafast.emulators import __main__ as module
    except ModuleNotFoundError:  # a source checkout (or an editable install older than the package mapping)
        import sys

        checkout = str(Path(__file__).resolve().parent.parent)
        if checkout not in sys.path:
            sys.path.insert(0, checkout)
        from tests.emulators import __main__ as module
    return int(module.main(argv, prog="datafast emulate"))


def commands() -> list[Any]:
    """The click commands `init` and `emulate`, registered by datafast.cli."""
    import click

    @click.command("init")
    @click.option("--type", "kind", type=click.Choice(list(EXAMPLES)), default="quickstart", show_default=True,
                  help="Which example: a dataset type, or a quickstart that runs on the embedded model.")
    @click.option("-o", "--out", "target_dir", type=click.Path(file_okay=False), default=".", show_default=True,
                  help="Folder to write it into.")
    @click.option("--force", is_flag=True, help="Overwrite files that exist.")
    def init_cmd(kind: str, target_dir: str, force: bool) -> None:
        """Write a commented example spec (and the data it reads) to start from."""
        try:
            written = init(kind, target_dir, force=force)
        except BadInput as err:
            click.echo(f"error: {err}", err=True)
            raise SystemExit(2) from None
        for path in written:
            click.echo(f"wrote {path}")
        spec = written[0]
        click.echo(f"next: datafast plan {spec}   # counts and cost, no key needed; then datafast run {spec}")

    @click.command("emulate", context_settings={"ignore_unknown_options": True, "help_option_names": []})
    @click.argument("args", nargs=-1, type=click.UNPROCESSED)
    def emulate_cmd(args: tuple[str, ...]) -> None:
        """Serve loopback emulators of the vendors and the Hub, to try everything without a key.

        `datafast emulate all --port 18080 --max-seconds 3600` serves openai, anthropic, gemini, ollama and hub
        on ports 18080..18084 of 127.0.0.1 and prints the variable to set for each; `datafast emulate --help`
        lists the options."""
        raise SystemExit(emulators_main(list(args)))

    return [init_cmd, emulate_cmd]
