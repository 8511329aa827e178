"""Regenerate README's UI screenshot (``docs/ui-job.png``): the Job tab, whole and uncut (a
full-page capture at 1280 px wide), while a tiny audio model trains, with its curves, warnings,
previews and gauges.

The same offline setup as the browser tests (``tests/ui/browser.py``): a real `smalltrain ui`
on a fresh home, Debian's chromium driven by Playwright, both inside a network namespace holding
only loopback when this runs as root. Synthetic sounds are made in a temporary folder.

Usage: python bench/screenshot_readme.py [--out docs/ui-job.png] [--epoch 8]
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import tempfile
import time
from pathlib import Path

# the server harness and the browser helpers are test code; run from anywhere
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from tests.support.uiserver import offline, offline_unavailable, start_server  # noqa: E402
from tests.ui.browser import ARGS, AUDIO_SETTINGS, CHROMIUM  # noqa: E402


def capture(out: Path, root: Path, epoch: int) -> None:
    """Train a tiny model and capture its Job tab once the page shows ``epoch`` epochs."""
    from playwright.sync_api import sync_playwright

    from smalltrain.tasks.audio.data.synth import make_sound_folder

    folder = root / "drums"
    make_sound_folder(folder, n_files=12, seed=7)
    server = start_server(root / "home")
    try:
        added = server.api("POST", "api/datasets", {"name": "drums", "path": str(folder)})
        assert added.status == 201, added.body
        settings = {**AUDIO_SETTINGS, "epochs": 60, "preview_every": 3}
        spec = {
            "dataset": "drums",
            "preset": "tiny",
            "overrides": settings,
            "model_name": "drums-v1",
        }
        started = server.api("POST", "api/jobs", spec)
        assert started.status == 201, started.body
        job_id = started.json()["id"]
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=ARGS)
            page = browser.new_context(viewport={"width": 1280, "height": 800}).new_page()
            page.goto(f"{server.page_url}&job={job_id}")
            page.wait_for_selector(f'#job-header [data-job="{job_id}"]', timeout=120_000)
            page.wait_for_function(
                "n => Number(document.querySelector('#job-progress .st-progress')"
                "?.dataset.epoch || 0) >= n",
                arg=epoch,
                timeout=600_000,
            )
            page.wait_for_selector("#job-previews audio", timeout=120_000)
            page.wait_for_selector("#job-gauges .st-gauge", timeout=60_000)
            page.locator("#job-charts").scroll_into_view_if_needed()
            time.sleep(1.0)  # one more refresh of the page (0.5 s) so curves and bar agree
            page.screenshot(path=str(out), full_page=True)
            browser.close()
        server.api("POST", f"api/jobs/{job_id}/cancel", {"mode": "immediate"})
    finally:
        server.stop()
    print(f"wrote {out} (job {job_id}, at epoch {epoch} or later)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "ui-job.png")
    parser.add_argument("--epoch", type=int, default=8, help="capture once this many epochs ran")
    args = parser.parse_args()
    if not CHROMIUM.exists():
        sys.exit(f"no browser at {CHROMIUM} (`make install` installs Debian's chromium)")
    reason = offline_unavailable()
    if reason:
        print(f"not offline: {reason}")
    scope = offline() if reason is None else contextlib.nullcontext()
    with tempfile.TemporaryDirectory(prefix="readme-shot-") as tmp, scope:
        capture(args.out.resolve(), Path(tmp), args.epoch)


if __name__ == "__main__":
    main()
