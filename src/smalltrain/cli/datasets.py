"""``smalltrain datasets``: register, list, show and forget datasets."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import typer
from rich.table import Table

from smalltrain.cli.common import console, handle_errors, home, print_json
from smalltrain.paths import cache_dir, db_path
from smalltrain.service.datasets import register_dataset
from smalltrain.store.datasets import DatasetStore
from smalltrain.store.db import JobStore

__all__ = ["app"]

app = typer.Typer(name="datasets", help="Registered datasets: add, list, show, remove.")


def _store() -> DatasetStore:
    root = home()
    return DatasetStore(JobStore(db_path(root)), cache_root=cache_dir(root))


@app.command("add")
@handle_errors
def add_cmd(
    name: str = typer.Argument(..., help="A short name, used as a folder name."),
    path: Path = typer.Argument(..., help="A folder of audio, or a YOLO data.yaml (or folder)."),
    kind: str | None = typer.Option(None, "--kind", help="audio | detect (default: detected)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Inspect a dataset and register it under NAME (again: re-register it)."""
    record = register_dataset(_store(), name, path, kind=kind)
    if as_json:
        print_json(record.to_dict())
        return
    console.print(
        f"dataset {record.name!r} ({record.kind}): {record.snapshot} at {record.path}",
        highlight=False,
    )


@app.command("list")
@handle_errors
def list_cmd(as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """List registered datasets."""
    records = _store().list()
    if as_json:
        print_json([r.to_dict() for r in records])
        return
    if not records:
        console.print("no datasets yet; add one with: smalltrain datasets add NAME PATH")
        return
    table = Table("name", "kind", "snapshot", "path", "added")
    for r in records:
        added = dt.datetime.fromtimestamp(r.created_at).strftime("%Y-%m-%d %H:%M")
        table.add_row(r.name, r.kind, r.snapshot, r.path, added)
    console.print(table)


@app.command("show")
@handle_errors
def show_cmd(
    name: str = typer.Argument(..., help="The dataset name."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Show a dataset's summary, and whether it changed since it was registered."""
    store = _store()
    record = store.get(name)
    changed = store.changed_since(name)
    if as_json:
        print_json({**record.to_dict(), "changed_since_registered": changed})
        return
    console.print(f"[bold]{record.name}[/] ({record.kind}) {record.path}", highlight=False)
    console.print(f"  {record.snapshot}", highlight=False)
    for key, value in record.summary.items():
        console.print(f"  {key}: {value}", highlight=False, markup=False)
    if changed:
        console.print(
            "[yellow]  changed on disk since it was registered; models trained before may "
            f"differ. Re-register with: smalltrain datasets add {name} {record.path}[/]"
        )


@app.command("remove")
@handle_errors
def remove_cmd(name: str = typer.Argument(..., help="The dataset name.")) -> None:
    """Forget a dataset (its files and models stay where they are)."""
    record = _store().remove(name)
    console.print(f"forgot dataset {record.name!r}; {record.path} is untouched", highlight=False)
