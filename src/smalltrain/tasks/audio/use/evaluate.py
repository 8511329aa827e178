"""Evaluate a trained audio model on a folder, beside a PCA baseline of the same size.

``evaluate(model_ref, folder)`` reads FOLDER with ``scan_folder`` (the training loader and its
bad-file rules; skipped files are listed in the result), cuts it into chunks with the model's own
chunk settings (``AudioTrainingDataset``, no augmentation, the same padding rule), and scores:

- the model's reconstruction (eval mode, ``z = mu``) of every chunk;
- PCA with ``k = min(latent floats per chunk, training chunks - 1)`` components, refitted on the
  model's recorded training split (``train_files`` in the checkpoint). PCA outputs are clipped
  to ``[floor_db, the loudest bin of the training chunks]``: the model's output is bounded too
  (below at the floor, above by its sigmoid head), and SC works on ``10 ** (dB / 20)``, so one
  bin PCA extrapolates 50 dB too loud on a held-out chunk would otherwise score SC in the
  hundreds (a few training chunks, ``k = N - 1``). Both clips only help PCA.

Scores are spectral convergence on linear mel magnitude and mel L1 in dB (``metrics``), overall
= mean over chunks, per file = mean over that file's chunks. Beside them, every file is rendered
to audio as ``reconstruct`` writes it, by the model, by PCA and by the inversion alone (the
ceiling), and scored with a multi-resolution STFT distance (``render_eval``, ``waveform``).
With ``generate=N`` it also draws N sounds from the model's prior and N from the PCA Gaussian
and scores both (``genscores``): the Fréchet distance of their log-mel frame statistics to
those of FOLDER, precision and recall against FOLDER's chunks in a feature space of sounds, and
how close they come to the training chunks (memorisation). The model's prior is the one
stored with it (``tasks/audio/model/prior.py``), or, for a checkpoint without one, a Gaussian fitted
to its codes of the same training chunks PCA is fitted on: each side samples from a Gaussian
fitted to its own codes of the same data. Both sides' samples are clipped to ``[floor_db, 0]``.

``PCAComparator`` is the same comparison for the training orchestrator: fitted once per run on
the training chunks, then called at every validation.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from smalltrain.errors import DatasetError
from smalltrain.tasks.audio.config import TrainingConfig
from smalltrain.tasks.audio.data.dataset import AudioTrainingDataset, split_files
from smalltrain.tasks.audio.data.io import AudioFileInfo, SkippedFile, file_fingerprint, scan_folder
from smalltrain.tasks.audio.data.spectrogram import AudioSpectrogram
from smalltrain.tasks.audio.model.model import ConvVAE
from smalltrain.tasks.audio.model.prior import LatentPrior, fit_latent_prior
from smalltrain.tasks.audio.quality.baseline import PCABaseline
from smalltrain.tasks.audio.quality.genscores import GenerationScores, score_sampler
from smalltrain.tasks.audio.quality.metrics import (
    ReconstructionScores,
    aggregate_by_file,
    mel_l1_db,
    spectral_convergence_mel,
)
from smalltrain.tasks.audio.quality.render_eval import WaveformReport, score_waveforms
from smalltrain.tasks.audio.use.generate import load_model

__all__ = [
    "EvaluationResult",
    "GenerationScores",
    "PCAComparator",
    "compare_with_pca",
    "evaluate",
    "reconstruct_mels",
    "score_reconstruction",
]

_BATCH = 64


# --- scoring helpers -----------------------------------------------------------------------------


@torch.no_grad()
def reconstruct_mels(model: ConvVAE, mels: Tensor, batch_size: int = _BATCH) -> Tensor:
    """Deterministic reconstructions (``z = mu``) of normalized mels ``[N, n_mels, T]``.

    Runs on the model's device in eval mode (the model's mode is restored); returns normalized
    mels on the CPU, clipped below at 0 (the floor). Loud bins above 0 dB (normalized > 1) are
    kept: real audio has them, and clipping them would understate the model.
    """
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    outs = []
    try:
        for batch in mels.split(batch_size):
            x = batch.reshape(batch.shape[0], 1, *batch.shape[-2:]).to(device, torch.float32)
            x_hat, _, _ = model(x)
            outs.append(x_hat.squeeze(1).clamp(min=0.0).cpu())
    finally:
        model.train(was_training)
    return torch.cat(outs) if outs else mels.new_zeros(mels.shape)


def score_reconstruction(
    pred_db: Tensor, target_db: Tensor, files: list[str] | None = None
) -> ReconstructionScores:
    """SC and mel L1 of each chunk, aggregated overall and per file."""
    return aggregate_by_file(
        spectral_convergence_mel(pred_db, target_db), mel_l1_db(pred_db, target_db), files
    )


def _pca_k(latent_floats: int, n_train_chunks: int) -> int:
    return max(0, min(latent_floats, n_train_chunks - 1))


class PCAComparator:
    """The model beside PCA of the same size, for every validation of a training run.

    Fits PCA once, on the normalized training mels, then ``compare`` scores a model and the
    (cached) PCA reconstruction of the validation mels.

    Args:
        spectrogram: the run's ``AudioSpectrogram`` (for ``denormalize`` and ``floor_db``).
        train_mels: normalized training chunks ``[N, n_mels, T]`` (``train_ds.mels``).
        latent_floats: the model's latent floats per chunk; ``k = min(latent_floats, N - 1)``.
    """

    def __init__(
        self, spectrogram: AudioSpectrogram, train_mels: Tensor, latent_floats: int
    ) -> None:
        self.spectrogram = spectrogram
        self.floor_db = float(spectrogram.config.floor_db)
        k = _pca_k(latent_floats, int(train_mels.shape[0]))
        train_db = self.to_db(train_mels.cpu())
        self.baseline = PCABaseline.fit(train_db.flatten(1), k)
        # PCA is linear in dB with no bound above; the model's output is bounded
        self.ceiling_db = max(float(train_db.max()), self.floor_db)
        self._cache: tuple[tuple[int, tuple[int, ...]], ReconstructionScores] | None = None
        # how well PCA fits the chunks it was fitted on: the bar for underfitting (alerts.py)
        self.train_sc = score_reconstruction(self.pca_reconstruct_db(train_db), train_db).sc

    @property
    def k(self) -> int:
        """PCA components in use."""
        return self.baseline.k

    def to_db(self, normalized: Tensor) -> Tensor:
        """Normalized mels -> dB."""
        return self.spectrogram.denormalize(normalized.float())

    def pca_reconstruct_db(self, target_db: Tensor) -> Tensor:
        """PCA reconstruction in dB, clipped to ``[floor_db, ceiling_db]`` (the training chunks'
        loudest bin): the model's output is bounded too, and without the ceiling one bin PCA
        extrapolates far too loud dominates spectral convergence on linear magnitude."""
        rec = self.baseline.reconstruct(target_db.flatten(1)).reshape(target_db.shape)
        return rec.clamp(min=self.floor_db, max=self.ceiling_db)

    def pca_scores(self, val_mels: Tensor, files: list[str] | None = None) -> ReconstructionScores:
        """PCA scores on normalized ``val_mels`` (cached for the same tensor without ``files``)."""
        key = (val_mels.data_ptr(), tuple(val_mels.shape))
        if files is None and self._cache is not None and self._cache[0] == key:
            return self._cache[1]
        target = self.to_db(val_mels.cpu())
        scores = score_reconstruction(self.pca_reconstruct_db(target), target, files)
        if files is None:
            self._cache = (key, scores)
        return scores

    def model_scores(
        self, model: ConvVAE, val_mels: Tensor, files: list[str] | None = None
    ) -> ReconstructionScores:
        """The model's scores on normalized ``val_mels``."""
        target = self.to_db(val_mels.cpu())
        return score_reconstruction(self.to_db(reconstruct_mels(model, val_mels)), target, files)

    def compare(self, model: ConvVAE, val_mels: Tensor) -> dict[str, float]:
        """``{"val/sc", "val/mel_l1_db", "pca/sc", "pca/mel_l1_db", "pca/k", "pca/train_sc"}``."""
        return self.compare_reconstructions(reconstruct_mels(model, val_mels), val_mels)

    def compare_reconstructions(self, recon: Tensor, val_mels: Tensor) -> dict[str, float]:
        """Like ``compare``, from reconstructions the caller already has (normalized mels in
        the order of ``val_mels``), so validation does not run the model twice."""
        target = self.to_db(val_mels.cpu())
        recon = recon.reshape(val_mels.shape).float().cpu().clamp(min=0.0)
        ours = score_reconstruction(self.to_db(recon), target)
        pca = self.pca_scores(val_mels)
        return {
            "val/sc": ours.sc,
            "val/mel_l1_db": ours.mel_l1_db,
            "pca/sc": pca.sc,
            "pca/mel_l1_db": pca.mel_l1_db,
            "pca/k": float(self.k),
            "pca/train_sc": self.train_sc,
        }


