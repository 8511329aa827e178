"""``SmallDataTrainer``: Ultralytics' ``DetectionTrainer`` with less waiting per epoch.

Passed to ``YOLO.train(trainer=...)`` by the detect task (Ultralytics itself is not changed).
On small data an Ultralytics epoch spends more time validating and saving than training; this
subclass:

- validates every k epochs (``val_every``; 0 = auto: k from the measured train and validation
  times, see :func:`~smalltrain.tasks.detect.presets.val_interval`). The first epoch of an
  attempt (to measure), the last epoch and any epoch Ultralytics is stopping at are always
  validated. An epoch without validation reports no validation metrics (``validated`` is False;
  Ultralytics' results.csv gets NaN there, never the previous values), no fitness, and so
  never writes best.pt;
- counts early-stopping patience in validations (:class:`ValidationStopper`), so a patience of
  p means p validations without improvement whatever k is;
- builds and writes last.pt and best.pt on a background thread
  (:mod:`~smalltrain.tasks.detect.writer`): the training thread only takes a snapshot
  (:mod:`~smalltrain.tasks.detect.snapshot`); the writer serialises it into exactly
  Ultralytics' checkpoint and writes it. The writer is flushed before
  anything reads the files (NaN recovery, the final evaluation) and when training ends for any
  reason (completion, cancel, error), so a cancelled run leaves a whole, resumable last.pt.
  best.pt is written only when fitness improves (Ultralytics' rule, kept);
- records the detection results during the final evaluation of best.pt
  (:class:`~smalltrain.tasks.detect.results.ResultsValidator`), once, not every epoch;
- draws the batches Ultralytics would plot with ``plots=True`` (the first three, and the first
  three once mosaic closes) into ``<run>/seen/`` with ``seen.json``
  (:mod:`~smalltrain.tasks.detect.seen`), while every other plot stays off.
"""

from __future__ import annotations

import contextlib
import csv
import math
import time
from copy import copy
from pathlib import Path
from typing import Any

from ultralytics.cfg import DEFAULT_CFG
from ultralytics.models.yolo.detect import DetectionTrainer
from ultralytics.utils.torch_utils import EarlyStopping

from smalltrain.tasks.detect import snapshot
from smalltrain.tasks.detect.presets import val_interval
from smalltrain.tasks.detect.results import ResultsValidator
from smalltrain.tasks.detect.seen import SeenBatches
from smalltrain.tasks.detect.writer import CheckpointWriter, async_path

__all__ = ["SmallDataTrainer", "ValidationStopper", "trainer_for"]

_FITNESS_KEY = "metrics/mAP50-95(B)"


class ValidationStopper(EarlyStopping):
    """Early stopping with patience counted in validations (Ultralytics counts epochs).

    Ultralytics' ``EarlyStopping`` state (``best_fitness`` and ``best_epoch`` go into last.pt)
    plus ``since_best``: validations since the best one.
    """

    def __init__(self, patience: int | None) -> None:
        super().__init__(patience)
        self.since_best = 0

    def __call__(self, epoch: int, fitness: float | None) -> bool:
        """Record a validation's fitness (None: no validation); True when training should stop."""
        if fitness is None:
            return False
        if fitness > self.best_fitness or self.best_fitness == 0:
            self.best_epoch, self.best_fitness, self.since_best = epoch, fitness, 0
        else:
            self.since_best += 1
        self.possible_stop = self.since_best >= self.patience - 1
        return bool(self.since_best >= self.patience)


