"""The checks in front of every route that do not need credentials: Host, Origin, body.

Each is a small ASGI middleware, so no route (the API, Gradio's ``/gradio_api/*``, its uploads,
streams and static files) can be forgotten. ``app.build_app`` stacks them, outermost first:

1. ``HostGuard``: only known ``Host`` names are served (400 otherwise). A web page that rebinds
   its own name to 127.0.0.1 (DNS rebinding) sends its own name as ``Host`` and is refused
   before any handler runs.
2. ``OriginGuard``: a request from another origin is refused (403): a foreign ``Origin``
   header (any method, so no CORS preflight is ever answered and nothing reflects an origin), or
   ``Sec-Fetch-Site: cross-site``/``same-site`` on anything but a page opened by the user. A
   page on another port of 127.0.0.1 is "same-site" for the browser (ports do not count), so
   SameSite cookies alone would not stop it. Another site may not frame the pages either
   (clickjacking: its page would lay ours under its own and steer the user's clicks): a
   framed navigation from another origin is refused, and every response says
   ``X-Frame-Options: SAMEORIGIN`` and ``Content-Security-Policy: frame-ancestors 'self'``.
3. ``auth.AuthGate``: the token (or Basic auth).
4. ``BodyGuard``: state-changing requests carry JSON (415 for the "simple" types a cross-site
   form can send: ``text/plain``, ``application/x-www-form-urlencoded``; multipart only on the
   upload routes), and a declared body over its cap gets 413 before it is read.

Refusals are JSON ``{"error": {"type", "message"}}`` (websockets are closed with 1008).
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from dataclasses import dataclass
from typing import Any

__all__ = [
    "BodyGuard",
    "HostGuard",
    "OriginGuard",
    "allowed_hosts",
    "header",
    "refuse",
    "split_host",
]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

LOOPBACK_NAMES = ("127.0.0.1", "localhost", "::1")
WILDCARDS = ("0.0.0.0", "::", "")
#: Routes that take multipart uploads (the API's and Gradio's).
UPLOAD_PATHS = ("/api/datasets/upload", "/api/weights", "/gradio_api/upload")
#: What a page is loaded into when another page embeds it (``Sec-Fetch-Dest``).
FRAMES = frozenset({"iframe", "frame", "embed", "object", "fencedframe"})
#: Sent with every response: only this server's own pages may frame its pages.
FRAME_HEADERS = (
    (b"x-frame-options", b"SAMEORIGIN"),
    (b"content-security-policy", b"frame-ancestors 'self'"),
)
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def header(scope: Scope, name: bytes) -> str | None:
    """The first value of a request header (latin-1 decoded, as HTTP headers are)."""
    for key, value in scope.get("headers", ()):
        if key.lower() == name:
            return bytes(value).decode("latin-1")
    return None


async def refuse(
    scope: Scope,
    send: Send,
    status: int,
    kind: str,
    message: str,
    headers: Iterable[tuple[bytes, bytes]] = (),
    *,
    html: str | None = None,
) -> None:
    """Answer a refused request (JSON, or ``html`` when given); close a websocket instead."""
    if scope["type"] == "websocket":
        await send({"type": "websocket.close", "code": 1008, "reason": message[:120]})
        return
    if html is not None:
        body, ctype = html.encode(), b"text/html; charset=utf-8"
    else:
        body = json.dumps({"error": {"type": kind, "message": message}}).encode()
        ctype = b"application/json"
    head = [(b"content-type", ctype), (b"content-length", str(len(body)).encode()), *headers]
    head.append((b"cache-control", b"no-store"))
    await send({"type": "http.response.start", "status": status, "headers": head})
    await send({"type": "http.response.body", "body": body})


def split_host(value: str) -> tuple[str, str]:
    """``(name, port)`` of a Host header (``[::1]:7860`` -> ``("::1", "7860")``), name
    lower-cased; a trailing dot is kept (``localhost.`` is another name)."""
    value = value.strip().lower()
    if value.startswith("["):
        name, _, rest = value[1:].partition("]")
        return name, rest.removeprefix(":")
    if value.count(":") == 1:
        name, _, port = value.partition(":")
        return name, port
    return value, ""


def allowed_hosts(host: str, extra: Iterable[str] = ()) -> frozenset[str]:
    """The Host names served: loopback's, the ``--host`` listened on, and ``extra``
    (``--allow-host``). A wildcard ``--host`` (0.0.0.0, ::) adds this machine's name."""
    names = set(LOOPBACK_NAMES)
    names.update(split_host(h)[0] if h.startswith("[") else h.strip().lower() for h in extra)
    if host.strip() in WILDCARDS:
        import socket

        names.add(socket.gethostname().lower())
        names.add(socket.getfqdn().lower())
    else:
        names.add(host.strip().strip("[]").lower())
    names.discard("")
    return frozenset(names)


def _is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


