"""The HTTP API in-process (issue 22 §4): datasets, jobs (list, get, start, cancel, resume), the
event stream and models, with Starlette's TestClient against a real Backend and the toy task,
jobs run in child processes by the backend's scheduler. The browser test covers the same
routes over a real server with the audio task."""

from __future__ import annotations

import json
from pathlib import Path

from tests.support.api import Served, api, toy_data, wait_until

__all__ = ["api", "toy_data"]


def _events(served: Served, job_id: str, **headers: str) -> list[tuple[int | None, str, dict]]:
    out: list[tuple[int | None, str, dict]] = []
    with served.client.stream("GET", f"/api/jobs/{job_id}/events", headers=headers) as stream:
        assert stream.headers["content-type"].startswith("text/event-stream")
        for block in "".join(stream.iter_text()).split("\n\n"):
            fields = dict(line.split(": ", 1) for line in block.splitlines() if ": " in line)
            if "event" in fields:
                event_id = int(fields["id"]) if "id" in fields else None
                out.append((event_id, fields["event"], json.loads(fields["data"])))
    return out


def test_health_and_datasets(api: Served, tmp_path: Path) -> None:
    health = api.client.get("/api/health").json()
    assert health["status"] == "ok"
    assert health["home"] == str(api.home)
    assert api.client.get("/api/datasets").json() == []
    missing = api.client.post("/api/datasets", json={"name": "d", "path": str(tmp_path / "no")})
    assert missing.status_code == 400
    assert "no such file" in missing.json()["error"]["message"]
    assert api.client.get("/api/datasets/nope").status_code == 404
    from smalltrain.tasks.audio.data.synth import make_sound_folder

    make_sound_folder(tmp_path / "kicks", n_files=3, seed=1)
    added = api.client.post(
        "/api/datasets", json={"name": "kicks", "path": str(tmp_path / "kicks")}
    )
    assert added.status_code == 201, added.text
    assert [d["name"] for d in api.client.get("/api/datasets").json()] == ["kicks"]
    shown = api.client.get("/api/datasets/kicks").json()
    assert shown["record"]["kind"] == "audio"
    assert shown["report"]
    assert api.client.delete("/api/datasets/kicks").status_code == 200
    assert (tmp_path / "kicks").is_dir()


def test_a_job_runs_streams_cancels_resumes_and_registers_a_model(
    api: Served, toy_data: Path
) -> None:
    api.add_toy_dataset("toyset", toy_data)
    job = api.start_toy_job(epochs=40, step_s=0.05)
    job_id = job["id"]
    assert job["status"] in ("QUEUED", "STARTING")
    assert [j["id"] for j in api.client.get("/api/jobs?dataset=toyset").json()] == [job_id]
    assert api.client.get(f"/api/jobs/{job_id}").json()["task"] == "toy"
    wait_until(lambda: api.client.get(f"/api/jobs/{job_id}").json()["step"] >= 2, what="a step")

    cancelled = api.client.post(f"/api/jobs/{job_id}/cancel", json={"mode": "graceful"})
    assert cancelled.status_code == 200
    ended = _events(api, job_id)
    assert ended[-1][1] == "end"
    assert ended[-1][2]["status"] == "CANCELLED"
    assert api.client.post(f"/api/jobs/{job_id}/cancel", json={}).status_code == 409

    resumed = api.client.post(f"/api/jobs/{job_id}/resume")
    assert resumed.status_code == 200, resumed.text
    assert (
        api.client.post(f"/api/jobs/{job_id}/cancel", json={"mode": "immediate"}).status_code == 200
    )
    events = _events(api, job_id)
    assert events[-1][1] == "end"
    ids = [i for i, _, _ in events if i is not None]
    assert ids == sorted(set(ids))
    middle = ids[len(ids) // 2]
    again = _events(api, job_id, **{"Last-Event-ID": str(middle)})
    assert [i for i, _, _ in again if i is not None] == [i for i in ids if i > middle]
    after = _events(api, job_id)  # ?after= works as the header does
    assert after[-1][1] == "end"

    keys = api.client.get(f"/api/jobs/{job_id}/metrics").json()["keys"]
    assert keys, "the toy task logs epoch metrics"


def test_a_finished_job_registers_a_model_and_the_registry_routes(
    api: Served, toy_data: Path
) -> None:
    api.add_toy_dataset("toyset", toy_data)
    spec = {"dataset": "toyset", "overrides": {"epochs": 1}, "model_name": "first"}
    job_id = api.client.post("/api/jobs", json=spec).json()["id"]
    assert _events(api, job_id)[-1][2]["status"] == "COMPLETED"
    models = api.client.get("/api/models?dataset=toyset").json()
    assert [(m["name"], m["active"]) for m in models] == [("first", True)]
    assert [m["name"] for m in api.client.get("/api/models").json()] == ["first"]
    weights = api.client.get("/api/models/toyset/first/weights")
    assert weights.status_code == 200
    assert weights.content
    assert api.client.post("/api/models/toyset/first/activate").json()["active"] is True
    assert api.client.post("/api/models/toyset/nope/activate").status_code == 404
    assert api.client.delete("/api/models/toyset/first").status_code == 200
    assert api.client.get("/api/models?dataset=toyset").json() == []
    assert api.client.get("/api/jobs?status=COMPLETED&limit=1").json()[0]["id"] == job_id
    assert api.client.get("/api/jobs/ffffffffffff").status_code == 404
