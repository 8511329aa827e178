"""``smalltrain ui`` (alias ``serve``): the web UI and the HTTP API on one local server.

The server module imports gradio; it is imported here only when the command runs, so every
other command starts without it.
"""

from __future__ import annotations

from pathlib import Path

import typer

from smalltrain.cli.cluster import pick_executor, ray_option
from smalltrain.cli.common import handle_errors, home, warn
from smalltrain.ui.server.options import (
    DEFAULT_HOST,
    DEFAULT_MAX_UPLOAD,
    DEFAULT_PORT,
    ServeOptions,
    parse_credentials,
    parse_size,
    readable_by_others,
)


@handle_errors
def ui_cmd(
    host: str = typer.Option(
        DEFAULT_HOST, "--host", help="Address to listen on; anything but loopback needs --auth."
    ),
    port: int = typer.Option(DEFAULT_PORT, "--port", help="Port to listen on."),
    auth: str | None = typer.Option(
        None, "--auth", help="Require this user:password (HTTP Basic auth) for the UI and API."
    ),
    auth_file: Path | None = typer.Option(
        None, "--auth-file", help="A file of user:password lines (one per user) to require."
    ),
    no_token: bool = typer.Option(
        False,
        "--no-token",
        help="Serve WITHOUT the access token: any web page you open and any account on this "
        "machine can then use the server. Loopback only, unless --auth is given.",
    ),
    show_token: bool = typer.Option(
        False,
        "--show-token",
        help="Print the server's token (made if missing) and exit, for scripts: "
        'curl -H "Authorization: Bearer $(smalltrain ui --show-token)" ...',
    ),
    new_token: bool = typer.Option(
        False, "--new-token", help="Replace the stored token (<home>/ui/token) with a new one."
    ),
    allow_host: list[str] = typer.Option(  # noqa: B008
        [],
        "--allow-host",
        help="Also serve requests addressed to this host name (repeatable); by default only "
        "127.0.0.1, localhost, [::1] and --host are.",
    ),
    max_upload: str = typer.Option(
        DEFAULT_MAX_UPLOAD, "--max-upload", help="Largest upload accepted, e.g. 500MB or 8GB."
    ),
    max_concurrent: int = typer.Option(1, "--max-concurrent", "-j", min=1, help="Jobs at once."),
    job_nice: int = typer.Option(
        10,
        "--job-nice",
        help="Priority (nice 0-19) of the jobs this server runs, so the page stays quick while "
        "they train; 0 leaves them at normal priority.",
    ),
    ray_address: str | None = ray_option(),
) -> None:
    """Serve the web UI and the HTTP API (default http://127.0.0.1:7860/).

    Ctrl-C stops the server: jobs it runs write a checkpoint and end CANCELLED (resume them
    later); jobs run by a `smalltrain worker` go on. With --ray, the jobs it runs are placed on
    that Ray cluster.

    Every route needs the token kept in <home>/ui/token: open the printed URL (it carries
    ?token=...), or send 'Authorization: Bearer <token>' (docs/SECURITY.md).
    """
    if show_token:
        from smalltrain.ui.server.token import load_or_create, token_path

        typer.echo(load_or_create(token_path(home()), new=new_token))
        return
    credentials = parse_credentials(auth, auth_file)
    options = ServeOptions(
        host=host,
        port=port,
        credentials=tuple(credentials),
        token=not no_token,
        new_token=new_token,
        allow_hosts=tuple(allow_host),
        max_upload_bytes=parse_size(max_upload),
        max_concurrent=max_concurrent,
        job_nice=job_nice,
        executor=pick_executor("process", ray_address),  # --ray: connect (or fail) now
    )
    if auth_file is not None and readable_by_others(auth_file):
        warn(f"{auth_file} can be read by other users; chmod 600 it")
    from smalltrain.ui.server.app import serve  # gradio loads here, not at start-up

    serve(home(), options)


def register(app: typer.Typer) -> None:
    """Add ``ui`` and its alias ``serve`` to the main app."""
    app.command("ui")(ui_cmd)
    app.command("serve", help="Same as `smalltrain ui`.")(ui_cmd)
