"""Using a trained audio model: sample from the prior, reconstruct a file, interpolate.

Each function writes 48 kHz WAVs and takes a seed, so the same call gives the same files.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from smalltrain.engine.checkpoints import find_resumable, load_checkpoint
from smalltrain.errors import CheckpointError, DatasetError
from smalltrain.tasks.audio.config import TrainingConfig
from smalltrain.tasks.audio.data.io import TARGET_SR, load_audio
from smalltrain.tasks.audio.data.spectrogram import AudioSpectrogram, SpectrogramConfig
from smalltrain.tasks.audio.model.model import ConvVAE
from smalltrain.tasks.audio.model.prior import LatentPrior
from smalltrain.tasks.audio.model.sequence import SequencePrior, chunks_for, render_sequence
from smalltrain.tasks.audio.quality.render_eval import render_chunks
from smalltrain.tasks.audio.use.preview import render_mels, write_wav

#: The shortest sound ``check_sound`` lets through (seconds), and the level below which it
#: is silence (dBFS, as dataset inspection counts a file silent).
MIN_SECONDS = 0.1
SILENCE_DB = -60.0


@dataclass
class LoadedModel:
    """A trained ConvVAE with the spectrogram and config it was trained with."""

    model: ConvVAE
    spectrogram: AudioSpectrogram
    config: TrainingConfig
    checkpoint: dict[str, Any]
    path: Path

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @property
    def prior(self) -> LatentPrior:
        """What new sounds are drawn from: the Gaussian fitted to the training codes that
        training stores with the model, or N(0, I) for a checkpoint without one."""
        return LatentPrior.of_checkpoint(self.checkpoint, self.model.latent_dim)

    @property
    def sequence_prior(self) -> SequencePrior:
        """What sounds longer than a chunk are drawn from (``sequence.py``): the one stored
        with the model, or, for a model without one, chunks drawn on their own from ``prior``."""
        stored = SequencePrior.of_checkpoint(self.checkpoint, self.model.latent_dim)
        if stored is not None:
            return stored
        return SequencePrior.independent(self.prior, max(1, self.config.n_frames // 2))


def resolve_model_file(ref: str | Path) -> Path:
    """Find the weights file for a run dir, a registered model folder or a checkpoint path.

    Raises:
        CheckpointError: nothing loadable at ``ref``, with what was looked for.
    """
    path = Path(ref).expanduser()
    if path.is_file():
        return path
    candidates = [
        path / "export" / "best.pt",  # a run dir
        path / "weights" / "best.pt",  # a registered model folder
        path / "best.pt",
    ]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    if (path / "checkpoints").is_dir():
        found = find_resumable(path / "checkpoints")
        if found is not None:
            return found[0]
    raise CheckpointError(
        f"{path}: no model found. Give a run folder (with export/best.pt or checkpoints/), a "
        "registered model folder (with weights/best.pt) or a .pt checkpoint file."
    )


def load_model(ref: str | Path, device: str | torch.device = "cpu") -> LoadedModel:
    """Load a trained audio model from a run dir, a model folder or a checkpoint file.

    Raises:
        CheckpointError: the file is missing, corrupt or not an audio model.
    """
    path = resolve_model_file(ref)
    ckpt = load_checkpoint(path, map_location="cpu")
    if "model_args" not in ckpt or "model_state" not in ckpt:
        raise CheckpointError(
            f"{path}: not a smalltrain audio model (no model_args/model_state). "
            "Detection models are used with `smalltrain predict`."
        )
    model = ConvVAE.from_init_args(dict(ckpt["model_args"]))
    model.load_state_dict(ckpt["model_state"])
    model.to(device).eval()
    spec = AudioSpectrogram(SpectrogramConfig.from_dict(ckpt["spectrogram"]), device="cpu")
    config = TrainingConfig.from_dict(ckpt["config"])
    return LoadedModel(model, spec, config, ckpt, path)


def _write_all(waves: torch.Tensor, out_dir: Path, prefix: str, sr: int) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    return [write_wav(out_dir / f"{prefix}_{i:03d}.wav", w, sr) for i, w in enumerate(waves)]


@torch.no_grad()
def sample(
    loaded: LoadedModel, n: int, out_dir: str | Path, *, seed: int = 0, temperature: float = 1.0
) -> list[Path]:
    """Decode ``n`` latents drawn from the model's prior; returns the WAV paths.

    The prior is ``loaded.prior`` (see tasks/audio/model/prior.py); ``temperature`` scales its
    spread.
    """
    if n < 1:
        raise ValueError(f"n={n}: must be >= 1")
    gen = torch.Generator().manual_seed(seed)
    z = loaded.prior.sample(n, gen, temperature)
    waves = render_mels(loaded.model.decode(z.to(loaded.device)), loaded.spectrogram)
    return _write_all(waves, Path(out_dir), "sample", loaded.spectrogram.config.sample_rate)


MAX_DURATION_S = 600.0


@torch.no_grad()
def sample_long(
    loaded: LoadedModel,
    n: int,
    duration_s: float,
    out_dir: str | Path,
    *,
    seed: int = 0,
    temperature: float = 1.0,
) -> list[Path]:
    """``n`` sounds of ``duration_s`` seconds from the model's sequence prior (see
    ``sequence.py``): for one-shot material they start at an attack and decay as the training
    sounds do; longer than one chunk, consecutive chunks follow each other. Returns the paths.

    Raises:
        ValueError: ``n < 1`` or a duration outside (0, 600] seconds.
    """
    if n < 1:
        raise ValueError(f"n={n}: must be >= 1")
    if not 0 < duration_s <= MAX_DURATION_S:
        raise ValueError(f"duration {duration_s!r} s: must be > 0 and at most {MAX_DURATION_S:g}")
    cfg, spec = loaded.config, loaded.spectrogram
    samples = max(1, round(duration_s * cfg.sample_rate))
    prior = loaded.sequence_prior
    count = chunks_for(samples, cfg.n_frames, prior.hop_frames, cfg.hop_length)
    z = prior.sample(n, count, torch.Generator().manual_seed(seed), temperature)
    waves = render_sequence(loaded.model, spec, z, prior.hop_frames, samples)
    return _write_all(waves, Path(out_dir), "sample", spec.config.sample_rate)


def _chunks(loaded: LoadedModel, audio_path: str | Path) -> tuple[torch.Tensor, int]:
    """Normalized mels ``[C, 1, n_mels, T]`` of a file's chunks, and the file's length."""
    cfg = loaded.config
    wave = torch.from_numpy(load_audio(audio_path, cfg.sample_rate))
    size = cfg.chunk_samples
    starts = list(range(0, max(wave.shape[0], 1), size))  # cover the whole file
    pieces = []
    for start in starts:
        piece = wave[start : start + size]
        pieces.append(torch.nn.functional.pad(piece, (0, size - piece.shape[0])))
    mels = loaded.spectrogram.normalize(loaded.spectrogram.log_mel(torch.stack(pieces)))
    return mels.unsqueeze(1), wave.shape[0]


@torch.no_grad()
def encode_file(loaded: LoadedModel, audio_path: str | Path) -> torch.Tensor:
    """Posterior means ``[C, latent_dim]`` of a file's chunks."""
    mels, _ = _chunks(loaded, audio_path)
    mu, _ = loaded.model.encode(mels.to(loaded.device))
    return mu


