"""The Datasets tab: register a path or upload files, read the inspection report, remove."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gradio as gr

from smalltrain import tasks
from smalltrain.errors import DatasetExists, InvalidName
from smalltrain.service.planning import dataset_name
from smalltrain.ui.viewmodels import render
from smalltrain.ui.viewmodels.backend import Backend
from smalltrain.ui.views.common import EXPECTED, dataset_choices, error_html, guard

UPLOAD_TYPES = sorted(tasks.AUDIO_EXTENSIONS) + [".zip"]


@dataclass
class DatasetsTab:
    """The components other tabs refresh or listen to."""

    table: gr.HTML
    picker: gr.Dropdown
    changed: gr.State  # bumped after every add or remove: other tabs refresh their lists
    refresh: Any  # (picked name) -> [table, picker]


class FieldError(ValueError):
    """A form field that is missing (``field``: "name" or "path")."""

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        super().__init__(message)


def default_name(path: str) -> str:
    """The name a dataset gets when none is given: its folder's (``planning.dataset_name``, as
    ``smalltrain datasets add`` and ``smalltrain train PATH``)."""
    return dataset_name(Path(path.strip()).expanduser())


def _ok(value: str | None = None) -> Any:
    if value is None:
        return gr.update(info="", elem_classes=[])
    return gr.update(value=value, info="", elem_classes=[])


def _error(text: str) -> Any:
    return gr.update(info=text, elem_classes=["st-field-error"])


def _at_field(exc: BaseException, other: str) -> tuple[Any, ...]:
    """An error in the message and beside the field it concerns (the name, else ``other``)."""
    field = getattr(exc, "field", None) or (
        "name" if isinstance(exc, (InvalidName, DatasetExists)) else other
    )
    text = str(exc)
    return (
        error_html(exc),
        *[gr.skip()] * 4,
        _error(text) if field == "name" else _ok(),
        _error(text) if field == "path" else _ok(),
    )


def name_hint(path: str) -> Any:
    """The name field's placeholder follows the path: the name it gets if left empty."""
    if not path.strip():
        return gr.update(placeholder="kicks")
    return gr.update(placeholder=f"{default_name(path)} (the folder's name, if left empty)")


def table_html(backend: Backend) -> str:
    """Every registered dataset in a table."""
    rows = [
        (r.name, r.kind, r.snapshot, r.path, render.when(r.created_at))
        for r in backend.datasets.list()
    ]
    if not rows:
        return render.message("No datasets yet: register a folder or upload files on the left.")
    return render.table(("name", "kind", "contents", "path", "registered"), rows, "st-datasets")


def _removal_note(backend: Backend, name: str) -> str:
    record = backend.datasets.get(name)
    if backend.datasets.is_uploaded(record):
        return f"Remove dataset {name!r}? Its uploaded files in {record.path} are deleted too."
    return f"Remove dataset {name!r}? Only the name is forgotten; {record.path} is not touched."


