"""Headless Chromium driven over the Chrome DevTools protocol (a websocket), for client tests.

Only what the Control UI test needs: open a page, evaluate JavaScript in it, accept dialogs,
take a screenshot. Chromium is Debian's `chromium` package; nothing is downloaded. Each browser
gets its own profile dir and runs in its own process group, ended by `close()`.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import json
import os
import signal
import subprocess
import time
import urllib.request
from pathlib import Path
from typing import Any

from websockets.asyncio.client import ClientConnection, connect

CHROMIUM = "/usr/bin/chromium"


class Browser:
    def __init__(self, profile: Path, width: int = 1440, height: int = 1000) -> None:
        profile.mkdir(parents=True, exist_ok=True)
        (profile / "DevToolsActivePort").unlink(missing_ok=True)  # a previous run's port
        argv = [
            CHROMIUM,
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--no-default-browser-check",
            "--disable-extensions",
            "--remote-debugging-port=0",
            f"--user-data-dir={profile}",
            f"--window-size={width},{height}",
            "about:blank",
        ]
        self.profile = profile
        self.proc = subprocess.Popen(
            argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
        )
        self.port = self._devtools_port()

    def _devtools_port(self, timeout: float = 30.0) -> int:
        marker = self.profile / "DevToolsActivePort"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if marker.exists():
                first = marker.read_text().splitlines()[:1]
                if first and first[0].strip().isdigit():
                    return int(first[0])
            if self.proc.poll() is not None:
                raise RuntimeError(f"chromium exited {self.proc.returncode}")
            time.sleep(0.1)
        raise TimeoutError("chromium did not open its DevTools port")

    def page_socket(self) -> str:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/json/list", timeout=10) as r:
            targets = json.loads(r.read())
        page = next(t for t in targets if t.get("type") == "page")
        return str(page["webSocketDebuggerUrl"])

    def close(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()


class Page:
    """One page over its DevTools websocket; dialogs are accepted as they open."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.ids = itertools.count(1)
        self.pending: dict[int, asyncio.Future[Any]] = {}
        self.console: list[str] = []
        self.reader = asyncio.create_task(self._read())

    @classmethod
    async def open(cls, url: str) -> Page:
        ws = await connect(url, max_size=None, compression=None)
        page = cls(ws)
        await page.send("Page.enable")
        await page.send("Runtime.enable")
        return page

    async def _read(self) -> None:
        async for raw in self.ws:
            message = json.loads(raw)
            ident = message.get("id")
            if ident in self.pending:
                future = self.pending.pop(ident)
                if "error" in message:
                    future.set_exception(RuntimeError(str(message["error"])))
                else:
                    future.set_result(message.get("result"))
            elif message.get("method") == "Page.javascriptDialogOpening":
                task = asyncio.create_task(
                    self.send("Page.handleJavaScriptDialog", {"accept": True})
                )
                task.add_done_callback(lambda _t: None)
            elif message.get("method") == "Runtime.consoleAPICalled":
                args = message["params"].get("args", [])
                self.console.append(" ".join(str(a.get("value", a.get("type"))) for a in args))

    async def send(self, method: str, params: dict[str, Any] | None = None) -> Any:
        ident = next(self.ids)
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self.pending[ident] = future
        await self.ws.send(json.dumps({"id": ident, "method": method, "params": params or {}}))
        return await asyncio.wait_for(future, 60)

    async def goto(self, url: str) -> None:
        await self.send("Page.navigate", {"url": url})

    async def js(self, expression: str) -> Any:
        result = await self.send(
            "Runtime.evaluate",
            {"expression": expression, "returnByValue": True, "awaitPromise": True},
        )
        if result.get("exceptionDetails"):
            raise RuntimeError(str(result["exceptionDetails"]))
        return result["result"].get("value")

    async def until(self, expression: str, what: str, timeout: float = 60.0) -> Any:
        deadline = time.monotonic() + timeout
        last: Any = None
        while time.monotonic() < deadline:
            with contextlib.suppress(RuntimeError):
                last = await self.js(expression)
                if last:
                    return last
            await asyncio.sleep(0.25)
        raise AssertionError(f"the page never showed {what} (last: {last!r})")

    async def screenshot(self, path: Path) -> None:
        shot = await self.send("Page.captureScreenshot", {"format": "png"})
        path.write_bytes(base64.b64decode(shot["data"]))

    async def close(self) -> None:
        self.reader.cancel()
        await self.ws.close()


DEEP_TEXT = """
(() => {
  const out = [];
  const walk = (node) => {
    if (node.nodeType === Node.TEXT_NODE) { out.push(node.textContent); return; }
    const kind = node.nodeType;
    if (kind !== Node.ELEMENT_NODE && kind !== Node.DOCUMENT_FRAGMENT_NODE) return;
    if (node.shadowRoot) walk(node.shadowRoot);
    if (node.tagName === 'INPUT' || node.tagName === 'TEXTAREA') out.push(node.value);
    for (const child of node.childNodes) walk(child);
  };
  walk(document.documentElement);
  return out.join(' ').replace(/\\s+/g, ' ');
})()
"""
"""All text of the page, shadow roots and input values included (the UI is web components)."""


def deep_query(selector: str) -> str:
    """A JS expression for every element matching `selector`, shadow roots included."""
    return f"""
(() => {{
  const found = [];
  const walk = (root) => {{
    root.querySelectorAll({json.dumps(selector)}).forEach((el) => found.push(el));
    root.querySelectorAll('*').forEach((el) => {{ if (el.shadowRoot) walk(el.shadowRoot); }});
  }};
  walk(document);
  return found;
}})()"""


def click_text(selector: str, text: str) -> str:
    """A JS expression that clicks the first `selector` element whose text is `text`."""
    return f"""
(() => {{
  const hit = {deep_query(selector)}.find((el) => el.textContent.trim() === {json.dumps(text)});
  if (!hit) return false;
  hit.click();
  return true;
}})()"""
