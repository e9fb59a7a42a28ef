"""A writer that had not seen a write cannot take it back (OpenClaw #51553, #70643, #32191,
#15225, #73655).

Guarantee: a row sessiond answered `durable: true` stays on disk and in memory when another
process renames over sessions.json a file built on an older read (#51553, #70643, #32191: the
gateway's read-modify-write races and last-writer-wins losses), however old that read is within
the stated window (#15225, #73655: 15-66 s from read to rename on a 114 MB store); every outside
writer's own change is kept too; a deletion or change made after a fresh read still wins (by the
conflict rule when sessiond changed the same row); and no read ever shows the stale rows.

Each outside writer here does what the OpenClaw gateway does: read sessions.json, change its
copy, write a temp file and rename it over the store, with no lock. Its read is held while the
daemon writes, which is what "old" means here; the mechanism does not look at the read's age,
only at what the file shows it was built on (and, where it shows nothing, at a 120 s window the
read-to-rename is assumed to stay within), so the 10 s and 40 s cases need not wait 40 s.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from pathlib import Path
from typing import Any

import pytest
from harness.daemon_process import DaemonProcess
from harness.raw_frames import RpcCallError, RpcClient
from harness.state_dirs import read_rows, store_path, write_state_dir

from .live import fault_env, run, until, wait_phase

ROUNDS = 20


def rpc(n: int) -> str:
    return f"agent:main:rpc:{n}"


def ext(n: int) -> str:
    return f"agent:main:ext:{n}"


class OutsideWriter:
    """Reads the store, keeps its copy, later renames its changed copy over the store."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.rows: dict[str, Any] = {}
        self.saves = 0

    def read(self) -> None:
        self.rows = json.loads(self.path.read_text())

    def save(self) -> None:
        self.saves += 1
        temp = self.path.with_name(f".outside-writer.{os.getpid()}.{self.saves}.tmp")
        temp.write_text(json.dumps(self.rows, indent=2))
        os.replace(temp, self.path)


async def settled(c: RpcClient, path: Path) -> None:
    """Wait until the daemon serves exactly the file and has nothing left to write: it has
    loaded the last outside save (which differs from what it served) and written any repair."""

    async def calm() -> bool:
        status = await c.call("daemon.status")
        if status.stores[0].dirty:
            return False
        try:
            return await memory_rows(c) == json.loads(path.read_text())
        except RpcCallError:  # a row listed, then gone before its get: not settled yet
            return False

    await until(calm, timeout=10)


async def memory_rows(c: RpcClient) -> dict[str, Any]:
    page = await c.call("sessions.list", {"limit": 1000})
    rows = {}
    for summary in page.sessions:
        got = await c.call("sessions.get", {"key": summary.key})
        rows[summary.key] = json.loads(bytes(got.entry))
    return rows


def logged(proc: DaemonProcess, event: str) -> list[dict[str, Any]]:
    return [e for e in proc.log_events() if e.get("event") == event]


class Watcher:
    """A reader throughout: every list and every notification checked against the acks."""

    def __init__(self) -> None:
        self.acked: dict[str, Any] = {}  # key -> the row sessiond acknowledged (None: deleted)
        self.lists = 0
        self.stale_reads: list[str] = []
        self.notes: list[dict[str, Any]] = []

    async def run(self, url: str, stop: asyncio.Event) -> None:
        async with await RpcClient.connect(url) as c:
            await c.call("sessions.subscribe", {})
            while not stop.is_set():
                expected = dict(self.acked)
                page = await c.call("sessions.list", {"limit": 1000})
                keys = {s.key for s in page.sessions}
                self.lists += 1
                for key, row in expected.items():
                    if (row is None) == (key in keys):
                        self.stale_reads.append(f"list {self.lists}: {key}")
                while not c.notifications.empty():
                    self.notes.append(c.notifications.get_nowait().params)
                await asyncio.sleep(0.003)
            while not c.notifications.empty():
                self.notes.append(c.notifications.get_nowait().params)

    def external_notes_naming(self, prefix: str) -> list[Any]:
        return [
            n
            for n in self.notes
            if n["reason"] in ("external", "conflict")
            and any(k.startswith(prefix) for k in n["keys"])
        ]


