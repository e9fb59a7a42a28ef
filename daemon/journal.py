"""The cleanup journal on disk: one file per store, beside it, `sessions.json.journal` (0600).

JSON Lines of `Begin` (an entry, written and fsynced before the store write it describes) and
`Finish` (the entry's end) records. An append is one write plus an fsync (and, for a new file,
an fsync of the directory); a torn last line (a crash mid-append) is dropped when the file is
read, and the file rewritten without it through `write_durably`.

Retention, applied whenever an entry finishes: at most `KEEP_ENTRIES` finished entries, of
them at most `KEEP_SNAPSHOTS` with a snapshot, and none older than `KEEP_DAYS`; an entry that
renamed files to archives is kept only while one of those archives still exists (once the last
has expired there is nothing to rename back).
Unfinished entries are never dropped: opening the journal finishes or rolls them back first
(`StoreJournal.recover`), so after a crash the store, its files and the journal agree again.

A big cleanup's rows stay in a snapshot, `.sessiond-undo/<store name>.<entry id>` in the
store's dir: the version its store write replaced (`snapshot_path`). The subdirectory keeps it
out of every count and sweep of the sessions dir (OpenClaw's and ours look at regular files
directly in it). It goes when its entry goes, or when its write turned out never to land.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import secrets
import threading
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import msgspec
from sessiond.daemon.durable_file import (
    STORE_FILE_MODE,
    fsync_directory,
    write_durably,
)
from sessiond.daemon.fault_hooks import fault_point
from sessiond.daemon.store_files import JOURNAL_SUFFIX
from sessiond.engine.errors import JournalEntryNotFound, NotRestorable
from sessiond.engine.journal import (
    RECORD,
    Begin,
    Finish,
    JournalEntry,
    by_snapshot,
    commit_state,
    compacted,
    counts,
    with_rows,
)
from sessiond.engine.store import Store, load_store_bytes
from sessiond.engine.transcripts import iso_stamp
from sessiond.protocol.undo import EntryState, JournalEntrySummary


def _log() -> Any:
    """The journal's logger, imported when a line is logged (recovery only): a fresh local
    CLI process that merely names the journal's suffix does not pay for structlog."""
    import structlog

    return structlog.get_logger("sessiond.journal")


SNAPSHOT_DIR = ".sessiond-undo"
SNAPSHOT_MIN_BYTES = 8 << 20
"""From this many bytes of removed rows on, an entry names a snapshot instead of holding them:
the snapshot costs the old store's size on disk, but no write and no memory."""
KEEP_ENTRIES = 50
KEEP_SNAPSHOTS = 3
KEEP_DAYS = 30
_DAY_MS = 86_400_000
_ENCODER = msgspec.json.Encoder()


CHUNK_ITEMS = 4096
"""An entry with more rows, moves and deletions than this is encoded a slice of each list at a
time (`encoded_pieces`): a 100k-row cleanup's Begin is ~24 MB as one piece, and that piece
stood at the apply's peak memory beside the plan and the entry it encodes."""
_SLOT = "\x00sessiond-journal-slot-{}\x00"


def encoded_pieces(record: Begin | Finish, chunk: int = CHUNK_ITEMS) -> Iterator[bytes]:
    """The record's JSON (no newline), byte for byte what one `encode` gives, in pieces: a big
    entry's lists are left out of a first encoding (a marker string stands in each), then
    encoded `chunk` items at a time into their places. A marker that the entry's own text
    happens to hold, or one that cannot be found once, gives the one-piece encoding."""
    if not isinstance(record, Begin):
        yield _ENCODER.encode(record)
        return
    entry = record.entry
    lists: list[tuple[str, list[Any]]] = [
        ("rows", entry.rows),
        ("moves", entry.moves),
        ("deletes", entry.deletes),
    ]
    if sum(len(items) for _, items in lists) <= chunk:
        yield _ENCODER.encode(record)
        return
    filled = [(name, items) for name, items in lists if items]
    head = _ENCODER.encode(
        Begin(msgspec.structs.replace(entry, **{n: [_SLOT.format(n)] for n, _ in filled}))
    )
    places: list[tuple[int, bytes, list[Any]]] = []
    for name, items in filled:
        marker = _ENCODER.encode(_SLOT.format(name))
        if head.count(marker) != 1:
            yield _ENCODER.encode(record)
            return
        places.append((head.find(marker), marker, items))
    done = 0
    for at, marker, items in sorted(places, key=lambda place: place[0]):
        yield head[done:at]
        for start in range(0, len(items), chunk):
            if start:
                yield b","
            yield _ENCODER.encode(items[start : start + chunk])[1:-1]
        done = at + len(marker)
    yield head[done:]


