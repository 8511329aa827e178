"""The train form's settings: the inputs and YAML split, remembered per dataset, exported in the
format the tasks (and `smalltrain train --config`) read."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from smalltrain.errors import ConfigError
from smalltrain.ui.viewmodels.settings import (
    MAIN_FIELDS,
    SettingsStore,
    diff,
    dump_yaml,
    load_yaml,
    parse_advanced,
    split_fields,
)


@pytest.mark.parametrize("kind", ["audio", "detect"])
def test_exported_yaml_is_the_task_config(tmp_path: Path, kind: str) -> None:
    from smalltrain.tasks import get_task

    task = get_task(kind)
    config = task.config_from_dict({"epochs": 7}).to_dict()
    file = tmp_path / "settings.yaml"
    file.write_text(dump_yaml(kind, "kicks", config))
    assert file.read_text().startswith(f"# smalltrain {kind} training settings for dataset 'kicks'")
    loaded = load_yaml(file)
    assert loaded == yaml.safe_load(file.read_text())
    assert task.config_from_dict(loaded).to_dict() == config  # the task reads it back as is


def test_inputs_and_advanced_yaml_cover_every_field_once() -> None:
    from smalltrain.tasks.audio.config import TrainingConfig

    config = TrainingConfig().to_dict()
    main, advanced = split_fields("audio", config)
    shown = {f for f, _, _ in main}
    assert shown == {f for f, _ in MAIN_FIELDS["audio"]}
    rest = parse_advanced(advanced)
    assert set(rest) | shown == set(config)
    assert not set(rest) & shown
    assert dict(main_item[::2] for main_item in main)["epochs"] == "50"


def test_advanced_yaml_errors_name_the_line() -> None:
    with pytest.raises(ConfigError, match="line 2"):
        parse_advanced("epochs: 3\nbatch_size: 4: 5\n")
    with pytest.raises(ConfigError, match="field: value"):
        parse_advanced("- 1\n- 2\n")


def test_remembered_settings_survive_a_new_store_and_broken_files(tmp_path: Path) -> None:
    store = SettingsStore(tmp_path)
    assert store.get("kicks") == {"preset": "auto", "overrides": {}, "model_name": ""}
    store.save("kicks", "tiny", {"epochs": 12}, "kick-v1")
    again = SettingsStore(tmp_path)  # a restarted server
    assert again.get("kicks") == {
        "preset": "tiny",
        "overrides": {"epochs": 12},
        "model_name": "kick-v1",
    }
    assert again.last() == "kicks"
    (tmp_path / "kicks.json").write_text("{not json")
    assert again.get("kicks")["overrides"] == {}  # a broken file never blocks the form
    again.forget("kicks")
    assert not (tmp_path / "kicks.json").exists()


def test_diff_is_what_the_user_changed() -> None:
    assert diff({"a": 1, "b": 2, "c": [1, 2]}, {"a": 1, "b": 3, "c": [1, 2]}) == {"b": 2}


def test_cli_advice_names_the_train_form_field() -> None:
    from smalltrain.ui.viewmodels.settings import form_advice

    text = "try more steps (--set epochs=80), a wider model (--set model_width=16)"
    out = form_advice(text, "audio")
    assert 'the Train tab\'s "Epochs" field: 80' in out
    assert '"model_width: 16" in the Train tab\'s Advanced settings (YAML)' in out
    assert "--set" not in out
