"""The Explore tab: a sound model's map (click a point to hear it, hover for its name, colour
by folder, split, level or a descriptor), its named sliders from a chosen sound (each move
renders at once), and the pad (four corner sounds, a point between them). Every sound is
rendered in a child process (``viewmodels/explore.py``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import gradio as gr

from smalltrain.ui.viewmodels import render
from smalltrain.ui.viewmodels.backend import Backend
from smalltrain.ui.viewmodels.explore import (
    COLOURS,
    MAP_JS,
    SLIDERS,
    ExploreUI,
    made_html,
    map_html,
    sliders_html,
)
from smalltrain.ui.views.common import guard


@dataclass
class ExploreTab:
    refresh: Any  # () -> an update of the model picker
    outputs: Any


def _points(state: dict[str, Any] | None) -> list[tuple[str, int]]:
    return [
        (f"{p['name']} ({p['split']})", int(p["index"])) for p in (state or {}).get("points", [])
    ]


def _pad(ex: ExploreUI, model: gr.Dropdown) -> list[gr.Dropdown]:
    """The pad: four corner sounds and a point between them; returns the corner pickers."""
    gr.Markdown("### Pad: four corner sounds, a point between them (codes are mixed)")
    with gr.Row():
        corners = [
            gr.Dropdown(label=f"corner {c}", choices=[], elem_id=f"explore-corner-{c.lower()}")
            for c in "ABCD"
        ]
    with gr.Row():
        u = gr.Slider(0, 1, value=0.5, step=0.05, label="U (A → B)", elem_id="explore-u")
        v = gr.Slider(0, 1, value=0.5, step=0.05, label="V (A → C)", elem_id="explore-v")
    pad = gr.HTML(elem_id="explore-pad")

    def mix(ref: str, a: Any, b: Any, c: Any, d: Any, uu: float, vv: float) -> str:
        chosen = [a, b, c, d]
        if any(x is None for x in chosen):
            raise ValueError("show the map, then choose four corner sounds")
        return made_html(ex.make(ref, corners=[int(x) for x in chosen], at=(float(uu), float(vv))))

    for control in (u, v):
        control.release(guard(mix, 1, 0), [model, *corners, u, v], pad)
    for corner in corners:
        corner.input(guard(mix, 1, 0), [model, *corners, u, v], pad)

    return corners


def build(backend: Backend) -> ExploreTab:
    """Lay out the tab and wire its events."""
    ex = ExploreUI(backend.use)
    with gr.Row():
        model = gr.Dropdown(label="Audio model (dataset/name)", choices=[], scale=3,
                            elem_id="explore-model")  # fmt: skip
        colour = gr.Radio(list(COLOURS), value="folder", label="Colour by", scale=3,
                          elem_id="explore-colour")  # fmt: skip
        load = gr.Button("Show the map", variant="primary", scale=1, elem_id="explore-load")
    state = gr.State(None)
    folder = gr.State("")
    shown = gr.HTML(elem_id="explore-map", js_on_load=MAP_JS)
    effects = gr.HTML(elem_id="explore-sliders")
    gr.Markdown("### Sliders from a sound")
    sound = gr.Dropdown(label="Start from", choices=[], elem_id="explore-sound")
    with gr.Row():
        moves = [
            gr.Slider(-3, 3, value=0, step=0.1, label=name, elem_id=f"explore-{name}")
            for name in SLIDERS
        ]
    made = gr.HTML(elem_id="explore-made")
    corners = _pad(ex, model)

    def show(ref: str) -> list[Any]:
        if not ref:
            raise ValueError("choose an audio model first")
        out = ex.map(ref)
        choices = _points(out.data)
        first = choices[0][1] if choices else None
        picks = [choices[i % len(choices)][1] if choices else None for i in range(4)]
        return [
            map_html(out.folder, out.data, "folder"),
            sliders_html(out.data) + "".join(render.message(n, "warn") for n in out.data["notes"]),
            gr.update(choices=choices, value=first),
            *[gr.update(choices=choices, value=p) for p in picks],
            out.data,
            out.folder,
        ]

    load.click(guard(show, 9, 1), [model], [shown, effects, sound, *corners, state, folder])
    colour.change(
        lambda by, data, f: map_html(f, data, by) if data else gr.skip(),
        [colour, state, folder],
        shown,
    )

    def slide(ref: str, start: int | None, *amounts: float) -> str:
        if start is None:
            raise ValueError("show the map, then choose a sound to start from")
        moved = list(zip(SLIDERS, (float(a) for a in amounts), strict=True))
        return made_html(ex.make(ref, like=int(start), slides=moved))

    for control in moves:
        control.release(guard(slide, 1, 0), [model, sound, *moves], made)
    sound.input(guard(slide, 1, 0), [model, sound, *moves], made)

    def fill() -> Any:
        audio = backend.use.choices("audio")
        return gr.update(choices=audio, value=audio[0] if audio else None)

    return ExploreTab(refresh=fill, outputs=model)
