"""The tiny sound model the exploration tests share: 24 synthetic one-shots that differ in the
things the sliders name (pitch and brightness, decay, noise, level), and a tiny VAE trained on
them in a few seconds (``train_explore_model``; the ``explore_model`` fixture)."""

from __future__ import annotations

from pathlib import Path

#: 16 kHz, 32 mels, half-second chunks, 8 latent floats; a quarter of the files held out.
EXPLORE_CONFIG: dict[str, object] = {
    "epochs": 12,
    "batch_size": 8,
    "latent_dim": 8,
    "model_capacity": 0.25,
    "augmentation": False,
    "sample_rate": 16000,
    "n_fft": 512,
    "hop_length": 256,
    "n_mels": 32,
    "chunk_seconds": 0.5,
    "preview_every": 0,
    "checkpoint_every": 12,
    "device": "cpu",
    "val_fraction": 0.25,
    "early_stopping_patience": 0,
}


def write_one_shots(folder: Path, n: int = 24, seed: int = 0, sr: int = 16000) -> Path:
    """``n`` one-shots in two subfolders (``tonal/``, ``noisy/``): a decaying tone with a
    random pitch, decay, noise share and level each."""
    import numpy as np
    import soundfile as sf

    rng = np.random.default_rng(seed)
    t = np.arange(int(0.5 * sr)) / sr
    for i in range(n):
        noisy = i % 2 == 1
        f0 = rng.uniform(120, 2400)
        tone = sum(0.5**k * np.sin(2 * np.pi * f0 * (k + 1) * t) for k in range(3))
        noise = rng.standard_normal(t.size)
        mix = rng.uniform(0.5, 1.0) if noisy else rng.uniform(0.0, 0.15)
        wave = (1 - mix) * tone + mix * noise
        env = np.exp(-t / rng.uniform(0.03, 0.3)) * np.minimum(1.0, t / 0.003)
        level = 10 ** (rng.uniform(-24, -3) / 20)
        path = folder / ("noisy" if noisy else "tonal") / f"shot{i:02d}.wav"
        path.parent.mkdir(parents=True, exist_ok=True)
        sf.write(path, (level * wave * env / np.max(np.abs(wave))).astype(np.float32), sr)
    return folder


def train_explore_model(root: Path) -> Path:
    """Train ``EXPLORE_CONFIG`` on ``write_one_shots`` in ``root``; returns the exported model."""
    from smalltrain.tasks.audio.config import TrainingConfig
    from smalltrain.tasks.audio.training.train import train

    data = write_one_shots(root / "shots")
    result = train(TrainingConfig.from_dict(EXPLORE_CONFIG), data, root / "run")
    if result.status != "completed" or result.weights is None:
        raise RuntimeError(f"the exploration model did not complete: {result}")
    return root / "run" / "export" / "best.pt"
