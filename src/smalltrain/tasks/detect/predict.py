"""Using a trained detector: ``predict`` boxes on images and ``validate`` on a labelled dataset.

Both apply the offline guard first, so no call waits on the network.
"""

from __future__ import annotations

import ast
import json
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from smalltrain import paths
from smalltrain.engine.fsutil import atomic_write_text
from smalltrain.errors import DatasetError, WeightsNotFound
from smalltrain.tasks.detect import offline
from smalltrain.tasks.detect.callbacks import (
    normalise_metrics,
    per_class_metrics,
    redirect_output,
)
from smalltrain.tasks.detect.image_files import read_image, write_image
from smalltrain.tasks.detect.inspect import IMAGE_EXTENSIONS, inspect_dataset

__all__ = ["class_mismatch", "collect_images", "export_image_size", "predict", "validate"]


def collect_images(sources: str | Path | Iterable[str | Path]) -> list[Path]:
    """Image files from a file, a folder (recursively) or a list of either.

    Raises:
        DatasetError: a path does not exist, or no image was found.
    """
    return [f for f, _ in _collect(sources)]


def _collect(sources: str | Path | Iterable[str | Path]) -> list[tuple[Path, Path]]:
    """``(image, name to write it under)``: its path inside the folder given, or its own name."""
    items = [sources] if isinstance(sources, (str, Path)) else list(sources)
    found: list[tuple[Path, Path]] = []
    for item in items:
        p = Path(item).expanduser()
        if p.is_dir():
            files = sorted(f for f in p.rglob("*") if f.suffix.lower() in IMAGE_EXTENSIONS)
            found += [(f, f.relative_to(p)) for f in files]
        elif p.is_file():
            found.append((p, Path(p.name)))
        else:
            raise DatasetError(f"{p}: no such image or folder.")
    if not found:
        raise DatasetError(f"no images found in {', '.join(str(i) for i in items)}.")
    seen: set[Path] = set()
    unique = []
    for file, rel in found:  # two sources with the same file name: keep both, apart
        name, n = rel, 1
        while name in seen:
            n += 1
            name = rel.with_name(f"{rel.stem}_{n}{rel.suffix}")
        seen.add(name)
        unique.append((file, name))
    return unique


def is_openvino_folder(path: Path) -> bool:
    """An OpenVINO export (``smalltrain export --format openvino``): a folder with its .xml."""
    return path.is_dir() and path.name.endswith("_openvino_model") and any(path.glob("*.xml"))


def export_image_size(path: Path) -> int | None:
    """The image size an export (.onnx, .torchscript, an OpenVINO folder) was made at, from
    the metadata Ultralytics writes into it; None for a .pt or where none is found.

    A .pt predicts at its training size by itself; an export with a dynamic input size (ours)
    would run at Ultralytics' default of 640 instead, and find other boxes than its .pt does:
    a model trained at 64 px found 300 boxes on an image where its .pt found 20."""
    if path.suffix == ".pt":
        return None
    try:
        from ultralytics.nn.backends.base import BaseBackend

        size = BaseBackend.read_metadata(path).get("imgsz")
        if isinstance(size, str):
            size = ast.literal_eval(size)
    except (ImportError, AttributeError, ValueError, SyntaxError):
        return None  # an Ultralytics without the reader, or a foreign export
    if isinstance(size, (list, tuple)) and size:
        return int(max(size))
    return int(size) if isinstance(size, int) else None


def _check_weights(weights: str | Path) -> Path:
    """A weights file (.pt, or an exported .onnx / .torchscript) or an OpenVINO folder."""
    path = Path(weights).expanduser()
    if not path.is_file() and not is_openvino_folder(path):
        raise WeightsNotFound(f"{path}: model weights not found. Give the path of a trained .pt.")
    return path


def _load(weights: str | Path, home: Path | None) -> Any:
    offline.apply(home or paths.home())
    path = _check_weights(weights)
    from ultralytics import YOLO

    return YOLO(str(path), task="detect")


def _check_out(out: Path, sources: list[tuple[Path, Path]]) -> None:
    """Refuse an output folder that would overwrite the images themselves."""
    target = out.resolve()
    for file, rel in sources:
        folder = file.parent if len(rel.parts) == 1 else file.parents[len(rel.parts) - 1]
        if folder.resolve() == target:
            raise DatasetError(
                f"--out {out} is the folder of the images: annotated copies would overwrite "
                "them. Choose another folder, e.g. --out predictions"
            )


