"""The Cleanup screen (the CLI's flags), the Plan screen (a dry run, then its apply), and Undo.

An apply is bound to the plan on screen: before anything changes, the plan is computed again and
compared with the one the operator confirmed; if it differs, nothing is applied and a fresh
preview is offered.
"""

from __future__ import annotations

import time
from dataclasses import replace
from typing import ClassVar

from rich.text import Text
from sessiond.cli.tui.model import format_age
from sessiond.cli.tui.plan import ACTION_COLOURS, STAGES, ActionRow, CleanupFlags, PlanView
from sessiond.cli.tui.screens import TitleBar, TuiScreen
from sessiond.cli.tui.widgets import Column, VirtualTable, palette_style
from sessiond.client import (
    ConnectionLostError,
    MethodNotFoundError,
    SessiondClient,
    SessiondError,
)
from sessiond.protocol.cleanup import AllAgentsCleanup, CleanupSummary
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Checkbox, DataTable, Input, ProgressBar, Static

_SWITCHES: tuple[tuple[str, str, str], ...] = (
    ("enforce", "--enforce", "even in warn mode"),
    ("fix_missing", "--fix-missing", "transcript gone"),
    ("fix_dm_scope", "--fix-dm-scope", "stale DM rows"),
)


async def dry_run(client: SessiondClient, flags: CleanupFlags) -> PlanView:
    result = await run_cleanup(client, flags, dry_run=True)
    return PlanView(result, flags)


async def run_cleanup(
    client: SessiondClient, flags: CleanupFlags, *, dry_run: bool
) -> CleanupSummary | AllAgentsCleanup:
    return await client.sessions_cleanup(
        agent=None if flags.all_agents else flags.agent,
        all_agents=flags.all_agents,
        enforce=flags.enforce,
        active_key=flags.active_key,
        fix_missing=flags.fix_missing,
        fix_dm_scope=flags.fix_dm_scope,
        dry_run=dry_run,
        include_actions=dry_run,
    )


