"""A big cleanup's journal entry names a snapshot instead of holding its removed rows (issue 17).

Through a real daemon on real files: the entry written is a few hundred bytes whatever the
rows weigh; the snapshot (`.sessiond-undo/` in the sessions dir) is the store file as it was
before the apply, byte for byte; it is counted by no dry run (neither OpenClaw's scans nor ours
look into subdirectories); a restore gives the original files back from it; a snapshot someone
deleted makes the entry say why it cannot be restored instead of restoring something else.
"""

from __future__ import annotations

import json
from pathlib import Path

from harness.async_run import run
from harness.daemon_process import DaemonProcess
from harness.state_dirs import store_path, write_state_dir
from sessiond.client import SessiondClient
from sessiond.protocol.cleanup import CleanupSummary

NOW_MS = 1_800_000_000_000
DAY = 86_400_000
ROWS = 40
PAD = 450_000  # 20 stale rows of 450 kB: 9 MB removed, past SNAPSHOT_MIN_BYTES
CONFIG = {"session": {"maintenance": {"mode": "enforce", "pruneAfter": "30d"}}}


def _state(root: Path) -> Path:
    rows = {
        f"agent:main:explicit:r{n}": {
            "sessionId": f"s-{n}",
            "updatedAt": NOW_MS - (40 * DAY if n % 2 else DAY),
            "pad": f"{n:04d}" * (PAD // 4),
        }
        for n in range(ROWS)
    }
    write_state_dir(root, {"main": rows}, CONFIG)
    sessions = store_path(root, "main").parent
    for n in range(ROWS):
        (sessions / f"s-{n}.jsonl").write_text(f'{{"n":{n}}}\n')
    return root


def _files(root: Path) -> dict[str, bytes]:
    sessions = store_path(root, "main").parent
    return {
        p.name: p.read_bytes()
        for p in sessions.iterdir()
        if p.is_file() and not p.name.endswith((".journal", ".sessiond.lock"))
    }


def test_a_big_cleanup_keeps_its_rows_in_the_replaced_store_file(tmp_path: Path) -> None:
    root = _state(tmp_path / "state")
    original = _files(root)
    store = store_path(root, "main")
    with DaemonProcess(root, env={"SESSIOND_NOW_MS": str(NOW_MS)}) as proc:

        async def go() -> None:
            async with SessiondClient(proc.url) as c:
                before = await c.sessions_cleanup(dry_run=True)
                assert isinstance(before, CleanupSummary) and before.pruned == ROWS // 2
                applied = await c.sessions_cleanup()
                assert isinstance(applied, CleanupSummary) and applied.after_count == ROWS // 2
                again = await c.sessions_cleanup(dry_run=True)
                assert isinstance(again, CleanupSummary)
                # The snapshot dir is not a file of the sessions dir: the same files counted
                # as before, less the archived transcripts (still files) and nothing more.
                assert (
                    again.unreferenced_artifacts.scanned_files
                    == before.unreferenced_artifacts.scanned_files
                )
                [entry] = (await c.sessions_cleanups()).entries
                assert entry.restorable and entry.counts.rows_removed == ROWS // 2

                [line, _finish] = Path(str(store) + ".journal").read_text().splitlines()
                begin = json.loads(line)["entry"]
                assert len(line) < 10_000, "the entry holds keys, not 8 MB of rows"
                snapshot = store.parent / begin["snapshot"]
                assert snapshot.parent.name == ".sessiond-undo"
                assert snapshot.read_bytes() == original["sessions.json"]
                assert oct(snapshot.parent.stat().st_mode & 0o777) == "0o700"

                restored = await c.sessions_restore()
                assert restored.restored_rows == ROWS // 2 and restored.conflicts == 0

        run(go)
    assert _files(root) == original


def test_an_entry_whose_snapshot_is_gone_says_so(tmp_path: Path) -> None:
    root = _state(tmp_path / "state")
    store = store_path(root, "main")
    with DaemonProcess(root, env={"SESSIOND_NOW_MS": str(NOW_MS)}) as proc:

        async def go() -> None:
            async with SessiondClient(proc.url) as c:
                await c.sessions_cleanup()
                [line, _finish] = Path(str(store) + ".journal").read_text().splitlines()
                (store.parent / json.loads(line)["entry"]["snapshot"]).unlink()
                [entry] = (await c.sessions_cleanups()).entries
                assert not entry.restorable
                assert entry.why is not None and "snapshot" in entry.why and "gone" in entry.why
                kept = store.read_bytes()
                try:
                    await c.sessions_restore()
                except Exception as exc:  # the client's typed error for -32xxx
                    assert "nothing to restore" in str(exc), exc
                else:
                    raise AssertionError("a restore without its rows went ahead")
                assert store.read_bytes() == kept

        run(go)


def test_only_the_newest_snapshots_are_kept(tmp_path: Path) -> None:
    """Each snapshot costs a whole store on disk: entries past the newest three that hold one
    are dropped with it (their rows could not come back without it)."""
    root = _state(tmp_path / "state")
    store = store_path(root, "main")
    undo = store.parent / ".sessiond-undo"
    with DaemonProcess(root, env={"SESSIOND_NOW_MS": str(NOW_MS)}) as proc:

        async def go() -> None:
            async with SessiondClient(proc.url) as c:
                ids = []
                for _ in range(5):  # clean, restore, clean again: each cleanup a snapshot
                    await c.sessions_cleanup()
                    [newest, *_] = (await c.sessions_cleanups()).entries
                    ids.append(newest.id)
                    await c.sessions_restore()
                listed = {e.id for e in (await c.sessions_cleanups()).entries}
                assert set(ids[-3:]) <= listed and not set(ids[:2]) & listed
                assert sorted(p.name.rsplit(".", 1)[-1] for p in undo.iterdir()) == sorted(
                    i.rsplit(".", 1)[-1] for i in ids[-3:]
                )

        run(go)


def test_a_snapshot_no_entry_names_is_removed_at_start(tmp_path: Path) -> None:
    root = _state(tmp_path / "state")
    store = store_path(root, "main")
    undo = store.parent / ".sessiond-undo"
    undo.mkdir(mode=0o700)
    stray = undo / "sessions.json.20260101T000000.000Z-abcdef"  # its journal deleted by hand
    other = undo / "other.json.20260101T000000.000Z-abcdef"  # another store's: not ours
    stray.write_bytes(b"{}")
    other.write_bytes(b"{}")
    with DaemonProcess(root, env={"SESSIOND_NOW_MS": str(NOW_MS)}) as proc:

        async def go() -> None:
            async with SessiondClient(proc.url) as c:
                await c.sessions_cleanups()  # opens (and recovers) the store's journal

        run(go)
    assert not stray.exists() and other.exists()
