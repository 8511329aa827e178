"""Detection model commands: ``predict`` (boxes on images) and ``val`` (metrics on a dataset,
with the results bundle: ``service.detection_results``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from smalltrain.cli.common import JSON_HELP, console, err_console, handle_errors, home, print_json
from smalltrain.cli.output import fmt_number, plural, print_table
from smalltrain.cli.refs import MODEL_HELP, ModelRef, resolve_model
from smalltrain.errors import ModelNotFound, WeightsNotFound
from smalltrain.paths import escaped_name

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


def detection_model(ref: str, command: str) -> ModelRef:
    """A detection MODEL argument resolved to its weights file (``ModelRef.path``).

    Raises:
        ModelNotFound, WrongModelKind, WeightsNotFound.
    """
    found = resolve_model(ref, need="detect", command=command)
    from smalltrain.tasks.detect.predict import is_openvino_folder

    keep = not found.path.is_dir() or is_openvino_folder(found.path)
    path = found.path if keep else _weights_in(found.path)
    return ModelRef(path, found.task, found.label, found.info, found.dataset)


def _dataset_yaml(ref: str) -> Path:
    """A YOLO data.yaml (or its folder), or the path of the registered dataset ``ref``."""
    path = Path(ref).expanduser()
    if path.exists():
        return path
    from smalltrain.paths import db_path
    from smalltrain.store.datasets import DatasetStore
    from smalltrain.store.db import JobStore

    return DatasetStore(JobStore(db_path(home()))).get_data_yaml_path(ref)


@handle_errors
def predict_cmd(
    targets: list[str] = typer.Argument(
        ..., metavar="MODEL IMAGES", help=f"MODEL: {MODEL_HELP} IMAGES: an image or a folder."
    ),
    out: Path | None = typer.Option(
        None,
        "--out",
        help="Folder for predictions.json, annotated images (their own names) and labels/ "
        "(default: predictions; with --json and no --out nothing is written).",
    ),
    conf: float = typer.Option(0.25, "--conf", min=0.0, max=1.0, help="Confidence threshold."),
    image_size: int | None = typer.Option(
        None, "--image-size", help="Inference image size (default: the model's)."
    ),
    imgsz_old: int | None = typer.Option(None, "--imgsz", hidden=True),
    device: str = typer.Option("", "--device", help="cpu | cuda | cuda:N | mps (default: auto)."),
    save_txt: bool = typer.Option(
        False, "--save-txt", help="Also write YOLO label files (labels/NAME.txt) to seed labelling."
    ),
    dataset_old: str | None = typer.Option(None, "--dataset", hidden=True),
    model_old: str | None = typer.Option(None, "--model", hidden=True),
    as_json: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """Detect objects in images with a trained detection model."""
    from smalltrain.tasks.detect.predict import predict

    old = dataset_old or model_old
    if dataset_old and model_old:
        raise typer.BadParameter("give the model once (MODEL, or the old --dataset / --model)")
    if len(targets) != (1 if old else 2):
        raise typer.BadParameter("give MODEL and IMAGES, e.g. smalltrain predict cells photos/")
    model_ref, images = (old, targets[0]) if old else (targets[0], targets[1])
    try:
        model = detection_model(str(model_ref), "predict")
    except ModelNotFound:
        if not dataset_old:
            raise
        raise ModelNotFound(
            f"no active model for dataset {dataset_old!r} (no such dataset, or no model trained "
            "on it yet); list models with: smalltrain models list"
        ) from None
    folder = out if out is not None or as_json else Path("predictions")
    records = predict(model.path, images, folder, conf=conf, imgsz=image_size or imgsz_old,
                      device=device, home=home(), save_txt=save_txt)  # fmt: skip
    if as_json:
        print_json(records)
        return
    read = [r for r in records if "error" not in r]
    total = sum(len(r["boxes"]) for r in read)
    where = f" -> {folder / 'predictions.json'}" if folder is not None else ""
    console.print(f"{plural(len(read), 'image')}, {plural(total, 'box')} with {model.label}{where}")
    if save_txt and folder is not None:
        console.print(f"YOLO labels: {folder / 'labels'}")
    for r in records:
        names = ", ".join(f"{b['class_name']} {b['confidence']:.2f}" for b in r["boxes"]) or "-"
        console.print(f"  {escaped_name(Path(r['image']).name)}: {r.get('error') or names}")
    skipped = [escaped_name(Path(r["image"]).name) for r in records if "error" in r]
    if skipped:
        more = f" and {len(skipped) - 5} more" if len(skipped) > 5 else ""
        err_console.print(
            f"warning: skipped {plural(len(skipped), 'file')} that could not be read as images "
            f"(damaged, empty or not images): {', '.join(skipped[:5])}{more}"
        )


def print_per_class(per_class: dict[str, dict[str, float]], title: str = "per class") -> None:
    """The per-class metrics as a table."""
    if not per_class:
        return
    keys = ("images", "instances", "precision", "recall", "mAP50", "mAP50-95")
    rows = [[name, *(fmt_number(values.get(k, float("nan"))) for k in keys)]
            for name, values in per_class.items()]  # fmt: skip
    print_table(["class", *keys], rows, title=title, right=keys)


def print_confusion(matrix: dict[str, Any], conf: float) -> None:
    """The confusion matrix as text: rows predicted, columns true, background last."""
    labels = [str(x) for x in matrix.get("labels") or []]
    rows = [[f"pred {labels[i]}", *[str(int(v)) for v in row]]
            for i, row in enumerate(matrix.get("matrix") or [])]  # fmt: skip
    title = f"confusion matrix (boxes with confidence > {conf:g}; columns: true class)"
    print_table(["", *labels], rows, title=title, right=labels)


def print_results(results: dict[str, Any], folder: str) -> None:
    """The confusion matrix, the worst images and where the bundle's files are."""
    print_confusion(results.get("confusion_matrix") or {}, float(results.get("conf", 0.25)))
    worst = results.get("worst") or []
    if worst:
        rows = [[w["image"], w["missed"], w["false"], w["correct"], w["file"]] for w in worst]
        heads = ["image", "missed", "false", "correct", "picture (truth | predicted)"]
        print_table(heads, rows, title="most wrong images", right=("missed", "false", "correct"))
    else:
        console.print("no image has a missed object or a false box")
    files = [*(results.get("files") or {}).values()]
    if folder:
        console.print(f"results in {folder}/: results.json, {', '.join(files)}, worst/")


