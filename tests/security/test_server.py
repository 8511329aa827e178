"""The real ``smalltrain ui`` process: the printed address carries the token kept 0600 in the
home and reused on restart, a rebinding page's Host is refused over a real socket, ``--no-token``
warns on start, and README's curl block works as pasted against it."""

from __future__ import annotations

import os
import re
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.uiserver import http, running, start_server

pytestmark = pytest.mark.slow  # starts real servers (gradio's import takes seconds)

README = Path(__file__).resolve().parents[2] / "README.md"


def test_the_printed_url_carries_the_kept_token_and_foreign_hosts_are_refused(
    tmp_path: Path,
) -> None:
    home = tmp_path / "home"
    with running(start_server(home)) as server:
        token = server.token
        assert token is not None
        token_file = home / "ui" / "token"
        assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
        assert f"{server.url}?token={token}" in server.output()
        assert "Authorization: Bearer" in server.output()
        port = server.url.rsplit(":", 1)[1].strip("/")
        # DNS rebinding: evil.example resolves to 127.0.0.1; the browser sends its own name
        for host in (f"evil.example:{port}", f"localhost.:{port}"):
            headers = {"Host": host}
            for method, path in (("GET", ""), ("GET", "api/health"), ("POST", "api/jobs")):
                body = {"dataset": "x"} if method == "POST" else None
                answer = server.api(method, path, body, headers=headers)
                assert answer.status == 400, (host, path, answer.body)
                assert str(home) not in answer.body.decode()
        assert http("GET", server.url + "api/jobs").status == 401
        assert server.api("GET", "api/jobs").json() == []
        assert "Traceback" not in server.output()
    with running(start_server(home, "--no-token")) as open_server:
        assert "WARNING: --no-token" in open_server.output()
        assert http("GET", open_server.url + "api/jobs").status == 200
        assert token_file.read_text().strip() == token  # kept for the next start with a token


def _readme_api_block() -> str:
    text = README.read_text(encoding="utf-8")
    start = text.index("### HTTP API")
    block = re.search(r"```bash\n(.*?)```", text[start:], re.S)
    assert block is not None
    return block.group(1)


def test_readme_curl_examples_work_as_pasted(tmp_path: Path) -> None:
    from smalltrain.tasks.audio.data.synth import make_sound_folder

    home = tmp_path / "home"
    make_sound_folder(tmp_path / "demo-output" / "sounds", n_files=6, seed=3)
    with running(start_server(home)) as server:
        port = server.url.rsplit(":", 1)[1].strip("/")
        script = _readme_api_block().replace("localhost:7860", f"localhost:{port}")
        script = script.replace('"epochs": 20', '"epochs": 1')
        env = {**os.environ, "SMALLTRAIN_HOME": str(home)}
        env["PATH"] = f"{Path(sys.executable).parent}:{env.get('PATH', '')}"
        done = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", script],
            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600,
        )  # fmt: skip
        assert done.returncode == 0, (done.stdout, done.stderr)
        assert '"name":"demo"' in done.stdout.replace(" ", "")
        assert "event: end" in done.stdout
        assert '"status": "COMPLETED"' in done.stdout or '"status":"COMPLETED"' in done.stdout
        assert server.api("GET", "api/models?dataset=demo").json()
