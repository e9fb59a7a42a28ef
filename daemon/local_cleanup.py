"""Local mode: a cleanup applied straight to the files, for the CLI when no daemon answers."""

from __future__ import annotations

import os
from dataclasses import dataclass

from sessiond.daemon.cleanup_run import PlannedStore, applied_summary
from sessiond.daemon.disk_io import FileOpsOutcome, apply_file_ops, read_store, write_durably
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
    if plan.applied.after_count != len(store) or plan.removed_keys:
        if not store.writable:
            raise ApplyRefused(f"{path}: refusing to overwrite a store that does not parse")
        reduced = store.without(set(plan.removed_keys))
        if plan.removed_keys:
            write_durably(path, serialize_store(reduced))
    files = apply_file_ops(plan.file_ops, os.path.dirname(os.path.abspath(path)))
    applied_count = len(read_store(path))
    return LocalApply(applied_summary(plan, applied_count), files)
