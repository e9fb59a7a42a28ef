"""Where a daemon's cleanup apply spends its time: one daemon on a copy of a generated store
(bench/bigstore.py), one `sessions.cleanup {}` with a progress token, and the client-side time
at which each `$/progress` stage began, then the answer, then (polling the journal) the entry's
close. A figure for the closing note and for issue 17's "measure each part", never a test.

    PYTHONPATH=tests .venv/bin/python bench/apply_stages.py --rows 100000 [--row-bytes 2000]
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from harness.daemon_process import DaemonProcess
from harness.raw_frames import RpcClient

HERE = Path(__file__).parent


async def apply(url: str, journal: Path, dry_runs: int) -> list[tuple[str, float]]:
    marks: list[tuple[str, float]] = []
    async with await RpcClient.connect(url) as c:
        for _ in range(dry_runs):
            started = time.perf_counter()
            await c.call("sessions.cleanup", {"dryRun": True})
            marks.append(("(a dry run before)", time.perf_counter() - started))
        started = time.perf_counter()
        call = asyncio.ensure_future(c.call("sessions.cleanup", {"progressToken": "stages"}))
        stage = None
        while not call.done():
            get = asyncio.ensure_future(c.notifications.get())
            await asyncio.wait({call, get}, return_when=asyncio.FIRST_COMPLETED)
            if not get.done():
                get.cancel()
                continue
            params = get.result().params or {}
            value = params.get("value", {}) if isinstance(params, dict) else {}
            now = value.get("stage") or value.get("kind")
            if now != stage:
                stage = now
                marks.append((str(now), time.perf_counter() - started))
        call.result()
        marks.append(("answer", time.perf_counter() - started))
        while b'"finish"' not in journal.read_bytes():
            await asyncio.sleep(0.01)
        marks.append(("journal entry closed", time.perf_counter() - started))
    return marks


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--row-bytes", type=int, default=2000)
    parser.add_argument("--dry-runs", type=int, default=0, help="dry runs before the apply")
    parser.add_argument("--py-spy", help="write py-spy's collapsed stacks of the apply here")
    parser.add_argument("--base", help="a state dir bigstore.py built before (copied, kept)")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="sessiond-stages-"))
    now = time.time_ns() // 1_000_000
    try:
        if args.base:
            shutil.rmtree(work)
            shutil.copytree(args.base, work, symlinks=True)
        else:
            argv = [str(work), str(args.rows), str(now), "--row-bytes", str(args.row_bytes)]
            subprocess.run([sys.executable, str(HERE / "bigstore.py"), *argv], check=True)
        sessions = work / "agents" / "main" / "sessions"
        size = (sessions / "sessions.json").stat().st_size
        with DaemonProcess(work) as proc:
            loaded_mb = proc.rss_kb()[0] / 1024
            spy = None
            if args.py_spy:  # sampled stacks of the daemon, from just before the apply
                spy = subprocess.Popen(
                    [
                        "py-spy",
                        "record",
                        "--pid",
                        str(proc.pid),
                        "--format",
                        "raw",
                        "--rate",
                        "250",
                        "--threads",
                        "--output",
                        args.py_spy,
                        "--nonblocking",
                    ],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
                time.sleep(1.0)
            marks = asyncio.run(apply(proc.url, sessions / "sessions.json.journal", args.dry_runs))
            if spy is not None:
                spy.send_signal(signal.SIGINT)
                spy.wait()
            rss = proc.rss_kb()[1] / 1024
        print(
            f"{args.rows} rows, {size / 1e6:.0f} MB;"
            f" daemon RSS loaded {loaded_mb:.0f} MB, peak {rss:.0f} MB"
        )
        for name, at in marks:
            print(f"  {at * 1000:8.0f} ms  {name}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
