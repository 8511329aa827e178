"""The web UI and HTTP API under load: request latency while a job trains next to the same with
no job, Start → the page, an event in the job's child → the page, and page load, offline.

One real `smalltrain ui` server (run inside a network namespace holding only loopback when this
runs as root, so "offline" is measured, not assumed) and one headless chromium page (Debian's,
via Playwright) on the Job tab, whose own 0.5 s refresh requests are timed by the browser
(Resource Timing). Meanwhile a client calls the API about 10 times a second. Phase 1 has no job;
phase 2 repeats it while a tiny-preset audio job, started with the page's Start button, trains in
its child process. The baseline is phase 1: the ratio phase 2 / phase 1 is what training costs
the server.

Usage: python bench/bench_ui.py [--seconds 20] [--loads 5]
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

# the server harness is test code (tests/support/uiserver.py); run from anywhere
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.support.uiserver import http, offline, offline_unavailable, start_server  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"]  # fmt: skip
OBSERVE = """() => {
  window.__seen = [];
  const note = () => {
    const b = document.querySelector('#job-progress .st-progress');
    if (b) window.__seen.push([Date.now() / 1000, Number(b.dataset.step), Number(b.dataset.epoch)]);
  };
  new MutationObserver(note).observe(document.querySelector('#job-progress'),
    {subtree: true, childList: true, attributes: true});
}"""


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return (
        ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))] if ordered else float("nan")
    )


def summary(values_s: list[float]) -> str:
    ms = [v * 1000 for v in values_s]
    return (f"n={len(ms):4d}  p50 {statistics.median(ms):6.1f} ms  p95 {pct(ms, 0.95):6.1f} ms  "
            f"max {max(ms):6.1f} ms")  # fmt: skip


def api_load(server: Any, job_id: str | None, seconds: float) -> list[float]:
    """Call the API about 10 times a second for ``seconds``; each call's latency."""
    paths = ["api/health", "api/jobs?limit=20", "api/datasets", "api/models"]
    if job_id:
        paths.append(f"api/jobs/{job_id}")
    out: list[float] = []
    end = time.monotonic() + seconds
    i = 0
    while time.monotonic() < end:
        started = time.monotonic()
        response = server.api("GET", paths[i % len(paths)])
        out.append(time.monotonic() - started)
        assert response.status == 200, response.body[:200]
        i += 1
        time.sleep(max(0.0, 0.1 - (time.monotonic() - started)))
    return out


def ui_ticks(page: Any, seconds: float) -> list[float]:
    """The page's own refresh requests during ``seconds``, as the browser timed them."""
    page.evaluate(
        "performance.setResourceTimingBufferSize(100000); performance.clearResourceTimings()"
    )
    time.sleep(seconds)
    entries = page.evaluate(
        "performance.getEntriesByType('resource').filter(e => e.name.includes('/gradio_api/'))"
        ".map(e => e.duration)"
    )
    return [float(d) / 1000 for d in entries]


def measure(server: Any, page: Any, job_id: str | None, seconds: float) -> dict[str, list[float]]:
    results: dict[str, list[float]] = {}
    thread = threading.Thread(target=lambda: results.update(api=api_load(server, job_id, seconds)))
    thread.start()
    results["ui"] = ui_ticks(page, seconds)
    thread.join()
    results["html"] = []
    for _ in range(5):
        started = time.monotonic()
        assert http("GET", server.page_url).status == 200
        results["html"].append(time.monotonic() - started)
    return results


def page_loads(browser: Any, url: str, n: int) -> dict[str, list[float]]:
    """Open the page ``n`` times in a fresh profile (cold: nothing cached) and reload it as a
    returning user would (warm: scripts cached); until the page shows the store's state."""
    out: dict[str, list[float]] = {"cold": [], "warm": [], "scripts": []}
    for _ in range(n):
        context = browser.new_context(viewport={"width": 1280, "height": 800})
        page = context.new_page()
        for kind in ("cold", "warm"):
            started = time.monotonic()
            page.goto(url) if kind == "cold" else page.reload()
            page.wait_for_selector(".st-title[data-loaded]", timeout=60_000)
            out[kind].append(time.monotonic() - started)
            if kind == "cold":
                loaded = page.evaluate("performance.getEntriesByType('navigation')[0].loadEventEnd")
                out["scripts"].append(float(loaded) / 1000)
        context.close()
    return out