def journal_path(store_path: str) -> str:
    return store_path + JOURNAL_SUFFIX


def snapshot_name(store_path: str, entry_id: str) -> str:
    """The entry's snapshot, relative to the store's dir."""
    return f"{SNAPSHOT_DIR}/{os.path.basename(store_path)}.{entry_id}"


def new_entry_id(now_ms: int) -> str:
    """Sortable by time, unique by its random tail: `20260512T101500.123Z-3fa2c1`."""
    return f"{iso_stamp(now_ms).replace('-', '')}-{secrets.token_hex(3)}"


@dataclass(slots=True)
class Tracked:
    entry: JournalEntry
    finish: Finish | None = None

    @property
    def state(self) -> EntryState:
        return "pending" if self.finish is None else self.finish.state


@dataclass(slots=True)
class JournalStats:
    """Counters since the daemon started, read by /metrics."""

    rows_removed: Counter[str] = field(default_factory=Counter)
    files_archived: int = 0
    files_removed: int = 0
    entries_written: int = 0


class StoreJournal:
    """One store's journal: its records in memory, appended to and compacted on disk."""

    def __init__(self, store_path: str, stats: JournalStats | None = None) -> None:
        self.store_path = store_path
        self.path = journal_path(store_path)
        self.directory = os.path.dirname(os.path.abspath(store_path))
        self.entries: dict[str, Tracked] = {}
        self.stats = stats or JournalStats()
        self.lock = threading.Lock()  # appends come from worker threads

    # ---------------------------------------------------------------------------- reading

    @classmethod
    def load(cls, store_path: str, stats: JournalStats | None = None) -> StoreJournal:
        journal = cls(store_path, stats)
        try:
            with open(journal.path, "rb") as handle:
                data = handle.read()
        except FileNotFoundError:
            return journal
        torn = False
        for line in data.split(b"\n"):
            if not line.strip():
                continue
            try:
                record = RECORD.decode(line)
            except (msgspec.DecodeError, msgspec.ValidationError):
                torn = True  # a crash mid-append: the entry never began
                continue
            journal._take(record)
        if torn or not data.endswith(b"\n"):
            _log().warning("journal had a torn record; rewritten without it", path=journal.path)
            journal._rewrite()
        return journal

    def _take(self, record: Begin | Finish) -> None:
        if isinstance(record, Begin):
            self.entries[record.entry.id] = Tracked(record.entry)
        else:
            tracked = self.entries.get(record.id)
            if tracked is not None:
                tracked.finish = record

    # ---------------------------------------------------------------------------- writing

    def _append(self, record: Begin | Finish) -> None:
        # Written in pieces (`encoded_pieces`), the newline on its own: a big cleanup's record
        # (65k rows and 59k moves) is ~24 MB, once and again with the newline added, at the
        # apply's peak memory. O_APPEND under the lock keeps the writes together; a crash
        # among them leaves a torn last record, which `load` drops (or, whole but without its
        # newline, rewrites).
        with self.lock:
            created = not os.path.exists(self.path)
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, STORE_FILE_MODE)
            try:
                start = os.fstat(fd).st_size
                try:
                    for part in itertools.chain(encoded_pieces(record), (b"\n",)):
                        view = memoryview(part)
                        while view:
                            view = view[os.write(fd, view) :]
                except BaseException:
                    # A piece that cannot be encoded (a lone surrogate) or written: the file
                    # goes back to its last whole record, as when the record was one piece.
                    with contextlib.suppress(OSError):
                        os.ftruncate(fd, start)
                    raise
                os.fsync(fd)
            finally:
                os.close(fd)
            if created:
                fsync_directory(self.directory)
            self._take(record)

    def _rewrite(self) -> None:
        lines = []
        for tracked in self.entries.values():
            lines.append(_ENCODER.encode(Begin(tracked.entry)))
            if tracked.finish is not None:
                lines.append(_ENCODER.encode(tracked.finish))
        data = b"".join(line + b"\n" for line in lines)
        if not data and not os.path.exists(self.path):
            return
        write_durably(self.path, data)

    def begin(self, entry: JournalEntry, snapshot: str | None = None) -> None:
        """Durable before returning: the store write it describes may follow. With `snapshot`
        (from `snapshot_name`), that write must keep the version it replaces there."""
        if snapshot is not None:
            os.makedirs(os.path.join(self.directory, SNAPSHOT_DIR), mode=0o700, exist_ok=True)
            written = by_snapshot(entry, snapshot)
        else:
            written = compacted(entry)
        self._append(Begin(written))
        self.stats.entries_written += 1
        fault_point("journal-begin")

    def finish(self, record: Finish, now_ms: int) -> None:
        self._append(record)
        fault_point("journal-finish")
        tracked = self.entries.get(record.id)
        if tracked is not None and record.state == "done":
            self._count(tracked.entry, record)
        elif tracked is not None:
            self._drop_snapshot(tracked.entry)  # its write never landed: nothing to restore
        self.prune(now_ms)

    def _count(self, entry: JournalEntry, record: Finish) -> None:
        kept = set(record.kept)
        for change in entry.rows:
            if not change.has and change.key not in kept:
                self.stats.rows_removed[change.action or entry.kind] += 1
        if entry.kind != "restore":
            self.stats.files_archived += record.moved
        self.stats.files_removed += record.deleted

    def prune(self, now_ms: int) -> None:
        """Apply the retention rules; rewrite the file when something was dropped."""
        restored = self.restored_by()
        finished = [t for t in self.entries.values() if t.finish is not None]
        drop: set[str] = set()
        cutoff = now_ms - KEEP_DAYS * _DAY_MS
        snapshots = 0
        for index, tracked in enumerate(reversed(finished)):
            entry = tracked.entry
            snapshots += entry.snapshot is not None
            if index >= KEEP_ENTRIES or entry.time_ms < cutoff:
                drop.add(entry.id)
            elif entry.snapshot is not None and snapshots > KEEP_SNAPSHOTS:
                drop.add(entry.id)  # each costs a whole store on disk: only the newest kept
            elif (
                tracked.state == "done"
                and entry.kind != "restore"
                and entry.id not in restored
                and entry.moves
                and not any(self._exists(m.target) for m in entry.moves)
            ):
                drop.add(entry.id)  # every archive it named has expired
        if drop:
            for entry_id in drop:
                self._drop_snapshot(self.entries[entry_id].entry)
            self.entries = {k: v for k, v in self.entries.items() if k not in drop}
            with self.lock:
                self._rewrite()

    def _exists(self, name: str) -> bool:
        return os.path.lexists(os.path.join(self.directory, name))

    def _drop_snapshot(self, entry: JournalEntry) -> None:
        if entry.snapshot is not None:
            with contextlib.suppress(OSError):
                os.unlink(os.path.join(self.directory, entry.snapshot))

    def with_rows(self, entry: JournalEntry) -> JournalEntry | None:
        """The entry with every row's bytes (read from its snapshot when it has one); None
        when its snapshot is gone or is not the version its write replaced."""
        if entry.snapshot is None:
            return entry
        try:
            with open(os.path.join(self.directory, entry.snapshot), "rb") as handle:
                data = handle.read()
        except OSError:
            return None
        snapshot = load_store_bytes(data, entry.snapshot)
        return with_rows(entry, None if snapshot.error is not None else snapshot)

    # ---------------------------------------------------------------------------- recovery

    def recover(self, store: Store, now_ms: int) -> list[Finish]:
        """Close every unfinished entry against the store on disk: finished when its store
        write landed (remaining renames and deletions carried out), else rolled back (renames
        already made are reversed). Returns the records written."""
        closed: list[Finish] = []
        for tracked in [t for t in self.entries.values() if t.finish is None]:
            entry = self.with_rows(tracked.entry) or tracked.entry
            if commit_state(entry, store) == "before":
                if entry.files_first:
                    for move in entry.moves:
                        self._rename(move.target, move.source)
                record = Finish(entry.id, "rolled-back", now_ms, recovered=True)
            else:
                failed: list[str] = []
                moved = deleted = 0
                for move in entry.moves:
                    done = self._rename(move.source, move.target)
                    if done is False:
                        failed.append(move.source)
                    moved += bool(done)
                if not entry.files_first:
                    for gone in entry.deletes:
                        deleted += self._delete(gone.name, gone.size)
                record = Finish(
                    entry.id, "done", now_ms, failed, moved=moved, deleted=deleted, recovered=True
                )
            _log().warning(
                "unfinished journal entry closed at start",
                path=self.store_path,
                entry=entry.id,
                kind=entry.kind,
                state=record.state,
            )
            self.finish(record, now_ms)
            closed.append(record)
        self._drop_unnamed_snapshots()
        return closed

    def _drop_unnamed_snapshots(self) -> None:
        """Snapshots of this store that no entry names (their entry was dropped while its
        snapshot could not be removed, or the journal was deleted by hand): nothing can use
        them, and each is a whole store on disk."""
        prefix = os.path.basename(self.store_path) + "."
        named = {t.entry.snapshot for t in self.entries.values() if t.entry.snapshot}
        try:
            found = os.listdir(os.path.join(self.directory, SNAPSHOT_DIR))
        except OSError:
            return
        for name in found:
            relative = f"{SNAPSHOT_DIR}/{name}"
            if name.startswith(prefix) and relative not in named:
                with contextlib.suppress(OSError):
                    os.unlink(os.path.join(self.directory, relative))

    def _rename(self, source: str, target: str) -> bool | None:
        """True: renamed; None: nothing to do (already done, or gone); False: it failed."""
        src, dst = os.path.join(self.directory, source), os.path.join(self.directory, target)
        if not os.path.lexists(src) or os.path.lexists(dst):
            return None
        try:
            os.rename(src, dst)
        except OSError as exc:
            _log().error("recovery rename failed", source=src, target=dst, error=str(exc))
            return False
        with contextlib.suppress(OSError):
            fsync_directory(self.directory)
        return True

    def _delete(self, name: str, size: int) -> int:
        path = os.path.join(self.directory, name)
        try:
            if os.path.islink(path) or not os.path.isfile(path) or os.path.getsize(path) != size:
                return 0
            os.unlink(path)
        except OSError:
            return 0
        return 1

    # ------------------------------------------------------------------------------ queries

    def restored_by(self) -> dict[str, str]:
        """Entry id -> the restore that undid it (finished, or under way)."""
        out: dict[str, str] = {}
        for tracked in self.entries.values():
            entry = tracked.entry
            if entry.restores is not None and tracked.state != "rolled-back":
                out[entry.restores] = entry.id
        return out

    def why_not(self, tracked: Tracked, restored: dict[str, str]) -> str | None:
        """Why `sessions.restore` would refuse this entry; None when it would act."""
        if tracked.state == "pending":
            return "unfinished: it is closed at the next start"
        if tracked.state == "rolled-back":
            return "rolled back: its store write never landed"
        by = restored.get(tracked.entry.id)
        if by is not None:
            return f"restored by {by}"
        if not tracked.entry.rows and not tracked.entry.moves:
            return "it only deleted files, which cannot come back"
        snapshot = tracked.entry.snapshot
        if snapshot is not None and not self._exists(snapshot):
            return f"the snapshot holding its rows ({snapshot}) is gone"
        return None

    def newest_first(self) -> Iterator[Tracked]:
        return reversed(list(self.entries.values()))

    def pick(self, entry_id: str | None) -> JournalEntry:
        """The entry to restore: `entry_id`, or the newest restorable one."""
        restored = self.restored_by()
        if entry_id is None:
            for tracked in self.newest_first():
                if self.why_not(tracked, restored) is None:
                    return self._rows_for_restore(tracked.entry)
            raise JournalEntryNotFound(
                "nothing to restore: no journal entry can be restored",
                {"storePath": self.store_path},
            )
        found = self.entries.get(entry_id)
        if found is None:
            raise JournalEntryNotFound(
                f"no journal entry {entry_id!r}", {"id": entry_id, "storePath": self.store_path}
            )
        why = self.why_not(found, restored)
        if why is not None:
            raise NotRestorable(
                f"{entry_id} cannot be restored: {why}", {"id": entry_id, "why": why}
            )
        return self._rows_for_restore(found.entry)

    def _rows_for_restore(self, entry: JournalEntry) -> JournalEntry:
        full = self.with_rows(entry)
        if full is None:
            why = f"the snapshot holding its rows ({entry.snapshot}) cannot be read"
            raise NotRestorable(
                f"{entry.id} cannot be restored: {why}", {"id": entry.id, "why": why}
            )
        return full

    def summaries(self, limit: int) -> list[JournalEntrySummary]:
        restored = self.restored_by()
        out: list[JournalEntrySummary] = []
        for tracked in self.newest_first():
            if len(out) >= limit:
                break
            entry = tracked.entry
            why = self.why_not(tracked, restored)
            out.append(
                JournalEntrySummary(
                    id=entry.id,
                    time_ms=entry.time_ms,
                    kind=entry.kind,
                    state=tracked.state,
                    store_path=entry.store_path,
                    options=entry.options,
                    counts=counts(entry),
                    deleted_files=[d.name for d in entry.deletes],
                    restorable=why is None,
                    why=why,
                    restores=entry.restores,
                    restored_by=restored.get(entry.id),
                )
            )
        return out


