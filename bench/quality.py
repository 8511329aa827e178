"""Audio quality on held-out sounds: the auto preset, a naive preset and PCA of the same size.

Sets (each split by file, 3/4 train and 1/4 held out, with a fixed seed):

- ``sonic_pi``: ``../shared/data/audio/sonic_pi_cc0`` (165 real samples, skipped if absent);
- ``onset``: synthetic drum-like one-shots (kicks, snares, hats, toms), 0.15-0.9 s each;
- ``continuous``: synthetic held tones with vibrato, coloured noise and speech-like formant
  sweeps (a pulse train through three moving resonators), 2-4 s each.

For each set it trains, through the public API (``inspect_audio``, ``get_adaptive_config``,
``train``) and scores with ``evaluate`` on the held-out files:

- auto: the preset and material-chosen augmentation ``get_adaptive_config`` picks, best
  checkpoint by the preset's monitor;
- naive: the same model size, batch, learning rate and epochs, but reconstruction loss only
  (L1 on normalized dB, ``sc_weight=0``, ``kl_beta_max=0``), no augmentation, no early stop,
  and the *last* checkpoint (fixed epochs);
- PCA with as many components as the model has latent floats (capped by training chunks - 1),
  fitted on the auto run's training split (``evaluate``'s baseline).

Reported: held-out spectral convergence (linear mel magnitude), mel L1 (dB) and the Fréchet
distance of ``--generate`` prior samples to the held-out folder (per-frame log-mel statistics).

Each run uses its preset's epochs (``--epochs`` overrides them for a quick look); previews are
off. On a quiet 2-vCPU VM the whole script takes about 9 minutes. Usage::

    .venv/bin/python bench/quality.py [--sets sonic_pi onset continuous] [--epochs N]
        [--device cpu] [--out DIR] [--json results.json]
"""

from __future__ import annotations

import argparse
import json
import math
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf
import soxr

from smalltrain.tasks.audio.evaluate import evaluate
from smalltrain.tasks.audio.presets import get_adaptive_config
from smalltrain.tasks.audio.synth import drum_hit
from smalltrain.tasks.audio.task import inspect_audio
from smalltrain.tasks.audio.train import train

SR = 48000
SONIC_PI = Path(__file__).resolve().parents[2] / "shared" / "data" / "audio" / "sonic_pi_cc0"
SEED = 0

# --- synthetic material -------------------------------------------------------------------------


def _hit(rng: np.random.Generator) -> np.ndarray:
    """One drum-like one-shot starting at sample 0 (the demo's material too)."""
    return drum_hit(rng, SR)


def _formant_sweep(rng: np.random.Generator, n_out: int) -> np.ndarray:
    """Speech-like sound: a pulse train through three moving formant resonators.

    Made at 16 kHz (the per-sample resonator loop is Python) and resampled to 48 kHz.
    """
    sr = 16000
    n = n_out // 3
    t = np.arange(n) / sr
    f0 = rng.uniform(100, 220) * (1 + 0.05 * np.sin(2 * np.pi * rng.uniform(0.3, 1.0) * t))
    pulses = np.diff(np.floor(np.cumsum(f0) / sr), prepend=0.0)
    out = np.zeros(n)
    for base, spread, bw in ((500, 300, 80), (1500, 700, 120), (2500, 400, 160)):
        fc = base + spread * np.sin(2 * np.pi * rng.uniform(1.5, 4.0) * t + rng.uniform(0, 6))
        r = np.exp(-np.pi * bw / sr)
        a1, a2 = -2 * r * np.cos(2 * np.pi * fc / sr), r * r
        y1 = y2 = 0.0
        y = np.empty(n)
        for i in range(n):  # a two-pole resonator with a time-varying centre
            y0 = pulses[i] - a1[i] * y1 - a2 * y2
            y[i], y2, y1 = y0, y1, y0
        out += y / (np.abs(y).max() + 1e-9)
    syllables = 0.6 + 0.4 * np.sin(2 * np.pi * rng.uniform(3, 5) * t) ** 2
    up = np.asarray(soxr.resample(out * syllables, sr, SR), dtype=np.float64)
    return np.pad(up, (0, max(0, n_out - up.shape[0])))[:n_out]


