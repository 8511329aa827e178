"""``GET /api/jobs/{id}/seen/{file}``: the client names a job and a file, never a path. Only the
files the run's ``seen.json`` lists are served, from its ``seen/`` folder, behind the guards."""

from __future__ import annotations

from pathlib import Path

from smalltrain.engine.seen import write_seen
from tests.support.api import Served, assert_only_the_page_reads, wait_until


def _job_with_seen_files(api: Served, toy_data: Path) -> tuple[str, Path]:
    api.add_toy_dataset("toyset", toy_data)
    job = api.start_toy_job()
    wait_until(lambda: api.client.get(f"/api/jobs/{job['id']}").json()["run_dir"], what="run dir")
    run = Path(api.client.get(f"/api/jobs/{job['id']}").json()["run_dir"])
    seen = run / "seen"
    seen.mkdir(parents=True, exist_ok=True)
    (seen / "chunk_0_original.wav").write_bytes(b"RIFF-original")
    (seen / "unlisted.wav").write_bytes(b"RIFF-unlisted")
    (run / "secret.txt").write_text("not for the browser")
    (seen / "link.wav").symlink_to(run / "secret.txt")
    items = [{"files": {"original": "chunk_0_original.wav", "up": "../secret.txt"}},
             {"files": {"link": "link.wav"}}]  # fmt: skip
    write_seen(run, {"task": "audio", "items": items})
    return job["id"], run


def test_only_listed_files_of_the_seen_folder_are_served(api: Served, toy_data: Path) -> None:
    job_id, _ = _job_with_seen_files(api, toy_data)
    url = f"/api/jobs/{job_id}/seen"
    assert api.client.get(url).json()["items"][0]["files"]["original"] == "chunk_0_original.wav"
    served = api.client.get(f"{url}/chunk_0_original.wav")
    assert served.status_code == 200
    assert served.content == b"RIFF-original"
    for name in (
        "unlisted.wav",
        "..%2Fsecret.txt",
        "link.wav",
        "seen.json",
        "%2Fetc%2Fpasswd",
    ):
        answer = api.client.get(f"{url}/{name}")
        assert answer.status_code == 404, name
        assert b"not for the browser" not in answer.content
    assert api.client.get("/api/jobs/ffffffffffff/seen/chunk_0_original.wav").status_code == 404
    # the guards: the token, and no other origin (nor a cross-site fetch) may read them
    url = f"/api/jobs/{job_id}/seen/chunk_0_original.wav"
    assert_only_the_page_reads(api, url, b"RIFF")