class CleanupScreen(TuiScreen):
    """Choose the flags `sessiond sessions cleanup` takes, beside the config's maintenance."""

    DEFAULT_CSS = """
    CleanupScreen #form { width: 44; padding: 0 1; }
    CleanupScreen #maintenance { width: 1fr; padding: 0 1; border-left: solid $primary; }
    CleanupScreen Checkbox { border: none; padding: 0; height: 1; background: transparent; }
    CleanupScreen #active-key { border: none; height: 1; padding: 0; margin-top: 1; }
    CleanupScreen #scope { margin-bottom: 1; }
    CleanupScreen #command { margin-top: 1; color: $text-muted; }
    CleanupScreen #message { margin-top: 1; color: $text-warning; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("p", "preview", "Preview"),
        Binding("g", "scope", "Scope"),
        Binding("e", "switch('enforce')", "Enforce"),
        Binding("m", "switch('fix_missing')", "Missing"),
        Binding("d", "switch('fix_dm_scope')", "DM scope"),
        Binding("k", "active_key", "Active key", show=False),
        Binding("escape", "leave_input", "Back", show=False),
        Binding("1", "app.screen('sessions')", "Sessions"),
        Binding("4", "app.screen('undo')", "Undo"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.flags = CleanupFlags()

    def compose(self) -> ComposeResult:
        yield TitleBar("Cleanup · choose the flags, then p for the plan (a dry run)")
        with Horizontal():
            with Vertical(id="form"):
                yield Static(id="scope")
                for name, flag, why in _SWITCHES:
                    yield Checkbox(f"{flag:<15} {why}", False, id=name, compact=True)
                yield Input(placeholder="--active-key (k): protect this key", id="active-key")
                yield Static(id="command", markup=False)
                yield Static(id="message", markup=False)
            yield Static(id="maintenance")
        yield from self.chrome()

    def on_mount(self) -> None:
        self.query_one("#maintenance", Static).update(self._maintenance_text())
        self.redraw()

    def _maintenance_text(self) -> Text:
        info = self.tui.maintenance
        text = Text("Maintenance (session.maintenance)\n", style="bold")
        text.append(f"{info.source}\n\n", style="dim")
        if info.problem:
            text.append(info.problem + "\n", style="red")
        width = max((len(label) for label, _value in info.settings), default=0)
        for label, value in info.settings:
            text.append(f"{label:<{width}}  {value}\n")
        text.append(
            "\nRead from this machine's config; the daemon plans with its own, and the plan "
            "says which mode it used.",
            style="dim",
        )
        return text

    def redraw(self) -> None:
        flags = self.flags
        scope = "all agents" if flags.all_agents else f"agent {flags.agent}"
        self.query_one("#scope", Static).update(Text.assemble(("Scope (g): ", "bold"), scope))
        for name, _flag, _why in _SWITCHES:
            box = self.query_one(f"#{name}", Checkbox)
            if box.value != getattr(flags, name):
                box.value = getattr(flags, name)
        argv = " ".join(flags.argv())
        self.query_one("#command", Static).update(f"sessiond sessions cleanup {argv} --dry-run")

    def say(self, message: str) -> None:
        self.query_one("#message", Static).update(message)

    # ---------------------------------------------------------------------------- actions

    def action_switch(self, name: str) -> None:
        self.flags = self.flags.switched(name, not getattr(self.flags, name))
        self.redraw()

    @on(Checkbox.Changed)
    def box_changed(self, event: Checkbox.Changed) -> None:
        name = event.checkbox.id or ""
        if getattr(self.flags, name, None) is not None and getattr(self.flags, name) != event.value:
            self.flags = self.flags.switched(name, event.value)
            self.redraw()

    def action_scope(self) -> None:
        status = self.tui.status
        agents = [s.agent_id for s in status.stores] if status else self.tui.rows.agents()
        choices: list[str | None] = [None, *agents]
        current = None if self.flags.all_agents else self.flags.agent
        at = choices.index(current) if current in choices else 0
        chosen = choices[(at + 1) % len(choices)]
        self.flags = replace(self.flags, agent=chosen, all_agents=chosen is None)
        self.redraw()

    def action_active_key(self) -> None:
        self.query_one("#active-key", Input).focus()

    def action_leave_input(self) -> None:
        self.set_focus(None)

    @on(Input.Changed, "#active-key")
    def active_key_changed(self, event: Input.Changed) -> None:
        self.flags = replace(self.flags, active_key=event.value.strip() or None)
        self.redraw()

    @on(Input.Submitted, "#active-key")
    def active_key_done(self) -> None:
        self.set_focus(None)

    @work(exclusive=True, group="preview")
    async def action_preview(self) -> None:
        client = self.tui.client
        if client is None:
            self.say("The daemon is away: no plan until it is back.")
            return
        self.say("Planning…")
        try:
            plan = await dry_run(client, self.flags)
        except SessiondError as exc:
            self.say(f"The daemon refused the dry run: {exc}")
            return
        self.say("")
        await self.app.push_screen(PlanScreen(plan))


# ------------------------------------------------------------------------------------- plan


class ActionSource:
    """The plan's action rows as table cells, the action in its colour; keeps can be hidden."""

    def __init__(self, plan: PlanView) -> None:
        self.plan = plan
        self.now = time.time() * 1000
        self.show_keep = False
        self.rows: list[ActionRow] = []
        self.refilter()

    def refilter(self) -> None:
        self.rows = [a for a in self.plan.actions if self.show_keep or a.row.action != "keep"]

    def __len__(self) -> int:
        return len(self.rows)

    def cells(self, index: int) -> list[str]:
        item = self.rows[index]
        row = item.row
        updated = row.updated_at
        number = float(updated) if isinstance(updated, int | float) else None
        return [row.action, item.agent, row.key, format_age(self.now, number), row.model, row.flags]

    def colour(self, index: int, column: int) -> str | None:
        if column != 0:
            return None
        return ACTION_COLOURS.get(self.rows[index].row.action)


ACTION_COLUMNS = [
    Column("Action", 15),
    Column("Agent", 6, drop=1),
    Column("Key", 16, flex=2, middle=True),
    Column("Age", 4, right=True),
    Column("Model", 10, drop=2),
    Column("Flags", 8, flex=1, drop=3),
]

COUNT_HEADERS = ("Agent", "Before", "After", "Missing", "DM", "Stale", "Cap", "Files", "Budget")
"""The counts table's columns: the stages of STAGES, short enough for 80 columns."""


