"""The stale-write rule without a daemon: versions recorded, a file's base inferred, rows judged.

Times are given explicitly (seconds, as ns), so the 120 s window is checked without waiting.
"""

from __future__ import annotations

from typing import Any

import msgspec
from sessiond.engine.merge import merge_external
from sessiond.engine.store import Store, load_store_bytes
from sessiond.engine.write_history import WriteHistory, row_hash

S = 1_000_000_000


def store(rows: dict[str, Any]) -> Store:
    return load_store_bytes(msgspec.json.encode(rows), "s.json")


def rows_of(s: Store) -> dict[str, Any]:
    return {k: msgspec.json.decode(v) for k, v in s.rows.items()}


class Disk:
    """The file's versions as sessiond sees them: a history plus the last version (`base`)."""

    def __init__(self, rows: dict[str, Any], at: float = 0.0) -> None:
        self.history = WriteHistory()
        self.base = store(rows)
        self.memory = self.base.copy()
        self.own: set[str] = set()  # rows sessiond's requests put or deleted
        self.history.start(int(at * S))

    def ours(self, at: float, **changes: Any) -> Store:
        """sessiond writes `changes` (None deletes) and the write is durable at `at`."""
        before = self.base
        after = before.copy()
        for key, value in changes.items():
            if value is None:
                after.delete(key)
            else:
                after.put(key, msgspec.Raw(msgspec.json.encode(value)))
        self.history.record(before, after, changes, at_ns=int(at * S), own=changes)
        self.own |= set(changes)
        self.base = after
        self.memory = after.copy()
        return after

    def merge(self, theirs: Store, at: float, dirty: set[str] | None = None) -> Any:
        return merge_external(
            self.base, self.memory, theirs, dirty or set(), self.history, int(at * S), self.own
        )


def test_a_row_added_after_the_writers_read_is_kept() -> None:
    disk = Disk({"a": {"n": 1}})
    read = rows_of(disk.base)
    disk.ours(1, rpc={"n": 2})
    outcome = disk.merge(store({**read, "ext": {"n": 3}}), at=1.1)
    assert rows_of(outcome.store) == {"a": {"n": 1}, "ext": {"n": 3}, "rpc": {"n": 2}}
    assert outcome.pending == {"rpc"} and outcome.conflicts == []
    assert [(r.key, r.why, r.file_had, r.kept is not None) for r in outcome.repairs] == [
        ("rpc", "stale absent", None, True)
    ]


def test_a_row_changed_after_the_read_keeps_sessionds_value() -> None:
    disk = Disk({"a": {"n": 1}, "b": {"n": 1}})
    read = rows_of(disk.base)
    disk.ours(1, a={"n": 2})
    outcome = disk.merge(store({**read, "b": {"n": 5}}), at=1.1)
    assert rows_of(outcome.store) == {"a": {"n": 2}, "b": {"n": 5}}
    assert [(r.key, r.why) for r in outcome.repairs] == [("a", "stale value")]


def test_a_row_deleted_after_the_read_stays_deleted() -> None:
    disk = Disk({"a": {"n": 1}, "b": {"n": 1}})
    read = rows_of(disk.base)
    disk.ours(1, a=None)
    outcome = disk.merge(store({**read, "c": {"n": 1}}), at=1.1)
    assert rows_of(outcome.store) == {"b": {"n": 1}, "c": {"n": 1}}
    assert [(r.key, r.kept) for r in outcome.repairs] == [("a", None)]


def test_the_base_is_the_newest_version_whose_values_the_file_holds() -> None:
    disk = Disk({"a": {"n": 0}})
    disk.ours(1, x={"n": 1})
    disk.ours(2, y={"n": 2})
    read = rows_of(disk.base)  # holds y: the writer saw version 2
    disk.ours(3, z={"n": 3})
    theirs = store({**read, "ext": {"n": 9}})
    assert disk.history.infer_base(theirs, 4 * S) == 2
    assert disk.history.infer_base(store({"a": {"n": 0}}), 4 * S) == -1  # shows nothing newer


def test_a_deletion_after_a_fresh_read_is_real() -> None:
    disk = Disk({"old": {"n": 0}})
    disk.ours(1, x={"n": 1})
    disk.ours(2, y={"n": 2})
    read = rows_of(disk.base)
    del read["x"], read["old"]
    outcome = disk.merge(store(read), at=2.5)
    assert rows_of(outcome.store) == {"y": {"n": 2}}
    assert outcome.repairs == [] and outcome.pending == set()


def test_where_the_file_shows_nothing_the_window_decides() -> None:
    """The writer deleted x, sessiond's only change: within 120 s of sessiond's write that may
    be a read from before it (kept); later, no writer can still hold such a read (deleted)."""
    for written_at, kept in [(60.0, True), (119.0, True), (122.0, False), (3600.0, False)]:
        disk = Disk({"a": {"n": 0}}, at=0.0)
        disk.ours(1, x={"n": 1})
        outcome = disk.merge(store({"a": {"n": 0}}), at=written_at)
        assert ("x" in outcome.store.rows) is kept, written_at