def start(tmp_path: Path, rows: dict[str, Any]) -> tuple[Path, Path]:
    root = write_state_dir(tmp_path / "state", {"main": rows})
    return root, store_path(root, "main")


# ---------------------------------------------------------------- the 20-round scenario (#51553)


@pytest.mark.parametrize("daemon_does", ["adds rows", "changes rows", "deletes rows"])
def test_twenty_rounds_of_a_writer_that_read_a_few_ms_earlier(
    tmp_path: Path, daemon_does: str
) -> None:
    """Each round: the outside writer reads; sessiond writes rpc:N (durable); the writer adds
    ext:N to what it read and renames it over the store. 0.3 s between rounds."""
    initial: dict[str, Any] = {"agent:main:main": {"sessionId": "s-main", "updatedAt": 1}}
    if daemon_does != "adds rows":
        initial.update({rpc(n): {"updatedAt": 10, "v": "old"} for n in range(ROUNDS)})
    root, path = start(tmp_path, initial)
    writer = OutsideWriter(path)
    watcher = Watcher()
    with DaemonProcess(root) as proc:

        async def go() -> dict[str, Any]:
            stop = asyncio.Event()
            reader = asyncio.create_task(watcher.run(proc.url, stop))
            async with await RpcClient.connect(proc.url) as c:
                for n in range(ROUNDS):
                    writer.read()
                    if daemon_does == "deletes rows":
                        done = await c.call("sessions.delete", {"key": rpc(n)})
                        assert done.deleted and done.durable
                        watcher.acked[rpc(n)] = None
                    else:
                        fields = {"updatedAt": 1000 + n, "v": "daemon"}
                        done = await c.call("sessions.patch", {"key": rpc(n), "fields": fields})
                        assert done.durable
                        watcher.acked[rpc(n)] = json.loads(bytes(done.entry))
                    writer.rows[ext(n)] = {"updatedAt": 2000 + n, "v": "outside"}
                    writer.save()
                    await asyncio.sleep(0.3)
                await settled(c, path)
                stop.set()
                await reader
                return {"memory": await memory_rows(c), "status": await c.call("daemon.status")}

        seen = run(go)
    on_disk = read_rows(root, "main")
    assert on_disk == seen["memory"]
    lost = [k for k, row in watcher.acked.items() if on_disk.get(k) != row]
    assert lost == [], f"acknowledged writes lost: {lost}"
    assert all(on_disk[ext(n)] == {"updatedAt": 2000 + n, "v": "outside"} for n in range(ROUNDS))
    assert on_disk["agent:main:main"] == initial["agent:main:main"]
    status = seen["status"]
    repairs = logged(proc, "stale write repaired")
    assert status.stale_writes_repaired == status.stores[0].stale_writes_repaired == len(repairs)
    assert len(repairs) >= ROUNDS, "every round's stale save took back a durable write"
    assert {r["key"] for r in repairs} <= {rpc(n) for n in range(ROUNDS)}
    assert status.conflicts == 0
    assert watcher.lists > 0 and watcher.stale_reads == [], watcher.stale_reads[:5]
    assert watcher.external_notes_naming("agent:main:rpc:") == []


def test_the_outside_writer_deletes_its_own_rows_after_fresh_reads(tmp_path: Path) -> None:
    """Its deletions are real (it read the rows it deletes), even while sessiond writes."""
    root, path = start(tmp_path, {ext(n): {"updatedAt": 5, "v": "outside"} for n in range(ROUNDS)})
    writer = OutsideWriter(path)
    with DaemonProcess(root) as proc:

        async def go() -> None:
            async with await RpcClient.connect(proc.url) as c:
                for n in range(ROUNDS):
                    writer.read()
                    fields = {"updatedAt": 1000 + n}
                    assert (
                        await c.call("sessions.patch", {"key": rpc(n), "fields": fields})
                    ).durable
                    del writer.rows[ext(n)]
                    writer.save()
                    await asyncio.sleep(0.3)
                await settled(c, path)

        run(go)
    on_disk = read_rows(root, "main")
    assert sorted(on_disk) == sorted(rpc(n) for n in range(ROUNDS))


