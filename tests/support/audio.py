"""A tiny real audio job for the engine's end-to-end tests: synthetic sounds and overrides
that make the real audio task train in seconds on a CPU."""

from __future__ import annotations

from pathlib import Path

from smalltrain.tasks.audio.synth import make_sound_folder

#: Overrides of the "tiny" preset: 3 epochs, a checkpoint every epoch, a very small model.
AUDIO_TINY: dict[str, object] = {
    "epochs": 3,
    "batch_size": 4,
    "model_width": 8,
    "model_capacity": 0.5,
    "latent_dim": 16,
    "kl_warmup_epochs": 1,
    "checkpoint_every": 1,
    "preview_every": 0,
    "augmentation_expansion": 1,
    "chunk_hop_seconds": 0.5,
}


def make_audio_dataset(folder: Path) -> Path:
    """Write six short synthetic sounds (mixed rates, channels, WAV and FLAC) into ``folder``."""
    make_sound_folder(folder, n_files=6, seed=1)
    return folder


def cli_sets() -> list[str]:
    """``AUDIO_TINY`` as CLI arguments: ``--set key=value ...``."""
    out: list[str] = []
    for key, value in AUDIO_TINY.items():
        out += ["--set", f"{key}={value}"]
    return out
