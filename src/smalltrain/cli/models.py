"""``smalltrain models``: list, show, activate and delete registered models."""

from __future__ import annotations

import typer
from rich.table import Table

from smalltrain.cli.common import console, handle_errors, print_json
from smalltrain.cli.follow import open_manager
from smalltrain.store.models import ModelInfo

__all__ = ["app"]

app = typer.Typer(name="models", help="Trained models: list, show, activate, delete.")

_DATASET = typer.Option(None, "--dataset", "-d", help="The dataset (needed if NAME is ambiguous).")


def _metric(model: ModelInfo) -> str:
    if model.headline_value is None:
        return "-"
    return f"{model.headline_metric} {model.headline_value:.4g}"


@app.command("list")
@handle_errors
def list_cmd(
    dataset: str | None = typer.Argument(None, help="Only this dataset's models."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """List registered models (* marks each dataset's active model)."""
    models = open_manager().list_models(dataset)
    if as_json:
        print_json([m.to_dict() for m in models])
        return
    if not models:
        console.print("no models yet; train one with: smalltrain train DATASET")
        return
    table = Table("", "dataset", "name", "task", "epochs", "metric", "created", "job")
    for m in models:
        table.add_row("*" if m.active else "", m.dataset, m.name, m.task, str(m.epochs_completed),
                      _metric(m), m.created, (m.job_id or "-")[:8])  # fmt: skip
    console.print(table)


@app.command("show")
@handle_errors
def show_cmd(
    name: str = typer.Argument(..., help="The model name."),
    dataset: str | None = _DATASET,
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Show one model's registry entry and files."""
    model = open_manager().get_model(name, dataset)
    if as_json:
        print_json(model.to_dict())
        return
    for key, value in model.to_dict().items():
        console.print(f"[bold]{key:>20}[/]  {value}", highlight=False)


@app.command("activate")
@handle_errors
def activate_cmd(name: str = typer.Argument(..., help="The model name."),
                 dataset: str | None = _DATASET) -> None:  # fmt: skip
    """Make a model its dataset's active model."""
    model = open_manager().set_active_model(name, dataset)
    console.print(f"{model.name!r} is now the active model of {model.dataset!r}", highlight=False)


@app.command("delete")
@handle_errors
def delete_cmd(
    name: str = typer.Argument(..., help="The model name."),
    dataset: str | None = _DATASET,
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation."),
) -> None:
    """Delete a model and its files (deleting the active model clears 'active')."""
    manager = open_manager()
    model = manager.get_model(name, dataset)
    if not yes:
        typer.confirm(f"Delete model {model.name!r} of {model.dataset!r}?", abort=True)
    manager.delete_model(model.name, model.dataset)
    console.print(f"deleted model {model.name!r} of {model.dataset!r}", highlight=False)
