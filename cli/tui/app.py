"""`sessiond tui`: the Textual app. It owns the rows, the link to the daemon, and the screens.

The app is the link's Sink: whatever the daemon reports lands in the app's state first and is
then published on a signal, so a screen not on view is up to date when it comes back.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import time
from collections import deque
from dataclasses import dataclass, field
from typing import ClassVar

from sessiond.cli.tui.link import Link, LinkState
from sessiond.cli.tui.model import Row, RowId, RowSet
from sessiond.client import SessiondClient
from sessiond.client.changes import ChangeItem
from sessiond.protocol.methods import StatusResult
from textual.app import App
from textual.binding import Binding, BindingType
from textual.signal import Signal

FEED_LENGTH = 500


@dataclass(frozen=True, slots=True)
class Maintenance:
    """The config's `session.maintenance` as the Cleanup screen shows it (already formatted)."""

    source: str
    settings: list[tuple[str, str]] = field(default_factory=list)
    problem: str | None = None


@dataclass(slots=True)
class LoadProgress:
    loaded: int = 0
    total: int = 0
    done: bool = False
    started: float = field(default_factory=time.monotonic)


@dataclass(frozen=True, slots=True)
class FeedItem:
    at: float
    item: ChangeItem


def now_ms() -> float:
    return time.time() * 1000


class SessiondTui(App[int]):
    """The app on one daemon: `SessiondTui(url, token).run()`, or `run_test()` headless."""

    TITLE = "sessiond"
    CSS = """
    Screen { layout: vertical; }
    .title-bar {
        height: 1;
        background: $panel;
        color: $text;
        padding: 0 1;
        text-style: bold;
    }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("1", "screen('sessions')", "Sessions", show=False),
        Binding("2", "screen('live')", "Live", show=False),
        Binding("3", "screen('cleanup')", "Cleanup", show=False),
        Binding("4", "screen('undo')", "Undo", show=False),
        Binding("t", "toggle_theme", "Theme", show=False),
        Binding("q", "quit", "Quit"),
    ]

    def __init__(self, url: str, token: str | None, maintenance: Maintenance | None = None) -> None:
        super().__init__()
        self.url = url
        self.rows = RowSet()
        self.maintenance = maintenance or Maintenance("not read")
        self.link = Link(url, token, self)
        self.link_state: LinkState = "connecting"
        self.link_detail = ""
        self.lost_at: float | None = None
        self.status: StatusResult | None = None
        self.load = LoadProgress()
        self.feed: deque[FeedItem] = deque(maxlen=FEED_LENGTH)
        self.rows_signal: Signal[None] = Signal(self, "rows")
        self.status_signal: Signal[None] = Signal(self, "status")
        self.feed_signal: Signal[FeedItem] = Signal(self, "feed")
        self._link_task: asyncio.Task[None] | None = None

    def on_mount(self) -> None:
        from sessiond.cli.tui.cleanup_screens import CleanupScreen
        from sessiond.cli.tui.screens import LiveScreen, SessionsScreen
        from sessiond.cli.tui.undo_screens import UndoScreen

        self.add_mode("sessions", SessionsScreen)
        self.add_mode("live", LiveScreen)
        self.add_mode("cleanup", CleanupScreen)
        self.add_mode("undo", UndoScreen)
        self.switch_mode("sessions")
        self._link_task = asyncio.create_task(self.link.run(), name="sessiond-tui-link")
        # What is alive now (modules, Textual's own objects) lives as long as the app: out of the
        # cycle collector's full passes, which otherwise walk it again and again while rows load.
        gc.freeze()

    async def on_unmount(self) -> None:
        """Close the connection before the app's loop ends, so no task outlives the app."""
        if self._link_task is not None:
            self._link_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._link_task
        gc.unfreeze()

    @property
    def client(self) -> SessiondClient | None:
        """The connected client, for a screen's own calls; None while the daemon is away."""
        return self.link.client if self.link_state == "live" else None

    # ------------------------------------------------------------------------------ actions

    async def action_screen(self, name: str) -> None:
        if self.current_mode != name:
            await self.switch_mode(name)

    def action_toggle_theme(self) -> None:
        self.theme = "textual-light" if self.current_theme.dark else "textual-dark"

    # ------------------------------------------------------------------------- link's Sink

    def link_changed(self, state: LinkState, detail: str) -> None:
        if state == "gone" and self.lost_at is None:
            self.lost_at = time.time()
        if state == "live":
            self.lost_at = None
        self.link_state, self.link_detail = state, detail
        self.status_signal.publish(None)

    def rows_loaded(self, rows: list[Row], loaded: int, total: int, done: bool) -> None:
        self.rows.upsert_many(rows)
        self.load.loaded, self.load.total, self.load.done = loaded, total, done
        self.rows_signal.publish(None)
        self.status_signal.publish(None)

    def store_reloaded(self, agent: str, rows: list[Row]) -> None:
        self.rows.replace_agent(agent, rows)
        self.rows_signal.publish(None)

    def all_reloaded(self, rows: list[Row]) -> None:
        self.rows.replace_all(rows)
        self.load.done = True
        self.rows_signal.publish(None)
        self.status_signal.publish(None)

    def rows_changed(self, upserts: list[Row], removed: list[RowId]) -> None:
        for ident in removed:
            self.rows.remove(ident)
        self.rows.upsert_many(upserts)
        self.rows_signal.publish(None)

    def status_changed(self, status: StatusResult) -> None:
        self.status = status
        self.status_signal.publish(None)

    def change_seen(self, item: ChangeItem) -> None:
        entry = FeedItem(time.time(), item)
        self.feed.append(entry)
        self.feed_signal.publish(entry)
