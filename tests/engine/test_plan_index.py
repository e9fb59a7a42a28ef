"""A kept `PlanIndex` equals one built from scratch, whatever happened to the store in between.

(And a store written with the index's help is the same bytes as one written without.)

Random sequences of patches, deletes, bulk changes, external edits (the whole store read back
from its bytes: every row a new object, most with the same bytes) and new dir listings, with
`sync` at random points between them; after each sync the kept index, and its answer about
the dir's unnamed files, must equal a fresh index's.
"""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sessiond.engine.cleanup.row_index import REBUILD_SHARE, PlanIndex
from sessiond.engine.disk_view import DirListing
from sessiond.engine.store import Store, encode_row, load_store_bytes, serialize_store
from sessiond.engine.transcripts import file_kind

PREFIX = "/state/agents/main/sessions/"
KEYS = [
    "agent:main:direct:{n}",
    "agent:main:telegram:group:-100{n}",
    "agent:main:explicit:{n}",
    "agent:main:hook:gmail:{n}",
    "agent:work:direct:{n}",
    "{n}",
]


def _sid(n: int) -> str:
    return f"{n:08x}-0000-4000-8000-{n:012x}"


ROW = st.fixed_dictionaries(
    {},
    optional={
        "sessionId": st.one_of(st.integers(0, 6).map(_sid), st.sampled_from(["bad id", "", 3])),
        "updatedAt": st.one_of(
            st.integers(0, 5), st.sampled_from(["x", "-Infinity", "4", None, 2.5])
        ),
        "sessionFile": st.sampled_from(
            ["", f"{_sid(1)}.jsonl", PREFIX + f"{_sid(2)}.jsonl", "/else/x.jsonl", 7]
        ),
        "chatType": st.sampled_from(["group", "direct"]),
        "compactionCheckpoints": st.just([{"preCompaction": {"sessionFile": "/x.jsonl"}}]),
        "other": st.integers(0, 3),
    },
)
KEY = st.builds(lambda family, n: family.format(n=n), st.sampled_from(KEYS), st.integers(0, 12))
NAMES = st.lists(
    st.one_of(
        st.integers(0, 6).map(lambda n: f"{_sid(n)}.jsonl"),
        st.sampled_from(["notes.txt", "bad id.jsonl", "a.trajectory.jsonl"]),
    ),
    unique=True,
    max_size=8,
)
OPS = st.lists(
    st.one_of(
        st.tuples(st.just("patch"), KEY, ROW),
        st.tuples(st.just("delete"), KEY),
        st.tuples(st.just("bulk"), st.lists(st.tuples(KEY, ROW), max_size=40)),
        st.tuples(st.just("external"), st.lists(st.tuples(KEY, ROW), max_size=3)),
        st.tuples(st.just("files"), NAMES),
    ),
    max_size=30,
)


def _listing(names: list[str]) -> DirListing:
    paths = [PREFIX + n for n in names]
    return DirListing(PREFIX.rstrip("/"), paths, paths, names, frozenset(names), True)


def _fresh(store: Store) -> PlanIndex:
    index = PlanIndex(PREFIX, "main")
    index.sync(store.rows, store.view)
    return index


def _check(kept: PlanIndex, store: Store, listing: DirListing) -> None:
    kept.sync(store.rows, store.view)
    fresh = _fresh(store)
    assert kept.snapshot() == fresh.snapshot()
    assert all(kept.facts[key] is f for _, key, f in kept.by_age)
    sweepable = listing.kinds(file_kind)[1]
    expected = [p for p in sweepable if listing.names[p] not in fresh.name_rows]
    assert kept.unnamed(listing, sweepable) == expected
    # A write copying the rows the index knows to be in file form writes the same bytes.
    assert serialize_store(store, kept.is_canonical) == serialize_store(store)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    start=st.lists(st.tuples(KEY, ROW), max_size=20),
    ops=OPS,
    syncs=st.lists(st.booleans(), min_size=30, max_size=30),
)
def test_a_kept_index_equals_one_built_from_scratch(
    start: list[tuple[str, dict[str, Any]]], ops: list[tuple[Any, ...]], syncs: list[bool]
) -> None:
    store = Store()
    for key, row in start:
        store.put(key, encode_row(row))
    kept = _fresh(store)
    listing = _listing([])
    for op, sync in zip(ops, syncs, strict=False):
        kind = op[0]
        if kind == "patch":
            store.put(op[1], encode_row(op[2]))
        elif kind == "delete":
            store.delete(op[1])
        elif kind == "bulk":
            for key, row in op[1]:
                store.put(key, encode_row(row))
        elif kind == "external":
            store = load_store_bytes(serialize_store(store), "sessions.json")
            for key, row in op[1]:
                store.put(key, encode_row(row))
        elif kind == "files":
            listing = _listing(op[1])
        if sync:  # some changes are synced one by one, some pile up first
            _check(kept, store, listing)
    _check(kept, store, listing)


def test_a_sync_that_changes_most_rows_rebuilds_the_age_order_once() -> None:
    store = Store()
    for n in range(40):
        store.put(f"agent:main:explicit:{n}", encode_row({"updatedAt": n}))
    kept = _fresh(store)
    for n in range(40 // REBUILD_SHARE + 1_001):
        store.put(f"agent:main:explicit:{n}", encode_row({"updatedAt": -n}))
    assert kept.sync(store.rows, store.view) > 1_000
    assert kept.snapshot() == _fresh(store).snapshot()
