"""The Models tab: a dataset's registry (active, created, base model, epochs, headline metric,
dataset snapshot, and a warning when the dataset changed since), set active, delete (with
confirmation), download weights, export (ONNX, TorchScript, OpenVINO; run in a helper process
by the same ``service.exports.export_model`` as ``smalltrain export``) and download the export,
a detection model's results (per class, confusion matrix, PR curves, worst images; Validate
computes them again by the same ``service.detection_results.validate_detector`` as
``smalltrain val``), and several models' metric histories on one chart."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from html import escape
from typing import Any
from urllib.parse import quote

import gradio as gr

from smalltrain.errors import SmallTrainError
from smalltrain.ui.viewmodels import render
from smalltrain.ui.viewmodels.backend import Backend, ModelRow
from smalltrain.ui.viewmodels.compare import Compared, comparison_html
from smalltrain.ui.viewmodels.exports import ExportsUI, links_html, size_text
from smalltrain.ui.viewmodels.results import results_html
from smalltrain.ui.views.common import guard

DEFAULT_METRIC = {"audio": "val/sc", "detect": "val/mAP50"}


@dataclass
class ModelsTab:
    dataset: gr.Dropdown
    refresh: Any  # dataset -> outputs
    outputs: list[Any]


def _metric(row: ModelRow) -> str:
    value = row.info.headline_value
    if value is None or not math.isfinite(value):
        return "-"
    return f"{row.info.headline_metric} {value:.4g}"


def table_html(rows: list[ModelRow]) -> str:
    """The registry as a table; a changed dataset is flagged on the model's row."""
    if not rows:
        return render.message("No model for this dataset yet: train one in the Train tab.")
    body = []
    for r in rows:
        m = r.info
        warn = (
            f'<div class="st-msg st-msg-warn st-small">⚠ {escape(r.changed)}</div>'
            if r.changed
            else ""
        )
        body.append(
            f'<tr data-model="{escape(m.name)}"><td>{"● active" if m.active else ""}</td>'
            f"<td><b>{escape(m.name)}</b>{warn}</td><td>{escape(m.created)}</td>"
            f"<td>{escape(str(m.base_model or '-'))}</td><td>{m.epochs_completed}</td>"
            f"<td>{escape(_metric(r))}</td><td>{escape(m.dataset_snapshot)}</td></tr>"
        )
    head = "".join(
        f"<th>{h}</th>"
        for h in ("", "model", "created", "base model", "epochs", "headline metric", "trained on")
    )
    return (
        f'<table class="st-table st-models"><thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(body)}</tbody></table>"
    )


def _download(dataset: str | None, name: str | None) -> str:
    if not dataset or not name:
        return ""
    url = f"/api/models/{quote(dataset)}/{quote(name)}/weights"
    return f'<a class="st-buttonlink" href="{escape(url)}" download>Download weights (.pt)</a>'


class ModelsPanel:
    """Outputs of ``refresh``: [table, model picker, compare choices, metric, chart, download]."""

    def __init__(self, backend: Backend) -> None:
        self.backend = backend

    def refresh(self, dataset: str | None, selected: str | None = None) -> list[Any]:
        if not dataset:
            return [
                render.message("Choose a dataset."),
                gr.update(choices=[], value=None),
                gr.update(choices=[], value=[]),
                gr.update(choices=[]),
                "",
                "",
            ]
        rows = self.backend.model_rows(dataset)
        names = [r.info.name for r in rows]
        active = next((r.info.name for r in rows if r.info.active), names[-1] if names else None)
        chosen = selected if selected in names else active
        infos = [r.info for r in rows]
        keys = self.backend.model_metric_keys(infos)
        task = rows[0].info.task if rows else ""
        metric = (
            DEFAULT_METRIC.get(task)
            if DEFAULT_METRIC.get(task) in keys
            else (keys[0] if keys else None)
        )
        compare = names[-3:]
        return [
            table_html(rows),
            gr.update(choices=names, value=chosen),
            gr.update(choices=names, value=compare),
            gr.update(choices=keys, value=metric),
            self.chart(dataset, compare, metric),
            _download(dataset, chosen),
        ]

    def chart(self, dataset: str | None, names: list[str] | None, metric: str | None) -> str:
        if not dataset or not names or not metric:
            return render.message("Choose two or more models and a metric to compare them.")
        infos = [m for m in self.backend.manager.list_models(dataset) if m.name in set(names)]
        series = dict(self.backend.model_history(infos, metric))
        compared = [
            Compared(m.name, series.get(m.name, []), self._config(m.job_id), m.task) for m in infos
        ]
        return comparison_html(compared, metric)

    def _config(self, job_id: str | None) -> dict[str, Any]:
        """The config a model was trained with (its job's), or {} when the job is gone."""
        if not job_id:
            return {}
        try:
            return dict(self.backend.manager.get_job(job_id).config)
        except SmallTrainError:
            return {}


