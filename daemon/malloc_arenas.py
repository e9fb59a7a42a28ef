"""Fewer glibc malloc arenas for the daemon's process.

glibc gives each thread that allocates its own arena, up to eight per core, and memory freed
in one arena serves no other. The daemon's work moves between the event loop and worker
threads (plans, flushes, journal entries), so a big apply's transient objects land in several
arenas and the peak RSS grows by what each keeps: ~15-20 MB of a 100k-row apply's ~650 MB
(`bench/apply_stages.py`, ten runs). Two arenas keep the loop and one worker apart and no more.
An operator's own `MALLOC_ARENA_MAX` wins; other C libraries are left alone.
"""

from __future__ import annotations

import ctypes
import os
import sys

M_ARENA_MAX = -8  # glibc's mallopt parameter number
DAEMON_ARENAS = 2


def limit_malloc_arenas(arenas: int = DAEMON_ARENAS) -> bool:
    """Call before any thread starts; True when glibc took the limit."""
    if sys.platform != "linux" or "MALLOC_ARENA_MAX" in os.environ:
        return False
    try:
        libc = ctypes.CDLL(None)
    except OSError:
        return False
    mallopt = getattr(libc, "mallopt", None)
    gnu = getattr(libc, "gnu_get_libc_version", None)
    if mallopt is None or gnu is None:  # not glibc: its arenas work otherwise
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    return bool(mallopt(M_ARENA_MAX, arenas))
