"""Another site's page cannot drive the server: foreign Host names (DNS rebinding), foreign
origins, cross-site fetches and "simple" form posts are refused before any handler runs, on
the API's routes and on Gradio's own, and no CORS header ever lets another origin read."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import WebSocketDisconnect

from smalltrain.ui.server.options import ServeOptions
from tests.support.api import ORIGIN, Served, served

EVIL = "http://evil.example"
JOB = {"dataset": "toyset", "overrides": {"epochs": 1}}

#: (method, path, body): every state-changing route of the API.
WRITES: list[tuple[str, str, Any]] = [
    ("POST", "/api/datasets", {"name": "toyset", "path": "/tmp"}),
    ("POST", "/api/jobs", JOB),
    ("POST", "/api/jobs/0123456789ab/cancel", {"mode": "immediate"}),
    ("POST", "/api/jobs/0123456789ab/resume", None),
    ("POST", "/api/models/toyset/m/activate", None),
    ("DELETE", "/api/models/toyset/m", None),
    ("DELETE", "/api/datasets/toyset", None),
]

BAD_HOSTS = ["evil.example:7880", "evil.example", "localhost.", "localhost.:7860",
             "127.0.0.1.nip.io:7860", "[::2]:7860", "localhost:x", ""]  # fmt: skip


def _send(client: Any, method: str, path: str, body: Any, headers: dict[str, str]) -> Any:
    import json

    content = None if body is None else json.dumps(body)
    return client.request(method, path, content=content, headers=headers)


@pytest.mark.parametrize("host", BAD_HOSTS)
def test_a_foreign_host_is_refused_on_every_route(api: Served, host: str) -> None:
    for method, path in [("GET", "/api/health"), ("GET", "/api/jobs"), ("POST", "/api/jobs")]:
        headers = {"Host": host, "Content-Type": "application/json"}
        answer = _send(api.client, method, path, JOB if method == "POST" else None, headers)
        assert answer.status_code == 400, (host, path)
        assert answer.json()["error"]["type"] == "InvalidHost"
        assert "home" not in answer.text  # /api/health would have told the home's path
    assert api.job_ids() == []


def test_known_hosts_and_allow_host_names_are_served(home: Path) -> None:
    options = ServeOptions(port=7860, allow_hosts=("box.lan",))
    with served(home, options, run_scheduler=False) as s:
        for host in ["127.0.0.1:7860", "localhost:7860", "[::1]:7860", "LOCALHOST", "box.lan:7860"]:
            assert s.client.get("/api/jobs", headers={"Host": host}).status_code == 200, host
        assert s.client.get("/api/jobs", headers={"Host": "other.lan"}).status_code == 400


@pytest.mark.parametrize(("method", "path", "body"), WRITES)
@pytest.mark.parametrize(
    "ctype", ["text/plain", "application/x-www-form-urlencoded", "application/json"]
)
def test_a_foreign_origin_is_refused_whatever_the_content_type(
    api: Served, method: str, path: str, body: Any, ctype: str
) -> None:
    answer = _send(api.client, method, path, body, {"Origin": EVIL, "Content-Type": ctype})
    assert answer.status_code == 403
    assert "another origin" in answer.json()["error"]["message"]
    assert "access-control-allow-origin" not in answer.headers


def test_a_cross_origin_upload_is_refused(api: Served) -> None:
    files = [("files", ("a.wav", b"RIFF", "audio/wav"))]
    answer = api.client.post(
        "/api/datasets/upload", data={"name": "up"}, files=files, headers={"Origin": EVIL}
    )
    assert answer.status_code == 403
    assert not (api.home / "datasets").exists() or not list((api.home / "datasets").iterdir())


@pytest.mark.parametrize("site", ["cross-site", "same-site"])
@pytest.mark.parametrize(("method", "path", "body"), WRITES[:3])
def test_a_cross_site_fetch_without_origin_is_refused(
    api: Served, site: str, method: str, path: str, body: Any
) -> None:
    headers = {"Sec-Fetch-Site": site, "Sec-Fetch-Mode": "no-cors", "Content-Type": "text/plain"}
    assert _send(api.client, method, path, body, headers).status_code == 403
    # a script on another site reading a GET route is refused too (not only writes)
    read = api.client.get("/api/health", headers={"Sec-Fetch-Site": site, "Sec-Fetch-Mode": "cors"})
    assert read.status_code == 403


def test_a_link_from_another_site_still_opens_the_page(api: Served) -> None:
    nav = {"Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "navigate", "Accept": "text/html"}
    answer = api.anonymous.get("/", headers=nav)
    assert answer.status_code == 401  # the page saying how to get in, not a 403
    assert answer.headers["content-type"].startswith("text/html")


@pytest.mark.parametrize("site", ["same-site", "cross-site"])
@pytest.mark.parametrize("dest", ["iframe", "frame", "embed", "object"])
def test_another_site_cannot_frame_the_pages(api: Served, site: str, dest: str) -> None:
    """Clickjacking: a page on another port of 127.0.0.1 ("same-site": the cookie is sent)
    frames ours under its own and steers the user's clicks. Refused, before the token is even
    looked at; a link the user follows (dest "document") still opens the page."""
    framed = {"Sec-Fetch-Site": site, "Sec-Fetch-Mode": "navigate", "Sec-Fetch-Dest": dest,
              "Accept": "text/html"}  # fmt: skip
    answer = api.client.get("/", headers=framed)
    assert answer.status_code == 403
    assert "may not frame" in answer.json()["error"]["message"]
    followed = api.client.get("/api/health", headers={**framed, "Sec-Fetch-Dest": "document"})
    assert followed.status_code == 200


def test_every_answer_says_only_this_server_may_frame_it(api: Served) -> None:
    """For browsers that send no Sec-Fetch headers: the response itself forbids framing by
    another origin (X-Frame-Options, CSP frame-ancestors); the server's own pages may."""
    own = {"Sec-Fetch-Site": "same-origin", "Sec-Fetch-Dest": "iframe", "Accept": "text/html"}
    for answer in (
        api.client.get("/api/health"),
        api.client.get("/api/jobs/0123456789ab"),  # an error answer too
        api.anonymous.get("/", headers={"Accept": "text/html"}),  # the sign-in page
        api.client.get("/api/health", headers=own),
    ):
        assert answer.headers["x-frame-options"] == "SAMEORIGIN", answer.request.url
        assert answer.headers["content-security-policy"] == "frame-ancestors 'self'"


