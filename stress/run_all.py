"""`make stress`: every stress script in turn, each a fresh process, then a summary.

Exits non-zero when any script reports a violation (or fails to run). Each script prints its own
report; the summary lists its verdict and wall time. `--only crash,fuzz` runs a subset; extra
arguments after `--` go to every script (for example `-- --seed 7`).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
SCRIPTS = ["crash", "races", "fuzz", "load", "diskfaults", "security"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--only", default="", help="comma-separated subset of " + ",".join(SCRIPTS))
    args, extra = parser.parse_known_args(argv)
    extra = [a for a in extra if a != "--"]
    chosen = [s for s in SCRIPTS if not args.only or s in args.only.split(",")]
    results: list[tuple[str, int, float]] = []
    for name in chosen:
        started = time.monotonic()
        argv_ = [sys.executable, str(HERE / f"{name}.py")]
        if name in ("crash", "races", "fuzz") and extra:
            argv_ += extra
        code = subprocess.run(argv_, check=False).returncode
        results.append((name, code, time.monotonic() - started))
        sys.stdout.flush()
    print("\n== stress summary")
    for name, code, seconds in results:
        print(
            f"   {name:11s} {'OK' if code == 0 else f'FAILED (exit {code})':18s} {seconds:6.1f} s"
        )
    total = sum(s for _, _, s in results)
    failed = sum(1 for _, code, _ in results if code != 0)
    print(f"   total {total:.1f} s")
    print(f"stress: {len(results) - failed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
