"""A tiny real audio job for the engine's end-to-end tests: synthetic sounds and overrides
that make the real audio task train in seconds on a CPU; and the one trained audio run shared
by the suite (``train_tiny_run``, the ``trained_audio`` fixture of ``tests/conftest.py``)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from smalltrain.tasks.audio.data.synth import make_sound_folder

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


#: The rate of the shared trained run and of the tone folders written for it.
TONE_SR = 16000


def write_tones(folder: Path, n: int, seed: int, sr: int = TONE_SR) -> Path:
    """Write ``n`` decaying noisy sine tones (0.4 to 2.2 s, ``tone<i>.wav``) into ``folder``."""
    import numpy as np
    import soundfile as sf

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for i in range(n):
        t = np.arange(int(sr * rng.uniform(0.4, 2.2))) / sr
        wave = np.sin(2 * np.pi * rng.uniform(150, 900) * t) + 0.1 * rng.normal(size=t.size)
        sf.write(folder / f"tone{i}.wav", (0.3 * wave * np.exp(-t)).astype(np.float32), sr)
    return folder


#: The shared run's settings: 2 epochs of a tiny VAE at 16 kHz, 32 mels, 8 latent floats, a
#: checkpoint every epoch, a third of the files held out for validation.
TRAINED_CONFIG: dict[str, object] = {
    "epochs": 2,
    "batch_size": 4,
    "latent_dim": 8,
    "model_capacity": 0.125,
    "augmentation": False,
    "sample_rate": TONE_SR,
    "n_fft": 512,
    "hop_length": 256,
    "n_mels": 32,
    "preview_every": 0,
    "checkpoint_every": 1,
    "device": "cpu",
    "val_fraction": 0.34,
}


@dataclass(frozen=True)
class TrainedAudio:
    """A finished, exported audio run: ``run`` holds ``export/best.pt`` (with its latent and
    sequence priors) and ``checkpoints/``; ``data`` is the folder it was trained on."""

    run: Path
    data: Path

    @property
    def model(self) -> Path:
        """The exported model file."""
        return self.run / "export" / "best.pt"

    def digest(self) -> dict[str, tuple[int, int]]:
        """Size and modification time of every file of the run and its data, to prove that
        nothing wrote into them."""
        files = [p for root in (self.run, self.data) for p in sorted(root.rglob("*"))]
        return {str(p): (p.stat().st_size, p.stat().st_mtime_ns) for p in files if p.is_file()}


def train_tiny_run(root: Path) -> TrainedAudio:
    """Train ``TRAINED_CONFIG`` on 6 tones with the Python API (``train``), in ``root``: the
    run is ``root/run``, the data ``root/train_data``. A few seconds on a CPU."""
    from smalltrain.tasks.audio.config import TrainingConfig
    from smalltrain.tasks.audio.training.train import train

    data = write_tones(root / "train_data", 6, seed=0)
    result = train(TrainingConfig.from_dict(TRAINED_CONFIG), data, root / "run")
    if result.status != "completed" or result.weights is None:
        raise RuntimeError(f"the shared audio run did not complete: {result}")
    return TrainedAudio(run=root / "run", data=data)