@pytest.mark.parametrize(("method", "path", "body"), WRITES)
@pytest.mark.parametrize("ctype", ["text/plain", "application/x-www-form-urlencoded"])
def test_same_origin_writes_need_json(
    api: Served, method: str, path: str, body: Any, ctype: str
) -> None:
    headers = {"Origin": ORIGIN, "Content-Type": ctype}
    answer = _send(api.client, method, path, body or {}, headers)
    assert answer.status_code == 415
    assert "application/json" in answer.json()["error"]["message"]
    assert api.job_ids() == []


def test_no_preflight_is_answered_for_another_origin(api: Served) -> None:
    preflight = {"Origin": EVIL, "Access-Control-Request-Method": "DELETE"}
    answer = api.client.options("/api/models/toyset/m", headers=preflight)
    assert answer.status_code == 403
    assert "access-control-allow-origin" not in answer.headers
    answer = api.client.options("/api/models/toyset/m", headers={**preflight, "Host": "localhost."})
    assert answer.status_code == 400


# --- Gradio's own routes, behind the same guards -------------------------------------------


@pytest.fixture(scope="module")
def full(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """The whole app: the API and Gradio's (built once for this module, ~10 s)."""
    with served(tmp_path_factory.mktemp("gradio") / "home", ui=True, run_scheduler=False) as s:
        yield s


def _multipart(name: str = "a.txt") -> tuple[bytes, str]:
    boundary = "----smalltrainboundary"
    body = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="files"; filename="{name}"\r\n'
        f"Content-Type: text/plain\r\n\r\nhello\r\n--{boundary}--\r\n"
    ).encode()
    return body, f"multipart/form-data; boundary={boundary}"


def test_gradio_serves_its_page_and_upload_with_the_token(full: Served) -> None:
    assert full.client.get("/", headers={"Accept": "text/html"}).status_code == 200
    assert full.client.get("/gradio_api/info").status_code == 200
    body, ctype = _multipart()
    ok = full.client.post("/gradio_api/upload", content=body, headers={"Content-Type": ctype})
    assert ok.status_code == 200, ok.text
    assert full.anonymous.get("/gradio_api/info").status_code == 401
    assert full.anonymous.get("/config").status_code == 401


def test_gradio_refuses_foreign_hosts_origins_and_form_posts(full: Served) -> None:
    body, ctype = _multipart()
    upload = {"Content-Type": ctype}
    assert full.client.get("/", headers={"Host": "evil.example:7880"}).status_code == 400
    assert full.client.get("/config", headers={"Host": "localhost."}).status_code == 400
    foreign = full.client.post(
        "/gradio_api/upload", content=body, headers={**upload, "Origin": EVIL}
    )
    assert foreign.status_code == 403
    plain = full.client.post(
        "/gradio_api/queue/join", content=b"{}", headers={"Content-Type": "text/plain"}
    )
    assert plain.status_code == 415
    # the rebinding of CVE-2024-28224's kind: Host "localhost." made Gradio's CORS layer
    # reflect any origin with credentials; now the Host alone is refused
    preflight = {"Origin": EVIL, "Access-Control-Request-Method": "DELETE", "Host": "localhost."}
    answer = full.client.options("/api/models/x/y", headers=preflight)
    assert answer.status_code == 400
    assert "access-control-allow-origin" not in answer.headers
    answer = full.client.options("/gradio_api/upload", headers={**preflight, "Host": "127.0.0.1"})
    assert answer.status_code == 403
    assert "access-control-allow-origin" not in answer.headers


def test_websockets_from_another_origin_are_closed(full: Served) -> None:
    host = {"Host": "127.0.0.1:7860"}  # TestClient's websockets ignore its base_url
    foreign = {**host, "Origin": EVIL}
    with (
        pytest.raises(WebSocketDisconnect) as closed,
        full.client.websocket_connect("/gradio_api/ws", headers=foreign),
    ):
        pass
    assert closed.value.code == 1008
    assert "another origin" in closed.value.reason
    own = {**host, "Origin": ORIGIN}
    with (
        pytest.raises(WebSocketDisconnect) as closed,
        full.anonymous.websocket_connect("/gradio_api/ws", headers=own),
    ):
        pass
    assert closed.value.code == 1008
    assert "token" in closed.value.reason


def test_an_api_upload_streams_where_gradios_file_route_does_not_serve(full: Served) -> None:
    """Gradio's /gradio_api/file= serves any file under its temporary folder (<home>/ui/tmp)
    to a token holder; an API upload used to stream there, readable while half-written."""
    for folder, served_there in (("staging", False), ("tmp", True)):
        part = full.home / "ui" / folder / "api-upload-x" / "a.wav"
        part.parent.mkdir(parents=True, exist_ok=True)
        part.write_bytes(b"RIFF half of a sound")
        answer = full.client.get(f"/gradio_api/file={part}")
        assert (answer.status_code == 200) is served_there, (folder, answer.status_code)
    from smalltrain.ui.env import UIPaths

    assert UIPaths(full.home).staging == full.home / "ui" / "staging"