@dataclass
class HostGuard:
    """Refuse (400) a request whose ``Host`` is not served (see the module docstring).

    With a wildcard bind (``--host 0.0.0.0``), an IP address as ``Host`` is served too: a page
    can rebind a name, never an address, so an address there means the user typed it.
    """

    app: ASGIApp
    hosts: frozenset[str]
    any_address: bool = False

    def allowed(self, value: str | None) -> bool:
        if not value:
            return False
        name, port = split_host(value)
        if port and not port.isdigit():
            return False
        return name in self.hosts or (self.any_address and _is_ip(name))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        value = header(scope, b"host")
        if self.allowed(value):
            await self.app(scope, receive, send)
            return
        shown = (value or "")[:100]
        await refuse(
            scope,
            send,
            400,
            "InvalidHost",
            f"Host {shown!r} is not served here (a page using another name for this machine is "
            "refused). Open http://127.0.0.1:<port>/, or start the server with --allow-host NAME",
        )


def served_origin(scope: Scope) -> str:
    """The origin a page of this server has: ``http://`` + the Host the request was sent to."""
    scheme = "https" if scope.get("scheme") in ("https", "wss") else "http"
    return f"{scheme}://{(header(scope, b'host') or '').strip().lower()}"


def _origin_problem(scope: Scope) -> str | None:
    origin = header(scope, b"origin")
    if origin is not None and origin.strip().lower() != served_origin(scope):
        return f"requests from another origin ({origin[:100]!r}) are refused"
    site = (header(scope, b"sec-fetch-site") or "").lower()
    dest = (header(scope, b"sec-fetch-dest") or "").lower()
    if dest in FRAMES and site not in ("", "same-origin", "none"):
        return f"another site may not frame this server's pages (a {site} {dest})"
    if site in ("cross-site", "same-site"):
        method = scope.get("method", "GET")
        mode = (header(scope, b"sec-fetch-mode") or "").lower()
        if scope["type"] == "websocket" or method not in ("GET", "HEAD") or mode != "navigate":
            return f"a {site} request is refused (only this server's own pages may call it)"
    return None


@dataclass
class OriginGuard:
    """Refuse (403) requests sent by another site's page (see the module docstring)."""

    app: ASGIApp

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        problem = _origin_problem(scope) if scope["type"] in ("http", "websocket") else None
        if problem is not None:
            await refuse(scope, send, 403, "CrossOriginRefused", problem)
            return
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def framed_only_by_us(message: Message) -> None:
            if message["type"] == "http.response.start":
                names = {bytes(k).lower() for k, _ in message.get("headers", ())}
                extra = [(k, v) for k, v in FRAME_HEADERS if k not in names]
                message = {**message, "headers": [*message.get("headers", ()), *extra]}
            await send(message)

        await self.app(scope, receive, framed_only_by_us)


def _content_problem(path: str, method: str, ctype: str, length: int | None) -> str | None:
    """Why a state-changing request's body type is refused (None: accepted)."""
    mime = ctype.split(";")[0].strip().lower()
    upload = path in UPLOAD_PATHS
    if upload and mime != "multipart/form-data":
        return f"{path} takes multipart/form-data (files), not {mime or 'no content type'}"
    if upload or mime == "application/json":
        return None
    if not mime and not length:
        return None  # no body at all: `curl -X POST .../resume`
    if path.startswith("/api/") or mime in (
        "text/plain",
        "application/x-www-form-urlencoded",
        "multipart/form-data",
    ):
        return (
            f"{method} {path[:100]} needs Content-Type: application/json, not {mime or 'none'} "
            "(curl: -H 'Content-Type: application/json')"
        )
    return None


@dataclass
class BodyGuard:
    """Refuse a state-changing request's body by type (415) or declared size (413).

    Args:
        app: the application.
        max_json_bytes: the cap of an API request's JSON body.
        max_upload_bytes: the cap of an upload, and of any other body (Gradio's).
    """

    app: ASGIApp
    max_json_bytes: int
    max_upload_bytes: int

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("method") not in UNSAFE_METHODS:
            await self.app(scope, receive, send)
            return
        path = scope.get("path", "")
        raw_length = header(scope, b"content-length")
        length = int(raw_length) if raw_length and raw_length.strip().isdigit() else None
        problem = _content_problem(
            path, scope["method"], header(scope, b"content-type") or "", length
        )
        if problem is not None:
            await refuse(scope, send, 415, "UnsupportedMediaType", problem)
            return
        api_json = path.startswith("/api/") and path not in UPLOAD_PATHS
        cap = self.max_json_bytes if api_json else self.max_upload_bytes
        if length is not None and length > cap:
            await refuse(
                scope,
                send,
                413,
                "RequestTooLarge",
                f"the request body is {length} bytes; at most {cap} here"
                + (" (raise it with smalltrain ui --max-upload)" if path in UPLOAD_PATHS else ""),
            )
            return
        await self.app(scope, receive, send)
