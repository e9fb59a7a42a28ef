"""LiveStore's lifecycle in-process: the transition table, and a real store walked through it.

The table (`daemon/live_store_state.py`) is checked pair by pair: every event it lists moves to
the listed state, every other event raises `IllegalTransition` and leaves the state alone. Then
a real `LiveStore` over real files in a temp dir (`DiskStoreFile`, no subprocess, no mocks) is
driven through scenarios that make each transition happen for real: writes, a write that
fails (its directory replaced by a file), a write that finds another writer's file (before its
rename, or handed back by the rename itself when it landed after the check), a change
that lands while a write or a reload runs, broken files found at start and while running. The
transitions they take together must be exactly the table's.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgspec
import pytest
from sessiond.daemon.fault_hooks import FAULT_ACTIONS
from sessiond.daemon.live_store import LiveStore
from sessiond.daemon.live_store_state import (
    TRANSITIONS,
    Event,
    IllegalTransition,
    Lifecycle,
    State,
)
from sessiond.engine.config import StoreTarget
from sessiond.engine.errors import StoreReadOnly

Step = tuple[State, Event, State]


def test_every_listed_event_moves_to_its_state_and_every_other_raises() -> None:
    for state in State:
        for event in Event:
            life = Lifecycle(state)
            after = TRANSITIONS[state].get(event)
            if after is not None:
                assert life.fire(event) is after
                assert life.state is after
                continue
            with pytest.raises(IllegalTransition) as err:
                life.fire(event)
            assert life.state is state, "an illegal event changed the state"
            assert state.name in str(err.value) and event.name in str(err.value)


def test_the_observer_sees_the_new_state_and_may_fire_again() -> None:
    seen: list[Step] = []
    life = Lifecycle()

    def observe(before: State, event: Event, after: State) -> None:
        seen.append((before, event, after))
        assert life.state is after
        if event is Event.FLUSH:
            life.fire(Event.CHANGE)

    life.observer = observe
    life.fire(Event.CHANGE)
    life.fire(Event.FLUSH)
    assert seen == [
        (State.CLEAN, Event.CHANGE, State.DIRTY),
        (State.DIRTY, Event.FLUSH, State.FLUSHING),
        (State.FLUSHING, Event.CHANGE, State.FLUSHING),
    ]


# ------------------------------------------------------------------------- a real LiveStore


def row(n: int, by: str = "daemon") -> msgspec.Raw:
    return msgspec.Raw(msgspec.json.encode({"updatedAt": n, "by": by}))


class Rig:
    """One LiveStore over a real sessions.json in a temp dir, with its transitions recorded."""

    def __init__(self, root: Path, rows: dict[str, Any] | None, raw: bytes | None = None) -> None:
        self.dir = root / "agents" / "main" / "sessions"
        self.dir.mkdir(parents=True)
        self.path = self.dir / "sessions.json"
        if raw is not None:
            self.path.write_bytes(raw)
        elif rows is not None:
            self.path.write_text(json.dumps(rows, indent=2))
        self.live = LiveStore(StoreTarget("main", str(self.path)))
        self.steps: list[Step] = []
        self.hooks: dict[State, Callable[[], None]] = {}
        self.live.lifecycle.observer = self._observe

    def _observe(self, before: State, event: Event, after: State) -> None:
        self.steps.append((before, event, after))
        hook = self.hooks.pop(after, None)
        if hook is not None:
            hook()

    def on_entering(self, state: State, hook: Callable[[], None]) -> None:
        """Run `hook` once, the next time the store enters `state` (a change mid-write...)."""
        self.hooks[state] = hook

    def change(self, key: str, n: int) -> int:
        return self.live.apply({f"agent:main:{key}": row(n)}, "patch")

    def external(self, rows: dict[str, Any]) -> None:
        """Another writer's save: a temp file renamed over sessions.json."""
        temp = self.dir / "other-writer.tmp"
        temp.write_text(json.dumps(rows, indent=2))
        os.replace(temp, self.path)

    def external_bytes(self, data: bytes) -> None:
        temp = self.dir / "other-writer.tmp"
        temp.write_bytes(data)
        os.replace(temp, self.path)

    def on_disk(self) -> dict[str, Any]:
        loaded: dict[str, Any] = json.loads(self.path.read_text())
        return loaded

    def break_directory(self) -> None:
        """Writes fail for real: the sessions directory is moved away and a file takes its name."""
        self.dir.rename(self.dir.with_name("sessions.away"))
        self.dir.write_text("not a directory")

    def mend_directory(self) -> None:
        self.dir.unlink()
        self.dir.with_name("sessions.away").rename(self.dir)

    def flush(self) -> bool:
        return asyncio.run(self.live.flush_once())

    def reload(self) -> None:
        asyncio.run(self.live.reload())


