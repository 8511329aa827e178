"""Line charts as inline SVG: drawn by the browser, built here in microseconds, no plotting
library in the server and nothing loaded from elsewhere.

Each line carries ``data-points`` (its number of points) so tests and scripts can read a
curve's growth from the page.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from html import escape

__all__ = ["COLORS", "line_chart", "nice_ticks"]

COLORS = ("#2563eb", "#ea580c", "#16a34a", "#9333ea", "#dc2626", "#0891b2", "#ca8a04", "#4b5563")
_W, _H = 560, 240
_LEFT, _RIGHT, _TOP, _BOTTOM = 58, 14, 12, 40


def nice_ticks(low: float, high: float, count: int = 5, integer: bool = False) -> list[float]:
    """About ``count`` round tick values covering [low, high] (1, 2 or 5 times a power of 10);
    ``integer`` ticks are whole numbers (steps, epochs)."""
    if not (math.isfinite(low) and math.isfinite(high)):
        return []
    if high <= low:
        high = low + (abs(low) or 1.0)
    raw = (high - low) / max(1, count)
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    if integer:
        step = max(1.0, round(step))
    first = math.floor(low / step + 1e-9) * step
    last = math.ceil(high / step - 1e-9) * step
    ticks = [round(first + i * step, 12) for i in range(int(round((last - first) / step)) + 1)]
    return ticks


def _fmt(value: float) -> str:
    if value == 0:
        return "0"
    if abs(value) >= 1e4 or abs(value) < 1e-3:
        return f"{value:.1e}"
    return f"{value:.4g}"


def _bounds(series: Sequence[tuple[str, Sequence[tuple[float, float]]]]) -> tuple[float, ...]:
    xs = [x for _, pts in series for x, _ in pts]
    ys = [y for _, pts in series for _, y in pts]
    x0, x1 = min(xs), max(xs)
    y0, y1 = min(ys), max(ys)
    if x1 == x0:
        x0, x1 = x0 - 1, x1 + 1
    if y1 == y0:
        pad = abs(y0) * 0.1 or 1.0
        y0, y1 = y0 - pad, y1 + pad
    return x0, x1, y0, y1


def line_chart(
    title: str,
    series: Sequence[tuple[str, Sequence[tuple[float, float]]]],
    x_label: str = "step",
    empty_text: str = "waiting for the first values",
    best: str | None = None,
) -> str:
    """An SVG chart of ``(label, [(x, y), ...])`` lines, with axes, ticks and a legend. The
    legend shows each line's last value; with ``best`` ("min" or "max"), its best value and
    where it was reached instead."""
    head = f'<figure class="st-chart"><figcaption>{escape(title)}</figcaption>'
    drawn = [(label, pts) for label, pts in series if pts]
    if not drawn:
        return f'{head}<div class="st-chart-empty">{escape(empty_text)}</div></figure>'
    x0, x1, y0, y1 = _bounds(drawn)
    yt = nice_ticks(y0, y1)
    y0, y1 = min(y0, yt[0]), max(y1, yt[-1])
    plot_w, plot_h = _W - _LEFT - _RIGHT, _H - _TOP - _BOTTOM

    def sx(x: float) -> float:
        return _LEFT + (x - x0) / (x1 - x0) * plot_w

    def sy(y: float) -> float:
        return _TOP + (1 - (y - y0) / (y1 - y0)) * plot_h

    parts = [
        f'<svg viewBox="0 0 {_W} {_H}" role="img" aria-label="{escape(title)}" '
        'preserveAspectRatio="xMidYMid meet">'
    ]
    for t in yt:
        y = sy(t)
        parts.append(
            f'<line class="grid" x1="{_LEFT}" x2="{_W - _RIGHT}" y1="{y:.1f}" y2="{y:.1f}"/>'
        )
        parts.append(
            f'<text class="tick" x="{_LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">{_fmt(t)}</text>'
        )
    for t in nice_ticks(x0, x1, 6, integer=True):
        if x0 <= t <= x1:
            x = sx(t)
            parts.append(
                f'<text class="tick" x="{x:.1f}" y="{_H - _BOTTOM + 16}" '
                f'text-anchor="middle">{_fmt(t)}</text>'
            )
    parts.append(
        f'<line class="axis" x1="{_LEFT}" x2="{_W - _RIGHT}" y1="{_TOP + plot_h}" '
        f'y2="{_TOP + plot_h}"/><text class="tick" x="{_LEFT + plot_w / 2:.0f}" y="{_H - 6}" '
        f'text-anchor="middle">{escape(x_label)}</text>'
    )
    legend = []
    for i, (label, pts) in enumerate(drawn):
        color = COLORS[i % len(COLORS)]
        coords = " ".join(f"{sx(x):.1f},{sy(y):.1f}" for x, y in pts)
        parts.append(
            f'<polyline class="series" data-label="{escape(label)}" data-points="{len(pts)}" '
            f'fill="none" stroke="{color}" stroke-width="2" points="{coords}"/>'
        )
        if len(pts) <= 40:
            parts += [
                f'<circle cx="{sx(x):.1f}" cy="{sy(y):.1f}" r="2.5" fill="{color}"/>'
                for x, y in pts
            ]
        value = f"{_fmt(pts[-1][1])}"
        if best in ("min", "max"):
            bx, by = (min if best == "min" else max)(pts, key=lambda p: p[1])
            value = f"best {_fmt(by)} @ {x_label} {_fmt(bx)}"
        legend.append(
            f'<span><i style="background:{color}"></i>{escape(label)} <b>{escape(value)}</b></span>'
        )
    parts.append("</svg>")
    return f'{head}{"".join(parts)}<div class="st-legend">{"".join(legend)}</div></figure>'
