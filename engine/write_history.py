"""The recent versions of one sessions.json, so that a stale write can be told from a real one.

Another writer (the OpenClaw gateway, an editor) reads the file, changes it in memory and renames
its version over it, with no lock; between its read and its rename (milliseconds, or a minute on
a very large store) it cannot see what sessiond writes. So its file may be built on an older
version than the one on disk, and, taken as is, would take back sessiond's newer rows.

`WriteHistory` keeps, per store, every version of the file sessiond wrote or loaded in the last
`WINDOW_NS`, as the rows each one changed: (key, hash of the row before, hash after). From
that, for a file that arrives:

- its *base*, the newest version its writer is known to have seen (`infer_base`): the newest
  version that introduced a row value the file holds (a value appears in no file whose writer
  did not see it), and at least the version that was on disk `WINDOW_NS` before the file was
  written (no writer holds its read longer: OpenClaw users saw 15-66 s on a 114 MB store);
- per row (`row_facts`), the value at that base (what the writer saw), whether sessiond's row
  went on disk only after it, and which rows were on disk before sessiond's latest own write
  of it (a file holding one of those was built before that write).

`engine.merge.merge_external` turns those facts into the decision per row. Memory is bounded:
versions that left the disk more than `WINDOW_NS` ago are dropped, and so are the oldest ones
once more than `MAX_CHANGES` row changes are kept; a row whose changes were dropped is judged
as if its writer had seen it (the merge of old). Pure: callers pass the time and the stores.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Collection, Iterable, Iterator
from dataclasses import dataclass, field

import msgspec
from sessiond.engine.store import Store

WINDOW_NS = 120 * 1_000_000_000
MAX_CHANGES = 50_000

# A row as it is compared: a 64-bit hash of its whitespace-free JSON; None when it is absent.
RowHash = int | None


def row_hash(raw: msgspec.Raw | bytes | None) -> RowHash:
    """Python's own hash of the bytes (SipHash, keyed afresh in every process): these hashes
    live only in this process's memory, and a 100k-row cleanup hashes 65k rows before its
    answer (blake2b and its int conversion were twice the cost of compacting the row)."""
    if raw is None:
        return None
    return hash(msgspec.json.format(raw, indent=0))


# Per key, the row before and after one version, and whether the new row is sessiond's own.
Changes = dict[str, tuple[RowHash, RowHash, bool]]


def diff(before: Store, after: Store, keys: Iterable[str], own: Collection[str] = ()) -> Changes:
    """The rows of `keys` that differ between two versions, as hashes (pure: any thread).
    `own`: keys whose row in `after` sessiond's own requests put (or deleted)."""
    changes: Changes = {}
    for key in keys:
        old, new = before.get(key), after.get(key)
        if old is new or (old is not None and new is not None and bytes(old) == bytes(new)):
            continue
        old_hash, new_hash = row_hash(old), row_hash(new)
        if old_hash != new_hash:
            changes[key] = (old_hash, new_hash, key in own)
    return changes


class RowLog:
    """One row across the kept versions: the row before them (`first`), then for each version
    that changed it the row it left and whether that row was sessiond's own, flat in one list
    (a row changed once costs ~300 bytes, each further change ~80)."""

    __slots__ = ("first", "flat")

    def __init__(self, first: RowHash) -> None:
        self.first = first
        self.flat: list[int | bool | None] = []  # version, row, own, version, row, own, ...

    def __len__(self) -> int:
        return len(self.flat) // 3

    def add(self, version: int, value: RowHash, own: bool) -> None:
        self.flat += (version, value, own)

    def changes(self) -> Iterator[tuple[int, RowHash, RowHash, bool]]:
        """(version, row before, row after, own) for each kept change, oldest first."""
        flat = self.flat
        before = self.first
        for i in range(0, len(flat), 3):
            after = flat[i + 1]
            yield flat[i], before, after, flat[i + 2]  # type: ignore[misc]
            before = after

    @property
    def latest(self) -> RowHash:
        """The row as the newest change left it."""
        return self.flat[-2]

    def drop_oldest(self) -> None:
        self.first = self.flat[1]
        del self.flat[:3]


