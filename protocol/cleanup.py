"""`sessions.cleanup`: params and result objects, field for field as OpenClaw 2026.5.12 prints them.

Field order is the wire order: it matches the reference's `--json` output so a diff of the two
is empty. `applied` and `appliedCount` exist only on applied summaries (UNSET is never encoded).
"""

from __future__ import annotations

from typing import Literal

import msgspec
from sessiond.protocol.undo import FileDeletion, ProgressToken

Mode = Literal["enforce", "warn"]


class CleanupParams(msgspec.Struct, rename="camel", omit_defaults=True, forbid_unknown_fields=True):
    """The reference's params plus `dryRun`. No `store`: a remote caller never names a path.

    `planId` (from a dry run) applies only if the plan is still exactly that one;
    `progressToken` asks for `$/progress` notifications carrying it.
    """

    agent: str | None = None
    all_agents: bool = False
    enforce: bool = False
    active_key: str | None = None
    fix_missing: bool = False
    fix_dm_scope: bool = False
    dry_run: bool = False
    include_actions: bool = False
    plan_id: str | None = None
    progress_token: ProgressToken | None = None


class CleanupActionRow(msgspec.Struct, rename="camel"):
    """One row of the dry-run table, decided and labelled by the daemon, aged by the client.

    `updatedAt` is the row's raw value (a number, occasionally a string, or null) so the client
    computes the Age column with its own clock, exactly as the local table does.
    """

    action: str
    key: str
    updated_at: int | float | str | None
    model: str
    flags: str


class UnreferencedArtifacts(msgspec.Struct, rename="camel"):
    scanned_files: int
    removed_files: int
    freed_bytes: int
    older_than_ms: int


class DiskBudget(msgspec.Struct, rename="camel"):
    total_bytes_before: int
    total_bytes_after: int
    removed_files: int
    removed_entries: int
    freed_bytes: int
    max_bytes: int
    high_water_bytes: int
    over_budget: bool


class CleanupSummary(msgspec.Struct, rename="camel"):
    agent_id: str
    store_path: str
    mode: Mode
    dry_run: bool
    before_count: int
    after_count: int
    missing: int
    dm_scope_retired: int
    pruned: int
    capped: int
    unreferenced_artifacts: UnreferencedArtifacts
    disk_budget: DiskBudget | None
    would_mutate: bool
    applied: bool | msgspec.UnsetType = msgspec.UNSET
    applied_count: int | msgspec.UnsetType = msgspec.UNSET
    actions: list[CleanupActionRow] | msgspec.UnsetType = msgspec.UNSET
    # Beside the reference's fields (docs/compat.md): dry runs only.
    deletions: list[FileDeletion] | msgspec.UnsetType = msgspec.UNSET
    plan_id: str | msgspec.UnsetType = msgspec.UNSET


class AllAgentsCleanup(msgspec.Struct, rename="camel"):
    all_agents: bool
    mode: Mode
    dry_run: bool
    stores: list[CleanupSummary]
    plan_id: str | msgspec.UnsetType = msgspec.UNSET


CleanupResult = CleanupSummary | AllAgentsCleanup
