"""Fixtures of the security tests: the in-process server (``tests.support.api``) and the folder
where the browser test's screenshot goes (``test-artifacts/security/``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.api import api, toy_data

__all__ = ["api", "artifacts", "toy_data"]

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "security"


@pytest.fixture(scope="session")
def artifacts() -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS
