"""last.pt built on the writer thread is Ultralytics' own checkpoint, key for key, type for type.

A real 2-epoch Ultralytics run with our ``SmallDataTrainer``: after each of our saves (snapshot
on the training thread, serialised and written by the writer thread), Ultralytics' own
``DetectionTrainer.save_model`` writes a reference from the same trainer state. Both load with
Ultralytics' ``load_checkpoint`` (its resume path) and have the same structure: keys, value
types, tensor dtypes and shapes, the EMA's class and fp16 state, the optimizer's fp16 state,
the results.csv columns.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
import torch

pytestmark = pytest.mark.slow


def _structure(obj: Any) -> Any:
    """Everything about ``obj`` that must match, but not values that differ by run (dates)."""
    if isinstance(obj, torch.nn.Module):
        state = {k: (v.dtype, tuple(v.shape)) for k, v in obj.state_dict().items()}
        return type(obj).__qualname__, state, obj.training, getattr(obj, "criterion", "absent")
    if isinstance(obj, torch.Tensor):
        return "tensor", obj.dtype, tuple(obj.shape)
    if isinstance(obj, dict):
        return {k: _structure(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return type(obj).__name__, [_structure(v) for v in obj]
    return type(obj).__name__


def test_writer_last_pt_matches_ultralytics_save_model(
    shapes: Path, tiny_model: Path, tmp_path: Path
) -> None:
    from ultralytics import YOLO
    from ultralytics.models.yolo.detect import DetectionTrainer
    from ultralytics.nn.tasks import load_checkpoint

    from smalltrain.tasks.detect.trainer import trainer_for

    pairs: list[tuple[Path, Path]] = []

    def reference(trainer: Any) -> None:
        trainer.writer.flush()  # ours, on disk
        n = len(pairs)
        ours, ref = tmp_path / f"ours{n}.pt", tmp_path / f"ref{n}"
        shutil.copyfile(trainer.last, ours)
        last, best = trainer.last, trainer.best
        ref.mkdir()
        trainer.last, trainer.best = ref / "last.pt", ref / "best.pt"
        try:
            DetectionTrainer.save_model(trainer)  # Ultralytics' own, same state
        finally:
            trainer.last, trainer.best = last, best
        pairs.append((ours, ref / "last.pt"))

    data = tmp_path / "data.yaml"  # absolute paths: Ultralytics resolves "." from its own cwd
    data.write_text(shapes.read_text().replace("path: .", f"path: {shapes.parent}"))
    model = YOLO(str(tiny_model))
    model.add_callback("on_model_save", reference)
    model.train(data=str(data), epochs=2, imgsz=64, batch=4, workers=0, device="cpu",
                plots=False, project=str(tmp_path / "runs"), name="t", exist_ok=True,
                trainer=trainer_for(1), verbose=False)  # fmt: skip

    assert len(pairs) == 2
    for ours_path, ref_path in pairs:
        _, ours = load_checkpoint(ours_path)  # Ultralytics' load (and resume) path
        ours_raw = torch.load(ours_path, map_location="cpu", weights_only=False)
        ref = torch.load(ref_path, map_location="cpu", weights_only=False)
        assert list(ours_raw) == list(ref)
        assert _structure(ours_raw) == _structure(ref)
        for key in ("epoch", "best_fitness", "stopper", "updates", "train_args", "train_metrics",
                    "train_results", "scaler", "version"):  # fmt: skip
            assert ours_raw[key] == ref[key], key
        assert ours_raw["optimizer"]["state"], "the optimizer state is kept for resume"
        for o, r in zip(ours_raw["optimizer"]["state"].values(), ref["optimizer"]["state"].values(),
                        strict=True):  # fmt: skip
            assert all(torch.equal(o[k], r[k]) for k in r)
        for k, v in ref["ema"].state_dict().items():
            assert torch.equal(ours_raw["ema"].state_dict()[k], v), k
        assert ours["epoch"] == ref["epoch"]
