"""Audio quality on held-out sounds: the auto preset, a naive preset and PCA of the same size.

Sets (``bench/audio_sets.py``; each split by file, 3/4 train and 1/4 held out): ``oneshot`` (real
one-shots in velocity layers), ``sonic_pi`` (the real mixed folder), ``onset`` and
``continuous`` (synthetic), and ``kit`` (the real bass drums and snares in velocity layers, 39/12
files: the tiny preset's regime; only with ``--sets kit``). Only when named: the seven real
drum kits, each split by file (``pearl-file``: new velocities and takes of known instruments)
and by instrument (``pearl-instrument``: new instruments); ``python bench/audio_sets.py``
prints their instrument groups and splits. The real sets are skipped when ``../shared/data``
is absent.

For each set it trains, through the public API (``inspect_audio``, ``get_adaptive_config``,
``train``) and scores with ``evaluate`` on the held-out files:

- auto: the preset and material-chosen settings ``get_adaptive_config`` picks, best
  checkpoint by the preset's monitor;
- naive: the same model size, batch, learning rate and epochs, but reconstruction loss only
  (L1 on normalized dB, ``sc_weight=0``, ``kl_beta_max=0``), no augmentation, no early stop,
  and the *last* checkpoint (fixed epochs);
- PCA with as many components as the model has latent floats (capped by training chunks - 1),
  fitted on the auto run's training split (``evaluate``'s baseline).

Reported per set: held-out spectral convergence (linear mel magnitude) and mel L1 (dB); the
same on the training split (can the model fit what it trains on?); the multi-resolution STFT
distance of the rendered reconstructions and of the inversion alone (the ceiling); the largest
epoch-to-epoch rise of validation SC; and, for ``--generate`` samples of the model's prior and
of PCA's Gaussian, the Fréchet distance, precision, recall and memorisation (``genscores.py``).
``--json`` also keeps the per-file scores of every held-out file (``files``).

Each run uses its preset's epochs (``--epochs`` overrides them for a quick look); previews are
off. Usage::

    .venv/bin/python bench/quality.py [--sets oneshot sonic_pi onset continuous kit] [--epochs N]
        [--device cpu] [--generate 64] [--set FIELD=VALUE ...] [--out DIR] [--json results.json]
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))  # audio_sets beside this script

from audio_sets import KIT_SETS, build_set, source_of  # noqa: E402
from smalltrain.engine.config import parse_assignments  # noqa: E402
from smalltrain.engine.events import EpochMetrics, Event  # noqa: E402
from smalltrain.tasks.audio.presets import get_adaptive_config  # noqa: E402
from smalltrain.tasks.audio.task import inspect_audio  # noqa: E402
from smalltrain.tasks.audio.training.train import train  # noqa: E402
from smalltrain.tasks.audio.use.evaluate import evaluate  # noqa: E402

SEED = 0
SETS = ("oneshot", "sonic_pi", "onset", "continuous")
EXTRA_SETS = ("kit", *KIT_SETS)


# --- runs ---------------------------------------------------------------------------------------


def _swing(val_sc: list[float]) -> float:
    """The largest rise of validation SC from one epoch to the next, after the first 5."""
    tail = [v for v in val_sc[5:] if math.isfinite(v)]
    return max((b / a for a, b in zip(tail, tail[1:], strict=False) if a > 0), default=math.nan)


def _train_run(cfg: Any, report: Any, run_dir: Path, reuse: bool) -> dict[str, Any]:
    """Train (or, with ``reuse``, read back a finished run of an earlier call) and return what
    the report needs: the model to score, time, epochs, steps and the validation SC curve."""
    saved = run_dir / "bench.json"
    if reuse and saved.is_file():
        return dict(json.loads(saved.read_text()))
    curve: list[float] = []

    def emit(event: Event) -> None:
        if isinstance(event, EpochMetrics):
            curve.append(float(event.metrics.get("val/sc", math.nan)))

    t0 = time.perf_counter()
    result = train(cfg, report, run_dir, emit=emit)
    run = {
        "best": str(result.best_checkpoint),
        "last": str(result.last_checkpoint),
        "train_s": time.perf_counter() - t0,
        "epochs_run": result.epochs_completed,
        "steps": result.global_step,
        "best_epoch": result.extra.get("best_epoch"),
        "val_sc_curve": curve,
    }
    saved.write_text(json.dumps(run))
    return run


def _auto_and_naive(
    report: Any, device: str, epochs: int | None, changes: dict[str, Any] | None = None
) -> tuple[Any, Any]:
    common: dict[str, Any] = {"preview_every": 0, **(changes or {})}
    if epochs:
        common["epochs"] = epochs
    auto = get_adaptive_config(report, device=device, **common)
    naive = get_adaptive_config(
        report, device=device, **common, sc_weight=0.0, kl_beta_max=0.0, augmentation=False,
        early_stopping_patience=0, time_shift_max_s=0.0,
    )  # fmt: skip
    return auto, naive


def run_set(
    name: str,
    root: Path,
    epochs: int | None,
    device: str,
    n_generate: int,
    variants: tuple[str, ...] = ("auto", "naive"),
    reuse: bool = False,
    changes: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Train auto (and naive) on ``root/train``, score them and PCA on ``root/held``;
    ``changes`` are overrides for both (``--set``)."""
    report = inspect_audio(root / "train")
    auto_cfg, naive_cfg = _auto_and_naive(report, device, epochs, changes)
    out: dict[str, Any] = {
        "set": name,
        "train": report.snapshot(),
        "material": getattr(report, "material_summary", report.material),
        "preset": auto_cfg.preset,
        "epochs": auto_cfg.epochs,
        "auto_config": auto_cfg.describe(),
    }
    for label, cfg in (("auto", auto_cfg), ("naive", naive_cfg)):
        if label not in variants:
            continue
        run = _train_run(cfg, report, root / f"run_{label}", reuse)
        ref = run["best"] if label == "auto" else run["last"]
        gen = n_generate if label == "auto" else 0
        ev = evaluate(ref, root / "held", generate=gen, seed=SEED).to_json_dict()
        row = {
            **ev["model"],
            "wave": ev["waveform"]["model"],
            **{k: run[k] for k in ("train_s", "epochs_run", "steps", "best_epoch")},
            "val_sc_swing": _swing(run["val_sc_curve"]),
        }
        out[label] = row
        if label == "auto":
            fit = evaluate(ref, root / "train", waveform=False).to_json_dict()
            row["train_split"] = fit["model"]
            out["pca"] = {**ev["baseline_pca"], "wave": ev["waveform"]["baseline_pca"],
                          "train_split": fit["baseline_pca"]}  # fmt: skip
            out["inversion"] = ev["waveform"]["inversion"]
            out["generation"] = ev.get("generation")
            out["held_chunks"] = ev["chunks"]
            out["held_files"] = len(ev["files"])
            out["files"] = ev["files"]  # per held-out file: model and PCA SC and mel L1
            out["latent_floats"] = ev["model"]["latent_floats"]
    return out


