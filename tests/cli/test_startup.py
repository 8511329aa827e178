"""Light commands start without torch, numpy or Ultralytics (a fresh interpreter each)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

HEAVY = (
    "torch", "numpy", "ultralytics", "torchvision", "soundfile", "cv2", "ray",
    "gradio", "fastapi", "uvicorn",  # the web UI's server loads only in `smalltrain ui`
)  # fmt: skip

_PROBE = """
import json, sys
from typer.main import get_command
from smalltrain.cli.main import app
try:
    get_command(app).main(sys.argv[1:], prog_name="smalltrain", standalone_mode=False)
except SystemExit:
    pass
sys.stdout.flush()
sys.stderr.write("\\nHEAVY=" + json.dumps(sorted(m for m in %r if m in sys.modules)) + "\\n")
"""


@pytest.mark.parametrize(
    "argv",
    [
        ["--help"],
        ["jobs", "list"],
        ["jobs", "list", "--json"],
        ["models", "list"],
        ["--version"],
        ["ui", "--help"],
        ["sweep", "list"],
        ["worker", "--help"],
    ],  # fmt: skip
)
def test_light_commands_do_not_import_heavy_libraries(tmp_path: Path, argv: list[str]) -> None:
    proc = subprocess.run(
        [sys.executable, "-c", _PROBE % (HEAVY,), "--home", str(tmp_path), *argv],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    heavy = json.loads(proc.stderr.rsplit("HEAVY=", 1)[1])
    assert heavy == [], f"smalltrain {' '.join(argv)} imported {heavy}"


def test_help_loads_no_service_or_store_module(tmp_path: Path) -> None:
    """Building the command tree for ``--help`` imports no service or store layer (nor
    importlib.metadata): each command loads what it uses when it runs."""
    probe = _PROBE.replace(
        "sorted(m for m in %r if m in sys.modules)",
        "sorted(m for m in sys.modules if m.startswith(%r) or m == 'importlib.metadata')",
    ) % (("smalltrain.service", "smalltrain.store"),)
    proc = subprocess.run(
        [sys.executable, "-c", probe, "--home", str(tmp_path), "--help"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert "Usage: smalltrain" in proc.stdout
    loaded = json.loads(proc.stderr.rsplit("HEAVY=", 1)[1])
    assert loaded == [], f"smalltrain --help imported {loaded}"


def test_executor_names_in_help_match_the_service() -> None:
    """``train --help`` lists the executors from a constant of the CLI (so that help loads no
    service module); it must name the same executors the service accepts."""
    from smalltrain.cli.cluster import EXECUTOR_NAMES
    from smalltrain.service.execution.executors import EXECUTORS

    assert EXECUTOR_NAMES == EXECUTORS


def test_asking_a_task_about_a_job_loads_nothing_heavy(tmp_path: Path) -> None:
    """Light processes (the web UI's server, ``jobs show``) ask tasks where a job resumes and
    what their fields mean; that must not load torch into them."""
    probe = (
        "import json, sys\n"
        "from pathlib import Path\n"
        "from smalltrain import tasks\n"
        "for name in ('audio', 'detect'):\n"
        "    task = tasks.get_task(name)\n"
        "    task.field_help()\n"
        "    try:\n"
        "        task.resume_point(Path(sys.argv[1]))\n"
        "    except Exception:\n"
        "        pass\n"
        f"print(json.dumps(sorted(m for m in {HEAVY!r} if m in sys.modules)))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", probe, str(tmp_path)], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == []


def test_python_dash_m_smalltrain_is_the_same_cli(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "smalltrain", "--home", str(tmp_path), "jobs", "list", "--json"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == []
