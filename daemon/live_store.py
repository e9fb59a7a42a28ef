"""The in-memory store registry: every configured agent's sessions.json, kept and flushed.

Each `LiveStore` serves its rows from memory and owns one flusher task. A change bumps a
generation counter and wakes the flusher; the flusher snapshots the store, writes it durably (in
a thread, so requests keep being served) and marks that generation durable. Changes that arrive
during a write ride on the next one, so a burst costs one or two writes, and a change that
changes nothing is never a change (no generation, no write, no notification).

Disk work on one store (a flush or a reload) is serialised by the store's lock. Before each
rename the target is checked to still be the version last loaded or written; if not, the write
is abandoned, the file is reloaded and merged (`watcher.merge_external`), and written again.

A flush that fails keeps the change in memory, answers the waiting requests `durable: false`,
and retries with backoff (0.1 s doubling to 5 s); it shows in `/readyz` and `daemon.status`.
A file that does not parse makes the store read-only (mutations fail with -32002), is never
written over and shows in `/readyz` (503) and `daemon.status` (`ready: false`) until it parses;
one found at start is also copied aside to `sessions.json.corrupt.<time>`.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import os
from collections.abc import Callable
from dataclasses import dataclass, field

import msgspec
import structlog
from sessiond.daemon.clock import now_ms
from sessiond.daemon.durable_file import TEMP_PREFIX, TEMP_SUFFIX, StoreWriteError, write_durably
from sessiond.daemon.file_version import DiskSig, read_with_stat, still_version
from sessiond.engine.cleanup.apply_flow import restore_order
from sessiond.engine.config import (
    StoreTarget,
)
from sessiond.engine.errors import StoreReadOnly
from sessiond.engine.keys import is_protected
from sessiond.engine.listing import ListKey, list_key
from sessiond.engine.merge import changed_keys, merge_external
from sessiond.engine.store import (
    RowView,
    Store,
    StoreParseError,
    load_store_bytes,
    serialize_store,
)
from sessiond.engine.transcripts import InvalidSessionId, iso_stamp, validate_session_id
from sessiond.protocol.methods import ChangeReason, SessionsChanged, StoreStatus

log = structlog.get_logger("sessiond.stores")

BACKOFF_START_S = 0.1
BACKOFF_MAX_S = 5.0
EMPTY_SETTLE_S = 0.1


class ExternalChange(Exception):
    """The target changed under us between snapshot and rename; merge before writing."""


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
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    settled: asyncio.Condition = field(default_factory=asyncio.Condition)
    task: asyncio.Task[None] | None = None
    on_changed: Callable[[SessionsChanged], None] | None = None
    _index: _Index | None = None
    _views: dict[str, tuple[msgspec.Raw, RowView]] = field(default_factory=dict)

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
        directory = os.path.dirname(self.path)
        os.makedirs(directory, exist_ok=True)
        _remove_stale_temps(directory, os.path.basename(self.path))
        found = read_with_stat(self.path)
        data = found[0] if found else None
        loaded = load_store_bytes(data, self.path)
        self.sig = DiskSig.of(found[1], found[0]) if found else None
        if loaded.error is not None and data is not None:
            self.broken = loaded.error
            copy = f"{self.path}.corrupt.{iso_stamp(now_ms())}"
            try:
                write_durably(copy, data)
                self.corrupt_copy = copy
            except StoreWriteError as exc:
                log.error("could not copy corrupt store aside", path=self.path, error=str(exc))
            log.error(
                "store does not parse; serving read-only",
                path=self.path,
                error=str(loaded.error),
                copy=self.corrupt_copy,
            )
        loaded.view_cache = self._views
        _warm(loaded)
        self.store = loaded
        self.base = loaded.copy()

    # ------------------------------------------------------------------------------ changes

    def apply(
        self,
        changes: dict[str, msgspec.Raw | None],
        reason: ChangeReason,
        order_like: Store | None = None,
    ) -> int:
        """Put (Raw) or delete (None) rows in memory; returns the generation to wait for.

        `order_like`: put rows back where they stood in that earlier version (a cleanup that
        restores a row must leave the file as the local apply would), not at the end.
        """
        if not self.writable:
            raise StoreReadOnly(str(self.broken or self.store.error or self.path))
        touched: list[str] = []
        if len(changes) > max(1_000, len(self.store) // 8):
            # A bulk change (a cleanup removing most rows): rebuilding the list index once, on
            # the next list, beats keeping it sorted row by row (a list delete each: seconds).
            self._index = None
        for key, raw in changes.items():
            if raw is None:
                old = self.store.delete(key)
                self._views.pop(key, None)
                if old is None:
                    continue
            else:
                old = self.store.rows.get(key)
                self.store.put(key, raw)
            self._reindex(key, old, raw)
            touched.append(key)
        if not touched:
            return self.durable_gen
        if order_like is not None:
            restore_order(self.store, order_like)
        self.dirty.update(touched)
        self.gen += 1
        self.wake.set()
        self._announce(touched, reason)
        return self.gen

    def _announce(self, keys: list[str], reason: ChangeReason) -> None:
        self.seq += 1
        if self.on_changed is not None:
            self.on_changed(SessionsChanged(self.agent_id, self.path, self.seq, keys, reason))

    async def wait_durable(self, gen: int) -> bool:
        """True once generation `gen` is on disk; False as soon as a flush covering it failed."""
        async with self.settled:
            await self.settled.wait_for(lambda: self.durable_gen >= gen or self.failed_gen >= gen)
            return self.durable_gen >= gen

    async def _settle(self) -> None:
        async with self.settled:
            self.settled.notify_all()

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

            def write() -> tuple[os.stat_result, bytes]:
                data = serialize_store(snapshot)

                def precheck() -> None:
                    if not still_version(self.path, expected):
                        raise ExternalChange(self.path)

                return write_durably(self.path, data, precheck), data

            try:
                st, data = await asyncio.to_thread(write)
            except ExternalChange:
                self.dirty |= keys
                await self._reload_locked()
                return True
            except Exception as exc:  # StoreWriteError, or a bug: the change stays in memory
                self.dirty |= keys
                self._flush_failed(target_gen, exc)
                await self._settle()
                return False
            self.sig = DiskSig.of(st, data)
            self.base = snapshot
            self.durable_gen = target_gen
            self.flushes += 1
            self.flush_error = None
            self.last_flush_ms = now_ms()
        await self._settle()
        return True

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
        async with self.lock:
            await self._reload_locked()

    async def _reload_locked(self) -> None:
        found = await asyncio.to_thread(read_with_stat, self.path)
        if found is not None and not found[0].strip() and len(self.store) > 0:
            # Empty now, rows before: most likely an editor that truncates and then writes in
            # place, read in between; taken as is, every row would be an external deletion
            # (and an unflushed change to any of them would lose to it). Look again shortly;
            # a file that stays empty is an empty store.
            await asyncio.sleep(EMPTY_SETTLE_S)
            found = await asyncio.to_thread(read_with_stat, self.path)
        if found is None:
            if self.sig is None:
                return
            data: bytes | None = None
            sig: DiskSig | None = None
        else:
            data, st = found
            if self.sig is not None and self.sig.same_stat(st):
                return
            sig = DiskSig.of(st, data)
            if self.sig is not None and sig.digest == self.sig.digest:
                self.sig = sig
                return

        def parse() -> Store:
            store = load_store_bytes(data, self.path)
            if store.error is None:
                store.view_cache = self._views
                _warm(store)
            return store

        # In a thread: a big store takes a while to parse, and the loop keeps serving meanwhile.
        loaded = await asyncio.to_thread(parse)
        self.sig = sig
        if loaded.error is not None:
            if self.broken is None or str(self.broken) != str(loaded.error):
                log.error(
                    "store stopped parsing; keeping last good state, writing nothing",
                    path=self.path,
                    error=str(loaded.error),
                )
            self.broken = loaded.error
            return
        if self.broken is not None:
            log.info("store parses again", path=self.path)
        self.broken = None
        outcome = merge_external(self.base, self.store, loaded, self.dirty)
        for conflict in outcome.conflicts:
            log.warning(
                "conflict between an external edit and an unflushed change",
                path=self.path,
                key=conflict.key,
                winner=conflict.winner,
                daemon_updated_at=conflict.daemon_updated_at,
                external_updated_at=conflict.external_updated_at,
            )
        self.conflicts += len(outcome.conflicts)
        keys = changed_keys(self.store, outcome.store)
        # list() copies the keys in one step: a planner thread may be filling the cache.
        for gone in [k for k in list(self._views) if k not in outcome.store.rows]:
            self._views.pop(gone, None)
        outcome.store.view_cache = self._views
        self.store = outcome.store
        self.base = loaded
        self.dirty = outcome.pending
        self._index = None
        self.external_reloads += 1
        self.last_external_reload_ms = now_ms()
        if self.dirty:
            self.gen += 1
            self.wake.set()
        else:
            # The file now holds everything: waiters whose change lost a conflict are settled.
            self.durable_gen = self.gen
        log.info("external edit loaded", path=self.path, changed=len(keys))
        if keys:
            self._announce(keys, "conflict" if outcome.conflicts else "external")
        await self._settle()

    # ------------------------------------------------------------------------------- index

    def index(self) -> _Index:
        if self._index is None:
            order: list[ListKey] = []
            ids: dict[str, int] = {}
            for key, raw in self.store.rows.items():
                sort_key, sid = list_key(self.agent_id, key, raw)
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
            sort_key, sid = list_key(self.agent_id, key, old)
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
        if new is not None:
            sort_key, sid = list_key(self.agent_id, key, new)
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
            parse_error=str(self.broken) if self.broken is not None else None,
            corrupt_copy=self.corrupt_copy,
        )


def _warm(store: Store) -> None:
    """Work every plan would redo for each row, done once when the store is read: its decision
    fields, whether its key protects it, its session id checked. All three are cached by row
    or by value, so the first cleanup after a start or a reload costs what the next ones do.
    The store is not shared yet when this runs (at start, or in the reload's thread)."""
    for key in store.rows:
        fields = store.view(key).fields  # fills the store's view cache
        is_protected(key, fields)
        if isinstance(fields.session_id, str):
            with contextlib.suppress(InvalidSessionId):
                validate_session_id(fields.session_id)


def _remove_stale_temps(directory: str, name: str) -> None:
    """Temp files of a writer that died mid-write (SIGKILL); a live writer's are left alone."""
    prefix = f"{TEMP_PREFIX}{name}."
    try:
        entries = os.listdir(directory)
    except OSError:
        return
    for entry in entries:
        if not (entry.startswith(prefix) and entry.endswith(TEMP_SUFFIX)):
            continue
        pid_text = entry[len(prefix) :].split(".", 1)[0]
        if pid_text.isdigit() and int(pid_text) != os.getpid() and temp_writer_alive(int(pid_text)):
            continue
        with contextlib.suppress(OSError):
            os.unlink(os.path.join(directory, entry))


def temp_writer_alive(pid: int) -> bool:
    """Whether `pid` may still write its temp file. A zombie (exited, not yet reaped by its
    parent) still answers signal 0 but writes nothing, so on Linux /proc's state `Z` counts as
    dead; without a readable /proc the answer is signal 0's (alive: its temp file is kept)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            stat = handle.read()
    except FileNotFoundError:
        # Gone since the signal, if /proc is mounted at all.
        return not os.path.exists("/proc/self/stat")
    except OSError:
        return True
    # "<pid> (<comm>) <state> ...": comm may hold spaces and parentheses, so split at the last ")".
    fields = stat.rpartition(b")")[2].split()
    return not fields or fields[0] != b"Z"
