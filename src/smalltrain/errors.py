"""Every error smalltrain raises on purpose.

Messages say what happened, to which file, field or job, and what to do next.

    SmallTrainError
    ├── ConfigError              a config field has an invalid value (names field, value, rule)
    ├── DatasetError             a dataset cannot be used at all (no usable audio, missing split...)
    ├── CheckpointError          a checkpoint is missing, truncated, corrupt or incompatible
    ├── TrainingError            training could not go on
    │   ├── TrainingDiverged     repeated NaN/inf losses survived every rollback
    │   └── GpuOutOfMemory       the job needed more GPU memory than its cap or the card
    ├── WeightsNotFound          pretrained weights are not on disk (we never download)
    ├── WrongModelKind           a model of another task (an audio model given to predict)
    ├── JobError                 a job-level problem
    │   ├── JobNotFound
    │   ├── InvalidTransition    a forbidden job state change
    │   └── NotResumable         a job or checkpoint cannot be resumed, with the reason
    ├── DiskFull                 a write found no space left (names the path, space needed and left)
    ├── StoreError               the database or the model registry refused an operation
    │   ├── RegistryCorrupt      registry.json is unreadable; models stay on disk
    │   ├── ModelNotFound
    │   ├── ModelExists
    │   ├── DatasetNotFound
    │   ├── DatasetExists        the name is registered for another folder (replace to move it)
    │   └── InvalidName          a name with separators, '..', control characters or too long
    ├── SchedulerBusy            another scheduler already holds this home
    ├── ServeError               the web UI cannot start as asked (unsafe host, bad --auth...)
    ├── MissingDependency        an optional package (Ray) is needed and not installed
    └── ClusterError             the Ray cluster cannot be reached or used
"""

from __future__ import annotations

from typing import Any

#: The most characters of a user's value an error message quotes.
QUOTE_LIMIT = 100


class _Cut(str):
    """A value's repr cut to ``QUOTE_LIMIT`` characters; its own repr is that text."""

    def __repr__(self) -> str:
        return str(self)


def shorten(value: Any, limit: int = QUOTE_LIMIT) -> Any:
    """``value`` itself when its repr is short; otherwise a stand-in whose repr is the first
    ``limit`` characters of it, then "..." and the full length, so a message never echoes a
    5,000-character name in full."""
    text = repr(value)
    if len(text) <= limit:
        return value
    return _Cut(f"{text[:limit]}... ({len(text)} characters)")


def quoted(value: Any, limit: int = QUOTE_LIMIT) -> str:
    """``value``'s repr as a string whose own repr is that text (cut as ``shorten`` cuts): a
    stand-in that quotes a list or an object the way the value itself would, where only plain
    values may go (an error's attributes crossing to another process)."""
    text = repr(value)
    return _Cut(text if len(text) <= limit else f"{text[:limit]}... ({len(text)} characters)")


class SmallTrainError(Exception):
    """Base class of every error smalltrain raises on purpose."""


class ConfigError(SmallTrainError, ValueError):
    """A config field has an invalid value."""

    def __init__(self, field: str, value: Any, rule: str) -> None:
        self.field = field
        self.value = value
        self.rule = rule
        super().__init__(f"{shorten(field, 60)!s}={shorten(value)!r}: {rule}")


class DatasetError(SmallTrainError):
    """A dataset cannot be used at all."""


class CheckpointError(SmallTrainError):
    """A checkpoint is missing, truncated, corrupt or incompatible."""


class TrainingError(SmallTrainError):
    """Training could not go on."""


class TrainingDiverged(TrainingError):
    """The loss stayed NaN/inf after every allowed rollback."""


class GpuOutOfMemory(TrainingError):
    """The job needed more GPU memory than its cap (``max_gpu_memory_percent``) or the card."""


class WeightsNotFound(SmallTrainError):
    """Pretrained weights are not on disk; smalltrain never downloads them."""


class WrongModelKind(SmallTrainError):
    """A model of another task than the command needs (an audio model given to predict)."""


class JobError(SmallTrainError):
    """A job-level problem."""


class JobNotFound(JobError):
    """No job has this id."""


class InvalidTransition(JobError):
    """A forbidden job state change."""


class NotResumable(JobError):
    """A job or checkpoint cannot be resumed."""


class DiskFull(SmallTrainError):
    """A write found no space left on its disk (ENOSPC) or the user's quota spent (EDQUOT).

    Attributes:
        path: the file that could not be written.
        needed: bytes the write needed (a lower bound when not known exactly), or None.
        free: bytes left on that disk for this user when it failed, or None.
    """

    def __init__(self, message: str, path: str, needed: int | None, free: int | None) -> None:
        super().__init__(message)
        self.path = path
        self.needed = needed
        self.free = free

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (str(self), self.path, self.needed, self.free))


class StoreError(SmallTrainError):
    """The database or the model registry refused an operation."""


class RegistryCorrupt(StoreError):
    """registry.json could not be read; the models themselves stay on disk."""


class ModelNotFound(StoreError):
    """No model of this name is registered."""


class ModelExists(StoreError):
    """A model of this name is already registered."""


class DatasetNotFound(StoreError):
    """No dataset of this name is registered."""


class DatasetExists(StoreError):
    """A dataset name is registered for another folder; replacing it must be asked for."""


class InvalidName(StoreError, ValueError):
    """A dataset or model name that is unsafe as a folder name."""


class SchedulerBusy(SmallTrainError):
    """Another scheduler process already holds this home."""


class ServeError(SmallTrainError):
    """The web UI / HTTP API cannot start as asked (e.g. a public host without --auth)."""


#: What a write the database or the registry refused raises (a full disk, a locked database):
#: catch these where a job must still end cleanly.
STORE_REFUSED: tuple[type[SmallTrainError], ...] = (StoreError, DiskFull)


class MissingDependency(SmallTrainError):
    """An optional package is needed for this feature and is not installed."""


class ClusterError(SmallTrainError):
    """The Ray cluster cannot be reached or used."""
