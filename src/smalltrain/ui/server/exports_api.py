"""The export endpoints of the HTTP API (``server/api.py`` installs them under ``/api``):

- ``GET /models/{dataset}/{name}/exports``: the model's exports (format, files, size, ...)
- ``POST /models/{dataset}/{name}/exports`` ``{"format": "onnx"}``: export it (201), through
  the same ``service.exports.export_model`` as ``smalltrain export``, in a helper process; a
  missing optional package is 501 and names the extra to install
- ``GET /models/{dataset}/{name}/exports/{format}``: download it (its file, or a zip)

The client names a registered model and a format, never a path.
"""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, JSONResponse

from smalltrain.engine.plain import plain
from smalltrain.ui.server.inputs import BadRequest, read_json
from smalltrain.ui.server.options import MAX_JSON_BYTES
from smalltrain.ui.viewmodels.backend import Backend
from smalltrain.ui.viewmodels.exports import ExportsUI

__all__ = ["install_exports"]


def install_exports(router: APIRouter, backend: Backend) -> None:
    """Add the export routes to ``router``."""
    exports = ExportsUI(backend.home, backend.manager.models, backend.pool)

    @router.get("/models/{dataset}/{name}/exports")
    def list_exports(dataset: str, name: str) -> JSONResponse:
        return JSONResponse(plain([e.to_dict() for e in exports.list(dataset, name)]))

    @router.post("/models/{dataset}/{name}/exports", status_code=201)
    async def export(dataset: str, name: str, request: Request) -> JSONResponse:
        body = await read_json(request, ("format",), MAX_JSON_BYTES)
        fmt = body.get("format", "onnx")
        if not isinstance(fmt, str) or not fmt.strip():
            raise BadRequest('"format" must be a string such as "onnx"')
        made = await asyncio.to_thread(exports.run, dataset, name, fmt)
        return JSONResponse(plain(made.to_dict()), status_code=201)

    @router.get("/models/{dataset}/{name}/exports/{fmt}")
    def download(dataset: str, name: str, fmt: str) -> FileResponse:
        path = exports.download(dataset, name, fmt)
        return FileResponse(path, filename=f"{dataset}-{name}-{path.name}")
