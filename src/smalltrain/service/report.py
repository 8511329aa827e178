"""What an attempt leaves for a person to look at: the metrics plot in the run folder."""

from __future__ import annotations

import logging
from pathlib import Path

from smalltrain.engine.jobs import TrainingJob
from smalltrain.store.db import JobStore

__all__ = ["write_metrics_plot"]

log = logging.getLogger(__name__)


def write_metrics_plot(store: JobStore, job: TrainingJob, home: Path) -> Path | None:
    """Draw the job's epoch metrics (every attempt so far) into ``<run_dir>/metrics.png``.

    Never raises: a plot is a convenience and must not fail a job.
    """
    if not job.run_dir:
        return None
    try:
        from smalltrain.engine.plots import PLOT_NAME, plot_history

        keys = store.history.metric_keys(job.id, "epoch")
        series = {k: store.history.metric_series(job.id, k, "epoch") for k in keys}
        title = f"{job.task} job {job.id}: {job.model_name} on {job.dataset}"
        return plot_history(series, Path(job.run_dir) / PLOT_NAME, title, home)
    except Exception as exc:  # matplotlib missing or broken, a full disk...
        # One line for the user (a full disk is already reported where it matters); the
        # traceback only in debug logs.
        log.warning("job %s: could not draw the metrics plot: %s", job.id, exc)
        log.debug("metrics plot of job %s", job.id, exc_info=True)
        return None
