"""Command line entry point."""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    print("sessiond", argv if argv is not None else sys.argv[1:])
    return 0
