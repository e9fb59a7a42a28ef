"""The daemon's glibc malloc, set up so that what a big plan frees leaves the process.

Arenas. glibc gives each thread that allocates its own arena, up to eight per core, and memory
freed in one arena serves no other. The daemon's work moves between the event loop and worker
threads (plans, flushes, journal entries), so a big apply's transient objects land in several
arenas and the peak RSS grows by what each keeps: ~15-20 MB of a 100k-row apply's ~650 MB
(`bench/apply_stages.py`, ten runs). Two arenas keep the loop and one worker apart and no more.

The mmap threshold. A block past it is a map of its own, unmapped when freed. glibc raises the
threshold to the size of each such block freed (up to 32 MB), so after the first dry run's
multi-MB lists and answers, blocks of that size come from the heap, where what is freed stays.
Fixed at 1 MiB, the 100k-row daemon of `bench/rss_sequence.py` peaks at 629-642 MB instead of
640-660 (limit 657). 128 KiB (glibc's start) gave 628-640, with a map and an unmap for each
of a 5k-row dry run's dicts; 4 MiB gave 646.

An operator's own `MALLOC_ARENA_MAX`, `MALLOC_MMAP_THRESHOLD_` or `GLIBC_TUNABLES` wins; other
C libraries are left alone.

A cleanup plan of a big store frees tens of MB of lists, dicts and strings when it ends. The
small objects go back to CPython's own arenas; what glibc's heap held stays with the process
(glibc returns only a free top of its heap by itself), and CPython's small objects never reuse
it (their arenas are separate maps): at 100k rows a dry run left ~35 MB that the next apply's
peak stood on. `release_free_memory` (glibc's malloc_trim) hands free pages back.
"""

from __future__ import annotations

import ctypes
import os
import sys
from collections.abc import Callable
from typing import Any

M_MMAP_THRESHOLD = -3  # glibc's mallopt parameter numbers
M_ARENA_MAX = -8
DAEMON_ARENAS = 2
DAEMON_MMAP_THRESHOLD = 1 << 20


def _glibc_function(name: str, *argtypes: Any) -> Callable[..., int] | None:
    """glibc's `name` (returning a C int); None on another OS or C library, whose allocator
    works otherwise."""
    if sys.platform != "linux":
        return None
    try:
        libc = ctypes.CDLL(None)
    except OSError:
        return None
    function = getattr(libc, name, None)
    if function is None or getattr(libc, "gnu_get_libc_version", None) is None:
        return None
    function.argtypes = list(argtypes)
    function.restype = ctypes.c_int
    return function  # type: ignore[no-any-return]


_MALLOPT = _glibc_function("mallopt", ctypes.c_int, ctypes.c_int)
_TRIM = _glibc_function("malloc_trim", ctypes.c_size_t)


def limit_malloc_arenas(arenas: int = DAEMON_ARENAS) -> bool:
    """Call before any thread starts; True when glibc took the limit."""
    if _MALLOPT is None or "MALLOC_ARENA_MAX" in os.environ:
        return False
    return bool(_MALLOPT(M_ARENA_MAX, arenas))


def fix_mmap_threshold(size: int = DAEMON_MMAP_THRESHOLD) -> bool:
    """Call before the store loads; True when glibc took the threshold (and so stopped moving
    it)."""
    tunables = os.environ.get("GLIBC_TUNABLES", "")
    if _MALLOPT is None or "MALLOC_MMAP_THRESHOLD_" in os.environ or "mmap_threshold" in tunables:
        return False
    return bool(_MALLOPT(M_MMAP_THRESHOLD, size))


def release_free_memory() -> bool:
    """Hand glibc's free heap pages back to the system (a few ms after a big plan, ~0 when
    there is little to give); True when some were. Off the event loop: it holds each arena's
    lock while it walks it. Not glibc: nothing to do, False."""
    return bool(_TRIM(0)) if _TRIM is not None else False