# --------------------------------------------------------- reads 0 ms to 40 s old (#15225, #73655)


@pytest.mark.parametrize(
    ("age", "daemon_writes", "wait_s"),
    [("0 ms", 0, 0.0), ("50 ms", 1, 0.05), ("1 s", 3, 1.0), ("10 s", 10, 0.0), ("40 s", 40, 0.0)],
)
def test_a_writer_whose_read_is_older_than_its_rename(
    tmp_path: Path, age: str, daemon_writes: int, wait_s: float
) -> None:
    initial = {
        "agent:main:main": {"sessionId": "s-main", "updatedAt": 1},
        "agent:main:keep": {"updatedAt": 2, "v": "old"},
    }
    root, path = start(tmp_path, initial)
    writer = OutsideWriter(path)
    with DaemonProcess(root) as proc:

        async def go() -> Any:
            async with await RpcClient.connect(proc.url) as c:
                writer.read()
                started = time.monotonic()
                acked = {}
                for n in range(daemon_writes):
                    key = rpc(n) if n % 2 == 0 else "agent:main:keep"
                    fields = {"updatedAt": 100 + n, "v": f"daemon {n}"}
                    done = await c.call("sessions.patch", {"key": key, "fields": fields})
                    assert done.durable
                    acked[key] = json.loads(bytes(done.entry))
                await asyncio.sleep(max(0.0, wait_s - (time.monotonic() - started)))
                writer.rows[ext(0)] = {"updatedAt": 50, "v": "outside"}
                writer.save()
                await settled(c, path)
                return acked, await c.call("daemon.status")

        acked, status = run(go)
    on_disk = read_rows(root, "main")
    assert {k: on_disk.get(k) for k in acked} == acked, f"read {age} old took back a durable write"
    assert on_disk[ext(0)] == {"updatedAt": 50, "v": "outside"}
    assert on_disk["agent:main:main"] == initial["agent:main:main"]
    assert status.stale_writes_repaired == len(acked)  # each acked row was missing or older
    assert status.conflicts == 0


# ---------------------------------------------------- what a fresh read does still counts (#51553)


def test_a_deletion_after_a_fresh_read_deletes(tmp_path: Path) -> None:
    initial = {
        "agent:main:old": {"updatedAt": 1},
        "agent:main:x": {"updatedAt": 2},
    }
    root, path = start(tmp_path, initial)
    writer = OutsideWriter(path)
    with DaemonProcess(root) as proc:

        async def go() -> None:
            async with await RpcClient.connect(proc.url) as c:
                # A row sessiond changed, then a later write of sessiond's that the file shows.
                await c.call("sessions.patch", {"key": "agent:main:x", "fields": {"v": 1}})
                await c.call("sessions.patch", {"key": "agent:main:y", "fields": {"v": 2}})
                writer.read()  # fresh: it holds y as sessiond wrote it
                del writer.rows["agent:main:x"]
                del writer.rows["agent:main:old"]  # a row sessiond never changed
                writer.save()
                await settled(c, path)

        run(go)
    assert read_rows(root, "main") == {"agent:main:y": {"v": 2}}
    assert logged(proc, "stale write repaired") == []


