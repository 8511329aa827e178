"""The export routes sit behind the same guards as every other route: another site's page
cannot start an export (foreign Origin, cross-site fetch), and nothing is written."""

from __future__ import annotations

import json

from smalltrain import paths
from tests.support.api import Served

EVIL = "http://evil.example"
ROUTE = "/api/models/toyset/m/exports"


def test_a_foreign_origin_cannot_export(api: Served) -> None:
    for headers in (
        {"Origin": EVIL, "Content-Type": "application/json"},
        {"Sec-Fetch-Site": "cross-site", "Content-Type": "application/json"},
        {"Origin": EVIL, "Content-Type": "text/plain"},
    ):
        answer = api.client.post(ROUTE, content=json.dumps({"format": "onnx"}), headers=headers)
        assert answer.status_code == 403, headers
        assert "access-control-allow-origin" not in answer.headers
    assert not list(paths.models_dir(api.home).rglob("exports"))
