"""The Sessions and Live screens, the status line they share, and the table of modes.

Every screen is keyboard first: its keys are bindings, so the footer lists them.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, ClassVar, cast

from rich.json import JSON
from rich.text import Text
from sessiond.cli.tui.model import SORT_FIELDS, Row, RowId, format_age, format_bytes
from sessiond.cli.tui.widgets import Column, VirtualTable
from sessiond.client import KeyNotFoundError, SeqGap, SessiondError
from sessiond.protocol.methods import SessionSummary, StatusResult, StoresChanged
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, VerticalScroll
from textual.screen import Screen
from textual.timer import Timer
from textual.widgets import DataTable, Footer, Input, RichLog, Static

if TYPE_CHECKING:
    from sessiond.cli.tui.app import FeedItem, SessiondTui

# ------------------------------------------------------------------------------ status line


def _when(now: float, stamp_ms: float | None) -> str:
    """How long ago, short (`3m`); `-` for never."""
    return "-" if stamp_ms is None else format_age(now * 1000, stamp_ms)


def status_text(app: SessiondTui, now: float) -> Text:
    """One line: how the link is, and the daemon's state as `daemon.status` last said.

    Connected, it leads with the daemon's readiness (`● ready`), so that 100k rows and every
    figure still fit 80 columns; a figure the daemon does not report is left out.
    """
    out = Text(no_wrap=True, overflow="ellipsis")
    state = app.link_state
    status = app.status
    if state == "live":
        if status is None or status.ready:
            out.append("● ready" if status else "● live", style="bold green")
        else:
            out.append("● not ready", style="bold red")
    elif state == "connecting":
        out.append(f"… connecting to {app.url}", style="bold yellow")
    elif state == "refused":
        out.append(f"✕ {app.link_detail}", style="bold red")
        return out
    elif app.status is None:
        out.append(f"✕ no daemon at {app.url} yet; retrying", style="bold red")
        return out
    else:
        since = time.strftime("%H:%M:%S", time.localtime(app.lost_at or now))
        out.append(f"✕ daemon gone since {since}; last view kept, reconnecting", style="bold red")
        return out
    load = app.load
    if not load.done and load.total:
        out.append(f"  loading {load.loaded:,}/{load.total:,}")
    if status is None:
        return out
    rows = sum(store.rows for store in status.stores)
    flushed = max((s.last_flush_ms or 0 for s in status.stores), default=0) or None
    reloaded = max((s.last_external_reload_ms or 0 for s in status.stores), default=0) or None
    parts = [
        f"{len(status.stores)} stores {rows:,} rows",
        f"flush {_when(now, flushed)}",
        f"reload {_when(now, reloaded)}",
        f"conflicts {status.conflicts}",
    ]
    repaired = getattr(status, "stale_writes_repaired", None)
    if repaired is not None:
        parts.append(f"repaired {repaired}")
    out.append("  " + " · ".join(parts))
    return out


class StatusLine(Static):
    DEFAULT_CSS = """
    StatusLine { height: 1; background: $panel; color: $foreground; padding: 0 1; }
    """

    def on_mount(self) -> None:
        self.tui.status_signal.subscribe(self, lambda _none: self.redraw())
        self.set_interval(5.0, self.redraw)
        self.redraw()

    @property
    def tui(self) -> SessiondTui:
        return cast("SessiondTui", self.app)

    def redraw(self) -> None:
        self.update(status_text(self.tui, time.time()))


class TitleBar(Static):
    def __init__(self, text: str = "", *, id: str | None = None) -> None:
        super().__init__(text, id=id, classes="title-bar", markup=False)


class TuiScreen(Screen[None]):
    """What every screen has: the app typed, a title bar, the status line and the footer."""

    @property
    def tui(self) -> SessiondTui:
        return cast("SessiondTui", self.app)

    def chrome(self) -> ComposeResult:
        yield StatusLine()
        yield Footer(compact=True, show_command_palette=False)


# --------------------------------------------------------------------------------- sessions

_OPTIONAL_FIELDS = {
    "tokens": ("total_tokens", "tokens"),
    "transcript": ("transcript_bytes", "transcript_size"),
}
"""Columns shown only when `sessions.list` gives the figure (a SessionSummary field)."""

COLUMNS: dict[str, Column] = {
    "agent": Column("Agent", 6),
    "key": Column("Key", 14, flex=3, middle=True),
    "kind": Column("Kind", 8, drop=2),
    "age": Column("Age", 4, right=True, drop=1),
    "model": Column("Model", 16, flex=1, drop=3),
    "tokens": Column("Tokens", 7, right=True, drop=4),
    "transcript": Column("Transcript", 10, right=True, drop=5),
}


def listed_optional_columns() -> list[str]:
    known = set(SessionSummary.__struct_fields__)
    return [name for name, wire in _OPTIONAL_FIELDS.items() if known & set(wire)]


class SessionSource:
    """The RowSet as table cells."""

    def __init__(self, app: SessiondTui, names: list[str]) -> None:
        self.app = app
        self.names = names
        self.now = time.time() * 1000

    def __len__(self) -> int:
        return len(self.app.rows)

    def cells(self, index: int) -> list[str]:
        row = self.app.rows.at(index)
        return [self._cell(row, name) for name in self.names]

    def colour(self, index: int, column: int) -> str | None:
        return None

    def _cell(self, row: Row, name: str) -> str:
        if name == "agent":
            return row.agent
        if name == "key":
            return row.key
        if name == "kind":
            return row.kind
        if name == "age":
            return format_age(self.now, row.updated_at)
        if name == "model":
            return row.model or ""
        for field in _OPTIONAL_FIELDS.get(name, ()):
            value = row.figure(field)
            if value is not None:
                return format_bytes(int(value)) if name == "transcript" else f"{int(value):,}"
        return ""


SEARCH_PAUSE = 0.15
"""Seconds without a key press before the search box filters the rows."""

_SORT_TITLES = {"updated": "age", "key": "key", "agent": "agent", "kind": "kind", "model": "model"}


class SessionsScreen(TuiScreen):
    """Every agent's rows in one table, live; search, sort, agent filter, the row's entry."""

    DEFAULT_CSS = """
    SessionsScreen #search { height: 1; border: none; padding: 0 1; display: none; }
    SessionsScreen #search.shown { display: block; }
    SessionsScreen #detail { width: 42%; min-width: 30; display: none;
        border-left: solid $primary; background: $surface; }
    SessionsScreen #detail.shown { display: block; }
    SessionsScreen #detail-body { padding: 0 1; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("slash", "search", "Search"),
        Binding("a", "agent", "Agent"),
        Binding("s", "sort", "Sort"),
        Binding("r", "reverse", "Rev"),
        Binding("enter", "detail", "Entry"),
        Binding("escape", "back", "Back", show=False),
        Binding("2", "app.screen('live')", "Live"),
        Binding("3", "app.screen('cleanup')", "Cleanup"),
        Binding("4", "app.screen('undo')", "Undo"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.optional = listed_optional_columns()
        self.selected: RowId | None = None
        self.source: SessionSource | None = None
        self._search_timer: Timer | None = None

    def compose(self) -> ComposeResult:
        names = ["agent", "key", "kind", "age", "model", *self.optional]
        self.source = SessionSource(self.tui, names)
        columns = [COLUMNS[name] for name in names]
        yield TitleBar(id="title")
        yield Input(placeholder="search key, model, session id, kind", id="search")
        with Horizontal():
            yield VirtualTable(columns, self.source, empty="no sessions yet", id="rows")
            with VerticalScroll(id="detail"):
                yield Static(id="detail-body")
        yield from self.chrome()

    @property
    def table(self) -> VirtualTable:
        return self.query_one("#rows", VirtualTable)

    def on_mount(self) -> None:
        self.tui.rows_signal.subscribe(self, lambda _none: self.rows_changed())
        self.set_interval(30.0, self.rows_changed)
        self.table.focus()
        self.rows_changed()

    def rows_changed(self) -> None:
        assert self.source is not None
        self.source.now = time.time() * 1000
        rows = self.tui.rows
        index = rows.index_of(self.selected) if self.selected is not None else None
        self.table.reload(cursor=index)
        self.redraw_title()

    def redraw_title(self) -> None:
        rows = self.tui.rows
        shown, known = len(rows), len(rows.rows)
        arrow = "↑" if rows.reverse else "↓"
        parts = [
            f"Sessions {shown:,}" + (f" of {known:,}" if shown != known else ""),
            rows.agent or "all agents",
            f"sort {_SORT_TITLES[rows.sort]}{arrow}",
        ]
        if rows.query:
            parts.append(f"/{rows.query}")
        self.query_one("#title", TitleBar).update(" · ".join(parts))

    # ---------------------------------------------------------------------------- actions

    def action_search(self) -> None:
        box = self.query_one("#search", Input)
        box.add_class("shown")
        box.focus()

    @on(Input.Changed, "#search")
    def search_changed(self, event: Input.Changed) -> None:
        # Filtering 100k rows takes a moment: wait for a pause in the typing.
        if self._search_timer is not None:
            self._search_timer.stop()
        self._search_timer = self.set_timer(SEARCH_PAUSE, lambda: self.search(event.value))

    @on(Input.Submitted, "#search")
    def search_done(self, event: Input.Submitted) -> None:
        self.search(event.value)
        self.table.focus()

    def search(self, query: str) -> None:
        if self._search_timer is not None:
            self._search_timer.stop()
            self._search_timer = None
        if query.strip().lower() != self.tui.rows.query:
            self.tui.rows.set_view(query=query)
            self.rows_changed()

    def action_back(self) -> None:
        box = self.query_one("#search", Input)
        detail = self.query_one("#detail")
        if box.has_focus or box.value:
            box.value = ""
            box.remove_class("shown")
            self.search("")
            self.table.focus()
        elif detail.has_class("shown"):
            detail.remove_class("shown")

    def action_agent(self) -> None:
        rows = self.tui.rows
        status = self.tui.status
        agents = [s.agent_id for s in status.stores] if status else rows.agents()
        choices: list[str | None] = [None, *agents]
        at = choices.index(rows.agent) if rows.agent in choices else 0
        rows.set_view(agent=choices[(at + 1) % len(choices)])
        self.rows_changed()

    def action_sort(self) -> None:
        rows = self.tui.rows
        at = SORT_FIELDS.index(rows.sort)
        rows.set_view(sort=SORT_FIELDS[(at + 1) % len(SORT_FIELDS)])
        self.rows_changed()

    def action_reverse(self) -> None:
        rows = self.tui.rows
        rows.set_view(reverse=not rows.reverse)
        self.rows_changed()

    def action_detail(self) -> None:
        detail = self.query_one("#detail")
        detail.toggle_class("shown")
        if detail.has_class("shown") and self.selected is not None:
            self.show_entry(self.selected)

    @on(VirtualTable.Highlighted, "#rows")
    def highlighted(self, event: VirtualTable.Highlighted) -> None:
        rows = self.tui.rows
        if event.index >= len(rows):
            return
        ident = rows.at(event.index).ident
        if ident != self.selected:
            self.selected = ident
            if self.query_one("#detail").has_class("shown"):
                self.show_entry(ident)

    @work(exclusive=True, group="entry")
    async def show_entry(self, ident: RowId) -> None:
        body = self.query_one("#detail-body", Static)
        agent, key = ident
        client = self.tui.client
        if client is None:
            body.update(Text(f"{key}\n\n(the daemon is away; the entry cannot be read)"))
            return
        try:
            got = await client.sessions_get(key=key, agent=agent)
        except KeyNotFoundError:
            body.update(Text(f"{key}\n\n(this row has just been removed)"))
            return
        except SessiondError as exc:
            body.update(Text(f"{key}\n\n{exc}"))
            return
        view = Text(f"{got.agent_id} · {got.key}\n", style="bold")
        view.append_text(JSON(bytes(got.entry).decode(), indent=2).text)
        body.update(view)


# ------------------------------------------------------------------------------------- live


def _feed_line(entry: FeedItem) -> Text:
    stamp = time.strftime("%H:%M:%S", time.localtime(entry.at))
    item = entry.item
    line = Text(f"{stamp} ", style="dim")
    if isinstance(item, SeqGap):
        seen = "?" if item.last_seen is None else str(item.last_seen)
        line.append(f"{item.agent_id:8s} gap ({item.reason}) seq {seen}→{item.current}", "bold")
        line.append(": store read again")
        return line
    if isinstance(item, StoresChanged):
        added = ", ".join(s.agent_id for s in item.added) or "-"
        removed = ", ".join(s.agent_id for s in item.removed) or "-"
        line.append(f"stores changed (config reload): added {added}; removed {removed}", "bold")
        return line
    keys = item.keys
    shown = keys[0] if keys else ""
    more = f" (+{len(keys) - 1})" if len(keys) > 1 else ""
    line.append(f"{item.agent_id:8s} {item.reason:8s} seq {item.seq:<6d} ")
    line.append(shown + more)
    return line


class LiveScreen(TuiScreen):
    """Each store's state from `daemon.status`, and every change as it is announced."""

    DEFAULT_CSS = """
    LiveScreen #stores { height: auto; max-height: 10; }
    LiveScreen #feed { height: 1fr; border-top: solid $primary; background: $surface;
        scrollbar-size-vertical: 1; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("c", "clear_feed", "Clear feed"),
        Binding("1", "app.screen('sessions')", "Sessions"),
        Binding("3", "app.screen('cleanup')", "Cleanup"),
        Binding("4", "app.screen('undo')", "Undo"),
    ]

    def compose(self) -> ComposeResult:
        yield TitleBar("Live · each store, and every change as it happens", id="title")
        yield DataTable(id="stores", cursor_type="none", zebra_stripes=True)
        yield RichLog(id="feed", max_lines=500, wrap=False)
        yield from self.chrome()

    def on_mount(self) -> None:
        table = self.query_one("#stores", DataTable)
        self.store_columns = [
            "Agent",
            "Rows",
            "State",
            "Seq",
            "Flushes",
            "Last flush",
            "Reloads",
            "Conflicts",
        ]
        table.add_columns(*self.store_columns)
        feed = self.query_one("#feed", RichLog)
        feed.write(Text("changes appear here as the daemon announces them", style="dim italic"))
        for entry in self.tui.feed:
            feed.write(_feed_line(entry))
        self.tui.status_signal.subscribe(self, lambda _none: self.redraw_stores())
        self.tui.feed_signal.subscribe(self, lambda entry: feed.write(_feed_line(entry)))
        self.redraw_stores()

    def redraw_stores(self) -> None:
        status = self.tui.status
        if status is None:
            return
        table = self.query_one("#stores", DataTable)
        repaired = (
            getattr(status.stores[0], "stale_writes_repaired", None) if status.stores else None
        )
        if repaired is not None and "Repaired" not in self.store_columns:
            self.store_columns.append("Repaired")
            table.add_column("Repaired")
        table.clear()
        now = time.time()
        for store in status.stores:
            cells = [
                store.agent_id,
                f"{store.rows:,}",
                store.state + ("" if store.writable else " (read-only)"),
                str(store.seq),
                f"{store.flushes}"
                + (f" ({store.flush_failures} failed)" if store.flush_failures else ""),
                _when(now, store.last_flush_ms),
                str(store.external_reloads),
                str(store.conflicts),
            ]
            if "Repaired" in self.store_columns:
                cells.append(str(getattr(store, "stale_writes_repaired", "")))
            table.add_row(*cells)
        self.query_one("#title", TitleBar).update(_live_title(status))

    def action_clear_feed(self) -> None:
        self.query_one("#feed", RichLog).clear()


def _live_title(status: StatusResult) -> str:
    uptime = int(status.uptime_ms / 1000)
    return (
        f"Live · sessiond {status.version} pid {status.pid} · up {uptime // 3600}h"
        f"{uptime // 60 % 60:02d}m · {status.connections} clients"
    )