@handle_errors
def val_cmd(
    model: str = typer.Argument(..., metavar="MODEL", help=MODEL_HELP),
    data: str | None = typer.Argument(
        None,
        metavar="[DATASET]",
        help="A registered dataset, a YOLO data.yaml or its folder (default: the model's own "
        "dataset).",
    ),
    data_old: str | None = typer.Option(None, "--data", hidden=True),
    image_size: int | None = typer.Option(
        None, "--image-size", help="Image size (default: the model's)."
    ),
    imgsz_old: int | None = typer.Option(None, "--imgsz", hidden=True),
    device: str = typer.Option("", "--device", help="cpu | cuda | cuda:N | mps (default: auto)."),
    out: Path | None = typer.Option(
        None,
        "--out",
        help="Folder for the results (confusion matrix, PR curves, worst images; default: the "
        "model's folder, results/, for a registered model on its own dataset, else "
        "val-results; with --json on another dataset: none).",
    ),
    as_json: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """Evaluate a detector on a dataset's val split: precision, recall, mAP50, mAP50-95 per
    class, the confusion matrix and the images it gets most wrong (pictures kept with the
    model)."""
    from smalltrain.service.detection_results import validate_detector

    found = detection_model(model, "val")
    target = data or data_old or found.dataset
    if target is None:
        raise typer.BadParameter("give the DATASET to validate on (a name or a data.yaml)")
    registered = found.info is not None and found.dataset is not None
    own = registered and target == found.dataset
    metrics = validate_detector(
        home(),
        found.info if registered else found.path,
        None if own else _dataset_yaml(target),
        out=out,
        imgsz=image_size or imgsz_old,
        device=device,
        keep=own or out is not None or not as_json,  # as predict: --json alone writes nothing
    )
    if as_json:
        print_json(metrics)
        return
    for text in metrics.pop("warnings", []):
        err_console.print(f"warning: {text}")
    per_class: dict[str, Any] = metrics.pop("per_class", {})
    results: dict[str, Any] = metrics.pop("results", {})
    folder = str(metrics.pop("folder", ""))
    console.print(f"{found.label} on {target}:")
    for key, value in metrics.items():
        console.print(f"  {key:20s} {fmt_number(value)}")
    print_per_class(per_class)
    print_results(results, folder)


def register(app: typer.Typer) -> None:
    """Add ``predict`` and ``val`` to the main app."""
    app.command("predict")(predict_cmd)
    app.command("val")(val_cmd)
