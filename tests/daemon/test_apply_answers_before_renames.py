"""A big apply answers once its store write is durable; renames still running then finish after.

With every rename slowed down (the `after-archive` pause) an apply of 1,200 stale rows
cannot rename their transcripts within its answer budget: it must answer with the figures its
dry run promised, while the renames go on; the journal entry stays open until they are done
and is then closed with all of them; a dry run sent meanwhile waits for them and finds nothing
left to do; and a restore afterwards puts every row and transcript back.
"""

from __future__ import annotations

import json
from pathlib import Path

from harness.async_run import run
from harness.daemon_process import DaemonProcess
from harness.state_dirs import store_path, write_state_dir
from sessiond.client import SessiondClient

NOW_MS = 1_800_000_000_000
DAY = 86_400_000
ROWS = 1_200
CONFIG = {"session": {"maintenance": {"mode": "enforce", "pruneAfter": "30d", "maxEntries": 5000}}}


def _state(root: Path) -> dict[str, bytes]:
    store = {
        f"agent:main:explicit:r{n}": {"sessionId": f"s-{n}", "updatedAt": NOW_MS - 40 * DAY}
        for n in range(ROWS)
    }
    store["agent:main:explicit:fresh"] = {"sessionId": "fresh", "updatedAt": NOW_MS - DAY}
    write_state_dir(root, {"main": store}, CONFIG)
    sessions = store_path(root, "main").parent
    for n in range(ROWS):
        (sessions / f"s-{n}.jsonl").write_text(f'{{"n":{n}}}\n')
    return {p.name: p.read_bytes() for p in sessions.iterdir() if p.name.startswith("s-")}


def test_a_big_apply_answers_before_its_renames_and_closes_its_entry_after(tmp_path: Path) -> None:
    root = tmp_path / "state"
    transcripts = _state(root)
    sessions = store_path(root, "main").parent
    env = {
        "SESSIOND_NOW_MS": str(NOW_MS),
        "SESSIOND_TEST_FAULT_HOOK": "after-archive:pause",
        "SESSIOND_TEST_FAULT_PAUSE": "0.002",  # 1,200 renames: well past the 1 s budget
    }
    with DaemonProcess(root, env=env) as proc:

        async def go() -> None:
            async with SessiondClient(proc.url) as c:
                preview = await c.sessions_cleanup(dry_run=True)
                applied = await c.sessions_cleanup(plan_id=preview.plan_id)
                assert (applied.pruned, applied.after_count) == (ROWS, 1)
                assert preview.pruned == ROWS and preview.after_count == 1
                # Answered with renames to go: the store is written, the entry still open.
                assert list(json.loads(store_path(root, "main").read_text())) == [
                    "agent:main:explicit:fresh"
                ]
                still = sum(1 for n in range(ROWS) if (sessions / f"s-{n}.jsonl").exists())
                assert still > 0, "every rename was done before the answer"
                # A preview waits for them, then has nothing left to do.
                after = await c.sessions_cleanup(dry_run=True)
                assert after.pruned == 0 and not after.would_mutate
                assert not any((sessions / f"s-{n}.jsonl").exists() for n in range(ROWS))
                [entry] = (await c.sessions_cleanups()).entries
                assert entry.state == "done" and entry.counts.files_moved == ROWS
                back = await c.sessions_restore()
                assert back.restored_rows == ROWS and back.renamed_files == ROWS

        run(go)
    assert len(json.loads(store_path(root, "main").read_text())) == ROWS + 1
    assert {
        p.name: p.read_bytes() for p in sessions.iterdir() if p.name.startswith("s-")
    } == transcripts
