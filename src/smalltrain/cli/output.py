"""Tables and readable values for the CLI.

- ``print_table``: a rich table in a terminal; plain aligned columns (no box characters, no
  wrapping) when stdout is a pipe or a file. Ids and names are never shortened in either.
- ``readable``: numbers rounded to 4 significant digits, mappings as ``key: value, ...``,
  lists joined with commas, None as ``-``: never a Python repr.
- ``print_fields``: ``label  value`` lines with the labels aligned.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from smalltrain.cli.common import console
from smalltrain.engine.plain import fmt_number, plural  # one formatter for every face

__all__ = ["fmt_number", "local_time", "plural", "print_fields", "print_table", "readable"]


def local_time(value: float | str | None) -> str:
    """A moment as every table and show command prints it: local time, to the second
    (``2026-12-07 13:03:01``). Takes a Unix time (jobs) or an ISO 8601 UTC text (models)."""
    if value is None or value == "":
        return "-"
    try:
        if isinstance(value, str):
            moment = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
            if moment.tzinfo is None:
                return moment.strftime("%Y-%m-%d %H:%M:%S")
            return moment.astimezone().strftime("%Y-%m-%d %H:%M:%S")
        return dt.datetime.fromtimestamp(value).strftime("%Y-%m-%d %H:%M:%S")
    except (ValueError, OverflowError, OSError):
        return str(value)


def readable(value: Any) -> str:
    """Any field value as text a person reads (see the module docstring)."""
    if value is None or value == "":
        return "-"
    if isinstance(value, (bool, int, float)):
        return fmt_number(value)
    if isinstance(value, Mapping):
        return ", ".join(f"{k}: {readable(v)}" for k, v in value.items()) or "-"
    if isinstance(value, (list, tuple, set)):
        return ", ".join(readable(v) for v in value) or "-"
    return str(value)


def print_fields(rows: Iterable[tuple[str, Any]], out: Console | None = None) -> None:
    """Print ``label  value`` lines, labels right-aligned to the longest one."""
    rows = list(rows)
    width = max((len(label) for label, _ in rows), default=0)
    for label, value in rows:
        text = value if isinstance(value, str) else readable(value)
        (out or console).print(Text.assemble((f"{label:>{width}}", "bold"), "  ", text))


def print_table(
    headers: Sequence[str],
    rows: Sequence[Sequence[Any]],
    *,
    title: str | None = None,
    right: Iterable[str] = (),
    wrap: Iterable[str] = (),
    out: Console | None = None,
) -> None:
    """Print rows under ``headers``: a rich table on a terminal, plain columns otherwise.

    Args:
        right: headers of right-aligned (numeric) columns.
        wrap: headers of columns that may wrap in a narrow terminal (free text); every other
            column (ids, names, numbers) keeps its full width.
    """
    out = out or console
    cells = [[c if isinstance(c, str) else readable(c) for c in row] for row in rows]
    right, wrap = set(right), set(wrap)
    if not out.is_terminal:  # one line per row, for grep and cut: a cell's lines joined
        cells = [[_one_line(c) for c in row] for row in cells]
        _plain(out, headers, cells, title, right)
        return
    table = Table(title=title, box=box.SIMPLE_HEAD, title_justify="left")
    for i, header in enumerate(headers):
        longest = max([len(header), *(len(r[i]) for r in cells)])
        table.add_column(
            header,
            justify="right" if header in right else "left",
            no_wrap=header not in wrap,
            min_width=None if header in wrap else longest,
            overflow="fold",
        )
    for row in cells:
        table.add_row(*(Text(c) for c in row))
    out.print(table)


def _one_line(text: str) -> str:
    """A cell of several lines as one: its non-empty lines, stripped, joined by " / "."""
    if "\n" not in text and "\r" not in text:
        return text
    return " / ".join(line.strip() for line in text.splitlines() if line.strip())


def _plain(
    out: Console,
    headers: Sequence[str],
    cells: Sequence[Sequence[str]],
    title: str | None,
    right: set[str],
) -> None:
    widths = [max([len(h), *(len(r[i]) for r in cells)]) for i, h in enumerate(headers)]

    def line(values: Sequence[str]) -> str:
        parts = [
            v.rjust(w) if h in right else v.ljust(w)
            for v, w, h in zip(values, widths, headers, strict=True)
        ]
        return "  ".join(parts).rstrip()

    if title:
        out.print(title)
    out.print(line(headers))
    for row in cells:
        out.print(line(row))
