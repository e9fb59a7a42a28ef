"""Contention under load (OpenClaw #73655, #75386, #15225).

Guarantee: 50 concurrent updaters, each on its own connection, patching a ~20 MB store for a few
seconds lose no acknowledged write and disturb no other row. There is no lock for them to wait
on: the daemon batches every change that arrives during a write into the next one, and the
serialise-write-fsync runs in a thread while requests keep being served.

The acknowledgement latency (p50, p99, max) is printed (`pytest -s`), never asserted: timing
belongs to bench/ and this machine is shared.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import time
from pathlib import Path

import msgspec
from harness.daemon_process import DaemonProcess
from harness.state_dirs import store_path, write_state_dir
from sessiond.engine.store import load_store_bytes

from .live import client, run

UPDATERS = 50
SECONDS = 2.5
FILLER_ROWS = 10_000  # about 2 kB each: a 20 MB store


def _compact(raw: bytes) -> bytes:
    return msgspec.json.format(raw, indent=0)


def test_fifty_updaters_on_a_20_mb_store_lose_nothing(tmp_path: Path) -> None:
    now = time.time_ns() // 1_000_000
    filler = {
        f"agent:main:explicit:{n:05d}": {
            "sessionId": f"s-{n:05d}",
            "updatedAt": now - n,
            "skillsSnapshot": {"prompt": f"{n:05d}" * 380},
        }
        for n in range(FILLER_ROWS)
    }
    root = write_state_dir(tmp_path / "state", {"main": filler})
    path = store_path(root, "main")
    size_mb = path.stat().st_size / 1e6
    assert size_mb > 19
    original = {
        k: _compact(bytes(v)) for k, v in load_store_bytes(path.read_bytes(), "").rows.items()
    }
    acked: dict[str, int] = {}
    latencies: list[float] = []

    with DaemonProcess(root) as proc:

        async def updater(i: int, deadline: float) -> None:
            key = f"agent:main:load:{i:02d}"
            async with client(proc) as c:
                counter = 0
                while time.monotonic() < deadline:
                    counter += 1
                    start = time.perf_counter()
                    done = await c.sessions_patch(
                        key=key, fields={"counter": counter, "updatedAt": now + counter}
                    )
                    latencies.append(time.perf_counter() - start)
                    assert done.durable
                    acked[key] = counter

        async def go() -> int:
            deadline = time.monotonic() + SECONDS
            await asyncio.gather(*(updater(i, deadline) for i in range(UPDATERS)))
            async with client(proc) as c:
                return (await c.daemon_status()).stores[0].flushes

        flushes = run(go)

    rows = json.loads(path.read_bytes())
    lost = {
        k: (n, rows.get(k, {}).get("counter"))
        for k, n in acked.items()
        if rows.get(k, {}).get("counter") != n
    }
    assert len(acked) == UPDATERS and not lost, f"acknowledged writes lost: {lost}"
    final = load_store_bytes(path.read_bytes(), "").rows
    assert all(_compact(bytes(final[k])) == v for k, v in original.items()), "a filler row changed"
    ordered = sorted(latencies)
    print(
        f"\ncontention: {UPDATERS} updaters, {size_mb:.1f} MB store, {len(latencies)} durable acks "
        f"in {flushes} flushes over {SECONDS} s; ack latency p50 "
        f"{statistics.median(ordered) * 1000:.0f} ms, p99 "
        f"{ordered[int(len(ordered) * 0.99) - 1] * 1000:.0f} ms, max {ordered[-1] * 1000:.0f} ms"
    )
