"""Reading API requests without a 500, and answering errors without echoing a whole value.

- ``read_json``: the body as a JSON object, capped in size and nesting depth, with unknown
  top-level fields refused by name (400, never a ``RecursionError``).
- ``query_int``: a numeric query or header value within bounds (``offset=1e20`` -> 400).
- ``error_response``: ``{"error": {"type", "message"}}`` with the status of the error's class;
  the message quotes at most ``QUOTE_CHARS`` characters of any one word (``clip``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse

from smalltrain import errors

__all__ = [
    "MAX_DEPTH",
    "QUOTE_CHARS",
    "STATUS_CODES",
    "BadRequest",
    "clip",
    "error_response",
    "query_int",
    "read_json",
    "short",
]

#: Characters of a user's value quoted in an error message, at most.
QUOTE_CHARS = 100
#: Nesting depth of a JSON body, at most (a job spec needs 4).
MAX_DEPTH = 32
MAX_MESSAGE = 2000


class BadRequest(errors.SmallTrainError, ValueError):
    """A request the API cannot take as sent (HTTP 400, or the ``status`` given)."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


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
    errors.MissingDependency: 501,
    ValueError: 400,
    TimeoutError: 504,
}


def short(value: Any, limit: int = QUOTE_CHARS) -> str:
    """``repr(value)`` cut to ``limit`` characters, saying how long it was."""
    text = value if isinstance(value, str) else repr(value)
    if len(text) <= limit:
        return repr(value) if isinstance(value, str) else text
    return repr(text[:limit]) + f"... ({len(text)} characters)"


def clip(message: str, limit: int = QUOTE_CHARS) -> str:
    """``message`` with every word longer than ``limit`` cut (a 5,000-character name or path
    appears as its first ``limit`` characters), and the whole at most ``MAX_MESSAGE``."""
    cut = re.sub(
        rf"\S{{{limit + 1},}}",
        lambda m: f"{m[0][:limit]}... ({len(m[0])} characters)",
        message,
    )
    return cut if len(cut) <= MAX_MESSAGE else cut[:MAX_MESSAGE] + "..."


def _status(exc: BaseException) -> int:
    if isinstance(exc, BadRequest):
        return exc.status
    for cls in type(exc).__mro__:
        if cls in STATUS_CODES:
            return STATUS_CODES[cls]
    return 500


def error_response(exc: BaseException) -> JSONResponse:
    """An error as JSON with its status code (user values in the message clipped)."""
    if isinstance(exc, errors.ConfigError):
        field, rule = str(getattr(exc, "field", "?")), getattr(exc, "rule", str(exc))
        message = f"{field[:QUOTE_CHARS]}={short(getattr(exc, 'value', '?'))}: {rule}"
    else:
        message = str(exc)
    if isinstance(exc, OSError) and not isinstance(exc, FileNotFoundError) and exc.strerror:
        message = f"{exc.filename or ''}: {exc.strerror}".lstrip(": ")
    return JSONResponse(
        {"error": {"type": type(exc).__name__, "message": clip(message)}},
        status_code=_status(exc),
    )


def _too_deep(data: Any, limit: int) -> bool:
    """Whether ``data`` nests deeper than ``limit`` (iterative: no recursion limit to hit)."""
    stack = [(data, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, (dict, list)):
            if depth > limit:
                return True
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, depth + 1) for child in children)
    return False


async def read_json(
    request: Request, allowed: Iterable[str] | None = None, max_bytes: int = 1 << 20
) -> dict[str, Any]:
    """The request's body as a JSON object (``{}`` when empty).

    Args:
        request: the request.
        allowed: the top-level fields accepted; others are refused by name. None: any.
        max_bytes: the body's cap (413 past it, even when sent without a length).

    Raises:
        BadRequest: too large (413), not JSON, nested deeper than ``MAX_DEPTH``, not an
            object, or holding unknown fields (400).
    """
    raw = bytearray()
    async for chunk in request.stream():
        raw += chunk
        if len(raw) > max_bytes:
            raise BadRequest(f"the request body is over {max_bytes} bytes", status=413)
    if not raw.strip():
        return {}
    try:
        data = json.loads(raw)
    except RecursionError:
        raise BadRequest(f"the JSON body nests deeper than {MAX_DEPTH} levels") from None
    except ValueError as e:
        raise BadRequest(f"the request body must be JSON ({str(e)[:QUOTE_CHARS]})") from None
    if _too_deep(data, MAX_DEPTH):
        raise BadRequest(f"the JSON body nests deeper than {MAX_DEPTH} levels")
    if not isinstance(data, dict):
        raise BadRequest(f"the request body must be a JSON object, not {type(data).__name__}")
    if allowed is not None:
        known = set(allowed)
        unknown = sorted(k for k in data if k not in known)
        if unknown:
            names = ", ".join(short(k, 40) for k in unknown[:5])
            raise BadRequest(
                f"unknown field(s) {names}{' ...' if len(unknown) > 5 else ''}; accepted: "
                + ", ".join(sorted(known))
            )
    return data


def query_int(value: str | None, name: str, default: int, low: int, high: int) -> int:
    """A whole number given as text (a query parameter or header) within ``[low, high]``.

    Raises:
        BadRequest: not a whole number (``1e20``, ``NaN``, ``-``), or out of bounds (named).
    """
    if value is None or value.strip() == "":
        return default
    text = value.strip()
    if len(text) > 20 or not re.fullmatch(r"-?\d+", text):
        raise BadRequest(f"{name}={short(text)}: must be a whole number from {low} to {high}")
    number = int(text)
    if not low <= number <= high:
        raise BadRequest(f"{name}={short(text)}: must be a whole number from {low} to {high}")
    return number
