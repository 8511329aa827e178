"""Audio loading and folder scanning: read any format, downmix, resample, report bad files.

``load_audio`` reads one file as float32 mono at ``TARGET_SR``. ``scan_folder`` walks a folder
into a ``DatasetReport``: the usable files (with a fast content fingerprint each), the files
skipped and why, and a summary. Bad input is skipped and reported, never fatal; only a folder
with no usable audio at all raises ``DatasetError``. Among the bad files: unreadable ones
("permission denied"), names that are not valid UTF-8 (shown escaped, e.g. ``caf\xe9.wav``:
such a name cannot be stored or printed reliably), and floating-point files whose samples are
NaN, infinite or absurdly loud (beyond ``MAX_PEAK``, which would overflow the spectrogram).
"""

from __future__ import annotations

import errno
import hashlib
import math
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf
import soxr

from smalltrain.errors import DatasetError
from smalltrain.paths import escaped_name, valid_utf8_name
from smalltrain.tasks import AUDIO_EXTENSIONS

TARGET_SR = 48000
SUPPORTED_FORMATS = "WAV, FLAC, OGG, MP3, AIFF"

#: Peak sample magnitude above which a file is refused: 1000× full scale (+60 dBFS). Integer
#: formats cannot exceed 1.0; a float file this loud is broken, and its power spectrum would
#: overflow float32 (the job would then fail far from the file's name).
MAX_PEAK = 1000.0
_FLOAT_SUBTYPES = frozenset({"FLOAT", "DOUBLE"})
_FINGERPRINT_BYTES = 64 * 1024
_SILENCE_BLOCK = 65536
_MAX_REASONS_IN_ERROR = 5
_BAD_NAME = "the file name is not valid UTF-8 (shown escaped); rename it to use it"


class AudioLoadError(DatasetError):
    """One audio file could not be read; ``reason`` says why in a few words."""

    def __init__(self, path: str | Path, reason: str) -> None:
        self.path = str(path)
        self.reason = reason
        super().__init__(
            f"{path}: {reason}. Check that the file plays in an audio player and is one of "
            f"{SUPPORTED_FORMATS}, or remove it from the folder."
        )


def _sf_message(exc: Exception) -> str:
    """The short libsndfile message ("Format not recognised") rather than the whole repr."""
    text = str(getattr(exc, "error_string", None) or exc).rstrip(".")
    if "does not exist or is not a regular file" in text:
        # libsndfile's words for an MP3 it cannot parse; the file is there (checked before)
        return "Format not recognised"
    text = text.removeprefix("Error : ").strip()
    if "lost sync" in text or "unexpected end" in text.lower():
        # a FLAC (or MP3) whose data stops or is damaged partway: audio, cut short
        return f"damaged or cut short partway ({text})"
    return text


def _not_read(exc: Exception) -> str:
    """Why libsndfile could not read a file: "not audio: ..." or "damaged or cut short..."."""
    text = _sf_message(exc)
    return text if text.startswith("damaged") else f"not audio: {text}"


def _open_problem(path: Path) -> str | None:
    """Why the file cannot even be opened ("permission denied", ...), or None.

    libsndfile reports these as "System error", so the file is opened here first.
    """
    try:
        with open(path, "rb"):
            return None
    except PermissionError:
        return "permission denied (this user may not read the file; check its permissions)"
    except IsADirectoryError:
        return "is a folder, not a file"
    except OSError as exc:
        if exc.errno == errno.ENOENT:
            return "no such file (it vanished while being read)"
        return f"unreadable: {exc.strerror or exc}"


def _level_problem(peak: float) -> str | None:
    """Why samples with this peak magnitude are unusable, or None."""
    if not math.isfinite(peak):
        return "samples are NaN or infinite"
    if peak > MAX_PEAK:
        return (
            f"samples reach {peak:.3g} (+{20 * math.log10(peak):.0f} dBFS), far beyond full "
            "scale (1.0): the file is broken or not normalised audio"
        )
    return None


def _check_readable(p: Path) -> None:
    """Raise ``AudioLoadError`` for a file that is missing, empty, badly named or unreadable."""
    if not p.is_file():
        raise AudioLoadError(p, "no such file")
    if p.stat().st_size == 0:
        raise AudioLoadError(p, "empty file (0 bytes)")
    if not valid_utf8_name(str(p)):
        raise AudioLoadError(escaped_name(str(p)), "the file name is not valid UTF-8; rename it")
    problem = _open_problem(p)
    if problem is not None:
        raise AudioLoadError(p, problem)


