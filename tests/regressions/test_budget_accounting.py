"""Budget accounting (OpenClaw #107238, #114811).

Guarantee: bytes no maintenance rule may delete (`.migrated` files, notes) never make the disk
budget evict live sessions; archives go first, and only managed bytes are counted.
"""

from __future__ import annotations

from pathlib import Path

from .statedir import HOUR, NOW, StateDir, sid


def test_foreign_files_do_not_evict_live_sessions(tmp_path: Path) -> None:
    state = StateDir(tmp_path)
    state.config("{session: {maintenance: {maxDiskBytes: '4kb'}}}")
    state.rows(
        {
            f"agent:main:explicit:{n}": {"sessionId": sid(n), "updatedAt": NOW - n * HOUR}
            for n in range(4)
        }
    )
    for n in range(4):
        state.file(f"{sid(n)}.jsonl", size=300)
    state.file("sessions.json.migrated", size=200_000)
    state.file("notes.txt", size=50_000)

    preview = state.cli_json("--dry-run")
    applied = state.cli_json()

    assert preview["diskBudget"]["overBudget"] is False
    assert applied["diskBudget"]["removedEntries"] == 0
    assert len(state.read()) == 4
    assert "sessions.json.migrated" in state.names()


def test_archives_are_spent_before_any_live_session(tmp_path: Path) -> None:
    state = StateDir(tmp_path)
    state.config("{session: {maintenance: {maxDiskBytes: 3000}}}")
    state.rows(
        {
            f"agent:main:explicit:{n}": {"sessionId": sid(n), "updatedAt": NOW - n * HOUR}
            for n in range(3)
        }
    )
    for n in range(3):
        state.file(f"{sid(n)}.jsonl", size=300)
    state.file(f"{sid(9)}.jsonl.bak.2026-01-01T00-00-00.000Z", size=20_000, age_ms=HOUR)
    state.file("sessions.json.bak.1700000000000", size=20_000, age_ms=HOUR)

    applied = state.cli_json()

    budget = applied["diskBudget"]
    assert budget["removedFiles"] == 2 and budget["removedEntries"] == 0
    assert len(state.read()) == 3
