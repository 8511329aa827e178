"""README's examples, pasted as they are: README cannot drift from the CLI.

Every ``smalltrain ...`` line of every code block must parse against the real command tree (an
unknown command or flag fails here). Every line of the ```bash blocks is then run in order, in
one fresh home, with README's paths replaced by fixtures (a folder of sounds named ``kicks``, a
tiny YOLO dataset named ``cells``, a ``yolov8s.pt`` made from an earlier line's model) and
``epochs=N`` by ``epochs=1`` (time, not meaning). Placeholders such as ``<job-id>`` become the
real values of the newest job. A line exits 0, except the few whose refusal README itself
implies (listed in ``EXPECTED``), which must fail with their message.
"""

from __future__ import annotations

import re
import shlex
import shutil
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.main import get_command
from typer.testing import CliRunner

from smalltrain.cli.main import app
from smalltrain.service.scheduler import scheduler_running
from smalltrain.tasks.audio.data.synth import make_drum_kit
from smalltrain.tasks.detect.synth import make_shapes_dataset

README = Path(__file__).resolve().parents[2] / "README.md"

#: Lines README shows that are refused in this run, with the reason that must be given.
EXPECTED = {
    # the job it resumes has just completed (README: "after Ctrl-C, a crash or a reboot")
    "smalltrain resume <job-id or run folder>": "already completed",
    # `jobs wait` ran it to the end just before
    "smalltrain jobs cancel <job-id>": "already COMPLETED",
}

#: Lines that are parsed but not run here, and why (each is run for real elsewhere).
PARSE_ONLY = {
    "smalltrain ui": "serves until Ctrl-C: tests/ui drive it in a real browser",
    "HEAD_IP": "needs a Ray cluster: tests/service/test_ray.py starts a real local one",
    "num_gpus=1": "asks the Ray cluster of the same README block for a GPU",
}


def code_blocks() -> list[tuple[str, list[str]]]:
    """(language, lines) of every fenced block of README."""
    blocks: list[tuple[str, list[str]]] = []
    lang: str | None = None
    lines: list[str] = []
    for line in README.read_text(encoding="utf-8").splitlines():
        if line.startswith("```"):
            if lang is None:
                lang, lines = line[3:].strip(), []
            else:
                blocks.append((lang, lines))
                lang = None
        elif lang is not None:
            lines.append(line)
    return blocks


def commands(lang: str | None = None) -> list[str]:
    """The ``smalltrain`` lines of README's blocks (comments cut off), in order."""
    return [line for block in blocks_of_commands(lang) for line in block]


def blocks_of_commands(lang: str | None = None) -> list[list[str]]:
    """The ``smalltrain`` lines of each of README's blocks (comments cut off), in order."""
    blocks: list[list[str]] = []
    for block_lang, lines in code_blocks():
        if lang is not None and block_lang != lang:
            continue
        out: list[str] = []
        blocks.append(out)
        for line in _joined(lines):
            text = re.sub(r"\s#.*$", "", line.removeprefix("$ ")).strip()  # shell comments
            text = text.split(" | ")[0]  # "... | cat": the smalltrain part
            if text.startswith("smalltrain "):
                out.append(text)
    return blocks


def _runnable(blocks: list[list[str]]) -> Iterator[str]:
    """The lines to run: a block stops at its first PARSE_ONLY line (the rest depends on it)."""
    for block in blocks:
        for line in block:
            if any(marker in line for marker in PARSE_ONLY):
                break  # parsed by test_every_readme_command_parses
            yield line


def _joined(lines: list[str]) -> list[str]:
    """Lines with their backslash continuations joined, as the shell reads them."""
    out: list[str] = []
    pending = ""
    for line in lines:
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1]
            continue
        out.append(pending + line)
        pending = ""
    return out + ([pending] if pending else [])


def parse_only(line: str) -> None:
    """Parse a README line against the command tree without running it.

    Raises:
        click's UsageError (an unknown command or flag, a missing argument).
    """
    from smalltrain.cli.main import hoist_global_options

    placeholders = re.sub(r"<[^>]+>", "PLACEHOLDER", line)  # "<job-id or run folder>"
    args = hoist_global_options(shlex.split(placeholders)[1:])
    cmd: Any = get_command(app)
    ctx = cmd.make_context("smalltrain", list(args), resilient_parsing=False)
    while hasattr(cmd, "commands"):
        rest = [*getattr(ctx, "_protected_args", getattr(ctx, "protected_args", [])), *ctx.args]
        if not rest:
            break
        name, cmd, rest = cmd.resolve_command(ctx, rest)
        ctx = cmd.make_context(name, rest, parent=ctx, resilient_parsing=False)


