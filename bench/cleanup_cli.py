"""Local CLI dry run, sessiond vs OpenClaw 2026.5.12, as fresh processes on one generated store.

Prints wall time (median of N runs), peak RSS of each and the ratio. What it does not prove:
daemon latencies (see bench/report.py) or behaviour (the differential tests do that).

    .venv/bin/python bench/cleanup_cli.py --rows 10000 --runs 3 [--ref ~/.cache/openclaw-ref]
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def run(argv: list[str], env: dict[str, str]) -> tuple[float, int]:
    start = time.perf_counter()
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - start
    if status != 0:
        raise SystemExit(f"{argv[0]} failed: {proc.stderr.read().decode() if proc.stderr else ''}")
    return elapsed, usage.ru_maxrss * 1024


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--ref", default=os.environ.get("OPENCLAW_REF_DIR", ""))
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="sessiond-bench-"))
    now = time.time_ns() // 1_000_000
    # Built in a child process: a child forked from a parent holding the generated rows would
    # report the parent's pages in its own peak RSS.
    bigstore = Path(__file__).resolve().parent / "bigstore.py"
    subprocess.run([sys.executable, str(bigstore), str(root), str(args.rows), str(now)], check=True)
    store = root / "agents" / "main" / "sessions" / "sessions.json"
    env = dict(os.environ, OPENCLAW_STATE_DIR=str(root), HOME=str(root), OPENCLAW_GATEWAY_PORT="9")
    flags = ["sessions", "cleanup", "--dry-run", "--json", "--fix-dm-scope"]
    ours_exe = str(Path(sys.executable).with_name("sessiond"))
    contenders = {"sessiond": [ours_exe, *flags]}
    ref = Path(args.ref).expanduser() / "bin" / "openclaw" if args.ref else None
    if ref and ref.exists():
        contenders["openclaw"] = [str(ref), *flags]
    print(
        f"machine: {platform.machine()} {os.cpu_count()} cores, Python {platform.python_version()}"
    )
    print(f"store: {args.rows} rows, {store.stat().st_size / 1e6:.1f} MB")
    results: dict[str, tuple[float, int]] = {}
    for name, argv in contenders.items():
        times, peaks = [], []
        for _ in range(args.runs):
            elapsed, peak = run(argv, env)
            times.append(elapsed)
            peaks.append(peak)
        results[name] = (statistics.median(times), max(peaks))
        print(
            f"{name:9s} dry run median {results[name][0]:.3f} s  peak RSS {max(peaks) / 1e6:.0f} MB"
        )
    if "openclaw" in results:
        ours, theirs = results["sessiond"], results["openclaw"]
        print(f"speed-up {theirs[0] / ours[0]:.1f}x, RSS ratio {ours[1] / theirs[1]:.2f}")
    shutil.rmtree(root)


if __name__ == "__main__":
    main()
