"""Exploration speed: a slider move rendered (decode + Griffin-Lim + WAV), per second of audio,
beside plain generation; and the map of 200 files (encode, descriptors, PCA, sliders fitted and
checked on held-out files). Targets: < 150 ms per second of audio; the map of 200 files < 5 s.

A model of the default audio settings (48 kHz, 1 s chunks) is trained for 2 epochs on 24
one-shots, then its recorded files are replaced by 200 (160 training, 40 held out) so that
``explore`` maps 200 files.

    PYTHONPATH=src .venv/bin/python bench/bench_explore.py [--runs 10]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.support.explore import write_one_shots  # noqa: E402

from smalltrain.tasks.audio.config import TrainingConfig  # noqa: E402
from smalltrain.tasks.audio.training.train import train  # noqa: E402
from smalltrain.tasks.audio.use.explore import explore, make_sound  # noqa: E402
from smalltrain.tasks.audio.use.generate import load_model, sample  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=10)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="bench-explore-"))
    files = sorted(write_one_shots(root / "all", n=200, sr=48000).rglob("*.wav"))
    small = root / "small"
    for f in files[:24]:
        (small / f.parent.name).mkdir(parents=True, exist_ok=True)
        (small / f.parent.name / f.name).symlink_to(f)
    config = TrainingConfig(epochs=2, device="cpu", preview_every=0, augmentation=False)
    started = time.perf_counter()
    result = train(config, small, root / "run")
    print(f"trained in {time.perf_counter() - started:.1f} s: {result.status}")
    loaded = load_model(root / "run")
    entries = [{"path": str(f), "rel": f"{f.parent.name}/{f.name}"} for f in files]
    loaded.checkpoint["train_files"], loaded.checkpoint["val_files"] = entries[:160], entries[160:]

    maps = []
    for _ in range(3):
        t = time.perf_counter()
        exploration = explore(loaded)
        maps.append(time.perf_counter() - t)
    chunk = loaded.config.chunk_seconds
    slides, plain = [], []
    out = root / "out"
    for i in range(args.runs):
        t = time.perf_counter()
        make_sound(exploration, out / "s.wav", like=i, slides=[("brighter", 1.0 + 0.1 * i)])
        slides.append((time.perf_counter() - t) / chunk)
        t = time.perf_counter()
        sample(loaded, 1, out, seed=i)
        plain.append((time.perf_counter() - t) / chunk)
    threads = __import__("torch").get_num_threads()
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
          f"load average {os.getloadavg()[0]:.2f}, torch threads {threads}")  # fmt: skip
    rate, dim = loaded.config.sample_rate, loaded.model.latent_dim
    print(f"model: {rate} Hz, {chunk:g} s chunks, {dim} latent floats")
    print(f"map of {len(exploration.points)} files: " + ", ".join(f"{m:.2f}" for m in maps) + " s")
    print(f"slider move: median {1000 * statistics.median(slides):.0f} ms per second of audio "
          f"(min {1000 * min(slides):.0f}, max {1000 * max(slides):.0f}); plain generate: median "
          f"{1000 * statistics.median(plain):.0f} ms/s")  # fmt: skip
    for e in exploration.effects:
        print(f"  {e.name}: {e.relative:+.2f} of its spread per unit, named way on {e.agree:.0%}")


if __name__ == "__main__":
    main()
