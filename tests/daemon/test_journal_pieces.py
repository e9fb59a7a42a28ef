"""A big journal record written in pieces (daemon/journal.py `encoded_pieces`) is the very line
one encoding gives: every list sliced at any size, markers the entry's own text happens to hold,
lists left empty; a record that cannot be encoded leaves the journal file as it was."""

from __future__ import annotations

from pathlib import Path

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sessiond.daemon.journal import StoreJournal, encoded_pieces
from sessiond.engine.journal import (
    RECORD,
    Begin,
    FileDelete,
    FileMove,
    JournalEntry,
    RowChange,
)

_ENCODE = msgspec.json.Encoder().encode
MARKER = "\x00sessiond-journal-slot-rows\x00"

texts = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=12)
rows = st.builds(
    RowChange,
    key=texts,
    follows=st.none() | texts,
    action=st.none() | st.sampled_from(["prune-stale", "cap", "repair"]),
    before_row=st.builds(
        lambda v: msgspec.Raw(_ENCODE(v)),
        st.dictionaries(texts, st.integers() | texts | st.booleans(), max_size=3),
    ),
)
moves = st.builds(FileMove, source=texts, target=texts, key=st.none() | texts)
deletes = st.builds(
    FileDelete,
    name=texts,
    size=st.integers(0, 10**12),
    reason=st.sampled_from(["sweep", "budget"]),
    archive=st.booleans(),
)


def _entry(
    rows: list[RowChange], moves: list[FileMove], deletes: list[FileDelete], path: str = "/s"
) -> JournalEntry:
    return JournalEntry(
        id="20260512T101500.123Z-3fa2c1",
        time_ms=1,
        kind="cleanup",
        store_path=path,
        options={"mode": "enforce", "activeKey": None},
        rows=rows,
        moves=moves,
        deletes=deletes,
        snapshot=".sessiond-undo/sessions.json.x",
    )


@settings(max_examples=150, deadline=None)
@given(
    st.lists(rows, max_size=9),
    st.lists(moves, max_size=9),
    st.lists(deletes, max_size=5),
    st.integers(1, 6),
    st.sampled_from(["/s", f"/s/{MARKER}"]),
)
def test_the_pieces_are_the_one_encoding(
    rows: list[RowChange],
    moves: list[FileMove],
    deletes: list[FileDelete],
    chunk: int,
    path: str,
) -> None:
    record = Begin(_entry(rows, moves, deletes, path))
    line = b"".join(encoded_pieces(record, chunk))
    assert line == _ENCODE(record)
    assert _ENCODE(RECORD.decode(line)) == line


def test_a_big_entry_is_written_in_pieces_and_read_back(tmp_path: Path) -> None:
    store = tmp_path / "sessions.json"
    entry = _entry(
        [
            RowChange(f"agent:main:r{n}", before_row=msgspec.Raw(b'{"n":%d}' % n))
            for n in range(9000)
        ],
        [FileMove(f"s{n}.jsonl", f"s{n}.jsonl.deleted.x", f"k{n}") for n in range(5000)],
        [],
    )
    assert len(list(encoded_pieces(Begin(entry)))) > 3  # really in pieces
    journal = StoreJournal(str(store))
    journal.begin(entry)
    assert (tmp_path / "sessions.json.journal").read_bytes() == _ENCODE(Begin(entry)) + b"\n"
    again = StoreJournal.load(str(store))
    assert again.entries[entry.id].entry == entry


def test_a_record_that_cannot_be_encoded_leaves_the_journal_as_it_was(tmp_path: Path) -> None:
    store = tmp_path / "sessions.json"
    journal = StoreJournal(str(store))
    first = _entry([RowChange("agent:main:a", before_row=msgspec.Raw(b"{}"))], [], [])
    journal.begin(first)
    before = (tmp_path / "sessions.json.journal").read_bytes()
    lone = "agent:main:\ud800"  # a lone surrogate: JSON cannot hold it
    bad = _entry(
        [RowChange(f"agent:main:r{n}", before_row=msgspec.Raw(b"{}")) for n in range(5000)]
        + [RowChange(lone, before_row=msgspec.Raw(b"{}"))],
        [],
        [],
    )
    bad.id = "20260512T101501.000Z-000000"
    with pytest.raises(UnicodeEncodeError):
        journal.begin(bad)
    assert (tmp_path / "sessions.json.journal").read_bytes() == before
    assert list(StoreJournal.load(str(store)).entries) == [first.id]
