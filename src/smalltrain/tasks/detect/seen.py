"""What the model sees: the first augmented training batches, drawn with their boxes.

Ultralytics draws ``train_batch{ni}.jpg`` for the batches in ``trainer.plot_idx`` (the first
three, and the first three once mosaic closes) only when ``plots=True``, which also turns on
every per-epoch plot. The detect task keeps ``plots=False``; :class:`SeenBatches`, called from
``SmallDataTrainer.preprocess_batch``, draws exactly those batches with Ultralytics'
``plot_images`` (class names on the boxes) into ``<run>/seen/`` and lists them in
``seen.json`` (layout: ``engine.seen``) with the augmentation settings of the run.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from smalltrain.engine.seen import read_seen, write_seen

__all__ = ["AUGMENT_KEYS", "SeenBatches"]

#: Ultralytics' training augmentations, as its arguments name them.
AUGMENT_KEYS = (
    "mosaic", "close_mosaic", "mixup", "cutmix", "copy_paste", "degrees", "translate", "scale",
    "shear", "perspective", "flipud", "fliplr", "hsv_h", "hsv_s", "hsv_v", "erasing", "imgsz",
)  # fmt: skip


class SeenBatches:
    """Draws the batches Ultralytics would plot into ``folder``; see the module docstring."""

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)
        self._epoch = -1
        self._i = 0
        self.seconds = 0.0  # time spent drawing, for the log

    def batch(self, trainer: Any, batch: dict[str, Any]) -> None:
        """Count one preprocessed training batch; draw it if Ultralytics would plot it."""
        epoch = int(trainer.epoch)
        if epoch != self._epoch:
            self._epoch, self._i = epoch, 0
        ni = self._i + len(trainer.train_loader) * epoch
        self._i += 1
        if ni in getattr(trainer, "plot_idx", ()):
            t0 = time.perf_counter()
            self.draw(trainer, batch, ni)
            self.seconds += time.perf_counter() - t0

    def draw(self, trainer: Any, batch: dict[str, Any], ni: int) -> Path:
        """Write ``train_batch{ni}.jpg`` and add it to ``seen.json``; returns the image."""
        from ultralytics.utils.plotting import plot_images

        self.folder.mkdir(parents=True, exist_ok=True)
        name = f"train_batch{ni}.jpg"
        names = dict(getattr(trainer, "data", {}).get("names") or {})
        # threaded=False: the file exists when seen.json names it (three calls per run). A deep
        # copy: on the CPU, plot_images's .cpu().numpy() shares the tensors' memory and it scales
        # images (x255) and boxes in place, which wrecked training (mAP 0) before the loss ran
        plot_images(
            labels={k: v.clone() if hasattr(v, "clone") else v for k, v in batch.items()},
            paths=batch["im_file"],
            fname=self.folder / name,
            names=names,
            threaded=False,
        )
        item = {
            "files": {"image": name},
            "batch": ni,
            "epoch": int(trainer.epoch),
            "mosaic": _mosaic_on(trainer),
            "images": int(batch["img"].shape[0]),
            "boxes": int(batch["cls"].shape[0]),
            "image_size": int(batch["img"].shape[-1]),
        }
        args = vars(trainer.args)
        old = read_seen(self.folder.parent) or {}
        items = [i for i in old.get("items") or [] if i.get("files") != item["files"]]
        manifest = {
            "task": "detect",
            "augmentation": {k: args[k] for k in AUGMENT_KEYS if k in args},
            "names": {str(k): str(v) for k, v in names.items()},
            "items": sorted([*items, item], key=lambda i: int(i["batch"])),
        }
        write_seen(self.folder.parent, manifest)
        return self.folder / name


def _mosaic_on(trainer: Any) -> bool:
    """Whether this epoch's batches are mosaics (Ultralytics' rule: on unless rect training,
    off for the final ``close_mosaic`` epochs)."""
    args = trainer.args
    closing = int(args.close_mosaic or 0)
    closed = bool(closing) and int(trainer.epoch) >= int(trainer.epochs) - closing
    return float(args.mosaic or 0) > 0 and not args.rect and not closed
