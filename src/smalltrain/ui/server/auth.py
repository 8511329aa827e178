"""Who may use the server: the token (by default) or HTTP Basic auth, in front of every route.

One check in front of the whole app (the page, Gradio's own routes, the API), so no route can
be forgotten. ``AuthGate`` accepts, in this order:

- ``Authorization: Bearer <token>`` (or ``token <token>``, as Jupyter's clients send it);
- the session cookie a browser got by opening the printed ``/?token=...`` URL;
- ``?token=<token>`` in the URL: a page's GET then gets the cookie and a redirect to the same
  address without the token, so it leaves the address bar and history;
- ``Authorization: Basic`` with a ``--auth`` user and password (for use over a LAN; put a TLS
  proxy in front, Basic auth sends the password with every request).

The cookie holds a session key drawn when the server starts, never the token: browsers send a
cookie to every port of its host (RFC 6265 §8.5), so any other server on 127.0.0.1 the user
visits receives it. What it could learn then ends with this server's run, and is no use as the
API's Bearer token. A browser signs in again after a restart, from the printed URL (an earlier
run's cookie is taken as no credentials, not as a wrong guess).

Without credentials: 401 with a JSON message saying how to get in (a small HTML page for a
browser opening a page); the token file's path is named only when the server listens on
loopback alone. Wrong credentials count against the client's address, and a wrong password
against the address and the user name together, so behind a proxy (one address for all) one
user's mistakes do not lock the others out (``throttle``).
"""

from __future__ import annotations

import base64
import binascii
import hmac
import html
import secrets
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qsl, urlencode

from smalltrain.ui.server import token as tokens
from smalltrain.ui.server.guard import ASGIApp, Message, Receive, Scope, Send, header, refuse
from smalltrain.ui.server.throttle import Throttle

__all__ = ["AuthGate", "Message", "basic_credentials"]


