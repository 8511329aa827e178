"""Inspect a YOLO-format dataset before training, and build the resolved copy Ultralytics uses.

:func:`inspect_dataset` parses ``data.yaml`` (a relative ``path`` is resolved against the yaml's
own folder, which is what users mean), checks every label line and decodes every image. Hard
errors raise :class:`~smalltrain.errors.DatasetError`; partial problems are listed by file and
line in the :class:`DetectionReport` and the affected images are left out of training.

:meth:`DetectionReport.build_resolved` writes a resolved copy into the job's run dir: image
symlinks (copies where links are impossible) plus cleaned label files and a ``data.yaml`` with
absolute paths. Ultralytics then writes its ``labels/*.cache`` there, never in the user's folder,
so read-only datasets work.
"""

from __future__ import annotations

import hashlib
import math
import os
import shutil
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from smalltrain.engine.plain import plural
from smalltrain.errors import DatasetError
from smalltrain.paths import escaped_name, valid_utf8_name

__all__ = ["IMAGE_EXTENSIONS", "DetectionReport", "ImageInfo", "Problem", "inspect_dataset"]

IMAGE_EXTENSIONS = frozenset({".bmp", ".jpeg", ".jpg", ".png", ".tif", ".tiff", ".webp"})
SPLITS = ("train", "val", "test")
_BAD_NAME = "the file name is not valid UTF-8 (shown escaped); rename it to use it"


@dataclass(frozen=True)
class Problem:
    """One thing wrong with one file (``line`` is 1-based, 0 for the whole file)."""

    file: str
    line: int
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return f"{where}: {self.message}"


@dataclass(frozen=True)
class ImageInfo:
    """A usable image and its cleaned label rows (``class cx cy w h``)."""

    split: str
    path: Path
    rel: str  # path relative to the split root, used for the resolved copy
    width: int
    height: int
    rows: tuple[tuple[int, float, float, float, float], ...]


@dataclass
class DetectionReport:
    """What :func:`inspect_dataset` found; satisfies the engine's ``DatasetReport`` protocol."""

    yaml_path: Path
    root: Path
    names: list[str]
    images: list[ImageInfo]
    images_per_split: dict[str, int]
    skipped_per_split: dict[str, int]
    instances_per_class: dict[str, int]
    background_images: int
    problems: list[Problem]
    fingerprint: str
    kind: str = "detect"
    median_size: tuple[int, int] = (0, 0)
    warnings: list[str] = field(default_factory=list)  # nothing skipped, but worth knowing

    @property
    def num_images(self) -> int:
        return sum(self.images_per_split.values())

    def snapshot(self) -> str:
        """The registry's one-line summary, e.g. "200 images, 3 classes"."""
        return f"{plural(self.num_images, 'image')}, {plural(len(self.names), 'class')}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "yaml": str(self.yaml_path),
            "root": str(self.root),
            "names": list(self.names),
            "images_per_split": dict(self.images_per_split),
            "skipped_per_split": dict(self.skipped_per_split),
            "instances_per_class": dict(self.instances_per_class),
            "background_images": self.background_images,
            "median_size": list(self.median_size),
            "problems": [
                {"file": p.file, "line": p.line, "message": p.message} for p in self.problems
            ],
            "warnings": list(self.warnings),
            "fingerprint": self.fingerprint,
            "snapshot": self.snapshot(),
        }

    def format(self, max_problems: int = 20) -> str:
        """A human-readable summary for the CLI."""
        splits = ", ".join(f"{s} {n}" for s, n in self.images_per_split.items())
        lines = [
            f"dataset {self.yaml_path}",
            f"  {self.snapshot()} ({splits}); background images: {self.background_images}",
            f"  median image size: {self.median_size[0]}x{self.median_size[1]}",
            "  instances: " + ", ".join(f"{k} {v}" for k, v in self.instances_per_class.items()),
        ]
        return "\n".join(lines + self._issue_lines(max_problems))

    def issues(self, max_problems: int = 10) -> str:
        """The report's warnings and problems alone, for training's warning (the rest of the
        report is ``inspect``'s; "" when there are none)."""
        lines = self._issue_lines(max_problems)
        return "\n".join(line.removeprefix("  ").removeprefix("warning: ") for line in lines)

    def _issue_lines(self, max_problems: int) -> list[str]:
        lines = [f"  warning: {w}" for w in self.warnings]
        if self.problems:
            skipped = sum(self.skipped_per_split.values())
            lines.append(
                f"  {plural(len(self.problems), 'problem')}; {plural(skipped, 'image')} left out:"
            )
            lines += [f"    {p}" for p in self.problems[:max_problems]]
            if len(self.problems) > max_problems:
                lines.append(f"    ... and {len(self.problems) - max_problems} more")
        return lines

    def build_resolved(self, dest: Path) -> Path:
        """Write the resolved dataset under ``dest`` and return its ``data.yaml``.

        A copy already there from the same dataset (same fingerprint and source folder, e.g.
        the run being resumed) is kept as it is: Ultralytics' label cache inside it
        (``labels/*.cache``) then stays valid, and a resume does not scan every image again.
        """
        dest = Path(dest).resolve()
        stamp = f"{self.fingerprint} {self.root.resolve()}\n"
        marker, data_yaml = dest / ".source", dest / "data.yaml"
        if data_yaml.is_file() and marker.is_file() and marker.read_text() == stamp:
            return data_yaml
        if dest.exists():
            shutil.rmtree(dest)
        splits: dict[str, str] = {}
        for info in self.images:
            image = dest / "images" / info.split / info.rel
            label = (dest / "labels" / info.split / info.rel).with_suffix(".txt")
            image.parent.mkdir(parents=True, exist_ok=True)
            label.parent.mkdir(parents=True, exist_ok=True)
            _link(info.path, image)
            label.write_text(
                "".join(f"{c} {x:.6g} {y:.6g} {w:.6g} {h:.6g}\n" for c, x, y, w, h in info.rows)
            )
            splits[info.split] = str(dest / "images" / info.split)
        data = {"path": str(dest), **splits, "names": dict(enumerate(self.names))}
        data_yaml.write_text(yaml.safe_dump(data, sort_keys=False))
        marker.write_text(stamp)  # last: a copy interrupted before this is rebuilt
        return data_yaml


