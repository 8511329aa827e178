"""HTTP Basic auth in front of the whole app (page, Gradio routes, API): the ASGI middleware."""

from __future__ import annotations

import asyncio
import base64
from typing import Any

import pytest

from smalltrain.ui.server.auth import BasicAuth, Message


async def _app(scope: Any, receive: Any, send: Any) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"inside"})


def _call(app: BasicAuth, header: str | None, kind: str = "http") -> list[Message]:
    sent: list[Message] = []
    headers = [] if header is None else [(b"authorization", header.encode())]

    async def receive() -> Message:
        return {"type": "http.request"}

    async def send(message: Message) -> None:
        sent.append(message)

    asyncio.run(app({"type": kind, "headers": headers}, receive, send))
    return sent


def _basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def test_only_the_right_credentials_pass() -> None:
    app = BasicAuth(_app, [("ana", "s3cret"), ("bo", "pw")])
    assert _call(app, _basic("ana", "s3cret"))[1]["body"] == b"inside"
    assert _call(app, _basic("bo", "pw"))[1]["body"] == b"inside"
    for header in (None, _basic("ana", "wrong"), _basic("eve", "s3cret"), "Bearer x", "Basic !!"):
        start = _call(app, header)[0]
        assert start["status"] == 401, header
        assert dict(start["headers"])[b"www-authenticate"].startswith(b'Basic realm="smalltrain"')


def test_websockets_without_credentials_are_closed() -> None:
    app = BasicAuth(_app, [("ana", "s3cret")])
    assert _call(app, None, "websocket") == [{"type": "websocket.close", "code": 1008}]


def test_no_credentials_is_a_mistake() -> None:
    with pytest.raises(ValueError, match="at least one"):
        BasicAuth(_app, [])