def _sustained(rng: np.random.Generator) -> np.ndarray:
    """A held tone, coloured noise or a formant sweep, 2-4 s, with soft edges."""
    kind = rng.choice(["tone", "noise", "speech"])
    n = int(rng.uniform(2.0, 4.0) * SR)
    t = np.arange(n) / SR
    if kind == "tone":
        f = rng.uniform(110, 660) * (1 + 0.01 * np.sin(2 * np.pi * 5 * t))
        phase = 2 * np.pi * np.cumsum(f) / SR
        wave = sum(np.sin(k * phase) / k for k in range(1, 6))
    elif kind == "noise":
        spec = np.fft.rfft(rng.normal(size=n))
        freqs = np.fft.rfftfreq(n, 1 / SR)
        centre = rng.uniform(300, 6000)
        spec *= 1 / (1 + (freqs / rng.uniform(200, 2000))) + np.exp(
            -(((freqs - centre) / 500) ** 2)
        )
        wave = np.fft.irfft(spec, n)
    else:
        wave = _formant_sweep(rng, n)
    edges = np.minimum(1.0, np.minimum(t, t[-1] - t) / 0.05)
    wave = np.asarray(wave) * edges
    return (0.5 * wave / (np.abs(wave).max() + 1e-9)).astype(np.float32)


# --- sets ---------------------------------------------------------------------------------------


def _split_names(names: list[str], seed: int) -> tuple[list[str], list[str]]:
    order = np.random.default_rng(seed).permutation(len(names))
    n_held = max(1, round(len(names) / 4))
    held = {names[i] for i in order[:n_held]}
    return [n for n in names if n not in held], [n for n in names if n in held]


def _synthetic_set(root: Path, make: Callable[[np.random.Generator], np.ndarray], n: int) -> None:
    rng = np.random.default_rng(SEED)
    names = [f"s{i:03d}.wav" for i in range(n)]
    train_names, _ = _split_names(names, SEED)
    for name in names:
        sub = "train" if name in train_names else "held"
        (root / sub).mkdir(parents=True, exist_ok=True)
        sf.write(root / sub / name, make(rng), SR, subtype="FLOAT")


def _sonic_pi_set(root: Path) -> None:
    names = sorted(p.name for p in SONIC_PI.glob("*.flac"))
    train_names, _ = _split_names(names, SEED)
    for name in names:
        sub = "train" if name in train_names else "held"
        (root / sub).mkdir(parents=True, exist_ok=True)
        (root / sub / name).symlink_to(SONIC_PI / name)  # nothing is copied


ONESHOT_PREFIXES = ("bd_", "sn_", "drum_", "elec_", "perc_", "tabla_")
# velocity layers: (name, gain dB, share of the one-pole low-pass mixed in: softer is darker)
VELOCITY_LAYERS = (("hard", 0.0, 0.0), ("medium", -15.0, 0.35), ("soft", -30.0, 0.7))


def _darken(wave: np.ndarray, sr: int, amount: float, cutoff_hz: float = 2500.0) -> np.ndarray:
    """Mix ``amount`` of a one-pole low-pass into ``wave`` (softer hits are duller)."""
    if amount <= 0:
        return wave
    from scipy.signal import lfilter  # scipy comes with librosa (the bench extra)

    a = math.exp(-2 * math.pi * cutoff_hz / sr)
    low = lfilter([1 - a], [1, -a], wave, axis=0)
    return (1 - amount) * wave + amount * low


def _oneshot_set(root: Path) -> None:
    """The sonic_pi one-shots (bass drums, snares, drums, electronic hits, percussion, tabla) in
    three velocity layers 0, -15 and -30 dB, the softer ones darker, split by *source* file so
    the layers of one hit never sit on both sides. Files keep their native 44.1 kHz and
    channels (the loader resamples and mixes down as for any user folder)."""
    names = sorted(
        p.name for p in SONIC_PI.glob("*.flac") if p.name.startswith(ONESHOT_PREFIXES)
    )
    train_names, _ = _split_names(names, SEED)
    for name in names:
        sub = "train" if name in train_names else "held"
        (root / sub).mkdir(parents=True, exist_ok=True)
        wave, sr = sf.read(SONIC_PI / name, dtype="float64", always_2d=True)
        stem = name.removesuffix(".flac")
        for layer, gain_db, dark in VELOCITY_LAYERS:
            out = _darken(wave, sr, dark) * 10 ** (gain_db / 20)
            sf.write(root / sub / f"{stem}_{layer}.wav", out, sr, subtype="FLOAT")


