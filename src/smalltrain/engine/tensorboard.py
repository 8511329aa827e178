"""Optional TensorBoard logging of scalars and preview audio (used when installed and on)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from smalltrain.engine.events import Callback, EpochMetrics, PreviewReady, StepMetrics
from smalltrain.errors import ConfigError


class TensorBoardLogger(Callback):
    """Writes step and epoch scalars, and preview WAVs as audio, to a TensorBoard log dir."""

    def __init__(self, log_dir: Path) -> None:
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:  # pragma: no cover - depends on the environment
            raise ConfigError(
                "tensorboard", True, "needs the tensorboard package: pip install tensorboard"
            ) from None
        self.writer: Any = SummaryWriter(log_dir=str(log_dir))

    def on_step_end(self, event: StepMetrics) -> None:
        for key, value in event.metrics.items():
            self.writer.add_scalar(key, value, event.global_step)

    def on_epoch_end(self, event: EpochMetrics) -> None:
        for key, value in event.metrics.items():
            self.writer.add_scalar(f"epoch/{key}", value, event.epoch)
        self.writer.flush()

    def on_preview(self, event: PreviewReady) -> None:
        import soundfile as sf
        import torch

        for path in event.paths:
            if not path.endswith(".wav"):
                continue
            data, rate = sf.read(path, dtype="float32", always_2d=False)
            tag = "preview/" + Path(path).stem.split("_", 2)[-1]
            self.writer.add_audio(tag, torch.from_numpy(data), event.epoch, sample_rate=rate)

    def close(self) -> None:
        self.writer.close()