def compare_with_pca(
    model: ConvVAE, spectrogram: AudioSpectrogram, train_mels: Tensor, val_mels: Tensor
) -> dict[str, float]:
    """One-off model-vs-PCA comparison on normalized mels (fits PCA each call).

    During training build one ``PCAComparator`` instead and call ``compare`` per validation.
    """
    return PCAComparator(spectrogram, train_mels, model.latent_dim).compare(model, val_mels)


# --- the result ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class EvaluationResult:
    """What ``evaluate`` measured; ``to_json_dict`` is the ``--json`` output."""

    model_ref: str
    folder: str
    model_file: str
    model: ReconstructionScores
    baseline: ReconstructionScores
    latent_floats: int
    pca_k: int
    pca_train_chunks: int
    skipped: list[SkippedFile] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    in_training: list[str] = field(default_factory=list)  # evaluated files the model trained on
    generation: GenerationScores | None = None
    waveform: WaveformReport | None = None

    @property
    def chunks(self) -> int:
        """Chunks scored (mean over these is the overall score)."""
        return self.model.chunks

    def headline(self) -> str:
        """One line such as ``model SC 0.540, PCA-64 SC 0.510``."""
        return f"model SC {self.model.sc:.3f}, PCA-{self.pca_k} SC {self.baseline.sc:.3f}"

    def to_json_dict(self) -> dict[str, Any]:
        """Plain JSON types; NaN-free."""
        pca_by_file = {f.path: f for f in self.baseline.per_file}
        wave_by_file = {f.path: f for f in self.waveform.files} if self.waveform else {}
        files = []
        for f in self.model.per_file:
            row: dict[str, Any] = {"path": f.path, "sc": f.sc, "mel_l1_db": f.mel_l1_db}
            row["chunks"] = f.chunks
            if f.path in pca_by_file:
                row["pca_sc"] = pca_by_file[f.path].sc
                row["pca_mel_l1_db"] = pca_by_file[f.path].mel_l1_db
            if f.path in wave_by_file:
                w = wave_by_file[f.path]
                row["wave"] = {"model": w.model.to_dict(), "baseline_pca": w.pca.to_dict(),
                               "inversion": w.inversion.to_dict()}  # fmt: skip
            files.append(row)
        out: dict[str, Any] = {
            "model_ref": self.model_ref,
            "model_file": self.model_file,
            "folder": self.folder,
            "model": {
                "sc": self.model.sc,
                "mel_l1_db": self.model.mel_l1_db,
                "latent_floats": self.latent_floats,
            },
            "baseline_pca": {
                "k": self.pca_k,
                "sc": self.baseline.sc,
                "mel_l1_db": self.baseline.mel_l1_db,
                "train_chunks": self.pca_train_chunks,
            },
            "chunks": self.chunks,
            "files": files,
            "skipped": [{"path": s.path, "reason": s.reason} for s in self.skipped],
            "warnings": list(self.warnings),
            "in_training": list(self.in_training),
        }
        if self.generation is not None:
            out["generation"] = self.generation.to_dict()
        if self.waveform is not None:
            out["waveform"] = self.waveform.to_dict()
        return out


