"""The Undo screen (every store's cleanup journal, newest first) and a restore's preview.

A restore is always previewed first (`sessions.restore` with `dryRun`): which keys come back,
which stay as they are because the key exists again, and which files cannot come back because
the cleanup deleted them outright. Only then, after a confirmation, is it carried out.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import ClassVar

from sessiond.cli.tui.cleanup_screens import ApplyProgress, ConfirmScreen, progress_token
from sessiond.cli.tui.screens import TitleBar, TuiScreen
from sessiond.cli.tui.widgets import Column, VirtualTable
from sessiond.client import (
    ConnectionLostError,
    JournalEntryNotFoundError,
    MethodNotFoundError,
    NotRestorableError,
    SessiondError,
)
from sessiond.protocol.methods import SessionsChanged
from sessiond.protocol.undo import JournalEntrySummary, KeyOutcome, RestoreResult
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.widgets import Static

JOURNAL_LIMIT = 100
"""Entries asked for per store (the journal keeps fewer by its retention anyway)."""


@dataclass(frozen=True, slots=True)
class JournalRow:
    agent: str
    entry: JournalEntrySummary


def _options(entry: JournalEntrySummary) -> str:
    on = [name for name, value in sorted(entry.options.items()) if value not in (None, False)]
    return " ".join(on)


class JournalSource:
    def __init__(self) -> None:
        self.rows: list[JournalRow] = []

    def __len__(self) -> int:
        return len(self.rows)

    def cells(self, index: int) -> list[str]:
        row = self.rows[index]
        entry = row.entry
        c = entry.counts
        when = time.strftime("%m-%d %H:%M:%S", time.localtime(entry.time_ms / 1000))
        status = "restorable" if entry.restorable else (entry.why or entry.state)
        return [
            when,
            row.agent,
            entry.kind,
            f"-{c.rows_removed} +{c.rows_added}",
            f"{c.files_moved}/{c.files_deleted}",
            status,
            entry.id,
            _options(entry),
        ]

    def colour(self, index: int, column: int) -> str | None:
        if column != 5:
            return None
        return "green" if self.rows[index].entry.restorable else "grey"


JOURNAL_COLUMNS = [
    Column("When", 14),
    Column("Agent", 6),
    Column("Kind", 7),
    Column("Rows", 9),
    Column("Mv/Del", 6, drop=2),
    Column("Restorable", 12, flex=1),
    Column("Id", 12, flex=1, drop=1),
    Column("Options", 10, flex=1, drop=3),
]


class UndoScreen(TuiScreen):
    """Every store's journal (`sessions.cleanups`), newest first; Enter previews a restore."""

    DEFAULT_CSS = """
    UndoScreen #note { height: auto; padding: 0 1; color: $text-muted; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter", "preview", "Preview restore"),
        Binding("r", "refresh", "Refresh"),
        Binding("1", "app.screen('sessions')", "Sessions"),
        Binding("3", "app.screen('cleanup')", "Cleanup"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.source = JournalSource()

    def compose(self) -> ComposeResult:
        yield TitleBar("Undo · the cleanup journal of every store, newest first", id="title")
        yield Static(id="note", markup=False)
        yield VirtualTable(JOURNAL_COLUMNS, self.source, empty="no journal entries", id="journal")
        yield from self.chrome()

    @property
    def table(self) -> VirtualTable:
        return self.query_one("#journal", VirtualTable)

    def on_mount(self) -> None:
        self.tui.feed_signal.subscribe(self, lambda entry: self._maybe_refresh(entry.item))
        self.table.focus()

    def on_screen_resume(self) -> None:
        self.action_refresh()

    def _maybe_refresh(self, item: object) -> None:
        """A cleanup, delete or restore anywhere writes the journal: read it again."""
        if isinstance(item, SessionsChanged) and item.reason in ("cleanup", "delete", "restore"):
            self.action_refresh()

    def say(self, text: str) -> None:
        self.query_one("#note", Static).update(text)

    @work(exclusive=True, group="journal")
    async def action_refresh(self) -> None:
        client = self.tui.client
        if client is None:
            self.say("The daemon is away: the journal shown is the last one read.")
            return
        status = self.tui.status
        agents = [s.agent_id for s in status.stores] if status else self.tui.rows.agents()
        rows: list[JournalRow] = []
        kept = ""
        try:
            for agent in agents:
                listing = await client.sessions_cleanups(agent=agent, limit=JOURNAL_LIMIT)
                rows += [JournalRow(listing.agent_id, entry) for entry in listing.entries]
                kept = (
                    f"kept: the newest {listing.retention_entries} entries, "
                    f"{listing.retention_days} days, while their archives exist"
                )
        except MethodNotFoundError:
            self.say(
                "This daemon keeps no cleanup journal (no sessions.cleanups): nothing to undo."
            )
            return
        except SessiondError as exc:
            self.say(f"The journal could not be read: {exc}")
            return
        rows.sort(key=lambda r: (-r.entry.time_ms, r.agent, r.entry.id))
        selected = self._selected()
        self.source.rows = rows
        at = next((i for i, r in enumerate(rows) if (r.agent, r.entry.id) == selected), 0)
        self.table.reload(cursor=at)
        self.say(f"{len(rows)} entries in {len(agents)} stores ({kept}). Rows: removed/added.")

    def _selected(self) -> tuple[str, str] | None:
        rows = self.source.rows
        if not rows or self.table.cursor >= len(rows):
            return None
        row = rows[self.table.cursor]
        return (row.agent, row.entry.id)

    @work(exclusive=True, group="journal")
    async def action_preview(self) -> None:
        rows = self.source.rows
        if not rows:
            return
        row = rows[self.table.cursor]
        if not row.entry.restorable:
            self.say(f"{row.entry.id} cannot be restored: {row.entry.why or row.entry.state}.")
            return
        client = self.tui.client
        if client is None:
            self.say("The daemon is away: no preview until it is back.")
            return
        try:
            preview = await client.sessions_restore(agent=row.agent, id=row.entry.id, dry_run=True)
        except (NotRestorableError, JournalEntryNotFoundError) as exc:
            self.say(f"{row.entry.id}: {exc.message}")
            return
        except SessiondError as exc:
            self.say(f"The daemon refused the preview: {exc}")
            return
        await self.app.push_screen(RestoreScreen(row, preview))


# ---------------------------------------------------------------------------------- restore


class OutcomeSource:
    """A restore's keys: what comes back, what stays (the key exists again), what is skipped."""

    def __init__(self, result: RestoreResult) -> None:
        self.keys: list[KeyOutcome] = result.keys

    def __len__(self) -> int:
        return len(self.keys)

    def cells(self, index: int) -> list[str]:
        key = self.keys[index]
        transcripts = ", ".join(os.path.basename(t) for t in key.transcripts)
        return [key.outcome, key.key, transcripts or "-", "; ".join(key.skipped)]

    def colour(self, index: int, column: int) -> str | None:
        if column != 0:
            return None
        return {"restored": "green", "present": "grey", "conflict": "red"}[self.keys[index].outcome]


