"""Restart with `mode: warn` (OpenClaw #81749, #69772).

Guarantee: under `mode: warn`, with 600 rows 2-3 days old (over the default cap of 500), a start,
a write, a SIGTERM or SIGKILL restart, a SIGHUP and a cleanup without `--enforce` remove no row
and rename no transcript.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from harness.daemon_process import DaemonProcess, clean_env
from harness.state_dirs import store_path, write_state_dir

from .live import client, run

DAY = 86_400_000
ROWS = 600
CONFIG = {"session": {"maintenance": {"mode": "warn", "pruneAfter": "30d"}}}


def _state(root: Path) -> Path:
    now = time.time_ns() // 1_000_000
    rows = {
        f"agent:main:explicit:{n}": {
            "sessionId": f"s-{n:04d}",
            "updatedAt": now - 2 * DAY - n * (DAY // ROWS),
        }
        for n in range(ROWS)
    }
    write_state_dir(root, {"main": rows}, CONFIG)
    sessions = store_path(root, "main").parent
    for n in range(ROWS):
        (sessions / f"s-{n:04d}.jsonl").write_text('{"type":"session"}\n')
    return root


def _files(root: Path) -> list[str]:
    return sorted(os.listdir(store_path(root, "main").parent))


def test_restarts_and_unenforced_cleanup_remove_nothing(tmp_path: Path) -> None:
    root = _state(tmp_path / "state")
    files = _files(root)
    keys = list(json.loads(store_path(root, "main").read_text()))

    proc = DaemonProcess(root)

    async def write_and_clean() -> None:
        async with client(proc) as c:
            await c.sessions_patch(key="agent:main:explicit:0", fields={"label": "touched"})
            preview = await c.sessions_cleanup(dry_run=True)
            assert preview.mode == "warn" and preview.capped == ROWS - 500  # as if enforced
            applied = await c.sessions_cleanup()
            assert (applied.pruned, applied.capped, applied.applied_count) == (0, 0, ROWS)

    run(write_and_clean)
    assert proc.stop(signal.SIGTERM) == 0

    proc = DaemonProcess(root)
    proc.send(signal.SIGHUP)
    run(_count_is(proc, ROWS))
    assert proc.stop(signal.SIGKILL) == -signal.SIGKILL

    with DaemonProcess(root) as proc:
        run(_count_is(proc, ROWS))

    env = clean_env()
    env.update(OPENCLAW_STATE_DIR=str(root), HOME=str(root))
    local = subprocess.run(
        [str(Path(sys.executable).with_name("sessiond")), "sessions", "cleanup", "--local"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert local.returncode == 0, local.stderr

    assert list(json.loads(store_path(root, "main").read_text())) == keys
    assert _files(root) == files, "a transcript was renamed or removed"
    assert not [n for n in _files(root) if ".deleted." in n]


def _count_is(proc: DaemonProcess, count: int) -> Callable[[], Awaitable[None]]:
    async def check() -> None:
        async with client(proc) as c:
            assert (await c.sessions_list(limit=1)).total_count == count

    return check
