"""How ``smalltrain ui`` may serve: host, port and credentials, checked before anything starts.

Gradio alone binds where it is told without auth and without a word; here a host other than the
loopback interface is refused unless credentials are given (``--auth`` or ``--auth-file``).
"""

from __future__ import annotations

import ipaddress
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from smalltrain.errors import ServeError

__all__ = [
    "DEFAULT_HOST",
    "DEFAULT_MAX_UPLOAD",
    "DEFAULT_PORT",
    "ServeOptions",
    "is_loopback",
    "parse_credentials",
    "parse_size",
]

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 7860
DEFAULT_MAX_UPLOAD = "8GB"
#: The cap of an API request's JSON body (a job spec, a dataset path).
MAX_JSON_BYTES = 1 << 20

_UNITS = {"": 1, "B": 1, "K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40}


def parse_size(text: str, what: str = "--max-upload") -> int:
    """Bytes of a size such as ``500MB``, ``8GB``, ``2G`` or ``1048576`` (binary units).

    Raises:
        ServeError: not a positive size (the value and the accepted forms named).
    """
    raw = text.strip().upper().removesuffix("IB").removesuffix("B")
    unit = raw[-1:] if raw[-1:] in _UNITS else ""
    number = raw[: len(raw) - len(unit)].strip()
    try:
        value = float(number)
    except ValueError:
        value = -1.0
    if not value > 0 or value != value or value > 2**50:
        raise ServeError(f"{what} {text[:40]!r}: must be a size such as 500MB, 8GB or 1048576")
    return int(value * _UNITS[unit])


def is_loopback(host: str) -> bool:
    """Whether ``host`` is only reachable from this machine (127.0.0.0/8, ::1, localhost)."""
    name = host.strip().strip("[]").lower()
    if name in ("localhost", "localhost.localdomain", "ip6-localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def _pair(text: str, where: str) -> tuple[str, str]:
    user, sep, password = text.strip().partition(":")
    if not sep or not user or not password:
        raise ServeError(f"{where}: credentials must look like user:password (both non-empty)")
    return user, password


def parse_credentials(
    auth: str | None, auth_file: str | os.PathLike[str] | None
) -> list[tuple[str, str]]:
    """The ``(user, password)`` pairs of ``--auth user:password`` and ``--auth-file FILE``.

    The file holds one ``user:password`` per line; blank lines and lines starting with ``#``
    are skipped.

    Raises:
        ServeError: a malformed pair, or a missing or empty file (named, with the line).
    """
    pairs: list[tuple[str, str]] = []
    if auth:
        pairs.append(_pair(auth, "--auth"))
    if auth_file is not None:
        path = Path(auth_file).expanduser()
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except OSError as e:
            raise ServeError(f"--auth-file {path}: cannot read it ({e.strerror or e})") from None
        for number, line in enumerate(lines, 1):
            if line.strip() and not line.lstrip().startswith("#"):
                pairs.append(_pair(line, f"{path}, line {number}"))
        if not pairs:
            raise ServeError(f"--auth-file {path}: no user:password line in it")
    return pairs


def readable_by_others(path: str | os.PathLike[str]) -> bool:
    """Whether a credentials file can be read by other users (a warning, not an error)."""
    try:
        mode = Path(path).expanduser().stat().st_mode
    except OSError:
        return False
    return bool(mode & (stat.S_IRGRP | stat.S_IROTH))


@dataclass(frozen=True)
class ServeOptions:
    """Where and how to serve. ``credentials`` empty means no Basic auth (loopback only).

    ``token`` False is ``--no-token`` (loopback only, or with ``credentials``); ``new_token``
    replaces the stored token; ``allow_hosts`` are extra ``Host`` names served.
    """

    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    credentials: tuple[tuple[str, str], ...] = field(default_factory=tuple)
    token: bool = True
    new_token: bool = False
    allow_hosts: tuple[str, ...] = ()
    max_upload_bytes: int = 8 * 2**30
    max_concurrent: int = 1
    job_nice: int = 10
    #: "process", or a connected ``RayExecutor`` (``--ray ADDRESS``): where the jobs run.
    executor: Any = "process"

    def __post_init__(self) -> None:
        if not 0 < self.port < 65536:
            raise ServeError(f"--port {self.port}: must be between 1 and 65535")
        if not 0 <= self.job_nice <= 19:
            raise ServeError(f"--job-nice {self.job_nice}: must be between 0 and 19")
        if self.max_concurrent < 1:
            raise ServeError(f"--max-concurrent {self.max_concurrent}: must be >= 1")
        if self.new_token and not self.token:
            raise ServeError("--new-token and --no-token contradict each other; choose one")
        for name in self.allow_hosts:
            if not name.strip() or any(c in name for c in "/ ,@?#"):
                raise ServeError(f"--allow-host {name[:100]!r}: give a host name, e.g. mybox.lan")
        if not self.credentials and not is_loopback(self.host):
            raise ServeError(
                f"refusing to serve on {self.host} without a password: anyone who can reach "
                "this machine could train, delete models and read files. Add --auth "
                "user:password (or --auth-file FILE), or keep the default --host 127.0.0.1"
            )

    @property
    def url(self) -> str:
        """The address to open in a browser."""
        host = self.host
        if host in ("0.0.0.0", "::", ""):
            host = "127.0.0.1"
        if ":" in host and not host.startswith("["):
            host = f"[{host}]"
        return f"http://{host}:{self.port}/"