# --- evaluate ------------------------------------------------------------------------------------


def _train_file_infos(
    entries: list[dict[str, Any]], sample_rate: int, warnings: list[str]
) -> list[AudioFileInfo]:
    """The recorded training files still usable, with a warning for each missing or changed one."""
    infos: list[AudioFileInfo] = []
    for entry in entries:
        path, name = Path(str(entry.get("path", ""))), str(entry.get("rel") or entry.get("path"))
        if not path.is_file():
            warnings.append(f"training file {name} is missing ({path}); PCA fitted without it")
            continue
        try:
            info = scan_folder(path, sample_rate).files[0]
        except DatasetError as exc:
            warnings.append(
                f"training file {name} is no longer usable ({exc}); PCA fitted without it"
            )
            continue
        if entry.get("fingerprint") and file_fingerprint(path) != entry["fingerprint"]:
            warnings.append(f"training file {name} changed since training (fingerprint differs)")
        infos.append(info)
    return infos


def _content_hash(path: Path) -> str | None:
    """sha256 of a file's bytes (a copied or uploaded file keeps it; its mtime does not)."""
    h = hashlib.sha256()
    try:
        with open(path, "rb") as f:
            while chunk := f.read(1 << 20):
                h.update(chunk)
    except OSError:
        return None
    return h.hexdigest()


