"""Local mode: the apply and restore flows driven straight against the files, when no daemon
holds them. Each commit is one durable write of the whole file; the journal is written through
the same daemon/journal.py the daemon uses, so both journal identically."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Generator
from dataclasses import dataclass
from typing import TypeVar

from sessiond.daemon.clock import now_ms as clock_ms
from sessiond.daemon.durable_file import apply_file_ops, read_store, write_durably
from sessiond.daemon.journal import StoreJournal, new_entry_id
from sessiond.engine.cleanup.apply_flow import (
    ApplyStep,
    CommitRows,
    EntryHeader,
    FileOpsOutcome,
    FinishJournal,
    RecordJournal,
    apply_changes,
    apply_flow,
    entry_flow,
    restore_order,
)
from sessiond.engine.cleanup.plan import CleanupOptions
from sessiond.engine.cleanup.progress import NO_PROGRESS, Progress
from sessiond.engine.cleanup.report import applied_summary
from sessiond.engine.cleanup.targets import PlannedStore
from sessiond.engine.errors import StoreReadOnly
from sessiond.engine.journal import Finish, plan_restore
from sessiond.engine.store import Store, serialize_store
from sessiond.protocol.cleanup import CleanupSummary
from sessiond.protocol.undo import RestoreResult

R = TypeVar("R")
REPORT_EVERY_S = 0.1


@dataclass(frozen=True, slots=True)
class LocalApply:
    summary: CleanupSummary
    files: FileOpsOutcome


def open_journal(path: str, now_ms: int) -> StoreJournal:
    """The store's journal, with whatever a killed run left unfinished closed first."""
    journal = StoreJournal.load(path)
    if any(t.finish is None for t in journal.entries.values()):
        store = read_store(path)
        if store.error is None:  # rows that cannot be read cannot judge a commit
            journal.recover(store, now_ms)
    return journal


def drive_locally(
    flow: Generator[ApplyStep, FileOpsOutcome | None, R],
    store: Store,
    journal: StoreJournal,
    now_ms: int,
    progress: Progress = NO_PROGRESS,
) -> tuple[R, FileOpsOutcome]:
    """Carry out a flow's steps on the files; returns its result and what the disk did."""
    path = journal.store_path
    working = store.copy()
    files = FileOpsOutcome()
    reply: FileOpsOutcome | None = None
    try:
        while True:
            step = flow.send(reply)
            reply = None
            if isinstance(step, RecordJournal):
                progress.report("journal", 0, 1)
                journal.begin(step.entry)
            elif isinstance(step, FinishJournal):
                journal.finish(
                    Finish(
                        step.entry_id,
                        "done",
                        now_ms,
                        list(step.failed),
                        list(step.kept),
                        step.moved,
                        step.deleted,
                    ),
                    now_ms,
                )
            elif isinstance(step, CommitRows):
                if not store.writable:
                    raise StoreReadOnly(
                        f"{path}: refusing to overwrite a store that does not parse"
                    )
                progress.report("commit", 0, len(step.changes))
                apply_changes(working, step.changes)
                if step.order_like is not None:
                    restore_order(working, step.order_like)
                write_durably(path, serialize_store(working))
                progress.report("commit", len(step.changes), len(step.changes))
            else:
                total = len(step.ops.archives) + len(step.ops.removals)
                files = reply = apply_file_ops(step.ops, step.directory, _reporter(progress, total))
                progress.report("files", total, total)
    except StopIteration as done:
        return done.value, files


def _reporter(progress: Progress, total: int) -> Callable[[int], None]:
    last = [time.monotonic()]
    progress.report("files", 0, total)

    def on_step(done: int) -> None:
        now = time.monotonic()
        if now - last[0] >= REPORT_EVERY_S:
            last[0] = now
            progress.report("files", done, total)

    return on_step


def apply_locally(
    planned: PlannedStore,
    options: CleanupOptions | None = None,
    now_ms: int | None = None,
    progress: Progress = NO_PROGRESS,
) -> LocalApply:
    """One store's apply, journaled beside it (`options` as the plan was made with them)."""
    options = options or CleanupOptions()
    now_ms = clock_ms() if now_ms is None else now_ms
    plan, store = planned.plan, planned.store
    path = plan.target.store_path
    journal = open_journal(path, now_ms)
    header = EntryHeader(new_entry_id(now_ms), now_ms)
    reconciled, files = drive_locally(
        apply_flow(plan, store, header, options), store, journal, now_ms, progress
    )
    applied_count = len(read_store(path))
    return LocalApply(applied_summary(plan, applied_count, reconciled.applied), files)


def restore_locally(
    agent_id: str,
    path: str,
    entry_id: str | None,
    dry_run: bool,
    now_ms: int,
    progress: Progress = NO_PROGRESS,
) -> RestoreResult:
    """Undo one journal entry of the store at `path` (default: the newest restorable)."""
    store = read_store(path)
    if not store.writable:
        raise StoreReadOnly(f"{path}: refusing to overwrite a store that does not parse")
    journal = open_journal(path, now_ms)
    entry = journal.pick(entry_id)
    directory = os.path.dirname(os.path.abspath(path))
    restore = plan_restore(entry, store, lambda n: os.path.lexists(os.path.join(directory, n)))
    result = restore.result(agent_id, dry_run)
    mine = restore.entry(new_entry_id(now_ms), now_ms)
    if dry_run or mine.empty:
        return result
    progress.begin("sessions.restore", "journal", 1)
    outcome, _files = drive_locally(
        entry_flow(mine, restore.order, restore.changes), store, journal, now_ms, progress
    )
    progress.end(f"restored {result.restored_rows} rows")
    result.renamed_files = len(outcome.archived)
    result.journal_id = mine.id
    return result
