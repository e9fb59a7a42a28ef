"""The undo snapshots sessiond keeps in `.sessiond-undo/` (compat row 36) are seen by no count of
the real OpenClaw 2026.5.12: its dry run reports the same with and without them, under a disk
budget that they would blow if counted, and its apply leaves them alone.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest
from harness.state_dirs import store_path, write_state_dir

DAY = 86_400_000


def _state(root: Path, now_ms: int, with_snapshot: bool) -> Path:
    rows = {
        f"agent:main:explicit:r{n}": {
            "sessionId": f"s-{n}",
            "updatedAt": now_ms - (40 * DAY if n % 3 == 0 else DAY),
            "note": "x" * 300,
        }
        for n in range(30)
    }
    budget = {"mode": "enforce", "pruneAfter": "30d", "maxDiskBytes": "40kb"}
    write_state_dir(root, {"main": rows}, {"session": {"maintenance": budget}})
    sessions = store_path(root, "main").parent
    for n in range(30):
        (sessions / f"s-{n}.jsonl").write_text('{"type":"session"}\n' * 20)
    if with_snapshot:
        undo = sessions / ".sessiond-undo"
        undo.mkdir(mode=0o700)
        (undo / "sessions.json.20260101T000000.000Z-abcdef").write_bytes(
            b"{" + b" " * 200_000 + b"}"
        )
    return root


def _cleanup(ref: Path, root: Path, *flags: str) -> dict[str, object]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENCLAW_", "SESSIOND_"))}
    env.update(OPENCLAW_STATE_DIR=str(root), HOME=str(root), OPENCLAW_GATEWAY_PORT="9")
    done = subprocess.run(
        [str(ref / "bin" / "openclaw"), "sessions", "cleanup", "--json", *flags],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    found = json.loads(done.stdout)
    assert isinstance(found, dict)
    found.pop("storePath", None)
    return found


@pytest.mark.reference
def test_the_reference_counts_no_undo_snapshot(tmp_path: Path) -> None:
    ref_dir = os.environ.get("OPENCLAW_REF_DIR")
    if not ref_dir or not (Path(ref_dir) / "bin" / "openclaw").exists():
        pytest.skip("set OPENCLAW_REF_DIR to an installed OpenClaw 2026.5.12 to run live")
    ref = Path(ref_dir)
    now = int(time.time() * 1000)
    without = _state(tmp_path / "without", now, False)
    beside = _state(tmp_path / "with", now, True)
    previews = [_cleanup(ref, root, "--dry-run") for root in (without, beside)]
    assert previews[0] == previews[1]
    assert previews[0]["diskBudget"] is not None  # the budget was in play, and unmoved by it
    undo = store_path(beside, "main").parent / ".sessiond-undo"
    kept = {p.name: p.read_bytes() for p in undo.iterdir()}
    applied = [_cleanup(ref, root) for root in (without, beside)]
    assert applied[0] == applied[1]
    assert {p.name: p.read_bytes() for p in undo.iterdir()} == kept
    shutil.rmtree(tmp_path, ignore_errors=True)
