"""Issue 15 through a real daemon: restore, the journal listing, planId, progress, /metrics."""

from __future__ import annotations

import asyncio
import json
import os
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import msgspec
import pytest
from harness.async_run import run
from harness.daemon_process import DaemonProcess
from harness.raw_frames import RpcCallError, RpcClient
from harness.state_dirs import store_path, write_state_dir
from prometheus_client.parser import text_string_to_metric_families
from sessiond.client import KeyNotFoundError, SessiondClient, StalePlanError
from sessiond.protocol.jsonrpc import APP_STALE_PLAN
from sessiond.protocol.undo import ProgressParams

NOW_MS = 1_800_000_000_000
DAY = 86_400_000
CONFIG = {"session": {"maintenance": {"mode": "enforce", "pruneAfter": "30d", "maxEntries": 500}}}


def _state(root: Path, rows: int = 6) -> Path:
    """Half the rows stale (40 days), half fresh, each with its transcript."""
    store = {
        f"agent:main:explicit:r{n}": {
            "sessionId": f"s-{n}",
            "updatedAt": NOW_MS - (40 * DAY if n % 2 else DAY),
            "note": ["kept", n],
        }
        for n in range(rows)
    }
    write_state_dir(root, {"main": store}, CONFIG)
    sessions = store_path(root, "main").parent
    for n in range(rows):
        (sessions / f"s-{n}.jsonl").write_text(f'{{"n":{n}}}\n')
    return root


def _daemon(root: Path) -> DaemonProcess:
    return DaemonProcess(root, env={"SESSIOND_NOW_MS": str(NOW_MS)})


def _files(root: Path) -> dict[str, bytes]:
    sessions = store_path(root, "main").parent
    return {
        p.name: p.read_bytes()
        for p in sorted(sessions.iterdir())
        if p.is_file() and not p.name.endswith((".journal", ".sessiond.lock"))
    }


def test_restore_puts_back_rows_and_transcripts_and_reports_conflicts(tmp_path: Path) -> None:
    root = _state(tmp_path / "state")
    original = _files(root)
    with _daemon(root) as proc:

        async def go() -> None:
            async with SessiondClient(proc.url) as c:
                applied = await c.sessions_cleanup()
                assert applied.pruned == 3
                listing = await c.sessions_cleanups()
                [entry] = listing.entries
                assert entry.kind == "cleanup" and entry.restorable
                assert entry.counts.rows_removed == 3 and entry.counts.files_moved == 3
                # One removed key comes back with other bytes before the restore.
                await c.sessions_patch(key="agent:main:explicit:r1", fields={"new": True})
                preview = await c.sessions_restore(dry_run=True)
                assert preview.dry_run and preview.restored_rows == 2 and preview.conflicts == 1
                assert _files(root) != original, "a dry run restores nothing"
                done = await c.sessions_restore()
                assert done.restored_rows == 2 and done.conflicts == 1 and done.journal_id
                outcome = {k.key: k.outcome for k in done.keys}
                assert outcome["agent:main:explicit:r1"] == "conflict"
                again = await c.sessions_cleanups()
                assert again.entries[0].kind == "restore"
                assert again.entries[1].restored_by == done.journal_id
                assert not again.entries[1].restorable
                # Undoing the restore is a cleanup of what it put back; undoing that again
                # gives the restored state back.
                await c.sessions_restore(id=done.journal_id)
                assert "agent:main:explicit:r3" not in json.loads(
                    store_path(root, "main").read_text()
                )
                await c.sessions_restore()

        run(go)
    rows = json.loads(store_path(root, "main").read_text())
    assert rows["agent:main:explicit:r1"] == {"new": True}
    back = _files(root)
    assert back["s-3.jsonl"] == original["s-3.jsonl"] and back["s-5.jsonl"] == original["s-5.jsonl"]
    assert "s-1.jsonl" not in back, "the conflicting key's transcript stays archived"


def test_delete_is_journaled_and_restored_byte_for_byte(tmp_path: Path) -> None:
    root = _state(tmp_path / "state", rows=3)
    original = _files(root)
    with _daemon(root) as proc:

        async def go() -> None:
            async with SessiondClient(proc.url) as c:
                gone = await c.sessions_delete(key="agent:main:explicit:r1")
                assert gone.archived
                back = await c.sessions_restore()
                assert back.restored_rows == 1 and back.renamed_files == 1

        run(go)
    assert _files(root) == original