S, E = State, Event
BASE = {"agent:main:a": {"updatedAt": 1, "by": "init"}}
BROKEN_JSON = b'{"agent:main:a": {"updatedAt": 1'


def scenario_load(tmp: Path) -> list[Step]:
    rig = Rig(tmp, BASE)
    rig.live.load_initial()
    assert rig.live.state is S.CLEAN and list(rig.live.store.rows) == ["agent:main:a"]
    return rig.steps


def scenario_load_corrupt(tmp: Path) -> list[Step]:
    rig = Rig(tmp, None, raw=BROKEN_JSON)
    rig.live.load_initial()
    assert rig.live.state is S.BROKEN and rig.live.corrupt_copy is not None
    with pytest.raises(StoreReadOnly):
        rig.change("x", 2)
    rig.flush()  # nothing pending: nothing to write
    assert rig.path.read_bytes() == BROKEN_JSON, "a broken file was written over"
    assert Path(rig.live.corrupt_copy).read_bytes() == BROKEN_JSON
    return rig.steps


def scenario_change_and_write(tmp: Path) -> list[Step]:
    rig = Rig(tmp, BASE)
    rig.live.load_initial()
    rig.change("x", 2)
    rig.change("y", 3)
    assert rig.live.state is S.DIRTY
    assert rig.flush()
    assert rig.live.state is S.CLEAN and not rig.live.pending
    assert set(rig.on_disk()) == {"agent:main:a", "agent:main:x", "agent:main:y"}
    return rig.steps


def scenario_change_during_write(tmp: Path) -> list[Step]:
    rig = Rig(tmp, BASE)
    rig.live.load_initial()
    rig.change("x", 2)
    rig.on_entering(S.FLUSHING, lambda: rig.change("late", 3))
    assert rig.flush()
    assert rig.live.state is S.DIRTY and "agent:main:late" not in rig.on_disk()
    assert rig.flush()
    assert rig.live.state is S.CLEAN and "agent:main:late" in rig.on_disk()
    return rig.steps


def scenario_write_fails_then_recovers(tmp: Path) -> list[Step]:
    rig = Rig(tmp, BASE)
    rig.live.load_initial()
    rig.change("x", 2)
    rig.break_directory()
    assert not rig.flush()
    assert rig.live.state is S.FAILED and rig.live.flush_error
    rig.change("y", 3)
    assert rig.live.state is S.FAILED
    rig.mend_directory()
    assert rig.flush()
    assert rig.live.state is S.CLEAN and rig.live.flush_error is None
    assert {"agent:main:x", "agent:main:y"} <= set(rig.on_disk())
    return rig.steps


def scenario_write_finds_another_writers_file(tmp: Path) -> list[Step]:
    rig = Rig(tmp, BASE)
    rig.live.load_initial()
    rig.change("x", 2)
    rig.external({**BASE, "agent:main:ext": {"updatedAt": 5, "by": "ext"}})
    rig.on_entering(S.MERGING, lambda: rig.change("mid", 4))
    assert rig.flush()
    assert rig.live.state is S.DIRTY
    assert set(rig.live.store.rows) == {
        "agent:main:a",
        "agent:main:x",
        "agent:main:ext",
        "agent:main:mid",
    }
    assert rig.flush()
    assert set(rig.on_disk()) == set(rig.live.store.rows)
    return rig.steps


def scenario_a_rename_lands_between_check_and_swap(tmp: Path) -> list[Step]:
    """The other writer's rename lands after our check: the swap hands its file back."""
    rig = Rig(tmp, BASE)
    rig.live.load_initial()
    rig.change("x", 2)
    ext_row = {"updatedAt": 5, "by": "ext"}
    FAULT_ACTIONS["after-precheck"] = lambda: rig.external({**BASE, "agent:main:ext": ext_row})
    try:
        assert rig.flush()
    finally:
        FAULT_ACTIONS.clear()
    assert rig.live.durable_gen == rig.live.gen - 1, "our write is durable, the merge is next"
    assert rig.live.state is S.DIRTY
    assert "agent:main:ext" not in rig.on_disk() and "agent:main:ext" in rig.live.store.rows
    assert rig.flush()
    assert rig.on_disk()["agent:main:ext"] == ext_row and "agent:main:x" in rig.on_disk()
    assert [n for n in os.listdir(rig.dir) if n.startswith(".sessiond-")] == []
    return rig.steps


