"""The one way tests call the CLI in-process: ``cli(*args, code=0)`` and ``cli_json(*args)``."""

from __future__ import annotations

import json
from typing import Any

from typer.testing import CliRunner

from smalltrain.cli.main import app


def cli(*args: str, code: int = 0) -> Any:
    """Run ``smalltrain ARGS`` in-process; assert its exit code; return the result (``.stdout``,
    ``.stderr``)."""
    result = CliRunner().invoke(app, list(args))
    assert result.exit_code == code, (args, result.stdout, result.stderr, result.exception)
    return result


def cli_json(*args: str) -> Any:
    """``cli(*args, "--json")``, parsed."""
    return json.loads(cli(*args, "--json").stdout)
