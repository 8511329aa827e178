"""``ExploreUI``: the Explore tab's actions (the map, a point's sound, sliders and the pad),
each run in a child process (``child/explore_calls.py``) and written into a "use" output
folder, which the page plays from ``/api/outputs/...``. Sounds are chosen by their index on
the model's map: no path comes from the page."""

from __future__ import annotations

from collections.abc import Sequence
from html import escape
from typing import Any
from urllib.parse import quote

from smalltrain.ui.child import explore_calls
from smalltrain.ui.child.actions import Output, UseUI
from smalltrain.ui.viewmodels.descriptors_text import NAMES, fmt
from smalltrain.ui.viewmodels.render import audio_list, message, table

__all__ = ["ExploreUI"]

#: The sliders the tab shows, in order (``tasks/audio/use/directions.py``'s names).
SLIDERS = ("brighter", "longer", "noisier", "louder")
MAX_AMOUNT = 4.0


class ExploreUI:
    """The exploration actions shared by the UI's pages."""

    def __init__(self, use: UseUI) -> None:
        self.use = use

    def _model(self, ref: str) -> str:
        return str(self.use.model(ref, "audio").path)

    def map(self, ref: str) -> Output:
        """The map and the sliders of the registered audio model ``ref`` (``data``), with
        each point's sound in the output folder."""
        model = self._model(ref)
        name, folder = self.use._new_output("explore-map")
        data = self.use.pool.call(explore_calls.explore_map, model, str(folder))
        return Output(name, [], data)

    def make(
        self,
        ref: str,
        *,
        like: int | None = None,
        corners: Sequence[int] = (),
        at: tuple[float, float] = (0.5, 0.5),
        slides: Sequence[tuple[str, float]] = (),
        targets: dict[str, float] | None = None,
    ) -> Output:
        """A sound from a point (``like``) or the pad, moved by the sliders; ``data`` holds
        its descriptors before and after, and the steps."""
        for name, amount in slides:
            if name not in SLIDERS or not -MAX_AMOUNT <= float(amount) <= MAX_AMOUNT:
                raise ValueError(f"{name}={amount}: a slider of {SLIDERS} within ±{MAX_AMOUNT:g}")
        model = self._model(ref)
        out, folder = self.use._new_output("explore")
        args = (like, list(corners), tuple(at), list(slides), dict(targets or {}))
        data = self.use.pool.call(explore_calls.explore_make, model, str(folder), *args)
        return Output(out, [data["file"]], data, list(data.get("notes", [])))


# --- HTML pieces (every value escaped) -----------------------------------------------------

#: What the map's points may be coloured by.
COLOURS = ("folder", "split", "level", "brightness", "decay", "noisiness")
_PALETTE = ("#4c78a8", "#f58518", "#54a24b", "#e45756", "#72b7b2", "#b279a2", "#9d755d", "#bab0ac")
_W, _H, _PAD = 640, 400, 24


def _ramp(t: float) -> str:
    """Blue (low) to orange (high)."""
    t = min(max(t, 0.0), 1.0)
    r, g, b = (int(a + (c - a) * t) for a, c in ((76, 245), (120, 133), (168, 24)))
    return f"#{r:02x}{g:02x}{b:02x}"


def _colours(points: Sequence[dict[str, Any]], by: str) -> tuple[list[str], str]:
    """A colour per point and the legend's HTML."""
    if by in ("folder", "split"):
        names = sorted({str(p[by]) for p in points})
        chosen = {n: _PALETTE[i % len(_PALETTE)] for i, n in enumerate(names)}
        legend = " ".join(f'<span style="color:{chosen[n]}">●</span> {escape(n)}' for n in names)
        return [chosen[str(p[by])] for p in points], legend
    values = [float(p["descriptors"][by]) for p in points]
    lo, hi = min(values), max(values)
    span = (hi - lo) or 1.0
    legend = (f'{escape(by)}: <span style="color:{_ramp(0)}">●</span> {escape(fmt(by, lo))} … '
              f'<span style="color:{_ramp(1)}">●</span> {escape(fmt(by, hi))}')  # fmt: skip
    return [_ramp((v - lo) / span) for v in values], legend


