"""The cleanup planner as it was before its inputs were kept current (issue 17), kept as the
oracle of tests/engine/test_plan_equivalence.py: every row and file asked anew on every plan,
no index, no shortcut. Only its imports and the one SessionsDir method it calls by another
name changed; it returns its own StorePlan, compared field by field.

The original docstring follows.

The cleanup engine: one pure planning step that decides everything a cleanup will do.

`plan_cleanup` takes a store, its sessions dir as seen through a `DiskView`, the config, the
options and a clock reading, and returns a `StorePlan`: which key leaves by which rule, which
files are archived or removed, and every figure the reports print. A dry run prints the plan; an
apply executes the very same plan (`apply_flow.apply_flow`), so what the dry run promised is
what happens.

Stages, in the reference's order, each on what the previous left:
  fix-missing -> retire-dm-scope -> prune-stale -> cap-overflow -> (archive, expire archives)
  -> evict-budget -> unreferenced-artifact sweep.
Action precedence for a key: retire-dm-scope > prune-missing > prune-stale > cap-overflow >
evict-budget > keep. Under `mode: warn` (without `enforce`) an apply performs only the two fix
stages; the plan's figures still show what enforcement would do, as the reference's dry run does.
"""

from __future__ import annotations

import enum
import functools
import math
import os
from dataclasses import dataclass, field
from typing import Any, Literal

import msgspec
from sessiond.engine.config import Maintenance, MaintenanceMode, SessionsConfig, StoreTarget
from sessiond.engine.disk_view import DirFile, DiskView, canonical
from sessiond.engine.js_semantics import is_finite_number, js_truthy, to_number
from sessiond.engine.keys import (
    is_main_scope_stale_direct_key,
    is_protected,
    normalize_preserve_key,
)
from sessiond.engine.store import RowView, Store, row_chunk, store_size_for_chunks
from sessiond.engine.transcripts import (
    SessionsDir,
    archive_name,
    archive_timestamp,
    is_archive,
    is_sweepable,
    parse_archive_stamp_ms,
    validate_session_id,
)
from sessiond.protocol.cleanup import DiskBudget, UnreferencedArtifacts

LogLevel = Literal["info", "warn"]
RemovalStage = Literal["sidecar", "expired", "budget", "sweep"]


class Action(enum.StrEnum):
    RETIRE_DM_SCOPE = "retire-dm-scope"
    PRUNE_MISSING = "prune-missing"
    PRUNE_STALE = "prune-stale"
    CAP_OVERFLOW = "cap-overflow"
    EVICT_BUDGET = "evict-budget"
    KEEP = "keep"


@dataclass(frozen=True, slots=True)
class CleanupOptions:
    fix_missing: bool = False
    fix_dm_scope: bool = False
    active_key: str | None = None
    enforce: bool = False


@dataclass(frozen=True, slots=True)
class Removal:
    """One planned unlink: which stage wants it, what it frees, and which evicted row owns it."""

    path: str
    size: int
    stage: RemovalStage
    owner_key: str | None = None
    owner_chunk_bytes: int = 0


@dataclass(frozen=True, slots=True)
class FileOps:
    """What an apply does to files, in order: renames to archives, then removals."""

    archives: tuple[tuple[str, str], ...] = ()
    removals: tuple[Removal, ...] = ()


@dataclass(frozen=True, slots=True)
class AppliedFigures:
    """What an apply under the plan's mode reports (differs from the preview only under warn)."""

    after_count: int
    pruned: int
    capped: int
    disk_budget: DiskBudget | None
    unreferenced: UnreferencedArtifacts
    log: tuple[tuple[LogLevel, str], ...] = ()


@dataclass(frozen=True, slots=True)
class StorePlan:
    target: StoreTarget
    mode: MaintenanceMode
    before_keys: tuple[str, ...]
    actions: dict[str, Action]
    missing: int
    dm_scope_retired: int
    pruned: int
    capped: int
    unreferenced: UnreferencedArtifacts
    disk_budget: DiskBudget | None
    after_count: int
    applied: AppliedFigures
    removed_keys: frozenset[str]
    file_ops: FileOps
    repairs: dict[str, str]
    views: dict[str, RowView] = field(repr=False)

    @property
    def would_mutate(self) -> bool:
        return would_mutate(
            self.missing,
            self.dm_scope_retired,
            self.pruned,
            self.capped,
            self.unreferenced,
            self.disk_budget,
        )


