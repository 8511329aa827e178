"""The Jobs tab: the history with filters (state, task, dataset), and one job's details: its
duration, final metrics, error, run folder and log."""

from __future__ import annotations

import textwrap
from dataclasses import dataclass
from html import escape
from typing import Any

import gradio as gr

from smalltrain.engine.jobs import JobStatus, TrainingJob
from smalltrain.ui.viewmodels import render
from smalltrain.ui.viewmodels.backend import Backend
from smalltrain.ui.viewmodels.jobs import duration_s, headline_items
from smalltrain.ui.views.common import EXPECTED, error_html

ALL = "all"


@dataclass
class JobsTab:
    table: gr.HTML
    dataset: gr.Dropdown
    refresh: Any  # (statuses, task, dataset) -> [table, picker]
    open_button: gr.Button
    picker: gr.Dropdown
    filters: list[Any]


def _filters(statuses: list[str] | None, task: str | None, dataset: str | None) -> dict[str, Any]:
    return {
        "status": [JobStatus(s) for s in statuses] if statuses else None,
        "task": None if not task or task == ALL else task,
        "dataset": None if not dataset or dataset == ALL else dataset,
    }


def history(
    backend: Backend, statuses: list[str] | None, task: str | None, dataset: str | None
) -> list[Any]:
    """The filtered table and the job picker's choices."""
    jobs = backend.manager.list_jobs(limit=200, **_filters(statuses, task, dataset))
    store = backend.manager.jobs
    rows = [
        (
            j.short_id,
            j.status.value,
            j.task,
            j.dataset or "-",
            j.model_name,
            render.when(j.created_at),
            render.fmt_duration(duration_s(store, j)),
            _final(j),
            textwrap.shorten(j.status_reason or j.error or "", 120, placeholder=" ..."),
        )
        for j in jobs
    ]
    headers = (
        "id",
        "state",
        "task",
        "dataset",
        "model",
        "created",
        "ran for",
        "final metrics",
        "error / reason",
    )
    table = render.table(headers, rows, "st-jobs") if rows else render.message("No job matches.")
    choices = [(f"{j.short_id} · {j.model_name} · {j.status.value}", j.id) for j in jobs]
    return [table, gr.update(choices=choices, value=choices[0][1] if choices else None)]


def _final(job: TrainingJob) -> Any:
    """The headline metrics of an ended job; a running one has none final yet."""
    if not job.is_terminal:
        return "(not ended)"
    return render.metrics_line(headline_items(job)) or "-"


def _metrics_text(job: TrainingJob) -> Any:
    """Every last metric of an ended job, readable and explained on hover."""
    if not job.is_terminal:
        return "(not ended: the Job tab shows its progress)"
    items = [(k, v) for k, v in sorted(job.last_metrics.items()) if isinstance(v, (int, float))]
    return render.metrics_line(items) or "-"


def _state(job: TrainingJob) -> str:
    return f"{job.status.value}: {job.status_reason}" if job.status_reason else job.status.value


def details(backend: Backend, job_id: str | None) -> list[Any]:
    """One job's record, attempts and log."""
    if not job_id:
        return ["", ""]
    job = backend.manager.get_job(job_id)
    store = backend.manager.jobs
    attempts = store.history.list_attempts(job.id)
    rows = [
        ("state", _state(job)),
        ("task / dataset", f"{job.task} / {job.dataset} ({job.dataset_path})"),
        ("model", job.model_name),
        (
            "created / started / finished",
            " / ".join(render.when(t) for t in (job.created_at, job.started_at, job.finished_at)),
        ),
        (
            "ran for",
            f"{render.fmt_duration(duration_s(store, job))} over {len(attempts)} attempt(s)",
        ),
        (
            "progress",
            f"epoch {job.epoch}/{job.total_epochs or '?'}, "
            f"step {job.step}/{job.total_steps or '?'}",
        ),
        ("final metrics", _metrics_text(job)),
        ("run folder", job.run_dir or "-"),
        ("checkpoint", job.checkpoint_path or "-"),
        ("model folder", job.artifacts.get("model", "-")),
    ]
    out = render.table(None, rows, "st-kv")
    if job.error:
        out += render.message(f"Error: {job.error}", "error")
    if job.error_traceback:
        out += (
            '<details><summary>Traceback</summary><pre class="st-log">'
            f"{escape(job.error_traceback)}</pre></details>"
        )
    return [out, render.log_block(backend.job_log(job.id))]


def build(backend: Backend) -> JobsTab:
    """Lay out the tab and wire its events."""
    with gr.Row():
        statuses = gr.Dropdown(
            label="State", choices=[s.value for s in JobStatus], multiselect=True, scale=3
        )
        task = gr.Dropdown(label="Task", choices=[ALL, "audio", "detect"], value=ALL, scale=1)
        dataset = gr.Dropdown(label="Dataset", choices=[ALL], value=ALL, scale=2)
        refresh = gr.Button("Refresh", size="sm", scale=1)
    table = gr.HTML(elem_id="jobs-table")
    with gr.Row(elem_classes=["st-row-end"]):
        picker = gr.Dropdown(label="Details of job", choices=[], scale=4)
        open_button = gr.Button("Open in the Job tab", scale=1, min_width=220)
    detail = gr.HTML()
    with gr.Accordion("Log", open=False):
        log = gr.HTML()

    def refresh_all(s: list[str] | None, t: str | None, d: str | None) -> list[Any]:
        return history(backend, s, t, d)

    filters = [statuses, task, dataset]
    for trigger in (statuses.change, task.change, dataset.change, refresh.click):
        trigger(refresh_all, filters, [table, picker], show_progress="hidden")

    def show(job_id: str | None) -> list[Any]:
        try:
            return details(backend, job_id)
        except EXPECTED as exc:
            return [error_html(exc), ""]

    picker.change(show, picker, [detail, log], show_progress="hidden")
    return JobsTab(
        table=table,
        dataset=dataset,
        refresh=refresh_all,
        open_button=open_button,
        picker=picker,
        filters=filters,
    )
