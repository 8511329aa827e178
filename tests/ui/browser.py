"""What the browser tests share: the offline environment (``Env``), the ``shot_on_failure``
fixture (import it into a module that has an ``env`` fixture), Gradio-aware helpers to fill,
choose and wait, and a reader of server-sent event streams.

Pages come from Playwright's sync API; its classes are imported for the type checker only, so
that this module loads where Playwright is not installed (the tests then skip).
"""

from __future__ import annotations

import json
import re
import time
import weakref
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

import pytest

from tests.support.uiserver import Server, has_route_out, offline, offline_unavailable, start_server

if TYPE_CHECKING:
    from playwright.sync_api import Browser, HttpCredentials, Locator, Page

CHROMIUM = Path("/usr/bin/chromium")
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    # a webcam without a camera: Chromium's built-in test pattern, permission granted
    "--use-fake-device-for-media-stream",
    "--use-fake-ui-for-media-stream",
]
LOOPBACK = {"127.0.0.1", "localhost", "[::1]", "::1"}
#: The tiny audio settings the test imports as a YAML file (the UI's own format: config fields).
AUDIO_SETTINGS = {
    "epochs": 30,
    "batch_size": 4,
    "model_width": 8,
    "model_capacity": 0.5,
    "latent_dim": 16,
    "kl_warmup_epochs": 1,
    "checkpoint_every": 1,
    "preview_every": 2,
    "preview_count": 2,
    "augmentation_expansion": 1,
    "chunk_hop_seconds": 0.5,
    "early_stopping_patience": 0,
}


def skip_reason() -> str | None:
    if not CHROMIUM.exists():
        return "Debian's chromium is not at /usr/bin/chromium (`make install` installs it)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "playwright (python) is not installed"
    return offline_unavailable()


@dataclass
class Env:
    """The offline server, the browser, and every URL the pages asked for."""

    server: Server
    browser: Browser
    artifacts: Path
    data: Path
    requests: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    pages: list[Page] = field(default_factory=list)
    #: refused requests (status >= 400) and console errors of the pages, for a failure's report
    problems: list[str] = field(default_factory=list)

    def page(self, http_credentials: HttpCredentials | None = None) -> Page:
        """A new page in a fresh context (signed in with ``http_credentials``), recorded."""
        context = self.browser.new_context(
            viewport={"width": 1280, "height": 800}, http_credentials=http_credentials
        )
        context.on("request", lambda r: self.requests.append(r.url))
        context.on(
            "response",
            lambda r: (
                self.problems.append(f"{r.status} {r.request.method} {r.url}")
                if r.status >= 400
                else None
            ),
        )
        page = context.new_page()
        track_queue(page)
        page.on(
            "console",
            lambda m: (
                self.problems.append(f"console {m.type}: {m.text}") if m.type == "error" else None
            ),
        )
        page.set_default_timeout(60_000)
        self.pages.append(page)
        return page

    def outside(self) -> list[str]:
        """Requests that would leave loopback (data: and blob: URLs stay in the page)."""
        out = []
        for url in self.requests:
            parsed = urlparse(url)
            if parsed.scheme in ("data", "blob", "about"):
                continue
            if parsed.hostname not in LOOPBACK and f"[{parsed.hostname}]" not in LOOPBACK:
                out.append(url)
        return out

    def diagnostics(self) -> str:
        """What a failed test's report adds (see tests/ui/conftest.py): the pages' refused
        requests and console errors, their last requests, the server's last lines, and the
        stacks of the server's threads and helper processes."""
        parts = [
            ("refused requests and console errors", self.problems[-20:]),
            ("the last requests", self.requests[-10:]),
            ("the server's last lines", self.server.output().splitlines()[-30:]),
            # where a page that waits is stuck: the server's threads, then its helpers'
            ("every thread's stack (kill -USR1)", self.server.stacks().splitlines()[:400]),
        ]
        return "\n".join(f"{title}:\n" + "".join(f"  {x}\n" for x in xs) for title, xs in parts)

    def shot(self, page: Page, name: str) -> None:
        page.screenshot(path=str(self.artifacts / f"{name}.png"), full_page=True)


# --- page helpers ---------------------------------------------------------------------------

#: Each page's Gradio queue requests in flight: joins, and the event stream that carries their
#: results (``/gradio_api/queue/data``), open until the server has sent every result.
_IN_FLIGHT: weakref.WeakKeyDictionary[Page, set[object]] = weakref.WeakKeyDictionary()


def track_queue(page: Page) -> None:
    """Keep ``_IN_FLIGHT`` for ``page`` (``Env.page`` does it for every page)."""
    flying: set[object] = set()
    _IN_FLIGHT[page] = flying

    def started(request: object) -> None:
        if "/gradio_api/queue/" in getattr(request, "url", ""):
            flying.add(request)

    def ended(request: object) -> None:
        flying.discard(request)

    page.on("request", started)
    page.on("requestfinished", ended)
    page.on("requestfailed", ended)