@pytest.mark.parametrize(("file_updated_at", "winner"), [(3000, "daemon"), (9000, "external")])
def test_a_real_change_to_a_row_sessiond_also_changed_follows_the_conflict_rule(
    tmp_path: Path, file_updated_at: int, winner: str
) -> None:
    """The writer read before sessiond's durable write of x and changed x itself: both sides
    changed it, so the rule decides (the daemon wins only with a greater `updatedAt`)."""
    root, path = start(tmp_path, {"agent:main:x": {"updatedAt": 1, "v": "first"}})
    writer = OutsideWriter(path)
    with DaemonProcess(root) as proc:

        async def go() -> Any:
            async with await RpcClient.connect(proc.url) as c:
                writer.read()
                fields = {"updatedAt": 5000, "v": "daemon"}
                assert (
                    await c.call("sessions.patch", {"key": "agent:main:x", "fields": fields})
                ).durable
                writer.rows["agent:main:x"] = {"updatedAt": file_updated_at, "v": "outside"}
                writer.save()
                await settled(c, path)
                return await c.call("daemon.status")

        status = run(go)
    expected_v = "daemon" if winner == "daemon" else "outside"
    assert read_rows(root, "main")["agent:main:x"]["v"] == expected_v
    conflicts = logged(proc, "conflict between an external edit and an unflushed change")
    assert [(e["key"], e["winner"]) for e in conflicts] == [("agent:main:x", winner)]
    assert status.conflicts == 1 and status.stale_writes_repaired == 0


def test_a_fresh_change_to_a_row_sessiond_changed_wins_without_conflict(tmp_path: Path) -> None:
    """The writer read after sessiond's writes of x and y (the file shows y as sessiond wrote
    it), then changed x: a change made with sessiond's x in view simply wins."""
    root, path = start(tmp_path, {"agent:main:x": {"updatedAt": 1, "v": "first"}})
    writer = OutsideWriter(path)
    with DaemonProcess(root) as proc:

        async def go() -> Any:
            async with await RpcClient.connect(proc.url) as c:
                fields = {"updatedAt": 5000, "v": "daemon"}
                await c.call("sessions.patch", {"key": "agent:main:x", "fields": fields})
                await c.call("sessions.patch", {"key": "agent:main:y", "fields": {"v": 2}})
                writer.read()
                writer.rows["agent:main:x"] = {"updatedAt": 10, "v": "outside"}
                writer.save()
                await settled(c, path)
                return await c.call("daemon.status")

        status = run(go)
    assert read_rows(root, "main")["agent:main:x"] == {"updatedAt": 10, "v": "outside"}
    assert status.conflicts == 0 and status.stale_writes_repaired == 0


# ----------------------------------------------- a rename between the check and the swap (#51553)


def test_a_rename_that_lands_after_the_check_is_handed_back_and_kept(tmp_path: Path) -> None:
    """sessiond's write waits between its check and its rename (fault hook) while the other
    writer renames: the exchange hands that file back, it is merged and written again."""
    root, path = start(tmp_path, {"agent:main:main": {"updatedAt": 1}})
    phase = tmp_path / "phase"
    writer = OutsideWriter(path)
    with DaemonProcess(root, env=fault_env(phase, "after-precheck:pause", 0.3)) as proc:

        async def go() -> None:
            async with await RpcClient.connect(proc.url) as c:
                writer.read()
                patch = asyncio.create_task(
                    c.call("sessions.patch", {"key": rpc(0), "fields": {"updatedAt": 7}})
                )
                await asyncio.to_thread(wait_phase, phase, "after-precheck")
                writer.rows[ext(0)] = {"updatedAt": 8}
                writer.save()
                assert (await patch).durable
                await settled(c, path)

        run(go)
    on_disk = read_rows(root, "main")
    assert on_disk[rpc(0)] == {"updatedAt": 7}, "sessiond's acknowledged write was lost"
    assert on_disk[ext(0)] == {"updatedAt": 8}, "the other writer's rename was overwritten"
    assert logged(proc, "another writer's file landed after the check; merging it")


# ------------------------------------- a write that lost a conflict, then a stale file (races.py)


