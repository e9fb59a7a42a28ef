"""The daemon's clock: wall time in ms, pinned by `SESSIOND_NOW_MS` so runs can be compared."""

from __future__ import annotations

import os
import time


def now_ms() -> int:
    pinned = os.environ.get("SESSIOND_NOW_MS")
    return int(pinned) if pinned else time.time_ns() // 1_000_000