def would_mutate(
    missing: int,
    dm_scope_retired: int,
    pruned: int,
    capped: int,
    unreferenced: UnreferencedArtifacts,
    budget: DiskBudget | None,
) -> bool:
    """The reference's `wouldMutate`: any row or file removal (not archive expiry or rewrites)."""
    return (
        missing > 0
        or dm_scope_retired > 0
        or pruned > 0
        or capped > 0
        or unreferenced.removed_files > 0
        or (budget is not None and (budget.removed_entries > 0 or budget.removed_files > 0))
    )


@dataclass(frozen=True, slots=True)
class SharedDir:
    """What sibling stores in the same sessions dir contribute to a plan."""

    referenced: frozenset[str]
    claimed: frozenset[str]


def claimed_paths(plan: StorePlan) -> set[str]:
    """Files this plan archives or removes: a later plan in the same dir must not count them."""
    paths = {os.path.abspath(source) for source, _ in plan.file_ops.archives}
    paths |= {os.path.abspath(r.path) for r in plan.file_ops.removals}
    return paths


# ------------------------------------------------------------------------------- comparisons


def _js_compare(a: float, b: float) -> int:
    diff = a - b
    if math.isnan(diff) or diff == 0:
        return 0
    return -1 if diff < 0 else 1


def _updated_or(view: RowView, missing: float) -> float:
    value = view.fields.updated_at
    return missing if value is None else to_number(value)


def _display_updated(view: RowView) -> float:
    return _updated_or(view, 0.0)


def display_order(keys: list[str], views: dict[str, RowView]) -> list[str]:
    """Newest first; rows without `updatedAt` last (the dry-run table's order)."""

    def newest_first(a: str, b: str) -> int:
        return _js_compare(_display_updated(views[b]), _display_updated(views[a]))

    return sorted(keys, key=functools.cmp_to_key(newest_first))


# --------------------------------------------------------------------------------- the files


@dataclass(slots=True)
class _SimFile:
    original: DirFile
    name: str
    archive: bool  # `is_archive(name)`, kept with the name: every stage asks, per file
    sweepable: bool  # `is_sweepable(name)`
    archived_to: str | None = None
    removed: bool = False
    stage: RemovalStage = "sweep"
    owner_key: str | None = None
    owner_chunk_bytes: int = 0


class _DirState:
    """The sessions dir as the apply will leave it, step by step, without touching it."""

    def __init__(self, files: list[DirFile]) -> None:
        self.files = [_SimFile(f, f.name, is_archive(f.name), is_sweepable(f.name)) for f in files]
        self.by_canonical = {f.original.canonical: f for f in self.files}

    def present(self) -> list[_SimFile]:
        return [f for f in self.files if not f.removed]

    def archive(self, canonical_path: str, now_ms: int) -> bool:
        sim = self.by_canonical.get(canonical_path)
        if sim is None or sim.removed or sim.archived_to is not None:
            return False
        sim.archived_to = archive_name(sim.original.path, "deleted", now_ms)
        # `<name>.deleted.<stamp>`: an archive by construction, and no kind the sweep takes.
        sim.name = sim.name + sim.archived_to[len(sim.original.path) :]
        sim.archive, sim.sweepable = True, False
        return True

    def remove(
        self,
        canonical_path: str,
        stage: RemovalStage,
        owner_key: str | None = None,
        owner_chunk_bytes: int = 0,
    ) -> int | None:
        """Size removed (0 for an empty file), or None when nothing is there."""
        sim = self.by_canonical.get(canonical_path)
        if sim is None or sim.removed:
            return None
        sim.removed = True
        sim.stage = stage
        sim.owner_key = owner_key
        sim.owner_chunk_bytes = owner_chunk_bytes
        return sim.original.size

    def ops(self) -> FileOps:
        archives = tuple(
            (f.original.path, f.archived_to)
            for f in self.files
            if f.archived_to is not None and not f.removed
        )
        removals = tuple(
            Removal(
                f.original.path,
                f.original.size,
                f.stage,
                f.owner_key,
                f.owner_chunk_bytes,
            )
            for f in self.files
            if f.removed
        )
        return FileOps(archives, removals)


# ------------------------------------------------------------------------------------- stages


