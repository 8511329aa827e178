"""Model registry: ``ModelStore.list`` with 1,000 models against a naive folder scan.

Run: ``python bench/bench_registry.py [--models 1000] [--json]``

The dataset's models are laid out exactly as ``ModelStore.save`` leaves them (weights,
config.yaml, metrics.json, registry.json), written in bulk so set-up stays quick. Measured:

- ``ModelStore.list(dataset)``: reads registry.json only;
- the naive baseline: walk ``models/<dataset>/models/*`` and read every model's metrics.json
  (what a registry-less store would have to do);
- ``get_active`` and one more ``save`` with the registry already holding every model (the
  registry is rewritten atomically under its lock on each save).
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from smalltrain.store import ModelEntry, ModelStore


def _median_ms(fn: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times)


def populate(store: ModelStore, dataset: str, n: int) -> None:
    """Write ``n`` models in the store's layout, with one registry.json at the end."""
    models: dict[str, Any] = {}
    for i in range(n):
        name = f"model_{i:04d}"
        folder = store.model_dir(dataset, name)
        (folder / "weights").mkdir(parents=True)
        (folder / "weights" / "best.pt").write_bytes(b"w" * 1024)
        (folder / "config.yaml").write_text(yaml.safe_dump({"epochs": 10, "lr": 1e-3}))
        metrics = {"val/loss": 0.1 + i * 1e-4, "train/loss": 0.09}
        (folder / "metrics.json").write_text(json.dumps(metrics))
        models[name] = {
            "created": f"2024-01-01T00:{i // 60 % 60:02d}:{i % 60:02d}Z",
            "base_model": None,
            "epochs_completed": 10,
            "best_val_loss": metrics["val/loss"],
            "dataset_snapshot": "35 files, 12.5 min",
            "task": "audio",
            "job_id": f"{i:012x}",
            "weights_sha256": "0" * 64,
            "weights_size": 1024,
            "dataset_fingerprint": "f" * 16,
            "versions": {"smalltrain": "0.1.0", "torch": "2.x"},
            "headline_metric": "best_val_loss",
        }
    store.update_registry(dataset, lambda r: r.update(active="model_0000", models=models))


def naive_list(root: Path, dataset: str) -> list[dict[str, Any]]:
    out = []
    for folder in sorted((root / dataset / "models").iterdir()):
        metrics = json.loads((folder / "metrics.json").read_text())
        out.append({"name": folder.name, "weights": folder / "weights" / "best.pt", **metrics})
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        store = ModelStore(Path(tmp) / "models")
        populate(store, "bench", args.models)
        assert len(store.list("bench")) == len(naive_list(store.root, "bench")) == args.models
        listed = _median_ms(lambda: store.list("bench"), args.repeat)
        naive = _median_ms(lambda: naive_list(store.root, "bench"), args.repeat)
        active = _median_ms(lambda: store.get_active("bench"), args.repeat)
        weights = Path(tmp) / "best.pt"
        weights.write_bytes(b"w" * 1024)
        start = time.perf_counter()
        store.save(ModelEntry(dataset="bench", name="one_more", weights=weights, task="audio",
                              config={}, metrics={}, base_model=None, epochs_completed=1,
                              headline=("best_val_loss", 0.1)))  # fmt: skip
        save_ms = 1000 * (time.perf_counter() - start)
    result = {
        "machine": f"{platform.machine()} {platform.system()}",
        "models": args.models,
        "list_ms": round(listed, 2),
        "naive_scan_ms": round(naive, 2),
        "speedup": round(naive / listed, 1),
        "get_active_ms": round(active, 2),
        "save_with_full_registry_ms": round(save_ms, 1),
    }
    if args.json:
        print(json.dumps(result))
        return
    for key, value in result.items():
        print(f"{key}: {value}")


if __name__ == "__main__":
    main()
