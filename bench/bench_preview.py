"""Preview cost: render 1 s of log-mel (94 frames) to a WAV in memory, and compare with librosa.

Ours: AudioSpectrogram.to_audio (NNLS mel -> linear, 32 fast Griffin-Lim iterations started
from the phase-gradient estimate, PGHI) plus a 16-bit WAV written by soundfile into a BytesIO.
Target: median <= 0.1 s per second of audio, also for a 10 s sound (``generate --duration``).
The starting phase is compared too (PGHI against random) on a drum-like signal: time and the
multi-resolution STFT distance of the rendered audio from the original (what the ear hears).

Reference: librosa.feature.inverse.mel_to_stft (its NNLS, L-BFGS-B) + librosa.griffinlim
(32 iterations, momentum 0.99, reflect padding), same mel input. Quality for both is the
spectral convergence of the re-analysed mel magnitude: ||sqrt(P) - sqrt(P_out)|| / ||sqrt(P)||
(lower is better), and the mean absolute log-mel error in dB.

    .venv/bin/python bench/bench_preview.py [--runs 9] [--threads N]
"""

from __future__ import annotations

import argparse
import io
import os
import platform
import statistics
import time
from collections.abc import Callable

import soundfile as sf
import torch

from smalltrain.tasks.audio.data.spectrogram import AudioSpectrogram, SpectrogramConfig
from smalltrain.tasks.audio.quality.waveform import mrstft_distance

TARGET_S = 0.1


def make_signal(sr: int, seed: int = 0) -> torch.Tensor:
    """1 s: a 220 Hz tone with harmonics, a 1.5 kHz tone in the first half, a noise burst."""
    gen = torch.Generator().manual_seed(seed)
    t = torch.arange(sr, dtype=torch.float64) / sr
    tone = sum(0.3 / k * torch.sin(2 * torch.pi * 220 * k * t) for k in range(1, 5))
    lead = 0.15 * torch.sin(2 * torch.pi * 1500 * t) * (t < 0.5)
    burst = 0.1 * torch.randn(sr, generator=gen, dtype=torch.float64) * torch.exp(-20 * t)
    return (tone + lead + burst).float()


def make_hits(sr: int, seconds: float, seed: int = 0) -> torch.Tensor:
    """Drum-like hits every 0.25 s: a pitched body and a noise snap, decaying fast."""
    gen = torch.Generator().manual_seed(seed)
    out = torch.zeros(int(sr * seconds))
    t = torch.arange(int(0.25 * sr)) / sr
    for i, start in enumerate(range(0, out.shape[0] - t.shape[0] + 1, t.shape[0])):
        body = torch.sin(2 * torch.pi * (60 + 40 * (i % 3)) * t) * torch.exp(-t * 30)
        snap = torch.randn(t.shape[0], generator=gen) * torch.exp(-t * 120) * 0.3
        out[start : start + t.shape[0]] = 0.5 * (body + snap)
    return out