def scenario_the_other_file_already_holds_our_change(tmp: Path) -> list[Step]:
    rig = Rig(tmp, BASE)
    rig.live.load_initial()
    rig.change("x", 2)
    rig.external({**BASE, "agent:main:x": {"updatedAt": 2, "by": "daemon"}})
    assert rig.flush()
    assert rig.live.state is S.CLEAN and not rig.live.pending
    return rig.steps


def scenario_retry_finds_another_writers_file(tmp: Path) -> list[Step]:
    rig = Rig(tmp, BASE)
    rig.live.load_initial()
    rig.change("x", 2)
    rig.break_directory()
    assert not rig.flush()
    rig.mend_directory()
    rig.external({**BASE, "agent:main:ext": {"updatedAt": 5, "by": "ext"}})
    assert rig.flush()
    assert rig.live.state is S.FAILED, "merged, but no write has succeeded since the failure"
    assert rig.flush()
    assert rig.live.state is S.CLEAN and rig.live.flush_error is None
    assert {"agent:main:x", "agent:main:ext"} <= set(rig.on_disk())
    return rig.steps


def scenario_write_finds_a_broken_file(tmp: Path) -> list[Step]:
    rig = Rig(tmp, BASE)
    rig.live.load_initial()
    rig.change("x", 2)
    rig.external_bytes(BROKEN_JSON)
    assert rig.flush()
    assert rig.live.state is S.BROKEN
    assert not rig.flush()
    assert rig.path.read_bytes() == BROKEN_JSON, "a broken file was written over"
    assert rig.live.store.get("agent:main:x") is not None, "the last good state is served"
    return rig.steps


def scenario_write_finds_an_unreadable_file(tmp: Path) -> list[Step]:
    rig = Rig(tmp, BASE)
    rig.live.load_initial()
    rig.change("x", 2)
    rig.path.unlink()
    os.symlink(rig.path.name, rig.path)  # a symlink to itself: ELOOP on every open
    assert not rig.flush()
    assert rig.live.state is S.FAILED and "symbolic links" in (rig.live.flush_error or "")
    return rig.steps


def scenario_reload(tmp: Path) -> list[Step]:
    rig = Rig(tmp, BASE)
    rig.live.load_initial()
    rig.reload()  # our own version: nothing to do
    rig.external({**BASE, "agent:main:ext": {"updatedAt": 5, "by": "ext"}})
    rig.reload()
    assert rig.live.state is S.CLEAN and "agent:main:ext" in rig.live.store.rows
    return rig.steps


def scenario_reload_with_pending_changes(tmp: Path) -> list[Step]:
    rig = Rig(tmp, BASE)
    rig.live.load_initial()
    rig.change("x", 2)
    rig.external({**BASE, "agent:main:ext": {"updatedAt": 5, "by": "ext"}})
    rig.on_entering(S.RELOADING, lambda: rig.change("mid", 3))
    rig.reload()
    assert rig.live.state is S.DIRTY
    assert {"agent:main:x", "agent:main:mid", "agent:main:ext"} <= set(rig.live.store.rows)
    return rig.steps


def scenario_reload_while_failing(tmp: Path) -> list[Step]:
    rig = Rig(tmp, BASE)
    rig.live.load_initial()
    rig.change("x", 2)
    rig.break_directory()
    assert not rig.flush()
    with pytest.raises(NotADirectoryError):
        rig.reload()  # the file cannot even be looked at: memory stays, the store stays failed
    assert rig.live.state is S.FAILED
    return rig.steps


def scenario_file_breaks_and_mends(tmp: Path) -> list[Step]:
    rig = Rig(tmp, BASE)
    rig.live.load_initial()
    rig.external_bytes(BROKEN_JSON)
    rig.reload()
    assert rig.live.state is S.BROKEN and not rig.live.writable
    rig.reload()  # still the same broken file
    rig.external_bytes(BROKEN_JSON + b"  ")  # broken differently
    rig.reload()
    assert rig.live.state is S.BROKEN
    rig.external({"agent:main:b": {"updatedAt": 9, "by": "ext"}})
    rig.reload()
    assert rig.live.state is S.CLEAN and list(rig.live.store.rows) == ["agent:main:b"]
    return rig.steps


