"""Beside the real OpenClaw gateway: the figures of issue 18's live proof.

Runs `harness.beside_gateway` (OpenClaw 2026.5.12's gateway and sessiond, or two gateways, or
one, writing one store at once; its docstring has the whole scenario and the check) and prints
how many acknowledged writes each side lost. Exits 1 when any was lost.

    PYTHONPATH=tests .venv/bin/python stress/beside_gateway.py [--rounds 200] [--store-mb 8]
        [--scenario sessiond|two-gateways|one-gateway] [--json out.json] [--keep DIR]

needs OpenClaw 2026.5.12 at OPENCLAW_REF_DIR (default ~/.cache/openclaw-ref).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from harness.beside_gateway import SCENARIOS, run


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=200)
    parser.add_argument("--store-mb", type=float, default=8.0)
    parser.add_argument(
        "--scenario",
        choices=sorted(SCENARIOS),
        default="sessiond",
        help="sessiond beside the gateway (default), two gateways, or one gateway only",
    )
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument("--keep", type=Path, help="run in this directory and keep it")
    args = parser.parse_args()
    ref_dir = Path(os.environ.get("OPENCLAW_REF_DIR", Path.home() / ".cache" / "openclaw-ref"))
    figures = run(
        ref_dir,
        scenario=args.scenario,
        rounds=args.rounds,
        store_mb=args.store_mb,
        work_dir=args.keep,
        progress=lambda line: print(line, flush=True),
    )
    print("\n".join(figures.lines()))
    if args.json:
        args.json.write_text(json.dumps(figures.as_json(), indent=2))
    return 0 if not any(figures.lost.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
