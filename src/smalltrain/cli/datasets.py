"""``smalltrain datasets``: register, list, show and forget datasets.

``datasets list`` shows every dataset this home knows: the registered ones (``datasets add``,
or trained on by path, which registers them) and any that only has models in the registry
(trained before datasets were registered automatically).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from smalltrain.cli.common import JSON_HELP, console, handle_errors, home, print_json, warn
from smalltrain.cli.output import plural, print_fields, print_table, readable
from smalltrain.errors import DatasetNotFound
from smalltrain.paths import cache_dir, db_path, models_dir

if TYPE_CHECKING:
    from smalltrain.store import ModelStore
    from smalltrain.store.datasets import DatasetStore

__all__ = ["app"]

app = typer.Typer(name="datasets", help="Registered datasets: add, list, show, remove.")


def _store() -> DatasetStore:
    # The stores load per command, not at start-up: `smalltrain --help` needs none of them.
    from smalltrain.store.datasets import DatasetStore
    from smalltrain.store.db import JobStore

    root = home()
    return DatasetStore(JobStore(db_path(root)), cache_root=cache_dir(root))


def _model_store() -> ModelStore:
    from smalltrain.store import ModelStore

    return ModelStore(models_dir(home()))


@app.command("add")
@handle_errors
def add_cmd(
    name: str = typer.Argument(..., help="A short name, used as a folder name."),
    path: Path = typer.Argument(..., help="A folder of audio, or a YOLO data.yaml (or folder)."),
    task: str | None = typer.Option(None, "--task", help="audio | detect (default: detected)."),
    kind_old: str | None = typer.Option(None, "--kind", hidden=True),
    replace: bool = typer.Option(
        False, "--replace", help="Point NAME at PATH when NAME is registered for another folder."
    ),
    as_json: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """Inspect a dataset and register it under NAME (again: re-register it)."""
    from smalltrain.service.datasets import names_for_path, register_dataset

    kind = task or kind_old
    store = _store()
    others = [n for n in names_for_path(store, path) if n != name] if path.exists() else []
    record = register_dataset(store, name, path, kind=kind, replace=replace)
    if others:
        warn(
            f"{record.path} is also registered as {', '.join(repr(o) for o in others)}; each "
            "name keeps its own models and active model. To keep one name, forget the other "
            f"with: smalltrain datasets remove {others[0]}"
        )
    if as_json:
        print_json({**record.to_dict(), "also_registered_as": others})
        return
    console.print(f"dataset {record.name!r} ({record.kind}): {record.snapshot} at {record.path}")


def _models_only(name: str, store: Any) -> dict[str, Any] | None:
    """``datasets list``'s row of ``name`` when it has models but no record, else None."""
    try:
        store.get(name)
        return None
    except DatasetNotFound:
        pass
    return next((r for r in _unregistered(set()) if r["name"] == name), None)


def _unregistered(known: set[str]) -> list[dict[str, Any]]:
    """Datasets that have models but no record (trained by path before registration)."""
    store = _model_store()
    out = []
    for name in store.datasets():
        if name in known:
            continue
        models = store.list(name)
        tasks = sorted({m.task for m in models if m.task})
        out.append({"name": name, "kind": ", ".join(tasks) or "-", "registered": False,
                    "snapshot": models[-1].dataset_snapshot if models else "",
                    "path": None, "models": len(models)})  # fmt: skip
    return out


@app.command("list")
@handle_errors
def list_cmd(as_json: bool = typer.Option(False, "--json", help=JSON_HELP)) -> None:
    """List every dataset: registered, trained on, or holding models."""
    records = _store().list()
    counts = {name: len(_model_store().list(name))
              for name in _model_store().datasets()}  # fmt: skip
    rows: list[dict[str, Any]] = [
        {**r.to_dict(), "registered": True, "models": counts.get(r.name, 0)} for r in records
    ]
    rows += _unregistered({r.name for r in records})
    if as_json:
        print_json(rows)
        return
    if not rows:
        console.print("no datasets yet; add one with: smalltrain datasets add NAME PATH")
        return
    table = []
    for r in rows:
        added = (dt.datetime.fromtimestamp(r["created_at"]).strftime("%Y-%m-%d %H:%M")
                 if r.get("created_at") else "-")  # fmt: skip
        path = r["path"] or "(models only: path unknown)"
        table.append([r["name"], r["kind"], r["snapshot"] or "-", str(r["models"]), path, added])
    print_table(["name", "kind", "contents", "models", "path", "added"], table,
                right=["models"], wrap=["path", "contents"])  # fmt: skip


@app.command("show")
@handle_errors
def show_cmd(
    name: str = typer.Argument(..., help="The dataset name."),
    as_json: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """Show a dataset's summary, and whether it changed since it was registered."""
    from smalltrain.service.datasets import names_for_path

    store = _store()
    only = _models_only(name, store)
    if only is not None:
        if as_json:
            print_json(only)
            return
        print_fields([("name", name), ("kind", only["kind"]), ("models", only["models"]),
                      ("registered", "no: it exists through its models (trained by path "
                       "before it had a name); its path is unknown")])  # fmt: skip
        console.print(f"register it with: smalltrain datasets add {name} PATH")
        return
    record = store.get(name)
    changed = store.changed_since(name)
    others = [n for n in names_for_path(store, record.path) if n != name]
    if as_json:
        print_json({**record.to_dict(), "changed_since_registered": changed,
                    "also_registered_as": others})  # fmt: skip
        return
    added = dt.datetime.fromtimestamp(record.created_at).strftime("%Y-%m-%d %H:%M")
    rows: list[tuple[str, Any]] = [
        ("name", record.name),
        ("kind", record.kind),
        ("path", record.path),
        ("contents", record.snapshot),
        ("registered", added),
    ]
    rows += [(k.replace("_", " "), readable(v)) for k, v in record.summary.items()]
    print_fields(rows)
    if others:
        warn(f"the same path is also registered as {', '.join(repr(o) for o in others)}")
    if changed:
        warn(
            "changed on disk since it was registered; models trained before may differ. "
            f"Re-register with: smalltrain datasets add {name} {record.path}"
        )


@app.command("remove")
@handle_errors
def remove_cmd(
    name: str = typer.Argument(..., help="The dataset name."),
    as_json: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """Forget a dataset (its files and models stay where they are)."""
    store = _store()
    only = _models_only(name, store)
    if only is not None:
        raise DatasetNotFound(
            f"dataset {name!r} is not registered, so there is nothing to forget: it exists "
            f"through its {plural(only['models'], 'model')} (smalltrain models list {name}), "
            f"and leaves the list when they are deleted (smalltrain models delete {name}/NAME)"
        )
    record = store.remove(name)
    if as_json:
        print_json({"removed": record.name, "path": record.path})
        return
    console.print(f"forgot dataset {record.name!r}; {record.path} is untouched")