def scenario_file_breaks_under_pending_changes(tmp: Path) -> list[Step]:
    rig = Rig(tmp, BASE)
    rig.live.load_initial()
    rig.change("x", 2)
    rig.external_bytes(BROKEN_JSON)
    rig.reload()
    assert rig.live.state is S.BROKEN
    rig.external(BASE)
    rig.reload()
    assert rig.live.state is S.DIRTY and "agent:main:x" in rig.live.store.rows
    assert rig.flush()
    assert "agent:main:x" in rig.on_disk()
    return rig.steps


def scenario_file_breaks_while_failing(tmp: Path) -> list[Step]:
    rig = Rig(tmp, BASE)
    rig.live.load_initial()
    rig.change("x", 2)
    rig.break_directory()
    assert not rig.flush()
    rig.mend_directory()
    rig.external_bytes(BROKEN_JSON)
    rig.reload()
    assert rig.live.state is S.BROKEN
    rig.external(BASE)
    rig.reload()
    assert rig.live.state is S.FAILED
    assert rig.flush()
    assert rig.live.state is S.CLEAN
    return rig.steps


SCENARIOS = [
    scenario_load,
    scenario_load_corrupt,
    scenario_change_and_write,
    scenario_change_during_write,
    scenario_write_fails_then_recovers,
    scenario_write_finds_another_writers_file,
    scenario_a_rename_lands_between_check_and_swap,
    scenario_the_other_file_already_holds_our_change,
    scenario_retry_finds_another_writers_file,
    scenario_write_finds_a_broken_file,
    scenario_write_finds_an_unreadable_file,
    scenario_reload,
    scenario_reload_with_pending_changes,
    scenario_reload_while_failing,
    scenario_file_breaks_and_mends,
    scenario_file_breaks_under_pending_changes,
    scenario_file_breaks_while_failing,
]

