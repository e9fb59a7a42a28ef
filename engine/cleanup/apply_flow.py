"""The one apply flow: a plan turned into steps that a driver carries out, CLI and daemon alike.

`apply_flow` is a generator (the way httpx drives an auth flow): it yields `RecordJournal`
(make this journal entry durable first), `CommitRows` (make these row changes durable before
going on), `RunFileOps` (archive and remove these files, send back what happened) and
`FinishJournal` (close the entry), and returns the reconciled figures. The local CLI drives it
against the files, the daemon against its live store; neither re-states the order, which is the
guarantee: the journal entry is durable before the store write it describes, and the reduced
store is durable before any transcript is archived or removed, so a crash never leaves a row
pointing at a file that is gone, nor a change the journal cannot undo or finish.

`entry_flow` is the same for a change that is already a journal entry (a delete, a restore).

A removal that fails is not reported as done: its bytes are not credited, and a row the disk
budget evicted for that file is put back (a second commit), so the index never lies about what
was freed and never points at a file that is gone.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Generator

import msgspec
from sessiond.engine.cleanup.plan import AppliedFigures, CleanupOptions, FileOps, StorePlan
from sessiond.engine.journal import JournalEntry, deletion, names, row_changes
from sessiond.engine.store import Store, encode_row
from sessiond.protocol.methods import ChangeReason


@dataclasses.dataclass(slots=True)
class FileOpsOutcome:
    """What the disk did with a plan's file operations; `failed` holds (path, reason)."""

    archived: list[tuple[str, str]] = dataclasses.field(default_factory=list)
    removed: list[str] = dataclasses.field(default_factory=list)
    failed: list[tuple[str, str]] = dataclasses.field(default_factory=list)


@dataclasses.dataclass(frozen=True, slots=True)
class CommitRows:
    """Make these changes durable (a Raw puts the row, None deletes it) before going on.

    `order_like`: rows put back stand where they stood in that version, not at the end.
    """

    changes: dict[str, msgspec.Raw | None]
    order_like: Store | None
    what: str
    reason: ChangeReason = "cleanup"


@dataclasses.dataclass(frozen=True, slots=True)
class RunFileOps:
    """Carry out these file operations inside `directory`; send back a `FileOpsOutcome`."""

    ops: FileOps
    directory: str


@dataclasses.dataclass(frozen=True, slots=True)
class RecordJournal:
    """Make this entry durable in the store's journal before the next step."""

    entry: JournalEntry


@dataclasses.dataclass(frozen=True, slots=True)
class FinishJournal:
    """Close the entry: done, with the removals that failed and the rows put back for them."""

    entry_id: str
    failed: tuple[str, ...] = ()
    kept: tuple[str, ...] = ()
    moved: int = 0
    deleted: int = 0


@dataclasses.dataclass(frozen=True, slots=True)
class EntryHeader:
    """Who names the entry: the driver (an id and the clock are I/O)."""

    id: str
    time_ms: int


ApplyStep = RecordJournal | CommitRows | RunFileOps | FinishJournal


@dataclasses.dataclass(frozen=True, slots=True)
class Reconciled:
    applied: AppliedFigures
    restore_keys: frozenset[str]


def apply_flow(
    plan: StorePlan, store: Store, header: EntryHeader, options: CleanupOptions
) -> Generator[ApplyStep, FileOpsOutcome | None, Reconciled]:
    """Steps of one store's apply; `store` is the version the plan was made from."""
    changes: dict[str, msgspec.Raw | None] = dict.fromkeys(plan.removed_keys)
    if plan.repairs:
        # Rows whose stale sessionFile the plan points at the transcript that exists.
        repaired = store_after(plan, store)
        changes.update({k: repaired.rows[k] for k in plan.repairs if k in repaired.rows})
    entry = cleanup_entry(plan, store, changes, header, options)
    if not entry.empty:
        yield RecordJournal(entry)
    if changes:
        yield CommitRows(changes, None, "the cleaned store")
    outcome = yield RunFileOps(
        plan.file_ops, os.path.dirname(os.path.abspath(plan.target.store_path))
    )
    assert outcome is not None, "a RunFileOps step is answered with its outcome"
    reconciled = reconcile(plan, outcome)
    if reconciled.restore_keys:
        # An evicted row whose transcript could not be removed comes back, where it stood.
        back: dict[str, msgspec.Raw | None] = {
            k: store.rows[k] for k in reconciled.restore_keys if k in store.rows
        }
        yield CommitRows(back, store, "restored rows")
    if not entry.empty:
        failed = tuple(path for path, _ in outcome.failed)
        kept = tuple(sorted(reconciled.restore_keys))
        yield FinishJournal(entry.id, failed, kept, len(outcome.archived), len(outcome.removed))
    return reconciled


