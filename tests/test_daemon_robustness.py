"""Robustness of a real `sessiond serve`: crashing frames, a crashing flusher, SIGTERM with a
client that stopped reading, zombie writers' temp files, and a late-speaking JSON-RPC client."""

from __future__ import annotations

import asyncio
import os
import stat
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from daemon_support import DaemonProcess, read_rows, store_path, write_state_dir
from sessiond.client.rpc_client import RpcClient

ROWS = {
    "agent:main:a": {"sessionId": "sa", "updatedAt": 1000},
    "agent:main:b": {"sessionId": "sb", "updatedAt": 2000},
}


def run(fn: Callable[[], Awaitable[Any]]) -> Any:
    return asyncio.run(fn())  # type: ignore[arg-type]


async def until(check: Callable[[], Awaitable[bool]], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await check():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("condition not reached in time")


def http_status(port: int, path: str) -> int:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as resp:
            return int(resp.status)
    except urllib.error.HTTPError as exc:
        return exc.code


def logged(proc: DaemonProcess, event: str) -> list[dict[str, Any]]:
    return [e for e in proc.log_events() if e.get("event") == event]


# ------------------------------------------------------------- 1. a frame or a flush that crashes


def test_a_flusher_that_raises_keeps_running_and_reports_the_failure(tmp_path: Path) -> None:
    """The store file is replaced by a socket: the flush sees an external change and the reload
    then fails to open it (ENXIO), an error the flush did not expect. That once killed the
    flusher for good: the patch was never answered, /readyz stayed 200, nothing was retried."""
    root = write_state_dir(tmp_path, {"main": None})  # no file yet: any file is an external change
    path = store_path(root, "main")

    async def go(proc: DaemonProcess) -> None:
        async with await RpcClient.connect(proc.url) as c:
            os.mknod(path, stat.S_IFSOCK | 0o600)
            patch = {"key": "agent:main:x", "fields": {"n": 1}}
            result = await c.call("sessions.patch", patch, timeout=5)
            assert result.durable is False
            status = await c.call("daemon.status")
            store = status.stores[0]
            assert not status.ready and store.flush_failures >= 1 and store.dirty
            assert store.flush_error and "OSError" in store.flush_error
            assert http_status(proc.port, "/readyz") == 503
            path.unlink()

            async def settled() -> bool:
                return not (await c.call("daemon.status")).stores[0].dirty

            await until(settled)
            assert http_status(proc.port, "/readyz") == 200
            assert (await c.call("daemon.status")).stores[0].flush_error is None
            again = await c.call("sessions.patch", {"key": "agent:main:y", "fields": {"n": 2}})
            assert again.durable is True

    with DaemonProcess(root) as proc:
        run(lambda: go(proc))
    assert read_rows(root, "main") == {"agent:main:x": {"n": 1}, "agent:main:y": {"n": 2}}
    crashes = logged(proc, "flush crashed; change kept in memory, retrying")
    assert crashes and "Traceback" in crashes[0]["exception"]
