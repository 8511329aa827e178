"""Preview audio written during training: fixed latent seeds and one validation chunk.

Beside the WAVs, ``previews.json`` says what the "recon" previews reconstruct: the validation
file (its name inside the dataset) and where in it the chunk starts, and names ``original.wav``
(that chunk as it is in the file) and ``reference.wav`` (the chunk through the previews'
inversion alone), so a listener can compare each reconstruction with its original.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

from smalltrain.engine.events import Event, PreviewReady
from smalltrain.engine.fsutil import atomic_write, atomic_write_text
from smalltrain.tasks.audio.data.spectrogram import AudioSpectrogram
from smalltrain.tasks.audio.model.model import ConvVAE
from smalltrain.tasks.audio.model.prior import LatentPrior


def write_wav(path: Path, wave: torch.Tensor | np.ndarray, sample_rate: int) -> Path:
    """Write a mono float waveform as a 16-bit WAV, atomically; peaks above 0 dBFS are scaled."""
    data = wave.detach().cpu().numpy() if isinstance(wave, torch.Tensor) else np.asarray(wave)
    data = data.astype(np.float32).reshape(-1)
    peak = float(np.max(np.abs(data))) if data.size else 0.0
    if peak > 0.999:
        data = data * (0.999 / peak)
    return atomic_write(
        path, lambda f: sf.write(f, data, sample_rate, format="WAV", subtype="PCM_16")
    )


@torch.no_grad()
def render_mels(model_output: torch.Tensor, spectrogram: AudioSpectrogram) -> torch.Tensor:
    """Normalized model mels ``[B, 1, n_mels, T]`` → waveforms ``[B, N]`` (on the CPU)."""
    # a gain model may go below the floor (0) where it means silence: render the floor there
    db = spectrogram.denormalize(model_output.detach().float().cpu()[:, 0].clamp_min(0.0))
    return spectrogram.to(torch.device("cpu")).to_audio(db)


@torch.no_grad()
def generate_preview(
    model: ConvVAE,
    spectrogram: AudioSpectrogram,
    out_dir: Path,
    epoch: int,
    latents: torch.Tensor,
    reference: torch.Tensor | None = None,
) -> list[Path]:
    """Decode fixed latents (the same z every time) and reconstruct one validation chunk.

    Files are 48 kHz WAVs named by epoch: ``epoch_0005_sample_0.wav``…, ``epoch_0005_recon.wav``
    and, once, ``reference.wav`` (the validation chunk itself, through the same inversion).

    Args:
        latents: ``[N, latent_dim]`` fixed latent vectors.
        reference: a normalized mel ``[1, n_mels, T]`` from the validation set, or None.
    """
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    sr = spectrogram.config.sample_rate
    out_dir.mkdir(parents=True, exist_ok=True)
    paths: list[Path] = []
    try:
        waves = render_mels(model.decode(latents.to(device)), spectrogram)
        for i, wave in enumerate(waves):
            paths.append(write_wav(out_dir / f"epoch_{epoch + 1:04d}_sample_{i}.wav", wave, sr))
        if reference is not None:
            x = reference.unsqueeze(0).to(device)
            mu, _ = model.encode(x)
            recon = render_mels(model.decode(mu, x.shape[-1]), spectrogram)[0]
            paths.append(write_wav(out_dir / f"epoch_{epoch + 1:04d}_recon.wav", recon, sr))
            ref_path = out_dir / "reference.wav"
            if not ref_path.exists():
                write_wav(ref_path, render_mels(x, spectrogram)[0], sr)
    finally:
        model.train(was_training)
    return paths


#: What the "recon" previews reconstruct (see the module docstring).
PREVIEW_INFO = "previews.json"
ORIGINAL = "original.wav"


@dataclass(frozen=True, eq=False)
class ReconSource:
    """Where the reconstructed validation chunk comes from: ``file`` (its path inside the
    dataset), ``start_s`` and ``seconds`` in it, and the chunk's clean waveform."""

    file: str
    start_s: float
    seconds: float
    wave: torch.Tensor


def write_preview_info(out_dir: Path, source: ReconSource, sample_rate: int) -> None:
    """Write ``original.wav`` (the chunk as it is in its file) and ``previews.json``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    write_wav(out_dir / ORIGINAL, source.wave, sample_rate)
    info = {
        "recon": {
            "file": source.file,
            "start_s": round(source.start_s, 3),
            "seconds": round(source.seconds, 3),
            "original": ORIGINAL,
            "reference": "reference.wav",
        }
    }
    atomic_write_text(out_dir / PREVIEW_INFO, json.dumps(info, indent=1))


class PreviewRenderer:
    """Holds the fixed latents and the validation chunk of one run; renders on demand."""

    def __init__(
        self,
        spectrogram: AudioSpectrogram,
        val_items: Sequence[torch.Tensor],
        out_dir: Path,
        count: int,
        seed: int,
        source: ReconSource | None = None,
    ) -> None:
        self.spectrogram = spectrogram
        self.out_dir = out_dir
        self.count = count
        self.seed = seed
        self.reference = val_items[0] if len(val_items) else None
        self.source = source if self.reference is not None else None
        self._latents: torch.Tensor | None = None

    def latents(self, latent_dim: int, prior: LatentPrior | None = None) -> torch.Tensor:
        """The samples' latents: the run's fixed noise, through ``prior`` when given."""
        # A private generator: previews never draw from the training RNG stream.
        if self._latents is None or self._latents.shape[1] != latent_dim:
            gen = torch.Generator().manual_seed(self.seed + 7919)
            self._latents = torch.randn(self.count, latent_dim, generator=gen)
        if prior is not None and prior.dim == latent_dim:
            return prior.mean + self._latents @ prior.root.T
        return self._latents

    def render(
        self,
        model: ConvVAE,
        epoch: int,
        emit: Callable[[Event], None],
        prior: LatentPrior | None = None,
    ) -> list[Path]:
        """Write this epoch's samples (and the reconstruction of the validation chunk).

        The samples decode the same fixed noise every epoch, through ``prior`` when given (the
        Gaussian of the model's current training codes, what ``generate`` would draw from now),
        else as N(0, I) latents.
        """
        if self.count <= 0:
            return []
        latents = self.latents(model.latent_dim, prior)
        if self.source is not None and not (self.out_dir / PREVIEW_INFO).exists():
            write_preview_info(self.out_dir, self.source, self.spectrogram.config.sample_rate)
        paths = generate_preview(
            model, self.spectrogram, self.out_dir, epoch, latents, self.reference
        )
        emit(PreviewReady(epoch=epoch, paths=tuple(str(p) for p in paths)))
        return paths
