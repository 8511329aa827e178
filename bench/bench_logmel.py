"""Log-mel throughput: smalltrain's AudioSpectrogram.log_mel against librosa, side by side.

60 s of 48 kHz audio (noise + tones), the default SpectrogramConfig (n_fft 2048, hop 512,
128 Slaney mels, -80 dB floor). librosa computes the same thing: melspectrogram with reflect
padding, power_to_db(ref=1.0, amin=1e-10, top_db=None), clamped at the floor. Runs alternate
between the two so that load from other processes hits both alike. Target: ratio >= 1.0.

    .venv/bin/python bench/bench_logmel.py [--runs 9] [--threads N]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from collections.abc import Callable

import numpy as np
import torch

from smalltrain.tasks.audio.data.spectrogram import AudioSpectrogram, SpectrogramConfig

SECONDS = 60


def make_signal(sr: int, seconds: int, seed: int = 0) -> np.ndarray:
    """Noise plus a few tones, float32, peak about 0.6."""
    rng = np.random.default_rng(seed)
    t = np.arange(sr * seconds) / sr
    tones = sum(a * np.sin(2 * np.pi * f * t) for f, a in ((110, 0.2), (440, 0.15), (3520, 0.1)))
    return (tones + 0.05 * rng.standard_normal(t.size)).astype(np.float32)


def timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=9, help="timed runs of each (median)")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: default)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    import librosa  # reference only; never imported by smalltrain itself

    cfg = SpectrogramConfig()
    spec = AudioSpectrogram(cfg)
    y = make_signal(cfg.sample_rate, SECONDS)
    wave = torch.from_numpy(y)

    def ours() -> np.ndarray:
        return spec.log_mel(wave)[0].numpy()

    def reference() -> np.ndarray:
        power = librosa.feature.melspectrogram(
            y=y,
            sr=cfg.sample_rate,
            n_fft=cfg.n_fft,
            hop_length=cfg.hop_length,
            n_mels=cfg.n_mels,
            pad_mode="reflect",
            htk=False,
            norm="slaney",
        )
        db = librosa.power_to_db(power, ref=1.0, amin=1e-10, top_db=None)
        return np.maximum(db, cfg.floor_db)

    max_diff = float(np.abs(ours() - reference()).max())  # also the warm-up
    ours()
    reference()
    t_ref, t_ours = [], []
    for _ in range(args.runs):
        t_ref.append(timed(reference))
        t_ours.append(timed(ours))
    med_ref, med_ours = statistics.median(t_ref), statistics.median(t_ours)
    ratio = med_ref / med_ours

    print(f"machine: {platform.machine()}, {os.cpu_count()} cpus, load {os.getloadavg()[0]:.2f}")
    threads = torch.get_num_threads()
    print(f"torch {torch.__version__} threads={threads}; librosa {librosa.__version__}")
    print(f"signal: {SECONDS} s at {cfg.sample_rate} Hz -> {cfg.frames(y.size)} frames x 128 mels")
    print(f"max |ours - librosa| = {max_diff:.2e} dB")
    print(
        f"librosa  median {med_ref * 1e3:7.1f} ms  (min {min(t_ref) * 1e3:.1f}, {args.runs} runs)"
    )
    print(
        f"ours     median {med_ours * 1e3:7.1f} ms  (min {min(t_ours) * 1e3:.1f}, {args.runs} runs)"
    )
    verdict = "PASS" if ratio >= 1.0 else "FAIL"
    print(f"ratio librosa/ours = {ratio:.2f}x  (target >= 1.0: {verdict})")
    print(
        f"| {torch.get_num_threads()} | {med_ref * 1e3:.1f} ms | {med_ours * 1e3:.1f} ms "
        f"| {ratio:.2f}x | {max_diff:.1e} dB |"
    )


if __name__ == "__main__":
    main()
