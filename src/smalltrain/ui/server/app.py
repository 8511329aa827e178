"""``serve``: the web UI and the HTTP API on one local server (``smalltrain ui``).

- **Offline and private**: Gradio's environment is set before it is imported (no analytics or
  version checks, temporary files under ``<home>/ui/tmp``), the theme is a built-in one with
  bundled fonts, no footer links to the internet, and FastAPI's docs page (which loads its
  scripts from a CDN) is off: the OpenAPI description is served as JSON at /api/openapi.json.
- **Guarded** (docs/SECURITY.md): every route, Gradio's included, sits behind ``protect``: only
  known ``Host`` names (``guard.HostGuard``), no request from another site's page
  (``guard.OriginGuard``), the token or Basic auth (``auth.AuthGate``, ``token``), JSON bodies
  of a capped size (``guard.BodyGuard``). A non-loopback host without ``--auth`` is refused
  before anything starts (``options``).
- **Ctrl-C** (or SIGTERM) stops serving; jobs this server runs are then cancelled gracefully:
  each writes a checkpoint and ends CANCELLED (resume it from the UI, or with
  ``smalltrain resume <id>``); a second Ctrl-C stops them at once. Queued jobs stay queued.
  Jobs run by a ``smalltrain worker`` go on untouched.

Importing this module imports gradio; only the ``ui`` command imports it, lazily.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import faulthandler
import logging
import os
import signal
import socket
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from types import FrameType
from typing import Any

from smalltrain import __version__
from smalltrain.errors import ServeError
from smalltrain.ui import env
from smalltrain.ui.server import token as tokens
from smalltrain.ui.server.options import ServeOptions

__all__ = ["api_app", "build_app", "protect", "serve"]


def api_app(backend: Any, options: ServeOptions) -> Any:
    """The FastAPI app holding the JSON API only (unprotected: see ``protect``)."""
    from fastapi import FastAPI

    from smalltrain.ui.server.api import install_api

    app = FastAPI(
        title="smalltrain API",
        version=__version__,
        docs_url=None,  # the default docs page loads swagger-ui from a CDN
        redoc_url=None,
        openapi_url="/api/openapi.json",
    )
    install_api(app, backend, max_upload_bytes=options.max_upload_bytes)
    return app


def protect(
    app: Any, options: ServeOptions, token: str | None, token_file: Path | None = None
) -> Any:
    """``app`` behind the guards, outermost first: Host, Origin, token/Basic auth, body."""
    from smalltrain.ui.server.auth import AuthGate
    from smalltrain.ui.server.guard import (
        LOOPBACK_NAMES,
        WILDCARDS,
        BodyGuard,
        HostGuard,
        OriginGuard,
        allowed_hosts,
    )
    from smalltrain.ui.server.options import MAX_JSON_BYTES

    app = BodyGuard(app, MAX_JSON_BYTES, options.max_upload_bytes)
    hosts = allowed_hosts(options.host, options.allow_hosts)
    local = options.host.strip().strip("[]").lower() in LOOPBACK_NAMES
    app = AuthGate(app, token, options.credentials, options.port, token_file, local=local)
    app = OriginGuard(app)
    return HostGuard(app, hosts, any_address=options.host.strip() in WILDCARDS)


def build_app(
    backend: Any, options: ServeOptions, token: str | None, token_file: Path | None = None
) -> Any:
    """The ASGI app: the API's routes, then Gradio at ``/``, all behind ``protect``."""
    import gradio as gr

    from smalltrain.ui.views.app import build, theme
    from smalltrain.ui.views.style import CSS

    app = api_app(backend, options)
    demo = build(backend)
    app = gr.mount_gradio_app(
        app,
        demo,
        path="/",
        server_name=options.host,
        server_port=options.port,
        footer_links=[],
        run_history=False,
        mcp_server=False,
        ssr_mode=False,
        theme=theme(),
        css=CSS,
        allowed_paths=[str(backend.ui.outputs), str(backend.ui.root / "exports")],
        max_file_size=options.max_upload_bytes,
        show_error=True,
    )
    return protect(app, options, token, token_file)


def _bind(options: ServeOptions) -> socket.socket:
    """The listening socket, bound before anything else so a busy port fails at once."""
    family = socket.AF_INET6 if ":" in options.host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((options.host, options.port))
    except OSError as e:
        sock.close()
        if e.errno == errno.EADDRINUSE:
            raise ServeError(
                f"port {options.port} on {options.host} is in use (another smalltrain ui?); "
                "choose another with --port"
            ) from None
        raise ServeError(f"cannot listen on {options.host}:{options.port}: {e.strerror}") from None
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


