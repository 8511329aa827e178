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
- ``GET /jobs/{id}/seen``: what the model sees (the run's ``seen.json``);
  ``GET /jobs/{id}/seen/{file}``: one file it lists (no other name is served)
- ``GET /models?dataset=``; ``POST /models/{dataset}/{name}/activate``;
  ``DELETE /models/{dataset}/{name}``; ``GET /models/{dataset}/{name}/weights``
- ``GET|POST /models/{dataset}/{name}/exports`` ``{"format"}``, ``GET .../exports/{format}``:
  export a model and download it (``exports_api``; 501 when an optional package is missing)
- ``GET /models/{dataset}/{name}/results``: a detection model's results.json (404 with how to
  compute it when it has none); ``GET .../results/{file}``: a file it lists
  (``worst/01-x.png``; no other name is served)
- ``GET /outputs/{folder}/{file}``: files made by the UI's "use" actions
- ``GET /weights``; ``POST /weights`` (multipart ``file`` and optional ``name``): register a
  detection .pt (its sha256 in the answer) so that jobs can name it as ``base_model``; a name
  already taken is 409. Jobs started here name weights only this way, never by path.

Errors are ``{"error": {"type", "message"}}`` with 400 (bad input: bodies and query values are
checked by ``inputs``), 404 (not found), 409 (the job's state does not allow it), 413 (too
large) or 500; messages quote at most ~100 characters of a user's value. Every route sits
behind the guards of ``app.protect`` (token, Host, Origin, content type).
"""

from __future__ import annotations

import asyncio
import json
import shutil
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, StreamingResponse

from smalltrain import __version__, errors
from smalltrain.engine.context import cancel_mode
from smalltrain.engine.jobs import JobStatus
from smalltrain.engine.plain import plain
from smalltrain.ui.server.exports_api import install_exports
from smalltrain.ui.server.inputs import BadRequest, error_response, query_int, read_json
from smalltrain.ui.server.options import MAX_JSON_BYTES
from smalltrain.ui.server.uploads import stream_multipart
from smalltrain.ui.viewmodels.backend import Backend

__all__ = ["install_api"]

#: Event ids are SQLite integers.
MAX_EVENT_ID = 2**63 - 1


def _json(data: Any, status: int = 200) -> JSONResponse:
    return JSONResponse(plain(data), status_code=status)


async def _body(request: Request, allowed: tuple[str, ...] | None = None) -> dict[str, Any]:
    return await read_json(request, allowed, MAX_JSON_BYTES)


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
        rows = await asyncio.to_thread(store.history.events_after, job_id, after, 500)
        for event_id, data in rows:
            after = event_id
            yield _sse(event_id, str(data.get("type", "event")), data)
        if rows:
            delay, quiet_since = 0.02, time.monotonic()
            continue
        job = await asyncio.to_thread(store.get_job, job_id)
        if job.is_terminal:
            if not await asyncio.to_thread(store.history.events_after, job_id, after, 1):
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


def _datasets(router: APIRouter, backend: Backend, max_upload_bytes: int) -> None:
    @router.get("/datasets")
    def list_datasets() -> JSONResponse:
        return _json([r.to_dict() for r in backend.datasets.list()])

    @router.post("/datasets", status_code=201)
    async def add_dataset(request: Request) -> JSONResponse:
        body = await _body(request, ("name", "path", "kind"))
        name, path = body.get("name"), body.get("path")
        if not isinstance(name, str) or not isinstance(path, str):
            raise BadRequest('the body needs "name" and "path" (strings)')
        result = await asyncio.to_thread(backend.datasets.register, name, path, body.get("kind"))
        return _json(result, 201)

    @router.post("/datasets/upload", status_code=201)
    async def upload_dataset(request: Request) -> JSONResponse:
        """Multipart ``name`` and ``files``, streamed to ``<home>/ui/staging`` (see ``uploads``)."""
        import tempfile

        folder = Path(tempfile.mkdtemp(prefix="api-upload-", dir=backend.ui.staging))
        try:
            parts = await stream_multipart(request, folder, max_upload_bytes)
            unknown = sorted((set(parts.fields) | set(parts.files)) - {"name", "files"})
            if unknown:
                raise BadRequest(
                    f"unknown field(s) {', '.join(map(repr, unknown))[:200]}; accepted: name, files"
                )
            name = parts.fields.get("name")
            if name is None:
                raise BadRequest('the upload needs a "name" field (curl -F name=...)')
            staged = parts.files.get("files", [])
            result = await asyncio.to_thread(backend.datasets.upload, name, staged, move=True)
        finally:
            await asyncio.to_thread(shutil.rmtree, folder, True)
        return _json(result, 201)

    @router.get("/datasets/{name}")
    def get_dataset(name: str) -> JSONResponse:
        record = backend.datasets.get(name)
        return _json({"record": record.to_dict(), "report": backend.datasets.report(name)})

    @router.delete("/datasets/{name}")
    def remove_dataset(name: str) -> JSONResponse:
        return _json({"removed": backend.datasets.remove(name).to_dict()})


def _jobs(router: APIRouter, backend: Backend) -> None:
    @router.get("/jobs")
    def list_jobs(
        status: str | None = None,
        task: str | None = None,
        dataset: str | None = None,
        limit: str | None = None,
        offset: str | None = None,
    ) -> JSONResponse:
        statuses = [_job_status(s) for s in status.split(",")] if status else None
        jobs = backend.manager.list_jobs(
            status=statuses,
            task=task,
            dataset=dataset,
            limit=query_int(limit, "limit", 50, 1, 500),
            offset=query_int(offset, "offset", 0, 0, 10**9),
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
        body = await _body(request, ("mode",))
        chosen = cancel_mode(str(mode or body.get("mode") or "graceful")[:100])
        job = await asyncio.to_thread(backend.cancel, job_id, chosen)
        return _json(job.to_dict())

    @router.post("/jobs/{job_id}/resume")
    def resume_job(job_id: str) -> JSONResponse:
        return _json(backend.resume(job_id).to_dict())

    @router.get("/jobs/{job_id}/events")
    def job_events(job_id: str, request: Request, after: str | None = None) -> StreamingResponse:
        job = backend.manager.get_job(job_id)  # 404 before the stream starts
        start = _start_after(after, request.headers.get("last-event-id"))
        return StreamingResponse(
            event_stream(backend, job.id, start, request),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )

    @router.get("/jobs/{job_id}/metrics")
    def job_metrics(job_id: str, key: str | None = None, scope: str = "epoch") -> JSONResponse:
        job = backend.manager.get_job(job_id)
        if key is None:
            return _json({"keys": backend.manager.jobs.history.metric_keys(job.id, scope)})
        points = backend.manager.jobs.history.metric_series(job.id, key, scope)
        return _json({"key": key, "scope": scope, "points": points})

    @router.get("/jobs/{job_id}/previews/{name}")
    def preview(job_id: str, name: str, download: int = 0) -> FileResponse:
        path = backend.preview_file(job_id, name)
        return FileResponse(path, filename=path.name if download else None)


def _seen(router: APIRouter, backend: Backend) -> None:
    """What the model sees: the run's manifest, and only the files it lists."""

    @router.get("/jobs/{job_id}/seen")
    def seen(job_id: str) -> JSONResponse:
        return _json(backend.seen(job_id) or {"items": []})

    @router.get("/jobs/{job_id}/seen/{name}")
    def seen_file(job_id: str, name: str) -> FileResponse:
        return FileResponse(backend.seen_file(job_id, name))


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
        outcome = backend.manager.model_queries.delete_and_promote(name, dataset)
        active = outcome.active.to_dict() if outcome.active else None
        return _json({"deleted": info.to_dict(), "active": active, "why": outcome.why})

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


