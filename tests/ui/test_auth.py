"""The auth gate in front of the whole app (page, Gradio routes, API): Basic auth and the token,
as the ASGI middleware sees them (the token's own cases: tests/security/test_token.py)."""

from __future__ import annotations

import asyncio
import base64
from typing import Any

from smalltrain.ui.server.auth import AuthGate, Message


async def _app(scope: Any, receive: Any, send: Any) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"inside"})


def _call(app: AuthGate, header: str | None, kind: str = "http") -> list[Message]:
    sent: list[Message] = []
    headers = [] if header is None else [(b"authorization", header.encode())]

    async def receive() -> Message:
        return {"type": "http.request"}

    async def send(message: Message) -> None:
        sent.append(message)

    scope = {"type": kind, "headers": headers, "path": "/api/jobs", "method": "GET"}
    asyncio.run(app(scope, receive, send))
    return sent


def _basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def test_only_the_right_credentials_pass() -> None:
    app = AuthGate(_app, None, [("ana", "s3cret"), ("bo", "pw")])
    assert _call(app, _basic("ana", "s3cret"))[1]["body"] == b"inside"
    assert _call(app, _basic("bo", "pw"))[1]["body"] == b"inside"
    for header in (None, _basic("ana", "wrong"), _basic("eve", "s3cret"), "Bearer x", "Basic !!"):
        start = _call(app, header)[0]
        assert start["status"] == 401, header
        assert dict(start["headers"])[b"www-authenticate"].startswith(b'Basic realm="smalltrain"')


def test_websockets_without_credentials_are_closed() -> None:
    app = AuthGate(_app, None, [("ana", "s3cret")])
    (closed,) = _call(app, None, "websocket")
    assert closed["type"] == "websocket.close"
    assert closed["code"] == 1008


def test_the_token_passes_where_basic_auth_is_also_accepted() -> None:
    app = AuthGate(_app, "t" * 43, [("ana", "s3cret")])
    assert _call(app, "Bearer " + "t" * 43)[1]["body"] == b"inside"
    assert _call(app, "token " + "t" * 43)[1]["body"] == b"inside"
    assert _call(app, _basic("ana", "s3cret"))[1]["body"] == b"inside"
    assert _call(app, "Bearer " + "u" * 43)[0]["status"] == 401


def test_without_token_or_credentials_everything_passes() -> None:
    assert _call(AuthGate(_app, None), None)[1]["body"] == b"inside"