def predict(
    weights: str | Path,
    images: str | Path | Iterable[str | Path],
    out_dir: str | Path | None = None,
    conf: float = 0.25,
    *,
    imgsz: int | None = None,
    device: str = "",
    home: Path | None = None,
    save_txt: bool = False,
) -> list[dict[str, Any]]:
    """Detect objects in images; with ``out_dir``, write what was found there.

    ``out_dir`` receives ``predictions.json`` and an annotated copy of each image under the
    image's own name (its path inside the folder given), and with ``save_txt`` a YOLO label
    file per image in ``labels/`` (``class cx cy w h``, normalised; empty when nothing was
    found), so predictions can seed labelling.

    Returns:
        One dict per image: ``image``, ``width``, ``height``, ``annotated`` and ``labels``
        (paths or None) and ``boxes``, each box ``{"class_id", "class_name", "confidence",
        "xyxy": [x1, y1, x2, y2]}`` in pixels. A file that cannot be read as an image (a
        damaged or empty file, a text file named .jpg) is skipped, not fatal: its record has
        no boxes, ``width`` None and ``error`` saying why.

    Raises:
        WeightsNotFound: ``weights`` is not a file.
        DatasetError: no images found, none could be read, or ``out_dir`` is the images' own
            folder.
    """
    _check_weights(weights)
    sources = _collect(images)
    out = Path(out_dir) if out_dir is not None else None
    if out is not None:
        _check_out(out, sources)
        out.mkdir(parents=True, exist_ok=True)
    model = _load(weights, home)
    kwargs: dict[str, Any] = {"conf": conf, "verbose": False, "device": device or None}
    imgsz = imgsz or export_image_size(Path(weights))
    if imgsz:
        kwargs["imgsz"] = imgsz
    records: list[dict[str, Any]] = []
    log = (out or paths.cache_dir(home or paths.home())) / "predict.log"
    with redirect_output(log):
        for file, rel in sources:
            image = read_image(file)  # read here: any file name, and a bad file is named
            if image is None:
                records.append(_unreadable(file))
                continue
            result = model.predict(image, **kwargs)[0]
            records.append(_record(file, result, *_write(out, rel, result, save_txt)))
    if out is not None:
        atomic_write_text(out / "predictions.json", json.dumps(records, indent=2))
    if all("error" in r for r in records):
        raise DatasetError(
            f"none of the {len(records)} image(s) could be read (not images, or damaged), "
            f"e.g. {paths.escaped_name(records[0]['image'])}"
        )
    return records


#: What a record says of a file that is not a readable image.
UNREADABLE = "cannot read this image (not an image, or damaged); it was skipped"


def _unreadable(file: Path) -> dict[str, Any]:
    """The record of a file that could not be read: no boxes, and why."""
    return {"image": str(file), "width": None, "height": None, "annotated": None,
            "labels": None, "boxes": [], "error": UNREADABLE}  # fmt: skip


