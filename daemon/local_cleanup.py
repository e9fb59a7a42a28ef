"""Local mode: a cleanup applied straight to the files, for the CLI when no daemon answers."""

from __future__ import annotations

from dataclasses import dataclass

from sessiond.daemon.cleanup_run import PlannedStore, applied_summary
from sessiond.daemon.disk_io import FileOpsOutcome, read_store, write_durably
from sessiond.daemon.plan_execution import reconcile, run_file_ops, store_after
from sessiond.daemon.store import serialize_store
from sessiond.protocol.cleanup import CleanupSummary


class ApplyRefused(Exception):
    """The store on disk cannot be replaced (it does not parse); nothing was changed."""


@dataclass(frozen=True, slots=True)
class LocalApply:
    summary: CleanupSummary
    files: FileOpsOutcome


def apply_locally(planned: PlannedStore) -> LocalApply:
    """Write the reduced store durably first, then archive and remove files as planned."""
    plan, store = planned.plan, planned.store
    path = plan.target.store_path
    if plan.removed_keys or plan.repairs:
        if not store.writable:
            raise ApplyRefused(f"{path}: refusing to overwrite a store that does not parse")
        write_durably(path, serialize_store(store_after(plan, store)))
    files = run_file_ops(plan)
    reconciled = reconcile(plan, files)
    if reconciled.restore_keys:
        # A budget eviction whose transcript could not be removed: the row comes back.
        write_durably(path, serialize_store(store_after(plan, store, reconciled.restore_keys)))
    applied_count = len(read_store(path))
    return LocalApply(applied_summary(plan, applied_count, reconciled.applied), files)
