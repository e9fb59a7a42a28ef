"""Two writers within 50 ms (OpenClaw #51553, #70643).

Guarantee: when another writer adds key A while sessiond removes or changes key B, within the
same few milliseconds, both changes survive: A present and B gone (or B changed), never a silent
last-writer-wins; and the CLI's `sessions cleanup` does not race a running daemon at all, it hands
the cleanup to it.

The race is made exact with the test-only fault hook: sessiond's write is held between its fsynced
temp file and its rename while the other writer (standing in for the OpenClaw gateway, which
takes no lock) renames its own version over sessions.json. OpenClaw 2026.5.12 has no
cross-process lock and does not re-check the file before its rename, so there the later rename
silently wins (docs/compat.md row 25, observed).
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from pathlib import Path

import pytest
from harness.daemon_process import DaemonProcess, clean_env
from harness.state_dirs import read_rows, store_path, write_state_dir

from .live import client, fault_env, run, wait_phase

DAY = 86_400_000


def _rows(now: int) -> dict[str, dict[str, object]]:
    return {
        "agent:main:main": {"sessionId": "s-main", "updatedAt": now - 60_000},
        "agent:main:hook:b": {"sessionId": "s-b", "updatedAt": now - 40 * DAY},  # stale
    }


def _gateway_adds(path: Path, key: str, row: dict[str, object]) -> None:
    """What the OpenClaw gateway does: read, add a row, write a temp file, rename it over."""
    rows = json.loads(path.read_text())
    rows[key] = row
    temp = path.with_name(f".fs-safe-replace.{os.getpid()}.tmp")
    temp.write_text(json.dumps(rows, indent=2))
    os.replace(temp, path)


@pytest.mark.parametrize("daemon_change", ["cleanup removes B", "patch changes B"])
def test_an_external_add_racing_the_daemons_rename(tmp_path: Path, daemon_change: str) -> None:
    now = time.time_ns() // 1_000_000
    root = write_state_dir(tmp_path / "state", {"main": _rows(now)})
    path = store_path(root, "main")
    phase = tmp_path / "phase"
    row_a = {"sessionId": "s-a", "updatedAt": now}
    with DaemonProcess(root, env=fault_env(phase, "after-temp-write:pause", 0.3)) as proc:

        async def go() -> None:
            async with client(proc) as c:
                if daemon_change == "cleanup removes B":
                    change = c.sessions_cleanup(enforce=True)
                else:
                    change = c.sessions_patch(key="agent:main:hook:b", fields={"label": "B2"})
                pending = asyncio.create_task(change)
                await asyncio.to_thread(wait_phase, phase, "after-temp-write")
                started = time.monotonic()
                _gateway_adds(path, "agent:main:a", row_a)
                assert time.monotonic() - started < 0.05
                await pending
                status = (await c.daemon_status()).stores[0]
                assert status.flushes == 1 and status.external_reloads >= 1
                assert status.conflicts == 0  # different keys: nothing to arbitrate

        run(go)

    rows = read_rows(root, "main")
    assert rows["agent:main:a"] == row_a, "the other writer's row was lost"
    if daemon_change == "cleanup removes B":
        assert "agent:main:hook:b" not in rows
    else:
        assert rows["agent:main:hook:b"]["label"] == "B2"
    assert "agent:main:main" in rows


def test_cli_cleanup_goes_through_the_daemon_while_it_writes(tmp_path: Path) -> None:
    now = time.time_ns() // 1_000_000
    root = write_state_dir(tmp_path / "state", {"main": _rows(now)})
    cli_phase = tmp_path / "cli-phase"  # would exist if the CLI itself wrote a store
    env = clean_env()
    acked: list[str] = []

    with DaemonProcess(root, "--token", "T") as proc:
        env.update(
            OPENCLAW_STATE_DIR=str(root),
            HOME=str(root),
            SESSIOND_URL=proc.url,
            OPENCLAW_GATEWAY_TOKEN="T",
            SESSIOND_TEST_FAULT_PHASE=str(cli_phase),
        )

        async def go() -> bytes:
            from sessiond.client import SessiondClient

            async with SessiondClient(proc.url, token="T") as c:
                cli = await asyncio.create_subprocess_exec(
                    str(Path(sys.executable).with_name("sessiond")),
                    *("sessions", "cleanup", "--enforce", "--json"),
                    env=env,
                    stdout=asyncio.subprocess.PIPE,
                    stderr=asyncio.subprocess.PIPE,
                )
                n = 0
                while cli.returncode is None:  # keep writing for the CLI's whole run
                    key = f"agent:main:new:{n}"
                    done = await c.sessions_patch(key=key, fields={"updatedAt": now + n})
                    assert done.durable
                    acked.append(key)
                    n += 1
                    await asyncio.sleep(0.01)
                out, err = await cli.communicate()
                assert cli.returncode == 0, err.decode()
                return out

        result = json.loads(run(go))

    assert result["applied"] is True and result["pruned"] == 1
    assert not cli_phase.exists(), "the CLI wrote sessions.json itself, racing the daemon"
    rows = read_rows(root, "main")
    assert "agent:main:hook:b" not in rows
    print(f"\n{len(acked)} durable patches during the CLI cleanup")
    assert acked and all(key in rows for key in acked), "a write made during the cleanup was lost"