@dataclass(frozen=True, slots=True)
class Version:
    number: int
    at_ns: int  # wall clock when it went on disk (or when sessiond first saw it there)
    keys: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class RowFacts:
    """What a file's writer had seen of one row, against the row sessiond holds (`mine`)."""

    seen: RowHash  # the row in the version the writer is known to have seen
    on_disk: RowHash  # the row in the newest version (what a fresh reader would have seen)
    mine_came_later: bool  # `mine` went on disk only after the version the writer saw
    superseded: frozenset[int]  # rows on disk before sessiond's latest own write of the row
    own_later: bool = False  # an own write of the row went on disk after the version seen


@dataclass(slots=True)
class WriteHistory:
    window_ns: int = WINDOW_NS
    max_changes: int = MAX_CHANGES
    versions: deque[Version] = field(default_factory=deque)
    by_key: dict[str, RowLog] = field(default_factory=dict)
    changes: int = 0
    latest: int = -1  # number of the newest version; -1: none yet

    def start(self, at_ns: int) -> int:
        """The file as first loaded: version 0, with no changes known."""
        return self.add({}, at_ns=at_ns)

    def record(
        self,
        before: Store,
        after: Store,
        keys: Iterable[str],
        *,
        at_ns: int,
        own: Collection[str] = (),
    ) -> int:
        """A new version on disk: `after`, which differs from `before` at most at `keys`;
        `own`: keys whose row in it sessiond's requests made (none in another writer's file)."""
        return self.add(diff(before, after, keys, own), at_ns=at_ns)

    def add(self, changes: Changes, *, at_ns: int) -> int:
        """A new version on disk whose changes `diff` computed (in a thread, for a big write)."""
        self.latest += 1
        number = self.latest
        for key, (old, new, own) in changes.items():
            row = self.by_key.get(key)
            if row is None:
                row = self.by_key[key] = RowLog(old)
            row.add(number, new, own)
        self.versions.append(Version(number, at_ns, tuple(changes)))
        self.changes += len(changes)
        self.prune(at_ns)
        return number

    def prune(self, now_ns: int) -> None:
        """Drop versions no writer can still hold as its base, then the oldest beyond the bound."""
        horizon = now_ns - self.window_ns
        while len(self.versions) > 1 and (
            self.versions[1].at_ns < horizon or self.changes > self.max_changes
        ):
            self._drop_oldest()

    def _drop_oldest(self) -> None:
        gone = self.versions.popleft()
        for key in gone.keys:
            row = self.by_key[key]
            row.drop_oldest()
            if not row:
                del self.by_key[key]
        self.changes -= len(gone.keys)

    @property
    def oldest(self) -> int:
        return self.versions[0].number if self.versions else 0

    def keys(self) -> set[str]:
        return set(self.by_key)

    def infer_base(self, theirs: Store, written_ns: int, latest: Store | None = None) -> int:
        """The newest version the writer of `theirs` (written at `written_ns`) is known to have
        seen; `oldest - 1` when nothing kept shows it saw any of them. `latest`: the newest
        version's rows, to skip hashing the rows `theirs` holds unchanged."""
        base = self.oldest - 1
        horizon = written_ns - self.window_ns
        for version in self.versions:
            if version.at_ns <= horizon:
                base = max(base, version.number)
        for key, row in self.by_key.items():
            raw = theirs.get(key)
            if raw is None:
                continue  # an absent row could be a deletion of its own: no proof of a read
            now = latest.get(key) if latest is not None else None
            unchanged = now is not None and bytes(now) == bytes(raw)
            value = row.latest if unchanged else row_hash(raw)
            if row.first == value:
                continue  # a value older than the history: proves nothing
            for number, _before, after, _own in row.changes():
                if after == value:
                    base = max(base, number)
                    break
        return base

    def row_facts(self, key: str, base: int, on_disk: RowHash, mine: RowHash) -> RowFacts:
        """The row `key` as the writer saw it in version `base`, and what the history says of
        `mine` (the row sessiond holds); `on_disk`: the row in the newest version."""
        row = self.by_key.get(key)
        if row is None:
            return RowFacts(on_disk, on_disk, False, frozenset())
        seen = row.first
        came_later = own_later = False
        older: set[RowHash] = {row.first}  # every row before the change at hand
        superseded: set[RowHash] = set()
        for number, _before, after, own in row.changes():
            if number <= base:
                seen = after
            else:
                came_later = came_later or after == mine
                own_later = own_later or own
            if own:
                superseded |= older  # a write of sessiond's own replaced all of them
            older.add(after)
        superseded.discard(None)
        superseded.discard(mine)
        return RowFacts(
            seen, on_disk, came_later, frozenset(v for v in superseded if v is not None), own_later
        )
