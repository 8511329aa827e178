"""The audio task's modules moved into rooms (data/, model/, quality/, training/, use/): the
old import paths still work, warn, and give the very same objects."""

from __future__ import annotations

import importlib
import subprocess
import sys

import pytest

from smalltrain.tasks import audio


@pytest.mark.parametrize("old", sorted(audio._MOVED))
def test_an_old_module_path_is_the_moved_module_with_a_warning(old: str) -> None:
    new = f"smalltrain.tasks.audio.{audio._MOVED[old]}.{old}"
    sys.modules.pop(f"smalltrain.tasks.audio.{old}", None)
    with pytest.warns(DeprecationWarning, match=f"moved to {new.replace('.', '[.]')}"):
        module = importlib.import_module(f"smalltrain.tasks.audio.{old}")
    assert module is importlib.import_module(new)


def test_the_old_imports_of_the_readme_and_the_model_module_still_work() -> None:
    # a fresh interpreter: what a user's script written against the old layout does
    script = (
        "import warnings; warnings.simplefilter('error', DeprecationWarning)\n"
        "try:\n"
        "    from smalltrain.tasks.audio.explore import explore\n"
        "except DeprecationWarning as e:\n"
        "    print('warned:', e)\n"
        "warnings.simplefilter('ignore')\n"
        "from smalltrain.tasks.audio.explore import explore, make_sound\n"
        "from smalltrain.tasks.audio.model import ConvVAE\n"
        "import smalltrain.tasks.audio as audio\n"
        "from smalltrain.tasks.audio.use import explore as moved\n"
        "print(explore is moved.explore, ConvVAE is audio.ConvVAE, callable(audio.train))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=120, check=True)  # fmt: skip
    lines = done.stdout.splitlines()
    assert lines[0].startswith("warned: smalltrain.tasks.audio.explore moved to "
                               "smalltrain.tasks.audio.use.explore")  # fmt: skip
    assert lines[1] == "True True True"


def test_a_name_that_never_existed_is_still_an_import_error() -> None:
    with pytest.raises(ModuleNotFoundError, match="nosuch"):
        importlib.import_module("smalltrain.tasks.audio.nosuch")
    from smalltrain.tasks.audio import model

    with pytest.raises(AttributeError, match="nosuch"):
        model.nosuch  # noqa: B018
