"""`python -m sessiond.client.codegen`: regenerate both clients from protocol/schema.json.

`--check` writes nothing and exits 1 with a diff when a generated file differs from what the
generator writes now: that is `make check-gen`, which `make test` and CI run.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from sessiond.client.codegen.outputs import outputs, stale
from sessiond.protocol.schema_export import SCHEMA_PATH


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--schema", type=Path, default=SCHEMA_PATH, help="the contract to read")
    parser.add_argument("--check", action="store_true", help="compare instead of writing")
    args = parser.parse_args(argv)
    files = outputs(args.schema)
    if args.check:
        diffs = stale(files)
        for diff in diffs:
            sys.stdout.write(diff)
        if diffs:
            print("generated clients are stale: run `make gen` and commit", file=sys.stderr)
        return 1 if diffs else 0
    for path, text in files.items():
        path.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
