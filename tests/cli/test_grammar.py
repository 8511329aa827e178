"""One CLI grammar: docs/CLI.md's flag table is what the command tree has, and the global
options, help, completion, JSON flags and hidden aliases behave as that page says."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.main import get_command
from typer.testing import CliRunner

from smalltrain.cli.main import app
from tests.support.cli import cli

DOC = Path(__file__).resolve().parents[2] / "docs" / "CLI.md"


def commands() -> Iterator[tuple[str, Any]]:
    """Every command of the tree with its path ("jobs list"); the root is "(global)".

    (Typer ships its own copy of click, so commands and groups are told apart by duck typing.)
    """
    root: Any = get_command(app)
    yield "(global)", root
    for name, cmd in root.commands.items():
        if hasattr(cmd, "commands"):
            for sub, leaf in cmd.commands.items():
                yield f"{name} {sub}", leaf
        else:
            yield name, cmd


def options(cmd: Any, hidden: bool) -> list[frozenset[str]]:
    return [
        frozenset([*p.opts, *p.secondary_opts])
        for p in cmd.params
        if p.param_type_name == "option" and bool(p.hidden) == hidden
    ]


def table(heading: str) -> list[list[str]]:
    """The rows of the first markdown table under ``heading`` in docs/CLI.md."""
    text = DOC.read_text(encoding="utf-8")
    section = text.split(heading, 1)[1]
    rows = []
    for line in section.splitlines()[1:]:
        if line.startswith("#"):
            break
        if line.startswith("|") and not line.startswith("|---"):
            rows.append([cell.strip() for cell in line.strip("|").split("|")])
    return rows[1:]  # without the header row


def _flags(cell: str) -> frozenset[str]:
    return frozenset(item.split()[0] for item in re.findall(r"`([^`]+)`", cell))


def test_every_visible_flag_is_in_the_docs_table_and_every_row_exists() -> None:
    rows = [(_flags(r[0]), [c.strip() for c in r[-1].split(",")]) for r in table("## Flags")]
    documented = {(cmd, flags) for flags, cmds in rows for cmd in cmds}
    tree = dict(commands())
    for path, cmd in tree.items():
        for flags in options(cmd, hidden=False):
            assert (path, flags) in documented, f"{path} {sorted(flags)} is not in docs/CLI.md"
    for flags, cmds in rows:
        for path in cmds:
            if path == "(every command)":
                continue
            assert path in tree, f"docs/CLI.md names a command that does not exist: {path}"
            assert flags in options(tree[path], hidden=False), f"{path} has no {sorted(flags)}"


def test_old_spellings_are_hidden_aliases_where_the_docs_say() -> None:
    tree = dict(commands())
    for old, _now, cmds in table("### Old spellings"):
        spellings = _flags(old)
        for path in (c.strip() for c in cmds.split(",")):
            hidden = set().union(*options(tree[path], hidden=True))
            assert spellings <= hidden, f"{path}: {sorted(spellings - hidden)} is not an alias"


def test_a_short_flag_means_one_thing() -> None:
    meaning: dict[str, set[str]] = {}
    for _, cmd in commands():
        for flags in options(cmd, hidden=False):
            for short in (f for f in flags if not f.startswith("--")):
                meaning.setdefault(short, set()).update(f for f in flags if f.startswith("--"))
    assert meaning.pop("-n") == {"--count", "--limit"}  # a number of things, as documented
    assert all(len(longs) == 1 for longs in meaning.values()), meaning


def test_help_shows_boolean_flags_as_flags_and_h_is_help() -> None:
    for path, _ in commands():
        args = [] if path == "(global)" else path.split()
        out = cli(*args, "-h").stdout
        assert "<bool>" not in out, path
        assert "Usage:" in out
    assert "--install-completion" in cli("--help").stdout
    assert cli("--json", "true", code=2)  # a flag takes no value
    cli("jobs", "list", "--json", "true", code=2)


def test_version_and_completion_script(monkeypatch: pytest.MonkeyPatch) -> None:
    import typer.completion

    assert cli("--version").stdout.startswith("smalltrain ")
    # typer finds the shell by walking up the process tree (shellingham); a run started
    # detached (nohup, setsid) has no shell above it, so the test names the user's shell
    monkeypatch.setattr(typer.completion, "_get_shell_name", lambda: "bash")
    script = cli("--show-completion").stdout
    assert "complete" in script
    assert "smalltrain" in script


def test_home_and_debug_before_or_after_the_command(tmp_path: Path) -> None:
    before, after = tmp_path / "before", tmp_path / "after"
    data = tmp_path / "sounds"
    from smalltrain.tasks.audio.data.synth import make_sound_folder

    make_sound_folder(data, n_files=2, seed=0)
    cli("--home", str(before), "datasets", "add", "a", str(data))
    cli("datasets", "add", "b", str(data), f"--home={after}")
    assert [d["name"] for d in json.loads(cli("--home", str(before), "datasets", "list",
                                              "--json").stdout)] == ["a"]  # fmt: skip
    assert [d["name"] for d in json.loads(cli("datasets", "list", "--json", "--home",
                                              str(after)).stdout)] == ["b"]  # fmt: skip
    plain = CliRunner().invoke(app, ["--home", str(after), "jobs", "show", "nope"])
    assert plain.exit_code == 1
    assert plain.stderr.startswith("error:")
    debug = CliRunner().invoke(app, ["--home", str(after), "jobs", "show", "nope", "--debug"])
    assert type(debug.exception).__name__ == "JobNotFound"  # the traceback is shown
    from smalltrain.cli.main import hoist_global_options

    assert hoist_global_options(["train", "x", "--", "--home", "y"]) == [
        "train", "x", "--", "--home", "y"
    ]  # fmt: skip
