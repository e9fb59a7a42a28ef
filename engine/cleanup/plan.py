"""The cleanup engine: one pure planning step that decides everything a cleanup will do.

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

import bisect
import enum
import functools
import math
import os
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import msgspec
from sessiond.engine.cleanup.row_index import AgeEntry, PlanIndex, RowFacts
from sessiond.engine.config import Maintenance, MaintenanceMode, SessionsConfig, StoreTarget
from sessiond.engine.disk_view import (
    TRAJECTORY_SUFFIXES,
    DirListing,
    DiskView,
    absolute,
    canonical,
)
from sessiond.engine.js_semantics import is_finite_number, js_truthy, to_number
from sessiond.engine.keys import is_protected, normalize_preserve_key
from sessiond.engine.store import RowView, Store, store_size_for_chunks
from sessiond.engine.transcripts import (
    SessionsDir,
    archive_name,
    archive_timestamp,
    file_kind,
    iso_stamp,
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


class CleanupOptions(msgspec.Struct, frozen=True):
    fix_missing: bool = False
    fix_dm_scope: bool = False
    active_key: str | None = None
    enforce: bool = False


class Removal(msgspec.Struct, frozen=True):
    """One planned unlink: which stage wants it, what it frees, and which evicted row owns it."""

    path: str
    size: int
    stage: RemovalStage
    owner_key: str | None = None
    owner_chunk_bytes: int = 0


class FileOps(msgspec.Struct, frozen=True):
    """What an apply does to files, in order: renames to archives, then removals."""

    archives: tuple[tuple[str, str], ...] = ()
    removals: tuple[Removal, ...] = ()


class AppliedFigures(msgspec.Struct, frozen=True):
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
    views: Mapping[str, RowView] = field(repr=False)
    # Names the decisions for plan_id.py when they follow from kept inputs alone (rows, dir,
    # fixes), so the next plan with the same key names the same removed rows and archives.
    memo_key: object = field(default=None, repr=False, compare=False)

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


class SharedDir(msgspec.Struct, frozen=True):
    """What sibling stores in the same sessions dir contribute to a plan."""

    referenced: frozenset[str]
    claimed: frozenset[str]


def claimed_paths(plan: StorePlan) -> set[str]:
    """Files this plan archives or removes: a later plan in the same dir must not count them."""
    paths = {absolute(source) for source, _ in plan.file_ops.archives}
    paths |= {absolute(r.path) for r in plan.file_ops.removals}
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


def display_order(keys: list[str], views: Mapping[str, RowView]) -> list[str]:
    """Newest first; rows without `updatedAt` last (the dry-run table's order)."""

    def newest_first(a: str, b: str) -> int:
        return _js_compare(_display_updated(views[b]), _display_updated(views[a]))

    return sorted(keys, key=functools.cmp_to_key(newest_first))


# --------------------------------------------------------------------------------- the files


class _DirState:
    """The sessions dir as the apply will leave it, step by step, without touching it.

    Only what the plan changes is held (archived and removed files, by position in the
    listing); every other file is as listed. Sizes and mtimes are asked of the view when a
    stage needs them, once per file.
    """

    def __init__(self, listing: DirListing, view: DiskView, gone: frozenset[str]) -> None:
        self.listing = listing
        self.view = view
        self.by_canonical = listing.by_canonical if listing.names else {}
        self.archives, self.sweepable = listing.kinds(file_kind)
        self.archived: dict[int, str] = {}  # position -> the archive's path
        self.archived_names: set[str] = set()  # by `archive_names`
        self.removed: dict[int, tuple[RemovalStage, str | None, int]] = {}
        # Files an earlier plan of the same dir takes: not there for this one.
        self.gone = {self.by_canonical[c] for c in gone if c in self.by_canonical}
        self._stats: dict[int, tuple[int, float]] = {}

    def scanned(self) -> int:
        return len(self.listing) - len(self.gone)

    def stat(self, pos: int) -> tuple[int, float]:
        found = self._stats.get(pos)
        if found is None:
            found = self._stats[pos] = self.view.file_stat(self.listing.paths[pos])
        return found

    def name(self, pos: int) -> str:
        archived = self.archived.get(pos)
        if archived is None:
            return self.listing.names[pos]
        # `<name>.deleted.<stamp>`: an archive by construction, and no kind the sweep takes.
        return self.listing.names[pos] + archived[len(self.listing.paths[pos]) :]

    def present(self, pos: int) -> bool:
        return pos not in self.removed and pos not in self.gone

    def present_archives(self) -> list[int]:
        """Archives there now, listed ones and this plan's, in directory order."""
        found = {p for p in self.archives if self.present(p)}
        found.update(p for p in self.archived if self.present(p))
        return sorted(found)

    def present_sweepable(self) -> list[int]:
        return [p for p in self.sweepable if p not in self.archived and self.present(p)]

    def archive_positions(
        self, positions: list[int | None], names: list[str | None], now_ms: int
    ) -> None:
        """`archive` for files of a plain dir by position in its listing (None: no such file;
        `names` are theirs), the path being the dir's and the name."""
        paths = self.listing.paths
        suffix = archive_name("", "deleted", now_ms)
        taken = self.removed.keys() | self.gone | self.archived.keys()
        archived = self.archived
        for pos in positions:
            if pos is not None and pos not in taken:
                archived[pos] = paths[pos] + suffix
        self.archived_names.update(names)  # type: ignore[arg-type]

    def archive(self, canonical_path: str, now_ms: int) -> bool:
        pos = self.by_canonical.get(canonical_path)
        if pos is None or not self.present(pos) or pos in self.archived:
            return False
        self.archived[pos] = archive_name(self.listing.paths[pos], "deleted", now_ms)
        return True

    def remove(
        self,
        canonical_path: str,
        stage: RemovalStage,
        owner_key: str | None = None,
        owner_chunk_bytes: int = 0,
    ) -> int | None:
        """Size removed (0 for an empty file), or None when nothing is there."""
        pos = self.by_canonical.get(canonical_path)
        if pos is None or not self.present(pos):
            return None
        self.removed[pos] = (stage, owner_key, owner_chunk_bytes)
        return self.stat(pos)[0]

    def ops(self) -> FileOps:
        paths = self.listing.paths
        archives = tuple(
            (paths[p], self.archived[p]) for p in sorted(self.archived) if p not in self.removed
        )
        removals = tuple(
            Removal(paths[p], self.stat(p)[0], stage, owner, chunk)
            for p, (stage, owner, chunk) in sorted(self.removed.items())
        )
        return FileOps(archives, removals)


# ------------------------------------------------------------------------------------- stages


class PlanViews(Mapping[str, RowView]):
    """Each row of the planned version as the plan read it (a repaired row with its new
    sessionFile). Holds its own copy of the row map: the index moves on with later versions."""

    def __init__(self, facts: dict[str, RowFacts], repaired: dict[str, RowView]) -> None:
        self._facts = facts
        self._repaired = repaired

    def __getitem__(self, key: str) -> RowView:
        found = self._repaired.get(key)
        return self._facts[key].view if found is None else found

    def __contains__(self, key: object) -> bool:
        return key in self._facts

    def repair(self, key: str, view: RowView) -> None:
        self._repaired[key] = view

    @property
    def repaired(self) -> Mapping[str, RowView]:
        return self._repaired

    def __iter__(self) -> Iterator[str]:
        return iter(self._facts)

    def __len__(self) -> int:
        return len(self._facts)


class _Context(msgspec.Struct):
    store: Store
    index: PlanIndex
    views: PlanViews
    sdir: SessionsDir
    listing: DirListing
    maintenance: Maintenance
    options: CleanupOptions
    now_ms: int
    home: str
    preserve_keys: set[str]
    # Rows answered from names alone: a plain dir that is not the legacy one. Rows in
    # `irregular` are asked of the disk one by one, like every row of any other dir.
    fast: bool
    irregular: set[str]
    shared_referenced: frozenset[str] = frozenset()
    # Set when a decision rested on the rows' order in the store (equal ages at the cap, the
    # reference's order of rows sharing an id): the index's version does not follow order.
    by_store_order: bool = False

    def preserved(self, key: str) -> bool:
        return key in self.preserve_keys or self.index.facts[key].protected

    def by_name(self, key: str) -> bool:
        """This row's files are decided by its name and the dir's names alone."""
        return self.fast and key not in self.irregular


def _fix_missing(ctx: _Context, remaining: list[str]) -> tuple[list[str], dict[str, str]]:
    """Rows whose transcript is gone, and rows whose `sessionFile` merely points astray.

    A row whose recorded `sessionFile` is missing while `<sessionId>.jsonl` exists is repaired
    (pointed at the file that is there), not pruned. A row whose sessionId cannot name a file is
    left alone: the reference aborts the whole cleanup on it, sessiond cannot judge it missing.
    """
    removed: list[str] = []
    repairs: dict[str, str] = {}
    facts = ctx.index.facts
    entries = ctx.listing.entries
    for key in remaining:
        if ctx.by_name(key):
            # A simple row's transcript and its fallback are one path: missing, or there.
            f = facts[key]
            if f.sid is not None and f.name is not None and f.name not in entries:
                removed.append(key)
            continue
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


def _retire_dm_scope(ctx: _Context, remaining: list[str], dm_scope: str) -> list[str]:
    """Peer-keyed direct-DM rows of this agent that `dmScope: main` no longer routes to."""
    if dm_scope != "main":
        return []
    direct = ctx.index.dm_direct
    if not direct:
        return []
    active = ctx.options.active_key
    return [key for key in remaining if key in direct and not (active and key == active)]


def _first(entry: AgeEntry) -> float:
    return entry[0]


class _Stale(msgspec.Struct, frozen=True):
    """The stale rows (`by_age` entries, in its order) and where they lie in `by_age`: entries
    before `start` are newer than the cutoff, entries from `undated` on have no age (-inf)."""

    entries: list[AgeEntry]
    start: int
    undated: int


def _keys(entries: list[AgeEntry]) -> list[str]:
    return [entry[1] for entry in entries]


def _prune_stale(ctx: _Context, gone: set[str]) -> _Stale:
    """Unpreserved rows whose updatedAt is before the cutoff: a tail of `by_age` (oldest
    last), less the rows without updatedAt at its very end."""
    by_age = ctx.index.by_age
    if ctx.maintenance.prune_after_ms is None:
        return _Stale([], len(by_age), len(by_age))
    cutoff = ctx.now_ms - ctx.maintenance.prune_after_ms
    start = bisect.bisect_right(by_age, float(-cutoff), key=_first)
    undated = bisect.bisect_left(by_age, math.inf, start, key=_first)
    stale = by_age[start:undated]
    stale += [entry for entry in by_age[undated:] if entry[2].dated]
    skip = gone | ctx.preserve_keys
    if skip:
        stale = [entry for entry in stale if entry[1] not in skip]
    return _Stale(stale, start, undated)


def _cap(ctx: _Context, remaining_count: int, gone: set[str], stale: _Stale) -> list[AgeEntry]:
    """The oldest unpreserved rows past `maxEntries`, in the order the reference drops them
    (newest kept first; equal ages in store order)."""
    index = ctx.index
    preserved = len(index.protected) - len(gone & index.protected)
    preserved += sum(
        1
        for key in ctx.preserve_keys
        if key in index.facts and key not in gone and key not in index.protected
    )
    slots = max(0, ctx.maintenance.max_entries - preserved)
    if remaining_count - preserved <= slots:
        return []
    skip = gone | ctx.preserve_keys
    if any(key not in skip for key in index.undated_nan):
        return _cap_with_nan(ctx, skip, slots)
    # Newest first: the rows newer than the cutoff, then those without updatedAt (the rest of
    # `by_age` is stale), less what earlier stages took and the active row.
    by_age = index.by_age
    extra = (gone - set(_keys(stale.entries))) | ctx.preserve_keys
    order = by_age[: stale.start]
    if extra:
        order = [entry for entry in order if entry[1] not in extra]
    order += [
        entry for entry in by_age[stale.undated :] if not entry[2].dated and entry[1] not in extra
    ]
    if slots and order[slots - 1][0] == order[slots][0]:
        # Rows of equal age straddle the cut: which of them stay is decided by store order.
        age = order[slots][0]
        low = bisect.bisect_left(order, age, key=_first)
        high = bisect.bisect_right(order, age, key=_first)
        position = _positions(ctx.store)
        order = order[:low] + sorted(order[low:high], key=lambda e: position[e[1]]) + order[high:]
        ctx.by_store_order = True
    return order[slots:]


def _cap_with_nan(ctx: _Context, skip: set[str], slots: int) -> list[AgeEntry]:
    """Some age is not a number: the reference's comparator is no total order, so its sort is
    replayed as it is (JS compare, stable, over the rows in store order)."""
    facts = ctx.index.facts
    candidates = [key for key in ctx.store.rows if key not in skip and not ctx.preserved(key)]
    ages = {key: facts[key].age for key in candidates}

    def newest_first(a: str, b: str) -> int:
        return _js_compare(ages[b], ages[a])

    capped = sorted(candidates, key=functools.cmp_to_key(newest_first))[slots:]
    ctx.by_store_order = True
    return [(-ages[key], key, facts[key]) for key in capped]


def _positions(store: Store) -> dict[str, int]:
    return {key: i for i, key in enumerate(store.rows)}


Counts = Counter[str | None]


class _Leaving:
    """What the removed rows carried: rows per sessionId and per transcript name (as the
    index counts them), so "still referenced" is the index's count against these. In layers,
    one per group of rows removed, shared with a copy and with what a plan kept from an
    earlier plan (never changed once added)."""

    def __init__(self, index: PlanIndex, layers: Iterable[tuple[Counts, Counts]] = ()) -> None:
        self.index = index
        self.layers = list(layers)

    def add(self, keys: Iterable[str]) -> _Leaving:
        return self.add_counts(*_carried(self.index, list(keys)))

    def add_counts(self, sids: Counts, names: Counts) -> _Leaving:
        if sids or names:
            self.layers.append((sids, names))
        return self

    def copy(self) -> _Leaving:
        return _Leaving(self.index, self.layers)

    def sid_referenced(self, session_id: str) -> bool:
        """Whether a row that stays carries this sessionId."""
        leaving = sum(layer[0].get(session_id, 0) for layer in self.layers)
        return self.index.sid_rows.get(session_id, 0) > leaving

    def name_count(self, name: str | None) -> int:
        return sum(layer[1].get(name, 0) for layer in self.layers)

    def names(self) -> set[str | None]:
        found: set[str | None] = set()
        for _, names in self.layers:
            found.update(names)
        return found


def _carried(index: PlanIndex, keys: list[str]) -> tuple[Counts, Counts]:
    found = [index.facts[key] for key in keys]
    return Counter([f.sid for f in found]), Counter([f.name for f in found if f.simple])


def _session_files(
    ctx: _Context,
    victims: list[AgeEntry],
    last_file_wins: bool,
    in_order: Callable[[], list[AgeEntry]] | None = None,
) -> tuple[dict[str, AgeEntry], Counts, Counts]:
    """sessionId -> the removed row whose sessionFile counts, remembered the way the reference
    remembers (the first row, or the last one with a sessionFile; with `last_file_wins`, the
    last); and what the rows carried (`_Leaving`'s counts). The rows may be in another order
    than the reference's if `in_order` gives that order: it is asked only when the order can
    change the answer (rows of one id whose sessionFiles differ)."""
    found = [entry[2] for entry in victims]
    sids = [f.sid for f in found]
    counts = Counter(sids), Counter([f.name for f in found if f.simple])
    pairs = [(sid, entry) for sid, entry in zip(sids, victims, strict=True) if sid is not None]
    remembered = dict(pairs)
    if len(remembered) == len(pairs):
        return remembered, *counts  # every id once: nothing to choose between
    remembered = {}
    first_file: dict[str, Any] = {}
    order_matters = False
    repaired = ctx.views.repaired
    for session_id, entry in pairs:
        session_file = repaired.get(entry[1], entry[2].view).fields.session_file
        if session_id in remembered:
            order_matters = order_matters or first_file[session_id] != session_file
        else:
            first_file[session_id] = session_file
        if last_file_wins or session_id not in remembered or session_file:
            remembered[session_id] = entry
    if order_matters and in_order is not None:
        ctx.by_store_order = True
        return _session_files(ctx, in_order(), last_file_wins)[0], *counts
    return remembered, *counts


def _by_name(
    ctx: _Context, removed: dict[str, AgeEntry]
) -> tuple[list[str | None], list[tuple[str, AgeEntry]]]:
    """Of the removed rows' sessions: the transcript names archived without asking anything
    (an id one row carried goes with that row, in a plain dir), and the rest to ask about."""
    if not ctx.fast:
        return [], list(removed.items())
    irregular = ctx.irregular
    shared = ctx.index.shared_sids
    named = [
        entry[2].name
        for sid, entry in removed.items()
        if sid not in shared and entry[1] not in irregular
    ]
    rest = [(sid, e) for sid, e in removed.items() if sid in shared or e[1] in irregular]
    return named, rest


def _positions_of(listing: DirListing, names: list[str | None]) -> list[int | None]:
    by_name = listing.by_name
    return [None if name is None else by_name.get(name) for name in names]


def _archive_removed(
    ctx: _Context,
    state: _DirState,
    removed: dict[str, AgeEntry],
    leaving: _Leaving,
    split: tuple[list[str | None], list[tuple[str, AgeEntry]]] | None = None,
    positions: list[int | None] | None = None,
) -> None:
    """Archive the transcripts of removed rows whose sessionId no remaining row carries.
    `split` (`_by_name`'s answer) and `positions` (of its names in the listing) may come from
    an earlier plan of the same rows and dir."""
    named, rest = split if split is not None else _by_name(ctx, removed)
    named = list(named)
    for session_id, (_, key, f) in rest:
        if leaving.sid_referenced(session_id):
            continue
        if ctx.by_name(key):
            named.append(f.name)
            continue
        session_file = ctx.views[key].fields.session_file
        for path in ctx.sdir.archive_candidates(session_id, session_file, ctx.home):
            state.archive(path, ctx.now_ms)
    if named:
        if positions is None or len(named) != len(positions):
            positions = _positions_of(ctx.listing, named)
        state.archive_positions(positions, named, ctx.now_ms)


def _remove_trajectory_sidecars(
    ctx: _Context, state: _DirState, removed: dict[str, AgeEntry], leaving: _Leaving
) -> None:
    trajectory = ctx.listing.has_trajectory
    if ctx.fast and not trajectory and not ctx.irregular:
        return  # every transcript directly in a dir without one trajectory file: no sidecar
    for session_id, (_, key, _f) in removed.items():
        if leaving.sid_referenced(session_id) or (ctx.by_name(key) and not trajectory):
            continue
        session_file = ctx.views[key].fields.session_file
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
    canonicals = ctx.listing.canonicals
    listed = [p for p in state.archives if p not in state.archived and state.present(p)]
    for reason, older_than in rules:
        if older_than < 0:
            continue
        for pos in listed:
            stamp = archive_timestamp(ctx.listing.names[pos], reason)
            if stamp is None or not state.present(pos):
                continue
            stamp_ms = parse_archive_stamp_ms(stamp)
            if stamp_ms is not None and ctx.now_ms - stamp_ms > older_than:
                state.remove(canonicals[pos], "expired")
        if reason == "deleted" and state.archived:
            # This plan's archives all carry its own clock's stamp (and `.deleted.` last).
            stamp_ms = parse_archive_stamp_ms(iso_stamp(ctx.now_ms))
            if stamp_ms is not None and ctx.now_ms - stamp_ms > older_than:
                for pos in sorted(state.archived):
                    state.remove(canonicals[pos], "expired")


def _referenced_paths(ctx: _Context, remaining: Iterable[str]) -> set[str]:
    """Canonical paths the rows of `remaining` reference (see `SessionsDir.referenced`)."""
    return ctx.sdir.referenced(ctx.views[k].fields for k in remaining) | ctx.shared_referenced


def reads_row_bytes(maintenance: Maintenance) -> bool:
    """Whether a plan under `maintenance` reads rows' bytes and not only their views: the
    disk budget sizes the store that would be left from them (`_budget`)."""
    return maintenance.max_disk_bytes is not None and maintenance.high_water_bytes is not None


def _budget(
    ctx: _Context,
    state: _DirState,
    remaining_rows: Callable[[], list[str]],
    store_path: str,
    warn_only: bool,
) -> tuple[DiskBudget | None, list[str]]:
    if not reads_row_bytes(ctx.maintenance):
        return None, []
    max_bytes = ctx.maintenance.max_disk_bytes
    high_water = ctx.maintenance.high_water_bytes
    assert max_bytes is not None and high_water is not None
    remaining = remaining_rows()
    store_canonical = canonical(ctx.sdir.view, store_path)
    archives = set(state.present_archives())
    counted_files = sorted(archives.union(state.present_sweepable()))
    chunks = {key: ctx.index.chunk(key) for key in remaining}
    projected = store_size_for_chunks(list(chunks.values()))
    # Only bytes maintenance can free count: a foreign file (`.migrated`, notes) that no rule may
    # delete must not make live sessions pay for it. The reference counts every file.
    counted = sum(state.stat(pos)[0] for pos in counted_files)
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
    referenced = _referenced_paths(ctx, remaining)
    canonicals = ctx.listing.canonicals
    queue = [
        pos
        for pos in counted_files
        if canonicals[pos] != store_canonical
        and (pos in archives or canonicals[pos] not in referenced)
    ]
    queue.sort(key=lambda pos: state.stat(pos)[1])
    for pos in queue:
        if total <= high_water:
            break
        size = state.remove(canonicals[pos], "budget")
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
    ctx: _Context, state: _DirState, removed: set[str], leaving: _Leaving
) -> UnreferencedArtifacts:
    """Transcripts and sidecars no remaining row references, older than the age cutoff."""
    scanned = state.scanned()
    if ctx.maintenance.prune_after_ms is None:
        # Age pruning is off: orphans are not swept by age either.
        return UnreferencedArtifacts(scanned, 0, 0, 0)
    older_than = ctx.maintenance.prune_after_ms
    cutoff = ctx.now_ms - older_than
    canonicals = ctx.listing.canonicals
    if ctx.fast:
        unreferenced = _unreferenced_by_name(ctx, state, leaving)
        # Rows asked of the disk, and other stores of the dir, reference what they reference.
        others = _referenced_paths(ctx, (k for k in ctx.irregular if k not in removed))
        unreferenced = [pos for pos in unreferenced if canonicals[pos] not in others]
    else:
        remaining = (k for k in ctx.store.rows if k not in removed)
        referenced = _referenced_paths(ctx, remaining)
        unreferenced = [p for p in state.present_sweepable() if canonicals[p] not in referenced]
    # The mtime test last: the only one that needs a stat.
    candidates = [pos for pos in unreferenced if state.stat(pos)[1] <= cutoff]
    candidates.sort(key=lambda pos: state.stat(pos)[1])
    swept = freed = 0
    for pos in candidates:
        size = state.remove(canonicals[pos], "sweep")
        if size:
            swept += 1
            freed += size
    return UnreferencedArtifacts(scanned, swept, freed, older_than)


