"""Entry point of the ``smalltrain`` console script."""

from __future__ import annotations

from pathlib import Path

import typer

from smalltrain import __version__
from smalltrain.cli import (
    audio,
    datasets,
    demo,
    detect,
    evaluate,
    jobs,
    models,
    sweep,
    system,
    train,
)
from smalltrain.cli.common import state

app = typer.Typer(
    name="smalltrain",
    help="Train generative audio models and YOLO detectors on small datasets, on your machine.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"smalltrain {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    home: Path | None = typer.Option(
        None, "--home", help="smalltrain home folder (default: $SMALLTRAIN_HOME or user data dir)."
    ),
    debug: bool = typer.Option(False, "--debug", help="Show full tracebacks on errors."),
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    state.home = home
    state.debug = debug


audio.register(app)
demo.register(app)
train.register(app)
system.register(app)
evaluate.register(app)
detect.register(app)
app.add_typer(datasets.app, name="datasets")
app.add_typer(jobs.app, name="jobs")
app.add_typer(models.app, name="models")
app.add_typer(sweep.app, name="sweep")


def main() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":
    main()