def _write(
    out: Path | None, rel: Path, result: Any, save_txt: bool
) -> tuple[Path | None, Path | None]:
    """Write the annotated image (and the label file); return their paths."""
    if out is None:
        return None, None
    annotated = out / rel
    if annotated.suffix.lower() not in (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff"):
        annotated = annotated.with_suffix(".jpg")  # e.g. .webp: write something cv2 can
    annotated.parent.mkdir(parents=True, exist_ok=True)
    write_image(annotated, result.plot())
    if not save_txt:
        return annotated, None
    labels = (out / "labels" / rel).with_suffix(".txt")
    labels.parent.mkdir(parents=True, exist_ok=True)
    rows = zip(result.boxes.cls.tolist(), result.boxes.xywhn.tolist(), strict=True)
    text = "".join(f"{int(c)} {x:.6f} {y:.6f} {w:.6f} {h:.6f}\n" for c, (x, y, w, h) in rows)
    atomic_write_text(labels, text)
    return annotated, labels


def _record(file: Path, result: Any, annotated: Path | None, labels: Path | None) -> dict[str, Any]:
    height, width = result.orig_shape
    boxes = []
    for xyxy, score, cls in zip(
        result.boxes.xyxy.tolist(),
        result.boxes.conf.tolist(),
        result.boxes.cls.tolist(),
        strict=True,
    ):
        boxes.append(
            {
                "class_id": int(cls),
                "class_name": str(result.names[int(cls)]),
                "confidence": round(float(score), 4),
                "xyxy": [round(float(v), 1) for v in xyxy],
            }
        )
    return {
        "image": str(file),
        "width": int(width),
        "height": int(height),
        "annotated": str(annotated) if annotated else None,
        "labels": str(labels) if labels else None,
        "boxes": boxes,
    }


def validate(
    weights: str | Path,
    data_yaml: str | Path,
    *,
    imgsz: int | None = None,
    batch: int = 16,
    device: str = "",
    home: Path | None = None,
    results_dir: str | Path | None = None,
) -> dict[str, Any]:
    """Evaluate ``weights`` on the val split of a YOLO dataset.

    The dataset is inspected and a resolved copy is made in a temporary folder, so the user's
    folder is never written to. With ``results_dir``, the same pass also writes the detection
    results there (``results.write_results``: confusion matrix, PR curves, worst images).

    Returns:
        ``metrics/precision``, ``metrics/recall``, ``val/mAP50``, ``val/mAP50-95``,
        ``metrics/fitness`` and ``val/images`` (floats), ``per_class``: for each class the
        val split shows, its precision, recall, mAP50, mAP50-95, images and instances;
        ``warnings`` (e.g. the model's classes are not the dataset's: ``class_mismatch``); with
        ``results_dir``, ``results``: the contents of its results.json.

    Raises:
        WeightsNotFound, DatasetError.
    """
    report = inspect_dataset(Path(data_yaml))
    model = _load(weights, home)  # the offline guard first: results imports Ultralytics
    from smalltrain.tasks.detect.results import recording_validator, write_results

    validator, done = recording_validator()
    cache = paths.cache_dir(home or paths.home())
    cache.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="val-", dir=cache) as tmp:
        resolved = report.build_resolved(Path(tmp) / "dataset")
        kwargs: dict[str, Any] = {
            "data": str(resolved),
            "batch": batch,
            "device": device or None,
            "plots": False,
            "project": str(Path(tmp) / "runs"),
            "name": "val",
            "verbose": False,
        }
        imgsz = imgsz or export_image_size(Path(weights))
        if imgsz:
            kwargs["imgsz"] = imgsz
        with redirect_output(Path(tmp) / "val.log"):
            results = model.val(validator=validator, **kwargs)
        metrics: dict[str, Any] = normalise_metrics(dict(results.results_dict))
        if results_dir is not None and done:  # the images are still there to draw
            source = f"{Path(weights).name} on the val split of {Path(data_yaml)}"
            metrics["results"] = write_results(done[0], Path(results_dir), source=source)
    metrics["val/images"] = float(report.images_per_split.get("val", 0))
    metrics["per_class"] = per_class_metrics(results)
    mismatch = class_mismatch(_names(model), list(report.names))
    metrics["warnings"] = [mismatch] if mismatch else []
    return metrics


def _names(model: Any) -> list[str]:
    names = getattr(model, "names", None) or {}
    return [str(v) for _, v in sorted(names.items())] if isinstance(names, dict) else []


def class_mismatch(model_names: list[str], data_names: list[str]) -> str | None:
    """What to say when a model's classes are not the dataset's (None: they are, or the model
    does not say). Classes are matched by number, so the scores would compare other things."""
    if not model_names or model_names == data_names:
        return None

    def some(names: list[str]) -> str:
        return ", ".join(names[:4]) + (", ..." if len(names) > 4 else "")

    if len(model_names) != len(data_names):
        what = (
            f"the model has {len(model_names)} classes ({some(model_names)}) and the dataset "
            f"{len(data_names)} ({some(data_names)})"
        )
    else:
        named = enumerate(zip(model_names, data_names, strict=True))
        pairs = [(i, d, m) for i, (m, d) in named if m != d]
        shown = "; ".join(f"{i}: {d!r} is the model's {m!r}" for i, d, m in pairs[:3])
        what = f"the class names differ ({shown}{'; ...' if len(pairs) > 3 else ''})"
    return (
        f"{what}. Classes are matched by number, so these scores compare the dataset's class 0 "
        "with the model's class 0 and so on. Validate on a dataset labelled with the model's "
        "classes."
    )