@dataclass(slots=True)
class _Context:
    store: Store
    views: dict[str, RowView]
    sdir: SessionsDir
    maintenance: Maintenance
    options: CleanupOptions
    now_ms: int
    home: str
    preserve_keys: set[str]
    shared_referenced: frozenset[str] = frozenset()
    protected: dict[str, bool] = field(default_factory=dict)

    def preserved(self, key: str) -> bool:
        if key in self.preserve_keys:
            return True
        known = self.protected.get(key)
        if known is None:
            known = self.protected[key] = is_protected(key, self.views[key].fields)
        return known


def _fix_missing(ctx: _Context, remaining: list[str]) -> tuple[list[str], dict[str, str]]:
    """Rows whose transcript is gone, and rows whose `sessionFile` merely points astray.

    A row whose recorded `sessionFile` is missing while `<sessionId>.jsonl` exists is repaired
    (pointed at the file that is there), not pruned. A row whose sessionId cannot name a file is
    left alone: the reference aborts the whole cleanup on it, sessiond cannot judge it missing.
    """
    removed: list[str] = []
    repairs: dict[str, str] = {}
    for key in remaining:
        fields = ctx.views[key].fields
        session_id = fields.session_id
        if not js_truthy(session_id) or not isinstance(session_id, str):
            continue
        try:
            path = ctx.sdir.transcript_path(session_id, fields.session_file)
        except ValueError:
            continue
        if ctx.sdir.view.exists(path):
            continue
        try:
            fallback = ctx.sdir.within(f"{validate_session_id(session_id)}.jsonl")
        except ValueError:
            fallback = None
        if fallback is not None and fallback != path and ctx.sdir.view.exists(fallback):
            repairs[key] = fallback
        else:
            removed.append(key)
    return removed, repairs


def _retire_dm_scope(
    ctx: _Context, remaining: list[str], target: StoreTarget, dm_scope: str
) -> list[str]:
    return [
        key
        for key in remaining
        if is_main_scope_stale_direct_key(key, target.agent_id, ctx.options.active_key, dm_scope)
    ]


def _prune_stale(ctx: _Context, remaining: list[str]) -> list[str]:
    if ctx.maintenance.prune_after_ms is None:
        return []
    cutoff = ctx.now_ms - ctx.maintenance.prune_after_ms
    removed: list[str] = []
    for key in remaining:
        if ctx.preserved(key):
            continue
        updated = ctx.views[key].fields.updated_at
        if updated is not None and to_number(updated) < cutoff:
            removed.append(key)
    return removed


def _cap(ctx: _Context, remaining: list[str]) -> list[str]:
    candidates = [key for key in remaining if not ctx.preserved(key)]
    slots = max(0, ctx.maintenance.max_entries - (len(remaining) - len(candidates)))
    if len(candidates) <= slots:
        return []

    ages = {key: _updated_or(ctx.views[key], -math.inf) for key in candidates}
    if not any(math.isnan(age) for age in ages.values()):
        # A total order: a stable sort by key equals the reference's comparator sort.
        return sorted(candidates, key=lambda key: -ages[key])[slots:]

    def newest_first(a: str, b: str) -> int:
        return _js_compare(ages[b], ages[a])

    return sorted(candidates, key=functools.cmp_to_key(newest_first))[slots:]


def _session_files(ctx: _Context, keys: list[str], last_file_wins: bool) -> dict[str, Any]:
    """sessionId -> sessionFile of removed rows, remembered the way the reference remembers."""
    remembered: dict[str, Any] = {}
    for key in keys:
        fields = ctx.views[key].fields
        session_id = fields.session_id
        if not isinstance(session_id, str) or not session_id:
            continue
        if last_file_wins or session_id not in remembered or fields.session_file:
            remembered[session_id] = fields.session_file
    return remembered


def _referenced_ids(ctx: _Context, keys: list[str]) -> set[str]:
    ids: set[str] = set()
    for key in keys:
        session_id = ctx.views[key].fields.session_id
        if isinstance(session_id, str) and session_id:
            ids.add(session_id)
    return ids


def _archive_removed(
    ctx: _Context, state: _DirState, removed: dict[str, Any], referenced: set[str]
) -> None:
    for session_id, session_file in removed.items():
        if session_id in referenced:
            continue
        for path in ctx.sdir.archive_candidates(session_id, session_file, ctx.home):
            state.archive(path, ctx.now_ms)


