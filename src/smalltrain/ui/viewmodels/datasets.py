"""Datasets in the UI: register a path, upload files (audio, or a zip of a YOLO dataset) into
the home, keep each dataset's full inspection report, remove.

Inspection runs in a child process (``calls.register``/``calls.inspect``). The full report (every
skipped file and problem, which the database's summary only counts) is cached in
``<home>/ui/reports/<name>.json`` with the folder's quick fingerprint, and inspected again when
the folder changed.
"""

from __future__ import annotations

import builtins
import json
import shutil
import tempfile
import zipfile
import zlib
from collections.abc import Sequence
from pathlib import Path, PurePosixPath
from typing import Any

from smalltrain import paths, tasks
from smalltrain.engine.fsutil import atomic_write_json
from smalltrain.errors import DatasetError, DatasetExists
from smalltrain.service.datasets import REMOTE_REMEDY
from smalltrain.store.datasets import DatasetStore, quick_fingerprint
from smalltrain.store.names import validate_name
from smalltrain.store.records import DatasetRecord
from smalltrain.ui.child import calls
from smalltrain.ui.child.pool import ChildPool
from smalltrain.ui.env import UIPaths

__all__ = [
    "MAX_UNZIPPED_BYTES",
    "WEIGHTS_SUFFIXES",
    "DatasetsUI",
    "contain_data_yaml",
    "safe_extract",
]

MAX_UNZIPPED_BYTES = 8 * 2**30
#: Files an upload never unpacks: weights and pickles run code when loaded (docs/SECURITY.md).
WEIGHTS_SUFFIXES = frozenset({".pt", ".pth", ".ckpt", ".pkl", ".pickle"})
#: A longer path cannot name a file on Linux (PATH_MAX); checked before touching the disk.
MAX_PATH_CHARS = 4096
MAX_ZIP_MEMBERS = 200_000
_SKIP_PARTS = ("__MACOSX",)


def _entry(name: str) -> str:
    return repr(name if len(name) <= 100 else name[:100] + "...")


def _check_layout(archive: Path, wanted: list[tuple[zipfile.ZipInfo, PurePosixPath]]) -> None:
    """Refuse an entry that is both a file and a folder of another (``x`` and ``x/y.wav``)."""
    files = {name.parts: m.filename for m, name in wanted}
    for m, name in wanted:
        for i in range(1, len(name.parts)):
            clash = files.get(name.parts[:i])
            if clash is not None:
                raise DatasetError(
                    f"{archive.name}: entry {_entry(clash)} is a file, but {_entry(m.filename)} "
                    "needs it to be a folder; nothing was extracted"
                )


def _plan(
    archive: Path, members: list[zipfile.ZipInfo], skipped: list[str]
) -> list[tuple[zipfile.ZipInfo, PurePosixPath]]:
    """The entries to write, every one checked before anything is written."""
    wanted = []
    for m in members:
        name = PurePosixPath(m.filename.replace("\\", "/"))
        if name.is_absolute() or ".." in name.parts or (m.external_attr >> 28) == 0xA:
            raise DatasetError(
                f"{archive.name}: unsafe entry {_entry(m.filename)} (absolute path, '..' or "
                "a link); nothing was extracted"
            )
        if m.is_dir() or any(p in _SKIP_PARTS or p.startswith(".") for p in name.parts):
            continue
        if name.suffix.lower() in WEIGHTS_SUFFIXES:
            skipped.append(m.filename[:200])
            continue
        wanted.append((m, name))
    _check_layout(archive, wanted)
    return wanted


def _extract_one(zf: zipfile.ZipFile, m: zipfile.ZipInfo, target: Path, budget: int) -> int:
    """Write one entry; the bytes written (at most ``budget``: headers may understate)."""
    written = 0
    target.parent.mkdir(parents=True, exist_ok=True)
    with zf.open(m) as src, open(target, "wb") as out:
        while chunk := src.read(1 << 20):
            written += len(chunk)
            if written > budget:
                raise DatasetError(f"unpacks to more than {MAX_UNZIPPED_BYTES} bytes")
            out.write(chunk)
    return written