def test_a_write_that_lost_a_conflict_is_not_taken_back_by_a_file_built_before_it(
    tmp_path: Path,
) -> None:
    """sessiond's patch of x waits before its check (fault hook) while a fresh writer renames
    in x with a greater `updatedAt`: the file wins the conflict and the patch is answered
    `durable: true`, "as if the external write had come a moment later". Then a writer whose
    read predates the patch renames its file, which still holds x as it was before the patch.
    Had the patch reached the disk first, that file would be a stale write repaired; it must be
    here too: x stays the fresh writer's, not the row from before the acknowledged patch.
    (stress/races.py: `durable n=407 lost (file has ext 232)`, about one run in eight.)"""
    first = {"updatedAt": 1, "v": "first"}
    outside = {"updatedAt": 20, "v": "outside"}
    root, path = start(tmp_path, {"agent:main:main": {"updatedAt": 1}, "agent:main:x": first})
    phase = tmp_path / "phase"
    stale, fresh = OutsideWriter(path), OutsideWriter(path)
    with DaemonProcess(root, env=fault_env(phase, "after-temp-write:pause", 0.3)) as proc:

        async def go() -> Any:
            async with await RpcClient.connect(proc.url) as c:
                stale.read()  # x as it was before the patch
                fields = {"updatedAt": 10, "v": "daemon"}
                patch = asyncio.create_task(
                    c.call("sessions.patch", {"key": "agent:main:x", "fields": fields})
                )
                await asyncio.to_thread(wait_phase, phase, "after-temp-write")
                fresh.read()
                fresh.rows["agent:main:x"] = outside
                fresh.save()  # lands before the patch's write checks the file
                assert (await patch).durable
                await settled(c, path)
                stale.rows[ext(0)] = {"updatedAt": 30, "v": "stale writer"}
                stale.save()
                await settled(c, path)
                return await c.call("daemon.status")

        status = run(go)
    on_disk = read_rows(root, "main")
    assert on_disk[ext(0)] == {"updatedAt": 30, "v": "stale writer"}
    assert on_disk["agent:main:x"] == outside, "a file built before a durable patch took it back"
    conflicts = logged(proc, "conflict between an external edit and an unflushed change")
    assert [(e["key"], e["winner"]) for e in conflicts] == [("agent:main:x", "external")]
    repairs = logged(proc, "stale write repaired")
    assert [(e["key"], e["why"]) for e in repairs] == [("agent:main:x", "superseded value")]
    assert status.conflicts == 1 and status.stale_writes_repaired == 1


def test_a_file_built_before_a_durable_patch_changes_a_row_another_writer_holds_now(
    tmp_path: Path,
) -> None:
    """A writer reads, sessiond writes x durably, a second writer (fresh read) changes x, and
    then the first writer's file lands with x changed to a value sessiond never had, with a
    smaller `updatedAt` (races.py: an editor's in-place save lost to sessiond's rename, held in
    a stale read and saved again: `durable n=388 lost (file has ext 296)`). Both that writer and
    sessiond changed x after its read, so the conflict rule decides against the row held now:
    it is not taken back below the acknowledged patch."""
    root, path = start(
        tmp_path, {"agent:main:main": {"updatedAt": 1}, "agent:main:x": {"updatedAt": 1}}
    )
    stale, fresh = OutsideWriter(path), OutsideWriter(path)
    with DaemonProcess(root) as proc:

        async def go() -> Any:
            async with await RpcClient.connect(proc.url) as c:
                stale.read()
                stale.rows["agent:main:x"] = {"updatedAt": 5, "v": "stale writer"}
                fields = {"updatedAt": 10, "v": "daemon"}
                assert (
                    await c.call("sessions.patch", {"key": "agent:main:x", "fields": fields})
                ).durable
                # A later write the fresh writer's file shows it saw (so it saw x too).
                await c.call("sessions.patch", {"key": "agent:main:y", "fields": {"v": 2}})
                await settled(c, path)
                fresh.read()
                fresh.rows["agent:main:x"] = {"updatedAt": 20, "v": "fresh writer"}
                fresh.save()
                await settled(c, path)
                stale.save()
                await settled(c, path)
                return await c.call("daemon.status")

        status = run(go)
    assert read_rows(root, "main")["agent:main:x"] == {"updatedAt": 20, "v": "fresh writer"}
    conflicts = logged(proc, "conflict between an external edit and an unflushed change")
    assert [(e["key"], e["winner"]) for e in conflicts] == [("agent:main:x", "daemon")]
    assert status.conflicts == 1
