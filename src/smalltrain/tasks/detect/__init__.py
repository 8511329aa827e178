"""The ``detect`` task: fine-tune Ultralytics YOLO detectors on small YOLO-format datasets.

Importing this package does not import Ultralytics; :func:`offline.apply` runs first in
``DetectTask.train``, ``predict`` and ``validate``. ``TrainingConfig`` here is the detection
config (``smalltrain.tasks.audio.TrainingConfig`` is the audio one).
"""

from __future__ import annotations

from smalltrain.tasks.detect.config import TrainingConfig
from smalltrain.tasks.detect.finetune import continue_config
from smalltrain.tasks.detect.inspect import DetectionReport, Problem, inspect_dataset
from smalltrain.tasks.detect.offline import resolve_base_model
from smalltrain.tasks.detect.predict import predict, validate
from smalltrain.tasks.detect.presets import build_config
from smalltrain.tasks.detect.task import DetectTask, check_resumable

__all__ = [
    "DetectTask",
    "DetectionReport",
    "Problem",
    "TrainingConfig",
    "build_config",
    "check_resumable",
    "continue_config",
    "inspect_dataset",
    "predict",
    "resolve_base_model",
    "validate",
]
