"""Where `smalltrain ui` may listen, and with which credentials (checked before any start)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from smalltrain.errors import ServeError
from smalltrain.ui.server.options import (
    ServeOptions,
    is_loopback,
    parse_credentials,
    readable_by_others,
)


@pytest.mark.parametrize("host", ["127.0.0.1", "127.3.2.1", "localhost", "::1", "[::1]"])
def test_loopback_hosts(host: str) -> None:
    assert is_loopback(host)
    assert ServeOptions(host=host).host == host  # no credentials needed


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.168.1.20", "my-laptop.local"])
def test_other_hosts_need_credentials(host: str) -> None:
    assert not is_loopback(host)
    with pytest.raises(ServeError, match=f"refusing to serve on {host} without a password"):
        ServeOptions(host=host)
    assert ServeOptions(host=host, credentials=(("ana", "pw"),)).credentials == (("ana", "pw"),)


def test_credentials_from_the_flag_and_a_file(tmp_path: Path) -> None:
    file = tmp_path / "users"
    file.write_text("# team\nana:first:part\n\nbo:pw2\n")
    file.chmod(0o600)
    assert parse_credentials("me:pw", file) == [("me", "pw"), ("ana", "first:part"), ("bo", "pw2")]
    assert not readable_by_others(file)
    file.chmod(0o644)
    assert readable_by_others(file)


@pytest.mark.parametrize("bad", ["nopassword", ":pw", "user:"])
def test_malformed_credentials_are_named(bad: str) -> None:
    with pytest.raises(ServeError, match="--auth: credentials must look like user:password"):
        parse_credentials(bad, None)


def test_auth_file_errors_name_the_file_and_line(tmp_path: Path) -> None:
    with pytest.raises(ServeError, match="cannot read it"):
        parse_credentials(None, tmp_path / "missing")
    file = tmp_path / "users"
    file.write_text("ana:pw\nbroken\n")
    with pytest.raises(ServeError, match=r"users, line 2: credentials must look like"):
        parse_credentials(None, file)
    file.write_text("# nobody\n")
    with pytest.raises(ServeError, match="no user:password line"):
        parse_credentials(None, file)


def test_port_and_url() -> None:
    with pytest.raises(ServeError, match="--port 0"):
        ServeOptions(port=0)
    assert ServeOptions(port=8000).url == "http://127.0.0.1:8000/"
    assert ServeOptions(host="0.0.0.0", credentials=(("a", "b"),)).url == "http://127.0.0.1:7860/"


def test_the_jobs_the_server_runs_start_at_job_nice_and_the_server_keeps_its_priority(
    tmp_path: Path,
) -> None:
    """``--job-nice`` reaches the process executor, which starts each job's process at it
    (``tests/service/test_warm_start.py`` checks a child's level); nothing renices the server
    (it once reniced itself and its helpers, with the job's recorded pid: the scheduler's)."""
    from smalltrain.service.execution.executors import ProcessExecutor
    from smalltrain.ui.viewmodels.backend import Backend

    own = os.nice(0)
    backend = Backend(tmp_path / "home", run_scheduler=False, job_nice=7)
    try:
        executor = backend.manager.executor
        assert isinstance(executor, ProcessExecutor)
        assert executor.nice == 7
    finally:
        backend.close()
    assert os.nice(0) == own
