"""``build``: the whole Gradio app, its tabs wired to each other, filled from the store on load.

A page's address carries the job it shows (``?job=<id>``) and its tab (``?tab=train``), so a
reload shows the same job in the same tab; the train form comes back from the remembered
settings of the dataset last used.
"""

from __future__ import annotations

from html import escape
from typing import Any

import gradio as gr

from smalltrain import __version__
from smalltrain.engine.jobs import ACTIVE, JobStatus
from smalltrain.errors import SmallTrainError
from smalltrain.ui.backend import Backend
from smalltrain.ui.views import datasets, job, jobs, models, train, use
from smalltrain.ui.views.common import dataset_choices, job_choices

TABS = ("datasets", "train", "job", "jobs", "models", "use")

TAB_JS = """() => {
  const url = new URL(window.location.href);
  url.searchParams.set('tab', '%s');
  window.history.replaceState(null, '', url);
}"""


def theme() -> gr.themes.Base:
    """Gradio's built-in default theme with its bundled fonts and system fallbacks (a
    ``GoogleFont`` would be fetched from the internet)."""
    return gr.themes.Default(primary_hue="blue", secondary_hue="slate", neutral_hue="slate")


def _header(backend: Backend) -> str:
    return (
        '<div class="st-title"><h1>smalltrain</h1>'
        f'<p class="st-dim st-small">v{escape(__version__)} · home '
        f"<code>{escape(str(backend.home))}"
        f"</code> · {escape(backend.scheduler_note())}</p></div>"
    )


def _first_tab(backend: Backend, asked: str | None, job_id: str | None) -> str:
    if asked in TABS:
        return str(asked)
    if job_id:
        try:
            if backend.manager.get_job(job_id).status in ACTIVE | {JobStatus.QUEUED}:
                return "job"
        except SmallTrainError:
            pass
    return "train" if backend.datasets.list() else "datasets"


def _on_load(backend: Backend, ds: datasets.DatasetsTab, request: gr.Request | None) -> list[Any]:
    """A fresh page: the job of its address (else the newest), its tab, the lists."""
    params = request.query_params if request is not None else {}
    job_id = params.get("job") or None
    if job_id is None and (newest := backend.newest_job()) is not None:
        job_id = newest.id
    names = dataset_choices(backend)
    values = [v for _, v in names]
    last = backend.settings.last()
    chosen = last if last in values else (values[0] if values else None)
    return [
        _header(backend),
        gr.update(selected=_first_tab(backend, params.get("tab"), job_id)),
        gr.update(choices=job_choices(backend, job_id), value=job_id),
        *ds.refresh(chosen),
        gr.update(choices=names, value=chosen),
        gr.update(choices=[jobs.ALL, *values], value=jobs.ALL),
    ]


def build(backend: Backend) -> gr.Blocks:
    """The app: Datasets, Train, Job, Jobs, Models and Use tabs."""
    with gr.Blocks(title="smalltrain", analytics_enabled=False) as demo:
        header = gr.HTML(_header(backend))
        started = gr.State("")  # a job id to open in the Job tab (from Train or Jobs)
        with gr.Tabs(selected="train") as tabs:
            with gr.Tab("Datasets", id="datasets") as t_datasets:
                ds = datasets.build(backend)
            with gr.Tab("Train", id="train") as t_train:
                tr = train.build(backend, tabs, started)
            with gr.Tab("Job", id="job") as t_job:
                jv = job.build(backend)
            with gr.Tab("Jobs", id="jobs") as t_jobs:
                jl = jobs.build(backend)
            with gr.Tab("Models", id="models") as t_models:
                mv = models.build(backend)
            with gr.Tab("Use", id="use") as t_use:
                us = use.build(backend)
        for tab, name in zip(
            (t_datasets, t_train, t_job, t_jobs, t_models, t_use), TABS, strict=True
        ):
            tab.select(None, None, None, js=TAB_JS % name)

        started.change(
            lambda j: gr.update(choices=job_choices(backend, j), value=j), started, jv.picker
        )
        jl.open_button.click(lambda j: (gr.update(selected="job"), j), jl.picker, [tabs, started])
        _wire_refreshes(backend, ds, tr, jl, mv, us, t_jobs, t_models, t_use, t_datasets)

        def on_load(request: gr.Request) -> list[Any]:
            return _on_load(backend, ds, request)

        demo.load(
            on_load,
            None,
            [header, tabs, jv.picker, ds.table, ds.picker, mv.dataset, jl.dataset],
            show_progress="hidden",
        )

        def load_form() -> list[Any]:
            names = [v for _, v in dataset_choices(backend)]
            last = backend.settings.last()
            chosen = last if last in names else (names[0] if names else None)
            return [gr.update(choices=dataset_choices(backend), value=chosen), *tr.load(chosen)]

        demo.load(load_form, None, [tr.dataset, *tr.load_outputs], show_progress="hidden")
        demo.load(us.refresh, None, us.outputs, show_progress="hidden")
    demo.queue(default_concurrency_limit=None)
    return demo


def _wire_refreshes(
    backend: Backend,
    ds: datasets.DatasetsTab,
    tr: train.TrainTab,
    jl: jobs.JobsTab,
    mv: models.ModelsTab,
    us: use.UseTab,
    t_jobs: gr.Tab,
    t_models: gr.Tab,
    t_use: gr.Tab,
    t_datasets: gr.Tab,
) -> None:
    """Lists follow the store: other tabs refresh when datasets change or when shown."""

    def names(current: str | None) -> Any:
        choices = dataset_choices(backend)
        values = [v for _, v in choices]
        return gr.update(choices=choices, value=current if current in values else None)

    ds.changed.change(names, tr.dataset, tr.dataset)
    ds.changed.change(names, mv.dataset, mv.dataset)
    ds.changed.change(
        lambda d: gr.update(choices=[jobs.ALL, *[v for _, v in dataset_choices(backend)]], value=d),
        jl.dataset,
        jl.dataset,
    )
    t_jobs.select(
        lambda *f: jl.refresh(*f), jl.filters, [jl.table, jl.picker], show_progress="hidden"
    )
    t_models.select(mv.refresh, mv.dataset, mv.outputs, show_progress="hidden")
    t_use.select(us.refresh, None, us.outputs, show_progress="hidden")
    t_datasets.select(ds.refresh, ds.picker, [ds.table, ds.picker], show_progress="hidden")
