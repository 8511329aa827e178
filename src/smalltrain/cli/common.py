"""What every CLI command shares: consoles, the home folder, and error handling."""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import typer
from rich.console import Console
from rich.markup import escape

from smalltrain import paths
from smalltrain.errors import ModelNotFound, SmallTrainError

console = Console()
err_console = Console(stderr=True)

F = TypeVar("F", bound=Callable[..., Any])


class _State:
    debug: bool = False
    home: Path | None = None


state = _State()


def home() -> Path:
    """The smalltrain home for this invocation (``--home``, then ``$SMALLTRAIN_HOME``)."""
    return paths.home(state.home)


def fail(message: str, code: int = 1) -> NoReturn:
    """Print one clear error line on stderr and exit non-zero."""
    # The message is text, not markup: "smalltrain[ray]" must not lose its "[ray]".
    err_console.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def print_json(data: Any) -> None:
    """Print exactly one JSON document on stdout (no rich markup)."""
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")
    sys.stdout.flush()


def handle_errors(func: F) -> F:
    """Turn expected errors into one stderr line and exit code 1 (tracebacks with --debug)."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except (typer.Exit, typer.Abort, KeyboardInterrupt):
            raise
        except (
            SmallTrainError,
            FileNotFoundError,
            PermissionError,
            KeyError,
            ValueError,
            TypeError,
        ) as exc:
            if state.debug:
                raise
            message = str(exc)
            if isinstance(exc, KeyError) and exc.args:
                message = str(exc.args[0])
            fail(message)

    return wrapper  # type: ignore[return-value]


def find_registered_model(ref: str) -> Any:
    """The registered model ``ref`` names: "DATASET/NAME", or "NAME" when it is unique.

    Raises:
        ModelNotFound: no model, or several, with that name; the message says what to do.
    """
    from smalltrain.paths import models_dir
    from smalltrain.store import ModelStore

    dataset, _, name = ref.rpartition("/")
    matches = [
        m
        for m in ModelStore(models_dir(home())).list(dataset or None)
        if m.name == name and (not dataset or m.dataset == dataset)
    ]
    if len(matches) > 1:
        options = ", ".join(f"{m.dataset}/{m.name}" for m in matches)
        raise ModelNotFound(f"model name {name!r} is ambiguous; use one of: {options}")
    if not matches:
        raise ModelNotFound(
            f"{ref!r} is not a file, a folder or a registered model. "
            "List models with `smalltrain models list`, or give a run folder or .pt file."
        )
    return matches[0]