def _link(src: Path, dst: Path) -> None:
    try:
        os.symlink(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def _load_yaml(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as exc:
        raise DatasetError(
            f"{path}: cannot read the YAML (byte {exc.start} is not UTF-8 text; is it a binary "
            "file?). Write data.yaml as UTF-8 text and try again."
        ) from exc
    except (OSError, yaml.YAMLError) as exc:
        raise DatasetError(
            f"{path}: cannot read the YAML ({_yaml_reason(exc)}). Fix the file and try again."
        ) from exc
    if not isinstance(data, dict):
        raise DatasetError(f"{path}: expected a mapping with train, val and names keys.")
    for key in ("train", "val", "names"):
        if not data.get(key):
            raise DatasetError(
                f"{path}: missing key {key!r}. A YOLO data.yaml needs 'train', 'val' and 'names' "
                "(and optionally 'path' and 'test')."
            )
    return data


def _yaml_reason(exc: Exception) -> str:
    """One line: the parser's problem and where ("line 2, column 1: expected ',' or ']'")."""
    if isinstance(exc, yaml.MarkedYAMLError) and exc.problem_mark is not None:
        mark = exc.problem_mark
        reason = f"line {mark.line + 1}, column {mark.column + 1}: {exc.problem}"
        return f"{exc.context}; {reason}" if exc.context else reason
    return " ".join(str(exc).split())


def _parse_names(path: Path, raw: Any) -> list[str]:
    if isinstance(raw, list):
        return [str(n) for n in raw]
    if isinstance(raw, dict):
        try:
            ids = sorted(int(k) for k in raw)
        except (TypeError, ValueError):
            raise DatasetError(f"{path}: 'names' keys must be integers 0..n-1.") from None
        if ids != list(range(len(ids))):
            raise DatasetError(f"{path}: 'names' ids must be 0..{len(ids) - 1} without gaps.")
        return [str(raw.get(i, raw.get(str(i)))) for i in ids]
    raise DatasetError(f"{path}: 'names' must be a list or a mapping of id to name.")


def _split_images(path: Path, root: Path, split: str, spec: Any) -> list[tuple[Path, Path, str]]:
    """Return ``(image, split_root, rel)`` for every image file of one split."""
    out: list[tuple[Path, Path, str]] = []
    for item in spec if isinstance(spec, list) else [spec]:
        p = Path(str(item))
        p = p if p.is_absolute() else root / p
        if p.is_dir():
            files = sorted(f for f in p.rglob("*") if f.suffix.lower() in IMAGE_EXTENSIONS)
            out += [(f, p, f.relative_to(p).as_posix()) for f in files]
        elif p.is_file() and p.suffix.lower() == ".txt":
            for line in p.read_text(encoding="utf-8-sig").splitlines():
                entry = line.strip()
                if entry:
                    f = Path(entry) if Path(entry).is_absolute() else p.parent / entry
                    out.append((f, f.parent, f.name))
        else:
            raise DatasetError(
                f"{path}: the {split} split {str(item)!r} does not exist (looked for {p}). "
                "Paths are relative to the yaml's 'path' (or the yaml's own folder)."
            )
    return out


def _label_path(image: Path) -> Path:
    text = str(image)
    sa, sb = f"{os.sep}images{os.sep}", f"{os.sep}labels{os.sep}"
    if sa in text:
        text = sb.join(text.rsplit(sa, 1))
    return Path(text).with_suffix(".txt")


def _parse_label_line(line: str, nc: int) -> tuple[int, float, float, float, float] | str:
    parts = line.split()
    if len(parts) != 5:
        extra = " (segments are not supported)" if len(parts) > 5 else ""
        return f"expected 5 columns 'class cx cy w h', got {len(parts)}{extra}"
    try:
        cls_f, *coords = (float(v) for v in parts)
    except ValueError:
        return f"non-numeric value in {line.strip()!r}"
    if not math.isfinite(cls_f) or cls_f != int(cls_f) or not 0 <= cls_f < nc:
        return f"class id {parts[0]} is not in 0..{nc - 1} (names has {nc} entries)"
    if any(not 0.0 <= v <= 1.0 for v in coords):
        return f"coordinates must be normalised to [0, 1], got {' '.join(parts[1:])}"
    if coords[2] <= 0 or coords[3] <= 0:
        return f"width and height must be positive, got {parts[3]} {parts[4]}"
    return (int(cls_f), coords[0], coords[1], coords[2], coords[3])


def _read_labels(label: Path, nc: int, problems: list[Problem]) -> tuple[list[Any], bool]:
    """Return the label rows and whether the file is clean."""
    if not label.is_file():
        return [], True
    rows, ok = [], True
    for number, line in enumerate(
        label.read_text(encoding="utf-8", errors="replace").splitlines(), 1
    ):
        if not line.strip():
            continue
        row = _parse_label_line(line, nc)
        if isinstance(row, str):
            problems.append(Problem(str(label), number, row))
            ok = False
        else:
            rows.append(row)
    return rows, ok


def _decode(image: Path) -> tuple[int, int] | None:
    import cv2
    import numpy as np

    try:
        buf = np.fromfile(str(image), dtype=np.uint8)
    except OSError:
        return None
    img = cv2.imdecode(buf, cv2.IMREAD_COLOR) if buf.size else None
    if img is None:
        return None
    return int(img.shape[1]), int(img.shape[0])


def inspect_dataset(path: Path) -> DetectionReport:
    """Validate and summarise a YOLO dataset (a data.yaml or a folder holding one).

    Raises:
        DatasetError: no yaml, a missing key, a missing split folder, no labelled images, or
            every image broken.
    """
    from smalltrain.paths import find_data_yaml

    yaml_path = find_data_yaml(Path(path).expanduser())
    if yaml_path is None:
        raise DatasetError(f"{path}: no data.yaml found. Give a YOLO data.yaml or its folder.")
    yaml_path = yaml_path.resolve()
    data = _load_yaml(yaml_path)
    names = _parse_names(yaml_path, data["names"])
    warnings = _nc_warning(yaml_path, data.get("nc"), names)
    root = Path(str(data.get("path") or "."))
    root = (root if root.is_absolute() else yaml_path.parent / root).resolve()
    problems: list[Problem] = []
    images: list[ImageInfo] = []
    per_split: dict[str, int] = {}
    skipped: dict[str, int] = {}
    digest = hashlib.sha256(repr(names).encode())
    for split in SPLITS:
        if not data.get(split):
            continue
        found = _split_images(yaml_path, root, split, data[split])
        warnings += _orphan_labels(yaml_path, split, {r for _, r, _ in found}, found)
        per_split[split], skipped[split] = 0, 0
        for image, _root, rel in found:
            info = _check_image(split, image, rel, len(names), problems, digest)
            if info is None:
                skipped[split] += 1
            else:
                images.append(info)
                per_split[split] += 1
    report = _summarise(yaml_path, root, names, images, per_split, skipped, problems, digest)
    report.warnings = warnings + _shared_images(images)
    return report


def _content_key(path: Path) -> tuple[int, str]:
    """An image's size and content hash (a copy under another name is the same image)."""
    data = path.read_bytes()
    return len(data), hashlib.sha256(data).hexdigest()


def _shared_images(images: list[ImageInfo]) -> list[str]:
    """A warning when validation images are also training images (the same file or the same
    content): the validation scores would then measure memory, not generalisation."""
    train = {_content_key(i.path) for i in images if i.split == "train"}
    val = [i for i in images if i.split == "val"]
    shared = [i for i in val if _content_key(i.path) in train]
    if not shared:
        return []
    every = "every one" if len(shared) == len(val) else f"{len(shared)} of {len(val)}"
    return [
        f"train and val share images: {every} of the val images is also a train image "
        f"(e.g. {shared[0].rel}); validation scores (mAP) would then flatter the model. "
        "Give val its own images"
    ]


def _nc_warning(yaml_path: Path, nc: Any, names: list[str]) -> list[str]:
    """A warning when ``nc`` disagrees with ``names`` (training follows ``names``)."""
    if nc is None:
        return []
    try:
        count = int(nc)
    except (TypeError, ValueError):
        return [f"{yaml_path}: nc: {nc!r} is not a number; training uses the {len(names)} names"]
    if count == len(names):
        return []
    return [
        f"{yaml_path}: nc: {count} but names has {len(names)} entries; training uses "
        f"{len(names)} classes (from names). Fix nc or names so they agree"
    ]


def _orphan_labels(
    yaml_path: Path, split: str, roots: set[Path], found: list[tuple[Path, Path, str]]
) -> list[str]:
    """A warning naming the label files of a split that no image uses (a typo in an image
    name, or images deleted without their labels)."""
    used = {_label_path(image).resolve() for image, _, _ in found}
    orphans: list[Path] = []
    for images_root in sorted(roots):
        labels_root = _label_path(images_root / "x.png").parent
        if labels_root == images_root or not labels_root.is_dir():
            continue  # labels beside the images, or no labels folder: nothing to pair up
        orphans += [p for p in sorted(labels_root.rglob("*.txt")) if p.resolve() not in used]
    if not orphans:
        return []
    shown = ", ".join(escaped_name(str(p)) for p in orphans[:5])
    more = f" and {len(orphans) - 5} more" if len(orphans) > 5 else ""
    return [f"{split}: {len(orphans)} label file(s) have no image and are not used: {shown}{more}"]


def _check_image(
    split: str, image: Path, rel: str, nc: int, problems: list[Problem], digest: Any
) -> ImageInfo | None:
    if not valid_utf8_name(rel):  # inside the dataset; its own folder may be named anyhow
        problems.append(Problem(escaped_name(str(image)), 0, _BAD_NAME))
        return None
    size = _decode(image)
    if size is None:
        problems.append(Problem(str(image), 0, "image cannot be decoded (broken or not an image)"))
        return None
    label = _label_path(image)
    rows, ok = _read_labels(label, nc, problems)
    if not ok:
        return None  # like Ultralytics, an image with a bad label file is left out entirely
    digest.update(f"{split}/{rel}:{image.stat().st_size}:{size}:{rows}\n".encode())
    return ImageInfo(split, image, rel, size[0], size[1], tuple(rows))


def _summarise(
    yaml_path: Path,
    root: Path,
    names: list[str],
    images: list[ImageInfo],
    per_split: dict[str, int],
    skipped: dict[str, int],
    problems: list[Problem],
    digest: Any,
) -> DetectionReport:
    total_found = sum(per_split.values()) + sum(skipped.values())
    if total_found == 0:
        raise DatasetError(f"{yaml_path}: the split folders hold no images ({root}).")
    if not images:
        raise DatasetError(
            f"{yaml_path}: every image is unusable ({len(problems)} problems, first: "
            f"{problems[0] if problems else '?'}). Fix the files and try again."
        )
    counts: Counter[str] = Counter()
    background = 0
    for info in images:
        counts.update(names[row[0]] for row in info.rows)
        background += not info.rows
    if not any(info.rows for info in images if info.split == "train"):
        raise DatasetError(
            f"{yaml_path}: no labelled images in the train split. Each image needs a label "
            "file under labels/ with lines 'class cx cy w h'."
        )
    if per_split.get("val", 0) == 0:
        raise DatasetError(f"{yaml_path}: the val split has no usable images.")
    widths = sorted(i.width for i in images)
    heights = sorted(i.height for i in images)
    return DetectionReport(
        yaml_path=yaml_path,
        root=root,
        names=names,
        images=images,
        images_per_split=per_split,
        skipped_per_split=skipped,
        instances_per_class={n: counts.get(n, 0) for n in names},
        background_images=background,
        problems=problems,
        fingerprint=digest.hexdigest()[:16],
        median_size=(widths[len(widths) // 2], heights[len(heights) // 2]),
    )