@torch.no_grad()
def check_sound(audio_path: str | Path, what: str = "", sample_rate: int = TARGET_SR) -> None:
    """Refuse a sound too short or too quiet to be worth reconstructing (a microphone that
    recorded a click, or nothing): shorter than ``MIN_SECONDS`` or peaking below
    ``SILENCE_DB`` dBFS. Any rate and channel count is fine (read as ``load_audio`` reads).

    Raises:
        DatasetError: naming ``what`` (default: the file's name), the measure and what to do.
    """
    import numpy as np

    name = what or Path(audio_path).name
    wave = load_audio(audio_path, sample_rate)
    seconds = wave.shape[0] / sample_rate
    if seconds < MIN_SECONDS:
        raise DatasetError(
            f"{name} is {seconds:.2f} s long: a sound needs at least {MIN_SECONDS:g} s. "
            "Record or choose a longer sound"
        )
    peak = float(np.max(np.abs(wave))) if wave.size else 0.0
    peak_db = 20 * np.log10(peak) if peak > 0 else -np.inf
    if peak_db < SILENCE_DB:
        shown = "-inf" if peak <= 0 else f"{peak_db:.0f}"
        raise DatasetError(
            f"{name} is silent (peak {shown} dBFS, below {SILENCE_DB:g} dBFS). If you recorded "
            "it, check that the microphone is connected, allowed in the browser and not muted"
        )


def reconstruct(loaded: LoadedModel, audio_path: str | Path, out_path: str | Path) -> Path:
    """Encode a file chunk by chunk, decode the means, and write the audio back out.

    Each chunk is rendered to its full length and the chunks are joined in place, so the WAV
    lines up with the original sample for sample (``evaluate`` scores exactly this audio).
    """
    mels, length = _chunks(loaded, audio_path)
    mu, _ = loaded.model.encode(mels.to(loaded.device))
    decoded = loaded.model.decode(mu, mels.shape[-1])[:, 0]
    size = loaded.config.chunk_samples
    audio = render_chunks(decoded, loaded.spectrogram, size)[: max(length, 1)]
    out = Path(out_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    return write_wav(out, audio, loaded.spectrogram.config.sample_rate)


@torch.no_grad()
def interpolate(
    loaded: LoadedModel,
    file_a: str | Path,
    file_b: str | Path,
    steps: int,
    out_dir: str | Path,
) -> list[Path]:
    """Decode ``steps`` points on the line between two files' latents (first chunk of each).

    The first file is ``interp_000.wav``, the second ``interp_{steps-1}.wav``.
    """
    if steps < 2:
        raise ValueError(f"steps={steps}: must be >= 2")
    za = encode_file(loaded, file_a)[0]
    zb = encode_file(loaded, file_b)[0]
    t = torch.linspace(0.0, 1.0, steps, device=za.device).unsqueeze(1)
    z = (1 - t) * za + t * zb
    waves = render_mels(loaded.model.decode(z), loaded.spectrogram)
    return _write_all(waves, Path(out_dir), "interp", loaded.spectrogram.config.sample_rate)
