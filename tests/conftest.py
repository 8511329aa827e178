"""Fixtures shared by the whole suite. Data makers live in ``tests/support`` and in the tasks'
own ``synth`` modules (``smalltrain.tasks.audio.data.synth``, ``smalltrain.tasks.detect.synth``)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from smalltrain.tasks import EXTRA_TASKS_ENV, toy
from tests.support.audio import TrainedAudio, train_tiny_run
from tests.support.explore import train_explore_model


def _load_anyio_now() -> None:
    """Import every submodule anyio loads lazily, here in the main thread. anyio is a pytest
    plugin, so pytest compiles its modules itself (assertion rewriting), with ast.parse; the
    first ``anyio.open_file`` of a worker then compiled ``anyio._core._fileio`` in the test
    client's thread, where CPython 3.11.7 raised "SystemError: AST constructor recursion depth
    mismatch" (once in a full run, in a test that fetched a file through Gradio)."""
    import warnings

    import anyio

    with warnings.catch_warnings():  # deprecated aliases warn when read
        warnings.simplefilter("ignore")
        for name in dir(anyio):
            try:
                getattr(anyio, name)
            except Exception:  # a name that does not load here: its test will say so
                continue


_load_anyio_now()


@pytest.fixture
def toy_task(monkeypatch: pytest.MonkeyPatch) -> None:
    """The toy task (``smalltrain.tasks.toy``) registered here and in every child process
    started by the test (the environment is restored afterwards)."""
    monkeypatch.setenv(EXTRA_TASKS_ENV, os.environ.get(EXTRA_TASKS_ENV, ""))
    toy.install()


@pytest.fixture
def data(tmp_path: Path) -> Path:
    """A dataset folder for the toy task (it only counts the files): one file, ``toydata/a.txt``."""
    folder = tmp_path / "toydata"
    folder.mkdir()
    (folder / "a.txt").write_text("x")
    return folder


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh smalltrain home, also set as ``$SMALLTRAIN_HOME`` for CLI calls."""
    root = tmp_path / "home"
    root.mkdir()
    monkeypatch.setenv("SMALLTRAIN_HOME", str(root))
    return root


@pytest.fixture(scope="session")
def trained_audio(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TrainedAudio]:
    """One tiny audio model (``tests.support.audio.TRAINED_CONFIG``) trained once per session
    and shared by every test that only needs a finished, exported run. Read-only: a test that
    writes (resume, a changed checkpoint) copies it into its ``tmp_path`` first; the session
    fails at teardown if anything wrote into the run or its data."""
    shared = train_tiny_run(tmp_path_factory.mktemp("trained_audio"))
    before = shared.digest()
    yield shared
    assert shared.digest() == before, "a test wrote into the shared trained audio run"


@pytest.fixture(scope="session")
def explore_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The exported tiny model the exploration tests share (``tests.support.explore``): 24
    one-shots in two folders, 18 trained on and 6 held out; about 6 s on a CPU. Read-only."""
    return train_explore_model(tmp_path_factory.mktemp("explore_model"))
