"""A real browser, signed in to the server, visits a page from a second loopback origin (another
port of 127.0.0.1: "same-site" for the browser, so the SameSite=Strict cookie IS sent). The page
tries to register a dataset and start a job with ``fetch(..., {mode: "no-cors"})`` and with form
POSTs (text/plain and urlencoded), and frames the server's page to steer the user's clicks
(clickjacking). No dataset or job may appear and the frame must not hold the app; the same call
from the server's own page works, and the server's own page may frame itself (so the test can
fail). The attack page's screenshot goes to ``test-artifacts/security/``."""

from __future__ import annotations

import contextlib
import http.server
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.uiserver import free_port, offline, running, start_server
from tests.ui.browser import ARGS, CHROMIUM, skip_reason

pytestmark = pytest.mark.slow

ATTACK = """<!doctype html><title>a page on another port</title><body>
<h1>attack page</h1><pre id="log"></pre>
<iframe name="sink1"></iframe><iframe name="sink2"></iframe>
<iframe id="framed" src="{page}" onload="document.body.dataset.framed = 1"></iframe>
<form id="plain" action="{api}/jobs" method="POST" enctype="text/plain" target="sink1">
<input name='{{"dataset": "toyset", "overrides": {{"epochs": 1}}, "x": "' value='"}}'></form>
<form id="urlenc" action="{api}/datasets" method="POST" target="sink2">
<input name="name" value="evil"><input name="path" value="{data}"></form>
<script>
const log = (t) => document.getElementById("log").textContent += t + "\\n";
async function attack() {{
  const job = JSON.stringify({{dataset: "toyset", overrides: {{epochs: 1}}}});
  const ds = JSON.stringify({{name: "evil", path: "{data}"}});
  for (const [url, body] of [["{api}/jobs", job], ["{api}/datasets", ds]]) {{
    try {{
      await fetch(url, {{method: "POST", mode: "no-cors", credentials: "include", body,
                         headers: {{"Content-Type": "text/plain"}}}});
      log("no-cors fetch sent: " + url);
    }} catch (e) {{ log("fetch failed: " + e); }}
    try {{
      const r = await fetch(url, {{method: "POST", credentials: "include", body,
                                   headers: {{"Content-Type": "application/json"}}}});
      log("cors fetch answered " + r.status);
    }} catch (e) {{ log("cors fetch refused by the browser: " + e); }}
  }}
  let loaded = 0;
  for (const [form, sink] of [["plain", "sink1"], ["urlenc", "sink2"]]) {{
    document.getElementsByName(sink)[0].onload = () => {{
      log(form + " form posted"); if (++loaded === 2) document.body.dataset.done = "1"; }};
    document.getElementById(form).submit();
  }}
}}
attack();
</script></body>"""


#: The server's own page frames itself: that is allowed (``frame-ancestors 'self'``).
SELF_FRAME = """(url) => new Promise((done) => { const f = document.createElement("iframe");
    f.onload = () => done(!!f.contentDocument.querySelector("gradio-app, .gradio-container"));
    f.src = url; document.body.appendChild(f); })"""


CONTROL = """async (url) => (await fetch(url, {method: "POST",
    headers: {"Content-Type": "application/json"},
    body: JSON.stringify({dataset: "toyset", overrides: {epochs: 1}})})).status"""


@contextlib.contextmanager
def attacker(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A static web server on another loopback port: ``(its URL, the folder it serves)``
    (started inside ``offline()``, where the browser and the server are)."""
    folder = tmp_path / "site"
    folder.mkdir()
    port = free_port()

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *a: object, **kw: object) -> None:
            super().__init__(*a, directory=str(folder), **kw)  # type: ignore[arg-type]

        def log_message(self, *args: object) -> None:
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", port), Quiet)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{port}/", folder
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_a_page_on_another_port_cannot_register_or_start_anything(
    tmp_path: Path, artifacts: Path, toy_task: None
) -> None:
    reason = skip_reason()
    if reason:
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    data = tmp_path / "toydata"
    data.mkdir()
    (data / "a.txt").write_text("x")
    with (
        offline(),
        running(start_server(tmp_path / "home")) as server,
        attacker(tmp_path) as (site, folder),
    ):
        assert server.api("POST", "api/datasets", {"name": "toyset", "path": str(data),
                                                   "kind": "toy"}).status == 201  # fmt: skip
        api = server.url + "api"
        page_html = ATTACK.format(api=api.rstrip("/"), data=data, page=server.url)
        (folder / "index.html").write_text(page_html)
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=ARGS)
            try:
                context = browser.new_context()
                own = context.new_page()
                own.goto(server.page_url)  # signed in: the cookie is set
                own.wait_for_selector(".st-title[data-loaded]")
                # the control: the server's own page may start a job with the cookie
                status = own.evaluate(CONTROL, f"{api}/jobs")
                assert status == 201
                assert len(server.api("GET", "api/jobs").json()) == 1
                assert own.evaluate(SELF_FRAME, server.url), "the page cannot frame itself"
                page = context.new_page()
                page.goto(site)
                page.wait_for_selector("body[data-done][data-framed]", timeout=60_000)
                page.screenshot(path=str(artifacts / "cross-origin-attack.png"), full_page=True)
                log = page.locator("#log").inner_text()
                framed = page.locator("#framed").element_handle().content_frame()
                assert framed is not None
                framed_text = framed.locator("body").inner_text()
            finally:
                browser.close()
        assert "may not frame" in framed_text, framed_text  # the refusal, not the app
        assert "form posted" in log, log
        assert "no-cors fetch sent" in log, log
        assert "cors fetch answered 201" not in log, log
        assert len(server.api("GET", "api/jobs").json()) == 1, "the attack page started a job"
        names = [d["name"] for d in server.api("GET", "api/datasets").json()]
        assert names == ["toyset"], "the attack page registered a dataset"
        # no error in the server's request handling (the Datasets tab's view of a toy report
        # is another matter: render.report expects the audio report's file list)
        assert "smalltrain/ui/server" not in server.output(), server.output()
