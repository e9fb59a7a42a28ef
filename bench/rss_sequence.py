"""The memory of `make bench`'s first daemon per size (bench/report.py `run_size`), phase by
phase: cold start, 3 JSON-RPC `sessions.cleanup {"dryRun": true}`, 200 JSON-RPC
`sessions.list {"limit": 100}`, 100 gateway-protocol `sessions.list {"limit": 100}`, then the
gateway-protocol `sessions.cleanup {}` the reference CLI sends (called directly through the
bench's GatewayClient), waited for until the journal entry closes.

It prints the daemon's RSS after each phase, the peak (VmHWM, as bench/report.py measures the
daemon; MB are 10^6 bytes, as the report's) and, from a 5 ms sampler, the highest RSS during
each phase. A figure for issue 17's "daemon peak RSS <= 2x the store file + 60 MB", never a
test. `--trim` (an experiment) calls glibc's malloc_trim in the daemon after each phase and
prints the RSS it leaves.

    PYTHONPATH=tests .venv/bin/python bench/rss_sequence.py --base /tmp/b100k [--repeat 3]
    PYTHONPATH=tests .venv/bin/python bench/rss_sequence.py --rows 10000 --row-bytes 8000

`--tracemalloc DIR` starts the daemon with tracemalloc on and writes a snapshot of its heap
after each phase to DIR (through a sitecustomize.py that dumps one on SIGUSR2); the figures of
such a run are tracemalloc's, not the daemon's as shipped. `--memray FILE` records the daemon
with memray (installed in the venv: `.venv/bin/pip install memray`); `memray flamegraph FILE`
then shows what was allocated at the peak.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from harness.daemon_process import DaemonProcess, http_status
from harness.gateway_client import GatewayClient
from harness.proc_status import rss_kb
from harness.raw_frames import RpcClient

HERE = Path(__file__).parent
TOKEN = "bench-token-0123456789abcdef"

SNAPSHOT_HOOK = """\
import os, signal, tracemalloc

_phase = [0]

def _dump(signum, frame):
    out = os.environ["RSS_SEQUENCE_SNAPSHOTS"]
    n = _phase[0]
    tracemalloc.take_snapshot().dump(os.path.join(out, f"{n:02d}.snap"))
    current, peak = tracemalloc.get_traced_memory()
    tracemalloc.reset_peak()
    _phase[0] = n + 1
    with open(os.path.join(out, f"{n:02d}.done"), "w") as done:
        done.write(f"{current} {peak}")

if os.environ.get("RSS_SEQUENCE_SNAPSHOTS"):
    signal.signal(signal.SIGUSR2, _dump)

if os.environ.get("RSS_SEQUENCE_TRIM"):  # an experiment: what malloc_trim gives back
    import ctypes
    _libc = ctypes.CDLL(None)
    signal.signal(signal.SIGUSR1, lambda signum, frame: _libc.malloc_trim(0))

if os.environ.get("RSS_SEQUENCE_MEMRAY"):
    import atexit, memray
    _tracker = memray.Tracker(os.environ["RSS_SEQUENCE_MEMRAY"])
    _tracker.__enter__()
    atexit.register(_tracker.__exit__, None, None, None)
"""


class Sampler(threading.Thread):
    """VmRSS every 5 ms, tagged with the phase running then."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid = pid
        self.phase = "load"
        self.top: dict[str, int] = {}
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.is_set():
            rss = rss_kb(self.pid)[0]
            if rss > self.top.get(self.phase, 0):
                self.top[self.phase] = rss
            time.sleep(0.005)


async def _median_list(client: Any, calls: int) -> float:
    """`calls` lists of 100 after 3 not counted (as bench/report.py's); their median."""
    times = []
    for i in range(calls + 3):
        started = time.perf_counter()
        await client.call("sessions.list", {"limit": 100}, timeout=60)
        if i >= 3:
            times.append(time.perf_counter() - started)
    return statistics.median(times)


async def sequence(
    url: str, journal: Path, mark: Callable[[str], None], list_after: bool = False
) -> dict[str, float]:
    seconds: dict[str, float] = {}
    async with await RpcClient.connect(url, TOKEN) as c:
        for i in range(3):
            started = time.perf_counter()
            await c.call("sessions.cleanup", {"dryRun": True}, timeout=600)
            seconds[f"dry run {i + 1}"] = time.perf_counter() - started
            mark(f"dry run {i + 1}")
    async with await RpcClient.connect(url, TOKEN) as c:
        seconds["200 rpc lists"] = await _median_list(c, 200)
    mark("200 rpc lists")
    g = await GatewayClient.connect(url, TOKEN)
    try:
        seconds["100 gateway lists"] = await _median_list(g, 100)
        mark("100 gateway lists")
        started = time.perf_counter()
        await g.call("sessions.cleanup", {}, timeout=600)
        seconds["gateway apply answered"] = time.perf_counter() - started
        mark("gateway apply answered")
        if list_after:  # not in the bench's sequence: what the apply left the next list
            started = time.perf_counter()
            await g.call("sessions.list", {"limit": 100}, timeout=60)
            seconds["a gateway list after"] = time.perf_counter() - started
            mark("a gateway list after")
    finally:
        await g.close()
    while b'"finish"' not in journal.read_bytes():
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.5)
    mark("journal closed + 0.5 s")
    return seconds


def _rss_file_kb(pid: int) -> int:
    with open(f"/proc/{pid}/status", encoding="ascii") as handle:
        for line in handle:
            if line.startswith("RssFile:"):
                return int(line.split()[1])
    return 0