def _unreferenced_by_name(ctx: _Context, state: _DirState, leaving: _Leaving) -> list[int]:
    """Sweepable files that no simple remaining row names, in directory order.

    Counted per name: a name the store's simple rows carry stays referenced while more rows
    carry it than the plan removes. With trajectory files in the dir a row also references
    `<stem>.trajectory.jsonl` and `<stem>.trajectory-path.json`.
    """
    rows = ctx.index.name_rows
    names = ctx.listing.names
    if ctx.listing.has_trajectory:
        count = leaving.name_count
        return [pos for pos in state.present_sweepable() if not _named(names[pos], rows, count)]
    # Without sidecars a file is referenced by its own name only: the names no row carries
    # (kept with the index while neither it nor the listing changes), and those only removed
    # rows carried.
    found = list(ctx.index.unnamed(ctx.listing, state.sweepable))
    by_name = ctx.listing.by_name
    for name in leaving.names() - state.archived_names:
        if name is not None and rows.get(name, 0) <= leaving.name_count(name):
            pos = by_name.get(name)
            if pos is not None:
                found.append(pos)
    return sorted(p for p in found if p not in state.archived and state.present(p))


def _named(name: str, rows: Mapping[str, int], leaving: Callable[[str | None], int]) -> bool:
    """Whether a remaining simple row references `name`, as itself or as its sidecar."""
    if rows.get(name, 0) > leaving(name):
        return True
    for suffix in TRAJECTORY_SUFFIXES:
        if name.endswith(suffix):
            owner = name[: -len(suffix)] + ".jsonl"
            return rows.get(owner, 0) > leaving(owner)
    return False


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
    index: PlanIndex | None = None,
) -> StorePlan:
    """Decide a whole cleanup of one store; touches nothing, asks the disk only through `view`.

    `shared` is set when other stores of the same cleanup live in the same directory: their
    transcripts are never swept as orphans, and files an earlier plan already takes are gone.
    `index`: the store's facts kept from earlier plans (the daemon's); brought up to `store`
    first, and started afresh when it was kept for another dir. Without one, one is built.
    """
    sessions_dir = os.path.dirname(os.path.abspath(target.store_path))
    sdir = SessionsDir(sessions_dir, view, state_dir)
    if index is None:
        index = PlanIndex(sdir.prefix, target.agent_id)
    with index.lock:
        if (index.prefix, index.agent_id) != (sdir.prefix, target.agent_id):
            index.reset(sdir.prefix, target.agent_id)
        index.sync(store.rows, store.view)
        return _plan(store, target, config, options, view, now_ms, home, sdir, shared, index)


