"""The Models tab's comparison of several models on one metric: the chart (each legend entry
with the model's best value), a table of the best values beside the hyper-parameters the models
were trained with, and a note when they were validated on different splits (a seed sweep that
varied the split, models trained with other seeds), whose numbers do not compare directly."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from html import escape
from typing import Any

from smalltrain.engine.context import metric_mode
from smalltrain.ui.viewmodels.charts import line_chart
from smalltrain.ui.viewmodels.render import fmt_value, message, table

__all__ = ["Compared", "comparison_html", "split_of"]

#: The hyper-parameters always shown, per task (others appear when the models differ in them).
HYPER: dict[str, tuple[str, ...]] = {
    "audio": ("epochs", "batch_size", "learning_rate", "latent_dim", "model_width", "seed"),
    "detect": ("base_model", "epochs", "batch_size", "image_size", "lr0", "freeze_layers", "seed"),
}
#: Config keys that never make a column (names, places, bookkeeping).
NOT_HYPER = frozenset(
    {"model_name", "device", "preset", "run_dir", "checkpoint_every", "keep_last_checkpoints",
     "preview_every", "preview_count", "workers"}
)  # fmt: skip
MAX_EXTRA = 6


@dataclass
class Compared:
    """One model in the comparison: its curve of the metric and its training config."""

    name: str
    points: list[tuple[float, float]]
    config: Mapping[str, Any] = field(default_factory=dict)
    task: str = ""


def split_of(model: Compared) -> str | None:
    """Which validation split a model was measured on, as a short label; None when the task
    fixes the split itself (detection: the data.yaml's val images)."""
    cfg = model.config
    if model.task != "audio" or not cfg:
        return None
    seed = cfg.get("split_seed")
    seed = cfg.get("seed") if seed is None else seed
    return f"split seed {seed}, val fraction {cfg.get('val_fraction', '?')}"


def _split_note(models: Sequence[Compared]) -> str:
    splits = {m.name: split_of(m) for m in models}
    if len({s for s in splits.values() if s is not None}) <= 1:
        return ""
    which = "; ".join(f"{name}: {s}" for name, s in splits.items() if s is not None)
    return message(
        f"These models were validated on different splits ({which}): each was scored on other "
        "files, so their validation values do not compare directly. To compare them fairly, "
        "train them on one split (the same split_seed in the Advanced settings; a sweep that "
        "varies seed keeps one split unless split_seed is varied).",
        "warn",
    )


def _best(points: Sequence[tuple[float, float]], mode: str) -> tuple[float, float] | None:
    if not points:
        return None
    return (min if mode == "min" else max)(points, key=lambda p: p[1])


def _columns(models: Sequence[Compared]) -> list[str]:
    task = next((m.task for m in models if m.task), "")
    fixed = [k for k in HYPER.get(task, ()) if any(k in m.config for m in models)]
    keys = sorted({k for m in models for k in m.config} - set(fixed) - NOT_HYPER)
    differ = [k for k in keys if len({repr(m.config.get(k)) for m in models}) > 1]
    return fixed + differ[:MAX_EXTRA]


def comparison_html(models: Sequence[Compared], metric: str) -> str:
    """The note on splits, the chart (legend: best values) and the table of best values with
    the hyper-parameter columns."""
    mode = metric_mode(metric)
    better = "lower is better" if mode == "min" else "higher is better"
    chart = line_chart(
        f"{metric} per epoch ({better})",
        [(m.name, m.points) for m in models],
        "epoch",
        "no stored history for these models",
        best=mode,
    )
    columns = _columns(models)
    rows = []
    for m in models:
        best = _best(m.points, mode)
        rows.append(
            (
                m.name,
                fmt_value(best[1]) if best else "-",
                fmt_value(int(best[0])) if best else "-",
                split_of(m) or "the dataset's val split",
                *[fmt_value(m.config.get(k)) for k in columns],
            )
        )
    headers = ("model", f"best {metric}", "at epoch", "validated on", *columns)
    return (
        _split_note(models)
        + chart
        + f'<div class="st-compare-table" data-metric="{escape(metric)}">'
        + table(headers, rows, "st-compare")
        + "</div>"
    )