def settle(page: Page, timeout_s: float = 15.0) -> None:
    """Wait until the page has no queued event in flight (no join unanswered, no result stream
    open), at most ``timeout_s``, then go on whatever the state.

    Gradio 6.31's client can lose an event's result when the event is joined while the stream
    of the events before it is closing: it counts on that stream, the server has just ended it,
    and the event stays pending for good (twice in this machine's full runs, at a click that
    followed a field's change event; the server's stacks showed it idle, its helpers idle, the
    last request a join with no stream after it). A user's remedy is to click again. The
    helpers below act on a quiet page instead, as a person does at a person's pace."""
    flying = _IN_FLIGHT.get(page)
    deadline = time.monotonic() + timeout_s
    while flying and time.monotonic() < deadline:
        page.wait_for_timeout(50)  # lets Playwright deliver the requests' events


def module_root(tmp_path_factory: pytest.TempPathFactory, name: str) -> Path:
    """A browser module's own folder (its home and data go below it); the module is skipped,
    saying why, where no browser can run."""
    reason = skip_reason()
    if reason:
        pytest.skip(reason)
    return tmp_path_factory.mktemp(name)


@contextmanager
def browser_env(
    home: Path, data: Path, artifacts: Path, log: str, args: Sequence[str] = ()
) -> Iterator[Env]:
    """The one way a browser test module gets its ``Env``: an offline namespace, a real
    ``smalltrain ui`` on ``home``, headless Chromium (``args`` added to its flags, e.g. a
    WAV for the fake microphone); the server's output is kept in ``artifacts/log`` and the
    server must exit 0."""
    from playwright.sync_api import Locator, sync_playwright

    with offline(), _clicks_settle_first(Locator):
        assert not has_route_out(), "the test namespace still has a network interface up"
        server = start_server(home)
        try:
            with sync_playwright() as pw:
                browser = pw.chromium.launch(
                    executable_path=str(CHROMIUM), headless=True, args=[*ARGS, *args]
                )
                try:
                    yield Env(server, browser, artifacts, data)
                finally:
                    browser.close()
        finally:
            code = server.stop()
            (artifacts / log).write_text(server.output())
        assert code == 0, server.output()


@contextmanager
def _clicks_settle_first(locator_class: Any) -> Iterator[None]:
    """Every ``Locator.click`` of the browser tests first ``settle``s its page (see there): a
    click is the commonest action, and a test's own clicks come straight after waits that a
    result already satisfies while its event's stream is still closing (an Export click lost
    its result that way in a full run, its page showing Gradio's timer at 180 s)."""
    original = locator_class.click

    def click(self: Locator, *args: Any, **kwargs: Any) -> None:
        settle(self.page)
        original(self, *args, **kwargs)

    locator_class.click = click
    try:
        yield
    finally:
        locator_class.click = original


@pytest.fixture(autouse=True)
def shot_on_failure(request: pytest.FixtureRequest, env: Env) -> Iterator[None]:
    """A failed test leaves a screenshot of each page it had open (``FAILED-<test>-<n>.png``
    beside the others), for the CI log. Autouse in every module that imports it."""
    env.pages.clear()
    env.problems.clear()
    yield
    report = getattr(request.node, "report_call", None)  # kept by tests/ui/conftest.py
    if report is not None and report.failed:
        for i, page in enumerate(env.pages):
            if not page.is_closed():
                page.screenshot(
                    path=str(env.artifacts / f"FAILED-{request.node.name}-{i}.png"), full_page=True
                )


def fill(page: Page, elem_id: str, text: str) -> None:
    settle(page)
    page.locator(f"#{elem_id} textarea, #{elem_id} input").first.fill(text)


def upload(page: Page, into: str, files: Path | Sequence[Path], shown: str | None = None) -> None:
    """Give ``files`` to the file input inside ``into`` (a CSS selector), as a user's file
    dialog does, and wait until the upload has finished: ``shown`` (a selector) appears, or,
    for a gr.File, each file has its row in the component's list, which Gradio draws once the
    server has answered the upload.

    The row shows a name as two spans (``cells`` and ``.zip``) and keeps the whole name in its
    ``aria-label``; only the progress line shown while the upload runs ("Uploading 1 file...
    cells.zip") has the name as one text. A wait for that text passed when the page was
    caught mid-upload and failed, whatever the wait, when the upload was done first (CI: two
    misses in two runs; here: 1 in 30)."""
    paths = [files] if isinstance(files, Path) else list(files)
    settle(page)
    page.locator(f"{into} input[type=file]").first.set_input_files([str(f) for f in paths])
    if shown is not None:
        page.wait_for_selector(shown)
        return
    for path in paths:
        label = path.name.replace("\\", "\\\\").replace('"', '\\"')
        page.wait_for_selector(f'{into} td.filename[aria-label="{label}"]')


def field_box(page: Page, label: str) -> Locator:
    """The Train tab's input titled ``label``. A field showing an error has the error in its
    accessible name too, after the title: the name starts with the title."""
    return page.locator("#tab-train").get_by_label(re.compile(rf"^\s*{re.escape(label)}")).first


