"""Restart preserves everything (OpenClaw #66522, #76681).

Guarantee: N sessions created through the daemon, each with its `sessionFile`, plus rows with
fields sessiond does not know, survive a SIGKILL and a SIGTERM restart byte for byte, and a
following check (`sessions cleanup --dry-run --fix-missing`, OpenClaw's `doctor` question) finds
no missing transcript and no orphan.
"""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import msgspec
from harness.daemon_process import DaemonProcess, clean_env
from harness.state_dirs import store_path, write_state_dir
from sessiond.engine.store import load_store_bytes

from .live import client, run

N = 300
# Rows sessiond did not write: tokens (2.50, 1E3, escapes), unknown and migrated fields.
FOREIGN = (
    '{"agent:main:foreign":{"sessionId":"s-foreign","updatedAt":%d,"acp":{"v":2.50,"n":1E3},'
    '"provider":"Telegram","room":"r","skillsSnapshot":{"resolvedSkills":["a"]},'
    '"label":"\\u00e9t\\u00e9 \\ud83d\\ude00","origin":null}}'
)


def _rows_on_disk(path: Path) -> dict[str, bytes]:
    store = load_store_bytes(path.read_bytes(), str(path))
    return {k: msgspec.json.format(bytes(v), indent=0) for k, v in store.rows.items()}


async def _rows_served(proc: DaemonProcess, keys: list[str]) -> dict[str, bytes]:
    async with client(proc) as c:
        page = await c.sessions_list(limit=1000)
        assert page.total_count == len(keys) and not page.has_more
        got = await asyncio.gather(*(c.sessions_get(key=k) for k in keys))
        return {g.key: msgspec.json.format(bytes(g.entry), indent=0) for g in got}


def test_n_sessions_survive_kill_and_term_restarts(tmp_path: Path) -> None:
    now = time.time_ns() // 1_000_000
    root = write_state_dir(tmp_path / "state", {"main": {}})
    path = store_path(root, "main")
    path.write_text(FOREIGN % now)
    sessions = path.parent
    (sessions / "s-foreign.jsonl").write_text('{"type":"session"}\n')

    proc = DaemonProcess(root)

    async def create() -> None:
        async with client(proc) as c:

            async def one(n: int) -> bool:
                transcript = sessions / f"s-{n:04d}.jsonl"
                transcript.write_text('{"type":"session"}\n{"type":"message"}\n')
                fields = {
                    "sessionId": f"s-{n:04d}",
                    "sessionFile": str(transcript),
                    "updatedAt": now - n,
                    "chatType": "direct" if n % 2 else "group",
                    "origin": {"provider": "telegram", "to": f"user-{n}"},
                }
                done = await c.sessions_patch(key=f"agent:main:explicit:{n:04d}", fields=fields)
                return done.durable

            assert all(await asyncio.gather(*(one(n) for n in range(N))))

    run(create)
    durable = path.read_bytes()
    keys = list(_rows_on_disk(path))
    assert len(keys) == N + 1
    assert b'"v": 2.50' in durable and b'"n": 1E3' in durable and b"\\ud83d\\ude00" in durable
    assert proc.stop(signal.SIGKILL) == -signal.SIGKILL

    for stop in (signal.SIGTERM, signal.SIGKILL):
        proc = DaemonProcess(root)
        served = asyncio.run(_rows_served(proc, keys))
        assert proc.stop(stop) == (0 if stop == signal.SIGTERM else -signal.SIGKILL)
        assert path.read_bytes() == durable, "a restart rewrote the store"
        assert served == _rows_on_disk(path)

    for key, row in json.loads(durable).items():
        if key != "agent:main:foreign":
            assert Path(row["sessionFile"]).is_file()

    env = clean_env()
    env.update(OPENCLAW_STATE_DIR=str(root), HOME=str(root))
    exe = str(Path(sys.executable).with_name("sessiond"))
    doctor = subprocess.run(
        [exe, "sessions", "cleanup", "--dry-run", "--fix-missing", "--json", "--local"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert doctor.returncode == 0, doctor.stderr
    report = json.loads(doctor.stdout)
    assert report["missing"] == 0
    assert report["unreferencedArtifacts"]["removedFiles"] == 0
    assert report["beforeCount"] == report["afterCount"] == N + 1
