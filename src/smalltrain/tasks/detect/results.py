"""Detection results, computed once on the val split: the per-class table, the confusion matrix,
the precision-recall curves and the images the model gets most wrong.

:class:`ResultsValidator` is Ultralytics' ``DetectionValidator`` that, when ``record`` is set,
also keeps what the results need from the same pass (no second inference):

- a confusion matrix (Ultralytics' ``ConfusionMatrix``, rows predicted, columns true, with the
  background row and column) at ``CONF`` (0.25, Ultralytics' predict default). Ultralytics 8.4
  fills its own matrix at the validation threshold (0.001), where every faint box counts as a
  false positive; ours counts the boxes a user would see;
- per image, the ground-truth boxes and the predicted boxes at ``CONF`` in the image's pixels,
  and how many objects were missed and how many boxes were false (a box of the wrong class is
  both), from that image's share of the matrix.

The per-class table and the PR curves come from Ultralytics' ``DetMetrics`` of that pass
(``summary()``, ``ap_class_index``, ``curves_results``). The detect task records during the
final evaluation of best.pt (``SmallDataTrainer.final_eval``); ``predict.validate`` records for
``smalltrain val``. :func:`write_results` writes the bundle::

    results/results.json          what is below, and the names of the files
    results/confusion_matrix.png
    results/pr_curve.png
    results/worst/NN-<image>.png  ground truth beside the predictions, most errors first

The per-epoch validations record nothing and every Ultralytics plot stays off (``plots=False``).
"""

from __future__ import annotations

import math
import re
import time
from pathlib import Path
from typing import Any

import numpy as np
from ultralytics.models.yolo.detect import DetectionValidator
from ultralytics.utils import ops
from ultralytics.utils.metrics import ConfusionMatrix

from smalltrain.engine.fsutil import atomic_write_json
from smalltrain.tasks.detect.callbacks import normalise_metrics, per_class_metrics
from smalltrain.tasks.detect.results_files import RESULTS_DIR, RESULTS_JSON

__all__ = [
    "CONF",
    "RESULTS_DIR",
    "RESULTS_JSON",
    "WORST",
    "ResultsValidator",
    "recording_validator",
    "write_results",
]

#: The confidence at which boxes are counted in the matrix and drawn on the worst images.
CONF = 0.25
#: IoU at which a box matches an object (Ultralytics' ConfusionMatrix default).
IOU = 0.45
#: How many of the worst images are drawn.
WORST = 6
_CURVE_POINTS = 101


class ResultsValidator(DetectionValidator):
    """Ultralytics' detection validator that also records the results (see the module doc)."""

    record = False  # set for the one pass whose results are kept

    def init_metrics(self, model: Any) -> None:
        """Ultralytics' metrics, and an empty matrix and image list of our own."""
        super().init_metrics(model)
        self.results_matrix = ConfusionMatrix(names=model.names)
        self.results_images: list[dict[str, Any]] = []
        self.results_error = ""  # why recording stopped (an Ultralytics it does not know)

    def update_metrics(self, preds: list[dict[str, Any]], batch: dict[str, Any]) -> None:
        """Ultralytics' update; when recording, each image's boxes and errors at ``CONF``."""
        super().update_metrics(preds, batch)
        if not self.record or self.results_error:
            return
        try:  # Ultralytics 8.4's batch layout; another one stops the recording, not the pass
            for si, pred in enumerate(preds):
                pbatch = self._prepare_batch(si, batch)
                before = self.results_matrix.matrix.copy()
                self.results_matrix.process_batch(pred, pbatch, conf=CONF, iou_thres=IOU)
                self.results_images.append(_image_record(self, pred, pbatch, before))
        except Exception as exc:
            self.results_error = f"{type(exc).__name__}: {exc}"


def _image_record(
    validator: ResultsValidator, pred: dict[str, Any], pbatch: dict[str, Any], before: np.ndarray
) -> dict[str, Any]:
    """One image: its file, boxes (pixels of the original) and its share of the matrix."""
    nc = validator.results_matrix.nc
    delta = validator.results_matrix.matrix - before
    confused = int(delta[:nc, :nc].sum() - np.trace(delta[:nc, :nc]))
    gt = ops.scale_boxes(
        pbatch["imgsz"],
        pbatch["bboxes"].clone(),
        pbatch["ori_shape"],
        ratio_pad=pbatch["ratio_pad"],
    )
    keep = pred["conf"] > CONF
    boxes = validator.scale_preds({k: v[keep] for k, v in pred.items()}, pbatch)["bboxes"]
    return {
        "file": str(pbatch["im_file"]),
        "gt": [
            [int(c), *map(float, b)]
            for c, b in zip(pbatch["cls"].tolist(), gt.tolist(), strict=True)
        ],
        "pred": [
            [int(c), float(s), *map(float, b)]
            for c, s, b in zip(
                pred["cls"][keep].tolist(), pred["conf"][keep].tolist(), boxes.tolist(), strict=True
            )
        ],
        "correct": int(np.trace(delta[:nc, :nc])),
        "missed": int(delta[nc, :nc].sum()) + confused,
        "false": int(delta[:nc, nc].sum()) + confused,
    }


