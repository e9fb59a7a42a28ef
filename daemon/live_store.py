"""The in-memory store registry: every configured agent's sessions.json, kept and flushed.

Each `LiveStore` serves its rows from memory and owns one flusher task. A change bumps a
generation counter and wakes the flusher; the flusher snapshots the store, writes it durably (in
a thread, so requests keep being served) and marks that generation durable. Changes that arrive
during a write ride on the next one, so a burst costs one or two writes, and a change that
changes nothing is never a change (no generation, no write, no notification).

Disk work on one store (a flush or a reload) is serialised by the store's lock, and every disk
effect goes through the store's `StoreFile` (`durable_file.DiskStoreFile` on a real disk). Before
each rename the target is checked to still be the version last loaded or written; if not, the
write is abandoned, the file is reloaded and merged (`engine.merge.merge_external`), and written
again; a file renamed in after the check is handed back by the rename itself (an exchange) and
merged the same way. Each store keeps the recent versions it wrote or loaded (`history`) and
which rows its requests made (`authored`), so that a file built on an older read cannot take
back what its writer never saw. The lifecycle (clean, dirty, flushing, failed, reloading,
merging, broken) is the transition table of `live_store_state`; every change of state goes
through it.

A flush that fails keeps the change in memory, answers the waiting requests `durable: false`,
and retries with backoff (0.1 s doubling to 5 s); it shows in `/readyz` and `daemon.status`.
A file that does not parse makes the store read-only (mutations fail with -32002), is never
written over and shows in `/readyz` (503) and `daemon.status` (`ready: false`) until it parses;
one found at start is also copied aside to `sessions.json.corrupt.<time>`.
"""

from __future__ import annotations

import asyncio
import bisect
import os
import time
from collections.abc import Callable, Iterable
from dataclasses import InitVar, dataclass, field

import msgspec
import structlog
from sessiond.daemon.clock import now_ms
from sessiond.daemon.durable_file import DiskStoreFile, StoreWriteError
from sessiond.daemon.durable_file import temp_writer_alive as temp_writer_alive  # test seam
from sessiond.daemon.file_version import (
    DiskSig,
    ExternalChange,
    FileData,
    Replaced,
    Snapshot,
    StoreFile,
)
from sessiond.daemon.live_store_state import Event, Lifecycle, State
from sessiond.engine.cleanup.apply_flow import restore_order
from sessiond.engine.cleanup.row_index import PlanIndex
from sessiond.engine.config import (
    StoreTarget,
)
from sessiond.engine.errors import StoreReadOnly
from sessiond.engine.listing import ListKey, list_key
from sessiond.engine.merge import MergeOutcome, changed_keys, merge_external
from sessiond.engine.store import (
    RowView,
    Store,
    StoreImage,
    StoreParseError,
    load_store_bytes,
    store_image,
    store_pieces,
    view_row,
)
from sessiond.engine.transcripts import iso_stamp
from sessiond.engine.write_history import Changes, WriteHistory, diff, row_hash
from sessiond.protocol.methods import ChangeReason, SessionsChanged, SessionSummary, StoreStatus

log = structlog.get_logger("sessiond.stores")

BACKOFF_START_S = 0.1
BACKOFF_MAX_S = 5.0
EMPTY_SETTLE_S = 0.1
ECHO_LOOK_AGAIN_S = 0.01
JOIN_PIECES_BELOW = 16 << 20
"""A store smaller than this keeps its image (`StoreImage`) from write to write: its ~300
blocks go out in one writev (writev's batches of a store's ~25,000 pieces cost a 15 MB flush
under load ~8 ms more than one write). Past it, that copy of the file is what would raise a
big apply's peak memory: its pieces are written as they are."""


@dataclass(slots=True)
class _Index:
    """Per-row facts `sessions.list` and `sessions.delete` need, built once per store version."""

    order: list[ListKey]
    session_ids: dict[str, int]


