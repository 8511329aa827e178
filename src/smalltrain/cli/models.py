"""``smalltrain models``: list, show, activate and delete registered models.

``models list`` ranks each dataset's models by the metric its task optimises (the headline:
``val/sc`` for audio, lower is better; ``mAP50-95`` for detection, higher is better), best
first, and marks the active model with ``*``.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import typer

from smalltrain.cli.common import JSON_HELP, console, handle_errors, print_json, say, warn
from smalltrain.cli.follow import open_manager
from smalltrain.cli.output import (
    fmt_number,
    local_time,
    plural,
    print_fields,
    print_table,
    readable,
)

if TYPE_CHECKING:
    from smalltrain.store.models import ModelInfo

__all__ = ["app", "ranked"]

app = typer.Typer(name="models", help="Trained models: list, show, activate, delete.")

_MODEL_HELP = "The model: NAME, or DATASET/NAME when several datasets have one of that name."
_DATASET = typer.Option(None, "--dataset", help="The model's dataset (or write DATASET/NAME).")
_DATASET_OLD = typer.Option(None, "-d", hidden=True)


def _metric(model: ModelInfo) -> str:
    from smalltrain.engine.context import metric_label  # the event classes: not at start-up

    if model.headline_value is None:
        return "-"
    return f"{metric_label(model.headline_metric)} {fmt_number(model.headline_value)}"


def ranked(models: list[ModelInfo]) -> list[ModelInfo]:
    """Per dataset (by name), best first on the task's metric; models without one last."""
    from smalltrain.engine.context import metric_mode

    def key(m: ModelInfo) -> tuple[Any, ...]:
        value = m.headline_value
        if value is None or not math.isfinite(value):
            return (m.dataset, 1, 0.0, m.created)
        sign = 1.0 if metric_mode(m.headline_metric, m.headline_mode) == "min" else -1.0
        return (m.dataset, 0, sign * value, m.created)

    return sorted(models, key=key)


def _split(name: str, dataset: str | None) -> tuple[str, str | None]:
    """``DATASET/NAME`` or ``NAME`` with ``--dataset``."""
    if "/" in name and dataset is None:
        dataset, name = name.split("/", 1)
    return name, dataset


@app.command("list")
@handle_errors
def list_cmd(
    dataset: str | None = typer.Argument(None, metavar="[DATASET]", help="Only this dataset."),
    as_json: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """List models, each dataset's best first (* marks the active model)."""
    models = ranked(open_manager().list_models(dataset))
    if as_json:
        print_json([m.to_dict() for m in models])
        return
    if not models and dataset:
        console.print(f"no model of dataset {dataset!r}; all models: smalltrain models list")
        return
    if not models:
        console.print("no models yet; train one with: smalltrain train DATASET")
        return
    rows = [["*" if m.active else "", m.dataset, m.name, m.task, str(m.epochs_completed),
             _metric(m), local_time(m.created), m.job_id or "-"] for m in models]  # fmt: skip
    headers = ["", "dataset", "name", "task", "epochs", "metric (best first)", "created", "job"]
    print_table(headers, rows)
    console.print("* = active: each dataset's first model, or a later one that beats it "
                  "(smalltrain models activate NAME to choose)")  # fmt: skip


def _show_rows(model: ModelInfo) -> list[tuple[str, Any]]:
    from smalltrain.engine.context import metric_mode

    direction = metric_mode(model.headline_metric, model.headline_mode)
    better = "lower is better" if direction == "min" else "higher is better"
    rows: list[tuple[str, Any]] = [
        ("name", f"{model.dataset}/{model.name}"),
        ("active", "yes" if model.active else "no"),
        ("task", model.task or "-"),
        ("metric", f"{_metric(model)} ({better})"),
        ("epochs", model.epochs_completed),
        ("created", local_time(model.created)),
        ("base model", model.base_model),
        ("dataset", model.dataset_snapshot),
        ("job", model.job_id),
        ("folder", str(model.path)),
        ("weights", f"{model.weights} ({model.weights_size / 2**20:.1f} MiB)"),
        ("sha256", model.weights_sha256 or "-"),
        ("versions", model.versions),
    ]
    rows += [(k.replace("_", " "), readable(v)) for k, v in sorted(model.extra.items())]
    from smalltrain.service.exports import list_exports

    for export in list_exports(model.path):
        rows.append((f"export {export.format}", f"{export.path} ({export.size / 2**20:.1f} MiB)"))
    return rows


@app.command("show")
@handle_errors
def show_cmd(
    name: str = typer.Argument(..., metavar="MODEL", help=_MODEL_HELP),
    dataset: str | None = _DATASET,
    dataset_old: str | None = _DATASET_OLD,
    as_json: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """Show one model's registry entry and files."""
    model = open_manager().get_model(*_split(name, dataset or dataset_old))
    if as_json:
        from smalltrain.service.exports import list_exports

        exports = [e.to_dict() for e in list_exports(model.path)]
        print_json({**model.to_dict(), "exports": exports})
        return
    print_fields(_show_rows(model))


@app.command("activate")
@handle_errors
def activate_cmd(
    name: str = typer.Argument(..., metavar="MODEL", help=_MODEL_HELP),
    dataset: str | None = _DATASET,
    dataset_old: str | None = _DATASET_OLD,
    as_json: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """Make a model its dataset's active model (what DATASET means in predict, generate...)."""
    manager = open_manager()
    already = manager.get_model(*_split(name, dataset or dataset_old)).active
    model = manager.set_active_model(*_split(name, dataset or dataset_old))
    if as_json:
        print_json(model.to_dict())
        return
    now = "was already" if already else "is now"
    console.print(f"{model.name!r} {now} the active model of {model.dataset!r}")


@app.command("delete")
@handle_errors
def delete_cmd(
    name: str = typer.Argument(..., metavar="MODEL", help=_MODEL_HELP),
    dataset: str | None = _DATASET,
    dataset_old: str | None = _DATASET_OLD,
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation."),
    as_json: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """Delete a model and its files (deleting the active model makes the best remaining one
    on the task's metric active)."""
    manager = open_manager()
    model = manager.get_model(*_split(name, dataset or dataset_old))
    users = manager.jobs_using_model(model)
    if users:
        ids = ", ".join(f"{j.id} ({j.status.value})" for j in users)
        warn(
            f"{plural(len(users), 'job')} will fail without it: {ids} fine-tune(s) from it; "
            "cancel them first with: smalltrain jobs cancel ID"
        )
    if not yes and not typer.confirm(
        f"Delete model {model.name!r} of {model.dataset!r}?", err=True
    ):
        say(f"kept model {model.name!r}: nothing was deleted")
        raise typer.Exit(1)
    outcome = manager.model_queries.delete_and_promote(model.name, model.dataset)
    if as_json:
        active = f"{outcome.active.dataset}/{outcome.active.name}" if outcome.active else None
        print_json(
            {
                "deleted": f"{model.dataset}/{model.name}",
                "path": str(model.path),
                "active": active,
                "why": outcome.why,
            }
        )
        return
    console.print(f"deleted model {model.name!r} of {model.dataset!r}")
    if outcome.note():
        console.print(outcome.note())
