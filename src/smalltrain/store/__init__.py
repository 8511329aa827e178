"""Persistence: the SQLite job store, the dataset registry and the model registry.

- ``JobStore`` (``db.py``): jobs, attempts, events, metrics and datasets in
  ``$SMALLTRAIN_HOME/smalltrain.db``.
- ``DatasetStore`` (``datasets.py``): datasets registered by name (``DatasetRecord``, in
  ``records.py``): path, kind, summary, snapshot text and fingerprints.
- ``ModelStore`` (``models.py``): trained models in the original ``models/<dataset>/registry.json``
  layout.
"""

from __future__ import annotations

from smalltrain.store.datasets import DatasetStore, quick_fingerprint
from smalltrain.store.db import Attempt, JobStore, MetricRow
from smalltrain.store.models import ModelEntry, ModelInfo, ModelStore
from smalltrain.store.names import MAX_NAME_LENGTH, validate_name
from smalltrain.store.records import DatasetRecord

__all__ = [
    "MAX_NAME_LENGTH",
    "Attempt",
    "DatasetRecord",
    "DatasetStore",
    "JobStore",
    "MetricRow",
    "ModelEntry",
    "ModelInfo",
    "ModelStore",
    "quick_fingerprint",
    "validate_name",
]
