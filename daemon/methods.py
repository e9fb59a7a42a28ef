"""The sessions.* and daemon.status methods, over the registry's in-memory stores.

Every mutation goes through `LiveStore.apply` and is answered after `wait_durable`, so a result
saying `durable: true` means the change was on disk (fsynced and renamed) when it was sent.
Connection concerns (auth, subscriptions) live in the server; these functions see only params.
They fail with domain errors (engine/errors.py) only; each dialect picks the wire code.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import os
import time
import weakref
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import msgspec
import structlog
from sessiond.daemon.clock import now_ms
from sessiond.daemon.durable_file import apply_file_ops
from sessiond.daemon.glibc_malloc import release_free_memory
from sessiond.daemon.journal import (
    KEEP_DAYS,
    KEEP_ENTRIES,
    SNAPSHOT_MIN_BYTES,
    StoreJournal,
    new_entry_id,
    snapshot_name,
)
from sessiond.daemon.live_store import LiveStore
from sessiond.daemon.os_disk_view import ListingCache, OsDiskView
from sessiond.daemon.registry import Registry
from sessiond.engine.cleanup.apply_flow import (
    ApplyStep,
    CommitRows,
    EntryHeader,
    FileOpsOutcome,
    FinishJournal,
    RecordJournal,
    apply_flow,
    entry_flow,
)
from sessiond.engine.cleanup.plan import CleanupOptions, FileOps
from sessiond.engine.cleanup.plan_id import check_plan_id, plan_id
from sessiond.engine.cleanup.progress import NO_PROGRESS, NoProgress, Progress
from sessiond.engine.cleanup.report import applied_summary, combine, preview_summary
from sessiond.engine.cleanup.row_index import PlanIndex
from sessiond.engine.cleanup.targets import plan_targets
from sessiond.engine.config import StoreTarget, resolve_targets
from sessiond.engine.errors import (
    DomainError,
    InvalidParams,
    KeyNotFound,
    StoreNotFound,
    StoreReadOnly,
    StoreWriteFailed,
    WriteConflict,
)
from sessiond.engine.journal import Finish, JournalEntry, names, plan_restore, row_changes
from sessiond.engine.listing import ListKey, merge_pages
from sessiond.engine.store import Store, view_row
from sessiond.engine.transcripts import SessionsDir, archive_name
from sessiond.protocol.cleanup import CleanupParams, CleanupResult
from sessiond.protocol.methods import (
    ChangeReason,
    DeleteParams,
    DeleteResult,
    GetParams,
    GetResult,
    ListParams,
    ListResult,
    PatchParams,
    PatchResult,
    SessionSummary,
)
from sessiond.protocol.undo import (
    CleanupsParams,
    CleanupsResult,
    JournalKind,
    RestoreParams,
    RestoreResult,
)

log = structlog.get_logger("sessiond.cleanup")

_ROW = msgspec.json.Decoder(dict[str, msgspec.Raw])
_ANY = msgspec.json.Decoder()
_CURSOR = msgspec.json.Decoder(tuple[int, float, str, str])


class PlanInputs:
    """What a cleanup plan reads that the daemon keeps between plans: each store's
    `PlanIndex` (the live store's, see `LiveStore.plan_index`) and the dirs' listings (kept
    while a dir is unchanged)."""

    def __init__(self, registry: Registry) -> None:
        self.registry = weakref.ref(registry)
        self.listings = ListingCache(exact_changes=True)
        self.background: set[asyncio.Future[None]] = set()  # applies' late renames

    async def settled(self) -> None:
        """Once every apply's late renames are done (a dry run plans on the files they leave)."""
        if self.background:
            await asyncio.gather(*map(asyncio.shield, self.background), return_exceptions=True)

    def index_for(self, target: StoreTarget) -> PlanIndex:
        registry = self.registry()
        live = registry.stores.get(target.store_path) if registry is not None else None
        return live.plan_index if live is not None else PlanIndex("", target.agent_id)

    def view(self) -> OsDiskView:
        return OsDiskView(self.listings)


_KEPT: weakref.WeakKeyDictionary[Registry, PlanInputs] = weakref.WeakKeyDictionary()


def plan_inputs(registry: Registry) -> PlanInputs:
    found = _KEPT.get(registry)
    if found is None:
        found = _KEPT[registry] = PlanInputs(registry)
    return found


async def warm_plans(registry: Registry) -> None:
    """A dry run of every loaded store, its answer dropped, before the daemon listens.

    The first plan of a store builds what later plans only keep current: the index's facts of
    every row, the sessions dir's listing and the kinds of its files (at 100k rows ~0.3 s of a
    first dry run's ~0.45 s). Paid at start instead, the first client's dry run costs what
    every later one does.
    """
    for live in list(registry):
        if not live.writable:
            continue  # a store that does not parse is planned by nobody
        try:
            await cleanup(registry, CleanupParams(agent=live.agent_id, dry_run=True))
        except DomainError as exc:  # a config that names no store for it: nothing to warm
            log.warning("no plan to warm", store=live.path, error=str(exc))


def store_for(registry: Registry, agent: str | None) -> LiveStore:
    live = registry.by_agent(agent)
    if live is None:
        raise StoreNotFound(f"no store for agent {agent!r}", {"agent": agent})
    return live


def not_writable(live: LiveStore) -> StoreReadOnly:
    return StoreReadOnly(
        "store does not parse; it is read-only until it does",
        {"storePath": live.path, "parseError": str(live.broken or live.store.error)},
    )


def writable(live: LiveStore) -> LiveStore:
    """`live`, once it is known to parse (else `not_writable`'s StoreReadOnly)."""
    if not live.writable:
        raise not_writable(live)
    return live


# ------------------------------------------------------------------------------------- list


def _encode_cursor(key: ListKey) -> str:
    return base64.urlsafe_b64encode(msgspec.json.encode(key)).decode()


def _decode_cursor(text: str) -> ListKey:
    try:
        return _CURSOR.decode(base64.urlsafe_b64decode(text.encode()))
    except (binascii.Error, ValueError, msgspec.DecodeError) as exc:
        raise InvalidParams(
            "Invalid params", {"path": "$.cursor", "reason": "not a cursor"}
        ) from exc


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


SUMMARIES_KEPT = 50_000
"""At most this many list entries kept per store (`LiveStore.summaries`); past it the cache
starts again, so a client paging through a million rows does not keep a million entries."""


def _summary(live: LiveStore, key: str) -> SessionSummary:
    """The row's list entry, made once per version of the row: a page of 50 is built ~2,500
    times a second under stress/load.py, and most of its rows have not changed since."""
    raw = live.store.rows[key]
    kept = live.summaries.get(key)
    if kept is not None and kept[0] is raw:
        return kept[1]
    summary = _new_summary(live, key)
    if len(live.summaries) >= SUMMARIES_KEPT:
        live.summaries.clear()
    live.summaries[key] = (raw, summary)
    return summary


def _new_summary(live: LiveStore, key: str) -> SessionSummary:
    fields = live.store.view(key).fields  # decoded once per row version (the view cache)
    updated = fields.updated_at
    if isinstance(updated, bool) or not isinstance(updated, int | float):
        updated = None
    return SessionSummary(
        key=key,
        agent_id=live.agent_id,
        updated_at=updated,
        session_id=_text(fields.session_id),
        chat_type=_text(fields.chat_type),
        model=_text(fields.model),
    )


def list_sessions(registry: Registry, params: ListParams) -> ListResult:
    """A bounded page; only the rows on the page are decoded beyond the cached sort index."""
    if params.all_agents and params.agent:
        raise InvalidParams("agent and allAgents cannot be used together")
    stores = list(registry) if params.all_agents else [store_for(registry, params.agent)]
    after = _decode_cursor(params.cursor) if params.cursor else None
    cutoff = None
    if params.active_minutes is not None:
        cutoff = float(now_ms() - params.active_minutes * 60_000)
    page, total, more = merge_pages(
        [(s, s.index().order) for s in stores], after, cutoff, params.limit
    )
    sessions = [_summary(live, sort_key[3]) for live, sort_key in page]
    next_cursor = _encode_cursor(page[-1][1]) if more and page else None
    return ListResult(sessions, total, more, next_cursor)


# -------------------------------------------------------------------------------- get/patch


def get_session(registry: Registry, params: GetParams) -> GetResult:
    live = store_for(registry, params.agent)
    raw = live.store.get(params.key)
    if raw is None:
        raise KeyNotFound("no such session", {"key": params.key})
    return GetResult(params.key, live.agent_id, compact(raw))


def compact(raw: msgspec.Raw) -> msgspec.Raw:
    """The row without the file's indentation and newlines: every token as stored (numbers and
    escapes keep their spelling), only the whitespace between tokens dropped. The file itself is
    untouched."""
    return msgspec.Raw(msgspec.json.format(raw, indent=-1))


def _same_value(a: msgspec.Raw, b: msgspec.Raw) -> bool:
    return a == b or msgspec.json.encode(_ANY.decode(a)) == msgspec.json.encode(_ANY.decode(b))


def _patched(current: msgspec.Raw | None, fields: dict[str, msgspec.Raw]) -> msgspec.Raw | None:
    """The new row, or None when the patch changes nothing (then nothing is written)."""
    if current is None:
        return msgspec.Raw(msgspec.json.encode(fields))
    try:
        row = _ROW.decode(current)
    except msgspec.ValidationError as exc:
        raise WriteConflict("the stored row is not an object; cannot patch") from exc
    if all(k in row and _same_value(row[k], v) for k, v in fields.items()):
        return None
    row.update(fields)
    return msgspec.Raw(msgspec.json.encode(row))


def _updated_at_of(raw: msgspec.Raw | None) -> Any:
    return None if raw is None else view_row(raw).fields.updated_at


async def patch_session(registry: Registry, params: PatchParams) -> PatchResult:
    live = store_for(registry, params.agent)
    if not live.writable:
        raise not_writable(live)
    current = live.store.get(params.key)
    if params.if_updated_at is not msgspec.UNSET:
        found = _updated_at_of(current)
        expected = params.if_updated_at
        if (current is None) != (expected is None) or (current is not None and found != expected):
            raise WriteConflict(
                "ifUpdatedAt does not match",
                {"key": params.key, "updatedAt": found, "exists": current is not None},
            )
    row = _patched(current, params.fields)
    if row is None:
        assert current is not None
        return PatchResult(params.key, live.agent_id, compact(current), await _durable_now(live))
    try:
        gen = live.apply({params.key: row}, "patch")
    except StoreReadOnly as exc:
        raise not_writable(live) from exc
    durable = await live.wait_durable(gen)
    return PatchResult(params.key, live.agent_id, live.store.get(params.key) or row, durable)


async def _durable_now(live: LiveStore) -> bool:
    """A no-op is durable once whatever is pending already is (it writes nothing itself)."""
    return await live.wait_durable(live.gen) if live.pending else True


# ----------------------------------------------------------------------------------- delete


async def delete_session(registry: Registry, params: DeleteParams) -> DeleteResult:
    """Remove the row, and once that is durable archive its transcript as cleanup does; both
    journaled first, so `sessions.restore` can put them back."""
    live = writable(store_for(registry, params.agent))
    if live.store.get(params.key) is None:
        return DeleteResult(params.key, live.agent_id, False, await _durable_now(live), [])
    removed = await remove_row(registry, live, params.key)
    return DeleteResult(params.key, live.agent_id, True, removed.durable, removed.archived)


@dataclass(frozen=True, slots=True)
class Written:
    """A journaled change: whether its rows are on disk, and the transcripts it archived."""

    durable: bool
    archived: list[str]


async def remove_row(
    registry: Registry, live: LiveStore, key: str, *, archive: bool = True
) -> Written:
    """Remove `key` (a row of `live`), journaled; with `archive`, its transcripts are archived
    as `.deleted.` once the removal is durable, unless another row shares its session."""
    fields = view_row(live.store.rows[key]).fields
    session_id = fields.session_id if isinstance(fields.session_id, str) else None
    shared = session_id is not None and live.index().session_ids.get(session_id, 0) > 1
    clock = now_ms()
    archives: list[tuple[str, str]] = []
    if archive and session_id is not None and not shared:
        archives = await asyncio.to_thread(
            archive_plan, registry, live.path, session_id, fields.session_file, "deleted", clock
        )
    owners = {session_id.strip(): key} if session_id else {}
    return await journaled_change(registry, live, "delete", {key: None}, archives, owners, clock)


async def journaled_change(
    registry: Registry,
    live: LiveStore,
    kind: JournalKind,
    changes: dict[str, msgspec.Raw | None],
    archives: list[tuple[str, str]],
    owners: dict[str, str],
    clock: int,
    reason: ChangeReason | None = None,
) -> Written:
    """One journal entry of `kind`: rows changed in the store, then (once durable) the
    transcripts renamed per `archives` ((path, archive path); `owners` maps a session id to
    its key). A failed flush is `durable: False`: the rows stay in memory and are retried."""
    journal = registry.journals.open(live.path, live.store, clock)
    entry = JournalEntry(
        id=new_entry_id(clock),
        time_ms=clock,
        kind=kind,
        store_path=live.path,
        rows=row_changes(live.store, changes, dict.fromkeys(changes, kind)),
        moves=names(archives, owners),
    )
    try:
        outcome = await _drive(live, entry_flow(entry, None, changes, reason), journal)
    except StoreWriteFailed:
        return Written(False, [])
    return Written(True, [archive for _source, archive in outcome.archived])


def archive_plan(
    registry: Registry,
    store_path: str,
    session_id: str,
    session_file: Any,
    reason: str,
    clock: int,
) -> list[tuple[str, str]]:
    """(transcript, its archive name) for each of a session's transcripts (blocking: it looks
    at the sessions dir); `reason` names the archive (`deleted`, `reset`)."""
    directory = os.path.dirname(os.path.abspath(store_path))
    sdir = SessionsDir(directory, plan_inputs(registry).view(), registry.where.state_dir)
    candidates = sdir.archive_candidates(session_id, session_file, registry.where.home)
    return [(p, archive_name(p, reason, clock)) for p in candidates]


# ---------------------------------------------------------------------------------- cleanup


async def cleanup(
    registry: Registry, params: CleanupParams, progress: Progress = NO_PROGRESS
) -> CleanupResult:
    """The local CLI's plan on the in-memory stores; apply = journal, remove keys, flush, then
    files. With `planId`, only the very plan the dry run showed is applied."""
    targets = resolve_targets(  # TargetError (kind store_not_found) for a bad agent
        registry.config, registry.where, agent=params.agent, all_agents=params.all_agents
    )
    lives: dict[str, LiveStore] = {}
    for target in targets:
        live = registry.stores.get(target.store_path)
        if live is None:
            raise StoreNotFound(f"store not loaded: {target.store_path}")
        if not live.writable:
            raise not_writable(live)
        lives[target.store_path] = live
    kept = plan_inputs(registry)
    if params.dry_run:
        await kept.settled()  # a preview after an apply sees the files that apply leaves
        return await _cleanup_locked(registry, params, targets, lives, progress, [])
    lock = registry.journals.apply_lock
    await lock.acquire()
    late: list[asyncio.Future[None]] = []
    try:
        result = await _cleanup_locked(registry, params, targets, lives, progress, late)
    except BaseException:
        _release_after(late, lock, registry)
        raise
    _release_after(late, lock, registry)
    return result


def _release_after(
    late: list[asyncio.Future[None]], lock: asyncio.Lock, registry: Registry
) -> None:
    """Release the apply lock now, or once the archives an apply answered before are done:
    the next apply or restore plans on the files this one leaves."""
    if not late:
        lock.release()
        return

    async def wait() -> None:
        try:
            await asyncio.gather(*late, return_exceptions=True)
        finally:
            lock.release()

    task = asyncio.ensure_future(wait())
    plan_inputs(registry).background.add(task)
    registry.journals.pending.add(task)
    task.add_done_callback(plan_inputs(registry).background.discard)
    task.add_done_callback(registry.journals.pending.discard)


async def _cleanup_locked(
    registry: Registry,
    params: CleanupParams,
    targets: list[StoreTarget],
    lives: dict[str, LiveStore],
    progress: Progress,
    late: list[asyncio.Future[None]],
) -> CleanupResult:
    """`late` collects archives still running when the answer goes (see `_drive`)."""
    answer_by = asyncio.get_running_loop().time() + ANSWER_BUDGET_S
    snapshots: dict[str, Store] = {path: live.store.copy() for path, live in lives.items()}
    generation = sum(live.seq for live in lives.values())
    options = CleanupOptions(
        fix_missing=params.fix_missing,
        fix_dm_scope=params.fix_dm_scope,
        active_key=params.active_key,
        enforce=params.enforce,
    )

    def load(target: StoreTarget) -> Store:
        return snapshots[target.store_path]

    if not params.dry_run:
        for live in lives.values():
            registry.before_apply(live)
    rows = sum(len(s) for s in snapshots.values())
    progress.begin("sessions.cleanup", "plan", rows)
    clock = now_ms()
    kept = plan_inputs(registry)
    view = kept.view()
    try:
        planned = await _off_loop_past(  # StoreReadOnly for a snapshot that does not parse
            rows,
            lambda: plan_targets(
                targets,
                load,
                registry.config,
                options,
                view,
                clock,
                registry.where,
                kept.index_for,
            ),
        )
    except StoreReadOnly:
        progress.end("failed")
        raise
    progress.report("plan", rows, rows)
    mode = planned[0].plan.mode if planned else registry.config.maintenance.mode
    plans = [p.plan for p in planned]
    if params.dry_run:

        def preview() -> CleanupResult:
            summaries = [
                preview_summary(p.plan, registry.config, params.include_actions) for p in planned
            ]
            return combine(summaries, mode, dry_run=True, plan_id=str(plan_id(plans, generation)))

        # Past INLINE_PLAN_ROWS in a thread too: naming a plan of 100k rows sorts its keys.
        result = await _off_loop_past(rows, preview)
        progress.end("previewed")
        if rows > INLINE_PLAN_ROWS:
            # What a big plan freed goes back to the system once the answer is on its way
            # (a small one frees little, and stress/load.py's dry runs would pay a thread each).
            asyncio.get_running_loop().run_in_executor(None, release_free_memory)
        return result
    if rows > INLINE_PLAN_ROWS:
        # What the plan freed, back to the system before the journal entry and the store
        # write (the apply's peak) allocate theirs: daemon/glibc_malloc.py.
        await asyncio.to_thread(release_free_memory)
    if params.plan_id is not None:
        try:
            check_plan_id(params.plan_id, plans, generation)  # StalePlan, or InvalidParams
        except DomainError:
            progress.end("refused")
            raise
    summaries = []
    for p in planned:
        live = lives[p.plan.target.store_path]
        if live.bulk(len(p.plan.removed_keys) + len(p.plan.repairs)):
            live.drop_list_index()  # stale once the rows change; dead weight until then
        journal = registry.journals.open(live.path, live.store, clock)
        header = EntryHeader(new_entry_id(clock), clock)
        flow = apply_flow(p.plan, snapshots[live.path], header, options)
        try:
            reconciled = await _drive(live, flow, journal, progress, answer_by, late)
        except DomainError:
            progress.end("failed")
            raise
        summaries.append(applied_summary(p.plan, len(live.store), reconciled.applied))
    progress.end("applied")
    return combine(summaries, mode, dry_run=False)


R = TypeVar("R")

INLINE_PLAN_ROWS = 10_000
"""A cleanup over at most this many rows plans on the loop itself (a warm dry run, alone: ~6 ms
at 5,000 rows, ~12 ms at 10,000 fat rows). In a worker thread the 5,000-row plan took 85-90
ms under stress/load.py's 200 clients, and all that while it took the interpreter lock from
the loop (and from the flush thread every patch waits on) one switch interval at a time."""


async def _off_loop_past(rows: int, work: Callable[[], R]) -> R:
    """`work()` on the loop for a plan of at most `INLINE_PLAN_ROWS` rows, else in a thread."""
    if rows <= INLINE_PLAN_ROWS:
        return work()
    return await asyncio.to_thread(work)


ANSWER_BUDGET_S = 1.0
"""An apply answers once its store write is durable and, within this long of its start, its
file operations are done; renames still running then (at least `LATE_MIN_ARCHIVES` of them)
finish after the answer, journaled, before the apply lock is let go."""
LATE_MIN_ARCHIVES = 1_000


@dataclass(slots=True)
class _Late:
    """Renames of an apply still running when it answered; its journal entry is closed, with
    what they did, when they are done."""

    archiving: asyncio.Future[FileOpsOutcome]
    removed: FileOpsOutcome
    finish: FinishJournal | None = None


def _send(
    flow: Generator[ApplyStep, FileOpsOutcome | None, R], reply: FileOpsOutcome | None
) -> tuple[ApplyStep | None, R | None]:
    """One step of a flow (run in a thread: the first one writes a big apply's journal entry);
    (None, result) when it is done."""
    try:
        return flow.send(reply), None
    except StopIteration as done:
        return None, done.value


async def _drive(
    live: LiveStore,
    flow: Generator[ApplyStep, FileOpsOutcome | None, R],
    journal: StoreJournal,
    progress: Progress = NO_PROGRESS,
    answer_by: float | None = None,
    late: list[asyncio.Future[None]] | None = None,
) -> R:
    """A flow against a live store: the journal written (in a thread) before each commit,
    each commit answered once it is durable, file operations in a thread.

    With `answer_by` (a loop time) and `late`: removals first, then the renames; renames
    still running at `answer_by` go on after the flow returns (its answer does not depend on
    them), and the entry's Finish record waits for them (a task added to `late`).
    """
    reply: FileOpsOutcome | None = None
    loop = asyncio.get_running_loop()
    pending: _Late | None = None
    keep_at: str | None = None
    while True:
        step, result = await asyncio.to_thread(_send, flow, reply)
        reply = None
        if step is None:
            if pending is not None and late is not None:
                late.append(asyncio.ensure_future(_finish_late(pending, journal)))
            return result  # type: ignore[return-value]
        if isinstance(step, RecordJournal):
            progress.report("journal", 0, 1)
            snapshot = _snapshot_for(live, step.entry)
            if snapshot is not None:
                keep_at = os.path.join(journal.directory, snapshot)
            await asyncio.to_thread(journal.begin, step.entry, snapshot)
        elif isinstance(step, FinishJournal):
            if pending is not None:
                pending.finish = step
                continue
            await _finish(journal, step, step.failed, step.moved)
        elif isinstance(step, CommitRows):
            progress.report("commit", 0, len(step.changes))
            try:
                gen = live.apply(step.changes, step.reason, step.order_like, keep_at)
                keep_at = None  # a second commit (rows put back) keeps nothing
            except StoreReadOnly as exc:
                raise not_writable(live) from exc
            if not await live.wait_durable(gen):
                raise StoreWriteFailed(
                    f"{step.what} could not be written; kept in memory and retried",
                    {"storePath": live.path, "error": live.flush_error},
                )
            progress.report("commit", len(step.changes), len(step.changes))
        else:
            total = len(step.ops.archives) + len(step.ops.removals)
            progress.report("files", 0, total)
            report = _threadsafe(progress, loop, total)
            if answer_by is None or late is None or len(step.ops.archives) < LATE_MIN_ARCHIVES:
                reply = await asyncio.to_thread(apply_file_ops, step.ops, step.directory, report)
            else:
                removals = FileOps((), step.ops.removals)
                removed = await asyncio.to_thread(apply_file_ops, removals, step.directory)
                renames = FileOps(step.ops.archives, ())
                archiving = asyncio.ensure_future(
                    asyncio.to_thread(apply_file_ops, renames, step.directory, report)
                )
                await asyncio.wait({archiving}, timeout=max(0.0, answer_by - loop.time()))
                if archiving.done():
                    reply = _joined(archiving.result(), removed)
                else:
                    pending, reply = _Late(archiving, removed), removed
            progress.report("files", total, total)


def _snapshot_for(live: LiveStore, entry: JournalEntry) -> str | None:
    """The snapshot a cleanup's entry names instead of holding its removed rows: only for
    many rows' bytes, and only where the store's write can keep the version it replaces."""
    if entry.kind != "cleanup" or not live.disk.keeps_previous or live.sig is None:
        return None
    if entry.removed_bytes < SNAPSHOT_MIN_BYTES:
        return None
    return snapshot_name(live.path, entry.id)


def _joined(archived: FileOpsOutcome, removed: FileOpsOutcome) -> FileOpsOutcome:
    return FileOpsOutcome(archived.archived, removed.removed, [*archived.failed, *removed.failed])


async def _finish(
    journal: StoreJournal, step: FinishJournal, failed: Sequence[str], moved: int
) -> None:
    record = Finish(
        step.entry_id, "done", now_ms(), list(failed), list(step.kept), moved, step.deleted
    )
    await asyncio.to_thread(journal.finish, record, record.time_ms)


async def _finish_late(pending: _Late, journal: StoreJournal) -> None:
    """Close the entry of an apply that answered before its renames were done. If this never
    runs (the daemon is killed first), the next start finds the entry open after its store
    write and finishes the renames itself (daemon/journal.py)."""
    archived = await pending.archiving
    step = pending.finish
    if step is None:
        return
    failed = [*step.failed, *(path for path, _ in archived.failed)]
    await _finish(journal, step, failed, len(archived.archived))


REPORT_EVERY_S = 0.1


def _threadsafe(
    progress: Progress, loop: asyncio.AbstractEventLoop, total: int
) -> Callable[[int], None] | None:
    """File-by-file reports from the worker thread, at most every REPORT_EVERY_S."""
    if isinstance(progress, NoProgress):
        return None
    last = [time.monotonic()]

    def on_step(done: int) -> None:
        now = time.monotonic()
        if now - last[0] >= REPORT_EVERY_S:
            last[0] = now
            loop.call_soon_threadsafe(progress.report, "files", done, total)

    return on_step


# ============================================================= issue 15: journal and undo


def list_cleanups(registry: Registry, params: CleanupsParams) -> CleanupsResult:
    live = store_for(registry, params.agent)
    if live.writable:
        journal = registry.journals.open(live.path, live.store, now_ms())
    else:
        journal = registry.journals.peek(live.path)
    return CleanupsResult(
        agent_id=live.agent_id,
        store_path=live.path,
        retention_entries=KEEP_ENTRIES,
        retention_days=KEEP_DAYS,
        entries=journal.summaries(max(1, params.limit)),
    )


async def restore(
    registry: Registry, params: RestoreParams, progress: Progress = NO_PROGRESS
) -> RestoreResult:
    """Undo one journal entry: rows back byte for byte where they stood, archives renamed
    back; keys that exist again and names now taken are reported and left alone."""
    live = store_for(registry, params.agent)
    if not live.writable:
        raise not_writable(live)
    clock = now_ms()
    journal = registry.journals.open(live.path, live.store, clock)
    async with registry.journals.apply_lock:
        entry = journal.pick(params.id)  # JournalEntryNotFound, NotRestorable
        directory = os.path.dirname(os.path.abspath(live.path))

        def exists(name: str) -> bool:
            return os.path.lexists(os.path.join(directory, name))

        snapshot = live.store.copy()
        plan = await asyncio.to_thread(plan_restore, entry, snapshot, exists)
        result = plan.result(live.agent_id, params.dry_run)
        mine = plan.entry(new_entry_id(clock), clock)
        if params.dry_run or mine.empty:
            return result
        progress.begin("sessions.restore", "journal", 1)
        try:
            outcome = await _drive(
                live, entry_flow(mine, plan.order, plan.changes), journal, progress
            )
        except DomainError:
            progress.end("failed")
            raise
        progress.end(f"restored {result.restored_rows} rows")
    result.renamed_files = len(outcome.archived)
    result.journal_id = mine.id
    return result
