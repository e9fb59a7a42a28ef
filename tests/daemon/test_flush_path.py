"""The flush path's shortcuts, in-process over real files: what each may skip, and what not.

A patch is answered once its version is durable, so every flush under load is on the path of
the ~50 patches waiting for it. These tests pin down the shortcuts taken for that, each with
the case it must still get right: our own big version is not hashed (a touch still loses
nothing), a watcher event during a flush looks at the file without the store's lock (another
writer's file is still merged), waiters are answered from the flush's thread before the flush
records its version (a failed flush still answers false), and the replaced version's blocks
are freed off the write's path (its name is gone at once, its last handle closed soon after).
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import threading
import time
from pathlib import Path
from typing import Any

import msgspec
import pytest
from sessiond.daemon.fault_hooks import FAULT_ACTIONS
from sessiond.daemon.file_version import HASH_LIMIT
from sessiond.daemon.live_store import LiveStore
from sessiond.daemon.live_store_state import Event, State
from sessiond.engine.config import StoreTarget

PAD = "x" * 3000


def rows(count: int) -> dict[str, Any]:
    return {f"agent:main:r{i}": {"updatedAt": i, "pad": PAD} for i in range(count)}


BIG = 500  # rows: ~1.6 MB written, over HASH_LIMIT
SMALL = 5


def row(n: int, by: str = "daemon") -> msgspec.Raw:
    return msgspec.Raw(msgspec.json.encode({"updatedAt": n, "by": by}))


class Store:
    """A loaded LiveStore over a real sessions.json, with the events it fired."""

    def __init__(self, root: Path, initial: dict[str, Any]) -> None:
        self.dir = root / "agents" / "main" / "sessions"
        self.dir.mkdir(parents=True)
        self.path = self.dir / "sessions.json"
        self.path.write_text(json.dumps(initial, indent=2))
        self.live = LiveStore(StoreTarget("main", str(self.path)))
        self.events: list[Event] = []
        self.live.lifecycle.observer = lambda _before, event, _after: self.events.append(event)
        self.live.load_initial()

    def change(self, key: str, n: int) -> int:
        return self.live.apply({f"agent:main:{key}": row(n)}, "patch")

    def external(self, extra: dict[str, Any]) -> None:
        """Another writer's save: the file as on disk plus `extra`, renamed over it."""
        temp = self.dir / "other-writer.tmp"
        temp.write_text(json.dumps({**self.on_disk(), **extra}, indent=2))
        os.replace(temp, self.path)

    def on_disk(self) -> dict[str, Any]:
        loaded: dict[str, Any] = json.loads(self.path.read_text())
        return loaded


@pytest.fixture(autouse=True)
def _no_fault_actions() -> Any:
    yield
    FAULT_ACTIONS.clear()


def held_at(point: str) -> tuple[threading.Event, threading.Event]:
    """Hold the next write at `point` (in the flush's thread): (reached, release)."""
    reached, release = threading.Event(), threading.Event()

    def hold() -> None:
        FAULT_ACTIONS.pop(point, None)
        reached.set()
        release.wait(10)

    FAULT_ACTIONS[point] = hold
    return reached, release


# --------------------------------------------------------------------- our own version's hash


