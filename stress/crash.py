"""Crash consistency: SIGKILL a daemon under steady write load at hundreds of random moments.

Each lane (own state dir, own daemon) repeats: start the daemon, check that the restarted daemon
serves every change acknowledged `durable: true` so far and left no temp file, put four writers
on it (patches of 32 keys with a rising counter), and SIGKILL it. The moment is chosen by turns:
at a random time 0-60 ms after the first durable answer, or as soon as the daemon's write
reaches a given point (the fault hook records the point in a phase file and pauses 3 ms after
the temp file is written and after the rename, so kills land between temp write and rename,
and between rename and directory fsync). After every kill, before the restart, the file must
parse and hold every acknowledged change (the key's counter at least the acknowledged one).

SIGKILL kills the process, not the machine: what reached the page cache survives, so this proves
the write order and the recovery, not the fsyncs (a power cut would be needed for those).

    PYTHONPATH=tests .venv/bin/python stress/crash.py [--kills 500] [--lanes 2] [--seed 1]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import signal
import time
from collections import Counter
from pathlib import Path
from typing import Any

from harness.daemon_process import port_ready, serve_args
from harness.proc_status import alive
from harness.raw_frames import RpcClient
from harness.state_dirs import store_path, write_state_dir
from harness.stress_report import Report, machine
from harness.zygote import Zygote
from sessiond.engine.store import LoadStatus, load_store_bytes

KEYS = 32
WRITERS = 4
PAUSE_S = 0.003
TARGETS = ("random", "random", "after-temp-write", "after-rename")


def read_phase(path: Path) -> tuple[int, str]:
    try:
        text = path.read_text().split()
        return int(text[0]), text[1]
    except (OSError, ValueError, IndexError):
        return 0, "none"


def quiet_closed_futures(loop: asyncio.AbstractEventLoop) -> None:
    """Requests cut off by a kill fail with ConnectionError that nobody reads; do not log them."""

    def handler(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        if isinstance(context.get("exception"), ConnectionError | OSError):
            return
        loop.default_exception_handler(context)

    loop.set_exception_handler(handler)


async def gone(pid: int) -> None:
    """Until the pid is reaped (a zombie still counts as alive for the daemon's temp cleanup)."""
    while True:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        await asyncio.sleep(0.001)


class Lane:
    def __init__(self, root: Path, seed: int, report: Report, stats: Counter[str]) -> None:
        self.root = root
        self.rng = random.Random(seed)
        self.report = report
        self.stats = stats
        self.acked: dict[str, int] = {}
        self.counter = 0
        self.path = store_path(root)
        self.phase = root / "phase"
        env = {
            "SESSIOND_TEST_FAULT_HOOK": "after-temp-write:pause,after-rename:pause",
            "SESSIOND_TEST_FAULT_PAUSE": str(PAUSE_S),
            "SESSIOND_TEST_FAULT_PHASE": str(self.phase),
        }
        self.zygote = Zygote(env)

    def temps(self) -> list[str]:
        return [p.name for p in self.path.parent.iterdir() if p.name.endswith(".tmp")]

    async def start(self, cycle: int) -> tuple[int, int]:
        port_file = self.root / ".port"
        port_file.unlink(missing_ok=True)
        pid = self.zygote.spawn(serve_args(self.root, port_file), self.root / "daemon.log")
        try:
            return pid, await port_ready(port_file, lambda: alive(pid))
        except RuntimeError:
            raise RuntimeError(
                f"daemon exited at cycle {cycle}; see {self.root}/daemon.log"
            ) from None
        except TimeoutError:
            raise TimeoutError(f"daemon did not start at cycle {cycle}") from None

    async def check_restart(self, client: RpcClient, cycle: int) -> None:
        """The restarted daemon serves every acknowledged change; stale temps are gone."""
        status = await client.call("daemon.status")
        store = status.stores[0]
        self.report.check(store.state == "ok", f"cycle {cycle}: restarted store is {store.state}")
        leftovers = self.temps()
        self.report.check(
            not leftovers,
            f"cycle {cycle}: temp files after restart {leftovers} (daemon pid {status.pid}, "
            f"writer alive: {[alive(int(n.split('.')[3])) for n in leftovers]})",
        )
        if not self.acked:
            return
        frames = [
            {"jsonrpc": "2.0", "id": i, "method": "sessions.get", "params": {"key": key}}
            for i, key in enumerate(self.acked)
        ]
        await client.ws.send(json.dumps(frames))
        reply = await asyncio.wait_for(client.raw_replies.get(), 10)
        for answer, key in zip(json.loads(reply), self.acked, strict=True):
            n = answer.get("result", {}).get("entry", {}).get("n", -1)
            if n < self.acked[key]:
                self.stats["lost_after_restart"] += 1
                self.report.fail(f"cycle {cycle}: restarted daemon serves {key}={n} < acked")
        self.stats["restart_checks"] += 1

    async def writer(self, client: RpcClient, first_ack: asyncio.Event) -> None:
        while True:
            self.counter += 1
            n = self.counter
            key = f"agent:main:k{self.rng.randrange(KEYS)}"
            try:
                result = await client.call(
                    "sessions.patch", {"key": key, "fields": {"n": n, "updatedAt": n}}
                )
            except Exception:
                return
            if result.durable:
                self.acked[key] = max(self.acked.get(key, 0), n)
                self.stats["durable_acks"] += 1
                first_ack.set()

    async def kill_when(self, pid: int, target: str) -> None:
        if target == "random":
            await asyncio.sleep(self.rng.uniform(0.0, 0.06))
        else:
            deadline = time.monotonic() + 3
            while read_phase(self.phase)[1] != target:
                if time.monotonic() > deadline:
                    self.stats["target_missed"] += 1
                    break
                await asyncio.sleep(0.0005)
        os.kill(pid, signal.SIGKILL)
        await gone(pid)

    def check_file(self, cycle: int) -> None:
        data = self.path.read_bytes() if self.path.exists() else None
        store = load_store_bytes(data, str(self.path))
        if store.status is not LoadStatus.OK:
            self.stats["corrupt"] += 1
            self.report.fail(f"cycle {cycle}: store {store.status.value}: {store.error}")
            return
        rows = {k: json.loads(bytes(v)) for k, v in store.rows.items()}
        for key, n in self.acked.items():
            got = rows.get(key, {}).get("n", -1)
            if got < n:
                self.stats["lost_acks"] += 1
                self.report.fail(f"cycle {cycle}: lost durable change {key}={n} (file has {got})")

    async def run(self, kills: int) -> None:
        for cycle in range(kills):
            pid, port = await self.start(cycle)
            client = await RpcClient.connect(f"ws://127.0.0.1:{port}")
            await self.check_restart(client, cycle)
            first_ack = asyncio.Event()
            writers = [asyncio.create_task(self.writer(client, first_ack)) for _ in range(WRITERS)]
            await asyncio.wait_for(first_ack.wait(), 20)
            target = TARGETS[cycle % len(TARGETS)]
            await self.kill_when(pid, target)
            self.stats["kills"] += 1
            self.stats[f"killed at {read_phase(self.phase)[1]}"] += 1
            if self.temps():
                self.stats["temp_file_left_by_kill"] += 1

            await asyncio.gather(*writers, return_exceptions=True)
            await client.close()
            self.check_file(cycle)
        # One last start: the final kill's leftovers are cleaned and every ack is served.
        pid, port = await self.start(kills)
        client = await RpcClient.connect(f"ws://127.0.0.1:{port}")
        await self.check_restart(client, kills)
        await client.close()
        os.kill(pid, signal.SIGTERM)
        await gone(pid)
        self.zygote.close()


def run(kills: int, lanes: int, seed: int, workdir: Path) -> Report:
    report = Report("crash consistency (SIGKILL under write load)")
    report.figures["machine"] = machine()
    stats: Counter[str] = Counter()
    roots = [write_state_dir(workdir / f"lane{i}", {"main": {}}) for i in range(lanes)]
    per_lane = [kills // lanes + (1 if i < kills % lanes else 0) for i in range(lanes)]
    lane_objs = [Lane(root, seed * 1000 + i, report, stats) for i, root in enumerate(roots)]

    async def go() -> None:
        quiet_closed_futures(asyncio.get_running_loop())
        await asyncio.gather(*(lane.run(n) for lane, n in zip(lane_objs, per_lane, strict=True)))

    asyncio.run(go())
    report.check(stats["kills"] == kills, f"{stats['kills']} kills, wanted {kills}")
    where = {k.removeprefix("killed at "): v for k, v in stats.items() if k.startswith("killed")}
    report.figures.update(
        kills=stats["kills"],
        kills_by_write_point=dict(sorted(where.items())),
        corrupt_stores=stats["corrupt"],
        lost_acks=stats["lost_acks"] + stats["lost_after_restart"],
        durable_acks=stats["durable_acks"],
        restart_checks=stats["restart_checks"],
        kills_leaving_a_temp_file=stats["temp_file_left_by_kill"],
        phase_targets_missed=stats["target_missed"],
    )
    between_temp_and_rename = where.get("after-temp-write", 0) + where.get("after-precheck", 0)
    report.check(
        between_temp_and_rename >= kills // 10,
        f"only {between_temp_and_rename} kills between temp write and rename",
    )
    report.check(
        where.get("after-rename", 0) >= kills // 10,
        f"only {where.get('after-rename', 0)} kills between rename and directory fsync",
    )
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--kills", type=int, default=500)
    parser.add_argument("--lanes", type=int, default=2)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--workdir", help="keep state dirs here (default: a temp dir)")
    args = parser.parse_args(argv)
    import tempfile

    with tempfile.TemporaryDirectory(prefix="sessiond-crash-") as temp:
        workdir = Path(args.workdir) if args.workdir else Path(temp)
        return run(args.kills, args.lanes, args.seed, workdir).finish()


if __name__ == "__main__":
    raise SystemExit(main())
