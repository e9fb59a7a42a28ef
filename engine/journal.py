"""The cleanup journal's entries: what one change to a store did, exactly enough to undo it.

An entry is written (durably, by daemon/journal.py) before the store write it describes. It
holds each changed row before and after (its tokens; absent: not there), the key each removed row
followed (so a restore puts it back where it stood), each file renamed (`moves`, names inside
the sessions dir) and each file deleted outright (`deletes`: those cannot come back).

A big cleanup's entry names a snapshot instead of copying its removed rows (`snapshot`,
rows `fromSnapshot`): the store version its write replaced, kept by that write itself
(daemon/durable_file.py exchanges the new file with it). Copying 65k rows into the entry and
fsyncing them cost more than the rest of a 100k-row apply; the snapshot costs no I/O at all.
`with_rows` reads the rows back out of it, and every question about rows takes such an entry.

The commit point of an entry is its store write: a restart that finds an entry unfinished asks
`commit_state` whether that write landed. If it did, the file operations are finished; if not,
any that ran are reversed. Either way the entry is then closed, never left half.

`plan_restore` inverts an entry against the store as it is now: a row that changed since (a
key that exists again) is reported, not overwritten; an archive whose original name is taken
is left where it is. The restore is itself an entry, so undoing it is one more restore.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from typing import Literal

import msgspec
from sessiond.engine.store import Store
from sessiond.engine.transcripts import is_archive
from sessiond.protocol.undo import (
    DeletionReason,
    JournalCounts,
    JournalKind,
    KeyOutcome,
    RestoreResult,
)

Options = dict[str, str | bool | None]


class RowChange(msgspec.Struct, rename="camel", omit_defaults=True):
    """One row before and after the change (absent: not there). `follows` is the key the row
    stood after before the change (None: it was first), for a removed row; `action` the rule
    that removed it (`prune-stale`, `delete`, ...).

    Written as `beforeRow`/`afterRow`: the row itself inside the entry, whitespace-free (its
    tokens exactly; the file's indentation is the store's to write). Entries written before
    issue 17 hold `before`/`after`, the row as a JSON string (every quote escaped: a 100k-row
    cleanup's entry was 224 MB, not 100), and read the same.
    """

    key: str
    before: str | None = None
    after: str | None = None
    follows: str | None = None
    action: str | None = None
    before_row: msgspec.Raw | msgspec.UnsetType = msgspec.UNSET
    after_row: msgspec.Raw | msgspec.UnsetType = msgspec.UNSET
    from_snapshot: bool = False

    @property
    def had(self) -> bool:
        """The row was there before the change."""
        return self.from_snapshot or self.before_row is not msgspec.UNSET or self.before is not None

    @property
    def has(self) -> bool:
        """The row is there after the change."""
        return self.after_row is not msgspec.UNSET or self.after is not None

    def before_json(self) -> bytes | None:
        if self.from_snapshot:
            raise RowsInSnapshot(self.key)
        if self.before_row is not msgspec.UNSET:
            return bytes(self.before_row)
        return None if self.before is None else self.before.encode()

    def after_json(self) -> bytes | None:
        if self.after_row is not msgspec.UNSET:
            return bytes(self.after_row)
        return None if self.after is None else self.after.encode()


class RowsInSnapshot(Exception):
    """A row's bytes were asked of an entry whose rows are still in its snapshot file: a
    caller forgot `with_rows` (a bug, never a user's error)."""


class FileMove(msgspec.Struct, rename="camel"):
    """A rename inside the sessions dir (names, not paths); `key` the row it belonged to."""

    source: str
    target: str
    key: str | None = None


class FileDelete(msgspec.Struct, rename="camel"):
    """A file deleted outright: no restore brings it back."""

    name: str
    size: int
    reason: DeletionReason
    archive: bool


class JournalEntry(msgspec.Struct, rename="camel", omit_defaults=True):
    """`filesFirst`: the renames run before the store write (a restore gives files back before
    rows point at them); otherwise after it (a cleanup drops rows before their files)."""

    id: str
    time_ms: int
    kind: JournalKind
    store_path: str
    options: Options = msgspec.field(default_factory=dict)
    rows: list[RowChange] = msgspec.field(default_factory=list)
    moves: list[FileMove] = msgspec.field(default_factory=list)
    deletes: list[FileDelete] = msgspec.field(default_factory=list)
    files_first: bool = False
    restores: str | None = None
    snapshot: str | None = None

    @property
    def empty(self) -> bool:
        return not (self.rows or self.moves or self.deletes)

    @property
    def removed_bytes(self) -> int:
        """What the removed rows' bytes would add to the entry written out in full."""
        return sum(
            len(r.before_row)
            for r in self.rows
            if r.after_row is msgspec.UNSET and r.before_row is not msgspec.UNSET
        )


def compacted(entry: JournalEntry) -> JournalEntry:
    """The entry as a line of JSON Lines holds it: each row's tokens without whitespace."""
    rows = [
        msgspec.structs.replace(
            r, before_row=_compact(r.before_row), after_row=_compact(r.after_row)
        )
        for r in entry.rows
    ]
    return msgspec.structs.replace(entry, rows=rows)


def by_snapshot(entry: JournalEntry, snapshot: str) -> JournalEntry:
    """The entry with its removed rows left in `snapshot` (the store version its write will
    replace): only their keys are written."""
    rows = [
        msgspec.structs.replace(r, before_row=msgspec.UNSET, from_snapshot=True)
        if r.after_row is msgspec.UNSET and r.before_row is not msgspec.UNSET
        else msgspec.structs.replace(
            r, before_row=_compact(r.before_row), after_row=_compact(r.after_row)
        )
        for r in entry.rows
    ]
    return msgspec.structs.replace(entry, rows=rows, snapshot=snapshot)


def with_rows(entry: JournalEntry, snapshot: Store | None) -> JournalEntry | None:
    """The entry with its snapshot's rows put back; None when they cannot be: the snapshot is
    gone, or it is not the version the entry's write replaced (a write cut short before its
    exchange leaves the new version there, without the removed rows)."""
    if entry.snapshot is None:
        return entry
    if snapshot is None:
        return None
    rows: list[RowChange] = []
    for change in entry.rows:
        if change.from_snapshot:
            raw = snapshot.rows.get(change.key)
            if raw is None:
                return None
            change = msgspec.structs.replace(change, before_row=raw, from_snapshot=False)
        rows.append(change)
    return msgspec.structs.replace(entry, rows=rows)


class Begin(msgspec.Struct, tag="begin", tag_field="type"):
    """Written, durably, before the store write the entry describes."""

    entry: JournalEntry


class Finish(msgspec.Struct, tag="finish", tag_field="type", rename="camel", omit_defaults=True):
    """The entry's end: `done` (with the file operations that failed and rows put back for
    them) or `rolled-back` (the store write never landed; renames already made reversed)."""

    id: str
    state: Literal["done", "rolled-back"]
    time_ms: int
    failed: list[str] = msgspec.field(default_factory=list)
    kept: list[str] = msgspec.field(default_factory=list)
    moved: int = 0
    deleted: int = 0
    recovered: bool = False


Record = Begin | Finish
RECORD = msgspec.json.Decoder(Record)


def counts(entry: JournalEntry) -> JournalCounts:
    removed = sum(1 for r in entry.rows if not r.has)
    added = sum(1 for r in entry.rows if not r.had)
    return JournalCounts(
        rows_removed=removed,
        rows_added=added,
        rows_changed=len(entry.rows) - removed - added,
        files_moved=len(entry.moves),
        files_deleted=len(entry.deletes),
    )


def _row(raw: msgspec.Raw | None) -> msgspec.Raw | msgspec.UnsetType:
    """A row as the store holds it; made whitespace-free (`compacted`, `by_snapshot`) only
    when the entry is written, and only for the rows written out."""
    return msgspec.UNSET if raw is None else raw


def _compact(raw: msgspec.Raw | msgspec.UnsetType) -> msgspec.Raw | msgspec.UnsetType:
    if raw is msgspec.UNSET:
        return raw
    return msgspec.Raw(msgspec.json.format(raw, indent=-1))


def row_changes(
    store: Store, changes: dict[str, msgspec.Raw | None], actions: dict[str, str]
) -> list[RowChange]:
    """The journal's view of `changes` made to `store` (rows that change nothing left out)."""
    follows: dict[str, str | None] = {}
    removed = {k for k, v in changes.items() if v is None and k in store.rows}
    if removed:
        previous: str | None = None
        for key in store.rows:
            if key in removed:
                follows[key] = previous
            previous = key
    out: list[RowChange] = []
    # In the store's order (then new keys in the order given): the entry does not depend on
    # how a set of removed keys happened to iterate.
    ordered = [k for k in store.rows if k in changes] if len(changes) > 1 else list(changes)
    ordered += [k for k in changes if k not in store.rows and len(changes) > 1]
    for key in ordered:
        new = changes[key]
        old = store.rows.get(key)
        if old is None and new is None:
            continue
        if old is not None and new is not None and bytes(old) == bytes(new):
            continue
        out.append(
            RowChange(
                key=key,
                before_row=_row(old),
                after_row=_row(new),
                follows=follows.get(key),
                action=actions.get(key),
            )
        )
    return out


def names(paths: Iterable[tuple[str, str]], owners: dict[str, str]) -> list[FileMove]:
    """Renames by name inside the sessions dir, each with the key whose session it served."""
    moves: list[FileMove] = []
    for source, target in paths:
        name = os.path.basename(source)
        moves.append(FileMove(name, os.path.basename(target), _owner(name, owners)))
    return moves


def _owner(name: str, owners: dict[str, str]) -> str | None:
    """The removed row whose session id names this transcript (`<id>.jsonl`, `<id>-topic-…`)."""
    stem = name.partition(".")[0]
    return owners.get(stem) or owners.get(stem.partition("-topic-")[0])


_REASONS: dict[str, DeletionReason] = {
    "expired": "retention",
    "budget": "budget",
    "sweep": "sweep",
    "sidecar": "sidecar",
}


def deletion(path: str, size: int, stage: str) -> FileDelete:
    name = os.path.basename(path)
    return FileDelete(name, size, _REASONS[stage], is_archive(name))


def same_row(a: bytes | None, b: bytes | None) -> bool:
    """The same row, whitespace aside: a row read back from the file is the indented slice of
    what was written compact from memory; the file's bytes for either are identical."""
    if a is None or b is None:
        return a is b
    if a == b:
        return True
    return msgspec.json.format(a, indent=0) == msgspec.json.format(b, indent=0)


def _current(store: Store, key: str) -> bytes | None:
    raw = store.rows.get(key)
    return None if raw is None else bytes(raw)


# ------------------------------------------------------------------------------ commit point

CommitState = Literal["before", "after"]


def commit_state(entry: JournalEntry, store: Store) -> CommitState:
    """Whether the entry's store write landed. It is one atomic rename, so any row still
    exactly as it was before says it did not; an entry without rows committed with its
    journal record. An entry whose snapshot cannot give its rows back (`with_rows` said None)
    is judged by keys: a removed key still in the store says the write did not land."""
    if any(change.from_snapshot for change in entry.rows):
        removed = [c.key for c in entry.rows if c.from_snapshot and not c.has]
        return "before" if any(key in store.rows for key in removed) else "after"
    for change in entry.rows:
        now, before = _current(store, change.key), change.before_json()
        if same_row(now, before) and not same_row(before, change.after_json()):
            return "before"
    return "after"


# ----------------------------------------------------------------------------------- restore


class RestorePlan(msgspec.Struct):
    """What a restore of `of` does now: row changes (with the order to leave), renames back,
    each key's outcome, files lost for good."""

    of: JournalEntry
    changes: dict[str, msgspec.Raw | None]
    order: Store | None
    moves: list[FileMove]
    keys: list[KeyOutcome]
    lost: list[str]
    rows: list[RowChange] = msgspec.field(default_factory=list)

    @property
    def conflicts(self) -> int:
        return sum(1 for k in self.keys if k.outcome == "conflict")

    @property
    def restored_rows(self) -> int:
        return sum(1 for k in self.keys if k.outcome == "restored")

    def result(self, agent_id: str, dry_run: bool) -> RestoreResult:
        """The answer before anything ran (a dry run's, or the one a driver fills in)."""
        return RestoreResult(
            agent_id=agent_id,
            store_path=self.of.store_path,
            restored_id=self.of.id,
            dry_run=dry_run,
            durable=True,
            keys=self.keys,
            restored_rows=self.restored_rows,
            conflicts=self.conflicts,
            renamed_files=len(self.moves),
            lost=self.lost,
        )

    def entry(self, entry_id: str, time_ms: int) -> JournalEntry:
        """The restore's own journal entry (empty when it changes nothing)."""
        return JournalEntry(
            id=entry_id,
            time_ms=time_ms,
            kind="restore",
            store_path=self.of.store_path,
            options={"of": self.of.id},
            rows=self.rows,
            moves=self.moves,
            files_first=any(not r.had for r in self.rows) or not self.rows,
            restores=self.of.id,
        )


def plan_restore(entry: JournalEntry, store: Store, exists: Callable[[str], bool]) -> RestorePlan:
    """Invert `entry` against `store` now; `exists(name)` asks the sessions dir about a name."""
    changes: dict[str, msgspec.Raw | None] = {}
    outcomes: dict[str, KeyOutcome] = {}
    for change in entry.rows:
        now, before = _current(store, change.key), change.before_json()
        if same_row(now, before):
            outcomes[change.key] = KeyOutcome(change.key, "present")
        elif same_row(now, change.after_json()):
            outcomes[change.key] = KeyOutcome(change.key, "restored")
            changes[change.key] = None if before is None else msgspec.Raw(before)
        else:
            outcomes[change.key] = KeyOutcome(change.key, "conflict")
    moves: list[FileMove] = []
    for move in entry.moves:
        owner = outcomes.get(move.key) if move.key is not None else None
        skipped = _skip_reason(move, owner, exists)
        if skipped is not None:
            if owner is not None:
                owner.skipped.append(f"{move.target}: {skipped}")
            continue
        moves.append(FileMove(move.target, move.source, move.key))
        if owner is not None:
            owner.transcripts.append(move.source)
    rows = row_changes(store, changes, {k: "restore" for k in changes})
    order = _restored_order(entry, store, changes) if changes else None
    return RestorePlan(
        of=entry,
        changes=changes,
        order=order,
        moves=moves,
        keys=list(outcomes.values()),
        lost=[d.name for d in entry.deletes],
        rows=rows,
    )


def _skip_reason(
    move: FileMove, owner: KeyOutcome | None, exists: Callable[[str], bool]
) -> str | None:
    if owner is not None and owner.outcome == "conflict":
        return "its key exists again"
    if not exists(move.target):
        return "gone"
    if exists(move.source):
        return "name taken"
    return None


def _restored_order(
    entry: JournalEntry, store: Store, changes: dict[str, msgspec.Raw | None]
) -> Store:
    """The rows after the restore, with each removed row back after the key it followed."""
    after: dict[str | None, list[str]] = {}
    for change in entry.rows:
        if not change.has and changes.get(change.key) is not None:
            after.setdefault(change.follows, []).append(change.key)
    rows: dict[str, msgspec.Raw] = {}

    def place(key: str | None) -> None:
        stack = list(reversed(after.pop(key, [])))
        while stack:
            child = stack.pop()
            raw = changes.get(child)
            if raw is not None and child not in rows:
                rows[child] = raw
            stack.extend(reversed(after.pop(child, [])))

    place(None)
    for key, raw in store.rows.items():
        if key in changes:
            new = changes[key]
            if new is None:
                place(key)
                continue
            rows[key] = new
        else:
            rows[key] = raw
        place(key)
    for leftover in list(after):  # the key they followed is gone: at the end, in order
        for key in after.pop(leftover, []):
            back = changes.get(key)
            if back is not None and key not in rows:
                rows[key] = back
            place(key)
    return Store(rows, store.status, None, store.had_bom)
