"""Local mode: the apply flow driven straight against the files, when no daemon holds them."""

from __future__ import annotations

from dataclasses import dataclass

from sessiond.daemon.durable_file import apply_file_ops, read_store, write_durably
from sessiond.engine.cleanup.apply_flow import (
    CommitRows,
    FileOpsOutcome,
    apply_changes,
    apply_flow,
    restore_order,
)
from sessiond.engine.cleanup.report import applied_summary
from sessiond.engine.cleanup.targets import PlannedStore
from sessiond.engine.errors import StoreReadOnly
from sessiond.engine.store import serialize_store
from sessiond.protocol.cleanup import CleanupSummary


@dataclass(frozen=True, slots=True)
class LocalApply:
    summary: CleanupSummary
    files: FileOpsOutcome


def apply_locally(planned: PlannedStore) -> LocalApply:
    """Each commit is one durable write of the whole file; file operations follow it."""
    plan, store = planned.plan, planned.store
    path = plan.target.store_path
    working = store.copy()
    files = FileOpsOutcome()
    flow = apply_flow(plan, store)
    reply: FileOpsOutcome | None = None
    try:
        while True:
            step = flow.send(reply)
            reply = None
            if isinstance(step, CommitRows):
                if not store.writable:
                    raise StoreReadOnly(
                        f"{path}: refusing to overwrite a store that does not parse"
                    )
                apply_changes(working, step.changes)
                if step.order_like is not None:
                    restore_order(working, step.order_like)
                write_durably(path, serialize_store(working))
            else:
                files = reply = apply_file_ops(step.ops, step.directory)
    except StopIteration as done:
        reconciled = done.value
    applied_count = len(read_store(path))
    return LocalApply(applied_summary(plan, applied_count, reconciled.applied), files)