def _plan(
    store: Store,
    target: StoreTarget,
    config: SessionsConfig,
    options: CleanupOptions,
    view: DiskView,
    now_ms: int,
    home: str,
    sdir: SessionsDir,
    shared: SharedDir | None,
    index: PlanIndex,
) -> StorePlan:
    maintenance = config.maintenance
    mode: MaintenanceMode = "enforce" if options.enforce else maintenance.mode
    listing = view.listing(sdir.path)
    views = PlanViews(dict(index.facts), {})
    preserve = normalize_preserve_key(options.active_key)
    fast = listing.plain and listing.directory + "/" == sdir.prefix and not sdir.is_legacy_dir(home)
    ctx = _Context(
        store,
        index,
        views,
        sdir,
        listing,
        maintenance,
        options,
        now_ms,
        home,
        {preserve} if preserve else set(),
        fast,
        set(index.irregular),
    )
    if shared is not None:
        ctx.shared_referenced = shared.referenced
    before = list(store.rows)
    actions: dict[str, Action] = {}
    gone: set[str] = set()

    def remaining() -> list[str]:
        return [key for key in before if key not in gone] if gone else before

    def drop(keys: list[str], action: Action) -> None:
        actions.update(dict.fromkeys(keys, action))
        gone.update(keys)

    missing, repairs = _fix_missing(ctx, before) if options.fix_missing else ([], {})
    for key, path in repairs.items():
        row = views[key]
        views.repair(
            key, RowView(msgspec.structs.replace(row.fields, session_file=path), True, True)
        )
        ctx.irregular.add(key)  # its index facts are of the row before the repair
    drop(missing, Action.PRUNE_MISSING)
    retired = _retire_dm_scope(ctx, remaining(), config.dm_scope) if options.fix_dm_scope else []
    drop(retired, Action.RETIRE_DM_SCOPE)
    fixed_gone = set(gone)
    stale_found = _prune_stale(ctx, gone)
    stale = _keys(stale_found.entries)
    drop(stale, Action.PRUNE_STALE)
    capped_found = _cap(ctx, len(before) - len(gone), gone, stale_found)
    capped = _keys(capped_found)
    drop(capped, Action.CAP_OVERFLOW)

    state = _DirState(listing, view, shared.claimed if shared is not None else frozenset())

    def reference_order() -> list[AgeEntry]:
        """The stale and capped rows in the order the reference takes them."""
        position = _positions(store)
        return sorted(stale_found.entries, key=lambda e: position[e[1]]) + sorted(
            capped_found, key=lambda e: (e[0], position[e[1]])
        )

    leaving = _Leaving(index).add(missing).add(retired)
    fixed_leaving = leaving.copy()
    victims = stale_found.entries + capped_found
    # What follows from these rows alone is kept with the index, for the next plan of the same
    # rows (the same index version, cutoffs falling between the same rows, the same fixes).
    rows_key: tuple[object, ...] | None = (
        index.version,
        stale_found.start,
        stale_found.undated,
        maintenance.max_entries,
        frozenset(fixed_gone),
        frozenset(ctx.preserve_keys),
        frozenset(repairs.items()),
        fast,
    )
    if ctx.by_store_order:
        rows_key = None  # the cap broke a tie by store order: nothing kept, nothing reused
    maintained, sids, names = index.remembered(
        "session-files", rows_key, lambda: _session_files(ctx, victims, False, reference_order)
    )
    if ctx.by_store_order and rows_key is not None:
        index.forget("session-files")
        rows_key = None
    leaving.add_counts(sids, names)
    split = index.remembered("by-name", rows_key, lambda: _by_name(ctx, maintained))
    positions = index.remembered(
        "positions",
        (rows_key, listing) if rows_key is not None else None,
        lambda: _positions_of(listing, split[0]),
    )
    _archive_removed(ctx, state, maintained, leaving, split, positions)
    kept = rows_key is not None and not split[1] and shared is None
    memo_key = (index, rows_key, listing) if kept else None
    _remove_trajectory_sidecars(ctx, state, maintained, leaving)
    _expire_archives(ctx, state, bool(state.archived))
    budget, evicted = _budget(ctx, state, remaining, target.store_path, warn_only=False)
    drop(evicted, Action.EVICT_BUDGET)
    leaving.add(evicted)
    retired_entries = [(0.0, key, index.facts[key]) for key in retired]
    retired_files, _, _ = _session_files(ctx, retired_entries, True)
    _archive_removed(ctx, state, retired_files, leaving)
    if retired_files or evicted or state.removed.keys() & state.archived.keys():
        memo_key = None
    sweep = _sweep(ctx, state, gone, leaving)
    after_count = len(before) - len(gone)

    if mode == "enforce":
        log = _enforce_log(len(stale), len(capped), budget)
        applied = AppliedFigures(after_count, len(stale), len(capped), budget, sweep, log)
        removed_keys = frozenset(gone)
        ops = state.ops()
    else:
        fixed = [key for key in before if key not in fixed_gone]
        warn_state = _DirState(listing, view, shared.claimed if shared is not None else frozenset())
        warn_budget, _ = _budget(ctx, warn_state, lambda: fixed, target.store_path, True)
        _archive_removed(ctx, warn_state, retired_files, fixed_leaving)
        warn_log: list[tuple[LogLevel, str]] = []
        if _would_evict_active(ctx, fixed):
            warn_log.append(("warn", EVICT_ACTIVE_WARNING))
        if warn_budget is not None and warn_budget.over_budget:
            warn_log.append(("warn", "session disk budget exceeded (warn-only mode)"))
        applied = AppliedFigures(
            len(fixed),
            0,
            0,
            warn_budget,
            UnreferencedArtifacts(0, 0, 0, maintenance.prune_after_ms or 0),
            tuple(warn_log),
        )
        removed_keys = frozenset(fixed_gone)
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
        after_count=after_count,
        applied=applied,
        removed_keys=removed_keys,
        file_ops=ops,
        repairs=repairs,
        views=views,
        memo_key=(memo_key, tuple(missing), tuple(retired)) if memo_key else None,
    )


def action_of(plan: StorePlan, key: str) -> Action:
    return plan.actions.get(key, Action.KEEP)