def safe_extract(archive: Path, dest: Path, skipped: list[str] | None = None) -> int:
    """Extract a zip into ``dest``, refusing members that would land outside it, links, and
    archives that unpack to more than ``MAX_UNZIPPED_BYTES``; returns the files written.

    Weights and pickles (``WEIGHTS_SUFFIXES``: loading one runs code) are never extracted;
    their names are appended to ``skipped``.

    Raises:
        DatasetError: not a zip, an unsafe, conflicting, corrupt or oversized archive, naming
            the entry (the caller removes what was written).
    """
    try:
        zf = zipfile.ZipFile(archive)
    except (zipfile.BadZipFile, OSError) as e:
        raise DatasetError(f"{archive.name}: not a readable zip file ({e})") from None
    with zf:
        members = zf.infolist()
        if len(members) > MAX_ZIP_MEMBERS:
            raise DatasetError(f"{archive.name}: {len(members)} entries; at most {MAX_ZIP_MEMBERS}")
        total = sum(m.file_size for m in members)
        if total > MAX_UNZIPPED_BYTES:
            raise DatasetError(
                f"{archive.name}: unpacks to {total / 2**30:.1f} GiB; at most "
                f"{MAX_UNZIPPED_BYTES / 2**30:.0f} GiB. Register the folder by its path instead."
            )
        wanted = _plan(archive, members, skipped if skipped is not None else [])
        budget = MAX_UNZIPPED_BYTES
        for m, name in wanted:
            try:
                budget -= _extract_one(zf, m, dest.joinpath(*name.parts), budget)
            except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError) as e:
                raise DatasetError(
                    f"{archive.name}: entry {_entry(m.filename)} is corrupt ({str(e)[:100]}); "
                    "nothing was kept"
                ) from None
            except DatasetError as e:
                raise DatasetError(f"{archive.name}: entry {_entry(m.filename)} {e}") from None
            except OSError as e:
                raise DatasetError(
                    f"{archive.name}: entry {_entry(m.filename)} cannot be written "
                    f"({e.strerror or e}); nothing was kept"
                ) from None
    return len(wanted)


def _dataset_root(folder: Path) -> Path:
    """What to register in an unpacked upload: the folder holding data.yaml (the top one, or
    one level down, as zips often wrap everything in a folder), else the folder itself."""
    if paths.find_data_yaml(folder) is not None:
        return folder
    subdirs = [p for p in folder.iterdir() if p.is_dir()]
    files = [p for p in folder.iterdir() if p.is_file()]
    if len(subdirs) == 1 and not files:
        inner = subdirs[0]
        return inner if paths.find_data_yaml(inner) is not None else _dataset_root(inner)
    return folder


def _inside(p: Path, folder: Path) -> bool:
    return p.resolve().is_relative_to(folder.resolve())


