"""Scores for generated sounds that do not favour a Gaussian sampler by construction.

The Fréchet distance of log-mel frame statistics (``frechet.py``) compares a mean and a
covariance, which is exactly what a Gaussian fitted in PCA space reproduces: PCA's sampler wins
it without making one convincing sound. So generation is also scored per *sound*, in a feature
space of what a listener tells sounds apart by, with ``sound_features``:

- MFCC statistics: mean and standard deviation over frames of the first 13 coefficients (DCT of
  the log-mel): timbre and how it moves;
- spectral centroid (in mel bands) and flatness (tonal against noisy), mean and spread;
- the envelope: the level in dB of each eighth of the chunk: attack, decay, silence.

Each feature is standardised by the real sounds' spread. Then (Kynkäänniemi et al., "Improved
precision and recall metric for assessing generative models", 2019), with k = 3:

- **precision**: the share of generated sounds that fall inside the real sounds' manifold (the
  union of balls around each real sound reaching its k-th nearest real neighbour): are the
  new sounds plausible?
- **recall**: the share of real sounds inside the generated sounds' manifold: do the new sounds
  cover the variety of the real ones?

**Memorisation**: how close each generated sound is to its nearest *training* chunk (RMS
log-mel difference in dB), against how close training chunks are to each other (each to its
nearest other). ``memorisation_ratio`` is the median of the first over the median of the
second: near 1, new sounds are as far from the training set as its sounds are from each other;
well below 1, the sampler copies training chunks. ``near_copies`` is the share of generated
sounds closer to a training chunk than 95% of training chunks are to their nearest neighbour.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import Tensor

from smalltrain.tasks.audio.quality.frechet import frechet_distance, mel_statistics

__all__ = [
    "GenerationScores",
    "SamplerScores",
    "memorisation",
    "precision_recall",
    "score_sampler",
    "sound_features",
]

N_MFCC = 13
ENVELOPE_SEGMENTS = 8
K_NEIGHBOURS = 3
_COPY_QUANTILE = 0.05


def _dct_matrix(n_in: int, n_out: int) -> Tensor:
    """Orthonormal DCT-II ``[n_out, n_in]``."""
    k = torch.arange(n_out, dtype=torch.float64)[:, None]
    n = torch.arange(n_in, dtype=torch.float64)[None, :]
    basis = torch.cos(math.pi / n_in * (n + 0.5) * k) * math.sqrt(2.0 / n_in)
    basis[0] /= math.sqrt(2.0)
    return basis


def sound_features(mels_db: Tensor) -> Tensor:
    """Features ``[N, 2 * 13 + 4 + 8]`` of log-mels in dB ``[N, n_mels, T]`` (see module doc)."""
    db = mels_db.reshape(-1, *mels_db.shape[-2:]).double()
    n, n_mels, n_frames = db.shape
    mfcc = torch.einsum("kb,nbt->nkt", _dct_matrix(n_mels, min(N_MFCC, n_mels)), db)
    power = torch.pow(10.0, db / 10.0)
    total = power.sum(dim=1)  # [N, T]
    bands = torch.arange(n_mels, dtype=torch.float64)[None, :, None]
    centroid = (power * bands).sum(dim=1) / total.clamp_min(1e-30)
    flatness = torch.exp(torch.log(power.clamp_min(1e-30)).mean(dim=1)) / (
        power.mean(dim=1).clamp_min(1e-30)
    )
    level = 10 * torch.log10(total.clamp_min(1e-30))
    segments = torch.tensor_split(level, min(ENVELOPE_SEGMENTS, n_frames), dim=1)
    envelope = torch.stack([s.mean(dim=1) for s in segments], dim=1)
    if envelope.shape[1] < ENVELOPE_SEGMENTS:
        envelope = torch.nn.functional.pad(envelope, (0, ENVELOPE_SEGMENTS - envelope.shape[1]))
    parts = [mfcc.mean(dim=2), mfcc.std(dim=2, correction=0), centroid.mean(dim=1, keepdim=True),
             centroid.std(dim=1, correction=0, keepdim=True), flatness.mean(dim=1, keepdim=True),
             flatness.std(dim=1, correction=0, keepdim=True), envelope]  # fmt: skip
    return torch.cat(parts, dim=1).reshape(n, -1)


def _kth_radius(points: Tensor, k: int, groups: list[str] | None = None) -> Tensor:
    """Distance of each point to its k-th nearest other point, not counting points of its own
    group (chunks of one file); inf when there are too few."""
    dist = torch.cdist(points, points)
    dist.fill_diagonal_(math.inf)
    if groups is not None:
        index = {g: i for i, g in enumerate(dict.fromkeys(groups))}
        ids = torch.tensor([index[g] for g in groups])
        dist = dist.masked_fill(ids[:, None] == ids[None, :], math.inf)
    if dist.shape[1] < k:
        return torch.full((points.shape[0],), math.inf, dtype=points.dtype)
    return dist.kthvalue(k, dim=1).values


def precision_recall(
    real: Tensor, fake: Tensor, k: int = K_NEIGHBOURS, real_groups: list[str] | None = None
) -> tuple[float, float]:
    """Improved precision and recall of ``fake`` against ``real`` features ``[N, D]``.

    Features are standardised with the real set's mean and spread first. ``real_groups`` names
    the file of each real chunk: a real sound's neighbourhood then reaches its k-th nearest
    sound from *another* file. Without it, the chunks of one long file are each other's nearest
    neighbours and the real manifold shrinks to the files themselves (precision near 0 for any
    sampler on a few long files).
    """
    mean, std = real.mean(dim=0), real.std(dim=0, correction=0).clamp_min(1e-9)
    r, f = (real - mean) / std, (fake - mean) / std
    r_radius, f_radius = _kth_radius(r, k, real_groups), _kth_radius(f, k)
    cross = torch.cdist(f, r)  # [n_fake, n_real]
    precision = (cross <= r_radius[None, :]).any(dim=1).double().mean()
    recall = (cross <= f_radius[:, None]).any(dim=0).double().mean()
    return float(precision), float(recall)


def _rms_distances(a: Tensor, b: Tensor) -> Tensor:
    """RMS difference in dB between every row of ``a`` and of ``b`` (flattened mels)."""
    a2, b2 = a.reshape(a.shape[0], -1).double(), b.reshape(b.shape[0], -1).double()
    return torch.cdist(a2, b2) / math.sqrt(a2.shape[1])


def memorisation(generated_db: Tensor, train_db: Tensor) -> tuple[float, float]:
    """``(memorisation_ratio, near_copies)`` of generated against training mels in dB."""
    if train_db.shape[0] < 2:
        return math.nan, math.nan
    to_train = _rms_distances(generated_db, train_db).amin(dim=1)
    within = _rms_distances(train_db, train_db)
    within.fill_diagonal_(math.inf)
    nearest = within.amin(dim=1)
    ratio = float(to_train.median() / nearest.median().clamp_min(1e-9))
    threshold = torch.quantile(nearest, _COPY_QUANTILE)
    return ratio, float((to_train < threshold).double().mean())


@dataclass(frozen=True)
class SamplerScores:
    """One sampler's generation scores (see the module docstring)."""

    frechet: float
    precision: float
    recall: float
    memorisation_ratio: float
    near_copies: float

    def to_dict(self) -> dict[str, float | None]:
        """Plain JSON: NaN (not measurable, e.g. fewer than 2 training chunks) becomes None."""
        return {k: (None if isinstance(v, float) and math.isnan(v) else v)
                for k, v in asdict(self).items()}  # fmt: skip


