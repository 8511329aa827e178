"""Audio training engine benchmarks, each side by side with a baseline in one run.

    .venv/bin/python bench/bench_engine.py            # all of them
    .venv/bin/python bench/bench_engine.py overhead   # one of: overhead data scaling cancel
    .venv/bin/python bench/bench_engine.py overhead --device cuda   # the same on a GPU

- overhead: our ``train_epoch`` (NaN checks, clipping, metrics events, cancel checks) against a
  bare forward/backward/step loop, same model, same batches. Ratio = our throughput / bare.
  With ``--device cuda`` both run on the GPU (batches already there; the clock stops after
  ``torch.cuda.synchronize()``); ours then uses fused AdamW and reads metrics every
  ``metrics_sync_every`` steps, the bare loop AdamW's default.
- data: fraction of step time spent waiting for data, augmentation on, real DataLoader.
- scaling: epoch time and peak RSS at 1x, 2x, 4x, 8x dataset size (each in a fresh process),
  plus one epoch on 30 minutes of audio.
- cancel: time from ``runner.cancel()`` to the cancel checkpoint on disk.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

from smalltrain.engine.context import CancelToken
from smalltrain.engine.events import CheckpointSaved, Event, MetricsHistory, StepMetrics
from smalltrain.engine.runner import TrainingRunner
from smalltrain.tasks.audio.config import TrainingConfig
from smalltrain.tasks.audio.data.synth import make_sound_folder
from smalltrain.tasks.audio.model.losses import vae_loss
from smalltrain.tasks.audio.model.model import ConvVAE
from smalltrain.tasks.audio.task import AudioTask
from smalltrain.tasks.audio.training.epoch import train_epoch
from smalltrain.tasks.audio.training.run import build_state
from smalltrain.tasks.audio.training.train import train

# the small preset's model and batch (temporal latent 60 floats, width 128, batch 8)
CFG = TrainingConfig(device="cpu", batch_size=8, model_width=128, latent_dim=60)


def _batches(n: int, cfg: TrainingConfig) -> list[torch.Tensor]:
    gen = torch.Generator().manual_seed(0)
    return [
        torch.rand(cfg.batch_size, 1, cfg.n_mels, cfg.n_frames, generator=gen).to(cfg.device)
        for _ in range(n)
    ]


def _sync(cfg: TrainingConfig) -> None:
    if cfg.device.startswith("cuda"):
        torch.cuda.synchronize()


def _bare(batches: list[torch.Tensor], cfg: TrainingConfig, foreach: bool | None = None) -> float:
    """A bare loop; ``foreach=None`` is AdamW as a user writes it, True is the runs' choice."""
    torch.manual_seed(0)
    model = ConvVAE(**cfg.model_kwargs()).to(cfg.device)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.learning_rate, foreach=foreach)
    _sync(cfg)
    t0 = time.perf_counter()
    for x in batches:
        opt.zero_grad(set_to_none=True)
        x_hat, mu, logvar = model(x)
        loss = vae_loss(x_hat, x, mu, logvar, 1e-4, sc_weight=cfg.sc_weight)["loss"]
        loss.backward()
        opt.step()
    _sync(cfg)
    return time.perf_counter() - t0


def _ours(batches: list[torch.Tensor], cfg: TrainingConfig) -> float:
    # the model, optimizer and schedules exactly as a training run builds them
    state = build_state(cfg, torch.device(cfg.device), len(batches))
    history = MetricsHistory()
    history.subscribe(lambda e: None)  # a live subscriber, as a progress bar would be
    _sync(cfg)
    t0 = time.perf_counter()
    train_epoch(
        state, batches, steps_per_epoch=len(batches), emit=history.emit, cancel=CancelToken()
    )
    _sync(cfg)
    return time.perf_counter() - t0


def bench_overhead(repeats: int = 9, n_batches: int = 60, device: str = "cpu") -> dict[str, float]:
    cfg = dataclasses.replace(CFG, device=device)
    batches = _batches(n_batches, cfg)
    _bare(batches[:3], cfg), _ours(batches[:3], cfg)  # warm-up
    bare, same_opt, ours = [], [], []
    for _ in range(repeats):  # interleaved, so machine load hits all alike
        bare.append(_bare(batches, cfg))
        same_opt.append(_bare(batches, cfg, foreach=True))
        ours.append(_ours(batches, cfg))
    b, f, o = statistics.median(bare), statistics.median(same_opt), statistics.median(ours)
    return {
        "bare_s": b,
        "bare_foreach_s": f,
        "ours_s": o,
        "throughput_ratio": b / o,
        "engine_ratio": f / o,
    }


def bench_data(seconds_of_audio: float = 60.0, num_workers: int = 0) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "sounds"
        make_sound_folder(folder, n_files=max(4, int(seconds_of_audio / 1.5)), seed=0)
        task = AudioTask()
        report = task.inspect(folder)
        cfg = task.adaptive_config(
            report,
            "cpu",
            "small",
            epochs=2,
            preview_every=0,
            augmentation_expansion=3,
            model_width=16,
            num_workers=num_workers,
        )
        steps: list[float] = []
        waits: list[float] = []

        def on_event(e: Event) -> None:
            if isinstance(e, StepMetrics) and e.epoch == 1:
                steps.append(e.metrics["time/step_s"])
            if e.type == "epoch" and e.epoch == 1:  # type: ignore[attr-defined]
                waits.append(e.metrics["time/data_wait_s"])  # type: ignore[attr-defined]

        train(cfg, report, Path(tmp) / "run", emit=on_event)
    compute, wait = sum(steps), waits[0]
    return {
        "step_s": compute,
        "data_wait_s": wait,
        "data_fraction": wait / (wait + compute),
        "steps": float(len(steps)),
        "audio_s": report.total_duration_s,
    }


