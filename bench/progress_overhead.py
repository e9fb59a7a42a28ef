"""Does `$/progress` slow a cleanup? One daemon, a 10k-row store, cleanups with and without a
progress token, alternating; each cleanup is undone with `sessions.restore` (untimed) so every
timed run starts from the same store.

Prints each run's wall time (request sent to reply read, client side), the median and the
spread of both kinds, and the difference of the medians. It proves nothing about behaviour
(tests/daemon/test_daemon_undo.py does); it is the figure for "progress does not slow a 10k-row
cleanup measurably".

    PYTHONPATH=tests .venv/bin/python bench/progress_overhead.py --rows 10000 --runs 5
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from harness.daemon_process import DaemonProcess
from harness.raw_frames import RpcClient
from harness.state_dirs import store_path, write_state_dir

DAY = 86_400_000


def build(root: Path, rows: int, now_ms: int) -> None:
    """Half the rows stale (pruned and archived), half fresh; one transcript each."""
    store = {
        f"agent:main:explicit:r{n}": {
            "sessionId": f"s-{n}",
            "updatedAt": now_ms - (40 * DAY if n % 2 else DAY),
            "model": "gpt-5.5",
            "note": "x" * 200,
        }
        for n in range(rows)
    }
    config = {"session": {"maintenance": {"mode": "enforce", "maxEntries": rows * 2}}}
    write_state_dir(root, {"main": store}, config)
    sessions = store_path(root, "main").parent
    for n in range(rows):
        (sessions / f"s-{n}.jsonl").write_text('{"type":"session"}\n')


async def measure(url: str, runs: int) -> dict[str, list[float]]:
    times: dict[str, list[float]] = {"without": [], "with": []}
    async with await RpcClient.connect(url) as c:
        for index in range(runs * 2):
            kind = "with" if index % 2 else "without"
            params: dict[str, object] = (
                {"progressToken": f"bench-{index}"} if kind == "with" else {}
            )
            started = time.perf_counter()
            await c.call("sessions.cleanup", params)
            times[kind].append(time.perf_counter() - started)
            await c.call("sessions.restore", {})
            while not c.notifications.empty():
                c.notifications.get_nowait()
    return times


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="sessiond-progress-"))
    now = time.time_ns() // 1_000_000
    try:
        build(root, args.rows, now)
        with DaemonProcess(root, env={"SESSIOND_NOW_MS": str(now)}) as proc:
            times = asyncio.run(measure(proc.url, args.runs))
    finally:
        shutil.rmtree(root, ignore_errors=True)
    print(f"progress overhead: {args.rows} rows, {args.rows // 2} pruned and archived per run")
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cpus, Python {platform.python_version()}"
    )
    for kind, values in times.items():
        runs = ", ".join(f"{v * 1000:.0f}" for v in values)
        print(
            f"  {kind:<8} progress: median {statistics.median(values) * 1000:7.1f} ms "
            f"(min {min(values) * 1000:.0f}, max {max(values) * 1000:.0f}; runs: {runs})"
        )
    without, with_ = statistics.median(times["without"]), statistics.median(times["with"])
    delta = with_ - without
    print(f"  difference of medians: {delta * 1000:+.1f} ms ({delta / without:+.1%})")
    print(json.dumps({k: [round(v, 4) for v in vs] for k, vs in times.items()}))


if __name__ == "__main__":
    main()