def load_audio(path: str | Path, target_sr: int = TARGET_SR) -> np.ndarray:
    """Read an audio file as float32 mono at ``target_sr``.

    Channels are downmixed by their mean. A different rate is resampled with soxr (HQ); the
    output then holds exactly ``round(frames * target_sr / sr)`` samples.

    Raises:
        AudioLoadError: the file is missing, unreadable, not audio or has no frames.
    """
    p = Path(path)
    _check_readable(p)
    try:
        data, sr = sf.read(str(p), dtype="float32", always_2d=True)
    except sf.LibsndfileError as exc:
        raise AudioLoadError(p, _not_read(exc)) from exc
    except (OSError, RuntimeError) as exc:
        raise AudioLoadError(p, f"unreadable: {exc}") from exc
    if data.shape[0] == 0:
        raise AudioLoadError(p, "zero frames")
    with np.errstate(invalid="ignore"):
        problem = _level_problem(float(np.max(np.abs(data))))
    if problem is not None:
        raise AudioLoadError(p, problem)
    mono = np.ascontiguousarray(data.mean(axis=1, dtype=np.float32))
    if sr != target_sr:
        want = int(round(mono.shape[0] * target_sr / sr))
        mono = np.asarray(soxr.resample(mono, sr, target_sr, quality="HQ"), dtype=np.float32)
        if mono.shape[0] > want:
            mono = mono[:want]
        elif mono.shape[0] < want:
            mono = np.pad(mono, (0, want - mono.shape[0]))
    return mono


def file_fingerprint(path: str | Path) -> str:
    """A fast content fingerprint: sha256 over size, mtime_ns and the first and last 64 KiB."""
    p = Path(path)
    st = p.stat()
    h = hashlib.sha256(f"{st.st_size}:{st.st_mtime_ns}".encode())
    with p.open("rb") as fh:
        h.update(fh.read(_FINGERPRINT_BYTES))
        if st.st_size > _FINGERPRINT_BYTES:
            fh.seek(max(_FINGERPRINT_BYTES, st.st_size - _FINGERPRINT_BYTES))
            h.update(fh.read(_FINGERPRINT_BYTES))
    return h.hexdigest()[:16]


@dataclass(frozen=True)
class AudioFileInfo:
    """One usable audio file: where it is and what it holds (at its native rate)."""

    path: Path
    rel: str
    duration_s: float
    sample_rate: int
    channels: int
    frames: int
    fingerprint: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": str(self.path),
            "rel": self.rel,
            "duration_s": self.duration_s,
            "sample_rate": self.sample_rate,
            "channels": self.channels,
            "frames": self.frames,
            "fingerprint": self.fingerprint,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AudioFileInfo:
        return cls(**{**data, "path": Path(data["path"])})


@dataclass(frozen=True)
class SkippedFile:
    """A file with an audio extension that was left out, and why."""

    path: str
    reason: str


def format_duration(seconds: float) -> str:
    """``14.2 s`` under a minute, ``12.5 min`` under an hour, else ``1.5 h``."""
    if seconds < 60:
        return f"{seconds:.1f} s"
    if seconds < 3600:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


