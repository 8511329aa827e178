"""Ray stays optional: without it every other command works, and asking for the ray executor
says what to install. "Without Ray" is a real interpreter in which importing ray fails, as it
does where the package is not installed."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

_NO_RAY = """
import sys

class _NoRay:
    @staticmethod
    def find_spec(name, path=None, target=None):
        if name == "ray" or name.startswith("ray."):
            raise ModuleNotFoundError(f"No module named {name!r}")
        return None

sys.meta_path.insert(0, _NoRay)
from smalltrain.cli.main import main
sys.argv = ["smalltrain", *sys.argv[1:]]
main()
"""


def _smalltrain_without_ray(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", _NO_RAY, *args], capture_output=True, text=True, timeout=120
    )


def test_the_ray_executor_without_ray_says_what_to_install(tmp_path: Path) -> None:
    folder = tmp_path / "sounds"
    folder.mkdir()
    for args in (
        ["train", str(folder), "--executor", "ray"],
        ["worker", "--ray", "127.0.0.1:6379"],
        ["sweep", str(folder), "--trials", "2", "--vary", "seed", "--ray", "auto"],
    ):
        proc = _smalltrain_without_ray("--home", str(tmp_path / "home"), *args)
        assert proc.returncode == 1, proc.stdout + proc.stderr
        assert "needs Ray, which is not installed" in proc.stderr
        assert "pip install 'smalltrain[ray]'" in proc.stderr
        assert "Traceback" not in proc.stderr


def test_everything_else_works_without_ray(tmp_path: Path) -> None:
    for args in (["jobs", "list"], ["sweep", "list"], ["models", "list"], ["--help"]):
        proc = _smalltrain_without_ray("--home", str(tmp_path / "home"), *args)
        assert proc.returncode == 0, proc.stdout + proc.stderr


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_an_address_where_no_cluster_answers_fails_at_once(tmp_path: Path) -> None:
    home = str(tmp_path / "home")
    cmd = [sys.executable, "-m", "smalltrain.cli.main", "--home", home, "worker", "--ray"]
    refused = subprocess.run(
        [*cmd, f"127.0.0.1:{_free_port()}"], capture_output=True, text=True, timeout=60
    )
    assert refused.returncode == 1
    assert "cannot reach the Ray cluster at 127.0.0.1:" in refused.stderr
    assert "ray start --head" in refused.stderr
    malformed = subprocess.run([*cmd, "nonsense"], capture_output=True, text=True, timeout=60)
    assert malformed.returncode == 1
    assert "give the head's HOST:PORT" in malformed.stderr
