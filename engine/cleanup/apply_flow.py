"""The one apply flow: a plan turned into steps that a driver carries out, CLI and daemon alike.

`apply_flow` is a generator (the way httpx drives an auth flow): it yields `CommitRows` (make
these row changes durable before going on) and `RunFileOps` (archive and remove these files,
send back what happened), and returns the reconciled figures. The local CLI drives it against
the files, the daemon against its live store; neither re-states the order, which is the
guarantee: the reduced store is durable before any transcript is archived or removed, so a crash
never leaves a row pointing at a file that is gone.

A removal that fails is not reported as done: its bytes are not credited, and a row the disk
budget evicted for that file is put back (a second commit), so the index never lies about what
was freed and never points at a file that is gone.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Generator

import msgspec
from sessiond.engine.cleanup.plan import AppliedFigures, FileOps, StorePlan
from sessiond.engine.store import Store, encode_row


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


@dataclasses.dataclass(frozen=True, slots=True)
class RunFileOps:
    """Carry out these file operations inside `directory`; send back a `FileOpsOutcome`."""

    ops: FileOps
    directory: str


ApplyStep = CommitRows | RunFileOps


@dataclasses.dataclass(frozen=True, slots=True)
class Reconciled:
    applied: AppliedFigures
    restore_keys: frozenset[str]


def apply_flow(
    plan: StorePlan, store: Store
) -> Generator[ApplyStep, FileOpsOutcome | None, Reconciled]:
    """Steps of one store's apply; `store` is the version the plan was made from."""
    changes: dict[str, msgspec.Raw | None] = dict.fromkeys(plan.removed_keys)
    if plan.repairs:
        # Rows whose stale sessionFile the plan points at the transcript that exists.
        repaired = store_after(plan, store)
        changes.update({k: repaired.rows[k] for k in plan.repairs if k in repaired.rows})
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
    return reconciled


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
    applied = dataclasses.replace(
        applied,
        after_count=applied.after_count + len(restore),
        disk_budget=budget,
        unreferenced=sweep,
    )
    return Reconciled(applied, frozenset(restore))
