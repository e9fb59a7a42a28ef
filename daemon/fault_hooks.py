"""Every test fault hook of the daemon, in one place: named points the crash and fault tests act at.

Nothing here acts unless a test sets one of these variables (or `FAULT_ACTIONS`, in-process):

- `SESSIOND_TEST_FAULT_HOOK`: a comma-separated list of `<point>:<action>`. `pause` sleeps
  `SESSIOND_TEST_FAULT_PAUSE` seconds (default 0.05); `enospc` fails the write as a full disk
  would and `raise` raises RuntimeError (standing in for a bug), both only while the file named
  by `SESSIOND_TEST_FAULT_FLAG` exists.
- `SESSIOND_TEST_FAULT_PHASE=<file>`: at each point, one pwrite of "<write number> <point>"
  there, so a test that SIGKILLs the daemon can tell where a write was, and an external writer
  can tell whether its rename raced the window between the check and the rename.

Points of a store write, in order: temp-open, before-fsync, after-temp-write (the temp file is
written and fsynced), after-precheck, after-rename, durable; of a plan's file operations:
after-archive (each rename) and after-unlink (each removal); of the cleanup journal:
journal-begin (an entry is durable) and journal-finish (it is closed); of the server: frame
(before a JSON-RPC frame is parsed, outside the dialect's own error handling) and dispatch
(inside `Daemon.dispatch`).
"""

from __future__ import annotations

import errno
import os
import time
from collections.abc import Callable

_HOOKS = frozenset(filter(None, os.environ.get("SESSIOND_TEST_FAULT_HOOK", "").split(",")))
_PHASE_PATH = os.environ.get("SESSIOND_TEST_FAULT_PHASE")
_phase_state: list[int] = []  # [fd, writes so far], opened on first use (after any fork)
# In-process tests (tests/daemon/test_live_store_states.py) act at a point through this:
# another writer's rename landing exactly between the check and the swap, for instance.
FAULT_ACTIONS: dict[str, Callable[[], None]] = {}


def _flag_set() -> bool:
    flag = os.environ.get("SESSIOND_TEST_FAULT_FLAG", "")
    return bool(flag) and os.path.exists(flag)


def fault_point(name: str, *, on_disk_path: bool = True) -> None:
    """A named point: free unless a test asked for something to happen here.

    Only points on a disk path (`on_disk_path`) are recorded in the phase file: it tells a test
    where a write was, and a request's points would say a write started when none did.
    """
    action = FAULT_ACTIONS.get(name)
    if action is not None:
        action()
    if _PHASE_PATH is not None and on_disk_path:
        if not _phase_state:
            _phase_state.extend([os.open(_PHASE_PATH, os.O_WRONLY | os.O_CREAT, 0o600), 0])
        if name == "temp-open":
            _phase_state[1] += 1
        os.pwrite(_phase_state[0], f"{_phase_state[1]} {name}".ljust(40).encode(), 0)
    if not _HOOKS:
        return
    if f"{name}:pause" in _HOOKS:
        time.sleep(float(os.environ.get("SESSIOND_TEST_FAULT_PAUSE", "0.05")))
    if f"{name}:enospc" in _HOOKS and _flag_set():
        raise OSError(errno.ENOSPC, "No space left on device (test fault)")
    if f"{name}:raise" in _HOOKS and _flag_set():
        raise RuntimeError(f"test fault at {name}")