def _remove_trajectory_sidecars(
    ctx: _Context, state: _DirState, removed: dict[str, Any], referenced: set[str]
) -> None:
    for session_id, session_file in removed.items():
        if session_id in referenced:
            continue
        try:
            transcript = ctx.sdir.transcript_path(session_id, session_file)
        except ValueError:
            continue
        for path in reversed(ctx.sdir.sidecars(transcript)):
            if ctx.sdir.contains_canonical(path):
                state.remove(path, "sidecar")


def _expire_archives(ctx: _Context, state: _DirState, archived_any: bool) -> None:
    """Old `.deleted.`/`.reset.` archives go; the reference runs this only when this cleanup
    archived something or a `.reset.` retention is set (`resetArchiveRetention: false` and no
    new archive: nothing expires)."""
    if not archived_any and ctx.maintenance.reset_archive_retention_ms is None:
        return
    rules: list[tuple[str, int]] = []
    if ctx.maintenance.prune_after_ms is not None:
        rules.append(("deleted", ctx.maintenance.prune_after_ms))
    if ctx.maintenance.reset_archive_retention_ms is not None:
        rules.append(("reset", ctx.maintenance.reset_archive_retention_ms))
    for reason, older_than in rules:
        if older_than < 0:
            continue
        for sim in state.present():
            if not sim.archive:
                continue
            stamp = archive_timestamp(sim.name, reason)
            if stamp is None:
                continue
            stamp_ms = parse_archive_stamp_ms(stamp)
            if stamp_ms is not None and ctx.now_ms - stamp_ms > older_than:
                state.remove(sim.original.canonical, "expired")


def _budget(
    ctx: _Context,
    state: _DirState,
    remaining: list[str],
    store_path: str,
    warn_only: bool,
) -> tuple[DiskBudget | None, list[str]]:
    max_bytes = ctx.maintenance.max_disk_bytes
    high_water = ctx.maintenance.high_water_bytes
    if max_bytes is None or high_water is None:
        return None, []
    store_canonical = canonical(ctx.sdir.view, store_path)
    files = state.present()
    chunks = {key: len(row_chunk(key, ctx.store.rows[key])) for key in remaining}
    projected = store_size_for_chunks(list(chunks.values()))
    # Only bytes maintenance can free count: a foreign file (`.migrated`, notes) that no rule may
    # delete must not make live sessions pay for it. The reference counts every file.
    counted = sum(f.original.size for f in files if f.archive or f.sweepable)
    total = counted + projected
    before = total

    def figures(removed_files: int, entries: int, freed: int, over: bool) -> DiskBudget:
        return DiskBudget(before, total, removed_files, entries, freed, max_bytes, high_water, over)

    if total <= max_bytes:
        return figures(0, 0, 0, False), []
    if warn_only:
        return figures(0, 0, 0, True), []
    removed_files = removed_entries = freed = 0
    evicted: list[str] = []
    referenced = ctx.sdir.referenced(ctx.views[k].fields for k in remaining) | ctx.shared_referenced
    queue = [
        f
        for f in files
        if f.original.canonical != store_canonical
        and (f.archive or (f.original.canonical not in referenced and f.sweepable))
    ]
    queue.sort(key=lambda f: f.original.mtime_ms)
    for sim in queue:
        if total <= high_water:
            break
        size = state.remove(sim.original.canonical, "budget")
        if not size:
            continue
        total -= size
        freed += size
        removed_files += 1
    if total > high_water:
        active = normalize_preserve_key(ctx.options.active_key)
        refcounts: dict[str, int] = {}
        for key in remaining:
            session_id = ctx.views[key].fields.session_id
            if js_truthy(session_id) and isinstance(session_id, str):
                refcounts[session_id] = refcounts.get(session_id, 0) + 1

        def budget_age(key: str) -> float:
            value = ctx.views[key].fields.updated_at
            return float(value) if is_finite_number(value) else 0.0

        for key in sorted(remaining, key=budget_age):
            if total <= high_water:
                break
            if active and key.lower() == active:
                continue
            view = ctx.views[key]
            if not view.truthy or ctx.preserved(key):
                continue
            previous = projected
            projected = max(2, projected - (chunks[key] + 2))
            total += projected - previous
            removed_entries += 1
            evicted.append(key)
            session_id = view.fields.session_id
            if not js_truthy(session_id) or not isinstance(session_id, str):
                continue
            left = refcounts.get(session_id, 1) - 1
            if left > 0:
                refcounts[session_id] = left
                continue
            refcounts.pop(session_id, None)
            for path in ctx.sdir.artifact_paths(view.fields):
                size = state.remove(path, "budget", key, chunks[key] + 2)
                if not size:
                    continue
                total -= size
                freed += size
                removed_files += 1
    return figures(removed_files, removed_entries, freed, True), evicted


