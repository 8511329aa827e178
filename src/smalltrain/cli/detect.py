"""Detection model commands: ``predict`` (boxes on images) and ``val`` (metrics on a dataset)."""

from __future__ import annotations

from pathlib import Path

import typer

from smalltrain.cli.common import console, find_registered_model, handle_errors, home, print_json
from smalltrain.errors import ModelNotFound, WeightsNotFound

_WEIGHT_CANDIDATES = (
    "weights/best.pt",
    "export/best.pt",
    "best.pt",
    "ultralytics/train/weights/best.pt",
)


def _weights_in(folder: Path) -> Path:
    for name in _WEIGHT_CANDIDATES:
        if (folder / name).is_file():
            return folder / name
    raise WeightsNotFound(
        f"{folder}: no best.pt inside (looked for {', '.join(_WEIGHT_CANDIDATES)})."
    )


def resolve_weights(ref: str) -> Path:
    """A .pt path, a model/run folder, or a registered model "DATASET/NAME" to a weights file.

    Raises:
        ModelNotFound: ``ref`` is neither a path nor a registered model.
    """
    path = Path(ref).expanduser()
    if path.is_file():
        return path
    if path.is_dir():
        return _weights_in(path)
    return Path(find_registered_model(ref).weights)


def active_weights(dataset: str) -> Path:
    """The weights of the active model of a dataset.

    Raises:
        ModelNotFound: the dataset has no active model.
    """
    from smalltrain.paths import models_dir
    from smalltrain.store import ModelStore

    info = ModelStore(models_dir(home())).get_active(dataset)
    if info is None:
        raise ModelNotFound(
            f"dataset {dataset!r} has no active model. Train one, or mark one active with "
            "`smalltrain models activate`, or pass --model PATH."
        )
    return Path(info.weights)


@handle_errors
def predict_cmd(
    images: Path = typer.Argument(..., help="An image, or a folder of images."),
    out: Path = typer.Option(
        ..., "--out", help="Folder for predictions.json and annotated images."
    ),
    dataset: str | None = typer.Option(None, "--dataset", help="Use this dataset's active model."),
    model: str | None = typer.Option(
        None, "--model", help="A .pt file, model folder or registered DATASET/NAME."
    ),
    conf: float = typer.Option(0.25, "--conf", min=0.0, max=1.0, help="Confidence threshold."),
    as_json: bool = typer.Option(False, "--json", help="Print the predictions as JSON."),
) -> None:
    """Detect objects in images with a trained model (the dataset's active model by default)."""
    from smalltrain.tasks.detection.predict import predict

    if (dataset is None) == (model is None):
        raise typer.BadParameter("give exactly one of --dataset NAME or --model PATH")
    weights = active_weights(dataset) if dataset else resolve_weights(str(model))
    records = predict(weights, images, out, conf=conf, home=home())
    if as_json:
        print_json(records)
        return
    total = sum(len(r["boxes"]) for r in records)
    console.print(f"{len(records)} images, {total} boxes -> {out / 'predictions.json'}")
    for r in records:
        names = ", ".join(f"{b['class_name']} {b['confidence']:.2f}" for b in r["boxes"]) or "-"
        console.print(f"  {Path(r['image']).name}: {names}", highlight=False)


@handle_errors
def val_cmd(
    model: str = typer.Argument(..., help="A .pt file, model folder or registered DATASET/NAME."),
    data: Path = typer.Option(..., "--data", help="A YOLO data.yaml (or its folder)."),
    imgsz: int | None = typer.Option(None, "--imgsz", help="Image size (default: the model's)."),
    as_json: bool = typer.Option(False, "--json", help="Print the metrics as JSON."),
) -> None:
    """Evaluate a detector on a dataset's val split: precision, recall, mAP50, mAP50-95."""
    from smalltrain.tasks.detection.predict import validate

    metrics = validate(resolve_weights(model), data, imgsz=imgsz, home=home())
    if as_json:
        print_json(metrics)
        return
    for key, value in metrics.items():
        console.print(f"{key:20s} {value:.4f}", highlight=False)


def register(app: typer.Typer) -> None:
    """Add ``predict`` and ``val`` to the main app."""
    app.command("predict")(predict_cmd)
    app.command("val")(val_cmd)
