"""What the Explore tab's child process runs (see ``pool``): the map (with each point's sound)
and a sound made from sliders or the pad. Each builds on ``tasks/audio/use/explore.py``'s
``explore``, kept per model file while the child is warm (a slider move then costs one decode and
render).

Points are named by their index on the map; their files come from the model's own record,
never from the page.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

__all__ = ["explore_make", "explore_map"]

_CACHE: dict[tuple[str, int], Any] = {}


def _exploration(model: str) -> Any:
    from smalltrain.tasks.audio.use.explore import explore
    from smalltrain.tasks.audio.use.generate import load_model

    key = (model, os.stat(model).st_mtime_ns)
    if key not in _CACHE:
        if len(_CACHE) > 4:
            _CACHE.clear()
        _CACHE[key] = explore(load_model(model))
    return _CACHE[key]


def explore_map(model: str, out_dir: str) -> dict[str, Any]:
    """The map and the sliders of an audio model, without file paths (for a web page); each
    point's sound (its file's first chunk, as the server renders it) is written into
    ``out_dir`` as ``point_NNN.wav`` and named by the point's ``sound``."""
    from smalltrain.tasks.audio.data.io import load_audio
    from smalltrain.tasks.audio.use.preview import write_wav

    exploration = _exploration(model)
    data = dict(exploration.to_dict(with_paths=False))
    cfg = exploration.loaded.config
    for point, shown in zip(exploration.points, data["points"], strict=True):
        wave = load_audio(point.path, cfg.sample_rate)[: cfg.chunk_samples]
        shown["sound"] = write_wav(Path(out_dir) / f"point_{point.index:03d}.wav", wave,
                                   cfg.sample_rate).name  # fmt: skip
    return data


def explore_make(
    model: str,
    out_dir: str,
    like: int | None,
    corners: list[int],
    at: tuple[float, float],
    slides: list[tuple[str, float]],
    targets: dict[str, float],
) -> dict[str, Any]:
    """``make_sound`` from a point (``like``) or the pad's four corner points."""
    from smalltrain.tasks.audio.use.explore import make_sound

    exploration = _exploration(model)
    made = make_sound(
        exploration,
        Path(out_dir) / "explored.wav",
        like=None if like is None else int(like),
        corners=[int(c) for c in corners],
        at=(float(at[0]), float(at[1])),
        slides=[(str(n), float(a)) for n, a in slides if float(a) != 0.0],
        targets={str(k): float(v) for k, v in targets.items()},
    )
    return dict(made.to_dict())
