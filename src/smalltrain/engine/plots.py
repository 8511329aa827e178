"""A picture of a run's metrics history: ``metrics.png`` in the run folder, for every task.

Keys are grouped into up to three panels by what they measure: losses (every key with "loss"),
quality (spectral convergence, mel error, mAP, precision, recall, PCA's scores beside the
model's) and the learning rate. matplotlib (Agg) is imported only here, with its config and
font cache kept inside the smalltrain home (``MPLCONFIGDIR``).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from smalltrain import paths
from smalltrain.engine.fsutil import atomic_write

__all__ = ["plot_spectrogram", "PLOT_NAME", "panels", "plot_history"]

PLOT_NAME = "metrics.png"
_QUALITY = ("/sc", "mel_l1", "map", "precision", "recall", "fitness")


def panels(keys: Sequence[str]) -> list[tuple[str, list[str]]]:
    """``(title, keys)`` of each panel worth drawing, in order; empty groups are left out."""
    groups: dict[str, list[str]] = {"loss": [], "quality": [], "learning rate": []}
    for key in sorted(keys):
        low = key.lower()
        if "loss" in low:
            groups["loss"].append(key)
        elif any(part in low for part in _QUALITY):
            groups["quality"].append(key)
        elif low.startswith("lr"):
            groups["learning rate"].append(key)
    return [(title, found) for title, found in groups.items() if found]


def _matplotlib(home: Path) -> Any:
    if "MPLCONFIGDIR" not in os.environ and "matplotlib" not in sys.modules:
        folder = paths.tool_dir(home, "matplotlib")
        folder.mkdir(parents=True, exist_ok=True)
        os.environ["MPLCONFIGDIR"] = str(folder)
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    return plt, MaxNLocator


def plot_history(
    series: Mapping[str, Sequence[tuple[int, float]]], path: Path, title: str, home: Path
) -> Path | None:
    """Draw ``series`` (key -> [(epoch, value)], epochs from 0) into ``path``.

    Returns the path, or None when there is nothing to draw (no epoch finished yet).
    """
    chosen = panels([k for k, points in series.items() if points])
    if not chosen:
        return None
    plt, MaxNLocator = _matplotlib(home)  # noqa: N806
    fig, axes = plt.subplots(len(chosen), 1, figsize=(8, 2.8 * len(chosen)), squeeze=False)
    try:
        for ax, (name, keys) in zip(axes[:, 0], chosen, strict=True):
            for key in keys:
                by_epoch = dict(series[key])  # a redone epoch keeps its last value
                epochs = sorted(by_epoch)
                ax.plot([e + 1 for e in epochs], [by_epoch[e] for e in epochs], label=key,
                        marker="." if len(epochs) < 30 else None)  # fmt: skip
            ax.set_title(name, fontsize=10)
            ax.set_xlabel("epoch")
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
            ax.grid(alpha=0.3)
            ax.legend(fontsize=7, loc="best")
        fig.suptitle(title, fontsize=11)
        fig.tight_layout()
        atomic_write(path, lambda f: fig.savefig(f, format="png", dpi=100))
    finally:
        plt.close(fig)
    return path


def plot_spectrogram(wave: Any, sample_rate: int, path: Path, title: str, home: Path) -> Path:
    """Draw the spectrogram of a mono waveform (time by frequency, dB) into ``path``."""
    plt, _ = _matplotlib(home)
    fig, ax = plt.subplots(figsize=(5.2, 2.4), dpi=100)
    try:
        ax.specgram(wave, NFFT=1024, Fs=sample_rate, noverlap=768, cmap="magma", scale="dB")
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("seconds", fontsize=8)
        ax.set_ylabel("Hz", fontsize=8)
        ax.tick_params(labelsize=7)
        fig.tight_layout()
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp.png")
        fig.savefig(tmp)
        os.replace(tmp, path)
    finally:
        plt.close(fig)
    return path
