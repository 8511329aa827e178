"""Shared pieces of the web UI tests: the folder where browser screenshots are saved
(``test-artifacts/ui/``, gitignored). The server harness is ``tests.support.uiserver``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts" / "ui"


@pytest.fixture(scope="session")
def artifacts() -> Path:
    """Where screenshots go; printed so a CI log says where to find them."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    print(f"\nUI screenshots: {ARTIFACTS}")
    return ARTIFACTS


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    """Keep each phase's report on the test item, so fixtures can tell a test failed; a failed
    browser test's report gets what its pages and server saw (CI shows the report, not the
    artifacts)."""
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"report_{report.when}", report)
    diagnostics = getattr(getattr(item, "funcargs", {}).get("env"), "diagnostics", None)
    if report.failed and report.when == "call" and diagnostics is not None:
        report.sections.append(("what the browser and server saw", diagnostics()))