def build_set(name: str, root: Path) -> Path:
    """Write (or link) the set's train/ and held/ folders under ``root / name``."""
    target = root / name
    if name == "sonic_pi":
        _sonic_pi_set(target)
    elif name == "oneshot":
        _oneshot_set(target)
    elif name == "onset":
        _synthetic_set(target, _hit, 48)
    elif name == "continuous":
        _synthetic_set(target, _sustained, 24)
    else:
        raise ValueError(f"unknown set {name!r}")
    return target


# --- runs ---------------------------------------------------------------------------------------


def _scores(result: dict[str, Any], key: str) -> dict[str, float]:
    gen = result.get("generation", {})
    frechet = gen.get("frechet_pca" if key == "baseline_pca" else "frechet_model", math.nan)
    return {"sc": result[key]["sc"], "mel_l1_db": result[key]["mel_l1_db"], "frechet": frechet}


def run_set(
    name: str, root: Path, epochs: int | None, device: str, n_generate: int
) -> dict[str, Any]:
    """Train auto and naive on ``root/train``, score both and PCA on ``root/held``."""
    report = inspect_audio(root / "train")
    common: dict[str, Any] = {"preview_every": 0}
    if epochs:
        common["epochs"] = epochs
    auto_cfg = get_adaptive_config(report, device=device, **common)
    epochs = auto_cfg.epochs
    naive_cfg = get_adaptive_config(
        report, device=device, **common, sc_weight=0.0, kl_beta_max=0.0, augmentation=False,
        early_stopping_patience=0, time_shift_max_s=0.0,
    )  # fmt: skip
    out: dict[str, Any] = {
        "set": name,
        "train": report.snapshot(),
        "material": getattr(report, "material_summary", report.material),
        "preset": auto_cfg.preset,
        "epochs": epochs,
        "auto_config": auto_cfg.describe(),
    }
    for label, cfg in (("auto", auto_cfg), ("naive", naive_cfg)):
        t0 = time.perf_counter()
        res = train(cfg, report, root / f"run_{label}")
        elapsed = time.perf_counter() - t0
        model_ref = res.best_checkpoint if label == "auto" else res.last_checkpoint
        ev = evaluate(model_ref, root / "held", generate=n_generate, seed=SEED).to_json_dict()
        out[label] = {
            **_scores(ev, "model"),
            "train_s": elapsed,
            "epochs_run": res.epochs_completed,
        }
        if label == "auto":
            out["pca"] = {**_scores(ev, "baseline_pca"), "k": ev["baseline_pca"]["k"]}
            out["held_chunks"] = ev["chunks"]
            out["latent_floats"] = ev["model"]["latent_floats"]
    return out


def markdown(results: list[dict[str, Any]]) -> str:
    """The results as a markdown table (lower is better everywhere)."""
    lines = [
        "| set | material (train split) | preset, epochs | held-out chunks | model | "
        "held-out SC | mel L1 dB | Fréchet (gen.) | train s |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        for label in ("auto", "naive", "pca"):
            s = r[label]
            size = (
                f"PCA-{s['k']}" if label == "pca" else f"{label} VAE ({r['latent_floats']} floats)"
            )
            train_s = f"{s['train_s']:.0f}" if "train_s" in s else "-"
            lines.append(
                f"| {r['set']} | {r['material']} | {r['preset']}, {r['epochs']} | "
                f"{r['held_chunks']} | {size} | {s['sc']:.3f} | {s['mel_l1_db']:.2f} | "
                f"{s['frechet']:.0f} | {train_s} |"
            )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sets", nargs="+", default=["sonic_pi", "onset", "continuous"])
    parser.add_argument(
        "--epochs", type=int, default=None, help="epochs for every set (default: the preset's)"
    )
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--generate", type=int, default=16, help="samples for Fréchet")
    parser.add_argument("--out", type=Path, default=None, help="work folder (default: temp)")
    parser.add_argument("--json", type=Path, default=None, help="write the results here")
    args = parser.parse_args(argv)
    work = args.out or Path(tempfile.mkdtemp(prefix="smalltrain-quality-"))
    results = []
    t0 = time.perf_counter()
    for name in args.sets:
        if name == "sonic_pi" and not SONIC_PI.is_dir():
            print(f"skipping sonic_pi: {SONIC_PI} is absent")
            continue
        target = build_set(name, work)
        results.append(run_set(name, target, args.epochs, args.device, args.generate))
        print(json.dumps(results[-1], indent=1, default=str), flush=True)
    print(markdown(results))
    print(f"total {time.perf_counter() - t0:.0f} s; work folder {work}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=1, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