def _results(router: APIRouter, backend: Backend) -> None:
    """A detection model's results: its results.json and the files it lists, nothing else."""

    @router.get("/models/{dataset}/{name}/results")
    def results_json(dataset: str, name: str) -> JSONResponse:
        found = backend.model_results(dataset, name)
        if found.data is None:
            raise FileNotFoundError(found.note())
        return _json(found.data)

    @router.get("/models/{dataset}/{name}/results/{file:path}")
    def results(dataset: str, name: str, file: str) -> FileResponse:
        return FileResponse(backend.results_file(dataset, name, file))


def _start_after(after: str | None, last_event_id: str | None) -> int:
    """Where an event stream resumes: ``?after=`` or the ``Last-Event-ID`` header (checked)."""
    if after is not None:
        return query_int(after, "after", 0, 0, MAX_EVENT_ID)
    return query_int(last_event_id, "Last-Event-ID", 0, 0, MAX_EVENT_ID)


def _job_status(text: str) -> JobStatus:
    try:
        return JobStatus(text.strip().upper())
    except ValueError:
        names = ", ".join(s.value for s in JobStatus)
        raise BadRequest(f"status={text[:100]!r}: must be one of {names}") from None


def _invalid(request: Request, exc: Exception) -> JSONResponse:
    """FastAPI's validation errors (422) as our 400, with the parameter named."""
    problems: list[dict[str, Any]] = getattr(exc, "errors", lambda: [])()
    where = "; ".join(
        f"{'.'.join(str(p) for p in e.get('loc', ()))[:100]}: {e.get('msg', '')}"
        for e in problems[:5]
    )
    return error_response(BadRequest(where or "invalid request"))


def _weights(router: APIRouter, backend: Backend, max_upload_bytes: int) -> None:
    @router.get("/weights")
    def list_weights() -> JSONResponse:
        return _json([e.to_dict() for e in backend.weights.list()])

    @router.post("/weights", status_code=201)
    async def add_weights(request: Request) -> JSONResponse:
        """Multipart ``file`` and optional ``name``, streamed like a dataset upload."""
        import tempfile

        folder = Path(tempfile.mkdtemp(prefix="api-weights-", dir=backend.ui.staging))
        try:
            parts = await stream_multipart(request, folder, max_upload_bytes)
            unknown = sorted((set(parts.fields) | set(parts.files)) - {"name", "file"})
            if unknown:
                raise BadRequest(
                    f"unknown field(s) {', '.join(map(repr, unknown))[:200]}; accepted: file, name"
                )
            files = parts.files.get("file", [])
            if len(files) != 1:
                raise BadRequest('the upload needs one "file" (curl -F file=@best.pt)')
            name = parts.fields.get("name") or None
            entry = await asyncio.to_thread(backend.add_weights, files[0], name)
        finally:
            await asyncio.to_thread(shutil.rmtree, folder, True)
        return _json(entry.to_dict(), 201)


def install_api(app: FastAPI, backend: Backend, max_upload_bytes: int = 8 * 2**30) -> None:
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

    _datasets(router, backend, max_upload_bytes)
    _jobs(router, backend)
    _seen(router, backend)
    _models(router, backend)
    _results(router, backend)
    install_exports(router, backend)
    _weights(router, backend, max_upload_bytes)
    app.include_router(router)
    for cls in (errors.SmallTrainError, OSError, ValueError, TimeoutError, KeyError):
        app.add_exception_handler(cls, lambda request, exc: error_response(exc))
    app.add_exception_handler(RequestValidationError, _invalid)
