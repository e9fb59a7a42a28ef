"""docs/cli.md is what the argument parser says now (`make gen` rewrites it)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from sessiond.cli.docs import render
from sessiond.cli.main import EXIT_CODES, SOURCES, build_parser

ROOT = Path(__file__).resolve().parents[2]


def test_docs_cli_md_is_generated_from_the_parser() -> None:
    assert (ROOT / "docs" / "cli.md").read_text(encoding="utf-8") == render(), "run `make gen`"


def test_every_command_and_flag_is_documented_with_its_exit_codes() -> None:
    text = render()
    parser = build_parser()
    commands = {
        "serve": parser.parse_args(["serve"]),
        "demo": parser.parse_args(["demo"]),
        "sessions cleanup": parser.parse_args(["sessions", "cleanup"]),
    }
    for name in commands:
        assert f"## `sessiond {name}`" in text
        assert EXIT_CODES[name], name
        for code, meaning in EXIT_CODES[name]:
            assert f"- `{code}`: {meaning}" in text
    for (_command, flag), source in SOURCES.items():
        assert f"`{flag}`" in text
        for variable in source.env:
            assert f"env `{variable}`" in text


def test_check_mode_fails_on_a_stale_file(tmp_path: Path) -> None:
    stale = tmp_path / "cli.md"
    stale.write_text(render().replace("--dry-run", "--dry-walk"))
    done = subprocess.run(
        [sys.executable, "-m", "sessiond.cli.docs", "--check", str(stale)],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 1
    assert "is stale: run `make gen`" in done.stderr and "+| `--dry-run`" in done.stderr
