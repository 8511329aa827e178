"""Bad input gets a clean 400 (or 413) naming what was wrong, never a 500: deep JSON, huge
numbers, long paths, bad event ids, unknown fields; messages quote at most ~100 characters."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from smalltrain import errors
from smalltrain.ui.server.inputs import clip, error_response, short
from tests.support.api import Served

JSON = {"Content-Type": "application/json"}


def _error(answer: object, status: int = 400) -> str:
    assert answer.status_code == status, answer.text  # type: ignore[attr-defined]
    body = answer.json()  # type: ignore[attr-defined]
    return str(body["error"]["message"])


def test_json_nested_100000_deep_is_a_400(api: Served) -> None:
    deep = "[" * 100_000 + "]" * 100_000
    for path in ("/api/jobs", "/api/datasets", "/api/jobs/0123456789ab/cancel"):
        body = '{"dataset": ' + deep + "}"
        assert "nests deeper" in _error(api.client.post(path, content=body, headers=JSON))
    # under the recursion limit but deeper than any request needs
    middle = '{"overrides": ' + "[" * 500 + "]" * 500 + "}"
    assert "nests deeper" in _error(api.client.post("/api/jobs", content=middle, headers=JSON))


def test_bodies_are_capped(api: Served) -> None:
    big = json.dumps({"name": "x", "path": "a" * (2 << 20)})
    assert "bytes" in _error(api.client.post("/api/datasets", content=big, headers=JSON), 413)
    chunked = api.client.post(
        "/api/datasets", content=iter([big.encode()[:1 << 20], big.encode()[1 << 20:]]),
        headers=JSON,
    )  # fmt: skip
    assert chunked.status_code == 413  # without a Content-Length, counted as it arrives


@pytest.mark.parametrize("value", ["1e20", "-1", "NaN", "inf", "99999999999999999999999", "x"])
def test_numeric_query_values_are_checked(api: Served, value: str) -> None:
    for name in ("offset", "limit"):
        message = _error(api.client.get(f"/api/jobs?{name}={value}"))
        assert f"{name}=" in message
        assert "whole number" in message
    assert api.client.get("/api/jobs?offset=3&limit=2").status_code == 200


def test_a_bad_status_filter_is_named(api: Served) -> None:
    assert "status='RUNNINGX'" in _error(api.client.get("/api/jobs?status=RUNNINGX"))


def test_a_5000_character_dataset_path_is_a_clean_400(api: Served) -> None:
    for path in ("/" + "a" * 5000, "/tmp/" + "b" * 300, "/tmp/x\x00y"):
        message = _error(api.client.post("/api/datasets", json={"name": "d", "path": path}))
        assert len(message) < 400, message


def test_unknown_fields_are_refused_by_name(api: Served) -> None:
    body = {"name": "d", "path": "/tmp", "pth": "/x"}
    assert "'pth'" in _error(api.client.post("/api/datasets", json=body))
    cancel = api.client.post("/api/jobs/0123456789ab/cancel", json={"mode": "graceful", "now": 1})
    assert "'now'" in _error(cancel)
    assert "JSON object" in _error(api.client.post("/api/datasets", json=[1, 2]))
    assert "must be JSON" in _error(api.client.post("/api/datasets", content="{", headers=JSON))


def test_long_values_are_quoted_short(api: Served) -> None:
    name = "n" * 5000
    message = _error(api.client.post("/api/datasets", json={"name": name, "path": "/tmp"}))
    assert "characters)" in message
    assert "n" * 101 not in message
    assert len(message) < 400
    assert len(_error(api.client.get("/api/jobs?status=" + "s" * 5000))) < 400
    assert api.client.get("/api/jobs/" + "j" * 5000).status_code == 404


BAD_EVENT_IDS = ["9" * 40, "-5", "1e3", "abc", str(2**63), "12 34"]


def test_a_bad_last_event_id_is_a_400_and_the_stream_lives_on(api: Served, toy_data: Path) -> None:
    api.add_toy_dataset("toyset", toy_data)
    job = api.start_toy_job()
    url = f"/api/jobs/{job['id']}/events"
    for value in BAD_EVENT_IDS:
        assert "Last-Event-ID" in _error(api.client.get(url, headers={"Last-Event-ID": value}))
        assert "after=" in _error(api.client.get(url, params={"after": value}))
    # the stream itself still works from a good id
    with api.client.stream("GET", url, headers={"Last-Event-ID": "0"}) as stream:
        assert stream.status_code == 200
        text = "".join(stream.iter_text())
    assert "event: end" in text


def test_short_and_clip_quote_at_most_100_characters() -> None:
    assert short("abc") == "'abc'"
    assert short("x" * 5000).endswith("(5000 characters)")
    assert len(short("x" * 5000)) < 130
    assert clip("name " + "y" * 5000 + " is bad").endswith(" is bad")
    response = error_response(errors.ConfigError("model_name", "z" * 5000, "too long"))
    assert len(response.body) < 300


def test_a_job_without_a_dataset_is_a_400_naming_it(api: Served) -> None:
    for body in ({}, {"dataset": None}, {"overrides": {"epochs": 1}}):
        message = _error(api.client.post("/api/jobs", json=body))
        assert message.startswith("dataset=None"), message
        assert "registered dataset name" in message
    assert api.job_ids() == []


@pytest.mark.parametrize(
    "spec",
    [{"overrides": {"epochs": []}}, {"overrides": {"epochs": {}}},
     {"config": {"learning_rate": [1]}}],
)  # fmt: skip
def test_a_list_or_object_where_a_number_goes_is_a_400(
    api: Served, tmp_path: Path, spec: dict[str, object]
) -> None:
    """The check runs in a helper process; its error's value (a list) crossed back as nothing,
    and the answer was a bare 500."""
    from smalltrain.tasks.audio.data.synth import make_sound_folder

    make_sound_folder(tmp_path / "snd", n_files=2, seed=0)
    added = api.client.post("/api/datasets", json={"name": "snd", "path": str(tmp_path / "snd")})
    assert added.status_code == 201, added.text
    message = _error(api.client.post("/api/jobs", json={"dataset": "snd", **spec}))
    ((field, value),) = next(iter(spec.values())).items()  # type: ignore[attr-defined]
    assert message.startswith(f"{field}={value!r}"), message
    assert api.job_ids() == []
