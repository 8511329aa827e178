"""The Sweeps tab: a sweep's trials side by side with their curves, which were stopped early
(ASHA) and why, and the best one; read from the sweep service (``get_sweep``/``sweeps.newest``,
the calls ``smalltrain sweep show``/``list`` make)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import gradio as gr

from smalltrain.ui.viewmodels.backend import Backend
from smalltrain.ui.viewmodels.sweeps import empty_html, sweep_choices, sweep_html
from smalltrain.ui.views.common import EXPECTED, error_html


@dataclass
class SweepsTab:
    picker: gr.Dropdown
    view: gr.HTML
    refresh: Any  # (picked id) -> [picker, view]


class SweepsPanel:
    """The tab's logic (each method returns its outputs' values)."""

    def __init__(self, backend: Backend) -> None:
        self.backend = backend

    def show(self, sweep_id: str | None) -> str:
        if not sweep_id:
            return empty_html()
        try:
            return sweep_html(self.backend.manager.get_sweep(sweep_id))
        except EXPECTED as exc:
            return error_html(exc)

    def refresh(self, current: str | None) -> list[Any]:
        """The sweeps as stored now, the chosen one (else the newest) shown."""
        choices = sweep_choices(self.backend.manager.sweeps.newest(50))
        ids = [v for _, v in choices]
        chosen = current if current in ids else (ids[0] if ids else None)
        return [gr.update(choices=choices, value=chosen), self.show(chosen)]


def build(backend: Backend) -> SweepsTab:
    """Lay out the tab and wire its events."""
    panel = SweepsPanel(backend)
    with gr.Row(elem_classes=["st-row-end"]):
        picker = gr.Dropdown(
            label="Sweep", choices=[], scale=4, interactive=True, elem_id="sweep-picker"
        )
        refresh = gr.Button("Refresh", scale=1, min_width=100, elem_id="sweep-refresh")
    view = gr.HTML(empty_html(), elem_id="sweep-view")
    picker.input(panel.show, picker, view, show_progress="hidden")
    refresh.click(panel.refresh, picker, [picker, view], show_progress="hidden")
    return SweepsTab(picker=picker, view=view, refresh=panel.refresh)
