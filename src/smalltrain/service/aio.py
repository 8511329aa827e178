"""``AsyncTrainingManager``: the manager's async flavour.

Every method runs the sync one in a worker thread (``asyncio.to_thread``), so no database
query, checkpoint scan or wait ever blocks the event loop. Training itself always runs
elsewhere (the scheduler's thread and the job's child process), unlike the original sketch, which
ran blocking training inside ``asyncio.create_task`` and froze the loop.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from smalltrain.engine.context import CancelMode
from smalltrain.engine.events import Event
from smalltrain.engine.jobs import TrainingJob
from smalltrain.service.manager import TrainingManager

if TYPE_CHECKING:
    from smalltrain.service.sweeps.spec import SweepSummary
    from smalltrain.store.models import ModelInfo

__all__ = ["AsyncTrainingManager"]


class AsyncTrainingManager:
    """Awaitable versions of ``TrainingManager``'s methods, same names and arguments.

    Example::

        manager = AsyncTrainingManager.open()  # or AsyncTrainingManager(TrainingManager.open())
        job_id = await manager.start_training(dataset="kicks")
        async for event in manager.subscribe(job_id):
            ...
    """

    def __init__(self, manager: TrainingManager) -> None:
        self.sync = manager

    @classmethod
    def open(
        cls, home: str | os.PathLike[str] | None = None, **kwargs: Any
    ) -> AsyncTrainingManager:
        """``TrainingManager.open(home, **kwargs)``, wrapped."""
        return cls(TrainingManager.open(home, **kwargs))

    async def start_training(self, spec: Any = None, /, **kwargs: Any) -> str:
        """See ``TrainingManager.start_training``."""
        return await asyncio.to_thread(self.sync.start_training, spec, **kwargs)

    async def cancel(self, job_id: str, mode: CancelMode = "graceful") -> TrainingJob:
        """See ``TrainingManager.cancel``."""
        return await asyncio.to_thread(self.sync.cancel, job_id, mode)

    async def resume(self, job_id: str) -> str:
        """See ``TrainingManager.resume``."""
        return await asyncio.to_thread(self.sync.resume, job_id)

    async def get_job(self, job_id: str) -> TrainingJob:
        """See ``TrainingManager.get_job``."""
        return await asyncio.to_thread(self.sync.get_job, job_id)

    async def list_jobs(self, **filters: Any) -> list[TrainingJob]:
        """See ``TrainingManager.list_jobs``."""
        return await asyncio.to_thread(self.sync.list_jobs, **filters)

    async def wait(self, job_id: str, timeout: float | None = None) -> TrainingJob:
        """See ``TrainingManager.wait``."""
        return await asyncio.to_thread(self.sync.wait, job_id, timeout)

    async def subscribe(self, job_id: str) -> AsyncIterator[Event]:
        """Async-iterate a job's events until it ends (see ``TrainingManager.subscribe``)."""
        sub = await asyncio.to_thread(self.sync.subscribe, job_id)
        done = object()
        try:
            while True:
                event = await asyncio.to_thread(next, sub, done)
                if event is done:
                    return
                assert isinstance(event, Event)
                yield event
        finally:
            sub.close()

    async def list_models(self, dataset: str | None = None) -> list[ModelInfo]:
        """See ``TrainingManager.list_models``."""
        return await asyncio.to_thread(self.sync.list_models, dataset)

    async def delete_model(self, name: str, dataset: str | None = None) -> bool:
        """See ``TrainingManager.delete_model``."""
        return await asyncio.to_thread(self.sync.delete_model, name, dataset)

    async def set_active_model(self, name: str, dataset: str | None = None) -> ModelInfo:
        """See ``TrainingManager.set_active_model``."""
        return await asyncio.to_thread(self.sync.set_active_model, name, dataset)

    async def get_active_model(self, dataset: str) -> ModelInfo | None:
        """See ``TrainingManager.get_active_model``."""
        return await asyncio.to_thread(self.sync.get_active_model, dataset)

    async def start_sweep(self, spec: Any = None, /, **kwargs: Any) -> str:
        """See ``TrainingManager.start_sweep``."""
        return await asyncio.to_thread(self.sync.start_sweep, spec, **kwargs)

    async def get_sweep(self, sweep_id: str) -> SweepSummary:
        """See ``TrainingManager.get_sweep``."""
        return await asyncio.to_thread(self.sync.get_sweep, sweep_id)

    async def wait_sweep(self, sweep_id: str, timeout: float | None = None) -> SweepSummary:
        """See ``TrainingManager.wait_sweep``."""
        return await asyncio.to_thread(self.sync.wait_sweep, sweep_id, timeout)

    async def cancel_sweep(self, sweep_id: str) -> int:
        """See ``TrainingManager.cancel_sweep``."""
        return await asyncio.to_thread(self.sync.cancel_sweep, sweep_id)

    async def close(self) -> None:
        """See ``TrainingManager.close``."""
        await asyncio.to_thread(self.sync.close)
