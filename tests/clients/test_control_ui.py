"""The real OpenClaw 2026.5.12 Control UI against sessiond, in headless Chromium (`make clients`).

The UI's static files (they ship in the reference's npm package, `dist/control-ui/`) are
served on loopback; the page is opened as its docs describe for a remote gateway
(`?gatewayUrl=ws://…#token=…`, then the UI's own confirmation), with sessiond allowing that
page's Origin. On its Sessions page the test checks the fixture's rows, edits a label in the
table (it must land durably in sessions.json), then edits sessions.json from outside (the row
must change on the page without a reload). A screenshot of the page is written to docs/.
"""

from __future__ import annotations

import asyncio
import http.server
import json
import os
import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from clients.cdp import CHROMIUM, DEEP_TEXT, Browser, Page, click_text, deep_query
from differential import client_fixtures
from harness.daemon_process import DaemonProcess
from harness.state_dirs import read_rows, store_path

pytestmark = pytest.mark.clients

TOKEN = "control-ui-token-9"
DOCS_SCREENSHOT = Path(__file__).resolve().parents[2] / "docs" / "control-ui-sessions.png"
"""Rewritten only with SESSIOND_UPDATE_DOCS=1, so a test run leaves the tree clean."""


def _static_server(root: Path) -> http.server.ThreadingHTTPServer:
    """The UI's files; any other path is the app (it routes by path: /sessions, /chat...)."""

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, directory=str(root), **kwargs)

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def send_head(self) -> Any:
            if not os.path.exists(self.translate_path(self.path)):
                self.path = "/index.html"
            return super().send_head()

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@pytest.fixture
def setup(tmp_path: Path) -> Iterator[dict[str, Any]]:
    ref_dir = os.environ.get("OPENCLAW_REF_DIR")
    if not ref_dir:
        pytest.skip("set OPENCLAW_REF_DIR to an installed OpenClaw 2026.5.12")
    if not os.path.exists(CHROMIUM):
        pytest.skip("Debian's chromium is not installed (apt-get install chromium)")
    ui = Path(ref_dir) / "node_modules" / "openclaw" / "dist" / "control-ui"
    state = tmp_path / "state"
    client_fixtures.build("agents", state, int(time.time() * 1000))
    server = _static_server(ui)
    origin = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        args = ("--token", TOKEN, "--allow-origin", origin)
        with DaemonProcess(state, *args, env={"HOME": str(state)}) as daemon:
            browser = Browser(tmp_path / "chromium-profile")
            try:
                yield {"state": state, "origin": origin, "daemon": daemon, "browser": browser}
            finally:
                browser.close()
    finally:
        server.shutdown()


def _label_input(value: str) -> str:
    return f"{deep_query('input')}.find((el) => el.value === {json.dumps(value)})"


def _set_label(old: str, new: str) -> str:
    """Type a new label into a row's label cell and commit it (the cell patches on change)."""
    return f"""
(() => {{
  const input = {_label_input(old)};
  if (!input) return false;
  input.value = {json.dumps(new)};
  input.dispatchEvent(new Event('input', {{bubbles: true, composed: true}}));
  input.dispatchEvent(new Event('change', {{bubbles: true, composed: true}}));
  return true;
}})()"""


def _edit_outside(state: Path, agent: str, key: str, label: str) -> None:
    """Another program rewrites sessions.json (temp file, then rename, as editors do)."""
    path = store_path(state, agent)
    rows = json.loads(path.read_text())
    rows[key]["label"] = label
    temp = path.with_name("sessions.json.editor-tmp")
    temp.write_text(json.dumps(rows, indent=2))
    os.replace(temp, path)


def test_control_ui_sessions_page_lists_edits_and_follows_external_changes(
    setup: dict[str, Any],
) -> None:
    state: Path = setup["state"]
    daemon: DaemonProcess = setup["daemon"]
    screenshot = state.parent / "control-ui-sessions.png"
    gateway = quote(daemon.url, safe="")

    async def drive() -> dict[str, str]:
        page = await Page.open(setup["browser"].page_socket())
        seen: dict[str, str] = {}
        try:
            await page.goto(f"{setup['origin']}/sessions?gatewayUrl={gateway}#token={TOKEN}")
            await page.until(click_text("button", "Confirm"), "the gateway URL confirmation")
            text = await page.until(
                f"(() => {{ const t = {DEEP_TEXT}; "
                "return t.includes('agent:main:main') && t.includes('Store: (multiple)') ? t : ''"
                "})()",
                "the Sessions table",
            )
            seen["listed"] = text
            assert await page.until(_set_label("main home", "edited in the UI"), "the label cell")

            def durable() -> bool:
                return read_rows(state, "main")["agent:main:main"].get("label") == (
                    "edited in the UI"
                )

            deadline = time.monotonic() + 20
            while not durable() and time.monotonic() < deadline:
                await asyncio.sleep(0.1)
            assert durable(), read_rows(state, "main")["agent:main:main"]

            _edit_outside(state, "work", "agent:work:main", "edited outside")
            await page.until(
                f"Boolean({_label_input('edited outside')})", "the external edit, without reload"
            )
            seen["after"] = await page.js(DEEP_TEXT)
            navigations = await page.js("performance.getEntriesByType('navigation').length")
            assert navigations == 1, navigations  # never reloaded
            await page.screenshot(screenshot)
        finally:
            await page.close()
        return seen

    seen = asyncio.run(drive())
    listed = seen["listed"]
    for key in (
        "agent:main:main",
        "agent:work:main",
        "agent:ops:subagent:fresh",
        "global",
        "main home",
        "work child",
    ):
        assert key in listed, key
    assert "agent:main:cron:nightly:run:r1" not in listed  # cron run rows are not listed
    assert "edited in the UI" in seen["after"] and "edited outside" in seen["after"]
    events = [e for e in daemon.log_events() if e.get("event") == "external edit loaded"]
    assert events, "sessiond did not load the external edit"
    if os.environ.get("SESSIOND_UPDATE_DOCS") == "1":
        shutil.copyfile(screenshot, DOCS_SCREENSHOT)
    print(f"screenshot: {screenshot}")
    print(seen["after"][seen["after"].find("Sessions Active") :][:1500])


def test_chromium_is_debians() -> None:
    """The browser the UI test uses is the distribution's package, not a downloaded one."""
    if not os.path.exists(CHROMIUM):
        pytest.skip("chromium is not installed")
    assert shutil.which("chromium") == CHROMIUM
