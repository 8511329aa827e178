"""The map of ``explore`` as files: ``map.json`` (every point, the sliders) and ``map.png``
(a scatter coloured by folder, held-out files ringed). matplotlib (Agg) is imported here only."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

from smalltrain.engine.fsutil import atomic_write

if TYPE_CHECKING:
    from smalltrain.tasks.audio.use.explore import Exploration

__all__ = ["write_map"]


def write_map(exploration: Exploration, folder: str | Path) -> list[Path]:
    """Write ``map.json`` and ``map.png`` into ``folder``; returns both paths."""
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    text = json.dumps(exploration.to_dict(), indent=2)
    data_path = atomic_write(out / "map.json", lambda f: f.write(text.encode()))
    return [data_path, _plot(exploration, out / "map.png")]


def _plot(exploration: Exploration, path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    points = exploration.points
    folders = sorted({p.folder for p in points})
    fig, ax = plt.subplots(figsize=(7, 6))
    try:
        for i, folder in enumerate(folders):
            mine = [p for p in points if p.folder == folder]
            edge = ["black" if p.split == "held-out" else "none" for p in mine]
            ax.scatter([p.x for p in mine], [p.y for p in mine], s=36, color=f"C{i % 10}",
                       edgecolors=edge, linewidths=1.2, label=folder)  # fmt: skip
        ax.set_xlabel(f"PCA 1 ({exploration.explained[0]:.0%} of the code variance)")
        ax.set_ylabel(f"PCA 2 ({exploration.explained[1]:.0%})")
        ax.set_title(f"{exploration.loaded.path.name}: {len(points)} files (ringed: held out)")
        ax.legend(fontsize=8, title="folder")
        ax.grid(alpha=0.3)
        fig.tight_layout()
        return atomic_write(path, lambda f: fig.savefig(f, format="png", dpi=100))
    finally:
        plt.close(fig)