# --- report --------------------------------------------------------------------------------------


def _num(value: Any, fmt: str, suffix: str = "") -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return ""
    return f"{format(value, fmt)}{suffix}"


def _reconstruction_table(results: list[dict[str, Any]]) -> list[str]:
    lines = [
        "| set | material (train split) | preset, epochs run | held-out chunks | model | "
        "held-out SC | vs PCA | mel L1 dB | train-split SC | train-split L1 dB | "
        "val SC swing | train s |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        pca_sc = r["pca"]["sc"]
        for label in ("auto", "naive", "pca"):
            if label not in r:
                continue
            s = r[label]
            first = label == "auto"
            size = f"PCA-{s['k']}" if label == "pca" else f"{label} VAE ({r['latent_floats']})"
            split = s.get("train_split", {})
            run = f"{r['preset']}, {s['epochs_run']}" if first else ""
            lines.append(
                f"| {r['set'] if first else ''} | {r['material'] if first else ''} | {run} | "
                f"{r['held_chunks'] if first else ''} | {size} | {s['sc']:.3f} | "
                f"{s['sc'] / pca_sc:.2f}x | {s['mel_l1_db']:.2f} | "
                f"{_num(split.get('sc'), '.3f')} | {_num(split.get('mel_l1_db'), '.2f')} | "
                f"{_num(s.get('val_sc_swing'), '.2f', 'x')} | {_num(s.get('train_s'), '.0f')} |"
            )
    return lines


def _waveform_table(results: list[dict[str, Any]]) -> list[str]:
    lines = [
        "| set | held-out files | model wave SC | model log-mag dB | naive wave SC | "
        "PCA wave SC | PCA log-mag dB | inversion alone (ceiling) SC | ceiling log-mag dB |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        m, p, c = r["auto"]["wave"], r["pca"]["wave"], r["inversion"]
        naive = _num(r["naive"]["wave"]["sc"], ".3f") if "naive" in r else ""
        lines.append(
            f"| {r['set']} | {r['held_files']} | {m['sc']:.3f} | {m['log_mag_db']:.2f} | "
            f"{naive} | {p['sc']:.3f} | {p['log_mag_db']:.2f} | {c['sc']:.3f} | "
            f"{c['log_mag_db']:.2f} |"
        )
    return lines


def _generation_table(results: list[dict[str, Any]]) -> list[str]:
    lines = [
        "| set | sampler | Fréchet dB² | precision | recall | memorisation ratio | near copies |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in results:
        gen = r.get("generation")
        if not gen:
            continue
        for label, key in (("model prior", "model"), ("PCA Gaussian", "baseline_pca")):
            g = gen[key]
            lines.append(
                f"| {r['set'] if key == 'model' else ''} | {label} | {g['frechet']:.0f} | "
                f"{g['precision']:.2f} | {g['recall']:.2f} | "
                f"{_num(g['memorisation_ratio'], '.2f')} | {_num(g['near_copies'], '.0%')} |"
            )
    return lines


def markdown(results: list[dict[str, Any]]) -> str:
    """The results as three markdown tables (lower is better except precision and recall)."""
    return "\n\n".join(
        "\n".join(t)
        for t in (
            _reconstruction_table(results),
            _waveform_table(results),
            _generation_table(results),
        )  # fmt: skip
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sets", nargs="+", default=list(SETS), choices=SETS + EXTRA_SETS)
    parser.add_argument(
        "--epochs", type=int, default=None, help="epochs for every set (default: the preset's)"
    )
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--generate", type=int, default=64, help="samples per sampler")
    parser.add_argument(
        "--variants", nargs="+", default=["auto", "naive"], choices=["auto", "naive"]
    )
    parser.add_argument(
        "--set", nargs="+", default=[], metavar="FIELD=VALUE", dest="changes",
        help="config overrides for every run, as the CLI's --set (an experiment beside auto)",
    )  # fmt: skip
    parser.add_argument("--out", type=Path, default=None, help="work folder (default: temp)")
    parser.add_argument("--json", type=Path, default=None, help="write the results here")
    parser.add_argument(
        "--reuse", action="store_true", help="score the finished runs already in --out again"
    )
    parser.add_argument(
        "--threads", type=int, default=0, help="torch threads (0: torch's default); on a shared "
        "machine 1 avoids OpenMP threads spinning on each other (bench/README.md, Log-mel)"
    )  # fmt: skip
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    work = args.out or Path(tempfile.mkdtemp(prefix="smalltrain-quality-"))
    results = []
    t0 = time.perf_counter()
    for name in args.sets:
        source = source_of(name)
        if source is not None and not source.is_dir():
            print(f"skipping {name}: {source} is absent (see ../shared/data/README.md)")
            continue
        target = work / name if args.reuse and (work / name).is_dir() else build_set(name, work)
        variants = tuple(args.variants)
        changes = parse_assignments(args.changes)
        run = run_set(name, target, args.epochs, args.device, args.generate, variants, args.reuse,
                      changes)  # fmt: skip
        results.append(run)
        print(json.dumps(results[-1], indent=1, default=str), flush=True)
        if args.json:  # after every set: a long run keeps what it measured
            args.json.write_text(json.dumps(results, indent=1, default=str))
    print(markdown(results))
    print(f"total {time.perf_counter() - t0:.0f} s; work folder {work}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
