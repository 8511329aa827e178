"""The words for metrics: one dictionary, a readable name and a lay explanation per metric,
used by every view that shows a metric (the web UI's tables, charts and summaries, the API).

Keys are the flat slash keys the tasks emit (``val/sc``, ``val/mAP50``) and the few terms the
pages use on their own (``PCA``, ``latent floats``); ``best_*`` headline keys map onto them.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["METRICS", "Term", "explain", "label"]


@dataclass(frozen=True)
class Term:
    """A metric as a person reads it."""

    label: str  # "spectral convergence (validation)"
    explanation: str  # one or two plain sentences, with which way is better


_SC = (
    "How far the rebuilt spectrum is from the original: 0 = identical spectrum, 1 = as far off "
    "as silence. Lower is better."
)
_MAP = "mean Average Precision"

METRICS: dict[str, Term] = {
    "train/loss": Term(
        "training loss", "The error the model is trained to lower, on its training sounds."
    ),
    "val/loss": Term(
        "validation loss",
        "The same error on held-out validation data the model never trains on. Lower is "
        "better; when it rises while the training loss falls, the model is memorising.",
    ),
    "val/sc": Term("spectral convergence (validation)", _SC),
    "sc": Term("spectral convergence", _SC),
    "pca/sc": Term(
        "PCA's spectral convergence (validation)",
        "The same score for PCA, a linear model with as many numbers per sound as the model's "
        "latent: the baseline the model should beat. Lower is better.",
    ),
    "train/sc": Term("spectral convergence (training)", _SC),
    "train/recon": Term(
        "reconstruction loss (training)",
        "How far the rebuilt spectrograms are from the training ones. Lower is better.",
    ),
    "lr": Term("learning rate", "How big each training step is; it falls as training goes on."),
    "time/step_s": Term("seconds per step", "How long one training step took."),
    "train/skipped": Term(
        "skipped steps", "Training steps skipped because they gave an invalid (NaN) loss."
    ),
    "val/mel_l1_db": Term(
        "mel L1 (dB, validation)",
        "The average loudness error per frequency band, in decibels. Lower is better.",
    ),
    "train/kl": Term(
        "KL divergence (training)",
        "How far the model's codes are from a plain bell curve. Some is needed to generate "
        "new sounds; it is weighted by β.",
    ),
    "val/kl_raw": Term(
        "KL divergence (validation)",
        "How far the codes of held-out sounds are from a plain bell curve (unweighted). Near 0 "
        "means the codes carry no information (posterior collapse).",
    ),
    "kl/beta": Term(
        "β (KL weight)",
        "How much the KL divergence counts in the loss. It warms up from 0 so the model first "
        "learns to rebuild sounds.",
    ),
    "latent floats": Term(
        "latent floats",
        "How many numbers the model keeps per chunk of sound: its size of description.",
    ),
    "PCA": Term(
        "PCA",
        "Principal component analysis: the best linear compression with the same number of "
        "floats. If the model does not beat it, a simple linear model would do as well.",
    ),
    "frechet": Term(
        "Fréchet distance",
        "How far generated sounds are, as a group, from real ones (by their sound features). "
        "Lower is closer; 0 = indistinguishable statistics.",
    ),
    "val/mAP50": Term(
        "mAP50",
        f"{_MAP} at 50% overlap: how well boxes find the objects, counting a box as right "
        "when it overlaps the true one by half or more. 0 to 1; higher is better.",
    ),
    "val/mAP50-95": Term(
        "mAP50-95",
        f"{_MAP} averaged over overlaps from 50% to 95%: also rewards tight boxes. 0 to 1; "
        "higher is better.",
    ),
    "val/precision": Term(
        "precision", "Of the boxes the model draws, the share that are right. Higher is better."
    ),
    "val/recall": Term(
        "recall", "Of the real objects, the share the model finds. Higher is better."
    ),
    "train/box_loss": Term(
        "box loss", "How far the drawn boxes are from the true ones (training). Lower is better."
    ),
    "train/cls_loss": Term(
        "class loss", "How often the object's class is wrong (training). Lower is better."
    ),
    "train/dfl_loss": Term(
        "box-edge loss (DFL)",
        "Distribution focal loss: how sharply the box edges are placed (training). Lower is "
        "better.",
    ),
}

_HEADLINE = {
    "best_map50_95": "val/mAP50-95",
    "best_map50": "val/mAP50",
    "map50": "val/mAP50",
    "map50_95": "val/mAP50-95",
    "mAP50": "val/mAP50",
    "mAP50-95": "val/mAP50-95",
}


def _key(name: str) -> str:
    if name in METRICS:
        return name
    if name in _HEADLINE:
        return _HEADLINE[name]
    text = name.removeprefix("best_")
    if text.startswith("val_"):
        text = text.replace("val_", "val/", 1)
    return text


def label(name: str) -> str:
    """The readable name of a metric key (the key itself when it has none)."""
    term = METRICS.get(_key(name))
    return term.label if term else name


def explain(name: str) -> str:
    """The lay explanation of a metric key ("" when there is none)."""
    term = METRICS.get(_key(name))
    return term.explanation if term else ""