def count_cells(plan: PlanView) -> list[list[str]]:
    """One row per store and a total: the same figures as the CLI's `--dry-run --json`."""
    rows: list[list[str]] = []
    totals: list[int | None] = [None] * len(STAGES)
    for i, store in enumerate(plan.stores):
        values = [plan.count(i, path) for _label, path in STAGES]
        for n, value in enumerate(values):
            if value is not None:
                totals[n] = (totals[n] or 0) + value
        rows.append([store.agent_id, *_stage_cells(values)])
    if len(plan.stores) > 1:
        rows.append(["total", *_stage_cells(totals)])
    return rows


def _stage_cells(values: list[int | None]) -> list[str]:
    """Eight cells: before, after, five stages, and the budget as files/rows."""
    shown = ["-" if v is None else str(v) for v in values]
    budget = "-" if values[7] is None else f"{shown[7]}/{shown[8]}"
    return [*shown[:7], budget]


class PlanScreen(TuiScreen):
    """One dry run: per-stage counts, the actions in colour, and its apply."""

    DEFAULT_CSS = """
    PlanScreen #counts { height: auto; max-height: 8; }
    PlanScreen #legend { height: 1; padding: 0 1; }
    PlanScreen #message { height: auto; max-height: 3; padding: 0 1; color: $text-warning; }
    PlanScreen #progress { height: 1; padding: 0 1; display: none; }
    PlanScreen #progress.shown { display: block; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("a", "apply", "Apply"),
        Binding("r", "refresh", "Re-plan"),
        Binding("k", "keeps", "Keeps"),
        Binding("escape", "app.pop_screen", "Back"),
    ]

    def __init__(self, plan: PlanView) -> None:
        super().__init__()
        self.plan = plan
        self.applied = False
        self.source = ActionSource(plan)

    def compose(self) -> ComposeResult:
        yield TitleBar(id="title")
        yield DataTable(id="counts", cursor_type="none", zebra_stripes=True)
        yield Static(id="legend")
        yield Static(id="message", markup=False)
        yield ProgressBar(id="progress", show_eta=False)
        yield VirtualTable(ACTION_COLUMNS, self.source, empty="no row changes", id="actions")
        yield from self.chrome()

    def on_mount(self) -> None:
        self.query_one("#counts", DataTable).add_columns(*COUNT_HEADERS)
        self.show_plan(self.plan)
        self.query_one("#actions", VirtualTable).focus()

    def show_plan(self, plan: PlanView) -> None:
        self.plan = plan
        self.applied = False
        self.source.plan = plan
        self.source.now = time.time() * 1000
        self.source.refilter()
        counts = self.query_one("#counts", DataTable)
        counts.clear()
        for cells in count_cells(plan):
            counts.add_row(*cells)
        self.query_one("#legend", Static).update(self._legend())
        self.query_one("#actions", VirtualTable).reload(cursor=0)
        self.redraw_title()
        if plan.would_mutate():
            self.say("a: apply this plan (asks first) · r: plan again · k: show kept rows")
        else:
            self.say("Nothing to do: this plan changes nothing.")

    def redraw_title(self) -> None:
        plan = self.plan
        argv = " ".join(plan.flags.argv()) or "(default agent)"
        state = "applied" if self.applied else f"{plan.mode} mode, {plan.changes()} rows go"
        self.query_one("#title", TitleBar).update(f"Plan · {state} · {argv}")

    def _legend(self) -> Text:
        dark = self.app.current_theme.dark
        text = Text(no_wrap=True, overflow="ellipsis")
        for action, colour in ACTION_COLOURS.items():
            count = self.plan.by_action.get(action, 0)
            if not count:
                continue
            text.append("■ ", style=palette_style(colour, dark))
            text.append(f"{action} {count}  ")
        return text or Text("no rows in scope", style="dim")

    def say(self, message: str) -> None:
        self.query_one("#message", Static).update(message)

    def action_keeps(self) -> None:
        self.source.show_keep = not self.source.show_keep
        self.source.refilter()
        self.query_one("#actions", VirtualTable).reload(cursor=0)

    @work(exclusive=True, group="plan")
    async def action_refresh(self) -> None:
        client = self.tui.client
        if client is None:
            self.say("The daemon is away: no plan until it is back.")
            return
        try:
            self.show_plan(await dry_run(client, self.plan.flags))
        except SessiondError as exc:
            self.say(f"The daemon refused the dry run: {exc}")

    @work(exclusive=True, group="plan")
    async def action_apply(self) -> None:
        plan = self.plan
        if self.applied:
            self.say("This plan has been applied; r plans again.")
            return
        if not plan.would_mutate():
            self.say("Nothing to apply: this plan changes nothing.")
            return
        stores = len(plan.stores)
        question = (
            f"Apply this plan?\n\n{plan.changes()} rows go from {stores} store(s) "
            f"({', '.join(f'{a} {n}' for a, n in plan.by_action.items() if a != 'keep')}).\n"
            "Transcripts are archived as the CLI's apply does."
        )
        if not await self.app.push_screen_wait(ConfirmScreen(question)):
            self.say("Not applied.")
            return
        client = self.tui.client
        if client is None:
            self.say("The daemon is away: nothing applied.")
            return
        progress = self.query_one("#progress", ProgressBar)
        progress.update(total=None)
        progress.add_class("shown")
        try:
            self.say("Checking the plan still holds…")
            fresh = await dry_run(client, plan.flags)
            if fresh.fingerprint() != plan.fingerprint():
                self.say(
                    "The store changed since this preview; nothing was applied. "
                    f"Now: {_difference(plan, fresh)}. Press r for a fresh preview."
                )
                return
            self.say("Applying…")
            result = await run_cleanup(client, plan.flags, dry_run=False)
        except ConnectionLostError:
            self.say(
                "The connection dropped during the apply: it may or may not have happened. "
                "Press r to see the store as it is now."
            )
            return
        except SessiondError as exc:
            self.say(f"The daemon refused the apply: {exc}")
            return
        finally:
            progress.remove_class("shown")
        self.applied = True
        self.redraw_title()
        self.say(_applied_text(result))


def _difference(old: PlanView, new: PlanView) -> str:
    actions = sorted(set(old.by_action) | set(new.by_action))
    changed = [
        f"{a} {old.by_action.get(a, 0)}→{new.by_action.get(a, 0)}"
        for a in actions
        if old.by_action.get(a, 0) != new.by_action.get(a, 0)
    ]
    return ", ".join(changed) or "the same counts, other rows"


def _applied_text(result: CleanupSummary | AllAgentsCleanup) -> str:
    stores = result.stores if isinstance(result, AllAgentsCleanup) else [result]
    parts = []
    for store in stores:
        count = store.applied_count if isinstance(store.applied_count, int) else store.after_count
        parts.append(f"{store.agent_id}: {store.before_count} → {count} rows")
    return "Applied. " + "; ".join(parts) + ". r plans again."


class ConfirmScreen(ModalScreen[bool]):
    """A yes/no question; y or Enter confirms, n or Escape declines."""

    DEFAULT_CSS = """
    ConfirmScreen { align: center middle; }
    ConfirmScreen > Vertical {
        width: 64; height: auto; padding: 1 2;
        border: thick $warning; background: $surface;
    }
    ConfirmScreen #keys { margin-top: 1; color: $text-muted; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("y,enter", "answer(True)", "Yes"),
        Binding("n,escape", "answer(False)", "No"),
    ]

    def __init__(self, question: str) -> None:
        super().__init__()
        self.question = question

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static(self.question, markup=False)
            yield Static("y / Enter: yes    n / Esc: no", id="keys")

    def action_answer(self, yes: bool) -> None:
        self.dismiss(yes)


# ------------------------------------------------------------------------------------- undo


class UndoScreen(TuiScreen):
    """The cleanup journal, once the daemon keeps one (`sessions.cleanups`)."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("r", "refresh", "Refresh"),
        Binding("1", "app.screen('sessions')", "Sessions"),
        Binding("3", "app.screen('cleanup')", "Cleanup"),
    ]

    def compose(self) -> ComposeResult:
        yield TitleBar("Undo · the cleanup journal")
        yield Static(id="body", markup=False)
        yield from self.chrome()

    def on_mount(self) -> None:
        self.action_refresh()

    @work(exclusive=True, group="undo")
    async def action_refresh(self) -> None:
        body = self.query_one("#body", Static)
        client = self.tui.client
        if client is None:
            body.update("The daemon is away.")
            return
        try:
            await client.call("sessions.cleanups", {}, mutates=False)
        except MethodNotFoundError:
            body.update(
                "This daemon keeps no cleanup journal (it has no sessions.cleanups method), "
                "so there is nothing to undo here."
            )
            return
        except SessiondError as exc:
            body.update(str(exc))
            return
        body.update("The journal is here, but this TUI cannot show it yet.")
