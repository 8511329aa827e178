"""Uploads and zips: weights never unpacked, conflicts and lying headers a 400 naming the entry,
the upload streamed to the home's disk under a cap (nothing left behind on any refusal)."""

from __future__ import annotations

import io
import struct
import zipfile
from pathlib import Path

import pytest

from smalltrain.errors import DatasetError
from smalltrain.ui.server.options import ServeOptions
from smalltrain.ui.viewmodels.datasets import safe_extract
from tests.support.api import Served, served


def _zip(path: Path, entries: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in entries.items():
            zf.writestr(name, data)
    return path


def _upload(client: object, name: str, files: dict[str, bytes]) -> object:
    return client.post(  # type: ignore[attr-defined]
        "/api/datasets/upload",
        data={"name": name},
        files=[
            ("files", (fname, data, "application/octet-stream")) for fname, data in files.items()
        ],
    )


def test_zips_never_unpack_weights_or_pickles(tmp_path: Path) -> None:
    archive = _zip(
        tmp_path / "d.zip",
        {"a.txt": b"x", "w/best.pt": b"PK", "m.PTH": b"", "c.ckpt": b"", "evil.pkl": b""},
    )
    skipped: list[str] = []
    assert safe_extract(archive, tmp_path / "out", skipped) == 1
    assert sorted(skipped) == ["c.ckpt", "evil.pkl", "m.PTH", "w/best.pt"]
    assert [p.name for p in (tmp_path / "out").rglob("*") if p.is_file()] == ["a.txt"]


@pytest.mark.parametrize("order", [["x", "x/y.wav"], ["x/y.wav", "x"]])
def test_an_entry_that_is_both_file_and_folder_is_named(tmp_path: Path, order: list[str]) -> None:
    archive = _zip(tmp_path / "c.zip", {name: b"data" for name in order})
    with pytest.raises(DatasetError, match=r"entry 'x' is a file, but 'x/y.wav'"):
        safe_extract(archive, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def _understated(path: Path) -> Path:
    """A zip whose headers say its one entry is 10 bytes; it inflates to 100,000."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("big.wav", b"\0" * 100_000)
    data = bytearray(buf.getvalue())
    local = data.find(b"PK\x03\x04")
    struct.pack_into("<I", data, local + 22, 10)  # uncompressed size, local header
    central = data.find(b"PK\x01\x02")
    struct.pack_into("<I", data, central + 24, 10)  # and in the central directory
    path.write_bytes(bytes(data))
    return path


def test_a_zip_understating_its_sizes_is_named(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match=r"entry 'big.wav' is corrupt"):
        safe_extract(_understated(tmp_path / "u.zip"), tmp_path / "out")


def test_bad_zips_over_the_api_are_400s_leaving_nothing(api: Served, tmp_path: Path) -> None:
    conflict = _zip(tmp_path / "c.zip", {"x": b"1", "x/y.wav": b"2"}).read_bytes()
    lying = _understated(tmp_path / "u.zip").read_bytes()
    for name, data, words in [
        ("c", conflict, "'x/y.wav'"),
        ("u", lying, "'big.wav' is corrupt"),
        ("n", b"not a zip", "not a readable zip"),
    ]:
        answer = _upload(api.client, name, {f"{name}.zip": data})
        assert answer.status_code == 400, answer.text  # type: ignore[attr-defined]
        assert words in answer.json()["error"]["message"]  # type: ignore[attr-defined]
    assert not list((api.home / "datasets").glob("*"))
    assert not list((api.home / "ui" / "staging").glob("api-upload-*"))


def test_an_uploaded_zip_reports_the_weights_it_skipped(api: Served, tmp_path: Path) -> None:
    from smalltrain.tasks.audio.data.synth import make_sound_folder

    sounds = make_sound_folder(tmp_path / "kicks", n_files=3, seed=1)
    entries = {f"kicks/{p.name}": p.read_bytes() for p in sounds}
    archive = _zip(tmp_path / "t.zip", {**entries, "kicks/yolov8n.pt": b"pickle"}).read_bytes()
    answer = _upload(api.client, "withweights", {"t.zip": archive})
    assert answer.status_code == 201, answer.text  # type: ignore[attr-defined]
    (note,) = answer.json()["skipped_uploads"]  # type: ignore[attr-defined]
    assert note.startswith("kicks/yolov8n.pt: weights and pickles are never unpacked")
    assert not list((api.home / "datasets").rglob("*.pt"))


def test_uploads_over_the_cap_are_refused_and_removed(home: Path, toy_task: None) -> None:
    options = ServeOptions(port=7860, max_upload_bytes=64 * 1024)
    with served(home, options, run_scheduler=False) as s:
        answer = _upload(s.client, "big", {"a.txt": b"x" * 100_000})
        assert answer.status_code == 413  # type: ignore[attr-defined]
        assert "--max-upload" in answer.json()["error"]["message"]  # type: ignore[attr-defined]
        # a body sent without a length is counted as it streams
        body = b'--b\r\nContent-Disposition: form-data; name="files"; filename="a.wav"\r\n\r\n'
        chunks = iter([body] + [b"\0" * 8192] * 20)
        streamed = s.client.post(
            "/api/datasets/upload",
            content=chunks,
            headers={"Content-Type": "multipart/form-data; boundary=b"},
        )
        assert streamed.status_code == 413, streamed.text
        assert not list((s.home / "ui" / "staging").glob("api-upload-*"))
        assert not (s.home / "datasets").exists() or not list((s.home / "datasets").iterdir())


def test_an_upload_needs_multipart_and_its_two_fields(api: Served) -> None:
    plain = api.client.post("/api/datasets/upload", json={"name": "x"})
    assert plain.status_code == 415
    extra = api.client.post(
        "/api/datasets/upload", data={"name": "x", "path": "/etc"},
        files=[("files", ("a.wav", b"x", "audio/wav"))],
    )  # fmt: skip
    assert extra.status_code == 400
    assert "'path'" in extra.json()["error"]["message"]
