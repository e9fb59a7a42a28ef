"""The TUI's connection to the daemon: connect, load every row, follow changes, watch status.

It runs on the app's event loop and reports through a `Sink`, so a test or a bench can drive it
without a screen. Everything it knows comes through the generated client: `sessions.list` pages,
`sessions.get` after a change, the change stream (which reports seq gaps), `daemon.status`.

Changes are applied one batch at a time, in order: a batch drains everything queued, reads each
store with a gap again in full, then reads each changed key (`sessions.get`; not found means the
row left). A read always returns the current row, so a late read never puts back an old one.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Literal, Protocol

import msgspec
from sessiond.cli.tui.model import Row, RowId, row_from_entry, row_from_summary
from sessiond.client import (
    AuthRequiredError,
    Backoff,
    ChangeStream,
    ConnectError,
    ConnectionLostError,
    KeyNotFoundError,
    SeqGap,
    SessiondClient,
    SessiondError,
)
from sessiond.client.changes import ChangeItem
from sessiond.protocol.methods import StatusResult, StoresChanged

log = logging.getLogger("sessiond.tui")

LinkState = Literal["connecting", "live", "gone", "refused"]
LinkEvent = Literal["connected", "failed", "lost", "refused"]

# How the link's state moves; a pair that is not here leaves the state as it is.
TRANSITIONS: dict[tuple[LinkState, LinkEvent], LinkState] = {
    ("connecting", "connected"): "live",
    ("connecting", "failed"): "gone",
    ("connecting", "refused"): "refused",
    ("live", "lost"): "gone",
    ("live", "failed"): "gone",
    ("live", "refused"): "refused",
    ("gone", "connected"): "live",
    ("gone", "refused"): "refused",
}

FIRST_PAGE = 200
"""Rows asked for first: more than any terminal shows, so the first screen waits for one page."""
PAGE = 1000
"""Rows per page after the first (the protocol's largest)."""
REFRESH_KEYS_AT_MOST = 200
"""A change naming more keys than this re-reads the whole store instead of each key."""
LIVED = 30.0
"""Seconds a connection must have lasted for the reconnect pauses to start small again."""


class Sink(Protocol):
    """Where the link reports; the app implements it, tests can too."""

    def link_changed(self, state: LinkState, detail: str) -> None: ...

    def rows_loaded(self, rows: list[Row], loaded: int, total: int, done: bool) -> None:
        """A page of the first load: add these rows (`loaded` of `total` so far)."""

    def store_reloaded(self, agent: str, rows: list[Row]) -> None:
        """One store read again in full after a gap: its rows are exactly these now."""

    def all_reloaded(self, rows: list[Row]) -> None:
        """Every store read again in full (a new connection): the rows are exactly these now."""

    def rows_changed(self, upserts: list[Row], removed: list[RowId]) -> None: ...

    def status_changed(self, status: StatusResult) -> None: ...

    def change_seen(self, item: ChangeItem) -> None:
        """Every notification and gap, for the Live screen's feed."""


class Link:
    def __init__(
        self,
        url: str,
        token: str | None,
        sink: Sink,
        *,
        connect_timeout: float = 3.0,
        status_every: float = 2.0,
        backoff: Backoff | None = None,
    ) -> None:
        self.url = url
        self.token = token
        self.sink = sink
        self.connect_timeout = connect_timeout
        self.status_every = status_every
        self.backoff = backoff or Backoff(first=0.25, most=5.0)
        self.client: SessiondClient | None = None
        """The open client while connected (the screens' own calls go through it)."""
        self.state: LinkState = "connecting"
        self._queue: asyncio.Queue[ChangeItem] = asyncio.Queue()
        self._loaded_once = False
        self._status_now = asyncio.Event()

    # --------------------------------------------------------------------------- lifecycle

    async def run(self) -> None:
        """Connect and follow until cancelled, or until the daemon refuses the token.

        The client reconnects by itself once open; a new client is made only when one gives up,
        and the pauses before the next keep doubling unless the last one lived a while.
        """
        loop = asyncio.get_running_loop()
        delays = self.backoff.delays()
        while True:
            client = SessiondClient(
                self.url,
                token=self.token,
                connect_timeout=self.connect_timeout,
                backoff=self.backoff,
            )
            try:
                await client.open()
            except AuthRequiredError as exc:
                await client.close()
                self._move("refused", f"the daemon refused the token: {exc.message}")
                return
            except ConnectError as exc:
                await client.close()
                self._move("failed", str(exc))
                await asyncio.sleep(next(delays))
                continue
            self.client = client
            opened = loop.time()
            try:
                await self._follow(client)
            except AuthRequiredError as exc:
                self._move("refused", f"the daemon refused the token: {exc.message}")
                return
            except SessiondError as exc:
                log.info("link lost: %s", exc)
                self._move("lost", str(exc))
            finally:
                self.client = None
                await client.close()
            if loop.time() - opened > LIVED:
                delays = self.backoff.delays()
            await asyncio.sleep(next(delays))

    def _move(self, event: LinkEvent, detail: str = "") -> None:
        new = TRANSITIONS.get((self.state, event), self.state)
        changed = new != self.state
        self.state = new
        if changed or event in ("failed", "lost"):
            log.info("link %s (%s): %s", new, event, detail)
            self.sink.link_changed(new, detail)

    async def _follow(self, client: SessiondClient) -> None:
        """Until the client gives up for good: its own reconnects happen inside this."""
        async with client.changes(all_agents=True) as stream:
            self._move("connected", self.url)
            tasks = [
                asyncio.create_task(self._read(stream)),
                asyncio.create_task(self._apply_changes(client)),
                asyncio.create_task(self._watch_status(client)),
            ]
            try:
                done, _pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
                for task in done:
                    task.result()
            finally:
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)

    async def _read(self, stream: ChangeStream) -> None:
        async for item in stream:
            self.sink.change_seen(item)
            if isinstance(item, SeqGap) and item.reason == "reconnected":
                self._move("connected", self.url)
            self._queue.put_nowait(item)

    # ------------------------------------------------------------------------------ rows

    async def _apply_changes(self, client: SessiondClient) -> None:
        await self._load_everything(client)
        while True:
            batch = [await self._queue.get()]
            while not self._queue.empty():
                batch.append(self._queue.get_nowait())
            reload: set[str] = set()
            keys: dict[str, set[str]] = {}
            for item in batch:
                if isinstance(item, StoresChanged):
                    # A config reload added or removed agents: read the new, drop the gone.
                    reload.update(store.agent_id for store in item.added)
                    for store in item.removed:
                        self.sink.store_reloaded(store.agent_id, [])
                elif isinstance(item, SeqGap) or len(item.keys) > REFRESH_KEYS_AT_MOST:
                    reload.add(item.agent_id)
                else:
                    keys.setdefault(item.agent_id, set()).update(item.keys)
            try:
                for agent in sorted(reload):
                    await self._reload(client, agent)
                for agent, names in keys.items():
                    if agent not in reload:
                        await self._refresh(client, agent, sorted(names))
            except (ConnectError, ConnectionLostError) as exc:
                self._move("lost", str(exc))
            self._status_now.set()

    async def _load_everything(self, client: SessiondClient) -> None:
        """Every row on this connection, retried until one read completes.

        The very first read streams into the view page by page; any later one (a new client, or
        a retry of a read the daemon's departure cut short) replaces every row at its end, so
        rows removed meanwhile leave and the old view stays until then.
        """
        while True:
            try:
                await self._load_all(client, replace=self._loaded_once)
            except (ConnectError, ConnectionLostError) as exc:
                self._move("lost", str(exc))
                self._loaded_once = True
                continue
            self._loaded_once = True
            return

    async def _load_all(self, client: SessiondClient, *, replace: bool) -> None:
        cursor: str | None = None
        kept: list[Row] = []
        loaded = 0
        limit = FIRST_PAGE
        while True:
            page = await client.sessions_list(all_agents=True, cursor=cursor, limit=limit)
            rows = [row_from_summary(summary) for summary in page.sessions]
            loaded += len(rows)
            done = not page.has_more or page.next_cursor is None
            if replace:
                kept += rows
                self.sink.rows_loaded([], loaded, page.total_count, False)
            else:
                self.sink.rows_loaded(rows, loaded, page.total_count, done)
            if done:
                break
            cursor, limit = page.next_cursor, PAGE
        if replace:
            self.sink.all_reloaded(kept)

    async def _reload(self, client: SessiondClient, agent: str) -> None:
        rows: list[Row] = []
        cursor: str | None = None
        while True:
            page = await client.sessions_list(agent=agent, cursor=cursor, limit=PAGE)
            rows += [row_from_summary(summary) for summary in page.sessions]
            if not page.has_more or page.next_cursor is None:
                break
            cursor = page.next_cursor
        self.sink.store_reloaded(agent, rows)

    async def _refresh(self, client: SessiondClient, agent: str, keys: list[str]) -> None:
        async def read(key: str) -> Row | RowId:
            try:
                got = await client.sessions_get(key=key, agent=agent)
            except KeyNotFoundError:
                return (agent, key)
            return row_from_entry(got.agent_id, got.key, decode_entry(got.entry))

        results = await asyncio.gather(*(read(key) for key in keys))
        upserts = [r for r in results if isinstance(r, Row)]
        removed = [r for r in results if not isinstance(r, Row)]
        self.sink.rows_changed(upserts, removed)

    # ---------------------------------------------------------------------------- status

    async def _watch_status(self, client: SessiondClient) -> None:
        """`daemon.status` every few seconds and after changes; a failure means the daemon left."""
        while True:
            try:
                async with asyncio.timeout(self.connect_timeout):
                    status = await client.daemon_status()
            except AuthRequiredError:
                raise
            except (SessiondError, TimeoutError) as exc:
                self._move("lost", str(exc) or type(exc).__name__)
            else:
                self._move("connected", self.url)
                self.sink.status_changed(status)
            self._status_now.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.status_every):
                    await self._status_now.wait()


def decode_entry(raw: bytes) -> object:
    """A row's JSON as plain data (rows are arbitrary JSON objects)."""
    return msgspec.json.decode(raw)
