"""The JSON HTTP API beside the UI, on the same server and behind the same auth.

Endpoints (all under ``/api``; the OpenAPI description is ``/api/openapi.json``):

- ``GET /health``; ``GET /datasets``; ``POST /datasets`` ``{"name", "path"}``;
  ``POST /datasets/upload`` (multipart ``name`` and ``files``); ``GET|DELETE /datasets/{name}``
- ``GET /jobs?status=&task=&dataset=&limit=&offset=``; ``POST /jobs`` ``{"dataset", "preset",
  "overrides", "config", "model_name"}``; ``GET /jobs/{id}``; ``POST /jobs/{id}/cancel``
  ``{"mode": "graceful"|"immediate"}``; ``POST /jobs/{id}/resume``
- ``GET /jobs/{id}/events``: server-sent events (``id``, ``event`` = the event type, ``data`` =
  its JSON), resumable with the ``Last-Event-ID`` header (or ``?after=ID``); the stream ends
  with an ``end`` event carrying the job once it has ended and every event was sent
- ``GET /jobs/{id}/metrics?key=&scope=``; ``GET /jobs/{id}/previews/{file}``
- ``GET /models?dataset=``; ``POST /models/{dataset}/{name}/activate``;
  ``DELETE /models/{dataset}/{name}``; ``GET /models/{dataset}/{name}/weights``
- ``GET /outputs/{folder}/{file}``: files made by the UI's "use" actions
- ``GET /weights``; ``POST /weights`` (multipart ``file`` and optional ``name``): register a
  detection .pt (its sha256 in the answer) so that jobs can name it as ``base_model``; a name
  already taken is 409. Jobs started here name weights only this way, never by path.

Errors are ``{"error": {"type", "message"}}`` with 400 (bad input), 404 (not found), 409 (the
job's state does not allow it) or 500.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from fastapi import APIRouter, FastAPI, File, Form, Request, UploadFile
from fastapi.responses import FileResponse, JSONResponse, StreamingResponse

from smalltrain import __version__, errors
from smalltrain.engine.context import cancel_mode
from smalltrain.engine.jobs import JobStatus
from smalltrain.engine.plain import plain
from smalltrain.ui.viewmodels.backend import Backend

__all__ = ["STATUS_CODES", "install_api"]

#: HTTP status of each error class (the first match in the class's MRO wins).
STATUS_CODES: dict[type[BaseException], int] = {
    errors.JobNotFound: 404,
    errors.ModelNotFound: 404,
    errors.DatasetNotFound: 404,
    FileNotFoundError: 404,
    errors.InvalidTransition: 409,
    errors.NotResumable: 409,
    errors.ModelExists: 409,
    errors.DatasetExists: 409,
    errors.SchedulerBusy: 409,
    errors.RegistryCorrupt: 500,
    errors.ConfigError: 400,
    errors.DatasetError: 400,
    errors.InvalidName: 400,
    errors.CheckpointError: 400,
    errors.WeightsNotFound: 400,
    errors.WrongModelKind: 400,
    errors.TrainingError: 400,
    ValueError: 400,
    TimeoutError: 504,
}


def _status(exc: BaseException) -> int:
    for cls in type(exc).__mro__:
        if cls in STATUS_CODES:
            return STATUS_CODES[cls]
    return 500


def error_response(exc: BaseException) -> JSONResponse:
    """An error as JSON with its status code."""
    return JSONResponse(
        {"error": {"type": type(exc).__name__, "message": str(exc)}}, status_code=_status(exc)
    )


def _json(data: Any, status: int = 200) -> JSONResponse:
    return JSONResponse(plain(data), status_code=status)


async def _body(request: Request) -> dict[str, Any]:
    raw = await request.body()
    if not raw.strip():
        return {}
    try:
        data = json.loads(raw)
    except ValueError as e:
        raise errors.ConfigError(
            "request body", raw[:40].decode(errors="replace"), f"must be JSON ({e})"
        ) from None
    if not isinstance(data, dict):
        raise errors.ConfigError("request body", type(data).__name__, "must be a JSON object")
    return data


def _sse(event_id: int | None, kind: str, data: Any) -> str:
    head = f"id: {event_id}\n" if event_id is not None else ""
    return f"{head}event: {kind}\ndata: {json.dumps(plain(data))}\n\n"


async def event_stream(
    backend: Backend, job_id: str, after: int, request: Request, keepalive_s: float = 15.0
) -> AsyncIterator[str]:
    """A job's stored events as SSE from ``after`` on, polling with back-off (20 ms to 0.5 s),
    until the job has ended and every event was sent (then an ``end`` event)."""
    store = backend.manager.jobs
    yield "retry: 1000\n\n"
    delay, quiet_since = 0.02, time.monotonic()
    while not backend.closing:
        rows = await asyncio.to_thread(store.events_after, job_id, after, 500)
        for event_id, data in rows:
            after = event_id
            yield _sse(event_id, str(data.get("type", "event")), data)
        if rows:
            delay, quiet_since = 0.02, time.monotonic()
            continue
        job = await asyncio.to_thread(store.get_job, job_id)
        if job.is_terminal:
            if not await asyncio.to_thread(store.events_after, job_id, after, 1):
                yield _sse(None, "end", job.to_dict())
                return
            continue
        if await request.is_disconnected():
            return
        if time.monotonic() - quiet_since > keepalive_s:
            quiet_since = time.monotonic()
            yield ": keep-alive\n\n"
        await asyncio.sleep(delay)
        delay = min(delay * 1.5, 0.5)


def _datasets(router: APIRouter, backend: Backend) -> None:
    @router.get("/datasets")
    def list_datasets() -> JSONResponse:
        return _json([r.to_dict() for r in backend.datasets.list()])

    @router.post("/datasets", status_code=201)
    async def add_dataset(request: Request) -> JSONResponse:
        body = await _body(request)
        name, path = body.get("name"), body.get("path")
        if not isinstance(name, str) or not isinstance(path, str):
            raise errors.ConfigError("body", body, 'needs "name" and "path" (strings)')
        result = await asyncio.to_thread(backend.datasets.register, name, path, body.get("kind"))
        return _json(result, 201)

    @router.post("/datasets/upload", status_code=201)
    async def upload_dataset(
        name: str = Form(...),
        files: list[UploadFile] = File(...),  # noqa: B008
    ) -> JSONResponse:
        staged = await asyncio.to_thread(_stage, backend, files)
        try:
            result = await asyncio.to_thread(backend.datasets.upload, name, staged)
        finally:
            if staged:
                shutil.rmtree(staged[0].parent, ignore_errors=True)
        return _json(result, 201)

    @router.get("/datasets/{name}")
    def get_dataset(name: str) -> JSONResponse:
        record = backend.datasets.get(name)
        return _json({"record": record.to_dict(), "report": backend.datasets.report(name)})

    @router.delete("/datasets/{name}")
    def remove_dataset(name: str) -> JSONResponse:
        return _json({"removed": backend.datasets.remove(name).to_dict()})


def _stage(backend: Backend, files: list[UploadFile]) -> list[Path]:
    """Write uploaded files under ``<home>/ui/tmp`` with their own (base) names."""
    import tempfile

    folder = Path(tempfile.mkdtemp(prefix="api-upload-", dir=backend.ui.tmp))
    out = []
    for f in files:
        target = folder / Path(f.filename or "upload").name
        with open(target, "wb") as dst:
            while chunk := f.file.read(1 << 20):
                dst.write(chunk)
        out.append(target)
    return out


def _jobs(router: APIRouter, backend: Backend) -> None:
    @router.get("/jobs")
    def list_jobs(
        status: str | None = None,
        task: str | None = None,
        dataset: str | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> JSONResponse:
        statuses = [JobStatus(s.strip().upper()) for s in status.split(",")] if status else None
        jobs = backend.manager.list_jobs(
            status=statuses,
            task=task,
            dataset=dataset,
            limit=max(1, min(limit, 500)),
            offset=max(0, offset),
        )
        return _json([j.to_dict() for j in jobs])

    @router.post("/jobs", status_code=201)
    async def start_job(request: Request) -> JSONResponse:
        spec = await _body(request)
        job = await asyncio.to_thread(backend.start_from_spec, spec)
        return _json(job.to_dict(), 201)

    @router.get("/jobs/{job_id}")
    def get_job(job_id: str) -> JSONResponse:
        return _json(backend.manager.get_job(job_id).to_dict())

    @router.post("/jobs/{job_id}/cancel")
    async def cancel_job(job_id: str, request: Request, mode: str | None = None) -> JSONResponse:
        body = await _body(request)
        chosen = cancel_mode(str(mode or body.get("mode") or "graceful"))
        job = await asyncio.to_thread(backend.cancel, job_id, chosen)
        return _json(job.to_dict())

    @router.post("/jobs/{job_id}/resume")
    def resume_job(job_id: str) -> JSONResponse:
        return _json(backend.resume(job_id).to_dict())

    @router.get("/jobs/{job_id}/events")
    def job_events(job_id: str, request: Request, after: int | None = None) -> StreamingResponse:
        job = backend.manager.get_job(job_id)  # 404 before the stream starts
        header = request.headers.get("last-event-id", "").strip()
        start = after if after is not None else int(header) if header.isdigit() else 0
        return StreamingResponse(
            event_stream(backend, job.id, start, request),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )

    @router.get("/jobs/{job_id}/metrics")
    def job_metrics(job_id: str, key: str | None = None, scope: str = "epoch") -> JSONResponse:
        job = backend.manager.get_job(job_id)
        if key is None:
            return _json({"keys": backend.manager.jobs.metric_keys(job.id, scope)})
        points = backend.manager.jobs.metric_series(job.id, key, scope)
        return _json({"key": key, "scope": scope, "points": points})

    @router.get("/jobs/{job_id}/previews/{name}")
    def preview(job_id: str, name: str, download: int = 0) -> FileResponse:
        path = backend.preview_file(job_id, name)
        return FileResponse(path, filename=path.name if download else None)


def _models(router: APIRouter, backend: Backend) -> None:
    @router.get("/models")
    def list_models(dataset: str | None = None) -> JSONResponse:
        if dataset is not None:
            return _json([row.to_dict() for row in backend.model_rows(dataset)])
        return _json([m.to_dict() for m in backend.manager.list_models()])

    @router.post("/models/{dataset}/{name}/activate")
    def activate(dataset: str, name: str) -> JSONResponse:
        return _json(backend.manager.set_active_model(name, dataset).to_dict())

    @router.delete("/models/{dataset}/{name}")
    def delete(dataset: str, name: str) -> JSONResponse:
        info = backend.manager.get_model(name, dataset)
        backend.manager.delete_model(name, dataset)
        return _json({"deleted": info.to_dict()})

    @router.get("/models/{dataset}/{name}/weights")
    def weights(dataset: str, name: str) -> FileResponse:
        info = backend.manager.get_model(name, dataset)
        if not info.weights.is_file():
            raise FileNotFoundError(f"{info.weights}: the model's weights file is missing")
        return FileResponse(info.weights, filename=f"{dataset}-{name}.pt")

    @router.get("/outputs/{folder}/{name}")
    def output(folder: str, name: str, download: int = 0) -> FileResponse:
        path = backend.use.output_file(folder, name)
        return FileResponse(path, filename=path.name if download else None)


def _weights(router: APIRouter, backend: Backend) -> None:
    @router.get("/weights")
    def list_weights() -> JSONResponse:
        return _json([e.to_dict() for e in backend.weights.list()])

    @router.post("/weights", status_code=201)
    async def add_weights(
        file: UploadFile = File(...),  # noqa: B008
        name: str | None = Form(None),
    ) -> JSONResponse:
        staged = await asyncio.to_thread(_stage, backend, [file])
        try:
            entry = await asyncio.to_thread(backend.add_weights, staged[0], name)
        finally:
            shutil.rmtree(staged[0].parent, ignore_errors=True)
        return _json(entry.to_dict(), 201)


def install_api(app: FastAPI, backend: Backend) -> None:
    """Add the ``/api`` routes and the error handlers to ``app``."""
    router = APIRouter(prefix="/api")

    @router.get("/health")
    def health() -> JSONResponse:
        return _json(
            {
                "status": "ok",
                "version": __version__,
                "home": str(backend.home),
                "scheduler": backend.scheduler_note(),
            }
        )

    _datasets(router, backend)
    _jobs(router, backend)
    _models(router, backend)
    _weights(router, backend)
    app.include_router(router)
    for cls in (errors.SmallTrainError, FileNotFoundError, ValueError, TimeoutError, KeyError):
        app.add_exception_handler(cls, lambda request, exc: error_response(exc))
