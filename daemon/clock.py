"""The daemon's clocks, in ms since the epoch.

`now_ms` is the clock of everything a run can be compared on (cleanup ages, archive names,
`activeMinutes`): `SESSIOND_NOW_MS` pins it. `wall_ms` is never pinned: auth compares a device's
signature time with it, and the gateway's challenge and ticks carry it.
"""

from __future__ import annotations

import os
import time


def now_ms() -> int:
    pinned = os.environ.get("SESSIOND_NOW_MS")
    return int(pinned) if pinned else wall_ms()


def wall_ms() -> int:
    return time.time_ns() // 1_000_000
