"""``smalltrain config show [TASK] [DATASET]``: every config field, its default, the auto
preset's value for a dataset, and what it does."""

from __future__ import annotations

from typing import Any

import typer

from smalltrain.cli.common import JSON_HELP, console, handle_errors, print_json
from smalltrain.cli.output import print_table, readable

__all__ = ["app", "field_rows"]

app = typer.Typer(name="config", help="Training configs: every field, its default and meaning.")


def field_rows(task_name: str, dataset: str | None, preset: str) -> list[dict[str, Any]]:
    """One row per config field of ``task_name``: default, preset value (with a dataset),
    description."""
    from smalltrain.tasks import get_task

    task = get_task(task_name)
    defaults = task.config_from_dict({}).to_dict()
    chosen: dict[str, Any] = {}
    if dataset is not None:
        from smalltrain.cli.audio import _dataset_path

        report = task.inspect(_dataset_path(dataset))
        chosen = task.adaptive_config(report, "auto", preset=preset).to_dict()
    helper = getattr(task, "field_help", None)
    described = dict(helper()) if helper else {}
    return [
        {"field": name, "default": value, preset: chosen.get(name, value) if chosen else None,
         "description": described.get(name, "")}
        for name, value in defaults.items()
    ]  # fmt: skip


def _task_and_dataset(first: str | None, second: str | None) -> tuple[list[str], str | None]:
    from smalltrain.tasks import detect_kind, task_names

    if first is not None and first in task_names():
        return [first], second
    dataset = first if first is not None else second
    if dataset is None:
        return task_names(), None
    from smalltrain.cli.audio import _dataset_path

    return [detect_kind(_dataset_path(dataset))], dataset


@app.command("show")
@handle_errors
def show_cmd(
    first: str | None = typer.Argument(None, metavar="[TASK]", help="audio | detect."),
    second: str | None = typer.Argument(
        None, metavar="[DATASET]", help="A dataset (name or path): show the preset's values for it."
    ),
    preset: str = typer.Option("auto", "--preset", help="The preset to show for DATASET."),
    as_json: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """Every config field: its default, the preset's value for DATASET, and what it does.

    Set any field with --set FIELD=VALUE, or write them to a YAML file for train --config.
    """
    names, dataset = _task_and_dataset(first, second)
    tables = {name: field_rows(name, dataset, preset) for name in names}
    if as_json:
        print_json({"dataset": dataset, "preset": preset if dataset else None, "tasks": tables})
        return
    for name, rows in tables.items():
        headers = ["field", "default", *([f"{preset} ({dataset})"] if dataset else []),
                   "description"]  # fmt: skip
        cells = [[r["field"], readable(r["default"]),
                  *([readable(r[preset])] if dataset else []), r["description"]]
                 for r in rows]  # fmt: skip
        print_table(headers, cells, title=f"{name} config", wrap=["description"])
        console.print()
