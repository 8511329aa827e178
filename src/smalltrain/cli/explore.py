"""``smalltrain explore``: a sound model's map and sliders; and ``generate --like/--corner``:
a sound made from a file or a pad point, moved by sliders and descriptor targets.

Both call the audio task's exploration API (``tasks/audio/use/explore.py``), as the UI's Explore
tab does.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from smalltrain.cli.common import JSON_HELP, console, handle_errors, print_json, warn
from smalltrain.cli.output import print_table
from smalltrain.cli.refs import MODEL_HELP, resolve_model

#: The help of generate's exploration flags (generate_cmd declares them; see cli/audio.py).
LIKE_HELP = "Start from this sound's code (its first chunk) instead of sampling; makes one sound."
SET_HELP = (
    "A descriptor target relative to the start, e.g. decay=0.7 (30% shorter); brightness, "
    "decay, noisiness or level (repeatable)."
)
SLIDE_HELP = (
    "Move along a named slider, in units of the training sounds' spread, e.g. brighter=+1.5 "
    "(brighter/darker, longer/shorter, noisier/cleaner, louder/quieter; repeatable)."
)
CORNER_HELP = "One of the pad's four corner sounds A, B, C, D (give it four times)."
AT_HELP = "The pad point U,V between the corners: 0,0 is A, 1,0 B, 0,1 C, 1,1 D (default 0.5,0.5)."


def _load(model: str, command: str) -> Any:
    from smalltrain.tasks.audio.use.explore import explore
    from smalltrain.tasks.audio.use.generate import load_model

    return explore(load_model(resolve_model(model, need="audio", command=command).path))


def _fmt(name: str, value: float) -> str:
    from smalltrain.tasks.audio.use.descriptors import format_value

    return format_value(name, value)


def print_sliders(data: dict[str, Any]) -> None:
    """The sliders with their held-out effect, then every slider's side effects."""
    from smalltrain.tasks.audio.use.descriptors import DESCRIPTORS, UNITS

    rows = []
    for s in data["sliders"]:
        unit = UNITS[s["descriptor"]]
        rows.append([s["name"], s["descriptor"], f"{s['per_unit']:+.3g} {unit}".strip(),
                     f"{s['relative']:+.2f}", f"{s['agree']:.0%}", f"{s['r2']:.2f}",
                     s["verdict"]])  # fmt: skip
    headers = ["slider", "moves", "per unit", "of its spread", "named way", "fit r²", "verdict"]
    files = data["sliders"][0]["files"] if data["sliders"] else 0
    title = f"Sliders: one unit's effect on {files} held-out files (decoded and measured)"
    print_table(headers, rows, title=title, right=headers[2:6])
    side = []
    for s in data["sliders"]:
        cells = [f"{_fmt(k, s['table'][k][0])} -> {_fmt(k, s['table'][k][2])}" for k in DESCRIPTORS]
        side.append([s["name"], *cells])
    print_table(
        ["slider", *DESCRIPTORS],
        side,
        title="Side effects: each descriptor's held-out mean at -1 -> +1 unit of each slider",
    )


@handle_errors
def explore_cmd(
    model: str = typer.Argument(..., metavar="MODEL", help=MODEL_HELP),
    out: Path | None = typer.Option(
        None, "--out", help="A folder for the map: map.json (every file) and map.png."
    ),
    as_json: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """Show a sound model's sliders (what each moves on held-out files) and map its files.

    Every training and held-out file is placed in 2-D from its code; the sliders are the
    directions in code space that best predict brightness, decay, noisiness and level.
    """
    exploration = _load(model, "explore")
    data = exploration.to_dict()
    written = []
    if out is not None:
        from smalltrain.tasks.audio.use.mapfile import write_map

        written = [str(p) for p in write_map(exploration, out)]
    for note in exploration.notes:
        warn(note)
    if as_json:
        print_json(data | {"written": written})
        return
    n = len(data["points"])
    held = sum(p["split"] == "held-out" for p in data["points"])
    ax = data["explained"]
    console.print(
        f"map: {n} files ({n - held} training, {held} held-out); its axes hold "
        f"{ax[0]:.0%} and {ax[1]:.0%} of the codes' variance; built in {data['seconds']:.2f} s"
    )
    print_sliders(data)
    for path in written:
        console.print(f"wrote {path}")


def _parse_at(text: str | None) -> tuple[float, float]:
    if text is None:
        return (0.5, 0.5)
    parts = text.split(",")
    try:
        u, v = (float(p) for p in parts)
    except ValueError:
        raise ValueError(f"--at {text!r}: write U,V, e.g. 0.3,0.7") from None
    return u, v


def generate_explored(
    model: str,
    out: Path,
    like: Path | None,
    targets: list[str],
    slides: list[str],
    corners: list[Path],
    at: str | None,
    as_json: bool,
) -> None:
    """``generate --like/--corner``: one sound from a file or the pad, moved and rendered."""
    from smalltrain.tasks.audio.use.explore import make_sound, parse_slider
    from smalltrain.tasks.audio.use.targets import parse_target

    exploration = _load(model, "generate")
    made = make_sound(
        exploration,
        out / "explored_000.wav",
        like=like,
        corners=corners,
        at=_parse_at(at),
        slides=[parse_slider(s) for s in slides],
        targets=dict(parse_target(t) for t in targets),
    )
    for note in made.notes:
        warn(note)
    if as_json:
        print_json(made.to_dict() | {"model": str(exploration.loaded.path)})
        return
    from smalltrain.tasks.audio.use.descriptors import DESCRIPTORS

    console.print(" -> ".join(made.steps))
    rows = [[k, _fmt(k, made.before[k]), _fmt(k, made.after[k])] for k in DESCRIPTORS]
    print_table(["descriptor", "start", "result"], rows, right=["start", "result"])
    console.print(f"wrote {made.path}")


def register(app: typer.Typer) -> None:
    """Add ``explore`` to the main app."""
    app.command("explore")(explore_cmd)
