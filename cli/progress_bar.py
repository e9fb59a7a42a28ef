"""A one-line progress bar on a terminal's stderr, for `sessions cleanup` and `sessions restore`.

Only when stderr is a terminal and the output is not `--json`: piped or scripted runs print
nothing extra. Redrawn at most every `REDRAW_S`, and erased at the end, so the command's own
output starts on a clean line.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO

from sessiond.engine.cleanup.progress import NO_PROGRESS, Progress
from sessiond.protocol.undo import ProgressValue

WIDTH = 30
REDRAW_S = 0.1


class TerminalProgress:
    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.title = ""
        self.last = 0.0
        self.drawn = False

    def begin(self, title: str, stage: str, total: int) -> None:
        self.title = title
        self._draw(stage, 0, total, force=True)

    def report(self, stage: str, done: int, total: int) -> None:
        self._draw(stage, done, total, force=done == 0 or done >= total)

    def end(self, message: str) -> None:
        if self.drawn:
            self.stream.write("\r\x1b[K")
            self.stream.flush()
            self.drawn = False

    def _draw(self, stage: str, done: int, total: int, force: bool) -> None:
        now = time.monotonic()
        if not force and now - self.last < REDRAW_S:
            return
        self.last = now
        filled = WIDTH if total <= 0 else min(WIDTH, WIDTH * done // total)
        bar = "#" * filled + "." * (WIDTH - filled)
        self.stream.write(f"\r\x1b[K{self.title} {stage:<7} [{bar}] {done}/{total}")
        self.stream.flush()
        self.drawn = True

    def take(self, value: ProgressValue) -> None:
        """One `$/progress` step from the daemon."""
        stage, done, total = value.stage or "", value.done or 0, value.total or 0
        if value.kind == "begin":
            self.begin(value.title or "", stage, total)
        elif value.kind == "report":
            self.report(stage, done, total)
        else:
            self.end(value.message or "")


def terminal_progress(as_json: bool, stream: TextIO | None = None) -> Progress:
    """A bar when a person is watching; nobody otherwise (piped, or --json)."""
    out = stream or sys.stderr
    if as_json or not out.isatty():
        return NO_PROGRESS
    return TerminalProgress(out)