@dataclass(slots=True)
class LiveStore:
    target: StoreTarget
    store: Store = field(default_factory=Store)
    base: Store = field(default_factory=Store)
    sig: DiskSig | None = None
    dirty: set[str] = field(default_factory=set)
    gen: int = 0
    durable_gen: int = 0
    failed_gen: int = 0
    seq: int = 0
    broken: StoreParseError | None = None
    corrupt_copy: str | None = None
    flushes: int = 0
    flush_failures: int = 0
    flush_error: str | None = None
    last_flush_ms: int | None = None
    last_external_reload_ms: int | None = None
    external_reloads: int = 0
    conflicts: int = 0
    stale_writes_repaired: int = 0
    history: WriteHistory = field(default_factory=WriteHistory)
    # The row each request put (None: deleted), by key: a row is sessiond's own while memory
    # holds that very object; only own rows are protected from a stale file.
    authored: dict[str, msgspec.Raw | None] = field(default_factory=dict)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    # Requests waiting for a generation to be on disk, answered together by `_settle`: an
    # asyncio.Condition handed its lock from one woken waiter to the next, one loop pass each,
    # so the last of a flush's 50 patches heard of it tens of milliseconds late under load.
    waiting: list[tuple[int, asyncio.Future[bool]]] = field(default_factory=list)
    task: asyncio.Task[None] | None = None
    on_changed: Callable[[SessionsChanged], None] | None = None
    lifecycle: Lifecycle = field(default_factory=Lifecycle)
    file: InitVar[StoreFile | None] = None  # default: the real file at target.store_path
    disk: StoreFile = field(init=False)
    _index: _Index | None = None
    _views: dict[str, tuple[msgspec.Raw, RowView]] = field(default_factory=dict)
    # Each listed row's `sessions.list` entry, by the row it was made from (daemon/methods.py).
    summaries: dict[str, tuple[msgspec.Raw, SessionSummary]] = field(default_factory=dict)
    # What cleanup plans read of each row, kept from plan to plan (engine/cleanup/row_index.py);
    # brought up to date whenever the store is read, and by each plan for what changed since.
    plan_index: PlanIndex = field(init=False)
    # (generation, path): the write that makes that generation durable leaves the version it
    # replaces at that path, a journal snapshot (daemon/journal.py).
    keep_previous: tuple[int, str] | None = None
    # The last write's bytes by blocks, for a store under JOIN_PIECES_BELOW (`_file_data`);
    # only the flush's thread, one write at a time, uses it.
    _image: StoreImage | None = None

    def __post_init__(self, file: StoreFile | None) -> None:
        self.disk = file if file is not None else DiskStoreFile(self.target.store_path)
        self.plan_index = PlanIndex(_dir_prefix(self.target.store_path), self.agent_id)

    @property
    def state(self) -> State:
        return self.lifecycle.state

    @property
    def agent_id(self) -> str:
        return self.target.agent_id

    @property
    def path(self) -> str:
        return self.target.store_path

    @property
    def writable(self) -> bool:
        return self.broken is None and self.store.writable

    @property
    def pending(self) -> bool:
        return self.gen > self.durable_gen

    # ------------------------------------------------------------------------------ loading

    def load_initial(self) -> None:
        """Read the file at start; a corrupt one is copied aside and served read-only (empty)."""
        self.disk.prepare()
        found = self.disk.read()
        data = found.data if found else None
        loaded = load_store_bytes(data, self.path)
        self.sig = found.version if found else None
        if loaded.error is not None and data is not None:
            self.broken = loaded.error
            try:
                self.corrupt_copy = self.disk.keep_aside(data, f".corrupt.{iso_stamp(now_ms())}")
            except StoreWriteError as exc:
                log.error("could not copy corrupt store aside", path=self.path, error=str(exc))
            log.error(
                "store does not parse; serving read-only",
                path=self.path,
                error=str(loaded.error),
                copy=self.corrupt_copy,
            )
        loaded.view_cache = self._views
        self._warm(loaded)
        self.store = loaded
        self.base = loaded.copy()
        self.history.start(time.time_ns())
        self.lifecycle.fire(Event.LOADED if self.broken is None else Event.LOADED_BROKEN)

    # ------------------------------------------------------------------------------ changes

    def apply(
        self,
        changes: dict[str, msgspec.Raw | None],
        reason: ChangeReason,
        order_like: Store | None = None,
        keep_previous_at: str | None = None,
    ) -> int:
        """Put (Raw) or delete (None) rows in memory; returns the generation to wait for.

        `order_like`: put rows back where they stood in that earlier version (a cleanup that
        restores a row must leave the file as the local apply would), not at the end.
        `keep_previous_at`: the write of this change keeps the version it replaces there.
        """
        if not self.writable:
            raise StoreReadOnly(str(self.broken or self.store.error or self.path))
        touched: list[str] = []
        if self.bulk(len(changes)):
            # A bulk change (a cleanup removing most rows): rebuilding the list index once, on
            # the next list, beats keeping it sorted row by row (a list delete each: seconds).
            self._index = None
        for key, raw in changes.items():
            if raw is None:
                old = self.store.delete(key)
                self._views.pop(key, None)
                self.summaries.pop(key, None)
                if old is None:
                    continue
            else:
                old = self.store.rows.get(key)
                self.store.put(key, raw)
            self._reindex(key, old, raw)
            self.authored[key] = raw
            touched.append(key)
        if not touched:
            return self.durable_gen
        if order_like is not None:
            restore_order(self.store, order_like)
        self.dirty.update(touched)
        self.gen += 1
        if keep_previous_at is not None:
            self.keep_previous = (self.gen, keep_previous_at)
        self.lifecycle.fire(Event.CHANGE)
        self.wake.set()
        self._announce(touched, reason)
        return self.gen

    def bulk(self, rows: int) -> bool:
        """Whether a change of `rows` rows is a bulk one, after which the list index is built
        again rather than kept current."""
        return rows > max(1_000, len(self.store) // 8)

    def drop_list_index(self) -> None:
        """Forget the list index (built again on the next list): a bulk change coming (a big
        cleanup's) would drop it anyway, and kept through that change's journal entry and
        write it is memory at their peak (~20 MB at 100k rows)."""
        self._index = None

    def _announce(self, keys: list[str], reason: ChangeReason) -> None:
        self.seq += 1
        if self.on_changed is not None:
            self.on_changed(SessionsChanged(self.agent_id, self.path, self.seq, keys, reason))

    async def wait_durable(self, gen: int) -> bool:
        """True once generation `gen` is on disk; False as soon as a flush covering it failed."""
        if self.durable_gen >= gen or self.failed_gen >= gen:
            return self.durable_gen >= gen
        answer: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self.waiting.append((gen, answer))
        return await answer

    async def _settle(self) -> None:
        self._answer_waiters()

    def _written(self, gen: int) -> None:
        """Generation `gen` is on disk: told by the flush's thread the moment it is, so that its
        requests are answered in the loop's next pass, one pass (~10 ms under load) before
        the flush itself resumes there to record the new version."""
        self.durable_gen = max(self.durable_gen, gen)
        self._answer_waiters()

    def _answer_waiters(self) -> None:
        """Answer every waiter whose generation is now on disk (True) or failed (False)."""
        left = []
        for gen, answer in self.waiting:
            if answer.done():  # its request was cancelled
                continue
            if self.durable_gen >= gen or self.failed_gen >= gen:
                answer.set_result(self.durable_gen >= gen)
            else:
                left.append((gen, answer))
        self.waiting = left

    # ----------------------------------------------------------------------------- flushing

    async def run_flusher(self) -> None:
        backoff = BACKOFF_START_S
        while True:
            await self.wake.wait()
            self.wake.clear()
            await asyncio.sleep(0)  # let the rest of a burst land in this write
            while self.pending and self.broken is None:
                if await self._flush_guarded():
                    backoff = BACKOFF_START_S
                    continue
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, BACKOFF_MAX_S)
            if self.pending and self.broken is not None:
                self.failed_gen = self.gen
                await self._settle()

    async def flush_once(self) -> bool:
        """One durable write of the current state; False when it failed."""
        async with self.lock:
            if not self.pending:
                return True
            if self.broken is not None:
                return False
            target_gen = self.gen
            snapshot = self.store.copy()
            keys, self.dirty = self.dirty, set()
            expected = self.sig
            self.lifecycle.fire(Event.FLUSH)

            base = self.base
            own = self._own(snapshot, keys)
            keep = self.keep_previous
            keep_at = keep[1] if keep is not None and keep[0] <= target_gen else None

            loop = asyncio.get_running_loop()

            def write() -> tuple[Replaced, Changes]:
                done = self.disk.replace(self._file_data(snapshot, expected), expected, keep_at)
                if done.displaced is None:  # else the merge comes first: see below
                    loop.call_soon_threadsafe(self._written, target_gen)
                # What this version changed, hashed here rather than on the loop.
                return done, diff(base, snapshot, keys, own) if done.displaced is None else {}

            try:
                done, changes = await asyncio.to_thread(write)
            except ExternalChange:
                self.dirty |= keys
                self.lifecycle.fire(Event.CHECK_FAILED)
                try:
                    await self._reload_locked()
                except Exception as exc:  # the file it found cannot be read: a failed attempt
                    self._flush_failed(self.gen, exc)
                    await self._settle()
                    return False
                return True
            except Exception as exc:  # StoreWriteError, or a bug: the change stays in memory
                self.dirty |= keys
                self._flush_failed(target_gen, exc)
                await self._settle()
                return False
            self.sig = done.version
            self.durable_gen = target_gen
            if keep_at is not None:
                self.keep_previous = None
            self.flushes += 1
            self.flush_error = None
            self.last_flush_ms = now_ms()
            if done.displaced is not None:
                # Our file is in place, but the one it replaced was another writer's, renamed
                # in after the check: merge it (its rows are not lost) and write again.
                self.lifecycle.fire(Event.HANDED_BACK)
                try:
                    await self._merge_handed_back(done.displaced, snapshot, keys)
                except Exception as exc:
                    self._flush_failed(self.gen, exc)
                    await self._settle()
                    return False
                return True
            self.history.add(changes, at_ns=time.time_ns())
            self.base = snapshot
            if len(self.authored) > 2 * len(self.history.by_key) + len(self.dirty) + 1_000:
                self._forget_authored()  # rows created and deleted for months stay bounded
            self.lifecycle.fire(Event.WRITTEN_MORE if self.pending else Event.WRITTEN)
        await self._settle()
        return True

    def _file_data(self, snapshot: Store, expected: DiskSig | None) -> FileData:
        """The bytes of a write (in its thread). A store under `JOIN_PIECES_BELOW` keeps its
        image from write to write and rebuilds only the blocks whose rows changed; a bigger
        one is written from its pieces (holding its image would be one more copy of it)."""
        canonical = self.plan_index.is_canonical
        image = self._image
        if image is not None or (expected is not None and expected.size < JOIN_PIECES_BELOW):
            image = store_image(snapshot, canonical, image)
            self._image = image if image.size < JOIN_PIECES_BELOW else None
            return image.pieces
        pieces = store_pieces(snapshot, canonical)
        if sum(map(len, pieces)) < JOIN_PIECES_BELOW:
            return b"".join(pieces)  # one write beats dozens of writev calls
        return pieces

    async def _merge_handed_back(self, found: Snapshot, written: Store, keys: set[str]) -> None:
        """Merge the file our exchange replaced; `written` (holding `keys`) is now on disk."""
        theirs = await asyncio.to_thread(self._parse, found.data)
        log.warning("another writer's file landed after the check; merging it", path=self.path)
        now = time.time_ns()
        if theirs.error is not None:
            copy = await asyncio.to_thread(
                self.disk.keep_aside, found.data, f".displaced.{iso_stamp(now_ms())}"
            )
            log.error(
                "the file our write replaced does not parse; kept aside",
                path=self.path,
                copy=copy,
                error=str(theirs.error),
            )
            own = self._own(written, keys)
            self.history.record(self.base, written, keys, at_ns=now, own=own)
            self.base = written
            self._settle_state()
            await self._settle()
            return
        written_ns = min(found.version.mtime_ns, now)
        outcome = merge_external(
            self.base,
            self.store,
            theirs,
            self.dirty | keys,
            self.history,
            written_ns,
            self._own(self.store, self.authored),
        )
        # The disk's order: their file, then ours over it.
        self._record_overtaken(outcome, now)
        history = self.history
        history.record(self.base, theirs, changed_keys(self.base, theirs), at_ns=now)
        mine = changed_keys(theirs, written)
        history.record(theirs, written, mine, at_ns=now, own=self._own(written, mine))
        await self._take(outcome, written, set(changed_keys(written, outcome.store)))

    async def _flush_guarded(self) -> bool:
        """`flush_once`, but an exception it did not expect (a bug, or an OSError where none was
        thought possible, e.g. while reloading after an external change) is a failed flush,
        retried with backoff: a dead flusher would leave every later change unwritten and
        its request waiting forever, with /readyz still 200."""
        try:
            return await self.flush_once()
        except Exception as exc:
            self._flush_failed(self.gen, exc)
            await self._settle()
            return False

    def _flush_failed(self, gen: int, exc: Exception) -> None:
        """Count and surface a failed flush (/readyz, daemon.status); waiters get durable=false."""
        if self.state in (State.FLUSHING, State.MERGING):
            self.lifecycle.fire(Event.WRITE_FAILED)
        self.failed_gen = max(self.failed_gen, gen)
        self.flush_failures += 1
        if isinstance(exc, StoreWriteError):
            self.flush_error = str(exc)
            log.error("flush failed; change kept in memory", path=self.path, error=str(exc))
        else:
            self.flush_error = f"{type(exc).__name__}: {exc}"
            log.exception("flush crashed; change kept in memory, retrying", path=self.path)

    # ------------------------------------------------------------------------------- reload

    async def reload(self) -> None:
        """Pick up the file after an event; our own writes are recognised and skipped."""
        # Under a stream of patches, flushes run back to back and each event is the echo of
        # our own last rename. Queued for the lock, this reload would run between two flushes
        # and hold the next one (and every patch waiting on it) behind its look at the file.
        # So while a flush runs, look without the lock: a file that is the version we know
        # needs nothing (a change after the look is another event; one before the flush's
        # rename is that flush's to merge). A file that is not may be the very one that
        # flush is renaming in, its version not yet known: look again shortly.
        while self.lock.locked():
            if await asyncio.to_thread(self.disk.unchanged, self.sig):
                return
            await asyncio.sleep(ECHO_LOOK_AGAIN_S)
        async with self.lock:
            self.lifecycle.fire(Event.RELOAD)
            try:
                await self._reload_locked()
            except BaseException:
                if self.state in (State.RELOADING, State.BROKEN):
                    self._settle_state()  # memory is as it was: say so, then let it raise
                raise

    def _look(self) -> Snapshot | DiskSig | None:
        """The file when it is not the version we know (None: absent); else that version."""
        if self.sig is not None and self.disk.unchanged(self.sig):
            return self.sig
        return self.disk.read()

    async def _reload_locked(self) -> None:
        """Read the file and merge it with memory; ends by settling the state (not on error)."""
        found = await asyncio.to_thread(self._look)
        if isinstance(found, Snapshot) and not found.data.strip() and len(self.store) > 0:
            # Empty now, rows before: most likely an editor that truncates and then writes in
            # place, read in between; taken as is, every row would be an external deletion
            # (and an unflushed change to any of them would lose to it). Look again shortly;
            # a file that stays empty is an empty store.
            await asyncio.sleep(EMPTY_SETTLE_S)
            found = await asyncio.to_thread(self._look)
        if isinstance(found, DiskSig) or (found is None and self.sig is None):
            self._settle_state()
            return
        data = found.data if found is not None else None
        sig = found.version if found is not None else None
        if sig is not None and self.sig is not None and sig.digest == self.sig.digest:
            self.sig = sig
            self._settle_state()
            return

        # In a thread: a big store takes a while to parse, and the loop keeps serving meanwhile.
        loaded = await asyncio.to_thread(self._parse, data)
        self.sig = sig
        if loaded.error is not None:
            if self.broken is None or str(self.broken) != str(loaded.error):
                log.error(
                    "store stopped parsing; keeping last good state, writing nothing",
                    path=self.path,
                    error=str(loaded.error),
                )
            self.broken = loaded.error
            self._settle_state()
            return
        if self.broken is not None:
            log.info("store parses again", path=self.path)
        self.broken = None
        now = time.time_ns()
        written_ns = min(sig.mtime_ns, now) if sig is not None else now
        outcome = merge_external(
            self.base,
            self.store,
            loaded,
            self.dirty,
            self.history,
            written_ns,
            self._own(self.store, self.authored),
        )
        changed = changed_keys(self.base, loaded)
        self._record_overtaken(outcome, now)
        self.history.record(self.base, loaded, changed, at_ns=now)
        await self._take(outcome, loaded, outcome.pending)

    def _record_overtaken(self, outcome: MergeOutcome, at_ns: int) -> None:
        """Own unflushed rows that lost a conflict to the file being merged are answered
        `durable: true`, as if that file had come a moment after their write (docs/reliability.md,
        "Conflict rule"). So the history holds them as a version of sessiond's own just before
        the file's: a later file built on a read from before them is then a stale write of a row
        sessiond wrote (repaired), not the row's writer taking back its own change, and cannot
        put the row back to what it was before an acknowledged write."""
        lost: Changes = {}
        for conflict in outcome.conflicts:
            key = conflict.key
            if conflict.winner == "external" and key in self.dirty:
                before, mine = row_hash(self.base.get(key)), row_hash(self.store.get(key))
                if before != mine:
                    lost[key] = (before, mine, True)
        if lost:
            self.history.add(lost, at_ns=at_ns)

    def _forget_authored(self) -> None:
        """Keep only what a later merge can use: own rows the history or a pending write covers."""
        known, dirty = self.history.by_key, self.dirty
        own = self._own(self.store, self.authored)
        self.authored = {
            k: raw for k, raw in self.authored.items() if k in own and (k in known or k in dirty)
        }

    def _own(self, store: Store, keys: Iterable[str]) -> set[str]:
        """Those of `keys` whose row in `store` is the very one a request put (or deleted)."""
        rows, authored = store.rows, self.authored
        return {k for k in keys if k in authored and authored[k] is rows.get(k)}

    def _parse(self, data: bytes | None) -> Store:
        store = load_store_bytes(data, self.path)
        if store.error is None:
            store.view_cache = self._views
            self._warm(store)
        return store

    def _warm(self, store: Store) -> None:
        """Work every plan would redo for each row, done once when the store is read: its
        decision fields (the view cache), whether its key protects it, its session id checked,
        its age in the plan index. The first cleanup after a start or a reload then costs what
        the next ones do; and whether each row's bytes already are its place in the file,
        so a flush copies them instead of formatting every row. Runs at start or in the
        reload's thread; a plan running meanwhile on another thread holds the index, and this
        waits for it."""
        index = self.plan_index
        with index.lock:
            prefix = _dir_prefix(self.path)
            if index.prefix != prefix:
                index.reset(prefix, self.agent_id)
            index.sync(store.rows, store.view)
            for key, raw in store.rows.items():  # which rows a flush may copy as they are
                index.is_canonical(key, raw)

    async def _take(self, outcome: MergeOutcome, on_disk: Store, dirty: set[str]) -> None:
        """Serve the merge in one step (no read sees a stale row in between), log and count its
        conflicts and repaired stale writes, and let the flusher write what the disk lacks."""
        for conflict in outcome.conflicts:
            log.warning(
                "conflict between an external edit and an unflushed change",
                path=self.path,
                key=conflict.key,
                winner=conflict.winner,
                daemon_updated_at=conflict.daemon_updated_at,
                external_updated_at=conflict.external_updated_at,
            )
        for repair in outcome.repairs:
            log.warning(
                "stale write repaired",
                path=self.path,
                key=repair.key,
                why=repair.why,
                file_had=_brief(repair.file_had),
                kept=_brief(repair.kept),
                writer_base=outcome.base,
                latest=self.history.latest,
            )
        self.conflicts += len(outcome.conflicts)
        self.stale_writes_repaired += len(outcome.repairs)
        keys = changed_keys(self.store, outcome.store)
        # list() copies the keys in one step: a planner thread may be filling the cache.
        for gone in [k for k in list(self._views) if k not in outcome.store.rows]:
            self._views.pop(gone, None)
        for gone in [k for k in self.summaries if k not in outcome.store.rows]:
            del self.summaries[gone]
        outcome.store.view_cache = self._views
        self.store = outcome.store
        self.base = on_disk
        self.dirty = dirty
        self._index = None
        self._forget_authored()
        self.external_reloads += 1
        self.last_external_reload_ms = now_ms()
        if self.dirty:
            self.gen += 1
            self.wake.set()
        else:
            # The file now holds everything: waiters whose change lost a conflict are settled.
            self.durable_gen = self.gen
        log.info(
            "external edit loaded",
            path=self.path,
            changed=len(keys),
            repaired=len(outcome.repairs),
        )
        self._settle_state()
        if keys:
            self._announce(keys, "conflict" if outcome.conflicts else "external")
        await self._settle()

    def _settle_state(self) -> None:
        """The end of a reload or merge: where it leaves the store, by the facts."""
        if self.broken is not None:
            self.lifecycle.fire(Event.BROKE)
        elif not self.pending:
            self.flush_error = None  # nothing left to write, so no failed write outstanding
            self.lifecycle.fire(Event.SETTLED_CLEAN)
        elif self.flush_error is not None:
            self.lifecycle.fire(Event.SETTLED_FAILED)
        else:
            self.lifecycle.fire(Event.SETTLED_DIRTY)

    # ------------------------------------------------------------------------------- index

    def index(self) -> _Index:
        if self._index is None:
            order: list[ListKey] = []
            ids: dict[str, int] = {}
            view = self.store.view
            for key in self.store.rows:
                sort_key, sid = list_key(self.agent_id, key, view(key))
                order.append(sort_key)
                if sid is not None:
                    ids[sid] = ids.get(sid, 0) + 1
            order.sort()
            self._index = _Index(order, ids)
        return self._index

    def _reindex(self, key: str, old: msgspec.Raw | None, new: msgspec.Raw | None) -> None:
        """Keep a built index current for one changed row (a rebuild decodes every row)."""
        index = self._index
        if index is None:
            return
        if old is not None:
            sort_key, sid = list_key(self.agent_id, key, view_row(old))
            i = bisect.bisect_left(index.order, sort_key)
            if i == len(index.order) or index.order[i] != sort_key:
                self._index = None  # not where it should be: rebuild on next use
                return
            del index.order[i]
            if sid is not None:
                left = index.session_ids.get(sid, 0) - 1
                if left > 0:
                    index.session_ids[sid] = left
                else:
                    index.session_ids.pop(sid, None)
        if new is not None:  # in the store by now: its view is the one a plan reads too
            sort_key, sid = list_key(self.agent_id, key, self.store.view(key))
            bisect.insort(index.order, sort_key)
            if sid is not None:
                index.session_ids[sid] = index.session_ids.get(sid, 0) + 1

    def status(self) -> StoreStatus:
        state = "broken" if self.broken is not None else self.store.status.value
        return StoreStatus(
            agent_id=self.agent_id,
            store_path=self.path,
            rows=len(self.store),
            state=state,  # type: ignore[arg-type]
            writable=self.writable,
            dirty=self.pending,
            seq=self.seq,
            flushes=self.flushes,
            last_flush_ms=self.last_flush_ms,
            flush_error=self.flush_error,
            flush_failures=self.flush_failures,
            last_external_reload_ms=self.last_external_reload_ms,
            external_reloads=self.external_reloads,
            conflicts=self.conflicts,
            stale_writes_repaired=self.stale_writes_repaired,
            parse_error=str(self.broken) if self.broken is not None else None,
            corrupt_copy=self.corrupt_copy,
        )


def _dir_prefix(store_path: str) -> str:
    """The store's dir as plans see it: its real path, with a trailing separator."""
    return os.path.realpath(os.path.dirname(os.path.abspath(store_path))).rstrip(os.sep) + os.sep


def _brief(raw: msgspec.Raw | None, limit: int = 200) -> str | None:
    """A row for a log line: its whitespace-free JSON, cut at `limit` characters."""
    if raw is None:
        return None
    text = msgspec.json.format(bytes(raw), indent=0).decode("utf-8", "replace")
    return text if len(text) <= limit else text[:limit] + "..."
