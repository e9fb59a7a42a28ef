"""Undo, the cleanup journal, plan ids and progress: the wire types of issue 15's methods.

`sessions.cleanups` lists a store's journal, `sessions.restore` puts back what one entry
removed, and `$/progress` reports a long cleanup or restore to a client that passed a
`progressToken` (LSP's work-done progress: `begin`, `report`..., `end`, in that order).
"""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec

JournalKind = Literal["cleanup", "delete", "restore", "reset"]
"""What made the entry: a cleanup, a `sessions.delete`, a `sessions.restore`, a `sessions.reset`."""
EntryState = Literal["pending", "done", "rolled-back"]
DeletionReason = Literal["retention", "budget", "sweep", "sidecar"]
ProgressToken = str | int


class FileDeletion(msgspec.Struct, rename="camel"):
    """A file an apply deletes outright (no archive is kept, so no restore brings it back).

    `reason`: `retention` (an archive past its retention), `budget` (the disk budget),
    `sweep` (an unreferenced transcript or checkpoint), `sidecar` (a pruned row's trajectory).
    """

    path: str
    bytes: int
    reason: DeletionReason
    archive: bool


class _Params(msgspec.Struct, rename="camel", forbid_unknown_fields=True, omit_defaults=True):
    """camelCase on the wire; an unknown field is an error (-32602)."""


class CleanupsParams(_Params):
    """One agent's journal (default: the default agent's), newest entry first."""

    agent: str | None = None
    limit: Annotated[int, msgspec.Meta(ge=1, le=1000)] = 50


class JournalCounts(msgspec.Struct, rename="camel"):
    """What one entry did: rows removed, put back, changed; files archived (or renamed back)
    and deleted outright."""

    rows_removed: int
    rows_added: int
    rows_changed: int
    files_moved: int
    files_deleted: int


class JournalEntrySummary(msgspec.Struct, rename="camel", omit_defaults=True):
    """One journal entry as `sessions.cleanups` lists it.

    `restorable` says whether `sessions.restore` would act on it; `why` says why not.
    `restores` names the entry a restore undid; `restoredBy` the restore that undid this one.
    """

    id: str
    time_ms: int
    kind: JournalKind
    state: EntryState
    store_path: str
    options: dict[str, str | bool | None]
    counts: JournalCounts
    deleted_files: list[str]
    restorable: bool
    why: str | None = None
    restores: str | None = None
    restored_by: str | None = None


class CleanupsResult(msgspec.Struct, rename="camel"):
    agent_id: str
    store_path: str
    retention_entries: int
    retention_days: int
    entries: list[JournalEntrySummary]


class RestoreParams(_Params):
    """Undo one journal entry: `id`, or (without it) the newest restorable one.

    `dryRun` reports what would happen and changes nothing.
    """

    agent: str | None = None
    id: str | None = None
    dry_run: bool = False
    progress_token: ProgressToken | None = None


class KeyOutcome(msgspec.Struct, rename="camel", omit_defaults=True):
    """What a restore did (or would do) with one key: `restored`, `present` (already as the
    journal recorded it), or `conflict` (the key exists again with other bytes; not
    overwritten). `transcripts` lists archives renamed back for it; `skipped` files left
    where they are, with why."""

    key: str
    outcome: Literal["restored", "present", "conflict"]
    transcripts: list[str] = msgspec.field(default_factory=list)
    skipped: list[str] = msgspec.field(default_factory=list)


class RestoreResult(msgspec.Struct, rename="camel", omit_defaults=True):
    """`journalId` is the restore's own entry (restore it to undo the undo); absent on a dry
    run or when nothing changed. `lost` lists files the cleanup deleted outright."""

    agent_id: str
    store_path: str
    restored_id: str
    dry_run: bool
    durable: bool
    keys: list[KeyOutcome]
    restored_rows: int
    conflicts: int
    renamed_files: int
    lost: list[str]
    journal_id: str | None = None


class ProgressValue(msgspec.Struct, rename="camel", omit_defaults=True):
    """`kind` begin, report or end. `stage`: plan, journal, commit, files. `done`/`total`
    count the stage's units (rows planned, rows committed, files renamed or deleted)."""

    kind: Literal["begin", "report", "end"]
    title: str | None = None
    stage: str | None = None
    done: int | None = None
    total: int | None = None
    message: str | None = None


class ProgressParams(msgspec.Struct, rename="camel"):
    """Params of the `$/progress` notification: the request's token and one step."""

    token: ProgressToken
    value: ProgressValue


class StalePlanAction(msgspec.Struct, rename="camel"):
    previewed: int
    now: int