def cleanup_entry(
    plan: StorePlan,
    store: Store,
    changes: dict[str, msgspec.Raw | None],
    header: EntryHeader,
    options: CleanupOptions,
) -> JournalEntry:
    """The journal entry of one store's apply: rows with their bytes, every file operation."""
    actions = {key: plan.actions[key].value for key in plan.removed_keys}
    actions.update(dict.fromkeys(plan.repairs, "repair"))
    owners: dict[str, str] = {}
    for key in plan.removed_keys:
        session_id = plan.views[key].fields.session_id if key in plan.views else None
        if isinstance(session_id, str) and session_id:
            owners.setdefault(session_id.strip(), key)
    return JournalEntry(
        id=header.id,
        time_ms=header.time_ms,
        kind="cleanup",
        store_path=plan.target.store_path,
        options={
            "mode": plan.mode,
            "enforce": options.enforce,
            "fixMissing": options.fix_missing,
            "fixDmScope": options.fix_dm_scope,
            "activeKey": options.active_key,
        },
        rows=row_changes(store, changes, actions),
        moves=names(plan.file_ops.archives, owners),
        deletes=[deletion(r.path, r.size, r.stage) for r in plan.file_ops.removals],
    )


def entry_flow(
    entry: JournalEntry,
    order_like: Store | None,
    changes: dict[str, msgspec.Raw | None],
    reason: ChangeReason | None = None,
) -> Generator[ApplyStep, FileOpsOutcome | None, FileOpsOutcome]:
    """Steps of a change that is one journal entry (a delete, a reset, a restore): journal,
    then files and rows in the entry's order, then the entry closed. Returns what the disk did.
    `reason` is the change's, as subscribers hear it (default: from the entry's kind)."""
    directory = os.path.dirname(os.path.abspath(entry.store_path))
    ops = FileOps(
        archives=tuple(
            (os.path.join(directory, m.source), os.path.join(directory, m.target))
            for m in entry.moves
        )
    )
    yield RecordJournal(entry)
    outcome: FileOpsOutcome | None = FileOpsOutcome()
    if entry.files_first and ops.archives:
        outcome = yield RunFileOps(ops, directory)
    if changes:
        if reason is None:
            reason = "restore" if entry.kind == "restore" else "delete"
        yield CommitRows(changes, order_like, f"the {entry.kind}", reason)
    if not entry.files_first and ops.archives:
        outcome = yield RunFileOps(ops, directory)
    assert outcome is not None, "a RunFileOps step is answered with its outcome"
    failed = tuple(path for path, _ in outcome.failed)
    yield FinishJournal(entry.id, failed, (), len(outcome.archived), len(outcome.removed))
    return outcome


def store_after(plan: StorePlan, store: Store, restore: frozenset[str] = frozenset()) -> Store:
    """The store as the plan leaves it: removed rows gone (but `restore`), repairs made."""
    result = store.without(set(plan.removed_keys) - restore)
    for key, session_file in plan.repairs.items():
        row = result.decoded(key) if key in result else None
        if isinstance(row, dict):
            row["sessionFile"] = session_file
            result.put(key, encode_row(row))
    return result


def apply_changes(store: Store, changes: dict[str, msgspec.Raw | None]) -> list[str]:
    """Put or delete rows in place; returns the keys that actually changed."""
    touched: list[str] = []
    for key, raw in changes.items():
        if raw is None:
            if store.delete(key) is None:
                continue
        else:
            store.put(key, raw)
        touched.append(key)
    return touched


def restore_order(store: Store, earlier: Store) -> None:
    """Rows that stood in `earlier` go back to its order; new ones follow."""
    rows = store.rows
    placed = {k: rows[k] for k in earlier.rows if k in rows}
    placed.update((k, v) for k, v in rows.items() if k not in placed)
    store.rows = placed


def reconcile(plan: StorePlan, outcome: FileOpsOutcome) -> Reconciled:
    """The applied figures after subtracting every removal the disk refused."""
    failed = {path for path, _ in outcome.failed}
    applied = plan.applied
    if not failed:
        return Reconciled(applied, frozenset())
    budget = applied.disk_budget
    sweep = applied.unreferenced
    restore: set[str] = set()
    for removal in plan.file_ops.removals:
        if removal.path not in failed or removal.size <= 0:
            continue
        if removal.stage == "sweep":
            sweep = msgspec.structs.replace(
                sweep,
                removed_files=sweep.removed_files - 1,
                freed_bytes=sweep.freed_bytes - removal.size,
            )
        elif removal.stage == "budget" and budget is not None:
            extra = 0
            entries = budget.removed_entries
            if removal.owner_key is not None and removal.owner_key not in restore:
                restore.add(removal.owner_key)
                extra = removal.owner_chunk_bytes
                entries -= 1
            budget = msgspec.structs.replace(
                budget,
                removed_files=budget.removed_files - 1,
                freed_bytes=budget.freed_bytes - removal.size,
                total_bytes_after=budget.total_bytes_after + removal.size + extra,
                removed_entries=entries,
            )
    applied = msgspec.structs.replace(
        applied,
        after_count=applied.after_count + len(restore),
        disk_budget=budget,
        unreferenced=sweep,
    )
    return Reconciled(applied, frozenset(restore))
