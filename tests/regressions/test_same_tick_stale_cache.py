"""Same-tick stale cache (OpenClaw #32191).

Guarantee: an external rewrite that keeps the file's inode, size and mtime is still noticed (by
its content hash), served, and kept by the daemon's next write.

OpenClaw 2026.5.12 trusts a cached store while `mtimeMs` and size are unchanged, so such a rewrite
is lost to the next cached read-modify-write; sessiond never lets a stat alone vouch for a file
that changed as recently as the clock and file-system timestamps can resolve (docs/compat.md
row 24).
"""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path

from harness.daemon_process import DaemonProcess
from harness.state_dirs import read_rows, store_path, write_state_dir

from .live import client, fault_env, run, until, wait_phase

ROWS = {
    "agent:main:a": {"sessionId": "sa", "updatedAt": 1000, "label": "first"},
    "agent:main:b": {"sessionId": "sb", "updatedAt": 2000, "label": "other"},
}


def rewrite_in_place_same_stat(path: Path) -> None:
    """`"first"` becomes `"FIRST"`: same inode, same size, mtime put back to the nanosecond."""
    before = os.stat(path)
    data = path.read_bytes().replace(b'"first"', b'"FIRST"')
    assert len(data) == before.st_size and b"FIRST" in data
    with open(path, "r+b") as handle:
        handle.write(data)
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    after = os.stat(path)
    assert (after.st_ino, after.st_size, after.st_mtime_ns) == (
        before.st_ino,
        before.st_size,
        before.st_mtime_ns,
    )


def test_rewrite_with_equal_size_and_mtime_is_noticed_and_kept(tmp_path: Path) -> None:
    root = write_state_dir(tmp_path, {"main": ROWS})
    path = store_path(root, "main")

    with DaemonProcess(root) as proc:

        async def go() -> None:
            async with client(proc) as c:
                # The daemon has loaded and cached the store; a first write of its own too.
                await c.sessions_patch(key="agent:main:b", fields={"label": "again"})
                rewrite_in_place_same_stat(path)

                async def sees_it() -> bool:
                    got = await c.sessions_get(key="agent:main:a")
                    return json.loads(bytes(got.entry))["label"] == "FIRST"

                await until(sees_it)
                done = await c.sessions_patch(key="agent:main:c", fields={"updatedAt": 3000})
                assert done.durable

        run(go)

    rows = read_rows(root, "main")
    assert rows["agent:main:a"]["label"] == "FIRST", "the external rewrite was overwritten"
    assert rows["agent:main:b"]["label"] == "again"
    assert rows["agent:main:c"] == {"updatedAt": 3000}


def test_rewrite_racing_the_daemons_write_is_not_overwritten(tmp_path: Path) -> None:
    """The same rewrite lands while the daemon's write waits before its rename (fault hook)."""
    root = write_state_dir(tmp_path, {"main": ROWS})
    path = store_path(root, "main")
    phase = tmp_path / "phase"
    with DaemonProcess(root, env=fault_env(phase, "after-temp-write:pause", 0.5)) as proc:

        async def go() -> None:
            async with client(proc) as c:
                pending = asyncio.create_task(
                    c.sessions_patch(key="agent:main:c", fields={"updatedAt": 3000})
                )
                await asyncio.to_thread(wait_phase, phase, "after-temp-write")
                rewrite_in_place_same_stat(path)
                assert (await pending).durable

        run(go)

    rows = read_rows(root, "main")
    assert rows["agent:main:a"]["label"] == "FIRST", "the external rewrite was overwritten"
    assert rows["agent:main:c"] == {"updatedAt": 3000}
