"""HTTP Basic auth for everything the server serves: the page, Gradio's own routes, the API.

One check in front of the whole app, so no route can be forgotten. Browsers ask for the user
and password once and send them with every request of the page (scripts, event streams, audio);
``curl -u user:password`` does the same for the API. Over a network, put the server behind a
TLS proxy: Basic auth sends the password in every request.
"""

from __future__ import annotations

import base64
import binascii
import hmac
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from typing import Any

__all__ = ["BasicAuth"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

_DENIED = b'{"error": {"type": "Unauthorized", "message": "user and password required"}}'


def _credentials(header: bytes) -> tuple[str, str] | None:
    scheme, _, value = header.partition(b" ")
    if scheme.lower() != b"basic":
        return None
    try:
        user, sep, password = base64.b64decode(value.strip(), validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return None
    return (user, password) if sep else None


class BasicAuth:
    """ASGI middleware: requests without valid credentials get 401 (WebSockets are closed).

    Args:
        app: the application to protect.
        credentials: the accepted ``(user, password)`` pairs.
        realm: the name browsers show in their login prompt.
    """

    def __init__(
        self, app: ASGIApp, credentials: Iterable[tuple[str, str]], realm: str = "smalltrain"
    ) -> None:
        self.app = app
        self.pairs = [(u.encode(), p.encode()) for u, p in credentials]
        if not self.pairs:
            raise ValueError("BasicAuth needs at least one user:password")
        self.realm = realm

    def allowed(self, headers: Iterable[tuple[bytes, bytes]]) -> bool:
        """Whether the request's Authorization header holds accepted credentials."""
        header = next((v for k, v in headers if k.lower() == b"authorization"), b"")
        found = _credentials(header)
        if found is None:
            return False
        user, password = found[0].encode(), found[1].encode()
        ok = False
        for u, p in self.pairs:  # compare every pair in constant time
            ok |= hmac.compare_digest(u, user) & hmac.compare_digest(p, password)
        return ok

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket") or self.allowed(scope.get("headers", [])):
            await self.app(scope, receive, send)
            return
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008})
            return
        await send(
            {
                "type": "http.response.start",
                "status": 401,
                "headers": [
                    (b"www-authenticate", f'Basic realm="{self.realm}", charset="UTF-8"'.encode()),
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(_DENIED)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": _DENIED})
