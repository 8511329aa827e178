"""Fixtures shared by the whole suite. Data makers live in ``tests/support`` and in the tasks'
own ``synth`` modules (``smalltrain.tasks.audio.synth``, ``smalltrain.tasks.detection.synth``)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from smalltrain.tasks import EXTRA_TASKS_ENV, toy


@pytest.fixture
def toy_task(monkeypatch: pytest.MonkeyPatch) -> None:
    """The toy task (``smalltrain.tasks.toy``) registered here and in every child process
    started by the test (the environment is restored afterwards)."""
    monkeypatch.setenv(EXTRA_TASKS_ENV, os.environ.get(EXTRA_TASKS_ENV, ""))
    toy.install()


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh smalltrain home, also set as ``$SMALLTRAIN_HOME`` for CLI calls."""
    root = tmp_path / "home"
    root.mkdir()
    monkeypatch.setenv("SMALLTRAIN_HOME", str(root))
    return root
