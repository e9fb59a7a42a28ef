"""No-op write suppression (OpenClaw #120521).

Guarantee: requests that change nothing (a burst of patches with the values already stored,
deleting an absent key, a cleanup with nothing to remove) and idle time cause zero writes: no
temp file is ever opened, the flush counter stays 0, and the file keeps its inode, times and
bytes.

OpenClaw 2026.5.12 rewrites a store that is not in its canonical form on every apply even when no
row changes (docs/compat.md row 5); the store here is compact JSON, which sessiond leaves alone.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from pathlib import Path

from harness.daemon_process import DaemonProcess
from harness.state_dirs import store_path, write_state_dir

from .live import client, run

PATCHES = 200


def test_a_burst_of_no_op_requests_writes_nothing(tmp_path: Path) -> None:
    now = time.time_ns() // 1_000_000
    rows = {
        f"agent:main:explicit:{n}": {
            "sessionId": f"s-{n}",
            "updatedAt": now - n * 60_000,
            "origin": {"provider": "cli", "label": f"n{n}"},
        }
        for n in range(20)
    }
    root = write_state_dir(tmp_path, {"main": {}})
    path = store_path(root, "main")
    path.write_text(json.dumps(rows, separators=(",", ":")))  # compact: not canonical
    for n in range(20):
        (path.parent / f"s-{n}.jsonl").write_text('{"type":"session"}\n')
    before_bytes = path.read_bytes()
    before = os.stat(path)
    phase = tmp_path / "phase"  # the fault hook's record: created by the first write's temp file

    with DaemonProcess(root, env={"SESSIOND_TEST_FAULT_PHASE": str(phase)}) as proc:

        async def go() -> None:
            async with client(proc) as c:
                seq = (await c.daemon_status()).stores[0].seq
                patches = [
                    c.sessions_patch(key=key, fields=row)
                    for _ in range(PATCHES // len(rows))
                    for key, row in rows.items()
                ]
                results = await asyncio.gather(*patches)
                assert all(r.durable for r in results) and len(results) == PATCHES
                gone = await c.sessions_delete(key="agent:main:never-existed")
                assert not gone.deleted and gone.durable
                for enforce in (False, True):
                    done = await c.sessions_cleanup(enforce=enforce)
                    assert done.after_count == done.before_count == len(rows)
                await asyncio.sleep(1.0)  # idle
                store = (await c.daemon_status()).stores[0]
                assert store.flushes == 0 and not store.dirty
                assert store.seq == seq, "a no-op was announced as a change"

        run(go)

    assert not phase.exists(), f"a write was started: {phase.read_text()}"
    after = os.stat(path)
    assert (after.st_ino, after.st_mtime_ns, after.st_ctime_ns) == (
        before.st_ino,
        before.st_mtime_ns,
        before.st_ctime_ns,
    )
    assert path.read_bytes() == before_bytes
    assert not [n for n in os.listdir(path.parent) if n.startswith(".sessiond-")]
