"""Entry point of the ``smalltrain`` console script.

The global options ``--home DIR`` and ``--debug`` are accepted before or after the command
(``smalltrain --home h jobs list`` and ``smalltrain jobs list --home h`` are the same): the
top-level group moves them in front before parsing. Help is plain text (no boxes), so boolean
flags read as flags and help pipes cleanly; ``-h`` is ``--help`` everywhere.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
from typer.core import TyperGroup

from smalltrain import __version__
from smalltrain.cli import (
    audio,
    config,
    datasets,
    demo,
    detect,
    evaluate,
    explore,
    export,
    jobs,
    models,
    sweep,
    system,
    train,
    ui,
    weights,
)
from smalltrain.cli.common import set_home, state

#: Options of the top-level group that may also be written after the command.
GLOBAL_VALUE_OPTIONS = ("--home",)
GLOBAL_FLAGS = ("--debug",)


def hoist_global_options(args: list[str]) -> list[str]:
    """Move ``--home DIR`` / ``--home=DIR`` / ``--debug`` found after the command to the front.

    Everything after a bare ``--`` is left alone (it is data, not options).
    """
    front: list[str] = []
    rest: list[str] = []
    i = 0
    while i < len(args):
        arg = args[i]
        if arg == "--":
            rest += args[i:]
            break
        name = arg.split("=", 1)[0]
        if arg in GLOBAL_FLAGS or name in GLOBAL_VALUE_OPTIONS and "=" in arg:
            front.append(arg)
        elif arg in GLOBAL_VALUE_OPTIONS and i + 1 < len(args):
            front += [arg, args[i + 1]]
            i += 1
        else:
            rest.append(arg)
        i += 1
    return front + rest


class _Group(TyperGroup):
    """The top-level group: global options anywhere on the line."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        return super().parse_args(ctx, hoist_global_options(list(args)))


app = typer.Typer(
    name="smalltrain",
    cls=_Group,
    help="Train generative audio models and YOLO detectors on small datasets, on your machine.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=True,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"smalltrain {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    ctx: typer.Context,
    home: Path | None = typer.Option(
        None,
        "--home",
        metavar="DIR",
        help="smalltrain home folder (default: $SMALLTRAIN_HOME or the user data dir). "
        "Accepted before or after the command.",
    ),
    debug: bool = typer.Option(
        False, "--debug", help="Show full tracebacks on errors (before or after the command)."
    ),
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    restore = set_home(home)
    state.debug = debug
    # In one process (tests, an embedding app) the next invocation starts from a clean slate.
    ctx.call_on_close(restore)


audio.register(app)
demo.register(app)
train.register(app)
system.register(app)
evaluate.register(app)
explore.register(app)
detect.register(app)
export.register(app)
app.add_typer(config.app, name="config")
ui.register(app)
app.add_typer(datasets.app, name="datasets")
app.add_typer(jobs.app, name="jobs")
app.add_typer(models.app, name="models")
app.add_typer(weights.app, name="weights")
app.add_typer(sweep.app, name="sweep")


def main() -> None:
    """Console-script entry point."""
    app(prog_name="smalltrain")


if __name__ == "__main__":
    main()
