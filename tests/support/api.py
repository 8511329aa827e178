"""The local server's app in-process, for tests: Starlette's ``TestClient`` against a real
``Backend`` (a real SQLite home in ``tmp_path``), behind the same guards as ``smalltrain ui``
(token, Host, Origin, body checks). Modelled on datasette's ``ds_client`` fixture.

- ``served(home, ...)``: a context manager yielding a ``Served``: ``client`` sends the token
  (``Authorization: Bearer``) to ``http://127.0.0.1:7860``; ``anonymous`` sends nothing.
- Fixtures (import them into a ``conftest.py`` or a test module): ``api`` (the JSON API only,
  a fresh home per test, jobs run by the backend's scheduler in child processes, the toy task
  registered) and ``toy_data`` (a folder the toy task accepts).

With ``ui=True`` Gradio's app is mounted too (about 10 s to build), so Gradio's own routes
(``/gradio_api/*``, uploads, the page) are checked behind the same guards.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from smalltrain.ui.server.options import ServeOptions
from smalltrain.ui.server.token import load_or_create, token_path

__all__ = [
    "EVIL",
    "ORIGIN",
    "Served",
    "api",
    "assert_only_the_page_reads",
    "served",
    "toy_data",
    "wait_until",
]

#: A foreign page's origin, for the tests that it is refused.
EVIL = "http://evil.example"

#: Where the in-process server "listens": its URL and the origin of its own pages.
ORIGIN = "http://127.0.0.1:7860"


@dataclass
class Served:
    """An app being served in-process, with a client that has the token and one without."""

    backend: Any
    app: Any
    token: str | None
    client: TestClient
    anonymous: TestClient
    home: Path

    def add_toy_dataset(self, name: str, folder: Path) -> None:
        """Register a toy dataset in-process (the UI's helper processes know only the built-in
        tasks, so ``POST /api/datasets`` cannot inspect a toy one)."""
        from smalltrain.service.datasets import register_dataset

        register_dataset(self.backend.manager.datasets, name, folder, "toy")

    def start_toy_job(self, dataset: str = "toyset", **overrides: Any) -> dict[str, Any]:
        """``POST /api/jobs`` for the toy task; the job as the API returns it."""
        spec = {"dataset": dataset, "overrides": {"epochs": 1, **overrides}}
        answer = self.client.post("/api/jobs", json=spec)
        assert answer.status_code == 201, answer.text
        return dict(answer.json())

    def job_ids(self) -> list[str]:
        """Every job in the store (straight from SQLite, not through the API)."""
        return [j.id for j in self.backend.manager.list_jobs(limit=1000)]


@contextlib.contextmanager
def served(
    home: Path,
    options: ServeOptions | None = None,
    *,
    ui: bool = False,
    run_scheduler: bool = True,
    executor: str = "process",
) -> Iterator[Served]:
    """Serve ``home``'s backend in-process (see the module docstring)."""
    from smalltrain.ui import env
    from smalltrain.ui.server import app as server
    from smalltrain.ui.viewmodels.backend import Backend

    options = options or ServeOptions(port=7860)
    env.prepare(home)
    backend = Backend(home, run_scheduler=run_scheduler, job_nice=0, executor=executor)
    token = load_or_create(token_path(backend.home)) if options.token else None
    try:
        if ui:
            app = server.build_app(backend, options, token, token_path(backend.home))
        else:
            app = server.protect(
                server.api_app(backend, options), options, token, token_path(backend.home)
            )
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        base = f"http://127.0.0.1:{options.port}"
        with (
            TestClient(app, base_url=base, headers=headers, follow_redirects=False) as client,
            TestClient(app, base_url=base, follow_redirects=False) as anonymous,
        ):
            yield Served(backend, app, token, client, anonymous, backend.home)
    finally:
        backend.close()


@pytest.fixture
def toy_data(tmp_path: Path) -> Path:
    """A folder the toy task registers (it only counts the files)."""
    folder = tmp_path / "toydata"
    folder.mkdir()
    (folder / "a.txt").write_text("x")
    return folder


@pytest.fixture
def api(home: Path, toy_task: None) -> Iterator[Served]:
    """The JSON API in-process on a fresh home, behind the guards, with the toy task."""
    with served(home) as s:
        yield s


def wait_until(check: Callable[[], bool], timeout: float = 120.0, what: str = "it") -> None:
    """Poll ``check`` (a read of the store or an API call) until true; fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    delay = 0.02
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not happen within {timeout} s")
        time.sleep(delay)
        delay = min(delay * 1.5, 0.5)


def assert_only_the_page_reads(api: Served, url: str, magic: bytes) -> None:
    """A file route's guards: no token is 401; a foreign ``Origin`` or a cross-site fetch is
    403 and never carries the file (``magic``: the start of its bytes)."""
    assert api.anonymous.get(url).status_code == 401
    foreign = api.client.get(url, headers={"Origin": EVIL})
    assert foreign.status_code == 403
    assert magic not in foreign.content
    cross = api.client.get(url, headers={"Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "cors"})
    assert cross.status_code == 403