def event_latency(home: Path, job_id: str, seen: list[list[float]]) -> dict[str, list[float]]:
    """For each progress value the page showed first at time t, t minus the time the child
    emitted the event that carried it (step: a flushed step event; epoch: an epoch event)."""
    from smalltrain.store import JobStore

    with JobStore(home / "smalltrain.db") as store:
        steps = {
            int(e["global_step"]) + 1: float(e["time"])
            for _, e in store.history.events_of_type(job_id, ["step"], limit=100_000)
        }
        epochs = {
            int(e["epoch"]) + 1: float(e["time"])
            for _, e in store.history.events_of_type(job_id, ["epoch"], limit=100_000)
        }
    first_step: dict[int, float] = {}
    first_epoch: dict[int, float] = {}
    for t, step, epoch in seen:
        first_step.setdefault(int(step), t)
        first_epoch.setdefault(int(epoch), t)
    return {
        "step": [t - steps[s] for s, t in first_step.items() if s in steps],
        "epoch": [t - epochs[e] for e, t in first_epoch.items() if e in epochs and e > 0],
    }


def run(args: argparse.Namespace, root: Path) -> None:
    from playwright.sync_api import sync_playwright

    from smalltrain.tasks.audio.data.synth import make_sound_folder

    folder = root / "sounds"
    make_sound_folder(folder, n_files=12, seed=7)
    server = start_server(root / "home")
    try:
        assert (
            server.api("POST", "api/datasets", {"name": "bench", "path": str(folder)}).status == 201
        )
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
            loads = page_loads(browser, server.page_url, args.loads)
            page = browser.new_context(viewport={"width": 1280, "height": 800}).new_page()
            page.goto(server.page_url)
            page.wait_for_selector(".st-title[data-loaded]")
            page.get_by_role("tab", name="Train", exact=True).click()
            page.wait_for_selector('#train-info [data-task="audio"]', timeout=120_000)
            page.get_by_role("tab", name="Job", exact=True).click()
            idle = measure(server, page, None, args.seconds)

            page.get_by_role("tab", name="Train", exact=True).click()
            clicked = time.monotonic()
            page.locator("#train-start").click()
            page.wait_for_selector("#job-header [data-job]", timeout=60_000)
            shown = time.monotonic() - clicked
            job_id = page.locator("#job-header [data-job]").get_attribute("data-job")
            page.evaluate(OBSERVE)
            page.wait_for_function(
                "Number(document.querySelector('#job-progress .st-progress').dataset.step) > 0",
                timeout=120_000,
            )
            first = time.monotonic() - clicked
            busy = measure(server, page, job_id, args.seconds)
            seen = page.evaluate("window.__seen")
            assert (
                server.api("POST", f"api/jobs/{job_id}/cancel", {"mode": "immediate"}).status == 200
            )
            browser.close()
        latency = event_latency(server.home, job_id, seen)
    finally:
        server.stop()
    report(args, idle, busy, loads, shown, first, latency)


def report(
    args: argparse.Namespace,
    idle: dict[str, list[float]],
    busy: dict[str, list[float]],
    loads: list[float],
    shown: float,
    first: float,
    latency: dict[str, list[float]],
) -> None:
    print(f"\n{args.seconds:.0f} s per phase; offline (network namespace): {args.offline}")
    for key, name in (
        ("ui", "UI refresh requests (browser-timed)"),
        ("api", "API requests"),
        ("html", "page HTML (GET /)"),
    ):
        print(f"{name}\n  no job:   {summary(idle[key])}\n  training: {summary(busy[key])}")
        print(f"  ratio p95 training / no job: {pct(busy[key], 0.95) / pct(idle[key], 0.95):.2f}")
    print(f"Start → job shown in the page: {shown * 1000:.0f} ms")
    print(f"Start → first progress in the page: {first:.2f} s (includes the child's start-up)")
    for kind in ("step", "epoch"):
        if latency[kind]:
            print(f"{kind} event in the child → page: {summary(latency[kind])}")
    print(f"page load, cold (new profile) until filled from the store: {summary(loads['cold'])}")
    print(f"  of which the page's load event (scripts, styles, fonts): {summary(loads['scripts'])}")
    print(f"page load, warm (a reload, scripts cached): {summary(loads['warm'])}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--loads", type=int, default=5)
    args = parser.parse_args()
    if not Path(CHROMIUM).exists():
        print(f"skipped: no browser at {CHROMIUM} (`make install` installs Debian's chromium)")
        return
    reason = offline_unavailable()
    args.offline = reason is None
    with tempfile.TemporaryDirectory(prefix="bench-ui-") as tmp:
        scope = offline() if args.offline else contextlib.nullcontext()
        if not args.offline:
            print(f"not offline: {reason}")
        with scope:
            run(args, Path(tmp))


if __name__ == "__main__":
    main()