def _sweep(
    ctx: _Context, state: _DirState, remaining: list[str], scanned: int
) -> UnreferencedArtifacts:
    if ctx.maintenance.prune_after_ms is None:
        # Age pruning is off: orphans are not swept by age either.
        return UnreferencedArtifacts(scanned, 0, 0, 0)
    older_than = ctx.maintenance.prune_after_ms
    cutoff = ctx.now_ms - older_than
    referenced = ctx.sdir.referenced(ctx.views[k].fields for k in remaining) | ctx.shared_referenced
    candidates = [
        f
        for f in state.present()
        if f.sweepable
        and f.original.canonical not in referenced
        and f.original.mtime_ms <= cutoff  # last: the only test that needs a stat
    ]
    candidates.sort(key=lambda f: f.original.mtime_ms)
    removed = freed = 0
    for sim in candidates:
        size = state.remove(sim.original.canonical, "sweep")
        if size:
            removed += 1
            freed += size
    return UnreferencedArtifacts(scanned, removed, freed, older_than)


# ------------------------------------------------------------------------------ maintenance log

EVICT_ACTIVE_WARNING = "session maintenance would evict active session; skipping enforcement"


def _enforce_log(
    pruned: int, capped: int, budget: DiskBudget | None
) -> tuple[tuple[LogLevel, str], ...]:
    """The `[sessions/store]` lines the reference logs while it applies maintenance."""
    lines: list[tuple[LogLevel, str]] = []
    if pruned:
        lines.append(("info", "pruned stale session entries"))
    if capped:
        lines.append(("info", "capped session entry count"))
    if budget is not None and budget.over_budget:
        if budget.total_bytes_after > budget.high_water_bytes:
            lines.append(
                ("warn", "session disk budget still above high-water target after cleanup")
            )
        elif budget.removed_files or budget.removed_entries:
            lines.append(("info", "applied session disk budget cleanup"))
    return tuple(lines)


def _would_evict_active(ctx: _Context, keys: list[str]) -> bool:
    """Under warn: would enforcement have pruned or capped the active row?"""
    active = (ctx.options.active_key or "").strip()
    if not active or active not in keys:
        return False
    view = ctx.views[active]
    if is_protected(active, view.fields):
        return False
    updated = view.fields.updated_at
    if ctx.maintenance.prune_after_ms is not None:
        cutoff = ctx.now_ms - ctx.maintenance.prune_after_ms
        if updated is not None and to_number(updated) < cutoff:
            return True
    max_entries = ctx.maintenance.max_entries
    if len(keys) <= max_entries:
        return False
    protected = sum(1 for k in keys if k != active and is_protected(k, ctx.views[k].fields))
    removable = max(0, max_entries - protected)
    if removable <= 0:
        return True
    active_updated = _updated_or(view, -math.inf)
    newer = 0
    seen_active = False
    for key in keys:
        if key == active:
            seen_active = True
            continue
        if is_protected(key, ctx.views[key].fields):
            continue
        other = _updated_or(ctx.views[key], -math.inf)
        if other > active_updated or (not seen_active and other == active_updated):
            newer += 1
            if newer >= removable:
                return True
    return False


# ---------------------------------------------------------------------------------- planning