def _in_training_split(files: list[AudioFileInfo], entries: list[dict[str, Any]]) -> list[str]:
    """The evaluated files that were in the training split: the same path, the same quick
    fingerprint, or the same bytes (an uploaded copy of a training file has a new name and
    mtime, so only its content hash tells)."""
    prints = {str(e.get("fingerprint")) for e in entries}
    paths = {Path(str(e.get("path", ""))).resolve() for e in entries}
    sizes = {p.stat().st_size: p for p in paths if p.is_file()}
    hashes: set[str | None] = set()
    out = []
    for f in files:
        if f.fingerprint in prints or Path(f.path).resolve() in paths:
            out.append(f.rel)
            continue
        if Path(f.path).stat().st_size not in sizes:  # a different size: different content
            continue
        if not hashes:
            hashes = {_content_hash(p) for p in paths if p.is_file()}
        if _content_hash(Path(f.path)) in hashes:
            out.append(f.rel)
    return out


def _fit_baseline(
    ckpt: dict[str, Any],
    spectrogram: AudioSpectrogram,
    cfg: TrainingConfig,
    latent: int,
    warnings: list[str],
) -> tuple[PCAComparator, Tensor]:
    """PCA on the checkpoint's training split, read again from disk; returns it and the split's
    normalized mels."""
    entries = ckpt.get("train_files")
    if not entries:
        raise DatasetError(
            "the checkpoint records no training split ('train_files'), so the PCA baseline "
            "cannot be refitted; evaluate a checkpoint or model written by `smalltrain train`"
        )
    infos = _train_file_infos(list(entries), cfg.sample_rate, warnings)
    if not infos:
        raise DatasetError(
            f"none of the {len(entries)} training files recorded in the checkpoint can be read, "
            "so the PCA baseline cannot be fitted; restore the training folder at its original "
            "path and run again"
        )
    chunk_range = None
    if ckpt.get("split_strategy") == "by_time" and len(infos) == 1:
        # one training file split in time: PCA sees only the chunks training saw
        split = split_files(
            infos,
            cfg.val_fraction or 0.2,
            cfg.seed,
            chunk_samples=cfg.chunk_samples,
            hop_samples=cfg.chunk_hop_samples,
            target_sr=cfg.sample_rate,
        )
        chunk_range = split.train_chunks
    train = AudioTrainingDataset(
        infos, spectrogram, cfg.chunk_samples, cfg.chunk_hop_samples, chunk_range=chunk_range
    )
    return PCAComparator(spectrogram, train.mels, latent), train.mels


@torch.no_grad()
def _generation(
    model: ConvVAE,
    prior: LatentPrior,
    prior_source: str,
    comparator: PCAComparator,
    reference_db: Tensor,
    reference_files: list[str],
    train_db: Tensor,
    n: int,
    seed: int,
) -> GenerationScores:
    gen = torch.Generator().manual_seed(seed)
    device = next(model.parameters()).device
    z = prior.sample(n, gen).to(device)
    model.eval()
    model_db = comparator.to_db(model.decode(z).squeeze(1).clamp(0.0, 1.0).cpu())
    pca_db = comparator.baseline.sample(n, gen).reshape(n, *reference_db.shape[1:])
    pca_db = pca_db.clamp(comparator.floor_db, 0.0)
    return GenerationScores(
        n=n,
        model=score_sampler(model_db, reference_db, train_db, reference_files),
        pca=score_sampler(pca_db, reference_db, train_db, reference_files),
        reference_sounds=int(reference_db.shape[0]),
        reference_frames=int(reference_db.shape[0] * reference_db.shape[-1]),
        train_chunks=int(train_db.shape[0]),
        model_prior=prior_source,
    )