def compare_starts(spec: AudioSpectrogram, runs: int) -> None:
    """PGHI against random starting phase: time and multi-resolution STFT SC (drum hits)."""
    sr = spec.config.sample_rate
    print(
        "starting phase (1 s of drum hits; multi-resolution STFT SC of the audio, lower is better):"
    )
    print("| start | iterations | time | wave SC |")
    wave = make_hits(sr, 1.0)
    db = spec.log_mel(wave)
    for init in ("random", "pghi"):
        for n_iter in (16, 32, 64):

            def render(init: str = init, n_iter: int = n_iter) -> torch.Tensor:
                return spec.to_audio(db, n_iter=n_iter, length=wave.shape[0], init=init)

            t = statistics.median(timed(render, runs))
            sc = mrstft_distance(render()[0], wave).sc
            print(f"| {init} | {n_iter} | {t * 1e3:.1f} ms | {sc:.3f} |")
    long = make_hits(sr, 10.0)
    db = spec.log_mel(long)
    t = statistics.median(timed(lambda: spec.to_audio(db, length=long.shape[0]), max(3, runs // 3)))
    verdict = "PASS" if t / 10 <= TARGET_S else "FAIL"
    print(
        f"10 s of audio (PGHI, 32 iterations): {t:.3f} s = {t / 10 * 1e3:.1f} ms per second "
        f"of audio, target <= {TARGET_S * 1e3:.0f} ms: {verdict}"
    )


def timed(fn: Callable[[], object], runs: int) -> list[float]:
    fn()  # warm-up
    out = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        out.append(time.perf_counter() - start)
    return out


def quality(spec: AudioSpectrogram, db: torch.Tensor, audio: torch.Tensor) -> tuple[float, float]:
    """(spectral convergence of the mel magnitude, mean |log-mel error| in dB)."""
    target = spec.db_to_power(db).sqrt()
    got = spec.mel_power(audio).sqrt()
    sc = (torch.linalg.norm(target - got) / torch.linalg.norm(target)).item()
    return sc, (spec.log_mel(audio) - db).abs().mean().item()


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
    sr = cfg.sample_rate
    db = spec.log_mel(make_signal(sr))  # [1, 128, 94]

    def ours(nnls_iter: int | None = None) -> torch.Tensor:
        kw = {} if nnls_iter is None else {"nnls_iter": nnls_iter}
        audio = spec.to_audio(db, n_iter=32, length=sr, **kw)
        buf = io.BytesIO()
        sf.write(buf, audio[0].numpy(), sr, format="WAV", subtype="PCM_16")
        return audio

    mel_np = spec.db_to_power(db)[0].numpy()

    def reference() -> torch.Tensor:
        mag = librosa.feature.inverse.mel_to_stft(
            mel_np, sr=sr, n_fft=cfg.n_fft, power=2.0, htk=False, norm="slaney"
        )
        audio = librosa.griffinlim(
            mag,
            n_iter=32,
            hop_length=cfg.hop_length,
            n_fft=cfg.n_fft,
            length=sr,
            pad_mode="reflect",
            momentum=0.99,
            random_state=0,
        )
        buf = io.BytesIO()
        sf.write(buf, audio, sr, format="WAV", subtype="PCM_16")
        return torch.from_numpy(audio)[None]

    t_ours = timed(ours, args.runs)
    t_ref = timed(reference, args.runs)
    med_ours, med_ref = statistics.median(t_ours), statistics.median(t_ref)
    sc_ours, l1_ours = quality(spec, db, ours())
    sc_ref, l1_ref = quality(spec, db, reference())

    print(f"machine: {platform.machine()}, {os.cpu_count()} cpus, load {os.getloadavg()[0]:.2f}")
    threads = torch.get_num_threads()
    print(f"torch {torch.__version__} threads={threads}; librosa {librosa.__version__}")
    print(f"input: 1 s log-mel {tuple(db.shape)}, 32 Griffin-Lim iterations, WAV to BytesIO")
    verdict = "PASS" if med_ours <= TARGET_S else "FAIL"
    print(
        f"ours     median {med_ours:.4f} s (min {min(t_ours):.4f})  target <= {TARGET_S}: {verdict}"
    )
    print(f"librosa  median {med_ref:.4f} s (min {min(t_ref):.4f})")
    print(f"time ratio librosa/ours = {med_ref / med_ours:.1f}x")
    print(
        f"spectral convergence: ours {sc_ours:.3f} ({l1_ours:.2f} dB), librosa {sc_ref:.3f} "
        f"({l1_ref:.2f} dB)"
    )
    compare_starts(spec, args.runs)
    print("NNLS iterations (ours, same 32 GL iterations):")
    for n in (0, 8, 16, 32):
        t = statistics.median(timed(lambda n=n: ours(n), args.runs))
        sc, l1 = quality(spec, db, ours(n))
        print(f"| {n} | {t * 1e3:.1f} ms | {sc:.3f} | {l1:.2f} dB |")


if __name__ == "__main__":
    main()
