"""How a sweep looks in the terminal: its trials side by side with their curves, and the
one-line progress reports ``smalltrain sweep`` prints while trials run."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

if TYPE_CHECKING:
    from smalltrain.service.sweeps.spec import SweepSummary, TrialRow

__all__ = ["describe_event", "render_summary", "setting_text", "sparkline"]

_BARS = "▁▂▃▄▅▆▇█"
_STYLE = {"COMPLETED": "green", "FAILED": "red", "CANCELLED": "yellow", "INTERRUPTED": "yellow"}


def sparkline(values: Sequence[float], lo: float, hi: float, width: int) -> str:
    """``values`` as bars on the common scale ``lo..hi``, padded to ``width`` characters."""
    if not values:
        return " " * width
    span = hi - lo if hi > lo else 1.0
    bars = []
    for v in values:
        level = 0 if not math.isfinite(v) else round((v - lo) / span * (len(_BARS) - 1))
        bars.append(_BARS[min(max(level, 0), len(_BARS) - 1)])
    return "".join(bars).ljust(width)


def setting_text(setting: Mapping[str, Any], sep: str = " ") -> str:
    """``seed=3 lr0=0.001``."""
    return sep.join(f"{k}={v}" for k, v in setting.items()) or "-"


def _note(row: TrialRow, summary: SweepSummary) -> str:
    if row.job.id == summary.sweep.best_job_id:
        return "registered (★)"
    if row.stopped_early:
        return f"stopped early (epoch {len(row.curve)})"
    if row.job.artifacts.get("pruned"):
        return "run folder pruned"
    if row.job.status.value in ("FAILED", "INTERRUPTED"):
        return (row.job.status_reason or "")[:60]
    return ""


def render_summary(console: Console, summary: SweepSummary) -> None:
    """Print the sweep's header and a table of its trials with their curves."""
    sweep = summary.sweep
    better = "lower" if sweep.mode == "min" else "higher"
    console.print(
        Text.assemble(
            (f"sweep {sweep.id}", "bold"),
            f": {sweep.task} on {sweep.dataset}, {len(summary.trials)} trials, {sweep.metric} "
            f"({better} is better), early stopping "
            f"{'on' if sweep.spec.get('early_stop', True) else 'off'}",
        )
    )
    style = _STYLE.get(sweep.status, "cyan")
    reason = f": {sweep.status_reason}" if sweep.status_reason else ""
    console.print(Text.assemble((str(sweep.status), style), reason))
    values = [v for row in summary.trials for _, v in row.curve]
    lo, hi = _scale(values)
    width = max([int(sweep.spec.get("max_epochs", 1))] + [len(r.curve) for r in summary.trials])
    # no rules in a pipe or a file (as print_table): lines of text for grep
    table = Table(box=box.SIMPLE_HEAD if console.is_terminal else None)
    table.add_column("trial", no_wrap=True)
    table.add_column("status", no_wrap=True)
    lines = [setting_text(r.setting, "\n").splitlines() for r in summary.trials]
    table.add_column("setting", overflow="fold", min_width=min(28, max(map(len, sum(lines, [])))))
    table.add_column("best", no_wrap=True)
    table.add_column("curve", no_wrap=True, min_width=min(width, 40))
    table.add_column("note", overflow="fold")
    for row in summary.trials:
        status = row.job.status.value
        best = "-" if row.best is None else f"{row.best:.4g}"
        if row.job.id == sweep.best_job_id:
            best += " ★"
        table.add_row(
            f"{row.n} {row.job.short_id}",
            Text(status, style=_STYLE.get(status, "cyan")),
            setting_text(row.setting, "\n"),
            best,
            sparkline([v for _, v in row.curve], lo, hi, width),
            _note(row, summary),
        )
    console.print(table)
    console.print(f"best: the best {sweep.metric} of a trial's epochs; curve: one bar per epoch",
                  highlight=False)  # fmt: skip
    console.print(
        f"{summary.epochs_run} epochs trained in all; curves share one scale "
        f"({lo:.4g} ▁ … █ {hi:.4g} and above)",
        highlight=False,
    )


def _scale(values: Sequence[float]) -> tuple[float, float]:
    """The curves' common scale: the lowest value to the 90th percentile, so that one spike
    does not flatten every curve (higher values show as full bars)."""
    finite = sorted(v for v in values if math.isfinite(v))
    if not finite:
        return 0.0, 1.0
    top = finite[min(len(finite) - 1, int(0.9 * len(finite)))] if len(finite) >= 10 else finite[-1]
    return finite[0], top


def describe_event(trial: int, job_id: str, event: Mapping[str, Any], metric: str) -> str | None:
    """One progress line for a trial's stored event, or None for events not worth a line."""
    head = f"trial {trial} [{job_id[:8]}]"
    kind = event.get("type")
    if kind == "epoch":
        value = dict(event.get("metrics") or {}).get(metric)
        shown = f"{value:.4g}" if isinstance(value, (int, float)) else "-"
        total = event.get("total_epochs", "?")
        return f"{head} epoch {int(event.get('epoch', 0)) + 1}/{total}  {metric} {shown}"
    if kind == "status_change" and event.get("to") not in ("QUEUED", "STARTING", None):
        reason = f": {event['reason']}" if event.get("reason") else ""
        return f"{head} {event.get('to')}{reason}"
    if kind == "status_change" and event.get("to") == "QUEUED" and event.get("from"):
        return f"{head} queued again: {event.get('reason') or ''}"
    return None
