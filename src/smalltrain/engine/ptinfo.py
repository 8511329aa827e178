"""Look inside a PyTorch checkpoint without torch and without running any of its code.

A ``.pt`` file written by ``torch.save`` is a zip archive whose ``data.pkl`` is a pickle.
Loading it with ``torch.load(weights_only=False)`` (as Ultralytics checkpoints require) imports
and runs whatever the pickle names. ``peek`` instead unpickles ``data.pkl`` with every class
replaced by an inert stub and every tensor storage by a placeholder, so plain values (dicts,
lists, numbers, strings, None) come back as they are and nothing else is created or called.
It is cheap (no tensor data is read) and safe on any file, which makes it right for questions
such as "which epoch is this last.pt at, and does it hold optimizer state?" or "is this a
detection checkpoint?".
"""

from __future__ import annotations

import collections
import pickle
import zipfile
from pathlib import Path
from typing import Any

__all__ = ["Stub", "peek", "stub_name"]

# The only real classes a peeked pickle may create: plain containers with no side effects.
_ALLOWED = {
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("builtins", "set"): set,
    ("builtins", "frozenset"): frozenset,
}


class Stub:
    """Stands in for any object a checkpoint pickles; remembers its class and arguments."""

    module = ""
    qualname = ""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.args = args
        self.state: Any = None

    def __setstate__(self, state: Any) -> None:
        self.state = state

    def __repr__(self) -> str:
        return f"<{self.module}.{self.qualname}>"


def stub_name(value: Any) -> str:
    """``"module.Class"`` of a stubbed object (or of a stub class), else ""."""
    if isinstance(value, Stub) or (isinstance(value, type) and issubclass(value, Stub)):
        return f"{value.module}.{value.qualname}"
    return ""


def _reconstructor(cls: Any, base: Any = None, state: Any = None) -> Any:
    """``copyreg._reconstructor`` for stubs: make the (stub) object without calling anything."""
    if isinstance(cls, type) and issubclass(cls, Stub):
        return cls()
    return Stub(cls, base, state)


class _Unpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _ALLOWED:
            return _ALLOWED[(module, name)]
        if (module, name) == ("copyreg", "_reconstructor"):
            return _reconstructor
        return type(name, (Stub,), {"module": module, "qualname": name})

    def persistent_load(self, pid: Any) -> Any:
        return Stub(pid)  # a tensor storage: its data is never read


def peek(path: str | Path) -> Any:
    """The object a ``torch.save`` zip file holds, with classes and tensors stubbed.

    Returns:
        Usually a dict. Raises ``ValueError`` when the file is not a torch zip checkpoint
        (a legacy non-zip torch file, a truncated file, or something else entirely).
    """
    path = Path(path)
    try:
        with zipfile.ZipFile(path) as archive:
            name = next((n for n in archive.namelist() if n.endswith("data.pkl")), None)
            if name is None:
                raise ValueError(f"{path}: a zip file, but not a PyTorch checkpoint (no data.pkl)")
            with archive.open(name) as stream:
                return _Unpickler(stream).load()
    except (zipfile.BadZipFile, EOFError, pickle.UnpicklingError) as exc:
        raise ValueError(
            f"{path}: not a readable PyTorch checkpoint ({type(exc).__name__}: {exc}); the file "
            "may be truncated or not a .pt at all"
        ) from exc
