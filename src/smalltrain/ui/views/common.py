"""What the views share: expected errors shown inline, choices for dropdowns."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from typing import Any

import gradio as gr

from smalltrain.errors import SmallTrainError
from smalltrain.ui.viewmodels import render
from smalltrain.ui.viewmodels.backend import Backend

log = logging.getLogger(__name__)

#: Errors a user action can meet; they are shown in the page, never as a traceback.
EXPECTED = (SmallTrainError, ValueError, KeyError, FileNotFoundError, TimeoutError, RuntimeError)


def error_html(exc: BaseException) -> str:
    """An expected error as an inline red notice (its message names what to do)."""
    if not isinstance(exc, EXPECTED):
        log.exception("unexpected error in the UI", exc_info=exc)
    text = str(exc.args[0]) if isinstance(exc, KeyError) and exc.args else str(exc)
    return render.message(text or type(exc).__name__, "error")


def dataset_choices(backend: Backend, kind: str | None = None) -> list[tuple[str, str]]:
    """``(label, name)`` of registered datasets (of one kind), e.g. ``kicks · audio · 35 files``."""
    out = []
    for r in backend.datasets.list():
        if kind is None or r.kind == kind:
            out.append((f"{r.name} · {r.kind} · {r.snapshot}", r.name))
    return out


def job_choices(
    backend: Backend, include: str | None = None, limit: int = 40
) -> list[tuple[str, str]]:
    """``(label, id)`` of the newest jobs, e.g. ``kicks-v2 · kicks · job 3f2a9c1e`` (no state in
    the label: it would go stale while the list is open; the view shows it)."""
    jobs = backend.manager.list_jobs(limit=limit)
    out = [(_job_label(j), j.id) for j in jobs]
    if include and all(v != include for _, v in out):
        with contextlib.suppress(SmallTrainError):
            out.insert(0, (_job_label(backend.manager.get_job(include)), include))
    return out


def _job_label(job: Any) -> str:
    return f"{job.model_name} · {job.dataset or job.task} · job {job.short_id}"


def guard(fn: Callable[..., Any], n_outputs: int, message_at: int) -> Callable[..., Any]:
    """Wrap a handler: an expected error fills output ``message_at`` with the error notice and
    leaves the other outputs as they are."""

    def wrapper(*args: Any) -> Any:
        try:
            return fn(*args)
        except EXPECTED as exc:
            out: list[Any] = [gr.skip()] * n_outputs
            out[message_at] = error_html(exc)
            return out[0] if n_outputs == 1 else tuple(out)

    wrapper.__name__ = getattr(fn, "__name__", "handler")
    wrapper.__doc__ = fn.__doc__
    return wrapper
