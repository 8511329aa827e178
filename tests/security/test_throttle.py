"""Guessing is throttled: wrong passwords or tokens lock the client's address for a growing
while (429 with Retry-After, nothing checked meanwhile); requests with the token never slow."""

from __future__ import annotations

import base64
from pathlib import Path

from smalltrain.ui.server.options import ServeOptions
from smalltrain.ui.server.throttle import Throttle
from tests.support.api import served


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_the_lock_grows_and_a_quiet_window_forgives() -> None:
    clock = Clock()
    throttle = Throttle(limit=3, window_s=60, max_lock_s=8, clock=clock)
    assert [throttle.failed("a") for _ in range(2)] == [0.0, 0.0]
    assert throttle.failed("a") == 1.0
    assert throttle.retry_after("a") == 1.0
    assert throttle.retry_after("b") == 0.0  # per address
    assert [throttle.failed("a") for _ in range(4)] == [2.0, 4.0, 8.0, 8.0]
    clock.now += 61  # a window without failures
    assert throttle.retry_after("a") == 0.0
    assert throttle.failed("a") == 0.0


def test_the_memory_is_bounded() -> None:
    throttle = Throttle(limit=1, max_clients=10)
    for i in range(100):
        throttle.failed(f"10.0.0.{i}")
    assert len(throttle._records) == 10


def _basic(password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"ana:{password}".encode()).decode()}


def test_wrong_passwords_get_429_and_the_token_still_passes(home: Path) -> None:
    options = ServeOptions(port=7860, credentials=(("ana", "s3cret"),))
    with served(home, options, run_scheduler=False) as s:
        answers = [s.anonymous.get("/api/jobs", headers=_basic(f"guess{i}")) for i in range(12)]
        codes = [a.status_code for a in answers]
        assert codes[:9] == [401] * 9
        assert codes[9:] == [429] * 3
        assert int(answers[-1].headers["retry-after"]) >= 1
        assert "too many wrong" in answers[-1].json()["error"]["message"]
        # while locked, even the right password is not checked: guessing gains nothing
        assert s.anonymous.get("/api/jobs", headers=_basic("s3cret")).status_code == 429
        # the token is 256 random bits: its holder is never slowed
        assert s.client.get("/api/jobs").status_code == 200
        # no credentials at all is not a guess (a browser's first visit)
        assert s.anonymous.get("/api/jobs").status_code == 401


def test_one_users_wrong_passwords_do_not_lock_out_another_behind_one_address(
    home: Path,
) -> None:
    """Behind a TLS proxy every user comes from its address: the lock is per user there."""
    options = ServeOptions(port=7860, credentials=(("ana", "s3cret"), ("bo", "pa55")))
    with served(home, options, run_scheduler=False) as s:
        codes = [
            s.anonymous.get("/api/jobs", headers=_basic(f"g{i}")).status_code for i in range(11)
        ]
        assert codes[-1] == 429
        bo = {"Authorization": "Basic " + base64.b64encode(b"bo:pa55").decode()}
        assert s.anonymous.get("/api/jobs", headers=bo).status_code == 200
        assert s.anonymous.get("/api/jobs", headers=_basic("s3cret")).status_code == 429


def test_wrong_tokens_are_throttled_too(home: Path) -> None:
    with served(home, ServeOptions(port=7860), run_scheduler=False) as s:
        wrong = {"Authorization": "Bearer " + "w" * 43}
        codes = [s.anonymous.get("/api/health", headers=wrong).status_code for _ in range(11)]
        assert codes == [401] * 9 + [429] * 2
        assert s.client.get("/api/health").status_code == 200