def contain_data_yaml(root: Path, folder: Path) -> list[str]:
    """Keep an uploaded YOLO dataset inside its upload ``folder``: a ``path:`` in its data.yaml
    that is absolute or climbs out (written on the uploader's machine) is replaced by the
    yaml's own folder, so the dataset never reads images outside the upload; returns what was
    changed, in words. Split entries that still point outside are refused.

    Raises:
        DatasetError: a split (``train:``, ``val:``, ``test:``) names a path outside the upload.
    """
    import yaml

    found = paths.find_data_yaml(root)
    if found is None:
        return []
    try:
        data = yaml.safe_load(found.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return []  # the task's inspection says what is wrong with it
    if not isinstance(data, dict):
        return []
    notes = []
    given = data.get("path")
    base = found.parent
    if given is not None and not _inside(base / str(given), folder):
        data["path"] = "."
        found.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
        notes.append(
            f"data.yaml's path: {str(given)[:100]!r} points outside the upload; the upload's "
            f"own folder is used instead"
        )
    for split in ("train", "val", "test"):
        entries = data.get(split)
        for entry in entries if isinstance(entries, list) else [entries]:
            if entry and not _inside(base / str(entry), folder):
                raise DatasetError(
                    f"{found.name}: {split}: {str(entry)[:100]!r} points outside the upload; "
                    "use paths relative to data.yaml's folder. Nothing was registered"
                )
    return notes


class DatasetsUI:
    """Dataset actions shared by the UI and the API."""

    def __init__(self, store: DatasetStore, ui: UIPaths, pool: ChildPool) -> None:
        self.store = store
        self.ui = ui
        self.pool = pool

    def list(self) -> list[DatasetRecord]:
        return self.store.list()

    def get(self, name: str) -> DatasetRecord:
        return self.store.get(name)

    def _cache(self, name: str) -> Path:
        return self.ui.reports / f"{validate_name(name, 'dataset name')}.json"

    def _remember(self, name: str, path: str, report: dict[str, Any]) -> None:
        atomic_write_json(self._cache(name), {"quick": quick_fingerprint(path), "report": report})

    def register(self, name: str, path: str | Path, kind: str | None = None) -> dict[str, Any]:
        """Inspect (in a child) and register ``path`` as ``name``; the record and full report."""
        validate_name(name, "dataset name")
        if not str(path).strip():
            raise DatasetError("give the path of a folder of sounds, or of a YOLO data.yaml")
        if len(str(path)) > MAX_PATH_CHARS or "\x00" in str(path):
            raise DatasetError(
                f"path {str(path)[:100]!r}... ({len(str(path))} characters): not a usable path; "
                "give the path of a folder of sounds, or of a YOLO data.yaml"
            )
        target = Path(path).expanduser()
        try:
            exists = target.exists()
        except OSError as e:  # a name part over 255 bytes, a folder it may not read
            raise DatasetError(f"{str(target)[:100]!r}: cannot be read ({e.strerror})") from None
        if not exists:
            raise DatasetError(f"{target}: no such file or folder on the server")
        result = self.pool.call(calls.register, str(self.ui.home), name, str(target), kind)
        self._remember(name, result["record"]["path"], result["report"])
        return dict(result)

    def report(self, name: str) -> dict[str, Any]:
        """The full report of a registered dataset, inspected again if the folder changed."""
        record = self.store.get(name)
        try:
            cached = json.loads(self._cache(name).read_text(encoding="utf-8"))
            if cached.get("quick") == quick_fingerprint(record.path):
                return dict(cached["report"])
        except (OSError, ValueError, KeyError):
            pass
        report = dict(self.pool.call(calls.inspect, str(self.ui.home), name))
        self._remember(name, record.path, report)
        return report

    def upload(
        self, name: str, files: Sequence[str | Path], *, move: bool = False
    ) -> dict[str, Any]:
        """Copy (or ``move``) uploaded files into ``<home>/datasets/<name>`` and register them.

        One ``.zip`` is unpacked (a YOLO dataset with its data.yaml, or a folder of sounds),
        without its weights or pickles (listed under ``"skipped_uploads"`` in the result);
        other files (audio) are copied as they are. On any error the new folder is removed.

        Raises:
            InvalidName, DatasetError (nothing usable, an unsafe zip or data.yaml),
            DatasetExists (the name is taken).
        """
        validate_name(name, "dataset name")
        if not files:
            raise DatasetError("no files uploaded; choose audio files or one .zip")
        dest = self.ui.datasets / name
        taken = self.store.job_store.get_dataset(name)
        if dest.exists() or taken is not None:
            held = f" (it holds {taken.path}: {taken.snapshot})" if taken is not None else ""
            raise DatasetExists(
                f"dataset name {name!r} is already taken{held}; nothing was replaced. "
                + REMOTE_REMEDY.format(name=name)
            )
        dest.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".upload-{name}-", dir=dest.parent))
        try:
            skipped = self._unpack(files, staging, move)
            staging.rename(dest)
            root = _dataset_root(dest)
            notes = contain_data_yaml(root, dest)
            result = self.register(name, root)
            if notes:
                result["upload_notes"] = notes
            if skipped:
                result["skipped_uploads"] = [
                    f"{entry}: weights and pickles are never unpacked from an upload (loading "
                    "one runs code); register weights on the Models tab instead"
                    for entry in skipped
                ]
            return result
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            if self.store.job_store.get_dataset(name) is None:
                shutil.rmtree(dest, ignore_errors=True)
            raise

    @staticmethod
    def _unpack(files: Sequence[str | Path], folder: Path, move: bool = False) -> Sequence[str]:
        """Unpack or copy the upload into ``folder``; the zip entries skipped as weights."""
        sources = [Path(f) for f in files]
        zips = [f for f in sources if f.suffix.lower() == ".zip"]
        skipped: builtins.list[str] = []
        if zips:
            if len(sources) > 1:
                raise DatasetError("upload either one .zip or audio files, not both")
            safe_extract(zips[0], folder, skipped)
            return skipped
        usable = [f for f in sources if f.suffix.lower() in tasks.AUDIO_EXTENSIONS]
        if not usable:
            exts = ", ".join(sorted(tasks.AUDIO_EXTENSIONS))
            raise DatasetError(f"no audio file among the upload; accepted: {exts}, or one .zip")
        for f in usable:
            if move:  # the API's staged files: a rename on the same disk, not a copy
                shutil.move(f, folder / Path(f).name)
            else:
                shutil.copyfile(f, folder / Path(f).name)
        return skipped

    def is_uploaded(self, record: DatasetRecord) -> bool:
        """Whether the dataset's files were uploaded into the home (so removing deletes them)."""
        root = self.ui.datasets.resolve()
        return Path(record.path).resolve().is_relative_to(root)

    def remove(self, name: str) -> DatasetRecord:
        """Forget the dataset; files uploaded into the home are deleted, others are kept."""
        record = self.store.remove(name)
        if self.is_uploaded(record):
            shutil.rmtree(self.ui.datasets / name, ignore_errors=True)
        self._cache(name).unlink(missing_ok=True)
        return record
