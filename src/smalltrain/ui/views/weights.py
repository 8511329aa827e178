"""The Weights tab: the home's registered detection weights, and an upload that registers one.

A weights file is code (loading a pickled .pt runs what it holds), so a detection job started
from the web UI names its ``base_model`` only as a file registered here, checked against its
sha256 before it loads, never as a path. An upload is checked without running it (it must be
an Ultralytics detection checkpoint), copied into the weights folder, and its sha256 shown.
"""

from __future__ import annotations

from dataclasses import dataclass
from html import escape
from pathlib import Path
from typing import Any

import gradio as gr

from smalltrain.service.weights import WeightsEntry
from smalltrain.ui.viewmodels import render
from smalltrain.ui.viewmodels.backend import Backend
from smalltrain.ui.views.common import guard

__all__ = ["WeightsTab", "build", "table_html"]

#: What each state means to the user.
STATES = {
    "ok": "registered",
    "changed": "changed since registered: not loaded",
    "not added": "placed by hand: register it to use it here",
    "missing": "registered, file missing",
}


@dataclass
class WeightsTab:
    table: gr.HTML
    refresh: Any  # () -> table html


def table_html(entries: list[WeightsEntry]) -> str:
    """The weights folder as a table: name, size, state, sha256, where it came from."""
    if not entries:
        return render.message(
            "No weights registered yet. Upload a detection .pt below (for example yolo11n.pt) "
            "to fine-tune from it: the Train tab's base model then takes its name."
        )
    rows = "".join(
        f'<tr data-weights="{escape(e.name)}"><td><b>{escape(e.name)}</b></td>'
        f"<td>{e.size / 2**20:.1f} MiB</td><td>{escape(STATES.get(e.state, e.state))}</td>"
        f"<td><code>{escape(e.sha256 or '-')}</code></td><td>{escape(e.source or '-')}</td></tr>"
        for e in entries
    )
    head = "".join(f"<th>{h}</th>" for h in ("name", "size", "state", "sha256", "added from"))
    return (
        f'<table class="st-table st-weights"><thead><tr>{head}</tr></thead>'
        f"<tbody>{rows}</tbody></table>"
    )


class WeightsPanel:
    def __init__(self, backend: Backend) -> None:
        self.backend = backend

    def refresh(self) -> str:
        return table_html(self.backend.weights.list())

    def add(self, file: str | None, name: str) -> list[Any]:
        """Register the uploaded file; outputs: [message, table, name box]."""
        if not file:
            raise ValueError("Choose a .pt file to upload first.")
        upload = Path(file)
        entry = self.backend.add_weights(upload, name.strip() or None)
        note = render.message(
            f"Registered {entry.name} ({entry.size / 2**20:.1f} MiB), sha256 {entry.sha256}. "
            f"Set the Train tab's base model to {entry.name} to fine-tune from it.",
            "ok",
        )
        return [note, self.refresh(), ""]


def build(backend: Backend) -> WeightsTab:
    """Lay out the tab and wire its events."""
    panel = WeightsPanel(backend)
    gr.Markdown(
        "Pretrained detection weights that jobs may start from. A weights file is code: "
        "register only files from sources you trust. Jobs started here name them by name."
    )
    table = gr.HTML(elem_id="weights-table")
    with gr.Row():
        file = gr.File(
            label="Detection weights (.pt)",
            file_types=[".pt"],
            type="filepath",
            scale=3,
            elem_id="weights-file",
        )
        name = gr.Textbox(
            label="Name (optional)",
            placeholder="the file's name, e.g. yolo11n.pt",
            scale=2,
            elem_id="weights-name",
        )
    add = gr.Button("Register weights", variant="primary", elem_id="weights-add")
    message = gr.HTML(elem_id="weights-message")
    add.click(guard(panel.add, 3, 0), [file, name], [message, table, name])
    return WeightsTab(table=table, refresh=panel.refresh)