def _write_minutes(folder: Path, minutes: float) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    n_files = max(1, int(minutes * 2))  # 30-second files
    for i in range(n_files):
        t = np.arange(30 * 48000) / 48000
        x = 0.2 * np.sin(2 * np.pi * rng.uniform(100, 1000) * t) + 0.05 * rng.standard_normal(
            t.size
        )
        sf.write(folder / f"f{i:03d}.flac", x.astype(np.float32), 48000)


def scale_one(minutes: float) -> dict[str, float]:
    """One epoch on ``minutes`` of audio in this process; prints JSON."""
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "audio"
        _write_minutes(folder, minutes)
        task = AudioTask()
        report = task.inspect(folder)
        cfg = task.adaptive_config(
            report,
            "cpu",
            "small",
            epochs=1,
            preview_every=0,
            augmentation_expansion=1,
            model_width=16,
            batch_size=16,
        )
        epoch_s: list[float] = []
        train(
            cfg,
            report,
            Path(tmp) / "run",
            emit=lambda e: epoch_s.append(e.metrics["time/epoch_s"]) if e.type == "epoch" else None,
        )  # type: ignore[attr-defined]
    rss_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"minutes": minutes, "epoch_s": epoch_s[0], "peak_rss_mib": rss_mib}


def bench_scaling(base_minutes: float = 1.0) -> list[dict[str, float]]:
    rows = []
    for minutes in [base_minutes * k for k in (1, 2, 4, 8)] + [30.0]:
        out = subprocess.run(
            [sys.executable, __file__, "scale-one", "--minutes", str(minutes)],
            capture_output=True,
            text=True,
            check=True,
        )
        rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
    return rows


def bench_cancel(repeats: int = 5) -> dict[str, float]:
    latencies = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "sounds"
        make_sound_folder(folder, n_files=8, seed=0)
        task = AudioTask()
        cfg = task.adaptive_config(task.inspect(folder), "cpu", "tiny", epochs=100, preview_every=0)
        for i in range(repeats):
            stepped, saved = threading.Event(), threading.Event()
            first_step = 3 + i

            def watch(
                e: Event,
                stepped: threading.Event = stepped,
                saved: threading.Event = saved,
                first_step: int = first_step,
            ) -> None:
                if isinstance(e, StepMetrics) and e.global_step >= first_step:
                    stepped.set()
                if isinstance(e, CheckpointSaved) and e.reason == "cancel":
                    saved.set()

            runner = TrainingRunner(task, cfg, folder, Path(tmp) / f"run{i}", subscribers=[watch])
            runner.start()
            stepped.wait(120)
            t0 = time.perf_counter()
            runner.cancel()
            saved.wait(120)
            latencies.append(time.perf_counter() - t0)
            runner.wait()
    return {"median_s": statistics.median(latencies), "max_s": max(latencies)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("which", nargs="?", default="all")
    parser.add_argument("--minutes", type=float, default=1.0)
    parser.add_argument("--device", default="cpu", help="overhead only: cpu or cuda")
    parser.add_argument("--repeats", type=int, default=9, help="overhead only: interleaved runs")
    args = parser.parse_args()
    torch.set_num_threads(max(1, torch.get_num_threads()))
    if args.which == "scale-one":
        print(json.dumps(scale_one(args.minutes)))
        return
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, device {args.device}")
    if args.which in ("all", "overhead"):
        r = bench_overhead(repeats=args.repeats, device=args.device)
        print(
            f"overhead ({args.device}): bare {r['bare_s']:.3f} s, bare with the runs' optimizer "
            f"{r['bare_foreach_s']:.3f} s, ours {r['ours_s']:.3f} s; throughput ours/bare = "
            f"{r['throughput_ratio']:.3f} (target >= 0.97), engine only (same optimizer) = "
            f"{r['engine_ratio']:.3f}"
        )
    for workers in (0, 1) if args.which in ("all", "data") else ():
        r = bench_data(180.0, workers)
        print(
            f"data (num_workers={workers}): {r['steps']:.0f} steps, "
            f"waiting {r['data_wait_s']:.3f} s of "
            f"{r['data_wait_s'] + r['step_s']:.3f} s = {r['data_fraction']:.1%} (target < 5%)"
        )
    if args.which in ("all", "scaling"):
        rows = bench_scaling()
        base = rows[0]
        for row in rows:
            print(
                f"scaling: {row['minutes']:5.1f} min audio: epoch {row['epoch_s']:7.2f} s "
                f"({row['epoch_s'] / base['epoch_s']:.2f}x), peak RSS {row['peak_rss_mib']:.0f} MiB"
            )
    if args.which in ("all", "cancel"):
        r = bench_cancel()
        print(
            f"cancel: cancel -> checkpoint on disk: median {r['median_s'] * 1000:.0f} ms, "
            f"max {r['max_s'] * 1000:.0f} ms"
        )


if __name__ == "__main__":
    main()
