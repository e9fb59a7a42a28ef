"""`sessions.changed` as an async iterator that says when changes were missed.

Each store's `seq` rises by one per change, and `sessions.subscribe` answers each store's current
seq, so a listener knows the seq every next notification must carry. The iterator yields each
`SessionsChanged` in order and, where a change may have been missed, a `SeqGap` first: the
caller's copy of that store may be stale and should be read again (`sessions.list`/`get`).

Gaps are found three ways:

- `skipped`: a notification's seq is more than one past the last one seen;
- `overflow`: the caller fell `max_queued` notifications behind; the queue is dropped, the
  stream subscribes again and reports each store whose seq moved meanwhile;
- `reconnected`: the connection was lost; the stream subscribes again on the next one and
  reports every store, since a restarted daemon counts from zero again and an unchanged seq
  cannot tell "nothing happened" from "restarted and changed as often".

Notifications whose seq is not past the last one seen are stale duplicates and are dropped.

A `StoresChanged` (a config reload added or removed stores) is yielded as it comes: the stores
it adds are followed from the seq it carries, the ones it removes are no longer followed.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Literal, Self

from sessiond.client.errors import ConnectError
from sessiond.protocol.methods import (
    SessionsChanged,
    StoresChanged,
    SubscribedStore,
    SubscribeResult,
)

__all__ = ["ChangeItem", "ChangeStream", "GapReason", "SeqGap", "SeqTracker"]

GapReason = Literal["skipped", "overflow", "reconnected"]


@dataclass(frozen=True, slots=True)
class SeqGap:
    """Changes to one store may have been missed: read it again before trusting deltas.

    `last_seen` is the seq this listener had (None: it had not seen the store before);
    `current` is the seq the daemon reports now, or carried on the notification that follows.
    """

    agent_id: str
    store_path: str
    last_seen: int | None
    current: int
    reason: GapReason


ChangeItem = SessionsChanged | SeqGap | StoresChanged
"""What a ChangeStream yields."""


class SeqTracker:
    """The last seq seen per store, without I/O: says which notifications are new or missed."""

    def __init__(self) -> None:
        self.last: dict[str, int] = {}

    def resync(self, stores: list[SubscribedStore], reason: GapReason | None) -> list[SeqGap]:
        """Take the daemon's current seqs; `reason` None is the first subscription (no gaps)."""
        gaps = []
        for store in stores:
            seen = self.last.get(store.store_path)
            if reason == "reconnected" or (reason is not None and seen != store.seq):
                gaps.append(SeqGap(store.agent_id, store.store_path, seen, store.seq, reason))
        self.last = {store.store_path: store.seq for store in stores}
        return gaps

    def observe(self, change: SessionsChanged | StoresChanged) -> list[ChangeItem]:
        """What to yield for one notification: nothing (stale, or not ours), it, or a gap and it."""
        if isinstance(change, StoresChanged):
            for store in change.removed:
                self.last.pop(store.store_path, None)
            self.last.update((store.store_path, store.seq) for store in change.added)
            return [change]
        seen = self.last.get(change.store_path)
        if seen is None or change.seq <= seen:
            return []
        self.last[change.store_path] = change.seq
        if change.seq == seen + 1:
            return [change]
        gap = SeqGap(change.agent_id, change.store_path, seen, change.seq, "skipped")
        return [gap, change]


@dataclass(frozen=True, slots=True)
class _Resubscribe:
    reason: GapReason


Subscribe = Callable[[], Awaitable[SubscribeResult]]


class ChangeStream:
    """Notifications for the stores one `sessions.subscribe` named, with gaps marked.

    `async with client.changes(...) as changes` subscribes on entry and unsubscribes on exit
    (when no other stream of the client is open); `async for item in changes` yields
    `SessionsChanged | SeqGap | StoresChanged` until the client closes.
    """

    def __init__(
        self,
        subscribe: Subscribe,
        on_start: Callable[[ChangeStream], None],
        on_stop: Callable[[ChangeStream], Awaitable[None]],
        is_final: Callable[[], bool],
        max_queued: int,
    ) -> None:
        self._subscribe = subscribe
        self._on_start = on_start
        self._on_stop = on_stop
        self._is_final = is_final
        self._max_queued = max_queued
        self._tracker = SeqTracker()
        self._inbox: deque[SessionsChanged | StoresChanged | _Resubscribe] = deque()
        self._queued = 0
        self._ready: deque[ChangeItem] = deque()
        self._wake = asyncio.Event()
        self._started = False
        self._ended: BaseException | None = None

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> ChangeItem:
        await self.start()
        while not self._ready:
            item = await self._next()
            if isinstance(item, _Resubscribe):
                result = await self._resubscribe()
                self._ready.extend(self._tracker.resync(result.stores, item.reason))
            else:
                self._ready.extend(self._tracker.observe(item))
        return self._ready.popleft()

    async def start(self) -> None:
        """Subscribe, once: notifications from now on are delivered."""
        if self._started:
            return
        self._started = True
        self._on_start(self)
        try:
            result = await self._subscribe()
        except BaseException:
            await self.stop()
            raise
        self._tracker.resync(result.stores, None)

    async def stop(self) -> None:
        """Stop delivering; unsubscribes on the daemon if no other stream is open."""
        if self._ended is None:
            self.end(StopAsyncIteration())
            await self._on_stop(self)

    # --------------------------------------------------------------- fed by the client

    def push(self, change: SessionsChanged | StoresChanged) -> None:
        if self._ended is not None:
            return
        if self._queued >= self._max_queued:
            reason: GapReason = "overflow"
            if _Resubscribe("reconnected") in self._inbox:
                reason = "reconnected"
            self._inbox.clear()
            self._inbox.append(_Resubscribe(reason))
            self._queued = 0
        else:
            self._inbox.append(change)
            self._queued += 1
        self._wake.set()

    def reconnected(self) -> None:
        if self._ended is None:
            self._inbox.append(_Resubscribe("reconnected"))
            self._wake.set()

    def end(self, exc: BaseException) -> None:
        """No more items: iteration raises `exc` (StopAsyncIteration for a clean end)."""
        if self._ended is None:
            self._ended = exc
            self._wake.set()

    # ---------------------------------------------------------------------------- internals

    async def _next(self) -> SessionsChanged | StoresChanged | _Resubscribe:
        while not self._inbox:
            if self._ended is not None:
                raise self._ended
            self._wake.clear()
            await self._wake.wait()
        item = self._inbox.popleft()
        if not isinstance(item, _Resubscribe):
            self._queued -= 1
        return item

    async def _resubscribe(self) -> SubscribeResult:
        """Subscribe again, waiting for the daemon as long as the client is open."""
        while True:
            try:
                return await self._subscribe()
            except ConnectError:
                if self._is_final() or self._ended is not None:
                    raise