def plan_cleanup(
    store: Store,
    target: StoreTarget,
    config: SessionsConfig,
    options: CleanupOptions,
    view: DiskView,
    now_ms: int,
    home: str,
    state_dir: str | None = None,
    shared: SharedDir | None = None,
) -> StorePlan:
    """Decide a whole cleanup of one store; touches nothing, asks the disk only through `view`.

    `shared` is set when other stores of the same cleanup live in the same directory: their
    transcripts are never swept as orphans, and files an earlier plan already takes are gone.
    """
    maintenance = config.maintenance
    mode: MaintenanceMode = "enforce" if options.enforce else maintenance.mode
    sessions_dir = os.path.dirname(os.path.abspath(target.store_path))
    sdir = SessionsDir(sessions_dir, view, state_dir)
    views = {key: store.view(key) for key in store.rows}
    preserve = normalize_preserve_key(options.active_key)
    ctx = _Context(
        store, views, sdir, maintenance, options, now_ms, home, {preserve} if preserve else set()
    )
    before = list(store.rows)
    actions: dict[str, Action] = {}

    def drop(keys: list[str], action: Action, remaining: list[str]) -> list[str]:
        gone = set(keys)
        for key in keys:
            actions[key] = action
        return [key for key in remaining if key not in gone]

    remaining = before
    missing, repairs = _fix_missing(ctx, remaining) if options.fix_missing else ([], {})
    for key, path in repairs.items():
        row = views[key]
        views[key] = RowView(msgspec.structs.replace(row.fields, session_file=path), True, True)
    remaining = drop(missing, Action.PRUNE_MISSING, remaining)
    retired = (
        _retire_dm_scope(ctx, remaining, target, config.dm_scope) if options.fix_dm_scope else []
    )
    remaining = drop(retired, Action.RETIRE_DM_SCOPE, remaining)
    after_fix = remaining
    stale = _prune_stale(ctx, remaining)
    remaining = drop(stale, Action.PRUNE_STALE, remaining)
    capped = _cap(ctx, remaining)
    remaining = drop(capped, Action.CAP_OVERFLOW, remaining)

    files = view.list_files(sessions_dir)
    if shared is not None:
        files = [f for f in files if f.canonical not in shared.claimed]
        ctx.shared_referenced = shared.referenced
    state = _DirState(files)
    maintained = _session_files(ctx, stale + capped, last_file_wins=False)
    referenced_after_cap = _referenced_ids(ctx, remaining)
    _archive_removed(ctx, state, maintained, referenced_after_cap)
    _remove_trajectory_sidecars(ctx, state, maintained, referenced_after_cap)
    _expire_archives(ctx, state, any(f.archived_to for f in state.files))
    budget, evicted = _budget(ctx, state, remaining, target.store_path, warn_only=False)
    remaining = drop(evicted, Action.EVICT_BUDGET, remaining)
    retired_files = _session_files(ctx, retired, last_file_wins=True)
    _archive_removed(ctx, state, retired_files, _referenced_ids(ctx, remaining))
    sweep = _sweep(ctx, state, remaining, len(files))

    if mode == "enforce":
        log = _enforce_log(len(stale), len(capped), budget)
        applied = AppliedFigures(len(remaining), len(stale), len(capped), budget, sweep, log)
        removed_keys = frozenset(before) - frozenset(remaining)
        ops = state.ops()
    else:
        warn_state = _DirState(files)
        warn_budget, _ = _budget(ctx, warn_state, after_fix, target.store_path, warn_only=True)
        _archive_removed(ctx, warn_state, retired_files, _referenced_ids(ctx, after_fix))
        warn_log: list[tuple[LogLevel, str]] = []
        if _would_evict_active(ctx, after_fix):
            warn_log.append(("warn", EVICT_ACTIVE_WARNING))
        if warn_budget is not None and warn_budget.over_budget:
            warn_log.append(("warn", "session disk budget exceeded (warn-only mode)"))
        applied = AppliedFigures(
            len(after_fix),
            0,
            0,
            warn_budget,
            UnreferencedArtifacts(0, 0, 0, maintenance.prune_after_ms or 0),
            tuple(warn_log),
        )
        removed_keys = frozenset(missing) | frozenset(retired)
        ops = warn_state.ops()

    return StorePlan(
        target=target,
        mode=mode,
        before_keys=tuple(before),
        actions=actions,
        missing=len(missing),
        dm_scope_retired=len(retired),
        pruned=len(stale),
        capped=len(capped),
        unreferenced=sweep,
        disk_budget=budget,
        after_count=len(remaining),
        applied=applied,
        removed_keys=removed_keys,
        file_ops=ops,
        repairs=repairs,
        views=views,
    )


def action_of(plan: StorePlan, key: str) -> Action:
    return plan.actions.get(key, Action.KEEP)
