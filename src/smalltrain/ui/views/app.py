"""``build``: the whole Gradio app, its tabs wired to each other, filled from the store on load.

A page's address carries the job the user opened (``?job=<id>``: set when a job is started,
opened from the Jobs tab or picked), so a reload shows that job in the Job tab; a fresh page opens
the running job, else the Train tab. The train form comes back from the remembered settings of
the dataset last used.
"""

from __future__ import annotations

from html import escape
from typing import Any

import gradio as gr

from smalltrain import __version__
from smalltrain.engine.jobs import ACTIVE, JobStatus
from smalltrain.errors import SmallTrainError
from smalltrain.ui.viewmodels.backend import Backend
from smalltrain.ui.views import datasets, explore, job, jobs, models, sweeps, train, use, weights
from smalltrain.ui.views.common import dataset_choices, job_choices

#: Bold text is drawn from the bundled Bold (1,615 glyphs), never from the bundled SemiBold:
#: that file holds 55 glyphs, so "PCA", "YAML" or "dB" in bold came out in two fonts. A weight
#: of 600 asked for by the theme resolves to the nearest declared one above it: 700.
FONT = ("Source Sans Pro", (400, 700))


def theme() -> gr.themes.Base:
    """Gradio's built-in default theme with its bundled fonts (regular and bold, both
    complete) and system fallbacks (a ``GoogleFont`` would be fetched from the internet)."""
    font = gr.themes.LocalFont(FONT[0], weights=FONT[1])
    return gr.themes.Default(
        primary_hue="blue",
        secondary_hue="slate",
        neutral_hue="slate",
        font=(font, "ui-sans-serif", "system-ui", "sans-serif"),
    )


def _header(backend: Backend, loaded: bool = False) -> str:
    """The title line; ``data-loaded`` once the page's load handler filled it (tests wait on
    it, and it tells when the page shows the store's state)."""
    mark = ' data-loaded="1"' if loaded else ""
    return (
        f'<div class="st-title"{mark}><h1>smalltrain</h1>'
        f'<p class="st-dim st-small">v{escape(__version__)} · home '
        f"<code>{escape(str(backend.home))}"
        f"</code> · {escape(backend.scheduler_note())}</p></div>"
    )


def _first_tab(backend: Backend, linked: bool, job_id: str | None) -> str:
    """The Job tab for a linked job (``?job=``) or a running one; else Train (or Datasets)."""
    if linked:
        return "job"
    if job_id:
        try:
            if backend.manager.get_job(job_id).status in ACTIVE | {JobStatus.QUEUED}:
                return "job"
        except SmallTrainError:
            pass
    return "train" if backend.datasets.list() else "datasets"


def _on_load(backend: Backend, ds: datasets.DatasetsTab, request: gr.Request | None) -> list[Any]:
    """A fresh page: the job of its address (else the newest), its tab, the lists."""
    params = dict(request.query_params) if request is not None else {}
    job_id = params.get("job") or None
    if job_id is None and (newest := backend.newest_job()) is not None:
        job_id = newest.id
    names = dataset_choices(backend)
    values = [v for _, v in names]
    last = backend.settings.last()
    chosen = last if last in values else (values[0] if values else None)
    return [
        _header(backend, loaded=True),
        gr.update(selected=_first_tab(backend, "job" in params, job_id)),
        gr.update(choices=job_choices(backend, job_id), value=job_id),
        *ds.refresh(chosen),
        gr.update(choices=names, value=chosen),
        gr.update(choices=[jobs.ALL, *values], value=jobs.ALL),
    ]


def build(backend: Backend) -> gr.Blocks:
    """The app: Datasets, Train, Job, Jobs, Models, Sweeps, Use, Explore and Weights tabs."""
    with gr.Blocks(title="smalltrain", analytics_enabled=False) as demo:
        header = gr.HTML(_header(backend))
        # a job id to open in the Job tab (from Train or Jobs); a hidden textbox, not a State,
        # so the page's own script sees it and puts it in the address
        started = gr.Textbox(visible=False, elem_id="opened-job")
        with gr.Tabs(selected="train") as tabs:
            with gr.Tab("Datasets", id="datasets", elem_id="tab-datasets") as t_datasets:
                ds = datasets.build(backend)
            with gr.Tab("Train", id="train", elem_id="tab-train"):
                tr = train.build(backend, tabs, started)
            with gr.Tab("Job", id="job", elem_id="tab-job"):
                jv = job.build(backend)
            with gr.Tab("Jobs", id="jobs", elem_id="tab-jobs") as t_jobs:
                jl = jobs.build(backend)
            with gr.Tab("Models", id="models", elem_id="tab-models") as t_models:
                mv = models.build(backend)
            with gr.Tab("Sweeps", id="sweeps", elem_id="tab-sweeps") as t_sweeps:
                sw = sweeps.build(backend)
            with gr.Tab("Use", id="use", elem_id="tab-use") as t_use:
                us = use.build(backend)
            with gr.Tab("Explore", id="explore", elem_id="tab-explore") as t_explore:
                xp = explore.build(backend)
            with gr.Tab("Weights", id="weights", elem_id="tab-weights") as t_weights:
                wt = weights.build(backend)
        t_weights.select(wt.refresh, None, wt.table, show_progress="hidden")
        t_sweeps.select(sw.refresh, sw.picker, [sw.picker, sw.view], show_progress="hidden")
        t_explore.select(xp.refresh, None, xp.outputs, show_progress="hidden")
        # the opened job shows at once (its view is in this answer, not in a second round trip)
        started.change(
            lambda j: [gr.update(choices=job_choices(backend, j), value=j), *jv.show(j)],
            started,
            [jv.picker, *jv.load_outputs],
        )
        started.change(None, started, None, js=job.URL_JS)
        jv.retry.click(lambda: gr.update(selected="train"), None, tabs).then(
            tr.retry, jv.picker, [tr.dataset, *tr.load_outputs]
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
        demo.load(xp.refresh, None, xp.outputs, show_progress="hidden")
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

    def train_names(current: str | None, added: str | None) -> list[Any]:
        # a dataset just registered opens in the Train tab, as a user who adds one and goes
        # on to Train expects; after a removal (``added`` is None) the choice there stays
        choices = dataset_choices(backend)
        values = [v for _, v in choices]
        chosen: str | None = current if current in values else (values[0] if values else None)
        if added in values:
            chosen = added
        if chosen == current:
            return [gr.update(choices=choices), *[gr.skip()] * len(tr.load_outputs)]
        return [gr.update(choices=choices, value=chosen), *tr.load(chosen)]

    ds.changed.change(train_names, [tr.dataset, ds.picker], [tr.dataset, *tr.load_outputs])
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
