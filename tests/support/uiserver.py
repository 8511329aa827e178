"""Drive a real ``smalltrain ui`` server from a script: for the tests and the benchmarks (test
code: it needs root for the network namespace of ``offline()``).

- ``start_server(home, ...)`` runs ``python -m smalltrain.cli.main ui`` on a free port and waits
  until ``/api/health`` answers; ``Server.api`` calls it with the server's token (read from
  ``<home>/ui/token``, as a script would) or Basic auth; ``Server.page_url`` is the address a
  browser opens (with ``?token=``, as the server prints it); ``Server.stop`` is Ctrl-C.
- ``http`` makes one request as ``curl`` would (Bearer token or Basic auth, JSON body).
- ``offline()`` moves the calling thread, and every process it starts from then on, into a new
  network namespace holding only loopback, so "nothing leaves the machine" can be checked rather
  than assumed. It needs root (CAP_SYS_ADMIN); ``offline_unavailable()`` says why not elsewhere.

Standard library only: importing this module never loads gradio.
"""

from __future__ import annotations

import base64
import contextlib
import ctypes
import ctypes.util
import json
import os
import shutil
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

__all__ = [
    "Response",
    "Server",
    "free_port",
    "has_route_out",
    "http",
    "offline",
    "offline_unavailable",
    "running",
    "start_server",
]


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
    token: str | None = None,
    headers: dict[str, str] | None = None,
    timeout: float = 60.0,
) -> Response:
    """One HTTP request, as `curl -X METHOD [-u user:pw | -H "Authorization: Bearer TOKEN"]
    [-H 'Content-Type: application/json' -d JSON] URL` would make it."""
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method, headers=dict(headers or {}))
    if data is not None and not req.has_header("Content-type"):
        req.add_header("Content-Type", "application/json")
    if token is not None and auth is None:
        req.add_header("Authorization", f"Bearer {token}")
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
    token: str | None = None

    def api(self, method: str, path: str, body: Any = None, **kw: Any) -> Response:
        kw.setdefault("auth", self.auth)
        kw.setdefault("token", self.token)
        return http(method, self.url + path.lstrip("/"), body, **kw)

    @property
    def page_url(self) -> str:
        """The address a browser opens: with ``?token=``, as ``smalltrain ui`` prints it."""
        return f"{self.url}?token={self.token}" if self.token else self.url

    def auth_headers(self) -> dict[str, str]:
        """The ``Authorization`` header a script sends (the token, or Basic auth)."""
        if self.auth is not None:
            pair = base64.b64encode(f"{self.auth[0]}:{self.auth[1]}".encode()).decode()
            return {"Authorization": f"Basic {pair}"}
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}

    def read_token(self) -> str | None:
        """The token the server keeps in ``<home>/ui/token`` (None until it wrote it)."""
        path = self.home / "ui" / "token"
        with contextlib.suppress(OSError):
            self.token = path.read_text().strip() or None
        return self.token

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def stacks(self, settle_s: float = 0.5, timeout: float = 10.0) -> str:
        """Every thread's stack of the server and of its helper processes, as ``kill -USR1``
        makes them print (for a failed test's report): what the log gains until it has not
        grown for ``settle_s``. "" if the server has exited."""
        if self.proc.poll() is not None:
            return ""
        before = len(self.output())
        self.proc.send_signal(signal.SIGUSR1)
        size, changed, deadline = before, time.monotonic(), time.monotonic() + timeout
        while time.monotonic() < deadline:
            now = len(self.output())
            if now != size:
                size, changed = now, time.monotonic()
            elif now > before and time.monotonic() - changed >= settle_s:
                break
            time.sleep(0.05)
        return self.output()[before:]

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
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env)
    server = Server(f"http://127.0.0.1:{port}/", proc, home, log, auth)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"the server exited with {proc.returncode}:\n{server.output()}")
        if "--no-token" not in args and server.token is None and server.read_token() is None:
            time.sleep(0.2)
            continue
        with contextlib.suppress(OSError):
            if server.api("GET", "api/health", timeout=2).status == 200:
                return server
        time.sleep(0.2)
    server.stop()
    raise AssertionError(f"the server did not answer within {timeout} s:\n{server.output()}")


@contextlib.contextmanager
def running(server: Server) -> Iterator[Server]:
    try:
        yield server
    finally:
        server.stop()


# --- a network namespace with loopback only ------------------------------------------------

CLONE_NEWNET = 0x40000000


def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)


def offline_unavailable() -> str | None:
    """None if ``offline()`` can work here, else the reason it cannot."""
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        return "needs root to create a network namespace (CI runs make test as root)"
    if shutil.which("ip") is None:
        return "needs the `ip` command (iproute2) to bring loopback up"
    return None


@contextlib.contextmanager
def offline() -> Iterator[None]:
    """Inside: this thread and its new child processes see only loopback."""
    libc = _libc()
    original = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    try:
        if libc.unshare(CLONE_NEWNET) != 0:
            err = ctypes.get_errno()
            raise OSError(err, f"unshare(CLONE_NEWNET) failed: {os.strerror(err)}")
        try:
            subprocess.run(["ip", "link", "set", "lo", "up"], check=True, capture_output=True)
            yield
        finally:
            if libc.setns(original, CLONE_NEWNET) != 0:
                err = ctypes.get_errno()
                raise OSError(err, f"setns back to the original network failed: {os.strerror(err)}")
    finally:
        os.close(original)


def has_route_out() -> bool:
    """Whether any interface but loopback is up (a check that ``offline`` really isolates)."""
    out = subprocess.run(["ip", "-o", "link", "show", "up"], capture_output=True, text=True).stdout
    return any(" lo:" not in line for line in out.splitlines() if line.strip())
