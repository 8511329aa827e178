"""Synthetic detection data: a YOLO dataset of rectangles and circles, and a tiny model yaml.

For the demo, the benchmarks and the tests (beside ``tasks.audio.data.synth``): a dataset of any
size in seconds, with real PNG images and real YOLO label files, and a model small enough to train
from scratch in seconds per epoch at 64 px.
"""

from __future__ import annotations

import random
from pathlib import Path

from smalltrain.tasks.detect.image_files import write_image

__all__ = ["TINY_MODEL_YAML", "make_shapes_dataset", "write_tiny_model"]


def make_shapes_dataset(
    root: Path, n_train: int = 8, n_val: int = 4, classes: int = 2, size: int = 64, seed: int = 0
) -> Path:
    """Write a YOLO dataset of rectangles (class 0) and circles (class 1); returns data.yaml."""
    import cv2
    import numpy as np

    rng = random.Random(seed)
    for split, count in (("train", n_train), ("val", n_val)):
        (root / "images" / split).mkdir(parents=True, exist_ok=True)
        (root / "labels" / split).mkdir(parents=True, exist_ok=True)
        for i in range(count):
            img = np.full((size, size, 3), rng.randint(0, 60), np.uint8)
            rows = []
            for _ in range(rng.randint(1, 2)):
                cls = rng.randrange(classes)
                w, h = rng.randint(size // 5, size // 2), rng.randint(size // 5, size // 2)
                x0, y0 = rng.randint(0, size - w - 1), rng.randint(0, size - h - 1)
                colour = (rng.randint(120, 255), rng.randint(120, 255), rng.randint(120, 255))
                if cls == 0:
                    cv2.rectangle(img, (x0, y0), (x0 + w, y0 + h), colour, -1)
                else:
                    cv2.ellipse(
                        img, (x0 + w // 2, y0 + h // 2), (w // 2, h // 2), 0, 0, 360, colour, -1
                    )
                rows.append(
                    f"{cls} {(x0 + w / 2) / size:.5f} {(y0 + h / 2) / size:.5f} "
                    f"{w / size:.5f} {h / size:.5f}"
                )
            write_image(root / "images" / split / f"img{i:03d}.png", img)
            (root / "labels" / split / f"img{i:03d}.txt").write_text("\n".join(rows) + "\n")
    names = "\n".join(f"  {i}: {n}" for i, n in enumerate(["rect", "circle"][:classes]))
    data_yaml = root / "data.yaml"
    data_yaml.write_text(f"path: .\ntrain: images/train\nval: images/val\nnames:\n{names}\n")
    return data_yaml


# A tiny model config from scratch: a few hundred thousand parameters, seconds per epoch at 64 px.
TINY_MODEL_YAML = """\
nc: 2
scales:
  n: [0.33, 0.125, 256]
backbone:
  - [-1, 1, Conv, [64, 3, 2]]
  - [-1, 1, Conv, [128, 3, 2]]
  - [-1, 1, C2f, [128, True]]
  - [-1, 1, Conv, [256, 3, 2]]
  - [-1, 1, C2f, [256, True]]
  - [-1, 1, Conv, [512, 3, 2]]
  - [-1, 1, C2f, [512, True]]
  - [-1, 1, Conv, [512, 3, 2]]
  - [-1, 1, C2f, [512, True]]
  - [-1, 1, SPPF, [512, 5]]
head:
  - [-1, 1, nn.Upsample, [None, 2, "nearest"]]
  - [[-1, 6], 1, Concat, [1]]
  - [-1, 1, C2f, [256]]
  - [-1, 1, nn.Upsample, [None, 2, "nearest"]]
  - [[-1, 4], 1, Concat, [1]]
  - [-1, 1, C2f, [128]]
  - [-1, 1, Conv, [128, 3, 2]]
  - [[-1, 12], 1, Concat, [1]]
  - [-1, 1, C2f, [256]]
  - [-1, 1, Conv, [256, 3, 2]]
  - [[-1, 9], 1, Concat, [1]]
  - [-1, 1, C2f, [512]]
  - [[15, 18, 21], 1, Detect, [nc]]
"""


def write_tiny_model(path: Path) -> Path:
    """Write ``TINY_MODEL_YAML`` to ``path`` (a ``.yaml`` Ultralytics builds from scratch)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(TINY_MODEL_YAML)
    return path
