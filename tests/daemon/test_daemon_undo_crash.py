"""SIGKILL at each step of a journaled apply and of a restore (issue 15).

The daemon pauses at a named fault point (daemon/fault_hooks.py `fault_point`, hooked by
SESSIOND_TEST_FAULT_HOOK) and is killed there. The next start closes the unfinished journal
entry: finished when its store write landed, rolled back when not. Then the store, the files
and the journal agree (every row's transcript at its name, every removed row's transcript
archived, no entry left open), and a restore of the completed cleanup still gives back the
original state dir.

Each runs twice: with small rows, whose entry holds them, and with rows big enough (3 MB each)
that the entry names a snapshot instead, the store version its write replaced
(daemon/journal.py `SNAPSHOT_MIN_BYTES`).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
from pathlib import Path

import pytest
from harness.async_run import run
from harness.daemon_process import DaemonProcess
from harness.state_dirs import store_path, write_state_dir
from regressions.live import fault_env, wait_phase
from sessiond.client import ConnectionLostError, SessiondClient

NOW_MS = 1_800_000_000_000
DAY = 86_400_000
CONFIG = {"session": {"maintenance": {"mode": "enforce", "pruneAfter": "30d"}}}
ROWS = 6
PAD = {"small": 0, "big": 3 << 20}

APPLY_POINTS = {
    "journal-begin": "rolled-back",
    "temp-open": "rolled-back",
    "before-fsync": "rolled-back",
    "after-temp-write": "rolled-back",
    "after-precheck": "rolled-back",
    "after-rename": "done",
    "durable": "done",
    "after-archive": "done",
    "after-unlink": "done",
    "journal-finish": "done",
}
RESTORE_POINTS = {
    "journal-begin": "rolled-back",
    "after-archive": "rolled-back",  # renames back come first; the store write has not landed
    "temp-open": "rolled-back",
    "after-precheck": "rolled-back",
    "after-rename": "done",
    "durable": "done",
    "journal-finish": "done",
}


def _state(root: Path, size: str = "small") -> Path:
    rows: dict[str, dict[str, object]] = {
        f"agent:main:explicit:r{n}": {
            "sessionId": f"s-{n}",
            "updatedAt": NOW_MS - (40 * DAY if n % 2 else DAY),
        }
        for n in range(ROWS)
    }
    if PAD[size]:
        for n, row in enumerate(rows.values()):
            row["pad"] = chr(ord("a") + n) * PAD[size]
    write_state_dir(root, {"main": rows}, CONFIG)
    sessions = store_path(root, "main").parent
    for n in range(ROWS):
        (sessions / f"s-{n}.jsonl").write_text(f'{{"n":{n}}}\n')
    orphan = sessions / "orphan.jsonl"  # swept: the apply's one unlink
    orphan.write_text("{}\n")
    old = (NOW_MS - 60 * DAY) / 1000
    os.utime(orphan, (old, old))
    return root


def _files(root: Path) -> dict[str, bytes]:
    sessions = store_path(root, "main").parent
    return {
        p.name: p.read_bytes()
        for p in sessions.iterdir()
        if p.is_file()
        and not p.name.endswith((".journal", ".sessiond.lock"))
        and not p.name.startswith(".")
    }


def _journal(root: Path) -> list[dict[str, object]]:
    path = Path(str(store_path(root, "main")) + ".journal")
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines()]


def _states(root: Path) -> dict[str, str]:
    """Entry id -> its state in the journal file (`pending` when it never finished)."""
    states: dict[str, str] = {}
    for record in _journal(root):
        if record["type"] == "begin":
            entry = record["entry"]
            assert isinstance(entry, dict)
            states[str(entry["id"])] = "pending"
        else:
            states[str(record["id"])] = str(record["state"])
    return states


def _agree(root: Path) -> None:
    """Every row's transcript at its name; every other session's archived; nothing open."""
    rows = json.loads(store_path(root, "main").read_text())
    names = set(_files(root))
    for n in range(ROWS):
        key, transcript = f"agent:main:explicit:r{n}", f"s-{n}.jsonl"
        archived = any(name.startswith(f"{transcript}.deleted.") for name in names)
        if key in rows:
            assert transcript in names and not archived, (key, sorted(names))
        else:
            assert transcript not in names and archived, (key, sorted(names))
    assert "pending" not in _states(root).values(), _journal(root)


def _daemon(root: Path, hook: str | None = None, phase: Path | None = None) -> DaemonProcess:
    env = {"SESSIOND_NOW_MS": str(NOW_MS)}
    if hook is not None and phase is not None:
        env.update(fault_env(phase, f"{hook}:pause"))
    return DaemonProcess(root, env=env)


def _kill_during(root: Path, phase: Path, point: str, method: str) -> None:
    proc = _daemon(root, point, phase)
    try:

        async def go() -> None:
            async with SessiondClient(proc.url, connect_timeout=5.0) as c:
                call = c.sessions_cleanup() if method == "cleanup" else c.sessions_restore()
                pending = asyncio.ensure_future(call)
                await asyncio.to_thread(wait_phase, phase, point)
                proc.send(signal.SIGKILL)
                with pytest.raises(ConnectionLostError):
                    await pending

        run(go)
    finally:
        assert proc.stop() == -signal.SIGKILL


async def _restore_last(proc: DaemonProcess) -> None:
    async with SessiondClient(proc.url) as c:
        await c.sessions_restore()


def _snapshots(root: Path) -> list[str]:
    """The snapshot each begin record names, and whether its file is there."""
    named = []
    for record in _journal(root):
        entry = record.get("entry")
        if isinstance(entry, dict) and entry.get("snapshot"):
            there = (store_path(root, "main").parent / str(entry["snapshot"])).is_file()
            named.append(f"{entry['snapshot']}: {'there' if there else 'gone'}")
    return named


@pytest.mark.parametrize("size", sorted(PAD))
@pytest.mark.parametrize("point", sorted(APPLY_POINTS))
def test_sigkill_during_an_apply(point: str, size: str, tmp_path: Path) -> None:
    root = _state(tmp_path / "state", size)
    original = _files(root)
    _kill_during(root, tmp_path / "phase", point, "cleanup")
    with _daemon(root) as proc:  # the start closes the entry
        [state] = _states(root).values()
        assert state == APPLY_POINTS[point]
        _agree(root)
        snapshots = _snapshots(root)
        if size == "small":
            assert snapshots == [], snapshots
        else:
            [named] = snapshots
            # a write that never landed leaves no snapshot behind; one that did keeps it
            assert named.endswith(": there" if state == "done" else ": gone"), named
        if state == "done":
            assert "orphan.jsonl" not in _files(root), "the apply's unlink was finished"
            run(lambda: _restore_last(proc))
            _agree(root)
    expected = {k: v for k, v in original.items() if state == "rolled-back" or k != "orphan.jsonl"}
    assert _files(root) == expected


@pytest.mark.parametrize("size", sorted(PAD))
@pytest.mark.parametrize("point", sorted(RESTORE_POINTS))
def test_sigkill_during_a_restore(point: str, size: str, tmp_path: Path) -> None:
    root = _state(tmp_path / "state", size)
    original = _files(root)
    original.pop("orphan.jsonl")  # deleted outright by the cleanup: it cannot come back
    with _daemon(root) as proc:

        async def clean() -> None:
            async with SessiondClient(proc.url) as c:
                await c.sessions_cleanup()

        run(clean)
    cleaned = _files(root)
    _kill_during(root, tmp_path / "phase", point, "restore")
    with _daemon(root) as proc:
        states = list(_states(root).values())
        assert states == ["done", RESTORE_POINTS[point]]
        _agree(root)
        if RESTORE_POINTS[point] == "rolled-back":
            assert _files(root) == cleaned, "a rolled-back restore leaves the cleaned state"
            run(lambda: _restore_last(proc))  # the completed cleanup still restores
            _agree(root)
    assert _files(root) == original