class DatasetsPanel:
    """The tab's actions (each returns its outputs' values)."""

    def __init__(self, backend: Backend) -> None:
        self.backend = backend

    def _added(self, result: dict[str, Any], count: int) -> tuple[Any, ...]:
        record = result["record"]
        text = f"Registered {record['name']!r}: {record['snapshot']} ({record['kind']})."
        notes = [*result.get("upload_notes", []), *result.get("skipped_uploads", [])]
        return (
            render.message(text, "ok") + "".join(render.message(n, "warn") for n in notes),
            table_html(self.backend),
            gr.update(choices=dataset_choices(self.backend), value=record["name"]),
            render.report({**result["report"], "upload_notes": result.get("upload_notes")}),
            count + 1,
        )

    def register(self, name: str, path: str, count: int) -> tuple[Any, ...]:
        """Register a path on this machine, by default under its folder's name (as the CLI)."""
        try:
            if not path.strip():
                raise FieldError("path", "give the path of a folder of sounds, or of a data.yaml")
            name = name.strip() or default_name(path)
            return (*self._added(self.backend.datasets.register(name, path.strip()), count),
                    _ok(name), _ok())  # fmt: skip
        except EXPECTED as exc:
            return _at_field(exc, "path")

    def upload(self, name: str, chosen: list[str] | None, count: int) -> tuple[Any, ...]:
        """Copy uploaded files into the home and register them (one .zip: by default under the
        zip's name)."""
        files = list(chosen or [])
        try:
            zips = [f for f in files if f.lower().endswith(".zip")]
            name = name.strip() or (default_name(Path(zips[0]).stem) if len(zips) == 1 else "")
            if not name:
                raise FieldError("name", "give the uploaded sounds a name, e.g. kicks")
            return (*self._added(self.backend.datasets.upload(name, files), count),
                    _ok(name), _ok())  # fmt: skip
        except EXPECTED as exc:
            return _at_field(exc, "files")

    def show(self, name: str | None) -> str:
        """The inspection report of a dataset."""
        if not name:
            return ""
        try:
            return render.report(self.backend.datasets.report(name))
        except Exception as exc:
            return error_html(exc)

    def ask(self, name: str | None) -> tuple[Any, ...]:
        """First click on Remove: say what removing does, and ask."""
        if not name:
            return gr.update(visible=False), "", render.message("Choose a dataset first.", "warn")
        return (
            gr.update(visible=True),
            render.message(_removal_note(self.backend, name), "warn"),
            "",
        )

    def remove(self, name: str, count: int) -> tuple[Any, ...]:
        """Confirmed: forget the dataset (and delete its uploaded files)."""
        self.backend.datasets.remove(name)
        self.backend.settings.forget(name)
        return (
            gr.update(visible=False),
            render.message(f"Removed dataset {name!r}.", "ok"),
            table_html(self.backend),
            gr.update(choices=dataset_choices(self.backend), value=None),
            "",
            count + 1,
        )

    def refresh(self, current: str | None) -> list[Any]:
        """The table and the picker as stored now."""
        choices = dataset_choices(self.backend)
        names = [v for _, v in choices]
        chosen = current if current in names else (names[0] if names else None)
        return [table_html(self.backend), gr.update(choices=choices, value=chosen)]


def build(backend: Backend) -> DatasetsTab:
    """Lay out the tab and wire its events."""
    changed = gr.State(0)
    with gr.Row():
        with gr.Column(scale=2, min_width=320):
            gr.Markdown("### Add a dataset")
            name = gr.Textbox(
                label="Name",
                placeholder="kicks (the folder's name, if left empty)",
                elem_id="ds-name",
            )
            path = gr.Textbox(
                label="Path on this machine",
                elem_id="ds-path",
                placeholder="/data/kicks  or  /data/cells/data.yaml",
                info="A folder of sounds, a YOLO data.yaml, or the folder holding it.",
            )
            add = gr.Button("Register path", variant="primary", elem_id="ds-register")
            files = gr.File(
                label="…or upload sounds, or one .zip of a YOLO dataset",
                file_count="multiple",
                file_types=UPLOAD_TYPES,
                type="filepath",
                height=120,
                elem_id="ds-files",
            )
            upload = gr.Button("Upload and register", elem_id="ds-upload")
            message = gr.HTML(elem_id="ds-message")
        with gr.Column(scale=3, min_width=420):
            gr.Markdown("### Registered datasets")
            table = gr.HTML(table_html(backend), elem_id="ds-table")
            with gr.Row(elem_classes=["st-row-end"]):
                picker = gr.Dropdown(
                    label="Inspection report of", choices=[], interactive=True, scale=4
                )
                remove = gr.Button("Remove…", variant="stop", scale=1, min_width=100)
            report = gr.HTML(elem_id="ds-report")
            with gr.Row(visible=False) as confirm_row:
                confirm_text = gr.HTML()
                confirm = gr.Button("Yes, remove", variant="stop", size="sm")
                cancel = gr.Button("Cancel", size="sm")

    panel = DatasetsPanel(backend)
    outs = [message, table, picker, report, changed, name, path]
    add.click(guard(panel.register, 7, 0), [name, path, changed], outs)
    upload.click(guard(panel.upload, 7, 0), [name, files, changed], outs)
    path.change(name_hint, path, name, show_progress="hidden", trigger_mode="always_last")
    picker.change(panel.show, picker, report)
    remove.click(guard(panel.ask, 3, 2), picker, [confirm_row, confirm_text, message])
    cancel.click(lambda: gr.update(visible=False), None, confirm_row)
    confirm.click(
        guard(panel.remove, 6, 1),
        [picker, changed],
        [confirm_row, message, table, picker, report, changed],
    )
    return DatasetsTab(table=table, picker=picker, changed=changed, refresh=panel.refresh)