class SmallDataTrainer(DetectionTrainer):
    """See the module docstring. ``val_every`` is set per run by :func:`trainer_for`."""

    val_every = 1
    seen_dir: str | None = None  # where the first batches are drawn; None = not drawn
    writer_class: type[CheckpointWriter] = CheckpointWriter

    def __init__(
        self,
        cfg: Any = DEFAULT_CFG,
        overrides: dict[str, Any] | None = None,
        _callbacks: Any = None,
    ) -> None:
        super().__init__(cfg, overrides, _callbacks)
        for name in ("last.pt", "best.pt"):  # a crash's half-done writes: the old files hold
            for stale in Path(self.wdir).glob(f".{name}.*.tmp"):
                stale.unlink(missing_ok=True)
        self.writer = self.writer_class()
        self.last = async_path(Path(self.last), self.writer)
        self.best = async_path(Path(self.best), self.writer)
        self.val_interval = max(1, int(self.val_every))
        self.validated = True
        self.validations = 0
        self.timings: dict[str, float] = {}
        self._last_val_epoch: int | None = None
        self._epoch_t0 = time.perf_counter()
        self.seen = SeenBatches(Path(self.seen_dir)) if self.seen_dir else None

    def train(self) -> None:
        """Ultralytics' training, then every queued checkpoint on disk (also on cancel/error)."""
        try:
            super().train()
        except BaseException:
            with contextlib.suppress(Exception):  # the training error is the one to report
                self.writer.close()
            raise
        self.writer.close()

    def _setup_train(self) -> None:
        super()._setup_train()
        previous = self.stopper
        stopper = ValidationStopper(self.args.patience)
        stopper.best_fitness = previous.best_fitness
        stopper.best_epoch = previous.best_epoch
        if self.start_epoch > 0:  # resumed: patience used so far, from the run's results.csv
            stopper.since_best = self._validations_after(previous.best_epoch)
            stopper.possible_stop = stopper.since_best >= stopper.patience - 1
        self.stopper = stopper

    def _validations_after(self, best_epoch: int) -> int:
        """Validated epochs in results.csv after ``best_epoch`` (1-based, as the stopper's)."""
        if not Path(self.csv).is_file():
            return 0
        with open(self.csv, newline="", encoding="utf-8") as f:
            rows = [{k.strip(): v for k, v in row.items() if k} for row in csv.DictReader(f)]
        done = {
            int(float(row["epoch"]))
            for row in rows
            if math.isfinite(_float(row.get(_FITNESS_KEY)))
            and best_epoch < int(float(row["epoch"])) <= self.start_epoch
        }
        return len(done)

    def _model_train(self) -> None:
        self._epoch_t0 = time.perf_counter()  # called at the start of every epoch's batches
        super()._model_train()

    def preprocess_batch(self, batch: dict[str, Any]) -> dict[str, Any]:
        """Ultralytics' preprocessing; a batch it would plot is drawn into ``seen/``."""
        batch = super().preprocess_batch(batch)
        if self.seen is not None:
            self.seen.batch(self, batch)
        return batch

    def _due(self) -> bool:
        epoch = int(self.epoch)
        return bool(
            epoch + 1 >= self.epochs
            or self.stop
            or self._last_val_epoch is None
            or epoch - self._last_val_epoch >= self.val_interval
        )

    def validate(self) -> tuple[dict[str, float] | None, float | None]:
        """Validate if this epoch is due (see the module docstring); else no metrics, no fitness."""
        train_s = time.perf_counter() - self._epoch_t0
        if not self._due():
            self.validated = False
            metrics: dict[str, float] = dict.fromkeys(self.metrics or {}, math.nan)
            return metrics, None
        t0 = time.perf_counter()
        result = super().validate()
        val_s = time.perf_counter() - t0
        self.validated = True
        self.validations += 1
        self._last_val_epoch = int(self.epoch)
        self.timings = {"train_s": train_s, "val_s": val_s}
        if self.val_every == 0:
            self.val_interval = val_interval(train_s, val_s, int(self.epochs))
        return result

    def save_model(self) -> bool:
        """Ultralytics' ``save_model``, serialised and written on the writer thread.

        Same files, same rules: last.pt always, best.pt when this epoch's fitness is the best,
        ``epoch{n}.pt`` every ``save_period`` epochs; all from one snapshot taken now.
        """
        paths = [Path(self.last)]
        if self.best_fitness == self.fitness:
            paths.append(Path(self.best))
        if self.save_period > 0 and self.epoch % self.save_period == 0:
            paths.append(Path(self.wdir) / f"epoch{self.epoch}.pt")
        self.writer.submit(paths, snapshot.take(self))
        return True

    def _handle_nan_recovery(self, epoch: int) -> bool:
        self.writer.flush()  # recovery reads last.pt from disk
        return bool(super()._handle_nan_recovery(epoch))

    def get_validator(self) -> ResultsValidator:
        """Ultralytics' detection validator, able to record the results (final evaluation)."""
        return ResultsValidator(
            self.test_loader,
            save_dir=self.save_dir,
            args=copy(self.args),
            _callbacks=self.callbacks,
        )

    def final_eval(self) -> None:
        """Ultralytics' final evaluation of best.pt, once every checkpoint is on disk; that
        pass records the detection results (``results``), the epochs' passes do not."""
        self.writer.flush()
        if isinstance(self.validator, ResultsValidator):
            self.validator.record = True
        super().final_eval()


def _float(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def trainer_for(val_every: int, seen_dir: Path | None = None) -> type[SmallDataTrainer]:
    """A :class:`SmallDataTrainer` class for one run (Ultralytics instantiates it itself)."""
    attrs = {"val_every": int(val_every), "seen_dir": str(seen_dir) if seen_dir else None}
    return type("SmallDataTrainer", (SmallDataTrainer,), attrs)