def test_a_value_sessiond_never_had_follows_the_conflict_rule() -> None:
    for file_at, winner in [(3, "daemon"), (9, "external")]:
        disk = Disk({"x": {"updatedAt": 1}})
        disk.ours(1, x={"updatedAt": 5})
        outcome = disk.merge(store({"x": {"updatedAt": file_at}}), at=1.1)
        assert [(c.key, c.winner) for c in outcome.conflicts] == [("x", winner)]
        expected = 5 if winner == "daemon" else file_at
        assert rows_of(outcome.store)["x"] == {"updatedAt": expected}
        assert outcome.repairs == []


def test_a_value_sessiond_superseded_is_stale_even_from_a_newer_base() -> None:
    disk = Disk({"x": {"n": 1}, "y": {"n": 0}})
    disk.ours(1, x={"n": 2})
    disk.ours(2, x={"n": 3}, y={"n": 1})
    theirs = store({"x": {"n": 2}, "y": {"n": 1}})  # y shows version 2, x is older
    outcome = disk.merge(theirs, at=2.1)
    assert rows_of(outcome.store)["x"] == {"n": 3}
    assert [(r.key, r.why) for r in outcome.repairs] == [("x", "superseded value")]


def test_a_row_older_than_sessionds_latest_write_never_comes_back() -> None:
    """Even once the row is another writer's: a file that puts back a row from before
    sessiond's latest write of it was built before that write, so it cannot take it back."""
    disk = Disk({"s": {"n": 0}})
    read = rows_of(disk.base)
    disk.ours(1, s={"n": 5})  # acknowledged
    other = store({"s": {"n": 9}})  # then another writer's fresh change
    disk.history.record(disk.base, other, ["s"], at_ns=2 * S)
    disk.base, disk.memory = other, other.copy()
    disk.own.discard("s")
    outcome = disk.merge(store(read), at=3)
    assert rows_of(outcome.store) == {"s": {"n": 9}}
    assert [(r.key, r.why) for r in outcome.repairs] == [("s", "superseded value")]


def test_another_writers_rows_are_left_to_the_files() -> None:
    """Only sessiond's own rows are protected: a row another file changed after the stale
    writer's read is taken back by that writer's file, as before (their race, not sessiond's)."""
    disk = Disk({"a": {"n": 0}, "b": {"n": 0}})
    read = rows_of(disk.base)
    other = store({"a": {"n": 7}, "b": {"n": 0}})
    disk.history.record(disk.base, other, ["a"], at_ns=1 * S)
    disk.base, disk.memory = other, other.copy()
    outcome = disk.merge(store({**read, "b": {"n": 1}}), at=1.5)
    assert rows_of(outcome.store) == {"a": {"n": 0}, "b": {"n": 1}}
    assert outcome.repairs == [] and outcome.conflicts == []


def test_an_unflushed_change_loses_to_a_deletion_by_a_writer_that_saw_the_row() -> None:
    disk = Disk({"x": {"n": 1}})
    disk.memory.put("x", msgspec.Raw(b'{"n":2}'))  # a request's change, not written yet
    disk.own.add("x")
    outcome = disk.merge(store({}), at=1, dirty={"x"})
    assert "x" not in outcome.store.rows
    assert [(c.key, c.winner) for c in outcome.conflicts] == [("x", "external")]


def test_a_row_the_writer_created_and_deletes_again_is_deleted() -> None:
    """A writer's own row, dropped for a moment by sessiond's exchange and written back by the
    merge: still the writer's row, so its next file, lacking it, deletes it."""
    disk = Disk({"a": {"n": 0}})
    theirs1 = store({"a": {"n": 0}, "w": {"n": 1}})
    disk.history.record(disk.base, theirs1, ["w"], at_ns=1 * S)
    exchanged = disk.base.copy()  # our file as the exchange put it, without w
    disk.history.record(theirs1, exchanged, ["w"], at_ns=1 * S)
    merged = theirs1.copy()
    disk.history.record(exchanged, merged, ["w"], at_ns=2 * S)
    disk.base, disk.memory = merged, merged.copy()
    outcome = disk.merge(store({"a": {"n": 0}}), at=3)
    assert "w" not in outcome.store.rows and outcome.repairs == []


def test_the_history_is_bounded_in_time_and_size() -> None:
    history = WriteHistory(window_ns=10 * S, max_changes=100)
    history.start(0)
    before = store({})
    for i in range(1, 50):
        after = before.copy()
        after.put(f"k{i}", msgspec.Raw(b"1"))
        after.put(f"j{i}", msgspec.Raw(b"2"))
        history.record(before, after, [f"k{i}", f"j{i}"], at_ns=i * S)
        before = after
    assert history.changes <= 100
    assert len(history.versions) <= 12  # those that left the disk in the last 10 s, and one
    assert history.versions[0].at_ns <= (49 - 10) * S
    assert sum(len(v) for v in history.by_key.values()) == history.changes
    small = WriteHistory(max_changes=10)
    small.start(0)
    big = store({f"r{i}": i for i in range(30)})
    small.record(store({}), big, big.keys(), at_ns=1)
    small.record(big, store({}), big.keys(), at_ns=2)
    assert len(small.versions) == 1 and small.changes == 30  # the newest is always kept


def test_rows_compare_without_whitespace() -> None:
    assert row_hash(msgspec.Raw(b'{"a": [1, 2]}')) == row_hash(msgspec.Raw(b'{"a":[1,2]}'))
    assert row_hash(msgspec.Raw(b'{"a":1}')) != row_hash(msgspec.Raw(b'{"a":2}'))
    assert row_hash(None) is None
