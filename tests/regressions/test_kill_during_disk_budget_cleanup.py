"""Kill during a disk-budget cleanup (OpenClaw #108378).

Guarantee: a cleanup killed right after it unlinked a transcript leaves a durable sessions.json
in which every row's transcript still exists; what the kill leaves behind is at worst an
unreferenced transcript, which the next cleanup removes.

OpenClaw 2026.5.12 removes budget files before it writes sessions.json (docs/compat.md row 2), so
a kill there leaves rows pointing at transcripts that are gone (docs/compat.md row 28, observed);
sessiond commits the reduced index first. Both the daemon's `sessions.cleanup` and the local
CLI are killed with a real SIGKILL at the test-only fault point `after-unlink`
(daemon/fault_hooks.py).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from harness.daemon_process import DaemonProcess, clean_env
from harness.state_dirs import store_path, write_state_dir
from sessiond.client import ConnectionLostError

from .live import client, fault_env, run, wait_phase

HOUR = 3_600_000
TRANSCRIPT_BYTES = 2000
CONFIG = {"session": {"maintenance": {"maxDiskBytes": 7000}}}  # high water: 5600 bytes


def _state(root: Path) -> Path:
    """Six fresh rows of ~2 kB transcripts: the budget evicts the oldest three or four."""
    now = time.time_ns() // 1_000_000
    rows = {
        f"agent:main:explicit:{n}": {"sessionId": f"s-{n}", "updatedAt": now - (n + 1) * HOUR}
        for n in range(6)
    }
    write_state_dir(root, {"main": rows}, CONFIG)
    for n in range(6):
        (store_path(root, "main").parent / f"s-{n}.jsonl").write_text("y" * TRANSCRIPT_BYTES)
    return root


def _dangling(root: Path) -> list[str]:
    """Rows of the durable index whose transcript is gone."""
    sessions = store_path(root, "main").parent
    rows = json.loads(store_path(root, "main").read_bytes())
    return [k for k, row in rows.items() if not (sessions / f"{row['sessionId']}.jsonl").exists()]


def _orphans(root: Path) -> list[str]:
    sessions = store_path(root, "main").parent
    referenced = {
        f"{r['sessionId']}.jsonl" for r in json.loads(store_path(root, "main").read_text()).values()
    }
    return sorted(n for n in os.listdir(sessions) if n.endswith(".jsonl") and n not in referenced)


def _transcripts(root: Path) -> list[str]:
    return sorted(n for n in os.listdir(store_path(root, "main").parent) if n.endswith(".jsonl"))


def test_daemon_killed_after_a_budget_unlink(tmp_path: Path) -> None:
    root = _state(tmp_path / "state")
    phase = tmp_path / "phase"
    proc = DaemonProcess(root, env=fault_env(phase, "after-unlink:pause"))
    try:

        async def cleanup_and_kill() -> None:
            async with client(proc) as c:
                pending = asyncio.create_task(c.sessions_cleanup(enforce=True))
                await asyncio.to_thread(wait_phase, phase, "after-unlink")
                proc.send(signal.SIGKILL)
                with pytest.raises(ConnectionLostError):
                    await pending

        run(cleanup_and_kill)
    finally:
        assert proc.stop() == -signal.SIGKILL

    assert len(_transcripts(root)) == 5, "the kill should land after exactly one unlink"
    assert _dangling(root) == [], "the durable index references a transcript that is gone"
    orphans = _orphans(root)
    assert orphans, "the rows the budget evicted are out of the index before any unlink"
    files_after_kill = sorted(os.listdir(store_path(root, "main").parent))

    with DaemonProcess(root) as again:

        async def finish() -> None:
            async with client(again) as c:
                # The start finishes the interrupted cleanup from its journal (issue 15:
                # finished or rolled back, never half): the unlinks it had still to do are
                # done, nothing else is touched; an explicit cleanup then finds nothing left.
                left = sorted(os.listdir(store_path(root, "main").parent))
                assert set(left) <= set(files_after_kill)
                assert set(files_after_kill) - set(left) == {f"{n}" for n in orphans}
                assert _dangling(root) == [] and _orphans(root) == []
                await c.sessions_cleanup(enforce=True)

        run(finish)

    assert _dangling(root) == [] and _orphans(root) == []


def test_local_cli_killed_after_a_budget_unlink(tmp_path: Path) -> None:
    root = _state(tmp_path / "state")
    phase = tmp_path / "phase"
    env = clean_env()
    env.update(fault_env(phase, "after-unlink:pause"), OPENCLAW_STATE_DIR=str(root), HOME=str(root))
    exe = str(Path(sys.executable).with_name("sessiond"))
    cli = subprocess.Popen(
        [exe, "sessions", "cleanup", "--enforce", "--local"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        wait_phase(phase, "after-unlink")
        cli.send_signal(signal.SIGKILL)
    finally:
        assert cli.wait(10) == -signal.SIGKILL, cli.stderr and cli.stderr.read()
        if cli.stderr:
            cli.stderr.close()

    assert len(_transcripts(root)) == 5
    assert _dangling(root) == [], "the durable index references a transcript that is gone"
    assert _orphans(root)