def _waveforms(
    model: ConvVAE, comparator: PCAComparator, data: AudioTrainingDataset, chunk_samples: int
) -> WaveformReport:
    """Model, PCA and inversion-only renderings of every file, scored against the original."""

    def pca(mels: Tensor) -> Tensor:
        db = comparator.pca_reconstruct_db(comparator.to_db(mels))
        return comparator.spectrogram.normalize(db)

    return score_waveforms(
        [f.rel for f in data.files],
        data.waves,
        comparator.spectrogram,
        chunk_samples,
        {"model": lambda mels: reconstruct_mels(model, mels), "pca": pca},
    )


def evaluate(
    model_ref: str | Path,
    folder: str | Path,
    *,
    generate: int = 0,
    seed: int = 0,
    device: str = "cpu",
    waveform: bool = True,
) -> EvaluationResult:
    """Score a model on FOLDER beside the PCA baseline refitted on its training split.

    Args:
        model_ref: a run folder, a checkpoint ``.pt``, or an exported/registered model.
        folder: audio to evaluate (a folder or one file); bad files are skipped and listed.
        generate: draw this many sounds from the prior (and from the PCA Gaussian) and score
            them against FOLDER and the training chunks (``genscores.py``); 0 skips it.
        seed: seeds the generation.
        device: where the model runs.
        waveform: also render every file (model, PCA, the inversion alone) and score the audio
            (``render_eval.py``); False keeps to the mel scores.

    Raises:
        DatasetError: FOLDER has no usable audio, or no training file is left to fit PCA on.
        CheckpointError: ``model_ref`` is not a readable smalltrain audio model.
    """
    loaded = load_model(model_ref, device)
    model, spectrogram, cfg = loaded.model, loaded.spectrogram, loaded.config
    ckpt = loaded.checkpoint
    report = scan_folder(folder, cfg.sample_rate)
    warnings: list[str] = []
    comparator, train_mels = _fit_baseline(ckpt, spectrogram, cfg, model.latent_dim, warnings)
    data = AudioTrainingDataset(report.files, spectrogram, cfg.chunk_samples, cfg.chunk_hop_samples)
    names = [data.file_of_chunk(i).rel for i in range(data.n_chunks)]
    overlap = _in_training_split(report.files, ckpt.get("train_files") or [])
    if overlap:
        every = "all" if len(overlap) == len(report.files) else f"{len(overlap)} of"
        warnings.append(
            f"{every} {len(report.files)} files evaluated were in the model's training split "
            f"(same content; e.g. {overlap[0]}); their scores are not held-out, so they do not "
            "say how the model does on new sounds"
        )
    generation = None
    if generate > 0:
        reference = comparator.to_db(data.mels)
        prior, source = loaded.prior, "stored"
        if not prior.fitted:  # e.g. an interval checkpoint: fit it as PCA's Gaussian is fitted
            prior = fit_latent_prior(model, train_mels)
            source = "fitted" if prior.fitted else "standard"  # < 2 training chunks: N(0, I)
        train_db = comparator.to_db(train_mels)
        generation = _generation(
            model, prior, source, comparator, reference, names, train_db, generate, seed
        )
    return EvaluationResult(
        model_ref=str(model_ref),
        folder=str(folder),
        model_file=str(loaded.path),
        model=comparator.model_scores(model, data.mels, names),
        baseline=comparator.pca_scores(data.mels, names),
        latent_floats=int(model.latent_dim),
        pca_k=comparator.k,
        pca_train_chunks=int(train_mels.shape[0]),
        skipped=list(report.skipped),
        warnings=warnings,
        in_training=overlap,
        generation=generation,
        waveform=_waveforms(model, comparator, data, cfg.chunk_samples) if waveform else None,
    )
