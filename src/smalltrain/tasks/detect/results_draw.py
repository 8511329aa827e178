"""The pictures of the detection results: the confusion matrix, the PR curves (matplotlib's Agg
canvas, no pyplot) and an image's ground truth beside its predictions (OpenCV).

Small on purpose (about 600 px wide): they are read in a browser tab, not printed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

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


def _figure(width: float, height: float) -> Any:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=100)
    FigureCanvasAgg(fig)
    return fig


def draw_confusion_matrix(
    matrix: list[list[int]], labels: list[str], path: Path, conf: float
) -> Path:
    """Counts, rows predicted and columns true, the background last in both."""
    import numpy as np

    array = np.asarray(matrix, dtype=float)
    n = len(labels)
    side = min(9.0, 3.2 + 0.45 * n)
    fig = _figure(side + 1.0, side)
    ax = fig.add_subplot(1, 1, 1)
    image = ax.imshow(array, cmap="Blues", vmin=0.0)
    top = array.max() if array.size else 0.0
    if n <= 30:
        for i in range(n):
            for j in range(n):
                value = int(array[i, j])
                if value:
                    colour = "white" if value > 0.5 * top else "black"
                    ax.text(j, i, str(value), ha="center", va="center", color=colour, fontsize=9)
    ax.set_xticks(range(n), labels, rotation=45, ha="right", fontsize=8)
    ax.set_yticks(range(n), labels, fontsize=8)
    ax.set_xlabel("true")
    ax.set_ylabel("predicted")
    ax.set_title(f"Confusion matrix (boxes with confidence > {conf:g})", fontsize=10)
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    fig.tight_layout()
    fig.savefig(path)
    return path


def draw_pr_curves(curves: dict[str, Any], path: Path) -> Path:
    """Precision against recall (IoU 0.5) per class, with the mean in bold."""
    import numpy as np

    fig = _figure(6.4, 4.2)
    ax = fig.add_subplot(1, 1, 1)
    recall = curves.get("recall") or []
    rows = []
    for name, curve in (curves.get("classes") or {}).items():
        ax.plot(recall, curve["precision"], linewidth=1, label=f"{name} (AP50 {curve['ap50']:.3f})")
        rows.append(curve["precision"])
    if rows:
        mean = np.mean(np.asarray(rows, dtype=float), axis=0)
        ax.plot(recall, mean, linewidth=3, color="#1f3b99", label="all classes")
        ax.legend(loc="lower left", fontsize=8)
    else:
        ax.text(0.5, 0.5, "no class has a box to score", ha="center", va="center")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("recall")
    ax.set_ylabel("precision")
    ax.set_title("Precision-recall per class (IoU 0.5)", fontsize=10)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)
    return path


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
    import cv2
    import numpy as np

    image = cv2.imread(record["file"])
    if image is None:
        raise ValueError(f"{record['file']}: cannot read this image")
    truth = [(-1, names.get(c, str(c)), box) for c, *box in record["gt"]]
    found = [(c, f"{names.get(c, str(c))} {s:.2f}", box) for c, s, *box in record["pred"]]
    left = _panel(image, truth, f"ground truth: {len(truth)}")
    right = _panel(image, found, f"predicted (conf > {conf:g}): {len(found)}")
    gap = np.full((left.shape[0], 8, 3), 255, np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(path), np.hstack([left, gap, right])):
        raise OSError(f"{path}: could not write the image")
    return path
