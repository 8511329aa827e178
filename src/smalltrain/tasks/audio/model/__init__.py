"""The VAE: its two latent layouts and their shared heads, the loss terms, and the priors new
sounds are drawn from (one chunk, and sequences of chunks)."""

import warnings
from typing import Any


def __getattr__(name: str) -> Any:
    """The names of the old module ``tasks/audio/model.py`` (now ``model/model.py``), with a
    DeprecationWarning: ``from smalltrain.tasks.audio.model import ConvVAE`` still works."""
    if name.startswith("__"):
        raise AttributeError(name)
    from smalltrain.tasks.audio.model import model

    try:
        value = getattr(model, name)
    except AttributeError:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None
    warnings.warn(f"{__name__}.{name} moved to {__name__}.model.{name}: import it from there, "
                  f"or import the public names from smalltrain.tasks.audio", DeprecationWarning,
                  stacklevel=2)  # fmt: skip
    globals()[name] = value  # warned once
    return value
