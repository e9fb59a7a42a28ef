"""Crash test: SIGKILL a daemon under continuous patch load at random moments, many times.

After every kill the store must parse and hold every change whose response said
`durable: true` (or a later change to the same key). `SESSIOND_CRASH_KILLS` sets the number of
kills (default 100), spread over two lanes (separate state dirs) that run side by side.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import time
from pathlib import Path
from typing import Any

import pytest
from harness.daemon_process import DaemonProcess
from harness.raw_frames import RpcClient
from harness.state_dirs import store_path, write_state_dir
from sessiond.engine.store import LoadStatus, load_store_bytes

KILLS = int(os.environ.get("SESSIOND_CRASH_KILLS", "100"))
LANES = 2
KEYS = 24
WRITERS = 6


async def start(root: Path) -> DaemonProcess:
    proc = DaemonProcess(root, wait=False)
    await proc.ready()  # the other lane's writers keep running meanwhile
    return proc


async def lane(root: Path, kills: int, seed: int, stats: dict[str, int]) -> None:
    rng = random.Random(seed)
    acked: dict[str, int] = {}
    counter = 0
    path = store_path(root, "main")
    for cycle in range(kills):
        proc = await start(root)
        client = await RpcClient.connect(proc.url)
        first_ack = asyncio.Event()

        async def writer(client: RpcClient, first_ack: asyncio.Event) -> None:
            nonlocal counter
            while True:
                counter += 1
                n = counter
                key = f"agent:main:k{n % KEYS}"
                try:
                    result = await client.call(
                        "sessions.patch", {"key": key, "fields": {"n": n, "updatedAt": n}}
                    )
                except Exception:
                    return
                if result.durable:
                    acked[key] = max(acked.get(key, 0), n)
                    stats["acked"] += 1
                    first_ack.set()

        writers = [asyncio.create_task(writer(client, first_ack)) for _ in range(WRITERS)]
        await asyncio.wait_for(first_ack.wait(), 10)
        await asyncio.sleep(rng.uniform(0.0, 0.12))
        proc.stop(signal.SIGKILL)
        stats["kills"] += 1
        if any(p.suffix == ".tmp" for p in path.parent.iterdir()):
            stats["mid_write"] += 1  # killed between creating a temp file and its rename
        await asyncio.gather(*writers, return_exceptions=True)
        await client.close()

        store = load_store_bytes(path.read_bytes(), str(path))
        assert store.status is LoadStatus.OK, f"cycle {cycle}: {store.error}"
        rows = {k: json.loads(bytes(v)) for k, v in store.rows.items()}
        for key, n in acked.items():
            assert rows[key]["n"] >= n, f"cycle {cycle}: lost durable change {key}={n}"


@pytest.mark.stress
def test_sigkill_never_loses_a_durable_change(tmp_path: Path) -> None:
    roots = [write_state_dir(tmp_path / f"lane{i}", {"main": {}}) for i in range(LANES)]
    stats: dict[str, Any] = {"acked": 0, "kills": 0, "mid_write": 0}
    per_lane = [KILLS // LANES + (1 if i < KILLS % LANES else 0) for i in range(LANES)]
    started = time.monotonic()

    async def go() -> None:
        await asyncio.gather(
            *(
                lane(root, n, 1000 + i, stats)
                for i, (root, n) in enumerate(zip(roots, per_lane, strict=True))
            )
        )

    asyncio.run(go())
    elapsed = time.monotonic() - started
    assert stats["kills"] == KILLS
    print(
        f"\ncrash test: {stats['kills']} kills ({stats['mid_write']} mid-write), "
        f"{stats['acked']} durable acks, 0 lost, {elapsed:.1f}s"
    )
    # A clean start after all that removes the dead writers' temp files.
    for root in roots:
        leftovers_before = [
            p for p in store_path(root, "main").parent.iterdir() if p.suffix == ".tmp"
        ]

        async def once(root: Path = root) -> None:
            proc = await start(root)
            assert proc.stop(signal.SIGTERM) == 0

        asyncio.run(once())
        leftovers = [p for p in store_path(root, "main").parent.iterdir() if p.suffix == ".tmp"]
        assert leftovers == [], (leftovers_before, leftovers)
