"""The audio task: the engine's Task protocol for a folder of sounds."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from smalltrain.engine.context import DatasetReport as ReportProtocol
from smalltrain.engine.context import (
    JobContext,
    ResumePoint,
    TrainResult,
    checkpoint_resume_point,
)
from smalltrain.errors import ConfigError
from smalltrain.tasks.audio.config import TrainingConfig
from smalltrain.tasks.audio.fields import FIELD_HELP
from smalltrain.tasks.audio.presets import get_adaptive_config

if TYPE_CHECKING:
    from smalltrain.tasks.audio.data.io import DatasetReport

# numpy, soundfile and torch load only when a method needs them (the io, material and train
# modules below): the service asks a task where a job resumes (``resume_point``) and what its
# fields mean from light processes, such as the web UI's server, that must not load torch.


def inspect_audio(path: str | Path) -> DatasetReport:
    """Scan a folder of audio and tell onset-aligned material from continuous sound.

    Raises:
        DatasetError: the folder has no usable audio (every skipped file is named).
    """
    from smalltrain.tasks.audio.data.io import scan_folder
    from smalltrain.tasks.audio.data.material import detect_material_for_report

    report = scan_folder(Path(path))
    material = detect_material_for_report(report)
    report.material = material.kind
    report.material_summary = material.summary()
    return report


class AudioTask:
    """Trains a ConvVAE on mel spectrograms of a folder of sounds."""

    name = "audio"
    #: Imported once by the warm start's server (``service.execution.warm``), before any job:
    #: the training code and what it loads. Importing them touches no GPU.
    warm_modules = ("numpy", "soundfile", "soxr", "smalltrain.tasks.audio.training.train")
    #: What sweeps judge trials by: spectral convergence on the validation split, lower is better.
    sweep_metric = ("val/sc", "min")

    def inspect(self, path: Path) -> DatasetReport:
        return inspect_audio(path)

    def adaptive_config(
        self, report: ReportProtocol, device: str, preset: str = "auto", **overrides: Any
    ) -> TrainingConfig:
        from smalltrain.tasks.audio.data.io import DatasetReport

        if not isinstance(report, DatasetReport):
            raise TypeError(f"the audio task needs an audio DatasetReport, not {type(report)}")
        return get_adaptive_config(report, device=device, preset=preset, **overrides)

    def config_from_dict(self, data: Mapping[str, Any]) -> TrainingConfig:
        return TrainingConfig.from_dict(dict(data))

    def resume_point(self, run_dir: Path) -> ResumePoint:
        """The newest checkpoint in ``run_dir/checkpoints`` that matches its sidecar."""
        return checkpoint_resume_point(run_dir)

    def field_help(self) -> Mapping[str, str]:
        """One line per config field (``smalltrain config show audio``)."""
        return FIELD_HELP

    def train(self, ctx: JobContext) -> TrainResult:
        config = ctx.config
        if isinstance(config, Mapping):
            config = TrainingConfig.from_dict(dict(config))
        if not isinstance(config, TrainingConfig):
            raise ConfigError("config", type(config).__name__, "must be an audio TrainingConfig")
        if config.device == "auto" and ctx.device not in ("", "auto"):
            config = dataclasses.replace(config, device=ctx.device)
        from smalltrain.tasks.audio.training.train import train

        return train(
            config,
            ctx.dataset_path,
            ctx.run_dir,
            emit=ctx.emit,
            cancel=ctx.cancel,
            resume_from=ctx.resume_from,
            cache_dir=ctx.cache_dir,
        )