def test_stale_plan_id_is_refused_with_counts_and_a_fresh_one_applies(tmp_path: Path) -> None:
    root = _state(tmp_path / "state")
    with _daemon(root) as proc:

        async def go() -> None:
            async with SessiondClient(proc.url) as c:
                preview = await c.sessions_cleanup(dry_run=True)
                assert isinstance(preview.plan_id, str)
                # A patch to a row the plan keeps does not change the plan.
                await c.sessions_patch(key="agent:main:explicit:r0", fields={"seen": 1})
                same = await c.sessions_cleanup(dry_run=True)
                assert same.plan_id != preview.plan_id  # the generation moved...
                assert same.plan_id.split("-")[2] == preview.plan_id.split("-")[2]  # ...not it
                # A patch that makes a stale row fresh changes it: refused, with the diff.
                await c.sessions_patch(
                    key="agent:main:explicit:r1", fields={"updatedAt": NOW_MS - 1000}
                )
                with pytest.raises(StalePlanError) as refused:
                    await c.sessions_cleanup(plan_id=preview.plan_id)
                assert refused.value.code == APP_STALE_PLAN
                data = refused.value.data
                assert data["actions"] == {
                    "prune-stale": {"previewed": 3, "now": 2},
                    "archive": {"previewed": 3, "now": 2},
                }
                assert data["storeChanged"] is True
                assert len(json.loads(store_path(root, "main").read_text())) == 6
                fresh = await c.sessions_cleanup(dry_run=True)
                applied = await c.sessions_cleanup(plan_id=fresh.plan_id)
                assert applied.pruned == 2

        run(go)


def test_unchanged_plan_id_applies_after_a_patch_that_keeps_the_plan(tmp_path: Path) -> None:
    root = _state(tmp_path / "state")
    with _daemon(root) as proc:

        async def go() -> None:
            async with SessiondClient(proc.url) as c:
                preview = await c.sessions_cleanup(dry_run=True)
                await c.sessions_patch(key="agent:main:explicit:r2", fields={"seen": 2})
                applied = await c.sessions_cleanup(plan_id=preview.plan_id)
                assert applied.pruned == 3

        run(go)


def test_progress_on_a_10k_row_store(tmp_path: Path) -> None:
    root = _state(tmp_path / "state", rows=10_000)
    with _daemon(root) as proc:

        async def go() -> list[Any]:
            async with await RpcClient.connect(proc.url) as c:
                result = await c.call("sessions.cleanup", {"progressToken": "t-1"})
                # 5000 stale rows pruned, then maxEntries (500) caps the 5000 fresh ones.
                assert (result.pruned, result.capped) == (5_000, 4_500)
                steps = []
                while not c.notifications.empty():
                    note = c.notifications.get_nowait()
                    if note.method == "$/progress":
                        steps.append(note.params)
                return steps

        steps = run(go)
    values = [msgspec.convert(s, ProgressParams).value for s in steps]
    assert all(s["token"] == "t-1" for s in steps)
    kinds = [v.kind for v in values]
    assert kinds[0] == "begin" and kinds[-1] == "end", kinds
    assert kinds.count("begin") == 1 and kinds.count("end") == 1
    reports = [v for v in values if v.kind == "report"]
    assert reports, "at least one report"
    assert values[0].total == 10_000
    assert {r.stage for r in reports} >= {"plan", "journal", "commit", "files"}
    for report in reports:
        assert report.done is not None and report.total is not None
        assert 0 <= report.done <= report.total
    files = [r for r in reports if r.stage == "files"]
    assert files[-1].done == files[-1].total == 9_500  # one archive per removed row


