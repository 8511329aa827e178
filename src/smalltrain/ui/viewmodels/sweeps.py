"""What the Sweeps tab shows, from the sweep service's own summary (``sweep_summary``, the one
``smalltrain sweep show`` prints): the trials side by side with their curves of the sweep's
metric, which were stopped early (ASHA) and why, and the best one."""

from __future__ import annotations

from collections.abc import Sequence
from html import escape
from typing import Any

from smalltrain.service.sweeps.spec import SweepSummary, TrialRow
from smalltrain.store.sweeps import SweepRecord
from smalltrain.ui.viewmodels.charts import line_chart
from smalltrain.ui.viewmodels.render import fmt_value, message, table, when

__all__ = ["best_trial", "sweep_choices", "sweep_html"]

NO_SWEEPS = (
    "No sweeps yet. A sweep trains several trials of one dataset that differ in a few settings "
    "(seeds, learning rates) and stops the weak ones early; start one with "
    "`smalltrain sweep DATASET --trials 4 --vary seed`, and follow it here."
)


def sweep_choices(records: Sequence[SweepRecord]) -> list[tuple[str, str]]:
    """``(label, id)`` of sweeps, e.g. ``3f2a9c1e · kicks · val/sc (min) · 4 trials``."""
    out = []
    for r in records:
        trials = r.spec.get("trials", "?")
        label = f"{r.id[:8]} · {r.dataset or r.task} · {r.metric} ({r.mode}) · {trials} trials"
        out.append((label, r.id))
    return out


def best_trial(summary: SweepSummary) -> TrialRow | None:
    """The sweep's best trial: the one it registered, else (still running) the best so far."""
    sweep = summary.sweep
    for t in summary.trials:
        if sweep.best_job_id and t.job.id == sweep.best_job_id:
            return t
    scored = [t for t in summary.trials if t.best is not None]
    if not scored:
        return None
    pick = min if sweep.mode == "min" else max
    return pick(scored, key=lambda t: float(t.best or 0.0))


_SWEEP_BADGE = {"RUNNING": "blue", "FINALIZING": "blue", "COMPLETED": "green", "FAILED": "red"}


def _badge(status: str) -> str:
    colour = _SWEEP_BADGE.get(status, "grey")
    return f'<span class="st-badge st-{colour}">{escape(status)}</span>'


def _setting(t: TrialRow) -> str:
    return ", ".join(f"{k}={v}" for k, v in t.setting.items()) or "-"


def _stopped(t: TrialRow) -> str:
    if t.stopped_early:
        why = t.stopped_early
        return why if why.startswith("stopped early") else f"stopped early: {why}"
    if t.job.artifacts.get("pruned"):
        return "weights pruned (not the best)"
    if t.job.status.value == "COMPLETED":
        return "ran to the end"
    return t.job.status_reason or t.job.status.value.lower()


def sweep_html(summary: SweepSummary) -> str:
    """The sweep's header, every trial's curve on one chart, and the trials' table."""
    sweep = summary.sweep
    best = best_trial(summary)
    better = "lower is better" if sweep.mode == "min" else "higher is better"
    head = (
        f'<div class="st-sweep" data-sweep="{escape(sweep.id)}" data-status="'
        f'{escape(sweep.status)}"><b>Sweep {escape(sweep.id[:12])}</b> '
        f"{_badge(sweep.status)} · {escape(sweep.dataset or '-')} · {escape(sweep.task)} · "
        f"metric <code>{escape(sweep.metric)}</code> ({better}) · {len(summary.trials)} trials, "
        f"{summary.epochs_run} epochs trained in all · started {escape(when(sweep.created_at))}"
    )
    if sweep.status_reason:
        head += f'<div class="st-dim st-small">{escape(sweep.status_reason)}</div>'
    if best is not None:
        kept = f", registered as model {sweep.best_model!r}" if sweep.best_model else " so far"
        head += (
            f'<div class="st-sweep-best" data-best-trial="{best.n}"><b>Best:</b> trial {best.n} '
            f"({escape(_setting(best))}) with {escape(sweep.metric)} "
            f"{escape(fmt_value(best.best))}{escape(kept)}</div>"
        )
    head += "</div>"
    series = [
        (f"trial {t.n}{' (best)' if best is t else ''}{' ✂' if t.stopped_early else ''}",
         [(float(e + 1), v) for e, v in t.curve])
        for t in summary.trials
    ]  # fmt: skip
    chart = line_chart(f"{sweep.metric} per epoch, every trial ({better})", series, "epoch")
    rows = [
        (
            f"{t.n} ★" if best is t else str(t.n),
            _setting(t),
            t.job.status.value,
            str(len(t.curve)),
            fmt_value(t.best),
            _stopped(t),
            t.job.artifacts.get("model") or "-",
        )
        for t in summary.trials
    ]
    headers = ("trial", "setting", "state", "epochs", f"best {sweep.metric}", "how it ended",
               "model")  # fmt: skip
    body = table(headers, rows, "st-sweep-trials")
    if not summary.trials:
        body = message("This sweep has no trials.")
    return f'{head}<div class="st-charts">{chart}</div>{body}'


def empty_html() -> str:
    return message(NO_SWEEPS)


def trial_rows(summary: SweepSummary) -> list[dict[str, Any]]:
    """The trials as the API's ``sweep show --json`` gives them (for tests and scripts)."""
    return [t.to_dict() for t in summary.trials]