class Journals:
    """Every store's journal, opened (and recovered) once, with the counters /metrics reads."""

    def __init__(self) -> None:
        self.stats = JournalStats()
        self._open: dict[str, StoreJournal] = {}
        import asyncio  # the daemon's; the CLI's journals never take it

        self.apply_lock = asyncio.Lock()
        """One apply or restore at a time: each entry is planned on the store the last left."""
        self.pending: set[asyncio.Future[None]] = set()
        """Applies that answered before their renames were done (daemon/methods.py): the
        registry waits for them before it closes."""

    def open(self, store_path: str, store: Store, now_ms: int) -> StoreJournal:
        """The store's journal; the first open closes whatever a crash left unfinished."""
        journal = self._open.get(store_path)
        if journal is None:
            journal = StoreJournal.load(store_path, self.stats)
            journal.recover(store, now_ms)
            self._open[store_path] = journal
        return journal

    def peek(self, store_path: str) -> StoreJournal:
        """The journal as it is, for a store that does not parse: nothing is recovered
        against a store whose rows cannot be read (that would judge every write undone)."""
        return self._open.get(store_path) or StoreJournal.load(store_path, self.stats)

    def entry_counts(self) -> dict[str, int]:
        return {path: len(j.entries) for path, j in self._open.items()}
