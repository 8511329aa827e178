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

from smalltrain import paths
from smalltrain.errors import SmallTrainError

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
    err_console.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
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