def test_every_readme_command_parses() -> None:
    lines = commands()
    assert len(lines) >= 25  # the blocks were found
    for line in lines:
        try:
            parse_only(line)
        except Exception as exc:
            if type(exc).__name__ == "BadParameter":  # a value check (a file that is not
                continue  # here), not grammar; a missing argument is MissingParameter
            raise AssertionError(f"README line does not parse: {line}\n{exc}") from None


class Fixtures:
    """README's paths and placeholders, mapped to real files and the newest job's values."""

    def __init__(self, root: Path, home: Path) -> None:
        self.root, self.home = root, home
        kicks = root / "samples" / "kicks"
        for i, hit in enumerate(make_drum_kit(kicks, n_files=6, seed=0), 1):
            hit.rename(kicks / f"kick{i:02d}.wav")
        cells = make_shapes_dataset(root / "data" / "cells")
        self.paths: dict[str, Callable[[], str]] = {
            "~/samples/kicks": lambda: str(kicks),
            "~/data/cells/data.yaml": lambda: str(cells),
            "~/Downloads/yolov8s.pt": self._pretrained,
            "photos/": lambda: str(cells.parent / "images" / "val"),
            "<job-id or run folder>": lambda: self._job()["id"],
            "<job-id>": lambda: self._job()["id"],
            "<model-name>": lambda: self._job()["model_name"],
            "<run folder>": lambda: self._job()["run_dir"],
            "<sweep-id>": self._sweep,
        }

    def _job(self) -> dict[str, Any]:
        from smalltrain.service.manager import TrainingManager

        with TrainingManager.open(self.home, autostart=False) as manager:
            return manager.list_jobs(limit=1)[0].to_dict()

    def _sweep(self) -> str:
        from smalltrain.service.manager import TrainingManager

        with TrainingManager.open(self.home, autostart=False) as manager:
            return manager.sweeps.newest(limit=1)[0].id

    def _pretrained(self) -> str:
        """A real detection .pt named as README's: the newest detection job's export."""
        from smalltrain.service.manager import TrainingManager

        with TrainingManager.open(self.home, autostart=False) as manager:
            job = next(j for j in manager.list_jobs(limit=None) if j.task == "detect")
        target = self.root / "Downloads" / "yolov8s.pt"
        target.parent.mkdir(exist_ok=True)
        shutil.copyfile(Path(str(job.run_dir)) / "export" / "best.pt", target)
        return str(target)

    def args(self, line: str) -> list[str]:
        line = re.sub(r"epochs=\d+", "epochs=1", line)
        if line.startswith("smalltrain sweep kicks"):  # 2 short trials stand for README's 8
            line = re.sub(r"--trials \d+", "--trials 2", line) + " --set epochs=2"
        for text, value in self.paths.items():
            if text in line:
                line = line.replace(text, value())
        return shlex.split(line)[1:]


@pytest.mark.slow
def test_readme_bash_examples_run_as_pasted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "home"
    monkeypatch.setenv("SMALLTRAIN_HOME", str(home))
    monkeypatch.chdir(tmp_path)  # outputs such as new-kicks/ and boxes/ land here
    fixtures = Fixtures(tmp_path, home)
    ran = []
    for line in _runnable(blocks_of_commands("bash")):
        started = time.monotonic()
        result = CliRunner().invoke(app, fixtures.args(line))
        print(f"{time.monotonic() - started:6.1f} s  {line}", file=sys.stderr)
        expected = EXPECTED.get(line)
        if expected is None:
            assert result.exit_code == 0, (line, result.stdout, result.stderr, result.exception)
        else:
            assert result.exit_code == 1, (line, result.stdout, result.stderr)
            assert expected in result.stderr, (line, result.stderr)
        ran.append(line)
    assert set(EXPECTED) <= set(ran)  # README still shows the lines EXPECTED speaks of
    assert len(list((tmp_path / "new-kicks").glob("*.wav"))) == 8
    assert (tmp_path / "boxes" / "labels").is_dir()
    deadline = time.monotonic() + 120  # `worker --detach` leaves once the queue is empty
    while scheduler_running(home) is not None and time.monotonic() < deadline:
        time.sleep(0.2)
    assert scheduler_running(home) is None
