"""What the model sees: the first augmented batches as images with boxes, and no other plots.

The training run is ``test_train.test_tiny_training_run``'s (one real Ultralytics run serves
both, to keep the suite short); it calls :func:`check_seen_batches`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import cv2

from smalltrain.engine.events import Event, LogEvent
from smalltrain.engine.seen import listed_files, read_seen

#: What Ultralytics writes when its per-epoch plots are on (they must stay off).
PLOTS = ("results.png", "labels*.jpg", "val_batch*", "*curve*.png", "confusion_matrix*", "*.jpg")


def check_seen_batches(run_dir: Path, events: list[Event]) -> None:
    """A 3-epoch run, 2 batches of 4 an epoch, ``close_mosaic=1``: batches 0, 1, 2 (mosaic)
    and 4, 5 (mosaic closed) in ``seen/`` with ``seen.json``; no plot in Ultralytics' folder."""
    manifest = read_seen(run_dir)
    assert manifest is not None
    assert manifest["task"] == "detect"
    assert manifest["names"] == {"0": "rect", "1": "circle"}
    assert manifest["augmentation"]["mosaic"] == 1.0
    assert manifest["augmentation"]["close_mosaic"] == 1
    items = manifest["items"]
    # Ultralytics' plot_idx: the first three batches, and three from where mosaic closes
    assert [(i["batch"], i["epoch"], i["mosaic"]) for i in items] == [
        (0, 0, True),
        (1, 0, True),
        (2, 1, True),
        (4, 2, False),
        (5, 2, False),
    ]
    seen = run_dir / "seen"
    assert {p.name for p in seen.glob("*.jpg")} == listed_files(manifest)
    for item in items:
        assert item["images"] == 4
        assert item["boxes"] >= 4  # every synthetic image has at least one shape
        image = cv2.imread(str(seen / item["files"]["image"]))
        assert image is not None
        assert min(image.shape[:2]) >= 64
    save_dir = run_dir / "ultralytics" / "train"
    assert save_dir.is_dir()
    for pattern in PLOTS:
        assert not list(save_dir.glob(pattern)), pattern
    assert any(isinstance(e, LogEvent) and "first training batches" in e.message for e in events)


def test_drawing_a_batch_leaves_the_training_batch_unchanged(tmp_path: Path) -> None:
    """On the CPU, Ultralytics' plot_images shares the tensors' memory (``.cpu().numpy()``) and
    scales images and boxes in place: drawing from the batch itself wrecked training (mAP 0)."""
    from types import SimpleNamespace

    import torch

    from smalltrain.tasks.detect.seen import SeenBatches

    generator = torch.Generator().manual_seed(0)
    batch: dict[str, Any] = {
        "img": torch.rand(2, 3, 64, 64, generator=generator),  # preprocessed: floats in [0, 1]
        "cls": torch.tensor([[0.0], [1.0]]),
        "bboxes": torch.tensor([[0.5, 0.5, 0.2, 0.2], [0.3, 0.3, 0.1, 0.1]]),
        "batch_idx": torch.tensor([0.0, 1.0]),
        "im_file": ["a.png", "b.png"],
    }
    before = {k: v.clone() for k, v in batch.items() if isinstance(v, torch.Tensor)}
    args = SimpleNamespace(mosaic=1.0, close_mosaic=0, rect=False)
    trainer = SimpleNamespace(epoch=0, data={"names": {0: "rect", 1: "circle"}}, args=args)
    image = SeenBatches(tmp_path / "seen").draw(trainer, batch, 0)
    assert image.is_file()
    for key, tensor in before.items():
        assert torch.equal(batch[key], tensor), f"drawing changed the batch's {key!r}"
