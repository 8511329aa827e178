"""The token, as Jupyter's: kept in the home (0600), reused, required by every route, shown by
a Bearer header, a cookie or ``?token=`` (which becomes an HttpOnly SameSite=Strict cookie)."""

from __future__ import annotations

import base64
import stat
from pathlib import Path
from typing import Any

import pytest

from smalltrain.errors import ServeError
from smalltrain.ui.server.options import ServeOptions
from smalltrain.ui.server.token import cookie_name, load_or_create, matches, token_path
from tests.support.api import Served, served

ROUTES = ["/api/health", "/api/jobs", "/api/datasets", "/api/models", "/api/openapi.json"]


def test_the_token_is_kept_0600_and_reused_until_a_new_one_is_asked(tmp_path: Path) -> None:
    path = token_path(tmp_path / "home")
    first = load_or_create(path)
    assert len(first) >= 40
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_or_create(path) == first
    path.chmod(0o644)  # loosened by someone: tightened again
    assert load_or_create(path) == first
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    second = load_or_create(path, new=True)
    assert second != first
    assert load_or_create(path) == second


def test_tokens_compare_exactly() -> None:
    assert matches("abc" * 15, "abc" * 15)
    for wrong in (None, "", "abc" * 14, "abc" * 15 + "x", "ABC" * 15):
        assert not matches("abc" * 15, wrong)


def test_every_route_needs_the_token(api: Served) -> None:
    for path in ROUTES:
        refused = api.anonymous.get(path)
        assert refused.status_code == 401, path
        message = refused.json()["error"]["message"]
        assert "smalltrain ui" in message
        assert "ui/token" in message
        assert api.client.get(path).status_code == 200, path
    wrong = api.anonymous.get("/api/jobs", headers={"Authorization": "Bearer " + "x" * 43})
    assert wrong.status_code == 401
    assert api.anonymous.post("/api/datasets", json={"name": "a", "path": "/"}).status_code == 401
    assert api.job_ids() == []


def _session(answer: Any) -> str:
    """The cookie's value in a sign-in answer's ``Set-Cookie``."""
    first = answer.headers["set-cookie"].split(";")[0]
    name, _, value = first.partition("=")
    assert name == cookie_name(7860)
    return value


def test_a_browser_gets_a_session_cookie_and_the_clean_url(api: Served) -> None:
    assert api.token is not None
    opened = api.anonymous.get(f"/?token={api.token}&job=abc", headers={"Accept": "text/html"})
    assert opened.status_code == 303
    assert opened.headers["location"] == "/?job=abc"
    cookie = opened.headers["set-cookie"]
    assert "HttpOnly" in cookie
    assert "SameSite=Strict" in cookie
    assert "Path=/" in cookie
    # the cookie is not the token: browsers send it to every port of 127.0.0.1
    session = _session(opened)
    assert len(session) >= 40
    assert api.token not in cookie
    with_cookie = api.anonymous.get(
        "/api/jobs", headers={"Cookie": f"{cookie_name(7860)}={session}"}
    )
    assert with_cookie.status_code == 200
    # other apps' cookies around it, even ones SimpleCookie cannot parse, do not hide it
    mixed = f'a="x\\y; b=[1]; {cookie_name(7860)}={session}; c=@'
    assert api.anonymous.get("/api/jobs", headers={"Cookie": mixed}).status_code == 200
    # another port's cookie is not this server's; the token itself is no cookie
    other = api.anonymous.get("/api/jobs", headers={"Cookie": f"{cookie_name(7861)}={session}"})
    assert other.status_code == 401
    as_cookie = {"Cookie": f"{cookie_name(7860)}={api.token}"}
    assert api.anonymous.get("/api/jobs", headers=as_cookie).status_code == 401
    # scripts may put the token in the URL too (no redirect for the API)
    assert api.anonymous.get(f"/api/jobs?token={api.token}").status_code == 200


