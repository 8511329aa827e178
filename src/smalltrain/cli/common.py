"""What every CLI command shares: consoles, the home folder, and error handling.

Output rules (docs/CLI.md):

- Text from users, files and errors is never parsed as rich markup: both consoles have markup
  and highlighting off, and styled words are ``rich.text.Text`` objects built by ``styled``.
- Lines are never wrapped by us (``soft_wrap``): a long path or command stays one line that
  can be pasted back.
- ``--json`` output is exactly one JSON document on stdout (``print_json``); everything
  meant for a person then goes to stderr.
"""

from __future__ import annotations

import functools
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import typer
from rich.console import Console
from rich.text import Text

from smalltrain import paths
from smalltrain.errors import SmallTrainError

console = Console(markup=False, highlight=False, soft_wrap=True, emoji=False)
err_console = Console(stderr=True, markup=False, highlight=False, soft_wrap=True, emoji=False)

F = TypeVar("F", bound=Callable[..., Any])

#: Help text of every ``--json`` flag.
JSON_HELP = "Print one JSON document on stdout (messages go to stderr)."


class _State:
    debug: bool = False
    home: Path | None = None


state = _State()


def set_home(value: Path | None) -> Callable[[], None]:
    """Use ``value`` as this invocation's home, here and in every process started from here.

    Returns a function that puts the previous home (and environment) back.
    """
    previous_state, previous_env = state.home, os.environ.get(paths.ENV_HOME)
    state.home = value
    if value is not None:
        # Children (workers, training processes, the detection presets' weights lookup) find
        # the same home through the environment.
        os.environ[paths.ENV_HOME] = str(Path(value).expanduser().resolve())

    def restore() -> None:
        state.home = previous_state
        if previous_env is None:
            os.environ.pop(paths.ENV_HOME, None)
        else:
            os.environ[paths.ENV_HOME] = previous_env

    return restore


def home() -> Path:
    """The smalltrain home for this invocation (``--home``, then ``$SMALLTRAIN_HOME``)."""
    return paths.home(state.home)


def styled(*parts: str | tuple[str, str]) -> Text:
    """A line of plain strings and ``(text, style)`` pairs; nothing in it is parsed as markup."""
    return Text.assemble(*parts)


def say(message: str | Text, *, json_mode: bool = False) -> None:
    """Print a line for a person: stdout, or stderr when stdout carries JSON."""
    (err_console if json_mode else console).print(message)


def warn(message: str) -> None:
    """One warning line on stderr."""
    err_console.print(styled(("warning:", "yellow"), " ", message))


def fail(message: str, code: int = 1) -> NoReturn:
    """Print one clear error line on stderr and exit non-zero."""
    err_console.print(styled(("error:", "bold red"), " ", message))
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
