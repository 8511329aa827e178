"""What the Use tab shows for a detection run: boxes, and counts per class per image and in total.

``records`` are ``predict``'s per-image dicts (``image``, ``boxes`` with ``class_name`` and
``confidence``; ``UseUI.predict`` adds ``file``, the copy in its output folder); every value is
escaped. The model runs once, keeping every box down to the slider's lowest confidence;
``refilter`` shows those at the slider's value (boxes drawn by the browser over the image, as
SVG), so moving the slider never runs the model again.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from html import escape
from pathlib import Path
from typing import Any
from urllib.parse import quote

from smalltrain.ui.viewmodels.render import message, table

__all__ = [
    "class_counts",
    "counts_html",
    "filter_records",
    "image_files",
    "overlay_html",
    "predictions_html",
    "refilter",
]

_COLOURS = ("#ff7f0e", "#1f77b4", "#d62728", "#9467bd", "#17becf", "#e377c2", "#8c564b")


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
    """The summary line, the counts table and the table of every box; files that could not
    be read (records with an ``error``) are named in a warning, not counted."""
    unread = [Path(str(r["image"])).name for r in records if r.get("error")]
    records = [r for r in records if not r.get("error")]
    total = sum(len(r.get("boxes") or []) for r in records)
    out = message(f"{len(records)} image(s), {total} box(es) at confidence ≥ {conf:.2f}", "info")
    if skipped:
        shown = ", ".join(skipped[:5]) + (" …" if len(skipped) > 5 else "")
        out += message(f"{len(skipped)} file(s) left out, not images: {shown}", "warn")
    if unread:
        shown = ", ".join(unread[:5]) + (" …" if len(unread) > 5 else "")
        out += message(
            f"{len(unread)} file(s) could not be read as images (damaged or empty): {shown}",
            "warn",
        )
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


def filter_records(records: Sequence[Mapping[str, Any]], conf: float) -> list[dict[str, Any]]:
    """The records with only their boxes at confidence ``conf`` or more."""
    return [
        {**r, "boxes": [b for b in r.get("boxes") or [] if float(b["confidence"]) >= conf]}
        for r in records
    ]


def _svg(record: Mapping[str, Any]) -> str:
    w, h = max(1, int(record.get("width") or 1)), max(1, int(record.get("height") or 1))
    size = max(w, h) / 22
    parts = []
    for b in record.get("boxes") or []:
        x1, y1, x2, y2 = (float(v) for v in b["xyxy"])
        colour = _COLOURS[int(b.get("class_id", 0)) % len(_COLOURS)]
        label = escape(f"{b['class_name']} {float(b['confidence']):.2f}")
        tx, ty = x1 + size * 0.2, max(size, y1 - size * 0.2)
        parts.append(
            f'<rect x="{x1:.1f}" y="{y1:.1f}" width="{x2 - x1:.1f}" height="{y2 - y1:.1f}" '
            f'stroke="{colour}" /><text x="{tx:.1f}" y="{ty:.1f}" fill="{colour}" '
            f'font-size="{size:.1f}">{label}</text>'
        )
    return f'<svg viewBox="0 0 {w} {h}" preserveAspectRatio="none">{"".join(parts)}</svg>'


def overlay_html(folder: str, records: Sequence[Mapping[str, Any]]) -> str:
    """Each image with its boxes drawn over it (SVG), opening full size in a new tab."""
    cells = []
    for r in records:
        if r.get("error"):  # nothing to draw: predictions_html names it
            continue
        url = escape(f"/api/outputs/{quote(folder)}/{quote(str(r.get('file', '')))}")
        name = escape(str(r["image"]))
        n = len(r.get("boxes") or [])
        cells.append(
            f'<figure data-boxes="{n}"><div class="st-detect-frame"><a href="{url}" '
            f'target="_blank"><img src="{url}" alt="{name}"></a>{_svg(r)}</div>'
            f"<figcaption>{name}: {n} box(es)</figcaption></figure>"
        )
    return f'<div class="st-images st-detect">{"".join(cells)}</div>' if cells else ""


def refilter(found: Mapping[str, Any], conf: float) -> tuple[str, str]:
    """The gallery and the tables of a detection run (``found``: its output ``folder``, all
    its ``records`` and the ``skipped`` file names) at confidence ``conf``; no model runs."""
    kept = filter_records(found.get("records") or [], float(conf))
    skipped = found.get("skipped") or []
    return overlay_html(str(found["folder"]), kept), predictions_html(kept, float(conf), skipped)
