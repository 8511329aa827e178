"""The pictures of the detection results: the confusion matrix, the PR curves and an image's
ground truth beside its predictions, all drawn with OpenCV: matplotlib took about a second to
import in each training process (measured: 5 of the 10 s the results took on a loaded
machine), where OpenCV is already loaded.

Small on purpose (about 600 px wide): they are read in a browser tab, not printed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from smalltrain.tasks.detect.image_files import read_image, write_image

__all__ = ["draw_confusion_matrix", "draw_pr_curves", "draw_worst"]

_SIDE = 360  # the longer side of each half of a worst-image picture, in pixels
_HEADER = 30  # the title strip above each half
_GT = (80, 200, 80)  # BGR: ground truth in green
_PALETTE = [
    (255, 128, 0),
    (0, 128, 255),
    (200, 0, 200),
    (0, 200, 255),
    (255, 0, 128),
    (128, 0, 255),
]


_FONT = 0  # cv2.FONT_HERSHEY_SIMPLEX
_INK = (40, 40, 40)
_BLUE_LIGHT, _BLUE_DARK = (255, 251, 247), (107, 48, 8)  # BGR ends of the matrix's scale


def _text(img: Any, text: str, org: tuple[int, int], scale: float = 0.45,
          colour: tuple[int, int, int] = _INK, centre: bool = False) -> None:  # fmt: skip
    import cv2

    (w, h), _ = cv2.getTextSize(text, _FONT, scale, 1)
    x, y = (org[0] - w // 2, org[1] + h // 2) if centre else org
    cv2.putText(img, text, (x, y), _FONT, scale, colour, 1, cv2.LINE_AA)


def _fit(text: str, width: int, scale: float = 0.42) -> str:
    """``text`` cut (with "..") to fit ``width`` pixels."""
    import cv2

    while len(text) > 3 and cv2.getTextSize(text, _FONT, scale, 1)[0][0] > width:
        text = text[:-3] + ".."
    return text


def draw_confusion_matrix(
    matrix: list[list[int]], labels: list[str], path: Path, conf: float
) -> Path:
    """Counts, rows predicted and columns true, the background last in both (OpenCV: no
    matplotlib to import at the end of every training)."""
    import cv2
    import numpy as np

    array = np.asarray(matrix, dtype=float)
    n = len(labels)
    cell = max(22, min(72, 432 // max(n, 1)))
    left, top = 150, 56
    img = np.full((top + n * cell + 60, left + n * cell + 30, 3), 255, np.uint8)
    _text(img, f"Confusion matrix (boxes with confidence > {conf:g})", (10, 22), 0.55)
    _text(img, "columns: true class, rows: predicted", (10, 44), 0.42, (110, 110, 110))
    peak = float(array.max()) if array.size else 0.0
    for i in range(n):
        for j in range(n):
            value = float(array[i, j])
            t = value / peak if peak else 0.0
            colour = tuple(
                int(a + (b - a) * t) for a, b in zip(_BLUE_LIGHT, _BLUE_DARK, strict=True)
            )
            x, y = left + j * cell, top + i * cell
            cv2.rectangle(img, (x, y), (x + cell, y + cell), colour, -1)
            cv2.rectangle(img, (x, y), (x + cell, y + cell), (225, 225, 225), 1)
            if value and cell >= 26:
                ink = (255, 255, 255) if t > 0.5 else _INK
                _text(img, str(int(value)), (x + cell // 2, y + cell // 2), 0.5, ink, centre=True)
        _text(img, _fit(labels[i], left - 16), (8, top + i * cell + cell // 2 + 5), 0.42)
        name = _fit(labels[i], cell - 4, 0.38)
        _text(img, name, (left + i * cell + cell // 2, top + n * cell + 14), 0.38, centre=True)
    _text(img, "true", (left + n * cell // 2 - 12, top + n * cell + 44), 0.45)
    return write_image(path, img)


def draw_pr_curves(curves: dict[str, Any], path: Path) -> Path:
    """Precision against recall (IoU 0.5) per class, with the mean in bold (OpenCV)."""
    import cv2
    import numpy as np

    width, height, left, top, right, bottom = 640, 420, 60, 40, 20, 50
    img = np.full((height, width, 3), 255, np.uint8)
    pw, ph = width - left - right, height - top - bottom
    _text(img, "Precision-recall per class (IoU 0.5)", (left, 24), 0.55)
    for k in range(6):  # the grid and the axes' values
        v = k / 5
        x, y = left + round(v * pw), top + ph - round(v * ph)
        cv2.line(img, (x, top), (x, top + ph), (232, 232, 232), 1)
        cv2.line(img, (left, y), (left + pw, y), (232, 232, 232), 1)
        _text(img, f"{v:.1f}", (x - 10, top + ph + 18), 0.4)
        _text(img, f"{v:.1f}", (left - 32, y + 5), 0.4)
    cv2.rectangle(img, (left, top), (left + pw, top + ph), (120, 120, 120), 1)
    _text(img, "recall", (left + pw // 2 - 20, height - 10), 0.45)
    _text(img, "precision", (4, top - 8), 0.42)
    recall = np.asarray(curves.get("recall") or [], dtype=float)

    def line(values: Any, colour: tuple[int, int, int], thick: int) -> None:
        ys = np.clip(np.asarray(values, dtype=float), 0, 1)
        pts = np.stack([left + recall * pw, top + ph - ys * ph], axis=1).round().astype(np.int32)
        cv2.polylines(img, [pts], False, colour, thick, cv2.LINE_AA)

    rows = []
    legend = []
    for k, (name, curve) in enumerate((curves.get("classes") or {}).items()):
        if len(curve["precision"]) == len(recall) and len(recall):
            colour = _PALETTE[k % len(_PALETTE)]
            line(curve["precision"], colour, 1)
            rows.append(curve["precision"])
            legend.append((f"{name} (AP50 {curve['ap50']:.3f})", colour))
    if rows:
        line(np.mean(np.asarray(rows, dtype=float), axis=0), (153, 59, 31), 3)
        legend.append(("all classes", (153, 59, 31)))
    else:
        _text(img, "no class has a box to score", (left + pw // 2, top + ph // 2), 0.5,
              centre=True)  # fmt: skip
    for k, (label, colour) in enumerate(legend[:12]):  # the legend, bottom left
        y = top + ph - 14 - 16 * (len(legend[:12]) - 1 - k)
        cv2.line(img, (left + 10, y - 4), (left + 30, y - 4), colour, 2)
        _text(img, _fit(label, pw - 60, 0.4), (left + 36, y), 0.4)
    return write_image(path, img)


def _panel(image: Any, boxes: list[tuple[int, str, list[float]]], title: str) -> Any:
    """The image scaled so its longer side is ``_SIDE``, its boxes drawn, a title above."""
    import cv2
    import numpy as np

    h, w = image.shape[:2]
    scale = _SIDE / max(h, w)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    interp = cv2.INTER_NEAREST if scale > 2 else cv2.INTER_AREA
    canvas = cv2.resize(image, size, interpolation=interp)
    for colour_id, label, (x1, y1, x2, y2) in boxes:
        colour = _GT if colour_id < 0 else _PALETTE[colour_id % len(_PALETTE)]
        p1, p2 = (round(x1 * scale), round(y1 * scale)), (round(x2 * scale), round(y2 * scale))
        cv2.rectangle(canvas, p1, p2, colour, 2)
        (tw, th), _ = cv2.getTextSize(label, cv2.FONT_HERSHEY_SIMPLEX, 0.38, 1)
        top = max(th + 4, p1[1])  # the label sits on the box's top edge, inside the picture
        cv2.rectangle(canvas, (p1[0], top - th - 4), (p1[0] + tw + 4, top), colour, -1)
        cv2.putText(canvas, label, (p1[0] + 2, top - 3), cv2.FONT_HERSHEY_SIMPLEX, 0.38,
                    (255, 255, 255), 1, cv2.LINE_AA)  # fmt: skip
    header = np.full((_HEADER, canvas.shape[1], 3), 255, np.uint8)
    cv2.putText(header, title, (4, 21), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (30, 30, 30), 1, cv2.LINE_AA)
    return np.vstack([header, canvas])


def draw_worst(record: dict[str, Any], names: dict[int, str], path: Path, conf: float) -> Path:
    """Ground truth (left, green) beside the predictions (right, one colour per class)."""
    import numpy as np

    image = read_image(record["file"])
    if image is None:
        raise ValueError(f"{record['file']}: cannot read this image")
    truth = [(-1, names.get(c, str(c)), box) for c, *box in record["gt"]]
    found = [(c, f"{names.get(c, str(c))} {s:.2f}", box) for c, s, *box in record["pred"]]
    left = _panel(image, truth, f"ground truth: {len(truth)}")
    right = _panel(image, found, f"predicted (conf > {conf:g}): {len(found)}")
    gap = np.full((left.shape[0], 8, 3), 255, np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    return write_image(path, np.hstack([left, gap, right]))