EXPECTED: dict[str, list[Step]] = {
    "scenario_load": [(S.CLEAN, E.LOADED, S.CLEAN)],
    "scenario_load_corrupt": [(S.CLEAN, E.LOADED_BROKEN, S.BROKEN)],
    "scenario_change_and_write": [
        (S.CLEAN, E.LOADED, S.CLEAN),
        (S.CLEAN, E.CHANGE, S.DIRTY),
        (S.DIRTY, E.CHANGE, S.DIRTY),
        (S.DIRTY, E.FLUSH, S.FLUSHING),
        (S.FLUSHING, E.WRITTEN, S.CLEAN),
    ],
    "scenario_change_during_write": [
        (S.CLEAN, E.LOADED, S.CLEAN),
        (S.CLEAN, E.CHANGE, S.DIRTY),
        (S.DIRTY, E.FLUSH, S.FLUSHING),
        (S.FLUSHING, E.CHANGE, S.FLUSHING),
        (S.FLUSHING, E.WRITTEN_MORE, S.DIRTY),
        (S.DIRTY, E.FLUSH, S.FLUSHING),
        (S.FLUSHING, E.WRITTEN, S.CLEAN),
    ],
    "scenario_write_fails_then_recovers": [
        (S.CLEAN, E.LOADED, S.CLEAN),
        (S.CLEAN, E.CHANGE, S.DIRTY),
        (S.DIRTY, E.FLUSH, S.FLUSHING),
        (S.FLUSHING, E.WRITE_FAILED, S.FAILED),
        (S.FAILED, E.CHANGE, S.FAILED),
        (S.FAILED, E.FLUSH, S.FLUSHING),
        (S.FLUSHING, E.WRITTEN, S.CLEAN),
    ],
    "scenario_write_finds_another_writers_file": [
        (S.CLEAN, E.LOADED, S.CLEAN),
        (S.CLEAN, E.CHANGE, S.DIRTY),
        (S.DIRTY, E.FLUSH, S.FLUSHING),
        (S.FLUSHING, E.CHECK_FAILED, S.MERGING),
        (S.MERGING, E.CHANGE, S.MERGING),
        (S.MERGING, E.SETTLED_DIRTY, S.DIRTY),
        (S.DIRTY, E.FLUSH, S.FLUSHING),
        (S.FLUSHING, E.WRITTEN, S.CLEAN),
    ],
    "scenario_a_rename_lands_between_check_and_swap": [
        (S.CLEAN, E.LOADED, S.CLEAN),
        (S.CLEAN, E.CHANGE, S.DIRTY),
        (S.DIRTY, E.FLUSH, S.FLUSHING),
        (S.FLUSHING, E.HANDED_BACK, S.MERGING),
        (S.MERGING, E.SETTLED_DIRTY, S.DIRTY),
        (S.DIRTY, E.FLUSH, S.FLUSHING),
        (S.FLUSHING, E.WRITTEN, S.CLEAN),
    ],
    "scenario_the_other_file_already_holds_our_change": [
        (S.CLEAN, E.LOADED, S.CLEAN),
        (S.CLEAN, E.CHANGE, S.DIRTY),
        (S.DIRTY, E.FLUSH, S.FLUSHING),
        (S.FLUSHING, E.CHECK_FAILED, S.MERGING),
        (S.MERGING, E.SETTLED_CLEAN, S.CLEAN),
    ],
    "scenario_retry_finds_another_writers_file": [
        (S.CLEAN, E.LOADED, S.CLEAN),
        (S.CLEAN, E.CHANGE, S.DIRTY),
        (S.DIRTY, E.FLUSH, S.FLUSHING),
        (S.FLUSHING, E.WRITE_FAILED, S.FAILED),
        (S.FAILED, E.FLUSH, S.FLUSHING),
        (S.FLUSHING, E.CHECK_FAILED, S.MERGING),
        (S.MERGING, E.SETTLED_FAILED, S.FAILED),
        (S.FAILED, E.FLUSH, S.FLUSHING),
        (S.FLUSHING, E.WRITTEN, S.CLEAN),
    ],
    "scenario_write_finds_a_broken_file": [
        (S.CLEAN, E.LOADED, S.CLEAN),
        (S.CLEAN, E.CHANGE, S.DIRTY),
        (S.DIRTY, E.FLUSH, S.FLUSHING),
        (S.FLUSHING, E.CHECK_FAILED, S.MERGING),
        (S.MERGING, E.BROKE, S.BROKEN),
    ],
    "scenario_write_finds_an_unreadable_file": [
        (S.CLEAN, E.LOADED, S.CLEAN),
        (S.CLEAN, E.CHANGE, S.DIRTY),
        (S.DIRTY, E.FLUSH, S.FLUSHING),
        (S.FLUSHING, E.CHECK_FAILED, S.MERGING),
        (S.MERGING, E.WRITE_FAILED, S.FAILED),
    ],
    "scenario_reload": [
        (S.CLEAN, E.LOADED, S.CLEAN),
        (S.CLEAN, E.RELOAD, S.RELOADING),
        (S.RELOADING, E.SETTLED_CLEAN, S.CLEAN),
        (S.CLEAN, E.RELOAD, S.RELOADING),
        (S.RELOADING, E.SETTLED_CLEAN, S.CLEAN),
    ],
    "scenario_reload_with_pending_changes": [
        (S.CLEAN, E.LOADED, S.CLEAN),
        (S.CLEAN, E.CHANGE, S.DIRTY),
        (S.DIRTY, E.RELOAD, S.RELOADING),
        (S.RELOADING, E.CHANGE, S.RELOADING),
        (S.RELOADING, E.SETTLED_DIRTY, S.DIRTY),
    ],
    "scenario_reload_while_failing": [
        (S.CLEAN, E.LOADED, S.CLEAN),
        (S.CLEAN, E.CHANGE, S.DIRTY),
        (S.DIRTY, E.FLUSH, S.FLUSHING),
        (S.FLUSHING, E.WRITE_FAILED, S.FAILED),
        (S.FAILED, E.RELOAD, S.RELOADING),
        (S.RELOADING, E.SETTLED_FAILED, S.FAILED),
    ],
    "scenario_file_breaks_and_mends": [
        (S.CLEAN, E.LOADED, S.CLEAN),
        (S.CLEAN, E.RELOAD, S.RELOADING),
        (S.RELOADING, E.BROKE, S.BROKEN),
        (S.BROKEN, E.RELOAD, S.BROKEN),
        (S.BROKEN, E.BROKE, S.BROKEN),
        (S.BROKEN, E.RELOAD, S.BROKEN),
        (S.BROKEN, E.BROKE, S.BROKEN),
        (S.BROKEN, E.RELOAD, S.BROKEN),
        (S.BROKEN, E.SETTLED_CLEAN, S.CLEAN),
    ],
    "scenario_file_breaks_under_pending_changes": [
        (S.CLEAN, E.LOADED, S.CLEAN),
        (S.CLEAN, E.CHANGE, S.DIRTY),
        (S.DIRTY, E.RELOAD, S.RELOADING),
        (S.RELOADING, E.BROKE, S.BROKEN),
        (S.BROKEN, E.RELOAD, S.BROKEN),
        (S.BROKEN, E.SETTLED_DIRTY, S.DIRTY),
        (S.DIRTY, E.FLUSH, S.FLUSHING),
        (S.FLUSHING, E.WRITTEN, S.CLEAN),
    ],
    "scenario_file_breaks_while_failing": [
        (S.CLEAN, E.LOADED, S.CLEAN),
        (S.CLEAN, E.CHANGE, S.DIRTY),
        (S.DIRTY, E.FLUSH, S.FLUSHING),
        (S.FLUSHING, E.WRITE_FAILED, S.FAILED),
        (S.FAILED, E.RELOAD, S.RELOADING),
        (S.RELOADING, E.BROKE, S.BROKEN),
        (S.BROKEN, E.RELOAD, S.BROKEN),
        (S.BROKEN, E.SETTLED_FAILED, S.FAILED),
        (S.FAILED, E.FLUSH, S.FLUSHING),
        (S.FLUSHING, E.WRITTEN, S.CLEAN),
    ],
}


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda f: f.__name__)
def test_a_real_store_takes_exactly_these_transitions(
    tmp_path: Path, scenario: Callable[[Path], list[Step]]
) -> None:
    assert scenario(tmp_path) == EXPECTED[scenario.__name__]


