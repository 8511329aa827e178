"""``kill -USR1`` on a running ``smalltrain ui`` prints every thread's stack of the server and of
its helper processes, and the server goes on: how a page that waits forever is diagnosed (a
failed browser test's report carries it)."""

from __future__ import annotations

from pathlib import Path

import pytest

from smalltrain.tasks.audio.data.synth import make_sound_folder
from tests.support.uiserver import running, start_server

pytestmark = pytest.mark.slow  # starts a real server (gradio's import takes seconds)


def test_usr1_prints_the_server_and_its_helpers_stacks_and_the_server_goes_on(
    tmp_path: Path,
) -> None:
    folder = tmp_path / "kicks"
    make_sound_folder(folder, n_files=2, seed=0)
    with running(start_server(tmp_path / "home")) as server:
        # registering inspects the folder in a helper process: the pool's children now run
        added = server.api("POST", "api/datasets", {"name": "kicks", "path": str(folder)})
        assert added.status == 201, added.body
        dump = server.stacks()
        assert server.proc.poll() is None, server.output()  # SIGUSR1 did not stop it
        # the server's threads (uvicorn's serving loop among them) ...
        assert "Thread 0x" in dump, dump
        assert "uvicorn" in dump, dump
        # ... and each helper's, idle in its worker loop, forwarded by the server
        assert dump.count("_process_worker") >= 2, dump
        assert server.api("GET", "api/health").status == 200
