"""`smalltrain ui` refuses unsafe or malformed options at once, before gradio loads."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from smalltrain.ui.viewmodels.backend import where_jobs_run
from tests.support.api import served


def _ui(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "smalltrain.cli.main", "--home", str(tmp_path), "ui", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=60)


def test_a_public_host_without_auth_is_refused(tmp_path: Path) -> None:
    proc = _ui(tmp_path, "--host", "0.0.0.0", "--port", "7999")
    assert proc.returncode == 1
    assert "refusing to serve on 0.0.0.0 without a password" in proc.stderr
    assert "--auth user:password" in proc.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--auth", "just-a-user"], "--auth: credentials must look like user:password"),
        (["--auth-file", "/nonexistent/users"], "--auth-file /nonexistent/users: cannot read it"),
        (["--port", "70000"], "--port 70000: must be between 1 and 65535"),
        (["--max-upload", "lots"], "--max-upload 'lots': must be a size such as 500MB"),
        (["--no-token", "--new-token"], "--new-token and --no-token contradict"),
        (["--allow-host", "a/b"], "--allow-host 'a/b': give a host name"),
        (["--no-token", "--host", "0.0.0.0"], "without a password"),
    ],
)
def test_bad_options_fail_with_one_line(tmp_path: Path, args: list[str], message: str) -> None:
    proc = _ui(tmp_path, *args)
    assert proc.returncode == 1
    assert message in proc.stderr
    assert "Traceback" not in proc.stderr


def test_show_token_prints_the_kept_token_without_loading_gradio(tmp_path: Path) -> None:
    first = _ui(tmp_path, "--show-token")
    assert first.returncode == 0, first.stderr
    token = first.stdout.strip()
    assert len(token) >= 40
    assert (tmp_path / "ui" / "token").read_text().strip() == token
    assert _ui(tmp_path, "--show-token").stdout.strip() == token
    assert _ui(tmp_path, "--show-token", "--new-token").stdout.strip() != token
    code = "import sys; from smalltrain.cli import ui; print('gradio' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout == (
        "False\n"
    )


def test_ui_with_ray_fails_at_once_when_no_cluster_answers(tmp_path: Path) -> None:
    pytest.importorskip("ray", reason="Ray is not installed (pip install 'smalltrain[ray]')")
    proc = _ui(tmp_path, "--ray", "127.0.0.1:1", "--port", "7999")
    assert proc.returncode == 1
    assert "cannot reach the Ray cluster at 127.0.0.1:1" in proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize(
    ("executor", "note"),
    [
        ("thread", "jobs run in threads of this server"),
        ("process", "jobs run in child processes of this server"),
    ],
)
def test_the_server_says_where_it_runs_its_jobs(home: Path, executor: str, note: str) -> None:
    """The executor the server is given (``--ray`` gives a Ray one) is the one its scheduler
    runs jobs with, and the page header and /api/health say so in words (the header used to
    say "child processes" whatever the executor)."""
    with served(home, executor=executor) as s:
        assert s.client.get("/api/health").json()["scheduler"] == note
        assert s.backend.scheduler_note() == note  # the page header's words


def test_a_ray_server_names_its_cluster() -> None:
    class RayExecutor:  # the note reads only the class name and the address (no ray import)
        address = "10.0.0.5:6379"

    note = where_jobs_run(RayExecutor())  # type: ignore[arg-type]
    assert note == "jobs run on the Ray cluster at 10.0.0.5:6379"