def test_the_scenarios_take_every_transition_of_the_table() -> None:
    taken = {step for steps in EXPECTED.values() for step in steps}
    table = {(s, e, after) for s, row in TRANSITIONS.items() for e, after in row.items()}
    assert taken <= table
    assert table - taken == set(), "a transition no real store takes"
    assert set(EXPECTED) == {f.__name__ for f in SCENARIOS}


def test_a_broken_store_refuses_changes_before_any_event(tmp_path: Path) -> None:
    """The user-facing refusal (StoreReadOnly, -32002) comes first; no event is even tried."""
    rig = Rig(tmp_path, None, raw=BROKEN_JSON)
    rig.live.load_initial()
    before = list(rig.steps)
    with pytest.raises(StoreReadOnly):
        rig.change("x", 1)
    assert rig.steps == before and rig.live.state is S.BROKEN


def test_what_a_store_remembers_of_its_own_writes_stays_bounded(tmp_path: Path) -> None:
    """Rows created and deleted for months (cron runs): the history and the record of which
    rows are sessiond's own stay bounded by the history's limit, not by every key ever seen."""
    from sessiond.engine.write_history import WriteHistory

    rig = Rig(tmp_path, BASE)
    rig.live.history = WriteHistory(max_changes=200)
    rig.live.load_initial()
    for n in range(3_000):
        rig.live.apply({f"agent:main:cron:{n}": row(n)}, "patch")
        rig.live.apply({f"agent:main:cron:{n}": None}, "delete")
        if n % 50 == 49:
            assert rig.flush()
    assert rig.live.history.changes <= 200
    assert len(rig.live.authored) <= 2 * len(rig.live.history.by_key) + 1_000 + 50
    assert rig.on_disk() == BASE


def test_without_the_exchange_the_check_and_a_plain_rename_still_merge(tmp_path: Path) -> None:
    """What a file system without RENAME_EXCHANGE gets (after its EINVAL): check, then rename."""
    from sessiond.daemon.durable_file import DiskStoreFile

    rig = Rig(tmp_path, BASE)
    assert isinstance(rig.live.disk, DiskStoreFile)
    rig.live.disk.exchanges = False
    rig.live.load_initial()
    rig.change("x", 2)
    rig.external({**BASE, "agent:main:ext": {"updatedAt": 5, "by": "ext"}})
    assert rig.flush() and rig.flush()
    assert {"agent:main:x", "agent:main:ext"} <= set(rig.on_disk())
    assert (S.FLUSHING, E.CHECK_FAILED, S.MERGING) in rig.steps
    assert [n for n in os.listdir(rig.dir) if n.startswith(".sessiond-")] == []
