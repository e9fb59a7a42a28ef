"""Stale `sessionFile` path (OpenClaw #50248, PR #97495).

Guarantee: `--fix-missing` repairs a row whose `sessionFile` is gone while `<sessionId>.jsonl`
exists (it points the row at the file that is there) instead of pruning a live session.
"""

from __future__ import annotations

from pathlib import Path

from .statedir import NOW, StateDir, sid


def test_fix_missing_repairs_instead_of_pruning(tmp_path: Path) -> None:
    state = StateDir(tmp_path)
    live = state.file(f"{sid(1)}.jsonl")
    state.rows(
        {
            "agent:main:main": {
                "sessionId": sid(1),
                "sessionFile": str(state.sessions / "moved-away.jsonl"),
                "updatedAt": NOW - 60_000,
                "unknownField": {"kept": True},
            },
            "agent:main:gone": {"sessionId": sid(2), "updatedAt": NOW - 60_000},
        }
    )

    preview = state.cli_json("--dry-run", "--fix-missing")
    applied = state.cli_json("--fix-missing")

    assert preview["missing"] == applied["missing"] == 1
    rows = state.read()
    assert list(rows) == ["agent:main:main"]
    assert rows["agent:main:main"]["sessionFile"] == str(live)
    assert rows["agent:main:main"]["unknownField"] == {"kept": True}
    assert live.exists()
