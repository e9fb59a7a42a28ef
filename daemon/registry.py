"""Every configured store by path: locked and started at boot, reconfigured on SIGHUP, reloaded
on events. Each store served is locked first (daemon/store_lock.py), so no two daemons serve one
file; the set of stores changing is announced to `store_listeners` (added, removed)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import Callable, Iterator

import structlog
from sessiond.daemon.clock import now_ms
from sessiond.daemon.journal import Journals
from sessiond.daemon.live_store import LiveStore
from sessiond.daemon.store_lock import (
    HeldElsewhere,
    LockSet,
    state_dir_lock_path,
    store_lock_path,
)
from sessiond.engine.config import (
    Locations,
    SessionsConfig,
    StoreTarget,
    default_agent_id,
    resolve_targets,
)
from sessiond.engine.keys import normalize_agent_id
from sessiond.protocol.methods import SessionsChanged

log = structlog.get_logger("sessiond.stores")


class Registry:
    """Every configured store, by path; the config and locations they were resolved from."""

    def __init__(self, config: SessionsConfig, where: Locations) -> None:
        self.config = config
        self.where = where
        self.stores: dict[str, LiveStore] = {}
        self.listeners: list[Callable[[SessionsChanged], None]] = []
        self.store_listeners: list[Callable[[list[LiveStore], list[LiveStore]], None]] = []
        self.locks = LockSet()
        self.started = time.monotonic()
        self.rewatch = asyncio.Event()
        self._reloading: dict[str, asyncio.Task[None]] = {}
        self._again: set[str] = set()
        self.journals = Journals()  # issue 15: each store's cleanup journal
        # Caches built from a store's rows elsewhere (the gateway's list facts), each told to
        # drop that store's when a cleanup apply of it begins (`before_apply`).
        self.derived: list[Callable[[LiveStore], None]] = []
        self._by_agent: dict[str, LiveStore] = {}  # `by_agent`'s answers, checked on use
        self._default_of: SessionsConfig | None = None
        self._default_id = ""

    def _notify(self, change: SessionsChanged) -> None:
        for listener in list(self.listeners):
            listener(change)

    def before_apply(self, live: LiveStore) -> None:
        """A cleanup apply of `live` begins: what was derived elsewhere from its rows (the
        gateway's list facts, ~55 MB at 100k rows) goes now. An apply that removes many rows
        makes it stale anyway, and kept through the apply's plan, journal entry and store
        write it stood at their peak memory; the next list builds it again from the rows
        left (an apply that changed nothing costs that list the rebuild)."""
        for drop in self.derived:
            drop(live)

    def targets(self) -> list[StoreTarget]:
        return resolve_targets(self.config, self.where, all_agents=True)

    def claim(self) -> None:
        """Lock the state dir and every configured store; raises HeldElsewhere, having locked
        nothing, when another live daemon serves one of them."""
        state_dir = self.where.state_dir
        try:
            self.locks.claim(
                "state dir", state_dir, state_dir_lock_path(state_dir), stateDir=state_dir
            )
            for target in self.targets():
                self._claim(target)
        except BaseException:
            self.locks.release_all()
            raise

    def _claim(self, target: StoreTarget) -> None:
        # The sessions dir is made here rather than at load so that the lock can sit beside the
        # store; loading would make it anyway (OpenClaw makes it on its first write).
        os.makedirs(os.path.dirname(target.store_path), exist_ok=True)
        locked = self.locks.claim(
            "store",
            target.store_path,
            store_lock_path(target.store_path),
            agentId=target.agent_id,
            storePath=target.store_path,
            stateDir=self.where.state_dir,
        )
        if not locked:
            log.warning("cannot create a lock file; serving unlocked", path=target.store_path)

    def start(self) -> None:
        """Load every claimed store."""
        for target in self.targets():
            self._add(target)

    def _add(self, target: StoreTarget) -> LiveStore:
        live = LiveStore(target, on_changed=self._notify)
        live.load_initial()
        if live.broken is None:
            # A crash mid-cleanup is finished or rolled back before anything is served.
            self.journals.open(target.store_path, live.store, now_ms())
        live.task = asyncio.create_task(live.run_flusher(), name=f"flush:{target.store_path}")
        self.stores[target.store_path] = live
        log.info(
            "store loaded", agent=target.agent_id, path=target.store_path, rows=len(live.store)
        )
        return live

    async def reconfigure(self, config: SessionsConfig) -> None:
        """SIGHUP: adopt the new config; new stores are locked and loaded, dropped ones flushed
        and unlocked. A new store another daemon serves is left out (logged)."""
        self.config = config
        wanted = {t.store_path: t for t in self.targets()}
        removed: list[LiveStore] = []
        for path in [p for p in self.stores if p not in wanted]:
            live = self.stores.pop(path)
            await self._flush_and_stop(live, timeout=5.0)
            self.locks.release(path)
            removed.append(live)
            log.info("store dropped", path=path)
        added: list[LiveStore] = []
        for path, target in wanted.items():
            if path not in self.stores:
                try:
                    self._claim(target)
                except (HeldElsewhere, OSError) as exc:
                    log.error("store not served", path=path, error=str(exc))
                    continue
                added.append(self._add(target))
            elif self.stores[path].target != target:
                self.stores[path].target = target
        self.rewatch.set()
        if added or removed:
            for listener in list(self.store_listeners):
                listener(added, removed)

    def by_agent(self, agent: str | None) -> LiveStore | None:
        """The store of `agent` (None: the config's default agent). Asked by every request, so
        the default agent is worked out once per config and each answer kept while that store
        is still registered under that agent."""
        if agent:
            agent_id = normalize_agent_id(agent)
        else:
            if self._default_of is not self.config:
                self._default_id, self._default_of = default_agent_id(self.config), self.config
            agent_id = self._default_id
        kept = self._by_agent.get(agent_id)
        if kept is not None and kept.agent_id == agent_id and self.stores.get(kept.path) is kept:
            return kept
        found = next((s for s in self.stores.values() if s.agent_id == agent_id), None)
        if found is not None:
            self._by_agent[agent_id] = found
        return found

    def __iter__(self) -> Iterator[LiveStore]:
        return iter(list(self.stores.values()))

    def directories(self) -> dict[str, list[str]]:
        dirs: dict[str, list[str]] = {}
        for path in self.stores:
            dirs.setdefault(os.path.dirname(path), []).append(path)
        return dirs

    def on_disk_event(self, path: str) -> None:
        live = self.stores.get(path)
        if live is None:
            return
        if path in self._reloading:
            self._again.add(path)
            return
        task = asyncio.create_task(self._reload(live), name=f"reload:{path}")
        self._reloading[path] = task

    async def _reload(self, live: LiveStore) -> None:
        # An event that arrives while a reload runs makes it run once more afterwards.
        try:
            while True:
                self._again.discard(live.path)
                await live.reload()
                if live.path not in self._again:
                    break
        except Exception:
            log.exception("reload failed", path=live.path)
        finally:
            self._reloading.pop(live.path, None)

    @property
    def ready(self) -> bool:
        return not self.not_ready_reasons()

    def not_ready_reasons(self) -> list[str]:
        """Stores whose changes cannot be made durable: a failing flush, or a file that does not
        parse (served read-only; its copy aside is named in `daemon.status`)."""
        reasons = []
        for s in self:
            if s.flush_error:
                reasons.append(f"{s.path}: flush failing: {s.flush_error}")
            if s.broken is not None:
                reasons.append(f"{s.path}: does not parse, read-only: {s.broken}")
        return reasons

    async def _flush_and_stop(self, live: LiveStore, timeout: float) -> bool:
        ok = True
        if live.pending and live.broken is None:
            live.wake.set()
            try:
                ok = await asyncio.wait_for(live.wait_durable(live.gen), timeout)
            except TimeoutError:
                ok = False
        if live.task is not None:
            live.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await live.task
        return ok

    async def close(self, timeout: float = 10.0) -> bool:
        """Flush every store and stop the flushers; False when some change is not durable.
        An apply's renames still running are let finish first (within `timeout`)."""
        if self.journals.pending:
            await asyncio.wait(set(self.journals.pending), timeout=timeout)
        results = await asyncio.gather(*(self._flush_and_stop(s, timeout) for s in self))
        return all(results)
