"""smalltrain: train models on small datasets on your own machine.

The public API, imported lazily so that ``import smalltrain`` (and the CLI's start-up) does not
pay for torch or Ultralytics until they are used:

- jobs: ``TrainingManager``, ``AsyncTrainingManager``, ``JobSpec``, ``TrainingJob``, ``JobStatus``,
  ``SweepSpec``
- stores: ``ModelStore``, ``DatasetStore``, ``JobStore``
- export: ``export_model(home, "DATASET/NAME", "onnx")`` (beside the model), ``list_exports``
- engine: ``TrainingRunner``, ``MetricsHistory``, ``Callback``, ``ResourceMonitor``
- tasks: ``smalltrain.tasks.audio`` (its ``TrainingConfig`` is the audio one) and
  ``smalltrain.tasks.detect`` (its ``TrainingConfig`` is the detection one)
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_EXPORTS = {
    "AsyncTrainingManager": "smalltrain.service.aio",
    "Callback": "smalltrain.engine.events",
    "DatasetStore": "smalltrain.store",
    "JobSpec": "smalltrain.service.manager",
    "JobStatus": "smalltrain.engine.jobs",
    "JobStore": "smalltrain.store",
    "MetricsHistory": "smalltrain.engine.events",
    "ModelStore": "smalltrain.store",
    "ResourceMonitor": "smalltrain.engine.resources",
    "ResourceStatus": "smalltrain.engine.resources",
    "SweepSpec": "smalltrain.service.sweeps.spec",
    "TrainingJob": "smalltrain.engine.jobs",
    "TrainingManager": "smalltrain.service.manager",
    "TrainingRunner": "smalltrain.engine.runner",
    "export_model": "smalltrain.service.exports",
    "list_exports": "smalltrain.service.exports",
}

__all__ = ["__version__", *sorted(_EXPORTS)]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'smalltrain' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


def __dir__() -> list[str]:
    return __all__