@dataclass
class DatasetReport:
    """What ``scan_folder`` found: the files used, the files skipped and a summary.

    Satisfies ``smalltrain.engine.context.DatasetReport``. ``ignored`` counts files whose
    extension is not audio (``.txt``, ``.json``...); they are not listed.
    """

    root: Path
    files: list[AudioFileInfo]
    skipped: list[SkippedFile] = field(default_factory=list)
    ignored: int = 0
    target_sr: int = TARGET_SR
    material: str = ""  # set by the task's inspect (material detection); "" = not assessed
    material_summary: str = ""
    kind: str = field(default="audio", init=False)
    total_duration_s: float = field(default=0.0, init=False)
    sample_rates: dict[int, int] = field(default_factory=dict, init=False)
    channels: dict[int, int] = field(default_factory=dict, init=False)
    fingerprint: str = field(default="", init=False)

    def __post_init__(self) -> None:
        self.total_duration_s = float(sum(f.duration_s for f in self.files))
        self.sample_rates = dict(sorted(Counter(f.sample_rate for f in self.files).items()))
        self.channels = dict(sorted(Counter(f.channels for f in self.files).items()))
        h = hashlib.sha256()
        for rel, fp in sorted((f.rel, f.fingerprint) for f in self.files):
            h.update(f"{rel}\0{fp}\n".encode())
        self.fingerprint = h.hexdigest()[:16]

    def snapshot(self) -> str:
        """One line such as ``35 files, 12.5 min`` or ``8 files, 14.2 s``."""
        n = len(self.files)
        return f"{n} file{'' if n == 1 else 's'}, {format_duration(self.total_duration_s)}"

    def used_paths(self) -> list[Path]:
        """The paths of the files used, in scan order."""
        return [f.path for f in self.files]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable form (dict keys of the rate/channel counts become strings)."""
        return {
            "kind": self.kind,
            "root": str(self.root),
            "fingerprint": self.fingerprint,
            "snapshot": self.snapshot(),
            "total_duration_s": self.total_duration_s,
            "target_sr": self.target_sr,
            "sample_rates": {str(k): v for k, v in self.sample_rates.items()},
            "channels": {str(k): v for k, v in self.channels.items()},
            "ignored": self.ignored,
            "material": self.material,
            "material_summary": self.material_summary,
            "files": [f.to_dict() for f in self.files],
            "skipped": [{"path": s.path, "reason": s.reason} for s in self.skipped],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DatasetReport:
        """Rebuild a report from ``to_dict`` output; derived fields are recomputed."""
        return cls(
            root=Path(data["root"]),
            files=[AudioFileInfo.from_dict(f) for f in data["files"]],
            skipped=[SkippedFile(s["path"], s["reason"]) for s in data.get("skipped", [])],
            ignored=int(data.get("ignored", 0)),
            target_sr=int(data.get("target_sr", TARGET_SR)),
            material=str(data.get("material", "")),
            material_summary=str(data.get("material_summary", "")),
        )

    def format(self) -> str:
        """Multi-line human text, as printed by ``smalltrain inspect``."""
        rates = ", ".join(f"{r} Hz ×{n}" for r, n in self.sample_rates.items()) or "-"
        chans = ", ".join(
            f"{'mono' if c == 1 else 'stereo' if c == 2 else f'{c} ch'} ×{n}"
            for c, n in self.channels.items()
        )
        lines = [
            f"Audio dataset: {self.root}",
            f"  files used:     {len(self.files)}",
            f"  total duration: {format_duration(self.total_duration_s)}",
            f"  sample rates:   {rates} (all resampled to {self.target_sr} Hz)",
            f"  channels:       {chans or '-'} (downmixed to mono)",
            f"  fingerprint:    {self.fingerprint}",
        ]
        if self.material:
            lines.append(f"  material:       {self.material_summary or self.material}")
        if self.ignored:
            lines.append(f"  ignored:        {self.ignored} non-audio file(s)")
        if self.skipped:
            lines.append(f"  skipped:        {len(self.skipped)} file(s)")
            lines.extend(f"    - {s.path}: {s.reason}" for s in self.skipped)
        return "\n".join(lines)


def _peak_dbfs(path: Path, threshold: float, *, whole: bool = False) -> float:
    """Peak level in dBFS, read block by block; stops early once above ``threshold`` dBFS,
    unless ``whole`` (float files: every sample is checked for NaN, inf and absurd levels).

    Raises:
        ValueError: NaN, infinite or absurdly loud samples (the message says which).
    """
    limit = 10.0 ** (threshold / 20.0)
    peak = 0.0
    # float64 blocks: a float file's samples may exceed float32's range
    for block in sf.blocks(str(path), blocksize=_SILENCE_BLOCK, dtype="float64", always_2d=True):
        if block.size:
            with np.errstate(invalid="ignore", over="ignore"):
                block_peak = float(np.max(np.abs(block)))
            problem = _level_problem(block_peak)
            if problem is not None:
                raise ValueError(problem)
            peak = max(peak, block_peak)
            if peak >= limit and not whole:
                break
    return 20.0 * math.log10(peak) if peak > 0 else -math.inf


def _inspect_file(path: Path, rel: str, silence_db: float) -> AudioFileInfo | SkippedFile:
    """Check one file with an audio extension; return its info or why it is skipped."""
    if path.is_symlink() and not path.exists():
        return SkippedFile(rel, "broken link (its target does not exist)")
    if not path.is_file():
        return SkippedFile(rel, "not a regular file (a pipe, socket or device)")
    try:
        size = path.stat().st_size
        if size == 0:
            return SkippedFile(rel, "empty file (0 bytes)")
        problem = _open_problem(path)
        if problem is not None:
            return SkippedFile(rel, problem)
        info = sf.info(str(path))
    except sf.LibsndfileError as exc:
        return SkippedFile(rel, _not_read(exc))
    except (OSError, RuntimeError) as exc:
        return SkippedFile(rel, f"unreadable: {exc}")
    if info.frames <= 0 or info.samplerate <= 0:
        return SkippedFile(rel, "zero frames")
    try:
        peak = _peak_dbfs(path, silence_db, whole=info.subtype in _FLOAT_SUBTYPES)
    except (sf.LibsndfileError, OSError, RuntimeError, ValueError) as exc:
        return SkippedFile(rel, f"corrupt: {_sf_message(exc)}")
    if peak < silence_db:
        peak_text = "-inf" if peak == -math.inf else f"{peak:.1f}"
        return SkippedFile(rel, f"silent (peak {peak_text} dBFS, threshold {silence_db:g} dBFS)")
    return AudioFileInfo(
        path=path,
        rel=rel,
        duration_s=info.frames / info.samplerate,
        sample_rate=int(info.samplerate),
        channels=int(info.channels),
        frames=int(info.frames),
        fingerprint=file_fingerprint(path),
    )


def _hidden_reason(rel_parts: tuple[str, ...]) -> str | None:
    if rel_parts[-1].startswith("."):
        return "hidden file"
    for part in rel_parts[:-1]:
        if part.startswith("."):
            return f"hidden file (inside hidden folder '{part}')"
    return None


def _no_audio_error(root: Path, report: DatasetReport) -> DatasetError:
    parts = [f"{root}: no usable audio found."]
    if report.skipped:
        shown = "; ".join(f"{s.path}: {s.reason}" for s in report.skipped[:_MAX_REASONS_IN_ERROR])
        more = len(report.skipped) - _MAX_REASONS_IN_ERROR
        if more > 0:
            shown += f"; and {more} more"
        parts.append(f"{len(report.skipped)} file(s) skipped ({shown}).")
    if report.ignored:
        parts.append(f"{report.ignored} file(s) without an audio extension ignored.")
    parts.append(
        f"Add non-silent, non-hidden audio files in a supported format ({SUPPORTED_FORMATS}) "
        "to the folder, or point to a different folder, then run again."
    )
    return DatasetError(" ".join(parts))


def scan_folder(
    path: str | Path, target_sr: int = TARGET_SR, *, silence_db: float = -60.0
) -> DatasetReport:
    """Scan a folder (recursively, in sorted order) or one audio file into a DatasetReport.

    Skipped with a reason (never fatal): hidden files and files in hidden folders, empty files,
    unreadable or corrupt files, non-audio content behind an audio extension, files with zero
    frames, NaN/inf samples, and files whose peak stays below ``silence_db`` dBFS. Files with
    other extensions are counted in ``ignored`` (hidden ones are not counted).

    Raises:
        DatasetError: the path does not exist, or no usable audio remains.
    """
    p = Path(path).expanduser()
    if not p.exists():
        raise DatasetError(f"{p}: no such file or folder. Check the path and try again.")
    if p.is_file():
        root, candidates = p, [(p.name, p)]
    else:
        root = p
        candidates = sorted(
            (f.relative_to(p).as_posix(), f) for f in p.rglob("*") if not f.is_dir()
        )
    files: list[AudioFileInfo] = []
    skipped: list[SkippedFile] = []
    ignored = 0
    for rel, f in candidates:
        hidden = _hidden_reason(tuple(rel.split("/")))
        if f.suffix.lower() not in AUDIO_EXTENSIONS:
            ignored += 0 if hidden else 1  # .DS_Store, .git/... are not worth a mention
            continue
        if hidden:
            result: AudioFileInfo | SkippedFile = SkippedFile(escaped_name(rel), hidden)
        elif not valid_utf8_name(rel):
            result = SkippedFile(escaped_name(rel), _BAD_NAME)
        else:
            result = _inspect_file(f, rel, silence_db)
        if isinstance(result, SkippedFile):
            skipped.append(result)
        else:
            files.append(result)
    report = DatasetReport(
        root=root, files=files, skipped=skipped, ignored=ignored, target_sr=target_sr
    )
    if not files:
        raise _no_audio_error(root, report)
    return report
