"""Torn transcript tail and malformed rows (OpenClaw #119085, #80970).

Guarantee: cleanup never crashes on a malformed row (a sessionId that cannot name a file, a
`null` or string row) and never prunes a session whose transcript exists, however its last line
ends. 2026.5.12 aborts the whole `--fix-missing` run on the first invalid id.
"""

from __future__ import annotations

from pathlib import Path

from .statedir import NOW, StateDir, sid


def test_malformed_rows_do_not_stop_cleanup(tmp_path: Path) -> None:
    state = StateDir(tmp_path)
    torn = state.sessions / f"{sid(1)}.jsonl"
    torn.write_text('{"type":"message","text":"hello"}\n{"type":"message","te')
    state.rows(
        {
            "agent:main:main": {"sessionId": sid(1), "updatedAt": NOW - 60_000},
            "agent:main:bad-id": {"sessionId": "agent:main:main", "updatedAt": NOW - 60_000},
            "agent:main:null": None,
            "agent:main:text": "not an object",
            "agent:main:missing": {"sessionId": sid(3), "updatedAt": NOW - 60_000},
        }
    )
    preview = state.cli_json("--dry-run", "--fix-missing")
    applied = state.cli_json("--fix-missing")
    assert preview["missing"] == applied["missing"] == 1
    rows = state.read()
    assert "agent:main:main" in rows and "agent:main:bad-id" in rows
    assert rows["agent:main:null"] is None and rows["agent:main:text"] == "not an object"
    assert "agent:main:missing" not in rows
    assert torn.exists()