OUTCOME_COLUMNS = [
    Column("Outcome", 9),
    Column("Key", 16, flex=2, middle=True),
    Column("Transcripts renamed back", 12, flex=1, drop=1),
    Column("Skipped", 8, flex=1, drop=2),
]


def restore_summary(result: RestoreResult) -> str:
    verb = "Would restore" if result.dry_run else "Restored"
    lines = [
        f"{verb} {result.restored_id} in {result.agent_id}: {result.restored_rows} rows, "
        f"{result.renamed_files} transcripts renamed back, {result.conflicts} conflicts "
        "(a key that exists again is left as it is)."
    ]
    if result.lost:
        names = ", ".join(os.path.basename(p) for p in result.lost[:3])
        more = f" and {len(result.lost) - 3} more" if len(result.lost) > 3 else ""
        lines.append(f"Cannot come back (deleted outright): {names}{more}.")
    if result.journal_id:
        lines.append(f"Journal entry {result.journal_id}: restore it to undo this restore.")
    return "\n".join(lines)


class RestoreScreen(TuiScreen):
    """One journal entry's restore: its preview, then (a, after a confirmation) the restore."""

    DEFAULT_CSS = """
    RestoreScreen #summary { height: auto; padding: 0 1; }
    RestoreScreen #message { height: auto; padding: 0 1; color: $text-warning; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("a", "restore", "Restore"),
        Binding("escape", "app.pop_screen", "Back"),
    ]

    def __init__(self, row: JournalRow, preview: RestoreResult) -> None:
        super().__init__()
        self.row = row
        self.preview = preview
        self.done: RestoreResult | None = None
        self.source = OutcomeSource(preview)

    def compose(self) -> ComposeResult:
        entry = self.row.entry
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(entry.time_ms / 1000))
        yield TitleBar(f"Restore · {entry.kind} {entry.id} · {self.row.agent} · {when}")
        yield Static(restore_summary(self.preview), id="summary", markup=False)
        yield Static("a: restore it (asks first) · Esc: back", id="message", markup=False)
        yield ApplyProgress(id="progress")
        yield VirtualTable(OUTCOME_COLUMNS, self.source, empty="no rows to put back", id="keys")
        yield from self.chrome()

    def on_mount(self) -> None:
        self.query_one("#keys", VirtualTable).focus()

    def say(self, text: str) -> None:
        self.query_one("#message", Static).update(text)

    @work(exclusive=True, group="restore")
    async def action_restore(self) -> None:
        if self.done is not None:
            self.say("Restored already. Esc: back to the journal.")
            return
        question = "Restore this entry?\n\n" + restore_summary(self.preview)
        if not await self.app.push_screen_wait(ConfirmScreen(question)):
            self.say("Not restored.")
            return
        client = self.tui.client
        if client is None:
            self.say("The daemon is away: nothing restored.")
            return
        progress = self.query_one("#progress", ApplyProgress)
        progress.begin("restoring")
        token = progress_token()
        stop_hearing = client.on_progress(token, progress.step)
        try:
            result = await client.sessions_restore(
                agent=self.row.agent, id=self.row.entry.id, progress_token=token
            )
        except (NotRestorableError, JournalEntryNotFoundError) as exc:
            self.say(f"Not restored: {exc.message}")
            return
        except ConnectionLostError:
            self.say("The connection dropped during the restore: see the journal once back.")
            return
        except SessiondError as exc:
            self.say(f"The daemon refused the restore: {exc}")
            return
        finally:
            stop_hearing()
            progress.end()
        self.done = result
        self.source.keys = result.keys
        self.query_one("#keys", VirtualTable).reload(cursor=0)
        self.query_one("#summary", Static).update(restore_summary(result))
        self.say("Done. Esc: back to the journal.")
