"""Record the reference's behaviour on every differential case into golden files.

    PYTHONPATH=tests python tests/differential/record_golden.py --ref /work/ref \
        [--case NAME ...] [--workers 2]

For each case and each flag combination: build a fresh state dir with `now_ms` = the current
time, run `openclaw sessions cleanup <flags>` (local mode: the gateway port points at a free
port), and store the normalised observation (see harness.py) in golden/<case>.json.
"""

from __future__ import annotations

import argparse
import json
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from differential import harness
from differential.fixtures import CASES


def record_case(ref_dir: Path, case: str) -> tuple[str, float, int]:
    ref = harness.reference_bin(ref_dir)
    spec = CASES[case]
    started = time.time()
    runs: list[dict[str, Any]] = []
    for index, flags in enumerate(spec.combos):
        result = harness.run_reference_case(ref, case, flags)
        runs.append(
            {
                "index": index,
                "nowMs": result.now_ms,
                "argv": ["openclaw", "sessions", "cleanup", *flags],
                **result.observation,
            }
        )
    golden = {
        "case": case,
        "description": spec.description,
        "reference": f"openclaw {harness.reference_version(ref_dir)}",
        "runs": runs,
    }
    harness.GOLDEN_DIR.mkdir(parents=True, exist_ok=True)
    text = json.dumps(golden, indent=2, ensure_ascii=False) + "\n"
    harness.golden_path(case).write_text(text, encoding="utf-8")
    failures = sum(1 for run in runs if run["exitCode"] != 0)
    return case, time.time() - started, failures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ref", type=Path, required=True, help="reference install dir")
    parser.add_argument("--case", action="append", default=[], help="only this case (repeatable)")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args(argv)
    cases = args.case or list(CASES)
    unknown = [c for c in cases if c not in CASES]
    if unknown:
        parser.error(f"unknown case(s): {', '.join(unknown)}")
    harness.reference_bin(args.ref)  # fail early on a bad --ref
    started = time.time()
    combos = sum(len(CASES[c].combos) for c in cases)
    print(f"recording {len(cases)} cases, {combos} runs, {args.workers} workers", flush=True)
    with ThreadPoolExecutor(max_workers=args.workers) as pool:
        futures = [pool.submit(record_case, args.ref, case) for case in cases]
        for future in futures:
            case, elapsed, failures = future.result()
            note = f" ({failures} non-zero exits)" if failures else ""
            print(f"  {case}: {elapsed:.1f} s{note}", flush=True)
    print(f"done in {time.time() - started:.1f} s", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
