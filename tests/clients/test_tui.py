"""The real OpenClaw 2026.5.12 TUI against sessiond, driven in tmux (`make clients`).

`openclaw tui --url ws://127.0.0.1:PORT --token T` connects with its own device identity
(from a state dir of its own, so nothing can run locally), loads the agents, the remembered
session (`sessions.list` with `search`) and its history. The test then opens the `/sessions`
picker, filters it, picks a row and reads that session's history off the screen. Each screen it
checks is printed, so the test's output shows what a person would have seen.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from differential import client_fixtures, harness
from harness.daemon_process import DaemonProcess
from harness.state_dirs import read_rows

pytestmark = pytest.mark.clients

TOKEN = "tui-token-3"
FAILED_MARKERS = ("failed:", "unknown method")


class Tmux:
    """One detached tmux session running a command in a fixed-size terminal."""

    def __init__(self, command: list[str], env: dict[str, str], state: Path) -> None:
        self.name = f"sessiond-tui-{uuid.uuid4().hex[:8]}"
        self.state = state  # the state dir sessiond serves (read back by the checks)
        exports = [f"{k}={v}" for k, v in env.items()]
        shell = " ".join(["env", "-i", *exports, *command])
        subprocess.run(
            ["tmux", "new-session", "-d", "-s", self.name, "-x", "160", "-y", "48", shell],
            check=True,
        )

    def screen(self) -> str:
        done = subprocess.run(
            ["tmux", "capture-pane", "-p", "-t", self.name], capture_output=True, text=True
        )
        return done.stdout

    def keys(self, *keys: str) -> None:
        subprocess.run(["tmux", "send-keys", "-t", self.name, *keys], check=True)

    def until(self, check: Callable[[str], bool], what: str, timeout: float = 90.0) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            text = self.screen()
            if check(text):
                return text
            time.sleep(0.25)
        raise AssertionError(f"the TUI never showed {what}; last screen:\n{self.screen()}")

    def close(self) -> None:
        subprocess.run(["tmux", "kill-session", "-t", self.name], capture_output=True)


def _show(title: str, screen: str) -> None:
    lines = [line.rstrip() for line in screen.splitlines()]
    while lines and not lines[-1]:
        lines.pop()
    print(f"\n----- {title} -----\n" + "\n".join(lines))


@pytest.fixture
def tui(tmp_path: Path) -> Iterator[Tmux]:
    ref_dir = os.environ.get("OPENCLAW_REF_DIR")
    if not ref_dir:
        pytest.skip("set OPENCLAW_REF_DIR to an installed OpenClaw 2026.5.12")
    if shutil.which("tmux") is None:
        pytest.skip("tmux is not installed")
    ref_bin = harness.reference_bin(Path(ref_dir))
    state = tmp_path / "state"
    client_fixtures.build("agents", state, int(time.time() * 1000))
    own = tmp_path / "tui-home"
    own.mkdir()
    with DaemonProcess(state, "--token", TOKEN, env={"HOME": str(state)}) as daemon:
        env = {
            "HOME": str(own),
            "OPENCLAW_STATE_DIR": str(own),
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "TERM": "xterm-256color",
            "LANG": "C.UTF-8",
        }
        argv = [str(ref_bin), "tui", "--url", daemon.url, "--token", TOKEN]
        session = Tmux(argv, env, state)
        try:
            yield session
        finally:
            session.close()


def test_tui_lists_searches_and_opens_sessions_served_by_sessiond(tui: Tmux) -> None:
    started = tui.until(
        lambda s: "openai/gpt-5.5" in s and "Here is a plan for main" in s,
        "the remembered session's history and the model footer",
    )
    _show("started", started)
    failures = [line for line in started.splitlines() if any(m in line for m in FAILED_MARKERS)]
    assert not failures, failures
    assert "session main (main home)" in started

    tui.keys("/sessions", "Enter")
    picker = tui.until(lambda s: "Filter:" in s and "Archive me" in s, "the session picker")
    _show("/sessions picker", picker)
    for shown in ("Plan the main quarterly review", "Family Chat", "Archive me", "10m ago"):
        assert shown in picker, shown
    assert "global" not in picker.split("Filter:")[1]  # the picker asks without global rows

    tui.keys("Family")
    filtered = tui.until(
        lambda s: "Filter: > Family" in s and "Archive me" not in s, "the filtered picker"
    )
    _show("picker filtered by 'Family'", filtered)
    rows = [line for line in filtered.split("Filter:")[1].splitlines() if "ago" in line]
    assert len(rows) == 2 and all("Family Chat" in row for row in rows), rows

    tui.keys("Enter")
    opened = tui.until(
        lambda s: (
            "Filter:" not in s
            and "session agent:main:telegram:group:-1001" in s
            and "Bob is bringing an apple pie (main)" in s
        ),
        "the chosen session's history",
    )
    _show("the chosen session", opened)
    assert "session agent:main:telegram:group:-1001" in opened
    assert "Who is bringing dessert on Sunday?" in opened  # the channel envelope is stripped
    assert "[Telegram Ann" not in opened
    failures = [line for line in opened.splitlines() if any(m in line for m in FAILED_MARKERS)]
    assert not failures, failures

    tui.keys("/think high", "Enter")
    tui.until(
        lambda _s: (
            read_rows(tui.state, "main")["agent:main:telegram:group:-1001"].get("thinkingLevel")
            == "high"
        ),
        "the thinking level written to sessions.json",
    )
    tui.keys("/gateway-status", "Enter")
    status = tui.until(lambda s: "Session stores: 5" in s, "the /gateway-status report")
    _show("/think high, then /gateway-status", status)
    assert "Default model: gpt-5.5" in status