def test_a_session_ends_with_the_server_and_is_not_a_wrong_guess(home: Path) -> None:
    with served(home, ServeOptions(port=7860), run_scheduler=False) as first:
        signed_in = first.anonymous.get(f"/?token={first.token}", headers={"Accept": "text/html"})
        old = {"Cookie": f"{cookie_name(7860)}={_session(signed_in)}"}
        assert first.anonymous.get("/api/jobs", headers=old).status_code == 200
    with served(home, ServeOptions(port=7860), run_scheduler=False) as second:
        assert second.token == first.token  # the token stays; the session does not
        # a tab left open polls with the old cookie: 401 each time, never the 429 of a guesser
        codes = {second.anonymous.get("/api/jobs", headers=old).status_code for _ in range(15)}
        assert codes == {401}
        again = second.anonymous.get(f"/?token={second.token}", headers={"Accept": "text/html"})
        assert again.status_code == 303
        assert _session(again) != old["Cookie"].split("=", 1)[1]


@pytest.mark.parametrize(
    ("path", "location"),
    [("//evil.example/", "/evil.example/"), ("/%5Cevil.example/", "/evil.example/"),
     ("///evil.example/x", "/evil.example/x")],
)  # fmt: skip
def test_the_sign_in_redirect_stays_on_this_server(api: Served, path: str, location: str) -> None:
    # an absolute URL: the path as given ("//x/" alone would name a host)
    url = f"http://127.0.0.1:7860{path}?token={api.token}"
    answer = api.anonymous.get(url, headers={"Accept": "text/html"})
    assert answer.status_code == 303
    assert answer.headers["location"] == location


def test_a_browser_without_the_token_gets_a_page_saying_how_to_get_in(api: Served) -> None:
    page = api.anonymous.get("/", headers={"Accept": "text/html,application/xhtml+xml"})
    assert page.status_code == 401
    assert page.headers["content-type"].startswith("text/html")
    assert "smalltrain ui" in page.text
    assert "?token=" in page.text
    assert str(token_path(api.home)) in page.text


def test_a_lan_server_does_not_tell_strangers_where_its_token_is(home: Path) -> None:
    """Listening beyond loopback, the refusal names no path (it would give the user's home
    and name to anyone on the network); on loopback it does (above)."""
    options = ServeOptions(host="0.0.0.0", port=7860, credentials=(("ana", "s3cret"),))
    with served(home, options, run_scheduler=False) as s:
        for accept in ("application/json", "text/html"):
            refused = s.anonymous.get("/", headers={"Accept": accept, "Host": "127.0.0.1:7860"})
            assert refused.status_code == 401
            assert str(home) not in refused.text
            assert "ui/token" in refused.text


def test_basic_auth_passes_beside_the_token(home: Path) -> None:
    options = ServeOptions(port=7860, credentials=(("ana", "s3cret"),))
    with served(home, options, run_scheduler=False) as s:
        basic = "Basic " + base64.b64encode(b"ana:s3cret").decode()
        assert s.anonymous.get("/api/jobs", headers={"Authorization": basic}).status_code == 200
        assert s.client.get("/api/jobs").status_code == 200  # the token still works
        refused = s.anonymous.get("/api/jobs")
        assert refused.status_code == 401
        assert refused.headers["www-authenticate"].startswith('Basic realm="smalltrain"')


def test_no_token_is_explicit_and_loopback_only(home: Path) -> None:
    with served(home, ServeOptions(port=7860, token=False), run_scheduler=False) as s:
        assert s.anonymous.get("/api/jobs").status_code == 200
        # the other guards stay
        assert s.anonymous.get("/api/jobs", headers={"Host": "evil.example"}).status_code == 400
    with pytest.raises(ServeError, match="without a password"):
        ServeOptions(host="0.0.0.0", token=False)
    with pytest.raises(ServeError, match="contradict"):
        ServeOptions(token=False, new_token=True)
