"""`sessions.cleanup` over its targets: plan every store first, then apply them one by one.

Shared by the local CLI and the daemon. Where the stores come from (disk, or the daemon's memory)
and how a plan is carried out are passed in, so both callers run the identical decision.
"""

from __future__ import annotations

import contextlib
import gc
import os
import threading
from collections.abc import Callable, Iterator

import msgspec
from sessiond.engine.cleanup.plan import (
    CleanupOptions,
    SharedDir,
    StorePlan,
    claimed_paths,
    plan_cleanup,
)
from sessiond.engine.cleanup.row_index import PlanIndex
from sessiond.engine.config import Locations, SessionsConfig, StoreTarget
from sessiond.engine.disk_view import DiskView
from sessiond.engine.errors import StoreReadOnly
from sessiond.engine.store import Store
from sessiond.engine.transcripts import SessionsDir


class _CollectorPause:
    """Keep Python's cycle collector off while a plan is built.

    A plan makes several objects per row that all live until it ends, so the collector keeps
    promoting them and walking the whole heap: a fifth of a 100k-row plan. Nothing a plan makes
    needs it (reference counting frees it all). Counted, so overlapping plans on other threads
    turn it back on only when the last one ends, and only if it was on before.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._holders = 0
        self._was_enabled = True

    @contextlib.contextmanager
    def __call__(self) -> Iterator[None]:
        with self._lock:
            self._holders += 1
            if self._holders == 1:
                self._was_enabled = gc.isenabled()
                gc.disable()
        try:
            yield
        finally:
            with self._lock:
                self._holders -= 1
                if self._holders == 0 and self._was_enabled:
                    gc.enable()


collector_paused = _CollectorPause()


class PlannedStore(msgspec.Struct, frozen=True):
    plan: StorePlan
    store: Store


def plan_targets(
    targets: list[StoreTarget],
    load: Callable[[StoreTarget], Store],
    config: SessionsConfig,
    options: CleanupOptions,
    view: DiskView,
    now_ms: int,
    where: Locations,
    index_for: Callable[[StoreTarget], PlanIndex] | None = None,
) -> list[PlannedStore]:
    """Plan every target before any is applied, as the reference previews all first.

    `index_for`: each store's kept `PlanIndex` (the daemon's); without it each plan builds one.

    Stores that share a sessions dir (a `session.store` template without a per-agent folder)
    are planned in order on one view of that dir: each sees what the earlier ones take, and none
    sweeps a transcript another store still references.
    """
    with collector_paused():
        stores = [load(target) for target in targets]
        for store in stores:
            if store.error is not None:
                raise StoreReadOnly(str(store.error))
        folders = [os.path.dirname(os.path.abspath(t.store_path)) for t in targets]
        planned: list[PlannedStore] = []
        claimed: dict[str, set[str]] = {}
        for index, (target, store) in enumerate(zip(targets, stores, strict=True)):
            folder = folders[index]
            siblings = [i for i, f in enumerate(folders) if f == folder and i != index]
            shared = None
            if siblings:
                sdir = SessionsDir(folder, view, where.state_dir)
                referenced: set[str] = set()
                for i in siblings:
                    referenced |= sdir.referenced(stores[i].view(k).fields for k in stores[i].rows)
                shared = SharedDir(frozenset(referenced), frozenset(claimed.get(folder, set())))
            kept = index_for(target) if index_for is not None else None
            plan = plan_cleanup(
                store,
                target,
                config,
                options,
                view,
                now_ms,
                where.home,
                where.state_dir,
                shared,
                kept,
            )
            if folder in folders[index + 1 :]:  # a later store of this dir must not count them
                claimed.setdefault(folder, set()).update(claimed_paths(plan))
            planned.append(PlannedStore(plan, store))
        return planned
