"""The command line's side of issue 15, in local mode: plan ids, the deletions table, undo."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from regressions.statedir import DAY, NOW, StateDir, sid


def _sessiond(state: StateDir, *args: str) -> subprocess.CompletedProcess[str]:
    env = dict(
        os.environ,
        OPENCLAW_STATE_DIR=str(state.root),
        HOME=str(state.root),
        SESSIOND_NOW_MS=str(NOW),
        OPENCLAW_GATEWAY_PORT="1",
    )
    exe = Path(sys.executable).with_name("sessiond")
    command, *rest = args  # --local: on the files, without the fallback note on stderr
    return subprocess.run(
        [str(exe), "sessions", command, "--local", *rest],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def _state(tmp_path: Path) -> StateDir:
    state = StateDir(tmp_path)
    state.config('{"session": {"maintenance": {"mode": "enforce", "pruneAfter": "30d"}}}')
    state.rows(
        {
            "agent:main:explicit:old": {"sessionId": sid(1), "updatedAt": NOW - 40 * DAY},
            "agent:main:explicit:new": {"sessionId": sid(2), "updatedAt": NOW - DAY},
        }
    )
    state.file(f"{sid(1)}.jsonl")
    state.file(f"{sid(2)}.jsonl")
    state.file("orphan.jsonl", size=10, age_ms=60 * DAY)
    return state


def test_plan_id_deletions_and_undo_from_the_command_line(tmp_path: Path) -> None:
    state = _state(tmp_path)
    text = _sessiond(state, "cleanup", "--dry-run")
    assert text.returncode == 0
    assert "Files deleted outright" in text.stdout and "orphan.jsonl" in text.stdout
    [plan_line] = text.stderr.splitlines()  # piped: no progress bar, only the plan id
    assert plan_line.startswith("Plan p1-0-")
    preview = json.loads(_sessiond(state, "cleanup", "--dry-run", "--json").stdout)
    assert preview["planId"] == plan_line.split()[1]
    assert preview["deletions"] == [
        {
            "path": str(state.sessions / "orphan.jsonl"),
            "bytes": 10,
            "reason": "sweep",
            "archive": False,
        }
    ]

    # The plan changes (the old row is fresh again): the id is refused, nothing is written.
    rows = state.read()
    rows["agent:main:explicit:old"]["updatedAt"] = NOW - DAY
    state.rows(rows)
    refused = _sessiond(state, "cleanup", "--plan", preview["planId"])
    assert refused.returncode == 1
    assert "the plan changed" in refused.stderr and '"prune-stale"' in refused.stderr
    assert len(state.read()) == 2 and not (state.store.parent / "sessions.json.journal").exists()

    rows["agent:main:explicit:old"]["updatedAt"] = NOW - 40 * DAY
    state.rows(rows)
    before = state.store.read_bytes()
    applied = _sessiond(state, "cleanup", "--plan", preview["planId"], "--json")
    assert applied.returncode == 0, applied.stderr
    assert list(state.read()) == ["agent:main:explicit:new"]

    listing = _sessiond(state, "cleanups")
    assert "restorable" in listing.stdout and "deleted outright: orphan.jsonl" in listing.stdout
    undone = _sessiond(state, "restore", "--last")
    assert undone.returncode == 0, undone.stderr
    assert "Restored" in undone.stdout and "orphan.jsonl" in undone.stdout
    assert state.store.read_bytes() == before
    assert f"{sid(1)}.jsonl" in state.names()
    # The newest restorable entry is now the restore: undoing it removes the row again.
    again = json.loads(_sessiond(state, "restore", "--last", "--json").stdout)
    assert again["restoredRows"] == 1 and again["renamedFiles"] == 1
    assert list(state.read()) == ["agent:main:explicit:new"]
    assert f"{sid(1)}.jsonl" not in state.names()
