"""Carrying out a plan's file operations, and owning up to the ones the disk refused.

The store is committed first; then files are archived and removed. A removal that fails is not
reported as done: its bytes are not credited, and a row the disk budget evicted for that file is
put back (a second durable write), so the index never lies about what was freed and never points
at a file that is gone.
"""

from __future__ import annotations

import dataclasses
import os

import msgspec
from sessiond.daemon.cleanup import AppliedFigures, StorePlan
from sessiond.daemon.disk_io import FileOpsOutcome, apply_file_ops
from sessiond.daemon.store import Store, encode_row


@dataclasses.dataclass(frozen=True, slots=True)
class Reconciled:
    applied: AppliedFigures
    restore_keys: frozenset[str]


def store_after(plan: StorePlan, store: Store, restore: frozenset[str] = frozenset()) -> Store:
    """The store as the plan leaves it: removed rows gone (but `restore`), repairs made."""
    result = store.without(set(plan.removed_keys) - restore)
    for key, session_file in plan.repairs.items():
        row = result.decoded(key) if key in result else None
        if isinstance(row, dict):
            row["sessionFile"] = session_file
            result.put(key, encode_row(row))
    return result


def run_file_ops(plan: StorePlan) -> FileOpsOutcome:
    return apply_file_ops(plan.file_ops, os.path.dirname(os.path.abspath(plan.target.store_path)))


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