def basic_credentials(value: str | None) -> tuple[str, str] | None:
    """``(user, password)`` of a ``Basic`` Authorization header, or None."""
    scheme, _, rest = (value or "").partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        text = base64.b64decode(rest.strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None
    user, sep, password = text.partition(":")
    return (user, password) if sep else None


def _bearer(value: str | None) -> str | None:
    scheme, _, rest = (value or "").partition(" ")
    return rest.strip() if scheme.lower() in ("bearer", "token") and rest.strip() else None


def _is_page(scope: Scope) -> bool:
    """A browser opening a page (not a script, not the API)."""
    path = scope.get("path", "")
    accept = header(scope, b"accept") or ""
    return (
        scope["type"] == "http"
        and scope.get("method") in ("GET", "HEAD")
        and not path.startswith(("/api/", "/gradio_api/"))
        and "text/html" in accept
    )


_PAGE = """<!doctype html><meta charset="utf-8"><title>smalltrain: sign in</title>
<body style="font-family: sans-serif; max-width: 40em; margin: 4em auto">
<h1>This smalltrain server needs its token</h1>
<p>Open the address that <code>smalltrain ui</code> printed when it started (it ends with
<code>?token=...</code>), or add <code>?token=</code> and the contents of
<code>{path}</code> to this address.</p></body>"""


@dataclass
class AuthGate:
    """ASGI middleware: lets a request through with the token or Basic credentials.

    Args:
        app: the application to protect.
        token: the server's token; None: no token (``--no-token``).
        credentials: accepted ``(user, password)`` pairs (``--auth``); none: no Basic auth.
        port: the port served (the cookie's name carries it).
        token_file: where the token is kept, named in the refusal when ``local``.
        throttle: counts wrong credentials per client address (and user name).
        local: the server listens on loopback alone (so the refusal may name the token file).
    """

    app: ASGIApp
    token: str | None
    credentials: Iterable[tuple[str, str]] = ()
    port: int = 7860
    token_file: Path | None = None
    throttle: Throttle = field(default_factory=Throttle)
    local: bool = True

    def __post_init__(self) -> None:
        self.pairs = [(u.encode(), p.encode()) for u, p in self.credentials]
        self.open = self.token is None and not self.pairs
        self.session = secrets.token_urlsafe(32)  # the cookie's value, for this run only

    def _basic_ok(self, found: tuple[str, str]) -> bool:
        user, password = found[0].encode(), found[1].encode()
        ok = False
        for u, p in self.pairs:  # every pair, in constant time
            ok |= hmac.compare_digest(u, user) & hmac.compare_digest(p, password)
        return ok

    def _query_token(self, scope: Scope) -> tuple[str | None, list[tuple[str, str]]]:
        query = bytes(scope.get("query_string", b"")).decode("latin-1")
        pairs = parse_qsl(query, keep_blank_values=True)
        given = next((v for k, v in pairs if k == "token"), None)
        return given, [(k, v) for k, v in pairs if k != "token"]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.open or scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        client = str((scope.get("client") or ("?", 0))[0])
        authorization = header(scope, b"authorization")
        cookie = tokens.cookie_value(header(scope, b"cookie") or "", self.port)
        query_token, rest = self._query_token(scope)
        tried = [t for t in (_bearer(authorization), query_token) if t]
        basic = basic_credentials(authorization) if self.pairs else None
        token = self.token
        if token is not None and tokens.matches(self.session, cookie):
            await self.app(scope, receive, send)
            return
        if token is not None and any(tokens.matches(token, t) for t in tried):
            if query_token and tokens.matches(token, query_token) and _is_page(scope):
                await self._redirect(scope, send, rest)
                return
            await self.app(scope, receive, send)
            return
        if not tried and basic is None:  # none, or only a cookie of an earlier run
            await self._ask(scope, send)
            return
        if basic is not None:
            client = f"{client} (user {basic[0][:64]!r})"
        wait = self.throttle.retry_after(client)
        if wait <= 0 and basic is not None and self._basic_ok(basic):
            await self.app(scope, receive, send)
            return
        wait = wait or self.throttle.failed(client)
        if wait > 0:
            await refuse(
                scope,
                send,
                429,
                "TooManyAttempts",
                f"too many wrong passwords or tokens from {client}; try again in {wait:.0f} s",
                [(b"retry-after", str(max(1, round(wait))).encode())],
            )
            return
        await self._ask(scope, send, wrong=True)

    async def _redirect(self, scope: Scope, send: Send, rest: list[tuple[str, str]]) -> None:
        """The browser gets the session cookie and goes to the same page without the token.
        The address stays on this server: ``//evil.example/?token=...`` goes to
        ``/evil.example/``, not to another host."""
        location = scope.get("root_path", "") + "/" + scope.get("path", "/").lstrip("/\\")
        if rest:
            location += "?" + urlencode(rest)
        await send(
            {
                "type": "http.response.start",
                "status": 303,
                "headers": [
                    (b"location", location.encode("utf-8", "replace")),
                    (b"set-cookie", tokens.set_cookie_header(self.session, self.port)),
                    (b"cache-control", b"no-store"),
                    (b"content-length", b"0"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": b""})

    async def _ask(self, scope: Scope, send: Send, wrong: bool = False) -> None:
        where = "<home>/ui/token"  # the path names the user's home: loopback clients only
        if self.token_file and self.local:
            where = str(self.token_file)
        ways = []
        if self.token is not None:
            ways.append(
                f"open the URL printed by `smalltrain ui` (it ends with ?token=...), or send "
                f"'Authorization: Bearer <token>' with the token read from {where}"
            )
        if self.pairs:
            ways.append("give the user and password of --auth (HTTP Basic auth)")
        what = "wrong token or password" if wrong else "this server needs its token"
        if self.token is None:
            what = "wrong user or password" if wrong else "user and password required"
        headers = []
        if self.pairs:
            headers.append((b"www-authenticate", b'Basic realm="smalltrain", charset="UTF-8"'))
        page = None
        if _is_page(scope) and not self.pairs:
            page = _PAGE.format(path=html.escape(where))
        await refuse(
            scope, send, 401, "Unauthorized", f"{what}: " + "; or ".join(ways), headers, html=page
        )