def recording_validator() -> tuple[type[ResultsValidator], list[ResultsValidator]]:
    """A validator class that records, and the list its instance lands in once it finished
    (``YOLO.val`` builds the instance itself and returns only its metrics)."""
    done: list[ResultsValidator] = []

    class Recording(ResultsValidator):
        record = True

        def finalize_metrics(self) -> None:
            super().finalize_metrics()
            done.append(self)

    return Recording, done


def _curves(metrics: Any, names: dict[int, str]) -> dict[str, Any]:
    """Precision at each recall (IoU 0.5) per class, on ``_CURVE_POINTS`` recall values."""
    px, py, *_ = metrics.curves_results[0]
    index = list(metrics.ap_class_index)
    ap50 = metrics.box.ap50
    pick = np.linspace(0, len(px) - 1, _CURVE_POINTS).round().astype(int)
    curves: dict[str, Any] = {"recall": [round(float(px[j]), 4) for j in pick], "classes": {}}
    for i, cls in enumerate(index):
        if i < len(py):
            curves["classes"][names[int(cls)]] = {
                "precision": [round(float(py[i][j]), 4) for j in pick],
                "ap50": float(ap50[i]) if i < len(ap50) else math.nan,
            }
    return curves


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name)[:60] or "image"


def worst_images(images: list[dict[str, Any]], n: int = WORST) -> list[dict[str, Any]]:
    """The ``n`` images with the most errors (missed + false), those with none left out."""
    scored = [im for im in images if im["missed"] + im["false"] > 0]
    scored.sort(key=lambda im: (-(im["missed"] + im["false"]), -im["missed"], im["file"]))
    return scored[:n]


def write_results(validator: ResultsValidator, out: Path, *, source: str = "") -> dict[str, Any]:
    """Write the bundle of a recording validator's pass into ``out``; return results.json's
    contents. ``source``: what was evaluated, in words (e.g. "best.pt on the val split").

    Raises:
        ValueError: the validator recorded nothing (it was not a recording pass).
    """
    from smalltrain.tasks.detect.results_draw import (
        draw_confusion_matrix,
        draw_pr_curves,
        draw_worst,
    )

    if not getattr(validator, "record", False) or not hasattr(validator, "results_images"):
        raise ValueError("this validation pass recorded no results")
    if validator.results_error:
        raise ValueError(f"the results could not be recorded ({validator.results_error})")
    t0 = time.perf_counter()
    out = Path(out)
    (out / "worst").mkdir(parents=True, exist_ok=True)
    names = {int(k): str(v) for k, v in dict(getattr(validator, "names", None) or {}).items()}
    labels = [names[i] for i in range(len(names))] + ["background"]
    matrix = validator.results_matrix.matrix.astype(int).tolist()
    curves = _curves(validator.metrics, names)
    worst = []
    for rank, image in enumerate(worst_images(validator.results_images), start=1):
        rel = f"worst/{rank:02d}-{_safe(Path(image['file']).stem)}.png"
        draw_worst(image, names, out / rel, CONF)
        worst.append(
            {
                "image": Path(image["file"]).name,
                "file": rel,
                "missed": image["missed"],
                "false": image["false"],
                "correct": image["correct"],
                "objects": len(image["gt"]),
                "boxes": len(image["pred"]),
            }
        )
    draw_confusion_matrix(matrix, labels, out / "confusion_matrix.png", CONF)
    draw_pr_curves(curves, out / "pr_curve.png")
    raw = dict(validator.metrics.results_dict)
    data = {
        "source": source,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "conf": CONF,
        "iou": IOU,
        "images": len(validator.results_images),
        "metrics": {k: v for k, v in normalise_metrics(raw).items() if math.isfinite(v)},
        "per_class": per_class_metrics(validator.metrics),
        "confusion_matrix": {"labels": labels, "matrix": matrix},
        "pr_curves": curves,
        "worst": worst,
        "files": {"confusion_matrix": "confusion_matrix.png", "pr_curve": "pr_curve.png"},
        "seconds": round(time.perf_counter() - t0, 2),
    }
    atomic_write_json(out / RESULTS_JSON, data)
    return data
