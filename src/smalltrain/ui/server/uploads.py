"""Multipart uploads streamed straight to disk, with a cap.

FastAPI's ``UploadFile`` spools each file into a temporary file of the system temp folder, which
the handler then copies again: a 500 MB upload used about 1.5 GB of temporary disk. Here each
part is written once, as it arrives, into a folder of the home (``<home>/ui/staging``), from where
the dataset code moves it (a rename, on the same disk). The whole body is capped
(``--max-upload``): past it, the parse stops and nothing is kept.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, cast

from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.requests import Request

from smalltrain.errors import DatasetError
from smalltrain.ui.server.inputs import BadRequest

__all__ = ["Parts", "stream_multipart"]

#: Text fields are small (a dataset name); their total is capped apart from files.
MAX_FIELD_BYTES = 64 * 1024
MAX_PARTS = 10_000


@dataclass
class Parts:
    """The text fields and the files (written under ``folder``) of one multipart body."""

    folder: Path
    fields: dict[str, str] = field(default_factory=dict)
    files: dict[str, list[Path]] = field(default_factory=dict)


def _safe_name(raw: str, index: int) -> str:
    """A file's base name (no folders, no leading dots), or ``upload-<n>``."""
    name = re.split(r"[/\\]", raw)[-1].lstrip(".").strip()
    name = "".join(c for c in name if c.isprintable())[:200]
    return name or f"upload-{index}"


class _Sink:
    """python-multipart's callbacks: headers per part, then its bytes to a field or a file."""

    def __init__(self, parts: Parts) -> None:
        self.parts = parts
        self.header_field = b""
        self.header_value = b""
        self.headers: dict[bytes, bytes] = {}
        self.name = ""
        self.out: BinaryIO | None = None
        self.text = bytearray()
        self.text_total = 0
        self.count = 0

    def callbacks(self) -> dict[str, Any]:
        return {
            "on_part_begin": self.begin,
            "on_header_field": lambda d, s, e: setattr(
                self, "header_field", self.header_field + d[s:e]
            ),
            "on_header_value": lambda d, s, e: setattr(
                self, "header_value", self.header_value + d[s:e]
            ),
            "on_header_end": self.header_end,
            "on_headers_finished": self.headers_done,
            "on_part_data": self.data,
            "on_part_end": self.end,
        }

    def begin(self) -> None:
        self.headers, self.text, self.out = {}, bytearray(), None
        self.count += 1
        if self.count > MAX_PARTS:
            raise DatasetError(f"more than {MAX_PARTS} parts in one upload")

    def header_end(self) -> None:
        self.headers[self.header_field.lower()] = self.header_value
        self.header_field, self.header_value = b"", b""

    def headers_done(self) -> None:
        _, options = parse_options_header(self.headers.get(b"content-disposition", b""))
        self.name = options.get(b"name", b"").decode("utf-8", "replace")
        filename = options.get(b"filename")
        if filename is not None:
            base = _safe_name(filename.decode("utf-8", "replace"), self.count)
            target = self.parts.folder / f"{self.count:05d}" / base
            target.parent.mkdir()
            self.out = open(target, "wb")  # noqa: SIM115 (closed in end() or close())
            self.parts.files.setdefault(self.name, []).append(target)

    def data(self, data: bytes, start: int, end: int) -> None:
        if self.out is not None:
            self.out.write(data[start:end])
            return
        self.text_total += end - start
        if self.text_total > MAX_FIELD_BYTES:
            raise DatasetError(f"the upload's text fields exceed {MAX_FIELD_BYTES} bytes")
        self.text += data[start:end]

    def end(self) -> None:
        if self.out is not None:
            self.out.close()
            self.out = None
        else:
            self.parts.fields[self.name] = self.text.decode("utf-8", "replace")

    def close(self) -> None:
        if self.out is not None:
            self.out.close()


async def stream_multipart(request: Request, folder: Path, max_bytes: int) -> Parts:
    """Parse a multipart body, writing its files under ``folder`` as they arrive.

    Raises:
        BadRequest: (413) the body passed ``max_bytes``.
        DatasetError: not multipart, or malformed.
    """
    ctype, options = parse_options_header(request.headers.get("content-type", ""))
    boundary = options.get(b"boundary")
    if ctype != b"multipart/form-data" or not boundary:
        raise DatasetError(
            "the upload must be multipart/form-data (curl -F name=... -F files=@...)"
        )
    parts = Parts(folder)
    sink = _Sink(parts)
    parser = MultipartParser(boundary, cast(Any, sink.callbacks()))
    received = 0
    try:
        async for chunk in request.stream():
            received += len(chunk)
            if received > max_bytes:
                raise BadRequest(
                    f"the upload is larger than {max_bytes} bytes, the server's cap; register "
                    "the folder by its path instead, or restart with a larger --max-upload",
                    status=413,
                )
            parser.write(chunk)
        parser.finalize()
    except BadRequest:
        raise
    except (ValueError, KeyError, OSError) as e:  # python-multipart's parse errors are ValueErrors
        raise DatasetError(f"the upload is not valid multipart data ({str(e)[:100]})") from None
    finally:
        sink.close()
    return parts