def build(backend: Backend) -> ModelsTab:
    """Lay out the tab and wire its events."""
    panel = ModelsPanel(backend)
    with gr.Row(elem_classes=["st-row-end"]):
        dataset = gr.Dropdown(label="Dataset", choices=[], scale=4, elem_id="models-dataset")
        refresh = gr.Button("Refresh", size="sm", scale=1)
    table = gr.HTML(elem_id="models-table")
    with gr.Row(elem_classes=["st-row-end"]):
        model = gr.Dropdown(label="Model", choices=[], scale=3, elem_id="models-model")
        activate = gr.Button("Set active", scale=1, elem_id="models-activate")
        delete = gr.Button("Delete…", variant="stop", scale=1, elem_id="models-delete")
        download = gr.HTML()
    # the export row sits under the model it exports (its result shows in the message below)
    with gr.Row(elem_classes=["st-row-end"]):
        export_format = gr.Dropdown(
            label="Export to", choices=[], scale=1, elem_id="models-export-format"
        )
        export = gr.Button("Export", scale=1, elem_id="models-export")
        export_links = gr.HTML(elem_id="models-export-links")
    with gr.Row(visible=False) as confirm_row:
        confirm_text = gr.HTML()
        confirm = gr.Button("Yes, delete it", variant="stop", size="sm", elem_id="models-confirm")
        cancel = gr.Button("Cancel", size="sm")
    message = gr.HTML(elem_id="models-message")
    with gr.Row(elem_classes=["st-row-end"]):
        gr.Markdown("#### Results of the chosen model")
        validate = gr.Button(
            "Validate", size="sm", scale=0, min_width=120, elem_id="models-validate"
        )
    results = gr.HTML(elem_id="models-results")
    _wire_results(backend, dataset, model, validate, results, message)
    gr.Markdown("#### Compare models")
    with gr.Row():
        compare = gr.CheckboxGroup(label="Models", choices=[], scale=3)
        metric = gr.Dropdown(label="Metric", choices=[], scale=1)
    chart = gr.HTML(elem_classes=["st-compare"], elem_id="models-chart")

    outputs = [table, model, compare, metric, chart, download]
    _wire_exports(backend, dataset, model, export_format, export, export_links, message)
    dataset.change(panel.refresh, dataset, outputs, show_progress="hidden")
    refresh.click(panel.refresh, [dataset, model], outputs, show_progress="hidden")
    model.change(_download, [dataset, model], download, show_progress="hidden")
    for trigger in (compare.change, metric.change):
        trigger(panel.chart, [dataset, compare, metric], chart, show_progress="hidden")

    def do_activate(d: str, name: str) -> list[Any]:
        info = backend.manager.set_active_model(name, d)
        return [
            render.message(f"{info.name} is now the active model of {d}.", "ok"),
            *panel.refresh(d, name),
        ]

    activate.click(guard(do_activate, 7, 0), [dataset, model], [message, *outputs])

    def ask(d: str | None, name: str | None) -> list[Any]:
        if not d or not name:
            return [gr.update(visible=False), "", render.message("Choose a model first.", "warn")]
        info = backend.manager.get_model(name, d)
        note = f"Delete model {name!r} of {d!r} and its files ({info.path})?"
        if info.active:
            note += (
                " It is the active model: the best remaining one on the task's metric "
                "becomes active."
            )
        users = backend.manager.jobs_using_model(info)
        if users:
            ids = ", ".join(f"{j.id} ({j.status.value})" for j in users)
            note += f" Job(s) {ids} fine-tune from it and will fail without it: cancel them first."
        return [gr.update(visible=True), render.message(note, "warn"), ""]

    delete.click(guard(ask, 3, 2), [dataset, model], [confirm_row, confirm_text, message])
    cancel.click(lambda: gr.update(visible=False), None, confirm_row)

    def do_delete(d: str, name: str) -> list[Any]:
        outcome = backend.manager.model_queries.delete_and_promote(name, d)
        return [
            gr.update(visible=False),
            render.message(f"Deleted model {name!r}. {outcome.note()}".strip(), "ok"),
            *panel.refresh(d),
        ]

    confirm.click(guard(do_delete, 8, 1), [dataset, model], [confirm_row, message, *outputs])
    return ModelsTab(dataset=dataset, refresh=panel.refresh, outputs=outputs)