def score_sampler(
    generated_db: Tensor, real_db: Tensor, train_db: Tensor, real_files: list[str] | None = None
) -> SamplerScores:
    """Score generated log-mels (dB, ``[N, n_mels, T]``) against real and training ones
    (``real_files``: the file of each real chunk, see ``precision_recall``)."""
    precision, recall = precision_recall(
        sound_features(real_db), sound_features(generated_db), real_groups=real_files
    )
    ratio, copies = memorisation(generated_db, train_db)
    frechet = frechet_distance(*mel_statistics(generated_db), *mel_statistics(real_db))
    return SamplerScores(frechet, precision, recall, ratio, copies)


@dataclass(frozen=True)
class GenerationScores:
    """N prior samples (model) and N PCA-Gaussian samples, scored against FOLDER."""

    n: int
    model: SamplerScores
    pca: SamplerScores
    reference_sounds: int
    reference_frames: int
    train_chunks: int
    model_prior: str = "stored"  # stored with the model | fitted here | standard N(0, I)

    @property
    def frechet_model(self) -> float:
        return self.model.frechet

    @property
    def frechet_pca(self) -> float:
        return self.pca.frechet

    def to_dict(self) -> dict[str, Any]:
        return {
            "n": self.n,
            "frechet_model": self.model.frechet,
            "frechet_pca": self.pca.frechet,
            "model": self.model.to_dict(),
            "baseline_pca": self.pca.to_dict(),
            "reference_sounds": self.reference_sounds,
            "reference_frames": self.reference_frames,
            "train_chunks": self.train_chunks,
            "model_prior": self.model_prior,
            "k_neighbours": K_NEIGHBOURS,
        }