def type_into(box: Locator, text: str) -> None:
    """Replace a text field's value by typing, as a user does (Gradio's input event follows
    keystrokes; Playwright's fill() sets the value without them)."""
    settle(box.page)
    box.click()
    box.press("Control+a")
    box.press_sequentially(text)
    if box.input_value() != text:  # the field was drawn again under the keys: type again
        box.click()
        box.press("Control+a")
        box.press_sequentially(text)
    assert box.input_value() == text, f"typed {text!r}, the field shows {box.input_value()!r}"


def choose(page: Page, elem_id: str, text: str) -> None:
    settle(page)
    page.locator(f"#{elem_id} input").first.click()
    page.locator("[role=option]", has_text=text).first.click()


# The job notice's own text. Gradio keeps each output's status tracker in the element, with
# its timer text ("0.2s") invisible but still in the element's innerText while an event that
# outputs to it is pending; the job page's poll outputs to the notice every 0.3 s.
NOTICE_JS = "(document.querySelector('#job-notice .prose')?.innerText || '').trim()"


def notice_text(page: Page) -> str:
    """What the Job tab's notice says (see ``NOTICE_JS``)."""
    return str(page.evaluate(f"() => {NOTICE_JS}"))


def watch_notice(page: Page) -> None:
    """Record every text the Job tab's notice shows from now on, however briefly: the notice
    leaves once its job has ended, which a tiny job may do within a poll of the click."""
    page.evaluate(
        "() => { window.stNotices = []; const el = document.getElementById('job-notice');"
        " new MutationObserver(() => { const t = (el.querySelector('.prose')?.innerText || '')"
        ".trim(); if (t) window.stNotices.push(t); })"
        ".observe(el, {childList: true, subtree: true, characterData: true}); }"
    )


def wait_notice(page: Page, text: str, timeout: float = 60_000) -> None:
    """Wait until the notice has shown ``text`` since ``watch_notice``."""
    try:
        page.wait_for_function(
            "(text) => window.stNotices.some((t) => t.includes(text))", arg=text, timeout=timeout
        )
    except Exception:
        shown = page.evaluate("() => window.stNotices")
        raise AssertionError(f"the job notice never showed {text!r}; it showed {shown!r}") from None


def wait_text(page: Page, elem_id: str, text: str, timeout: float = 60_000) -> None:
    """Wait until ``#elem_id`` shows ``text``; on timeout, fail with what it shows instead."""
    try:
        page.wait_for_function(
            "([id, text]) => (document.getElementById(id)?.innerText || '').includes(text)",
            arg=[elem_id, text],
            timeout=timeout,
        )
    except Exception:
        shown = (
            page.locator(f"#{elem_id}").inner_text() if page.locator(f"#{elem_id}").count() else ""
        )
        raise AssertionError(f"#{elem_id} never showed {text!r}; it shows {shown!r}") from None


def open_app(page: Page, url: str) -> None:
    """Open the app and wait until its load handler has filled it from the store."""
    page.goto(url)
    page.wait_for_selector(".st-title[data-loaded]")
    settle(page)  # the page's other load events too


def tab(page: Page, name: str) -> None:
    settle(page)
    page.get_by_role("tab", name=name, exact=True).click()


def start_job(page: Page) -> str:
    """Click Start; wait until the Job tab shows the new job (not the one shown before)."""
    page.locator("#train-start").click()
    wait_text(page, "train-message", "queued")
    found = re.search(r"Job ([0-9a-f]{12}) queued", page.locator("#train-message").inner_text())
    assert found, page.locator("#train-message").inner_text()
    page.wait_for_selector(f'#job-header [data-job="{found.group(1)}"]')
    return found.group(1)


def progress(page: Page) -> dict[str, str]:
    bar = page.locator("#job-progress .st-progress")
    return {k: bar.get_attribute(f"data-{k}") or "" for k in ("status", "step", "epoch")}


def wait_status(page: Page, status: str, timeout: float = 120_000) -> None:
    page.wait_for_selector(f'#job-progress .st-progress[data-status="{status}"]', timeout=timeout)


def loss_points(page: Page) -> int:
    line = page.locator('#job-charts polyline[data-label="train"]').first
    return int(line.get_attribute("data-points") or 0) if line.count() else 0


def read_events(
    url: str, headers: dict[str, str] | None = None
) -> list[tuple[int | None, str, dict]]:
    """Read a server-sent event stream to its ``end`` event: ``[(id, event, data)]``."""
    import urllib.request

    out: list[tuple[int | None, str, dict]] = []
    req = urllib.request.Request(url, headers=headers or {})
    with urllib.request.urlopen(req, timeout=240) as r:
        assert r.headers["Content-Type"].startswith("text/event-stream")
        fields: dict[str, str] = {}
        for raw in r:
            line = raw.decode().rstrip("\n")
            if line.startswith(":"):
                continue
            if line:
                key, _, value = line.partition(": ")
                fields[key] = value
                continue
            if "event" in fields:
                event_id = int(fields["id"]) if "id" in fields else None
                out.append((event_id, fields["event"], json.loads(fields.get("data", "null"))))
                if fields["event"] == "end":
                    return out
            fields = {}
    raise AssertionError(f"the stream closed without an end event after {len(out)} events")