def _wire_exports(
    backend: Backend,
    dataset: gr.Dropdown,
    model: gr.Dropdown,
    export_format: gr.Dropdown,
    export: gr.Button,
    links: gr.HTML,
    message: gr.HTML,
) -> None:
    """The export row: formats of the chosen model, the Export button, download links."""
    exports = ExportsUI(backend.home, backend.manager.models, backend.pool)

    def show(d: str | None, name: str | None) -> list[Any]:
        if not d or not name:
            return [gr.update(choices=[], value=None), ""]
        formats = list(exports.formats(d, name))
        return [
            gr.update(choices=formats, value=formats[0] if formats else None),
            links_html(d, name, exports.list(d, name)),
        ]

    model.change(guard(show, 2, 1), [dataset, model], [export_format, links],
                 show_progress="hidden")  # fmt: skip

    def run(d: str | None, name: str | None, fmt: str | None) -> list[Any]:
        if not d or not name or not fmt:
            return [render.message("Choose a model and a format first.", "warn"), gr.skip()]
        made = exports.run(d, name, fmt)
        note = f"Exported {made.model} to {made.format} ({size_text(made.size)})."
        return [render.message(note, "ok"), links_html(d, name, exports.list(d, name))]

    export.click(guard(run, 2, 0), [dataset, model, export_format], [message, links])


def _results(backend: Backend, d: str | None, name: str | None) -> list[Any]:
    """The chosen model's detection results (or their empty state); nothing for audio."""
    if not d or not name:
        return ["", gr.update(visible=False)]
    info = backend.manager.get_model(name, d)
    if info.task and info.task != "detect":
        return ["", gr.update(visible=False)]
    return [results_html(backend.model_results(d, name)), gr.update(visible=True)]


def _wire_results(
    backend: Backend,
    dataset: gr.Dropdown,
    model: gr.Dropdown,
    validate: gr.Button,
    results: gr.HTML,
    message: gr.HTML,
) -> None:
    """A detection model's results (per class, confusion matrix, PR curves, worst images) and
    the Validate button, which computes them again as ``smalltrain val`` does."""
    model.change(guard(lambda d, n: _results(backend, d, n), 2, 0), [dataset, model],
                 [results, validate], show_progress="hidden")  # fmt: skip

    def run(d: str | None, name: str | None) -> list[Any]:
        if not d or not name:
            return [render.message("Choose a model first.", "warn"), gr.skip()]
        started = time.monotonic()
        found = backend.validate_model(d, name)
        took = time.monotonic() - started
        note = f"Validated {found.model} on the val split of {d!r} in {took:.1f} s."
        return [render.message(note, "ok"), results_html(found)]

    validate.click(guard(run, 2, 0), [dataset, model], [message, results])
