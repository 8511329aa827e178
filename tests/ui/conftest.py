"""Shared pieces of the web UI tests: a real ``smalltrain ui`` server process, HTTP calls,
and the folder where browser screenshots are saved (``test-artifacts/ui/``, gitignored)."""

from __future__ import annotations

import base64
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts" / "ui"


def free_port() -> int:
    """A TCP port nobody listens on now (in this thread's network namespace)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Response:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def http(
    method: str,
    url: str,
    body: Any = None,
    *,
    auth: tuple[str, str] | None = None,
    headers: dict[str, str] | None = None,
    timeout: float = 60.0,
) -> Response:
    """One HTTP request, as `curl -X METHOD [-u user:pw] [-d JSON] URL` would make it."""
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method, headers=dict(headers or {}))
    if data is not None:
        req.add_header("Content-Type", "application/json")
    if auth is not None:
        token = base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
        req.add_header("Authorization", f"Basic {token}")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return Response(r.status, {k.lower(): v for k, v in r.headers.items()}, r.read())
    except urllib.error.HTTPError as e:
        return Response(e.code, {k.lower(): v for k, v in e.headers.items()}, e.read())


@dataclass
class Server:
    """A running ``python -m smalltrain.cli.main ui`` process."""

    url: str
    proc: subprocess.Popen[bytes]
    home: Path
    log: Path
    auth: tuple[str, str] | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def api(self, method: str, path: str, body: Any = None, **kw: Any) -> Response:
        kw.setdefault("auth", self.auth)
        return http(method, self.url + path.lstrip("/"), body, **kw)

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self, timeout: float = 60.0) -> int:
        """Ctrl-C, as a user would; the exit code (the process is killed if it hangs)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise AssertionError(
                    f"the server did not stop on Ctrl-C:\n{self.output()}"
                ) from None
        return int(self.proc.returncode)


def start_server(
    home: Path, *args: str, auth: tuple[str, str] | None = None, timeout: float = 120.0
) -> Server:
    """Start ``smalltrain ui`` on a free port and wait until /api/health answers."""
    port = free_port()
    log = home.parent / f"server-{port}.log"
    home.mkdir(parents=True, exist_ok=True)
    cmd = [
        sys.executable,
        "-m",
        "smalltrain.cli.main",
        "--home",
        str(home),
        "ui",
        "--port",
        str(port),
        *args,
    ]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=ROOT)
    server = Server(f"http://127.0.0.1:{port}/", proc, home, log, auth)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"the server exited with {proc.returncode}:\n{server.output()}")
        with contextlib.suppress(OSError):
            if server.api("GET", "api/health", timeout=2).status == 200:
                return server
        time.sleep(0.2)
    server.stop()
    raise AssertionError(f"the server did not answer within {timeout} s:\n{server.output()}")


@pytest.fixture(scope="session")
def artifacts() -> Path:
    """Where screenshots go; printed so a CI log says where to find them."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    print(f"\nUI screenshots: {ARTIFACTS}")
    return ARTIFACTS


@contextlib.contextmanager
def running(server: Server) -> Iterator[Server]:
    try:
        yield server
    finally:
        server.stop()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    """Keep each phase's report on the test item, so fixtures can tell a test failed."""
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"report_{report.when}", report)
