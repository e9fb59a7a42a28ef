"""A journal entry's rows: written as the rows themselves (`beforeRow`/`afterRow`, whitespace-free)
since issue 17, read either way: an entry written before, with each row as a JSON string
(`before`/`after`), still commits, counts and restores the same."""

from __future__ import annotations

import msgspec
import pytest
from sessiond.engine.journal import (
    RECORD,
    Begin,
    JournalEntry,
    RowsInSnapshot,
    by_snapshot,
    commit_state,
    compacted,
    counts,
    plan_restore,
    row_changes,
    with_rows,
)
from sessiond.engine.store import load_store_bytes, serialize_store

ROWS = b'{"a": {"sessionId": "s-a", "n": [1, 2]}, "b": {"x": "y \\"q\\""}}'
FILE = serialize_store(load_store_bytes(ROWS, "sessions.json"))  # as the store writes it


def _entry(rows: list[object]) -> JournalEntry:
    line = msgspec.json.encode(
        {
            "type": "begin",
            "entry": {
                "id": "e1",
                "timeMs": 1,
                "kind": "cleanup",
                "storePath": "/s/sessions.json",
                "rows": rows,
            },
        }
    )
    record = RECORD.decode(line)
    assert isinstance(record, Begin)
    return record.entry


def test_new_rows_are_the_rows_themselves_and_restore_their_tokens() -> None:
    store = load_store_bytes(FILE, "sessions.json")
    rows = row_changes(store, {"b": None}, {"b": "prune-stale"})
    line = msgspec.json.encode(
        Begin(compacted(JournalEntry("e1", 1, "cleanup", "/s/sessions.json", rows=rows)))
    )
    assert b'"beforeRow":{"x":"y \\"q\\""}' in line and b'"before"' not in line
    entry = _entry(msgspec.json.decode(line)["entry"]["rows"])
    after = store.without({"b"})
    assert counts(entry).rows_removed == 1
    assert commit_state(entry, store) == "before" and commit_state(entry, after) == "after"
    plan = plan_restore(entry, after, lambda name: False)
    assert plan.restored_rows == 1
    assert plan.order is not None
    back = plan.order.copy()
    for key, raw in plan.changes.items():
        assert raw is not None
        back.put(key, raw)
    assert serialize_store(back) == FILE  # the file as it was, byte for byte


def test_an_entry_written_before_reads_the_same() -> None:
    store = load_store_bytes(FILE, "sessions.json")
    old_row = bytes(store.rows["b"]).decode()
    entry = _entry([{"key": "b", "before": old_row, "follows": "a", "action": "prune-stale"}])
    after = store.without({"b"})
    assert counts(entry).rows_removed == 1
    assert commit_state(entry, store) == "before" and commit_state(entry, after) == "after"
    plan = plan_restore(entry, after, lambda name: False)
    assert plan.restored_rows == 1 and plan.changes["b"] is not None
    assert bytes(plan.changes["b"]) == old_row.encode()


def test_an_entry_by_snapshot_writes_keys_and_reads_its_rows_back_from_the_old_version() -> None:
    store = load_store_bytes(FILE, "sessions.json")
    after = store.without({"b"})
    rows = row_changes(store, {"b": None}, {"b": "prune-stale"})
    entry = by_snapshot(
        JournalEntry("e1", 1, "cleanup", "/s/sessions.json", rows=rows), ".sessiond-undo/x"
    )
    line = msgspec.json.encode(Begin(entry))
    assert b'"fromSnapshot":true' in line and b"beforeRow" not in line and b'"y' not in line
    light = _entry(msgspec.json.decode(line)["entry"]["rows"])
    assert counts(light).rows_removed == 1
    with pytest.raises(RowsInSnapshot):
        light.rows[0].before_json()
    # Judged by keys while its rows cannot be read: a removed key still there, not landed.
    assert commit_state(light, store) == "before" and commit_state(light, after) == "after"
    # The snapshot is the version the write replaced: the rows come back from it.
    full = with_rows(entry, store)
    assert full is not None
    assert commit_state(full, store) == "before" and commit_state(full, after) == "after"
    plan = plan_restore(full, after, lambda name: False)
    assert plan.order is not None and plan.restored_rows == 1
    back = plan.order.copy()
    for key, raw in plan.changes.items():
        assert raw is not None
        back.put(key, raw)
    assert serialize_store(back) == FILE
    # A write cut short before its exchange leaves the new version there: no rows to give.
    assert with_rows(entry, after) is None and with_rows(entry, None) is None
