"""How long `sessiond tui` takes to draw its first screen on a 100k-row store (target: < 1 s).

One daemon serves a generated store (bench/bigstore.py rows, smaller by default). Two figures:

- `pty`: `sessiond tui` started as a process on a pseudo-terminal of 80x24, from spawn until its
  output carries the first page of rows (the title's row count and a row of the table);
  interpreter start and imports included, as a user would see it.
- `headless`: the app in this process under Textual's headless driver, from creating it until
  the sessions table has drawn a row; then until every row is loaded, with the longest stall of
  the event loop while the rest streams in (a key press waits at most that long).

It proves nothing about behaviour (tests/cli/test_tui.py does); it is the issue's figure.

    PYTHONPATH=tests .venv/bin/python bench/tui_first_screen.py --rows 100000 --runs 5
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import fcntl
import os
import platform
import pty
import re
import select
import shutil
import statistics
import struct
import subprocess
import sys
import tempfile
import termios
import time
from pathlib import Path

from bigstore import build  # bench/ is the script's own directory, first on sys.path
from harness.daemon_process import DaemonProcess

_FIRST_PAGE = re.compile(rb"Sessions \d")


def pty_run(url: str, timeout: float = 30.0) -> float:
    """Seconds from spawning `sessiond tui` on an 80x24 pty to the first page on screen."""
    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
    exe = str(Path(sys.executable).with_name("sessiond"))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENCLAW_", "SESSIOND_"))}
    env.update(TERM="xterm-256color", COLUMNS="80", LINES="24")
    started = time.perf_counter()
    child = subprocess.Popen(
        [exe, "tui", "--url", url],
        stdin=follower,
        stdout=follower,
        stderr=follower,
        env=env,
        start_new_session=True,
    )
    os.close(follower)
    seen = b""
    drawn: float | None = None
    try:
        while time.perf_counter() - started < timeout:
            ready, _w, _x = select.select([leader], [], [], 0.05)
            if not ready:
                continue
            try:
                chunk = os.read(leader, 65536)
            except OSError:
                break
            seen += chunk
            if _FIRST_PAGE.search(seen) and b"agent:main:" in seen:
                drawn = time.perf_counter() - started
                break
        os.write(leader, b"q")
        quit_by = time.perf_counter() + 10
        while child.poll() is None and time.perf_counter() < quit_by:
            # Keep reading: a full pty would block the app's last frames, and so its exit.
            ready, _w, _x = select.select([leader], [], [], 0.05)
            if ready:
                try:
                    os.read(leader, 65536)
                except OSError:  # the app let go of the terminal: it is exiting
                    break
        with contextlib.suppress(subprocess.TimeoutExpired):
            child.wait(timeout=max(0.1, quit_by - time.perf_counter()))
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
            print("  (the TUI did not quit on q within 10 s; killed)")
        os.close(leader)
    if drawn is None:
        raise RuntimeError(f"no first screen in {timeout}s: {seen[-400:]!r}")
    return drawn


async def headless_run(url: str) -> tuple[float, float, float]:
    """(first row drawn, all rows loaded, longest event-loop stall while loading), in seconds."""
    from sessiond.cli.tui.app import SessiondTui
    from sessiond.cli.tui.widgets import VirtualTable

    started = time.perf_counter()
    app = SessiondTui(url, None)
    stall = 0.0
    async with app.run_test(size=(80, 24)) as pilot:
        table = None
        while table is None or table.rows_drawn == 0:
            await pilot.pause(0.002)
            found = app.screen.query("#rows")
            table = found.first(VirtualTable) if found else None
        first = time.perf_counter() - started
        tick = time.perf_counter()
        while not app.load.done:
            await asyncio.sleep(0.005)
            now = time.perf_counter()
            stall = max(stall, now - tick - 0.005)
            tick = now
        loaded = time.perf_counter() - started
    return first, loaded, stall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--row-bytes", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="tui-bench-"))
    try:
        built = time.perf_counter()
        build(root, args.rows, time.time_ns() // 1_000_000, row_bytes=args.row_bytes)
        store = root / "agents" / "main" / "sessions" / "sessions.json"
        print(
            f"store: {args.rows:,} rows, {store.stat().st_size / 1e6:.0f} MB "
            f"(built in {time.perf_counter() - built:.1f} s)"
        )
        print(
            f"machine: {platform.python_version()} on {platform.platform()}, {os.cpu_count()} cpus"
        )
        start = time.perf_counter()
        with DaemonProcess(root, wait=False) as daemon:
            daemon.wait_ready(timeout=600)
            print(f"daemon listening after {time.perf_counter() - start:.1f} s")
            ptys = [pty_run(daemon.url) for _ in range(args.runs)]
            heads = [asyncio.run(headless_run(daemon.url)) for _ in range(args.runs)]
    finally:
        shutil.rmtree(root, ignore_errors=True)
    print(f"pty first screen (spawn to rows on screen), {args.runs} runs:")
    each = " ".join(f"{t * 1000:.0f}" for t in ptys)
    print(f"  {each} ms; median {statistics.median(ptys) * 1000:.0f} ms")
    firsts = [h[0] for h in heads]
    loads = [h[1] for h in heads]
    stalls = [h[2] for h in heads]
    print(
        f"headless first row drawn: median {statistics.median(firsts) * 1000:.0f} ms "
        f"(max {max(firsts) * 1000:.0f})"
    )
    print(
        f"headless every row loaded: median {statistics.median(loads):.2f} s; "
        f"longest loop stall meanwhile {max(stalls) * 1000:.0f} ms"
    )


if __name__ == "__main__":
    main()
