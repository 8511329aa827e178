"""What the Job and Models tabs show of a detection model's results (``service.
detection_results``): the per-class table, the confusion matrix and PR curve pictures and the
images it gets most wrong (ground truth beside the predictions), or the empty state.

Pictures are linked as ``/api/models/<dataset>/<name>/results/<file>``, a route that serves only
the files the model's results.json lists. Every value is escaped.
"""

from __future__ import annotations

from collections.abc import Mapping
from html import escape
from typing import Any
from urllib.parse import quote

from smalltrain.service.detection_results import ModelResults
from smalltrain.ui.viewmodels.render import fmt_value, message, metric, table

__all__ = ["results_html", "results_url"]

_COLUMNS = ("images", "instances", "precision", "recall", "mAP50", "mAP50-95")


def results_url(model: str, file: str, version: str = "") -> str:
    """The URL of a listed file of ``model``'s (``DATASET/NAME``) results; ``version`` makes a
    browser fetch a recomputed picture again."""
    dataset, _, name = model.partition("/")
    url = f"/api/models/{quote(dataset, safe='')}/{quote(name, safe='')}/results/{quote(file)}"
    return f"{url}?v={quote(version)}" if version else url


def _per_class(per_class: Mapping[str, Mapping[str, Any]]) -> str:
    heads = ["class", *[k if k in ("images", "instances") else metric(f"val/{k}", text=k)
                        for k in _COLUMNS]]  # explained on hover  # fmt: skip
    rows = [(name, *[fmt_value(v.get(k)) for k in _COLUMNS]) for name, v in per_class.items()]
    return table(heads, rows, "st-results-classes")


def _figure(url: str, alt: str, caption: str, cls: str = "") -> str:
    src = escape(url)
    return (
        f'<figure class="{escape(cls)}"><a href="{src}" target="_blank">'
        f'<img src="{src}" alt="{escape(alt)}"></a><figcaption>{escape(caption)}</figcaption>'
        "</figure>"
    )


def _worst(model: str, data: Mapping[str, Any], version: str) -> str:
    worst = data.get("worst") or []
    if not worst:
        return message("No image has a missed object or a false box at this confidence.", "ok")
    cells = []
    for w in worst:
        caption = (
            f"{w.get('image')}: {w.get('missed', 0)} missed, {w.get('false', 0)} false, "
            f"{w.get('correct', 0)} right"
        )
        cells.append(_figure(results_url(model, str(w["file"]), version), str(w["image"]),
                             caption, "st-worst-item"))  # fmt: skip
    return f'<div class="st-images st-worst">{"".join(cells)}</div>'


def results_html(found: ModelResults, *, per_class: bool = True) -> str:
    """The results section of one detection model (``found``), or its empty state;
    ``per_class=False`` leaves the per-class table out (the Job tab's summary has it)."""
    model = found.model
    if found.data is None:
        return (
            f'<div class="st-results st-results-empty" data-model="{escape(model)}">'
            f"{message(found.note(), 'info')}</div>"
        )
    data = found.data
    version = str(data.get("created", ""))
    files = data.get("files") or {}
    conf = data.get("conf", 0.25)
    head = (
        f"<h4>Results of {escape(model)} on the val split ({data.get('images', 0)} images; "
        f"boxes counted at confidence &gt; {escape(str(conf))})</h4>"
        f'<div class="st-small">computed {escape(version)} from {escape(str(data.get("source")))}'
        "</div>"
    )
    pictures = "".join(
        _figure(results_url(model, str(files[key]), version), alt, caption)
        for key, alt, caption in (
            ("confusion_matrix", "confusion matrix",
             "Confusion matrix: rows are what the model said, columns the truth; the "
             "background row counts missed objects, its column false boxes"),
            ("pr_curve", "precision-recall curves",
             "Precision against recall per class: the higher and further right, the better"),
        )
        if key in files
    )  # fmt: skip
    return (
        f'<div class="st-results" data-model="{escape(model)}">{head}'
        f"{_per_class(data.get('per_class') or {}) if per_class else ''}"
        f'<div class="st-images st-results-plots">{pictures}</div>'
        "<h4>Images it gets most wrong (ground truth left, its boxes right)</h4>"
        f"{_worst(model, data, version)}</div>"
    )