def _scrape(port: int, token: str | None = None) -> dict[tuple[str, tuple[Any, ...]], float]:
    request = urllib.request.Request(f"http://127.0.0.1:{port}/metrics")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    with urllib.request.urlopen(request, timeout=5) as resp:
        assert resp.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        text = resp.read().decode()
    samples: dict[tuple[str, tuple[Any, ...]], float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def test_metrics_parse_and_move(tmp_path: Path) -> None:
    root = _state(tmp_path / "state")
    store = str(store_path(root, "main"))
    labels = (("agent", "main"), ("store", store))
    with _daemon(root) as proc:
        before = _scrape(proc.port)
        assert before[("sessiond_store_rows", labels)] == 6
        assert before[("sessiond_flushes_total", labels)] == 0

        async def go() -> None:
            async with SessiondClient(proc.url) as c:
                await c.sessions_patch(key="agent:main:explicit:x", fields={"a": 1})
                await c.sessions_cleanup()
                with pytest.raises(KeyNotFoundError):
                    await c.sessions_get(key="agent:main:nope")

        run(go)
        after = _scrape(proc.port)
    ok = (("method", "sessions.patch"), ("outcome", "ok"))
    assert after[("sessiond_requests_total", ok)] == 1
    err = (("method", "sessions.get"), ("outcome", "error"))
    assert after[("sessiond_requests_total", err)] == 1
    assert (
        after[("sessiond_request_duration_seconds_count", (("method", "sessions.cleanup"),))] == 1
    )
    assert after[("sessiond_flushes_total", labels)] >= 2
    assert after[("sessiond_flush_duration_seconds_count", ())] >= 2
    assert after[("sessiond_store_rows", labels)] == 4
    assert after[("sessiond_store_bytes", labels)] == os.path.getsize(store)
    assert after[("sessiond_cleanup_rows_removed_total", (("action", "prune-stale"),))] == 3
    assert after[("sessiond_cleanup_files_archived_total", ())] == 3
    assert after[("sessiond_journal_entries", labels)] == 1
    assert after[("sessiond_journal_entries_written_total", ())] == 1
    assert after[("sessiond_stale_writes_repaired_total", labels)] == 0


def test_metrics_follow_the_upgrade_token_rule(tmp_path: Path) -> None:
    root = _state(tmp_path / "state")
    with DaemonProcess(root, "--token", "s3cret") as proc:
        for token, status in ((None, 401), ("wrong", 401), ("s3cret", 200)):
            request = urllib.request.Request(f"http://127.0.0.1:{proc.port}/metrics")
            if token:
                request.add_header("Authorization", f"Bearer {token}")
            try:
                with urllib.request.urlopen(request, timeout=5) as resp:
                    got = resp.status
            except urllib.error.HTTPError as exc:
                got = exc.code
            assert got == status, token

        async def clients() -> dict[tuple[str, tuple[Any, ...]], float]:
            async with await RpcClient.connect(proc.url, "s3cret") as c:
                await c.call("daemon.status")  # the first frame decides the dialect
                return await asyncio.to_thread(_scrape, proc.port, "s3cret")

        seen = run(clients)
    assert seen[("sessiond_connected_clients", (("dialect", "jsonrpc"),))] == 1


def test_raw_progress_errors_are_rpc_errors(tmp_path: Path) -> None:
    """A malformed planId is an invalid-params error, not a crash."""
    root = _state(tmp_path / "state")
    with _daemon(root) as proc:

        async def go() -> None:
            async with await RpcClient.connect(proc.url) as c:
                with pytest.raises(RpcCallError) as bad:
                    await c.call("sessions.cleanup", {"planId": "nonsense"})
                assert bad.value.code == -32602

        run(go)


def test_a_started_daemon_has_planned_once_and_keeps_a_listing_a_tenth_of_a_second_old(
    tmp_path: Path,
) -> None:
    """The daemon makes one dry run of each store before it listens (so the first client's
    plan finds the index built), and keeps the listing of a dir last changed more than a
    tenth of a second before it was read, not git's two seconds: its own lock file changed
    the sessions dir at start, and the second dry run here, well within two seconds of that,
    still reads no dir."""
    root = _state(tmp_path / "state")
    with _daemon(root) as proc:
        started = _scrape(proc.port)
        assert started[("sessiond_dir_reads_total", ())] >= 1  # made before it listened
        time.sleep(0.15)

        async def dry_run(c: SessiondClient) -> tuple[Any, dict[Any, float]]:
            return await c.sessions_cleanup(dry_run=True), _scrape(proc.port)

        async def go() -> list[tuple[Any, dict[Any, float]]]:
            async with SessiondClient(proc.url) as c:
                return [await dry_run(c), await dry_run(c)]

        (first, after_first), (second, after_second) = run(go)
    assert first == second and first.would_mutate
    reads = ("sessiond_dir_reads_total", ())
    assert after_second[reads] == after_first[reads]
    saved = ("sessiond_dir_reads_saved_total", ())
    assert after_second[saved] > after_first[saved]
