"""The Job tab: one job, live from the store: state, progress, Stop / Stop now / Resume,
curves, warnings, resource gauges, preview players, what the model sees (augmented examples
from the run's ``seen/``), an ended detection job's results (``viewmodels.results``) and the
log.

The page polls the store (every 0.3 s; an unchanged job costs one row read and sends nothing),
so closing the tab never touches the job and a reopened page shows what is stored. Stop and
Resume call the engine (``TrainingManager.cancel``/``resume``); Gradio's ``cancels=`` only stops
generator functions, never a job. Buttons are enabled from the stored state at every change,
so they cannot get stuck.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import gradio as gr

from smalltrain.engine.context import CancelMode
from smalltrain.engine.jobs import RESUMABLE, JobStatus, TrainingJob
from smalltrain.service.resuming import failed_on_config
from smalltrain.service.summary import finished_event, job_summary
from smalltrain.ui.viewmodels import render
from smalltrain.ui.viewmodels.backend import Backend
from smalltrain.ui.viewmodels.results import results_html
from smalltrain.ui.viewmodels.seen import seen_html
from smalltrain.ui.views.common import EXPECTED, error_html, job_choices

#: Keeps the page's address on the job it shows, so a reload opens the same job.
# how often an open page asks whether its job changed: a job's first progress shows within
# this after its first step (bench/README.md, issue 26); an unchanged job costs one row read
POLL_S = 0.3

URL_JS = """(job) => {
  const url = new URL(window.location.href);
  if (job) { url.searchParams.set('job', job); } else { url.searchParams.delete('job'); }
  window.history.replaceState(null, '', url);
  return job;
}"""


@dataclass
class JobTab:
    picker: gr.Dropdown
    load_outputs: list[Any]
    show: Any  # job id -> outputs
    retry: gr.Button  # "Edit and retry": the app opens the job's settings in the Train tab


def _buttons(job: TrainingJob | None) -> list[Any]:
    """Stop, Stop now, Resume and Edit and retry, from the stored state. A job that failed on
    its config is not resumed (the same config fails the same way): it is edited and retried."""
    if job is None:
        return [gr.update(interactive=False)] * 3 + [gr.update(visible=False)]
    running = job.status in (JobStatus.QUEUED, JobStatus.STARTING, JobStatus.TRAINING)
    retry = failed_on_config(job)
    return [
        gr.update(interactive=running),
        gr.update(interactive=running or job.status is JobStatus.CANCELLING),
        gr.update(interactive=job.status in RESUMABLE and not retry, visible=not retry),
        gr.update(visible=retry),
    ]


def _previews(backend: Backend, job: TrainingJob, items: Any) -> str:
    """Audio: the preview players, each "recon" beside the original it reconstructs."""
    if job.task != "audio":
        return _no_previews(job)
    info = backend.preview_info(job.id) if items else {}
    return render.previews(job.id, items, info=info, every=_preview_every(job))


def _preview_every(job: TrainingJob) -> int | None:
    every = (job.config or {}).get("preview_every")
    return int(every) if isinstance(every, (int, float)) else None


def _gauges(backend: Backend, job_id: str | None) -> str:
    """The machine's gauges; the job's memory only while it runs; for an ended job, never a
    "measuring…" that waits for nothing."""
    running = _running(backend, job_id)
    ended = bool(job_id) and not running
    return render.gauges(backend.resources.latest(), job=running, ended=ended)


def _no_previews(job: TrainingJob) -> str:
    """The Previews section of a task that writes no sound previews (never left blank)."""
    return render.message(
        f"A {job.task} job writes no sound previews; its progress is in the curves above, and "
        "its scores in the Models tab once it completes."
    )


def _summary(backend: Backend, job: TrainingJob) -> str:
    """The end of an ended job, as the CLI ends ``train`` (``service.summary.job_summary``)."""
    if not job.is_terminal:
        return ""
    try:
        data = job_summary(backend.manager, job, finished_event(backend.manager, job))
    except EXPECTED as exc:
        return error_html(exc)
    rows: list[tuple[str, Any]] = []
    if data["best"]:
        rows.append(("best epoch", data["best"]))
    if data["verdict"]:
        rows.append(("verdict", data["verdict"]))
    if data["model"]:
        active = (data["activation"] or ("yes" if data["active"] else "no")).removeprefix(
            "active: "
        )
        rows += [("model", data["model"]), ("active", active)]
    if job.status is not JobStatus.COMPLETED and data.get("resume"):
        rows.append(("resume", data["resume"]))
    if not rows:
        return ""
    out = render.table(None, rows, "st-kv")
    if data["per_class"]:
        keys = sorted({k for v in data["per_class"].values() for k in v})
        out += "<h4>Per class (best weights on the val split)</h4>" + render.table(
            ("class", *[render.metric(f"val/{k}", text=k) for k in keys]),
            [(name, *[render.fmt_value(v.get(k)) for k in keys])
             for name, v in data["per_class"].items()],
        )  # fmt: skip
    return f'<div class="st-summary"><h4>Summary</h4>{out}</div>'


def _results(backend: Backend, job: TrainingJob) -> str:
    """An ended detection job's results (confusion matrix, worst images...), as its model keeps
    them; the empty state when it has none."""
    if job.task != "detect" or not job.is_terminal or not job.model_name or not job.dataset:
        return ""
    try:
        found = backend.model_results(job.dataset, job.model_name)
        return results_html(found, per_class=False)  # the summary above has the table
    except EXPECTED:  # no model registered (failed, cancelled): nothing to show
        return ""


def _running(backend: Backend, job_id: str | None) -> bool:
    """Whether the shown job is running now (its process's memory belongs on the page)."""
    if not job_id:
        return False
    try:
        job = backend.manager.get_job(job_id)
    except EXPECTED:
        return False
    return job.status in (JobStatus.STARTING, JobStatus.TRAINING, JobStatus.CANCELLING)


class JobPanel:
    """The tab's logic: outputs are [sig, header, progress, charts, warnings, previews,
    results, seen, log, stop, stop_now, resume, retry]."""

    N = 13

    def __init__(self, backend: Backend) -> None:
        self.backend = backend
        self._charts: dict[str, tuple[int, str]] = {}  # job id -> (id of its curves, HTML)

    def _charts_html(self, view: Any) -> str:
        """The charts' SVG, drawn again only when the backend re-read the curves."""
        cached = self._charts.get(view.job.id)
        if cached is None or cached[0] != id(view.charts):
            if len(self._charts) > 64:
                self._charts.clear()
            cached = (id(view.charts), render.charts(view))
            self._charts[view.job.id] = cached
        return cached[1]

    def signature(self, job: TrainingJob) -> str:
        return f"{job.id}|{job.updated_at}|{job.status.value}"

    def values(self, job_id: str | None) -> list[Any]:
        """Every output's fresh value (the first, the page's memory, excluded)."""
        if not job_id:
            empty = render.message("No job yet: start one in the Train tab.")
            return [empty, "", "", "", "", "", "", "", *_buttons(None)]
        view = self.backend.view(job_id)
        job = view.job
        return [
            render.job_header(job) + _summary(self.backend, job),
            render.progress(job, view),
            self._charts_html(view),
            render.warnings(view),
            _previews(self.backend, job, view.previews),
            _results(self.backend, job),
            seen_html(job.id, self.backend.seen(job.id)),
            render.log_block(view.log),
            *_buttons(job),
        ]

    def render(self, job_id: str | None, seen: dict[str, Any] | None = None) -> list[Any]:
        """The outputs; with ``seen`` (what this page shows), unchanged ones are skipped, so a
        poll sends only what changed (often just the progress bar)."""
        values = self.values(job_id)
        keys = [hash(repr(v) if isinstance(v, dict) else v) for v in values]
        job = self.backend.manager.get_job(job_id) if job_id else None
        memory = {"sig": self.signature(job) if job else "", "shown": keys}
        if not seen or seen.get("sig", "|").split("|")[0] != (job.id if job else ""):
            return [memory, *values]
        shown = seen.get("shown") or []
        out = [v if i >= len(shown) or shown[i] != k else gr.skip()
               for i, (v, k) in enumerate(zip(values, keys, strict=True))]  # fmt: skip
        return [memory, *out]

    def tick(
        self, job_id: str | None, seen: dict[str, Any] | None, noted: str | None = None
    ) -> list[Any]:
        """The timer's refresh: nothing is sent unless the stored job changed. Then the
        outputs, the notice and ``noted`` (the status the job had when the notice was given):
        a notice is cleared once its job has ended in another status ("queued again" is stale
        on a COMPLETED job; the header says how it ended)."""
        unchanged = [gr.skip()] * (self.N + 2)
        if not job_id:
            return unchanged
        try:
            job = self.backend.manager.get_job(job_id)
        except EXPECTED:
            return unchanged
        # checked before the signature: the job may have ended before the notice arrived
        stale = noted is not None and job.is_terminal and noted != job.status.value
        notice = ["", None] if stale else [gr.skip(), gr.skip()]
        if seen and self.signature(job) == seen.get("sig"):
            return [*unchanged[: self.N], *notice]
        return [*self.render(job_id, seen), *notice]

    def act(self, action: str, job_id: str | None) -> list[Any]:
        """Stop, Stop now or Resume, then the fresh state, a notice and the status it was
        given at (``tick`` clears it when the job ends in another)."""
        if not job_id:
            return [*([gr.skip()] * self.N), render.message("Choose a job first.", "warn"), None]
        try:
            if action == "resume":
                job = self.backend.resume(job_id)
                note = f"Job {job.id} queued again: {job.status_reason or 'resuming'}."
            else:
                mode: CancelMode = "immediate" if action == "stop_now" else "graceful"
                job = self.backend.cancel(job_id, mode)
                note = (
                    f"Job {job.id}: stop requested; it writes a checkpoint and ends CANCELLED."
                    if mode == "graceful"
                    else f"Job {job.id}: stopping now."
                )
            return [*self.render(job_id), render.message(note, "ok"), job.status.value]
        except EXPECTED as exc:
            return [*self.render(job_id), error_html(exc), None]


def build(backend: Backend) -> JobTab:
    """Lay out the tab and wire its events."""
    panel = JobPanel(backend)
    sig = gr.State({})  # what this page shows: the job's signature and each output's value
    with gr.Row(elem_classes=["st-row-end"]):
        picker = gr.Dropdown(
            label="Job", choices=[], scale=4, interactive=True, elem_id="job-picker"
        )
        refresh = gr.Button("Refresh", scale=1, min_width=100, elem_id="job-refresh")
    header = gr.HTML(elem_id="job-header")
    progress = gr.HTML(elem_id="job-progress")
    with gr.Row():
        stop = gr.Button(
            "Stop (checkpoint first)", variant="secondary", interactive=False, elem_id="job-stop"
        )
        stop_now = gr.Button("Stop now", variant="stop", interactive=False, elem_id="job-stop-now")
        resume = gr.Button("Resume", variant="primary", interactive=False, elem_id="job-resume")
        retry = gr.Button("Edit and retry", variant="primary", visible=False, elem_id="job-retry")
    notice = gr.HTML(elem_id="job-notice")
    gauges = gr.HTML(elem_id="job-gauges")
    charts = gr.HTML(elem_id="job-charts")
    with gr.Row():
        with gr.Column(scale=1):
            gr.Markdown("#### Warnings")
            warnings = gr.HTML(elem_id="job-warnings")
        with gr.Column(scale=1):
            gr.Markdown("#### Previews")
            previews = gr.HTML(elem_id="job-previews")
    results = gr.HTML(elem_id="job-results")  # an ended detection job's (viewmodels.results)
    gr.Markdown("#### What the model sees")
    seen = gr.HTML(elem_id="job-seen")
    with gr.Accordion("Event log", open=False):
        log = gr.HTML(elem_id="job-log")
    outputs = [sig, header, progress, charts, warnings, previews, results, seen, log]
    outputs += [stop, stop_now, resume, retry]
    noted = gr.State(None)  # the job's status when the notice was given (JobPanel.tick)
    timer = gr.Timer(POLL_S)
    timer.tick(
        panel.tick,
        [picker, sig, noted],
        [*outputs, notice, noted],
        show_progress="hidden",
        concurrency_limit=None,
        queue=False,
    )
    gauge_timer = gr.Timer(2.0)
    gauge_timer.tick(
        lambda j: _gauges(backend, j),
        picker,
        gauges,
        show_progress="hidden",
        concurrency_limit=None,
        queue=False,
    )
    # a notice belongs to the job it was about: another job shown clears it
    picker.change(
        lambda j: [*panel.render(j), "", None, _gauges(backend, j)],
        picker,
        [*outputs, notice, noted, gauges],
        show_progress="hidden",
    )
    picker.input(None, picker, None, js=URL_JS)
    refresh.click(lambda j: gr.update(choices=job_choices(backend, j)), picker, picker)
    for button, action in ((stop, "stop"), (stop_now, "stop_now"), (resume, "resume")):
        button.click(
            lambda j, a=action: panel.act(a, j),
            picker,
            [*outputs, notice, noted],
            show_progress="hidden",
            concurrency_limit=None,
        )
    return JobTab(picker=picker, load_outputs=outputs, show=panel.render, retry=retry)