def map_html(folder: str, data: dict[str, Any], by: str = "folder") -> str:
    """The map as an SVG scatter: hover a point for its name, click it to hear its sound
    (``/api/outputs/<folder>/<point's sound>``); held-out files are ringed."""
    points = data.get("points") or []
    if not points:
        return '<div class="st-map" data-points="0">no files on the map</div>'
    xs, ys = [float(p["x"]) for p in points], [float(p["y"]) for p in points]
    x0, x1, y0, y1 = min(xs), max(xs), min(ys), max(ys)
    sx = (_W - 2 * _PAD) / ((x1 - x0) or 1.0)
    sy = (_H - 2 * _PAD) / ((y1 - y0) or 1.0)
    colours, legend = _colours(points, by if by in COLOURS else "folder")
    dots = []
    for p, colour in zip(points, colours, strict=True):
        cx, cy = _PAD + (float(p["x"]) - x0) * sx, _H - _PAD - (float(p["y"]) - y0) * sy
        held = p["split"] == "held-out"
        tip = f"{p['name']} ({p['folder']}, {p['split']}, level {fmt('level', p['level'])})"
        src = f"/api/outputs/{quote(folder)}/{quote(str(p.get('sound', '')))}"
        dots.append(
            f'<circle class="st-dot" cx="{cx:.1f}" cy="{cy:.1f}" r="6" fill="{colour}" '
            f'stroke="{"#111" if held else "none"}" stroke-width="1.5" style="cursor:pointer" '
            f'data-point="{int(p["index"])}" data-name="{escape(str(p["name"]))}" '
            f'data-src="{escape(src)}"><title>{escape(tip)}</title></circle>'
        )
    ax = data.get("explained") or [0.0, 0.0]
    return (
        f'<div class="st-map" data-points="{len(points)}">'
        f'<svg viewBox="0 0 {_W} {_H}" width="100%" style="max-width:{_W}px;'
        f'background:#fafafa;border:1px solid #ddd">{"".join(dots)}</svg>'
        f'<p class="st-small">{legend} · ringed: held out · axes: PCA of the codes '
        f"({float(ax[0]):.0%}, {float(ax[1]):.0%} of their variance)</p>"
        '<p class="st-small">Now playing: <span class="st-map-now">click a point</span></p>'
        '<audio class="st-map-player" controls preload="none"></audio></div>'
    )


#: The map's script (Gradio's ``js_on_load``): a click on a point plays its sound.
MAP_JS = """
element.addEventListener('click', (ev) => {
  const dot = ev.target.closest('[data-src]');
  if (!dot) return;
  const player = element.querySelector('audio.st-map-player');
  player.src = dot.dataset.src;
  player.dataset.point = dot.dataset.point;
  element.querySelector('.st-map-now').textContent = dot.dataset.name;
  player.play().catch(() => {});
});
"""


def sliders_html(data: dict[str, Any]) -> str:
    """Each slider's effect on held-out files, then its side effects on every descriptor."""
    sliders = data.get("sliders") or []
    rows = [
        (s["name"], s["descriptor"], fmt(s["descriptor"], s["per_unit"], signed=True),
         f"{s['relative']:+.2f}", f"{s['agree']:.0%}", s["verdict"])
        for s in sliders
    ]  # fmt: skip
    files = sliders[0]["files"] if sliders else 0
    out = f"<h4>What one slider unit does on {files} held-out files</h4>"
    out += table(("slider", "moves", "per unit", "of its spread", "named way", "verdict"), rows,
                 "st-sliders")  # fmt: skip
    side = [(s["name"], *[f"{fmt(k, s['table'][k][0])} → {fmt(k, s['table'][k][2])}"
                           for k in NAMES]) for s in sliders]  # fmt: skip
    out += "<h4>Side effects: every descriptor at −1 → +1 unit</h4>"
    out += table(("slider", *NAMES), side, "st-side")
    return f'<div class="st-explore-sliders">{out}</div>'


def made_html(output: Output) -> str:
    """A made sound's player, its steps, and its descriptors before and after."""
    data = output.data or {}
    notes = "".join(message(n, "warn") for n in output.notes)
    steps = message(" → ".join(data.get("steps", [])), "info")
    rows = [(k, fmt(k, data["before"][k]), fmt(k, data["after"][k])) for k in NAMES
            if k in data.get("before", {})]  # fmt: skip
    return (notes + steps + audio_list(output.folder, output.files)
            + table(("descriptor", "start", "result"), rows, "st-made"))  # fmt: skip