def one_run(
    base: Path,
    work: Path,
    snapshots: Path | None,
    memray: Path | None,
    trim: bool,
    settle: bool = False,
    list_after: bool = False,
) -> None:
    root = work / "state"
    if root.exists():
        shutil.rmtree(root)
    subprocess.run(["cp", "-a", str(base), str(root)], check=True)
    store = root / "agents" / "main" / "sessions" / "sessions.json"
    size_mb = store.stat().st_size / 1e6
    env = {"HOME": str(root)}
    if snapshots is not None or memray is not None or trim:
        hook = work / "hook"
        hook.mkdir(exist_ok=True)
        (hook / "sitecustomize.py").write_text(SNAPSHOT_HOOK)
        env["PYTHONPATH"] = os.pathsep.join([str(hook), os.environ.get("PYTHONPATH", "")])
    if snapshots is not None:
        env.update(PYTHONTRACEMALLOC="1", RSS_SEQUENCE_SNAPSHOTS=str(snapshots))
    if trim:
        env["RSS_SEQUENCE_TRIM"] = "1"
    if memray is not None:
        memray.unlink(missing_ok=True)
        env["RSS_SEQUENCE_MEMRAY"] = str(memray)
    started = time.perf_counter()
    proc = DaemonProcess(root, "--token", TOKEN, env=env, wait=False)
    try:
        sampler = Sampler(proc.pid)
        sampler.start()
        proc.wait_ready(timeout=900)
        while http_status(proc.port, "/readyz") != 200:
            time.sleep(0.005)
        start_s = time.perf_counter() - started
        rows: list[tuple[str, int, int]] = []

        def mark(phase: str) -> None:
            rss, hwm = rss_kb(proc.pid)
            if trim:
                proc.send(signal.SIGUSR1)
                time.sleep(0.3)
                trimmed = rss_kb(proc.pid)[0] * 1.024e-3
                print(f"  {phase}: RSS {rss * 1.024e-3:.0f} MB, trimmed {trimmed:.0f}")
            rows.append((phase, rss, hwm))
            if snapshots is not None:
                done = snapshots / f"{len(rows) - 1:02d}.done"
                proc.send(signal.SIGUSR2)
                while not done.exists() or not done.read_text():
                    time.sleep(0.05)
                current, peak = map(int, done.read_text().split())
                print(
                    f"  traced after {phase}: {current / 1e6:.0f} MB, peak before {peak / 1e6:.0f}"
                )
            sampler.phase = phase

        age = time.time() - (root / "agents" / "main" / "sessions").stat().st_ctime
        if settle and age < 2.5:
            time.sleep(2.5 - age)
            age = 2.5
        mark("loaded")
        file_kb = _rss_file_kb(proc.pid)
        journal = store.with_name("sessions.json.journal")
        seconds = asyncio.run(sequence(proc.url, journal, mark, list_after))
        hwm = rss_kb(proc.pid)[1]
        sampler.stopped.set()
        sampler.join()
    finally:
        proc.stop()
    limit = 2 * size_mb + 60
    load = os.getloadavg()
    print(
        f"store {size_mb:.0f} MB (limit {limit:.0f} MB); start {start_s:.1f} s;"
        f" load {load[0]:.2f} {load[1]:.2f} {load[2]:.2f};"
        f" sessions dir changed {age:.1f} s before the first dry run"
    )
    previous = "load"
    for phase, rss, phase_hwm in rows:
        top = sampler.top.get(previous, 0)
        took = f"  {seconds[phase] * 1000:7.1f} ms" if phase in seconds else ""
        print(
            f"  {phase:24} RSS {rss * 1.024e-3:6.0f}  HWM {phase_hwm * 1.024e-3:6.0f}"
            f"  sampled top during it {top * 1.024e-3:6.0f} MB{took}"
        )
        previous = phase
    print(f"  (of the RSS, {file_kb * 1.024e-3:.0f} MB are mapped files: code and libraries)")
    print(
        f"  PEAK {hwm * 1.024e-3:.0f} MB ({hwm * 1.024e-3 - limit:+.0f} vs the limit)", flush=True
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--base", type=Path, help="a state dir bigstore.py built (copied, kept)")
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--row-bytes", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--tracemalloc", type=Path, help="write heap snapshots here")
    parser.add_argument("--memray", type=Path, help="record the daemon with memray to this file")
    parser.add_argument("--trim", action="store_true", help="malloc_trim(0) after each phase")
    parser.add_argument(
        "--list-after",
        action="store_true",
        help="one more gateway list after the apply, timed (not in the bench's sequence)",
    )
    parser.add_argument(
        "--settle",
        action="store_true",
        help="start the dry runs only once the copied sessions dir changed 2.5 s ago (a dir"
        " read within its racy window of a change is read again: daemon/os_disk_view.py)",
    )
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="sessiond-rss-"))
    try:
        base = args.base
        if base is None:
            base = work / "base"
            now = str(time.time_ns() // 1_000_000)
            argv = [str(base), str(args.rows), now, "--row-bytes", str(args.row_bytes)]
            subprocess.run([sys.executable, str(HERE / "bigstore.py"), *argv], check=True)
        if args.tracemalloc is not None:
            args.tracemalloc.mkdir(parents=True, exist_ok=True)
        for _ in range(args.repeat):
            one_run(
                base,
                work,
                args.tracemalloc,
                args.memray,
                args.trim,
                args.settle,
                args.list_after,
            )
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
