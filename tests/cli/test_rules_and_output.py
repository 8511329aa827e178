"""Rules a user can see, and output a person reads, through the real CLI (the toy task, run
inline, keeps these fast): the activation rule and ranking, datasets trained on by path,
hints that work, text that is never markup, readable show commands, plain tables in pipes,
``--set`` suggestions, ``train --config`` and the run's config.yaml, resuming a finished job.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.cli import cli, cli_json

pytestmark = pytest.mark.usefixtures("toy_task")


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "home"
    monkeypatch.setenv("SMALLTRAIN_HOME", str(root))
    return root


def train(data: Path, name: str, epochs: int, *extra: str, code: int = 0) -> Any:
    # --model-name and --kind (below) are the old spellings: they keep working
    return cli("train", str(data), "--task", "toy", "--executor", "inline", "--model-name", name,
               "--set", f"epochs={epochs}", *extra, code=code)  # fmt: skip


def test_activation_rule_is_said_and_models_rank_by_the_task_metric(home: Path, data: Path) -> None:
    first = train(data, "first", 1).stdout
    assert "active: the first model of dataset 'toydata'" in first
    second = train(data, "second", 6).stdout  # more epochs: a lower loss
    assert re.search(r"active: its loss [\d.]+ beats the previous active model 'first'", second)
    third = train(data, "third", 1).stdout  # as good as "first": not better than "second"
    assert "not active: the active model 'second' is as good or better on loss" in third
    assert "smalltrain models activate toydata/third" in third  # offered, and it works:
    models = cli_json("models", "list")
    assert [m["name"] for m in models] == ["second", "first", "third"]  # best first
    assert [m["active"] for m in models] == [True, False, False]
    assert models[0]["headline_mode"] == "min"
    assert "'third' is now the active model" in cli("models", "activate", "toydata/third").stdout
    assert cli_json("models", "show", "third")["active"]
    again = cli("models", "activate", "toydata/third").stdout
    assert "'third' was already the active model of 'toydata'" in again, again
    listed = cli("models", "list").stdout
    assert "loss" in listed
    assert "first model, or a later one that beats it" in listed


def test_training_on_a_path_registers_the_dataset_once(home: Path, data: Path) -> None:
    train(data, "m1", 1)
    (record,) = cli_json("datasets", "list")
    assert (record["name"], record["registered"], record["models"]) == ("toydata", True, 1)
    added = cli("datasets", "add", "again", str(data), "--kind", "toy")
    assert "also registered as 'toydata'" in added.stderr
    train(data, "m2", 1)  # the path keeps the name it already had
    jobs = cli_json("jobs", "list")
    assert {j["dataset"] for j in jobs} == {"toydata"}
    assert {d["name"] for d in cli_json("datasets", "list")} == {"toydata", "again"}


def test_hints_never_suggest_a_command_that_would_be_rejected(home: Path) -> None:
    for args in (["datasets", "show", ".."], ["datasets", "show", "a/does_not_exist"],
                 ["train", "missing.yaml"], ["train", "a/does_not_exist"]):  # fmt: skip
        err = cli(*args, code=1).stderr
        assert "smalltrain datasets add .." not in err
        assert "datasets add a/does_not_exist" not in err
        assert "datasets add missing.yaml" not in err
        for hint in re.findall(r"smalltrain datasets add (\S+) PATH", err):
            assert hint == "NAME", err
    assert "no such file or folder" in cli("train", "missing.yaml", code=1).stderr
    assert "smalltrain datasets add kicks PATH" in cli("train", "kicks", code=1).stderr


def test_user_text_is_never_markup(home: Path, tmp_path: Path) -> None:
    weird = tmp_path / "a[bold]b[/bold]" / "x[red]"
    err = cli("train", str(weird), code=1).stderr
    assert "a[bold]b[/bold]" in err
    assert "x[red]" in err
    folder = tmp_path / "set[green]"
    folder.mkdir()
    (folder / "f.txt").write_text("x")
    cli("datasets", "add", "brackets", str(folder), "--kind", "toy")
    assert "set[green]" in cli("datasets", "list").stdout
    assert "set[green]" in cli("datasets", "show", "brackets").stdout


def test_tables_in_a_pipe_are_plain_with_whole_ids(home: Path, data: Path) -> None:
    train(data, "a-model-with-a-rather-long-name-that-does-not-fit", 1)
    (job,) = cli_json("jobs", "list")
    out = cli("jobs", "list").stdout
    assert job["id"] in out  # the whole id, pasteable
    assert "a-model-with-a-rather-long-name-that-does-not-fit" in out
    for table in (out, cli("models", "list").stdout, cli("datasets", "list").stdout):
        assert not set("━│┃┏┗…") & set(table)
        header = table.splitlines()[0]
        assert "  " in header  # aligned columns


def test_a_cell_of_several_lines_keeps_its_row_on_one_line_in_a_pipe() -> None:
    import io

    from rich.console import Console

    from smalltrain.cli.output import print_table

    buffer = io.StringIO()
    reason = "dataset problems:\n  2 problems; 1 image left out:\n    a.txt line 3: 5 columns"
    print_table(["id", "reason"], [["abc", reason], ["def", "ok"]], out=Console(file=buffer))
    lines = buffer.getvalue().splitlines()
    assert len(lines) == 3, lines
    assert lines[1].split()[0] == "abc"
    assert "dataset problems: / 2 problems; 1 image left out: / a.txt line 3" in lines[1]


def test_show_commands_are_readable(home: Path, data: Path) -> None:
    train(data, "m", 2)
    (job,) = cli_json("jobs", "list")
    for args in (["jobs", "show", job["id"]], ["models", "show", "m"],
                 ["datasets", "show", "toydata"]):  # fmt: skip
        out = cli(*args).stdout
        assert "{'" not in out
        assert "None" not in out
        assert not re.search(r"\d\.\d{7,}", out), out  # numbers are rounded
    shown = cli("jobs", "show", job["id"]).stdout
    assert re.search(r"last metrics  .*train/loss \d\.\d{1,4}\b", shown)


def test_config_show_describes_every_field_of_the_toy_task(home: Path) -> None:
    # the toy task is the smallest example of the Task contract, field_help included
    from smalltrain.tasks.toy import ToyConfig

    rows = cli_json("config", "show", "toy")["tasks"]["toy"]
    assert [r["field"] for r in rows] == list(ToyConfig().to_dict())
    assert all(r["description"] for r in rows), rows


def test_set_with_an_unknown_field_suggests_the_nearest(home: Path, data: Path) -> None:
    err = cli("train", str(data), "--task", "toy", "--set", "epoch=3", code=1).stderr
    assert "did you mean epochs?" in err
    assert cli_json("jobs", "list") == []


def test_train_config_repeats_a_run_and_set_wins(home: Path, data: Path, tmp_path: Path) -> None:
    train(data, "orig", 2, "--set", "hidden=5", "--set", "lr=0.01")
    (job,) = cli_json("jobs", "list")
    written = Path(job["run_dir"]) / "config.yaml"
    assert f"smalltrain train --config {written}" in written.read_text()
    assert yaml.safe_load(written.read_text())["config"]["hidden"] == 5
    cli("train", "--config", str(written), "--executor", "inline", "--name", "again")
    again = next(j for j in cli_json("jobs", "list") if j["model_name"] == "again")
    assert again["config"] == job["config"]  # the same run, --set values included
    assert again["dataset"] == job["dataset"]
    mine = tmp_path / "mine.yaml"
    mine.write_text("epochs: 1\nhidden: 3\n")  # the same fields as --set
    cli("train", str(data), "--task", "toy", "--config", str(mine), "--set", "hidden=4",
        "--executor", "inline", "--name", "third")  # fmt: skip
    third = next(j for j in cli_json("jobs", "list") if j["model_name"] == "third")
    assert (third["config"]["epochs"], third["config"]["hidden"]) == (1, 4)
    # a wrong value of the file names the file and its line; a --set value is not the file's
    mine.write_text("# mine\nepochs: 1\nhidden: lots\n")
    err = " ".join(cli("train", str(data), "--task", "toy", "--config", str(mine),
                       "--executor", "inline", code=1).stderr.split())  # fmt: skip
    assert "hidden='lots': must be a whole number" in err, err
    assert f"({mine}, line 3)" in err, err
    err = " ".join(cli("train", str(data), "--task", "toy", "--config", str(mine), "--set",
                       "hidden=many", "--executor", "inline", code=1).stderr.split())  # fmt: skip
    assert "hidden='many'" in err, err
    assert str(mine) not in err, err


def test_resuming_a_finished_job_says_what_to_do_instead(home: Path, data: Path) -> None:
    train(data, "done", 1)
    (job,) = cli_json("jobs", "list")
    err = cli("resume", job["id"], code=1).stderr
    assert "already completed" in err
    assert f"train a new model the same way with: smalltrain train --config {job['run_dir']}" in (
        " ".join(err.split())
    )


def test_a_job_with_nothing_to_resume_is_not_offered_a_resume(home: Path, data: Path) -> None:
    from smalltrain.service.manager import JobSpec, TrainingManager

    with TrainingManager.open(home, autostart=False) as manager:  # queued, no worker yet
        job_id = manager.start_training(JobSpec(dataset=str(data), task="toy"))
    cli("jobs", "cancel", job_id)  # cancelled before it ever ran: no checkpoint
    waited = cli("jobs", "wait", job_id, "--quiet", code=1).stdout
    assert "Resume with" not in waited
    assert "no valid checkpoint" in waited
    assert "Start it again with: smalltrain train --config" in " ".join(waited.split())
    shown = cli("jobs", "show", job_id).stdout
    assert "resume" in shown
    assert "Start it again with" in shown


def test_train_json_is_one_document_with_the_summary(home: Path, data: Path) -> None:
    result = train(data, "j", 1, "--json")
    out = json.loads(result.stdout)  # the progress and notes went to stderr
    assert out["job"]["status"] == "COMPLETED"
    assert out["summary"]["model"] == "toydata/j"
    assert out["summary"]["active"] is True
    assert out["summary"]["next"]
    assert "running job" in result.stderr


def test_a_dataset_without_a_model_says_how_to_get_one(home: Path, data: Path) -> None:
    cli("datasets", "add", "fresh", str(data), "--kind", "toy")
    err = cli("generate", "fresh", code=1).stderr
    assert "dataset 'fresh' has no active model yet" in err
    assert "Train one with: smalltrain train fresh" in err


def test_a_filter_that_matches_nothing_says_so_and_a_wrong_status_lists_the_right_ones(
    home: Path, data: Path
) -> None:
    """ "no jobs yet" was printed with jobs in the store, and a wrong status gave an internal
    "'RUNNING' is not a valid JobStatus" without the valid ones."""
    train(data, "m1", 1)
    assert "no job has status training; all jobs" in cli("jobs", "list", "-s", "training").stdout
    nothing = cli("jobs", "list", "--dataset", "nosuch", "-s", "failed").stdout
    assert "no job has status failed and dataset 'nosuch'" in nothing
    assert "m1" in cli("jobs", "list", "-s", "Completed").stdout  # any case
    wrong = cli("jobs", "list", "-s", "running", code=2).stderr
    assert "'running' is not a job status; give one of: queued" in wrong
    assert "JobStatus" not in wrong
    assert "no model of dataset 'nosuch'" in cli("models", "list", "nosuch").stdout


def test_deleting_a_model_a_queued_job_fine_tunes_from_warns_and_no_keeps_it(
    home: Path, data: Path
) -> None:
    from typer.testing import CliRunner

    from smalltrain.cli.main import app
    from smalltrain.engine.jobs import TrainingJob
    from smalltrain.store import JobStore

    train(data, "base", 1)
    folder = Path(cli_json("models", "show", "base")["path"])
    job = TrainingJob(task="toy", dataset_path=str(data), dataset="toydata",
                      config={"base_model": str(folder / "best.pt")})  # fmt: skip
    with JobStore(home / "smalltrain.db") as store:
        store.insert_job(job)
    kept = CliRunner().invoke(app, ["models", "delete", "base"], input="n\n")
    assert kept.exit_code == 1, kept.output
    assert f"1 job will fail without it: {job.id} (QUEUED)" in kept.stderr, kept.stderr
    assert "kept model 'base': nothing was deleted" in kept.stdout
    assert "Aborted" not in kept.output
    assert cli_json("models", "show", "base")["name"] == "base"  # still there
    gone = cli("models", "delete", "base", "--yes")
    assert "Dataset 'toydata' has no active model: no model of it remains." in gone.stdout, gone


def test_jobs_and_models_print_their_times_alike(home: Path, data: Path) -> None:
    """Models kept an ISO UTC text ("2026-12-07T12:03:01Z") where jobs printed local time."""
    import datetime as dt

    from smalltrain.cli.output import local_time

    utc = dt.datetime(2026, 12, 7, 12, 3, 1, tzinfo=dt.timezone.utc)
    assert local_time("2026-12-07T12:03:01Z") == local_time(utc.timestamp())
    assert local_time(None) == "-"
    train(data, "when", 1)
    stamp = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d")
    for listed in (cli("jobs", "list").stdout, cli("models", "list").stdout,
                   cli("models", "show", "when").stdout):  # fmt: skip
        assert stamp.search(listed), listed
        assert not re.search(r"\dT\d", listed), listed


def test_a_dataset_known_only_by_its_models_is_shown_and_not_removed_twice(
    home: Path, data: Path
) -> None:
    train(data, "kept", 1)
    cli("datasets", "remove", "toydata")  # forgotten; its model stays, and so does the name
    (row,) = cli_json("datasets", "list")
    assert (row["name"], row["registered"], row["models"]) == ("toydata", False, 1)
    shown = cli("datasets", "show", "toydata").stdout
    assert "no: it exists through its models" in shown, shown
    assert "smalltrain datasets add toydata PATH" in shown
    assert cli_json("datasets", "show", "toydata")["models"] == 1
    err = " ".join(cli("datasets", "remove", "toydata", code=1).stderr.split())
    assert "'toydata' is not registered, so there is nothing to forget" in err, err
    assert "its 1 model (smalltrain models list toydata)" in err, err
