"""Load: 200 concurrent clients issuing list/get/patch and cleanup dry runs for a fixed time.

One daemon serves a generated store (bench/bigstore.py rows, 5,000 by default). Each client has
its own WebSocket connection and loops: `sessions.list` (a page of 50, sometimes the next page),
`sessions.get` of a random row, `sessions.patch` of its own row and of a row shared with the
others; every tenth client also runs a `sessions.cleanup` dry run now and then. Reported:
throughput, p50/p99/max latency per method, operations per client (no client starved: the
slowest client completes at least a quarter of the median client's operations), and the daemon's
RSS sampled every 0.25 s (bounded: its peak stays under 4x its idle RSS plus 100 MB, and the
second half's peak is not above the first half's by more than 25% + 20 MB). At the
end every client's last acknowledged patch must be in the file.

    PYTHONPATH=tests .venv/bin/python stress/load.py [--clients 200] [--seconds 20] [--rows 5000]
        [--json OUT]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

from harness.daemon_process import DaemonProcess
from harness.raw_frames import RpcClient
from harness.state_dirs import store_path
from harness.stress_report import Report, machine, percentile

NOW_MS = 1_800_000_000_000


def build_store(root: Path, rows: int) -> list[str]:
    """A bigstore state dir built in a child process (its memory is not ours); returns keys."""
    bigstore = Path(__file__).resolve().parent.parent / "bench" / "bigstore.py"
    argv = [str(root), str(rows), str(NOW_MS), "--row-bytes", "2000"]
    subprocess.run([sys.executable, str(bigstore), *argv], check=True)
    (root / "openclaw.json").write_text(
        '{agents: {list: [{id: "main", default: true}]}, '
        'session: {maintenance: {maxEntries: 4000, pruneAfter: "30d"}}}'
    )
    return list(json.loads(store_path(root).read_text()))


class Client:
    def __init__(self, index: int, keys: list[str], seed: int) -> None:
        self.index = index
        self.keys = keys
        self.rng = random.Random(seed)
        self.latencies: dict[str, list[float]] = defaultdict(list)
        self.errors: dict[str, int] = defaultdict(int)
        self.ops = 0
        self.acked = 0
        self.own_key = f"agent:main:load{index}"

    async def run(self, url: str, until: float) -> None:
        client = await RpcClient.connect(url)
        try:
            n = 0
            cursor = None
            while time.monotonic() < until:
                roll = self.rng.random()
                if self.index % 10 == 0 and roll < 0.03:
                    method, params = "sessions.cleanup", {"dryRun": True}
                elif roll < 0.35:
                    method = "sessions.list"
                    params = {"limit": 50}
                    if cursor and self.rng.random() < 0.5:
                        params["cursor"] = cursor
                elif roll < 0.7:
                    method, params = "sessions.get", {"key": self.rng.choice(self.keys)}
                elif roll < 0.9:
                    n += 1
                    fields = {"n": n, "updatedAt": NOW_MS + n}
                    method, params = "sessions.patch", {"key": self.own_key, "fields": fields}
                else:
                    shared = f"agent:main:shared{self.rng.randrange(8)}"
                    fields = {"by": self.index, "updatedAt": NOW_MS + n}
                    method, params = "sessions.patch", {"key": shared, "fields": fields}
                started = time.perf_counter()
                try:
                    result = await client.call(method, params, timeout=60)
                except Exception as exc:
                    self.errors[f"{method}: {type(exc).__name__}: {exc}"[:120]] += 1
                    continue
                self.latencies[method].append(time.perf_counter() - started)
                self.ops += 1
                if method == "sessions.list":
                    cursor = result.next_cursor
                elif method == "sessions.patch" and params["key"] == self.own_key:
                    self.acked = max(self.acked, params["fields"]["n"] if result.durable else 0)
        finally:
            await client.close()


def run(clients: int, seconds: float, rows: int, workdir: Path) -> Report:
    report = Report("load (concurrent clients)")
    report.figures["machine"] = machine()
    root = workdir / "load"
    keys = build_store(root, rows)
    size_mb = store_path(root).stat().st_size / 1e6
    report.figures["store"] = f"{rows} rows, {size_mb:.1f} MB"
    samples: list[int] = []
    with DaemonProcess(root, env={"SESSIOND_NOW_MS": str(NOW_MS)}) as daemon:
        idle_kb = daemon.rss_kb()[0]
        pool = [Client(i, keys, 1000 + i) for i in range(clients)]

        async def sampler(stop: asyncio.Event) -> None:
            while not stop.is_set():
                samples.append(daemon.rss_kb()[0])
                await asyncio.sleep(0.25)

        async def go() -> float:
            stop = asyncio.Event()
            task = asyncio.create_task(sampler(stop))
            started = time.monotonic()
            until = started + seconds
            await asyncio.gather(*(c.run(daemon.url, until) for c in pool))
            elapsed = time.monotonic() - started
            stop.set()
            await task
            return elapsed

        elapsed = asyncio.run(go())

        async def final_status() -> Any:
            async with await RpcClient.connect(daemon.url) as c:
                return await c.call("daemon.status")

        status = asyncio.run(final_status())
        hwm_kb = daemon.rss_kb()[1]
        report.check(daemon.proc.poll() is None, "daemon died under load")
    on_disk = json.loads(store_path(root).read_text())
    lost = [c.own_key for c in pool if c.acked and on_disk.get(c.own_key, {}).get("n", 0) < c.acked]
    report.check(not lost, f"acknowledged patches missing from the file: {lost[:5]}")
    total = sum(c.ops for c in pool)
    per_client = sorted(c.ops for c in pool)
    median_ops = statistics.median(per_client)
    report.check(
        per_client[0] >= median_ops / 4,
        f"starved client: {per_client[0]} ops vs median {median_ops}",
    )
    errors: dict[str, int] = defaultdict(int)
    for c in pool:
        for k, v in c.errors.items():
            errors[k] += v
    report.check(not errors, f"errors: {dict(list(errors.items())[:5])}")
    by_method: dict[str, list[float]] = defaultdict(list)
    for c in pool:
        for method, values in c.latencies.items():
            by_method[method].extend(values)
    every = [v for values in by_method.values() for v in values]
    peak_kb = max([*samples, hwm_kb])
    bound_kb = 4 * idle_kb + 100 * 1024
    report.check(peak_kb < bound_kb, f"RSS peak {peak_kb / 1024:.0f} MB over the bound")
    half = len(samples) // 2
    first, second = max(samples[:half] or [0]), max(samples[half:] or [0])
    report.check(
        second <= 1.25 * first + 20 * 1024,
        f"RSS still growing: peak {first / 1024:.0f} MB in the first half, "
        f"{second / 1024:.0f} MB in the second",
    )

    def ms(values: list[float], pct: float) -> float:
        return round(percentile(values, pct) * 1000, 1)

    report.figures.update(
        clients=clients,
        seconds=round(elapsed, 1),
        operations=total,
        throughput_ops_per_s=round(total / elapsed),
        latency_ms_all={"p50": ms(every, 50), "p99": ms(every, 99), "max": ms(every, 100)},
        latency_ms_by_method={
            m: {"n": len(v), "p50": ms(v, 50), "p99": ms(v, 99), "max": ms(v, 100)}
            for m, v in sorted(by_method.items())
        },
        ops_per_client={"min": per_client[0], "median": median_ops, "max": per_client[-1]},
        flushes=status.stores[0].flushes,
        rss_mb={
            "idle": round(idle_kb / 1024),
            "peak_first_half": round(first / 1024),
            "peak_second_half": round(second / 1024),
            "peak": round(peak_kb / 1024),
            "bound": round(bound_kb / 1024),
        },
        lost_acks=len(lost),
    )
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clients", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--rows", type=int, default=5000)
    parser.add_argument("--json", type=Path, help="also write the figures and verdict here")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="sessiond-load-") as temp:
        report = run(args.clients, args.seconds, args.rows, Path(temp))
    code = report.finish()
    if args.json is not None:
        verdict = {"figures": report.figures, "ok": report.ok, "failures": report.violations}
        args.json.write_text(json.dumps(verdict, indent=1))
    return code


if __name__ == "__main__":
    raise SystemExit(main())
