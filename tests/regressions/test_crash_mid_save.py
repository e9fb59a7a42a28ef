"""Crash mid-save (OpenClaw #77783, #71359).

Guarantee: a SIGKILL at any step of a save leaves sessions.json equal to the old or the new
version, never empty or partial, and the next start removes the dead writer's temp file.

The daemon is held at each step by the test-only fault hook (daemon/fault_hooks.py) and killed there
with a real SIGKILL: temp file created, temp written but not fsynced, fsynced, just before the
rename, and after the rename but before the directory fsync. OpenClaw 2026.5.12 keeps the old
store after such a kill too, but leaves its temp file for good and fsyncs nothing (docs/compat.md
row 27); sessiond differs on purpose.
"""

from __future__ import annotations

import asyncio
import json
import signal
from pathlib import Path

import pytest
from harness.daemon_process import DaemonProcess
from harness.state_dirs import store_path, write_state_dir
from sessiond.client import ConnectionLostError
from sessiond.engine.store import LoadStatus, load_store_bytes

from .live import client, fault_env, run, temp_files, wait_phase

ROWS = {f"agent:main:s{n}": {"sessionId": f"id-{n}", "updatedAt": 1000 + n} for n in range(20)}
PATCH = {"label": "after the crash", "updatedAt": 99_999}

# (fault point, what the file must be after a SIGKILL there, whether a temp file is left over)
STEPS = [
    ("temp-open", "old", True),
    ("before-fsync", "old", True),
    ("after-temp-write", "old", True),
    ("after-precheck", "old", True),
    ("after-rename", "new", False),
]


@pytest.mark.parametrize(("point", "expected", "leftover"), STEPS, ids=[s[0] for s in STEPS])
def test_sigkill_at_each_step_of_a_save(
    tmp_path: Path, point: str, expected: str, leftover: bool
) -> None:
    root = write_state_dir(tmp_path, {"main": ROWS})
    path = store_path(root, "main")
    old = path.read_bytes()
    phase = tmp_path / "phase"
    proc = DaemonProcess(root, env=fault_env(phase, f"{point}:pause"))
    try:

        async def patch_and_kill() -> None:
            async with client(proc) as c:
                pending = asyncio.create_task(c.sessions_patch(key="agent:main:s7", fields=PATCH))
                await asyncio.to_thread(wait_phase, phase, point)
                proc.send(signal.SIGKILL)
                with pytest.raises(ConnectionLostError):
                    await pending

        run(patch_and_kill)
    finally:
        assert proc.stop() == -signal.SIGKILL

    after = path.read_bytes()
    assert after, "sessions.json is empty after the crash"
    loaded = load_store_bytes(after, str(path))
    assert loaded.status is LoadStatus.OK and len(loaded) == len(ROWS)
    if expected == "old":
        assert after == old
    else:
        assert json.loads(after)["agent:main:s7"] == {**ROWS["agent:main:s7"], **PATCH}
    assert bool(temp_files(path.parent)) == leftover

    # A clean start: the dead writer's temp file goes, the store is served as it is on disk.
    with DaemonProcess(root) as again:

        async def check() -> None:
            async with client(again) as c:
                page = await c.sessions_list(limit=100)
                assert page.total_count == len(ROWS)
                got = await c.sessions_get(key="agent:main:s7")
                assert json.loads(bytes(got.entry)) == json.loads(after)["agent:main:s7"]

        run(check)
        assert temp_files(path.parent) == []
    assert path.read_bytes() == after, "a start rewrote the store"