def _server_class() -> type:
    import uvicorn

    class Server(uvicorn.Server):
        """uvicorn's server with our Ctrl-C: the first stops serving, a second stops it hard;
        the signal is not raised again afterwards (uvicorn would), so jobs can checkpoint."""

        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            if threading.current_thread() is not threading.main_thread():
                yield
                return

            def handle(signum: int, frame: FrameType | None) -> None:
                if self.should_exit:
                    self.force_exit = True
                self.should_exit = True

            old = {s: signal.signal(s, handle) for s in (signal.SIGINT, signal.SIGTERM)}
            try:
                yield
            finally:
                for s, h in old.items():
                    signal.signal(s, h)

    return Server


class QuietShutdown(logging.Filter):
    """Ctrl-C with a page open: the page's event stream outlives uvicorn's graceful shutdown,
    and uvicorn logs its cancellation as an error with a traceback. A connection closed
    because the server stops is no error: those two records are dropped."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, asyncio.CancelledError):
            return False
        return "graceful shutdown exceeded" not in record.getMessage()


def _stop_jobs(backend: Any, say: Any) -> None:
    """Close the backend; jobs this process runs checkpoint first (a second Ctrl-C: at once)."""
    running = backend.running_jobs() if backend.manager.runs_scheduler else []
    if running:
        ids = ", ".join(j.id for j in running)
        say(
            f"stopping: job(s) {ids} write a checkpoint and end CANCELLED; resume them from the "
            "UI or with `smalltrain resume <id>` (Ctrl-C again to stop them at once)"
        )

    def hard(signum: int, frame: FrameType | None) -> None:
        for j in running:
            with contextlib.suppress(Exception):
                backend.manager.cancel(j.id, "immediate", reason="stopped with a second Ctrl-C")

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, hard)
        signal.signal(signal.SIGTERM, hard)
    queued = backend.manager.jobs.count_jobs("QUEUED")
    backend.close()
    if queued:
        say(
            f"{queued} queued job(s) stay queued; they run when `smalltrain ui` or "
            "`smalltrain worker` runs again"
        )


def _announce(options: ServeOptions, token: str | None, token_file: Path, say: Any) -> None:
    """Say where to open the UI, and how scripts get in."""
    auth = f"; Basic auth for {len(options.credentials)} user(s)" if options.credentials else ""
    if token is None:
        say(
            "WARNING: --no-token: every web page you open and every account on this machine "
            f"can use this server (start jobs, load weights, delete models){auth}"
        )
        say(f"smalltrain UI on {options.url} (API under {options.url}api/)")
        return
    say(f"smalltrain UI on {options.url}?token={token}")
    say(
        f"API under {options.url}api/ with 'Authorization: Bearer <token>'; the token is in "
        f"{token_file} (kept across restarts; --new-token makes another){auth}"
    )


def _dump_stacks_on_usr1(backend: Any) -> None:
    """`kill -USR1 <pid>` prints every thread's stack of the server, then of its helper
    processes (which print theirs on the same signal), to stderr: where a page that waits
    forever is stuck. faulthandler writes the server's from C, even with the GIL held; the
    Python handler it chains to forwards the signal to the helpers."""
    if not hasattr(signal, "SIGUSR1"):
        return

    def forward(signum: int, frame: Any) -> None:
        for pid in backend.pool.pids():
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGUSR1)

    signal.signal(signal.SIGUSR1, forward)
    faulthandler.register(signal.SIGUSR1, all_threads=True, chain=True)


def serve(home: Path, options: ServeOptions, say: Any = print) -> None:
    """Serve the UI and the API until Ctrl-C (see the module docstring).

    Raises:
        ServeError: the port is taken or the address cannot be used.
    """
    ui = env.prepare(home)  # before gradio is imported
    sock = _bind(options)
    import uvicorn

    from smalltrain.ui.viewmodels.backend import Backend

    backend = Backend(
        home,
        max_concurrent=options.max_concurrent,
        job_nice=options.job_nice,
        executor=options.executor,
    )
    _dump_stacks_on_usr1(backend)
    try:
        token, token_file = None, tokens.token_path(backend.home)
        if options.token:
            token = tokens.load_or_create(token_file, new=options.new_token)
        app = build_app(backend, options, token, token_file)
        config = uvicorn.Config(
            app,
            log_level="warning",
            access_log=False,
            timeout_graceful_shutdown=3,
            lifespan="on",
        )
        logging.getLogger("uvicorn.error").addFilter(QuietShutdown())
        server = _server_class()(config)
        _announce(options, token, token_file, say)
        say(f"home {backend.home}; {backend.scheduler_note()}; Gradio temp files in {ui.tmp}")
        say("Ctrl-C stops the server; jobs it runs write a checkpoint and end CANCELLED")
        sys.stdout.flush()
        server.run(sockets=[sock])
    finally:
        sock.close()
        _stop_jobs(backend, say)
