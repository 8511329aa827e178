"""Reading and writing image files by any name the file system holds.

OpenCV's ``imwrite`` and ``imread`` take the path as text, and a name that is not valid UTF-8
(which Python holds with surrogates, e.g. ``caf\\udce9.jpg`` for the Latin-1 ``café.jpg``)
crashes the process inside OpenCV: a segmentation fault, no exception. Here OpenCV only encodes
and decodes bytes in memory, and Python opens the file, so any name works.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

__all__ = ["read_image", "write_image"]


def write_image(path: Path, image: Any) -> Path:
    """Write ``image`` (a BGR array) to ``path``, in the format its suffix names.

    Raises:
        OSError: OpenCV cannot encode that format, or the file cannot be written.
    """
    import cv2

    ok, encoded = cv2.imencode(path.suffix or ".png", image)
    if not ok:
        raise OSError(f"{path}: could not encode the image as {path.suffix or '.png'}")
    path.write_bytes(encoded.tobytes())
    return path


def read_image(path: Path | str) -> Any:
    """The image at ``path`` as a BGR array, or None when it cannot be read or decoded."""
    import cv2
    import numpy as np

    try:
        data = np.fromfile(path, np.uint8)
    except OSError:
        return None
    return cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None
