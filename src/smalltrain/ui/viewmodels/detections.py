"""What the Use tab shows for a detection run: boxes, and counts per class per image and in total.

``records`` are ``predict``'s per-image dicts (``image``, ``boxes`` with ``class_name`` and
``confidence``); every value is escaped by ``render.table``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from smalltrain.ui.viewmodels.render import message, table

__all__ = ["class_counts", "counts_html", "image_files", "predictions_html"]


def image_files(paths: Iterable[str], suffixes: Iterable[str]) -> tuple[list[str], list[str]]:
    """``(images, skipped)``: the paths whose suffix is an image type, and the others' names
    (a folder upload brings every file of the folder)."""
    allowed = {s.lower() for s in suffixes}
    images: list[str] = []
    skipped: list[str] = []
    for p in paths:
        (images if Path(p).suffix.lower() in allowed else skipped).append(p)
    return images, [Path(p).name for p in skipped]


def class_counts(records: Sequence[Mapping[str, Any]]) -> tuple[list[str], list[Counter[str]]]:
    """The classes found (most boxes first, then by name) and each image's boxes per class."""
    per_image = [Counter(str(b["class_name"]) for b in r.get("boxes") or []) for r in records]
    total: Counter[str] = sum(per_image, Counter())
    classes = sorted(total, key=lambda c: (-total[c], c))
    return classes, per_image


def counts_html(records: Sequence[Mapping[str, Any]]) -> str:
    """A table: one row per image and a total row, one column per class and the sum."""
    classes, per_image = class_counts(records)
    rows = [
        (Path(str(r["image"])).name, *[c[k] for k in classes], sum(c.values()))
        for r, c in zip(records, per_image, strict=True)
    ]
    total: Counter[str] = sum(per_image, Counter())
    rows.append(("total", *[total[k] for k in classes], sum(total.values())))
    return table(("image", *classes, "all classes"), rows, "st-counts")


def predictions_html(
    records: Sequence[Mapping[str, Any]], conf: float, skipped: Sequence[str] = ()
) -> str:
    """The summary line, the counts table and the table of every box."""
    total = sum(len(r.get("boxes") or []) for r in records)
    out = message(f"{len(records)} image(s), {total} box(es) at confidence ≥ {conf:.2f}", "info")
    if skipped:
        shown = ", ".join(skipped[:5]) + (" …" if len(skipped) > 5 else "")
        out += message(f"{len(skipped)} file(s) left out, not images: {shown}", "warn")
    out += "<h4>Boxes per class</h4>" + counts_html(records)
    rows = [
        (
            Path(str(r["image"])).name,
            b["class_name"],
            f"{b['confidence']:.2f}",
            *[f"{v:.0f}" for v in b["xyxy"]],
        )
        for r in records
        for b in r.get("boxes") or []
    ]
    if rows:
        out += "<h4>Boxes</h4>" + table(
            ("image", "class", "confidence", "x1", "y1", "x2", "y2"), rows, "st-boxes"
        )
    return out
