"""Using a trained detector: ``predict`` boxes on images and ``validate`` on a labelled dataset.

Both apply the offline guard first, so no call waits on the network.
"""

from __future__ import annotations

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
from smalltrain.tasks.detect.image_files import write_image
from smalltrain.tasks.detect.inspect import IMAGE_EXTENSIONS, inspect_dataset

__all__ = ["collect_images", "predict", "validate"]


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
        "xyxy": [x1, y1, x2, y2]}`` in pixels.

    Raises:
        WeightsNotFound: ``weights`` is not a file.
        DatasetError: no images found, or ``out_dir`` is the images' own folder.
    """
    _check_weights(weights)
    sources = _collect(images)
    out = Path(out_dir) if out_dir is not None else None
    if out is not None:
        _check_out(out, sources)
        out.mkdir(parents=True, exist_ok=True)
    model = _load(weights, home)
    kwargs: dict[str, Any] = {"conf": conf, "verbose": False, "device": device or None}
    if imgsz:
        kwargs["imgsz"] = imgsz
    records: list[dict[str, Any]] = []
    log = (out or paths.cache_dir(home or paths.home())) / "predict.log"
    with redirect_output(log):
        for file, rel in sources:
            result = model.predict(str(file), **kwargs)[0]
            records.append(_record(file, result, *_write(out, rel, result, save_txt)))
    if out is not None:
        atomic_write_text(out / "predictions.json", json.dumps(records, indent=2))
    return records


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
        ``metrics/fitness`` and ``val/images`` (floats), and ``per_class``: for each class the
        val split shows, its precision, recall, mAP50, mAP50-95, images and instances; with
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
    return metrics
