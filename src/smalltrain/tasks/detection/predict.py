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
from smalltrain.errors import DatasetError, WeightsNotFound
from smalltrain.tasks.detection import offline
from smalltrain.tasks.detection.callbacks import normalise_metrics, redirect_output
from smalltrain.tasks.detection.inspect import IMAGE_EXTENSIONS, inspect_dataset

__all__ = ["collect_images", "predict", "validate"]


def collect_images(sources: str | Path | Iterable[str | Path]) -> list[Path]:
    """Image files from a file, a folder (recursively) or a list of either.

    Raises:
        DatasetError: a path does not exist, or no image was found.
    """
    items = [sources] if isinstance(sources, (str, Path)) else list(sources)
    found: list[Path] = []
    for item in items:
        p = Path(item).expanduser()
        if p.is_dir():
            found += sorted(f for f in p.rglob("*") if f.suffix.lower() in IMAGE_EXTENSIONS)
        elif p.is_file():
            found.append(p)
        else:
            raise DatasetError(f"{p}: no such image or folder.")
    if not found:
        raise DatasetError(f"no images found in {', '.join(str(i) for i in items)}.")
    return found


def _load(weights: str | Path, home: Path | None) -> Any:
    offline.apply(home or paths.home())
    path = Path(weights).expanduser()
    if not path.is_file():
        raise WeightsNotFound(f"{path}: model weights not found. Give the path of a trained .pt.")
    from ultralytics import YOLO

    return YOLO(str(path), task="detect")


def predict(
    weights: str | Path,
    images: str | Path | Iterable[str | Path],
    out_dir: str | Path,
    conf: float = 0.25,
    *,
    imgsz: int | None = None,
    device: str = "",
    home: Path | None = None,
) -> list[dict[str, Any]]:
    """Detect objects; write ``predictions.json`` and annotated images into ``out_dir``.

    Returns:
        One dict per image: ``image``, ``width``, ``height``, ``annotated`` and ``boxes``, each
        box ``{"class_id", "class_name", "confidence", "xyxy": [x1, y1, x2, y2]}`` in pixels.

    Raises:
        WeightsNotFound: ``weights`` is not a file.
        DatasetError: no images found.
    """
    import cv2

    model = _load(weights, home)
    files = collect_images(images)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    kwargs: dict[str, Any] = {"conf": conf, "verbose": False, "device": device or None}
    if imgsz:
        kwargs["imgsz"] = imgsz
    records: list[dict[str, Any]] = []
    with redirect_output(out / "predict.log"):
        for index, file in enumerate(files):
            result = model.predict(str(file), **kwargs)[0]
            annotated = out / f"{index:04d}_{file.stem}.jpg"
            cv2.imwrite(str(annotated), result.plot())
            records.append(_record(file, result, annotated))
    (out / "predictions.json").write_text(json.dumps(records, indent=2))
    return records


def _record(file: Path, result: Any, annotated: Path) -> dict[str, Any]:
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
        "annotated": str(annotated),
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
) -> dict[str, float]:
    """Evaluate ``weights`` on the val split of a YOLO dataset.

    The dataset is inspected and a resolved copy is made in a temporary folder, so the user's
    folder is never written to.

    Returns:
        ``metrics/precision``, ``metrics/recall``, ``val/mAP50``, ``val/mAP50-95``,
        ``metrics/fitness`` and ``val/images``.

    Raises:
        WeightsNotFound, DatasetError.
    """
    report = inspect_dataset(Path(data_yaml))
    model = _load(weights, home)
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
            results = model.val(**kwargs)
        metrics = normalise_metrics(dict(results.results_dict))
    metrics["val/images"] = float(report.images_per_split.get("val", 0))
    return metrics
