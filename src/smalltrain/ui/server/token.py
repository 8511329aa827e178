"""The server's access token, as Jupyter's: random, kept in the home, required by every route.

The token lives in ``<home>/ui/token`` (mode 0600, so other local accounts cannot read it) and is
reused across restarts, so scripts that read it keep working; ``smalltrain ui --new-token`` makes
a new one (every browser and script must then get the new one).

How a client shows it (``Credentials.check``):

- a browser opens the printed ``http://127.0.0.1:7860/?token=...``; the server answers with an
  HttpOnly, SameSite=Strict cookie and a redirect to the clean URL, so the token leaves the
  address bar and the browser history, and no other site's page can send it;
- scripts send ``Authorization: Bearer <token>`` (``curl -H "Authorization: Bearer $(cat
  ~/.smalltrain/ui/token)" ...``), or ``?token=`` in the URL.

Tokens are compared in constant time (``hmac.compare_digest``).
"""

from __future__ import annotations

import hmac
import os
import secrets
from pathlib import Path

from smalltrain.errors import ServeError

__all__ = [
    "TOKEN_BYTES",
    "cookie_name",
    "cookie_value",
    "load_or_create",
    "matches",
    "set_cookie_header",
    "token_path",
]

#: 32 random bytes: 256 bits, as urlsafe base64 (43 characters).
TOKEN_BYTES = 32


def token_path(home: Path) -> Path:
    """Where a home's server token is kept: ``<home>/ui/token``."""
    from smalltrain import paths

    return paths.ui_dir(home) / "token"


def _write(path: Path, token: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, (token + "\n").encode())
    finally:
        os.close(fd)
    os.chmod(tmp, 0o600)  # even under a permissive umask
    os.replace(tmp, path)


def load_or_create(path: Path, *, new: bool = False) -> str:
    """The token stored at ``path``, made (0600) if missing, empty or ``new`` is asked.

    A file others can read is tightened to 0600 (the token is a password).

    Raises:
        ServeError: the file cannot be read or written (named, with the reason).
    """
    try:
        if not new and path.is_file():
            token = path.read_text(encoding="utf-8").strip()
            if len(token) >= 16:
                if path.stat().st_mode & 0o077:
                    os.chmod(path, 0o600)
                return token
        token = secrets.token_urlsafe(TOKEN_BYTES)
        _write(path, token)
        return token
    except (OSError, UnicodeDecodeError) as e:
        reason = getattr(e, "strerror", None) or e
        raise ServeError(f"{path}: cannot keep the server's token there ({reason})") from None


def matches(token: str, given: str | bytes | None) -> bool:
    """Whether ``given`` is ``token``, compared in constant time."""
    if not given:
        return False
    raw = given.encode("utf-8", "replace") if isinstance(given, str) else given
    return hmac.compare_digest(token.encode(), raw.strip())


def cookie_name(port: int) -> str:
    """The cookie's name: one per port, as cookies are shared by every port of a host."""
    return f"smalltrain-token-{port}"


def cookie_value(header: str, port: int) -> str | None:
    """The session cookie of this port's server in a ``Cookie`` header, if any."""
    # split by hand: SimpleCookie drops every cookie after one it cannot parse, and other
    # apps on localhost may set such cookies
    wanted = cookie_name(port)
    for part in header.split(";"):
        name, sep, value = part.strip().partition("=")
        if sep and name == wanted:
            return value.strip().strip('"')
    return None


def set_cookie_header(session: str, port: int) -> bytes:
    """``Set-Cookie`` for a browser that showed the token: the server's session key (never the
    token, see ``auth``), HttpOnly, SameSite=Strict, no expiry date (the browser keeps it for
    its session; the server forgets it when it stops)."""
    return f"{cookie_name(port)}={session}; Path=/; HttpOnly; SameSite=Strict".encode()
