"""Writes docs/tui-*.svg: `sessiond tui` on the demo state, at 80x24, as Textual saves a screen.

Not a benchmark: it lives beside them because it runs the same way (a real daemon from the tests'
harness on a generated state dir). The screens are the Sessions table with a row's entry open,
the same in the light theme, and the plan of `--all-agents --fix-missing --fix-dm-scope`.

    PYTHONPATH=tests .venv/bin/python bench/tui_screenshots.py [--out docs]
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from harness.daemon_process import DaemonProcess
from sessiond.cli.demo import build_demo_state, claim_demo_dir
from sessiond.cli.tui.app import SessiondTui
from sessiond.cli.tui.cleanup_screens import PlanScreen
from sessiond.cli.tui.command import maintenance_of
from sessiond.daemon.config_file import load_config_file
from textual.pilot import Pilot


async def _until(pilot: Pilot[int], check: Callable[[], bool], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise TimeoutError("the TUI did not get there")
        await pilot.pause(0.02)


async def shoot(url: str, root: Path, out: Path) -> list[Path]:
    maintenance = maintenance_of(load_config_file(str(root / "openclaw.json")))
    app = SessiondTui(url, None, maintenance)
    saved: list[Path] = []

    def save(name: str) -> None:
        saved.append(Path(app.save_screenshot(name, str(out))))

    async with app.run_test(size=(80, 24)) as pilot:
        await _until(pilot, lambda: app.load.done and app.status is not None)
        await pilot.press("down", "down", "enter")
        await _until(
            pilot, lambda: '"sessionId"' in str(app.screen.query_one("#detail-body").render())
        )
        await pilot.pause(0.2)
        save("tui-sessions.svg")
        app.theme = "textual-light"
        await pilot.pause(0.2)
        save("tui-sessions-light.svg")
        app.theme = "textual-dark"
        await pilot.press("3", "m", "d", "p")
        await _until(pilot, lambda: isinstance(app.screen, PlanScreen))
        await pilot.pause(0.2)
        save("tui-plan.svg")
    return saved


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(Path(__file__).resolve().parents[1] / "docs"))
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="tui-shots-")) / "demo"
    try:
        claim_demo_dir(root)
        build_demo_state(root, time.time_ns() // 1_000_000)
        with DaemonProcess(root) as daemon:
            for path in asyncio.run(shoot(daemon.url, root, Path(args.out))):
                print(path)
    finally:
        shutil.rmtree(root.parent, ignore_errors=True)


if __name__ == "__main__":
    main()