def test_our_own_big_version_is_not_hashed_and_a_touch_of_it_loses_nothing(
    tmp_path: Path,
) -> None:
    store = Store(tmp_path, rows(BIG))
    store.change("x", 1)
    assert asyncio.run(store.live.flush_once())
    assert store.path.stat().st_size > HASH_LIMIT
    sig = store.live.sig
    assert sig is not None and sig.digest is None, "its stat vouches for it"
    before, memory = store.path.read_bytes(), dict(store.live.store.rows)

    st = store.path.stat()  # a touch: the same bytes under another mtime (and ctime)
    os.utime(store.path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
    asyncio.run(store.live.reload())
    assert store.path.read_bytes() == before
    assert {k: bytes(v) for k, v in store.live.store.rows.items()} == {
        k: bytes(v) for k, v in memory.items()
    }
    assert not store.live.pending and store.live.state is State.CLEAN

    store.external({"agent:main:ext": {"updatedAt": 7, "by": "ext"}})  # a real edit still lands
    asyncio.run(store.live.reload())
    assert "agent:main:ext" in store.live.store.rows and "agent:main:x" in store.on_disk()


def test_a_small_version_of_our_own_is_still_hashed(tmp_path: Path) -> None:
    store = Store(tmp_path, rows(SMALL))
    store.change("x", 1)
    assert asyncio.run(store.live.flush_once())
    sig = store.live.sig
    assert sig is not None and sig.digest is not None  # a same-tick rewrite needs its bytes


# ------------------------------------------------------------------ events while a flush runs


def test_an_event_during_a_flush_needs_no_lock_when_the_file_is_the_version_known(
    tmp_path: Path,
) -> None:
    store = Store(tmp_path, rows(SMALL))

    async def scenario() -> None:
        reached, release = held_at("after-temp-write")
        store.change("x", 1)
        flush = asyncio.create_task(store.live.flush_once())
        await asyncio.to_thread(reached.wait, 10)
        assert store.live.lock.locked()
        seen = len(store.events)
        # The flush holds the lock until released: a reload that waited for it would time out.
        await asyncio.wait_for(store.live.reload(), 5)
        assert Event.RELOAD not in store.events[seen:]
        release.set()
        assert await flush

    asyncio.run(scenario())
    assert "agent:main:x" in store.on_disk()


def test_another_writers_file_during_a_flush_is_merged_and_the_event_waits_for_it(
    tmp_path: Path,
) -> None:
    store = Store(tmp_path, rows(SMALL))
    ext = {"updatedAt": 9, "by": "ext"}

    async def scenario() -> None:
        reached, release = held_at("after-temp-write")
        store.change("x", 1)
        flush = asyncio.create_task(store.live.flush_once())
        await asyncio.to_thread(reached.wait, 10)
        store.external({"agent:main:ext": ext})  # before the flush's check
        reload = asyncio.create_task(store.live.reload())
        await asyncio.sleep(0.05)
        assert not reload.done(), "the file is not ours: the event is not done with"
        release.set()
        assert await flush  # found the change at its check, merged it
        await asyncio.wait_for(reload, 5)
        while store.live.pending:
            assert await store.live.flush_once()

    asyncio.run(scenario())
    on_disk = store.on_disk()
    assert on_disk["agent:main:ext"] == ext and "agent:main:x" in on_disk


# ----------------------------------------------------------------------------------- waiters


def test_every_waiter_is_answered_before_the_flush_records_its_version(tmp_path: Path) -> None:
    store = Store(tmp_path, rows(SMALL))
    answered_at_written: list[list[bool]] = []

    async def scenario() -> None:
        waiters = [
            asyncio.create_task(store.live.wait_durable(store.change(f"k{i}", i))) for i in range(3)
        ]
        gone = asyncio.create_task(store.live.wait_durable(store.change("gone", 9)))
        await asyncio.sleep(0)
        gone.cancel()  # its request went away: the others are answered all the same
        observe = store.live.lifecycle.observer

        def on_event(before: State, event: Event, after: State) -> None:
            if observe is not None:
                observe(before, event, after)
            if event is Event.WRITTEN:
                answered_at_written.append([w.done() for w in waiters])

        store.live.lifecycle.observer = on_event
        assert await store.live.flush_once()
        assert [await w for w in waiters] == [True, True, True]

    asyncio.run(scenario())
    assert answered_at_written == [[True, True, True]]


def test_a_waiter_of_a_failed_flush_is_answered_false(tmp_path: Path) -> None:
    store = Store(tmp_path, rows(SMALL))

    async def scenario() -> bool:
        waiter = asyncio.create_task(store.live.wait_durable(store.change("x", 1)))
        store.dir.rename(store.dir.with_name("sessions.away"))
        store.dir.write_text("not a directory")  # the write fails for real
        assert not await store.live.flush_once()
        return await waiter

    assert asyncio.run(scenario()) is False
    assert store.live.pending, "the change stays in memory"


# ------------------------------------------------------------------------- the replaced file


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/fd")
def test_the_replaced_version_is_unlinked_at_once_and_closed_soon_after(tmp_path: Path) -> None:
    store = Store(tmp_path, rows(BIG))
    for n in range(3):
        store.change("x", n)
        assert asyncio.run(store.live.flush_once())
        assert [p for p in os.listdir(store.dir) if p.startswith(".sessiond-")] == []

    def open_leftovers() -> list[str]:
        found = []
        for fd in os.listdir("/proc/self/fd"):
            try:
                target = os.readlink(f"/proc/self/fd/{fd}")
            except OSError:
                continue
            if str(store.dir) in target and ".sessiond-" in target:
                found.append(target)
        return found

    deadline = time.monotonic() + 10
    while open_leftovers() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert open_leftovers() == []
