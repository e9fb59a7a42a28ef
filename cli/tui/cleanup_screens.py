"""The Cleanup screen (the CLI's flags) and the Plan screen (a dry run, then its apply).

An apply is bound to the plan on screen by its `planId`: the daemon applies exactly that plan or
nothing (StalePlanError, with what changed), and the screen then offers a fresh preview. Against
a daemon without plan ids, the screen plans again first and applies only if nothing moved.
"""

from __future__ import annotations

import itertools
import os
import time
from collections import Counter
from dataclasses import replace
from typing import ClassVar

from rich.text import Text
from sessiond.cli.tui.model import format_age
from sessiond.cli.tui.plan import (
    ACTION_COLOURS,
    DELETION_COLOURS,
    STAGES,
    ActionRow,
    CleanupFlags,
    PlanView,
)
from sessiond.cli.tui.screens import TitleBar, TuiScreen
from sessiond.cli.tui.widgets import Column, VirtualTable, palette_style
from sessiond.client import ConnectionLostError, SessiondClient, SessiondError, StalePlanError
from sessiond.protocol.cleanup import AllAgentsCleanup, CleanupSummary
from sessiond.protocol.undo import ProgressParams
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
    client: SessiondClient,
    flags: CleanupFlags,
    *,
    dry_run: bool,
    plan_id: str | None = None,
    token: str | None = None,
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
        plan_id=plan_id,
        progress_token=token,
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


def _age(now: float, updated: object) -> str:
    number = float(updated) if isinstance(updated, int | float) else None
    return format_age(now, number)


class PlanSource:
    """The plan's rows as table cells: its actions (keeps hidden or not), or its deletions."""

    def __init__(self, plan: PlanView) -> None:
        self.plan = plan
        self.now = time.time() * 1000
        self.show_keep = False
        self.show_files = False
        self.actions: list[ActionRow] = []
        self.refilter()

    def refilter(self) -> None:
        self.actions = [a for a in self.plan.actions if self.show_keep or a.row.action != "keep"]

    def columns(self) -> list[Column]:
        return DELETION_COLUMNS if self.show_files else ACTION_COLUMNS

    def __len__(self) -> int:
        return len(self.plan.deletions) if self.show_files else len(self.actions)

    def cells(self, index: int) -> list[str]:
        if self.show_files:
            gone = self.plan.deletions[index]
            kept = "archive" if gone.file.archive else ""
            name = os.path.basename(gone.file.path)
            return [gone.file.reason, kept, f"{gone.file.bytes:,}", gone.agent, name]
        item = self.actions[index]
        row = item.row
        return [
            row.action,
            item.agent,
            row.key,
            _age(self.now, row.updated_at),
            row.model,
            row.flags,
        ]

    def colour(self, index: int, column: int) -> str | None:
        if column != 0:
            return None
        if self.show_files:
            return DELETION_COLOURS.get(self.plan.deletions[index].file.reason)
        return ACTION_COLOURS.get(self.actions[index].row.action)


ACTION_COLUMNS = [
    Column("Action", 15),
    Column("Agent", 6, drop=1),
    Column("Key", 16, flex=2, middle=True),
    Column("Age", 4, right=True),
    Column("Model", 10, drop=2),
    Column("Flags", 8, flex=1, drop=3),
]

DELETION_COLUMNS = [
    Column("Reason", 9),
    Column("Archive", 7),
    Column("Bytes", 9, right=True),
    Column("Agent", 6, drop=1),
    Column("File deleted outright", 16, flex=1, middle=True),
]

COUNT_HEADERS = (
    "Agent",
    "Before",
    "After",
    "Missing",
    "DM",
    "Stale",
    "Cap",
    "Files",
    "Budget",
    "Deleted",
)
"""The counts table's columns: the stages of STAGES and the files deleted outright."""


def count_cells(plan: PlanView) -> list[list[str]]:
    """One row per store and a total: the same figures as the CLI's `--dry-run --json`."""
    rows: list[list[str]] = []
    totals: list[int | None] = [None] * len(STAGES)
    deleted = 0
    for i, store in enumerate(plan.stores):
        values = [plan.count(i, path) for _label, path in STAGES]
        for n, value in enumerate(values):
            if value is not None:
                totals[n] = (totals[n] or 0) + value
        deleted += plan.deleted(i)
        rows.append([store.agent_id, *_stage_cells(values), str(plan.deleted(i))])
    if len(plan.stores) > 1:
        rows.append(["total", *_stage_cells(totals), str(deleted)])
    return rows


def _stage_cells(values: list[int | None]) -> list[str]:
    """Eight cells: before, after, five stages, and the budget as files/rows."""
    shown = ["-" if v is None else str(v) for v in values]
    budget = "-" if values[7] is None else f"{shown[7]}/{shown[8]}"
    return [*shown[:7], budget]


class ApplyProgress(Static):
    """`$/progress` of the running apply: a bar, and the stage with its done/total."""

    DEFAULT_CSS = """
    ApplyProgress { height: 1; padding: 0 1; display: none; layout: horizontal; }
    ApplyProgress.shown { display: block; }
    ApplyProgress ProgressBar { width: 40; }
    ApplyProgress #stage { width: 1fr; margin-left: 2; }
    """

    def compose(self) -> ComposeResult:
        yield ProgressBar(show_eta=False, show_percentage=True)
        yield Static(id="stage", markup=False)

    def begin(self, title: str) -> None:
        self.query_one(ProgressBar).update(total=None, progress=0)
        self.query_one("#stage", Static).update(title)
        self.add_class("shown")

    def step(self, step: ProgressParams) -> None:
        value = step.value
        bar = self.query_one(ProgressBar)
        if value.total:
            bar.update(total=value.total, progress=value.done or 0)
        parts = [p for p in (value.stage, value.title, value.message) if p]
        if value.total:
            parts.append(f"{value.done or 0:,}/{value.total:,}")
        if parts:
            self.query_one("#stage", Static).update(" ".join(parts))

    def end(self) -> None:
        self.remove_class("shown")


_PROGRESS_TOKENS = itertools.count(1)


def progress_token() -> str:
    return f"tui-{os.getpid()}-{next(_PROGRESS_TOKENS)}"


class PlanScreen(TuiScreen):
    """One dry run: per-stage counts, the actions in colour, the deletions, and its apply."""

    DEFAULT_CSS = """
    PlanScreen #counts { height: auto; max-height: 8; }
    PlanScreen #legend { height: 1; padding: 0 1; }
    PlanScreen #message { height: auto; max-height: 3; padding: 0 1; color: $text-warning; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("a", "apply", "Apply"),
        Binding("r", "refresh", "Re-plan"),
        Binding("f", "files", "Files/rows"),
        Binding("k", "keeps", "Keeps"),
        Binding("escape", "app.pop_screen", "Back"),
    ]

    def __init__(self, plan: PlanView) -> None:
        super().__init__()
        self.plan = plan
        self.applied = False
        self.source = PlanSource(plan)

    def compose(self) -> ComposeResult:
        yield TitleBar(id="title")
        yield DataTable(id="counts", cursor_type="none", zebra_stripes=True)
        yield Static(id="legend")
        yield Static(id="message", markup=False)
        yield ApplyProgress(id="progress")
        yield VirtualTable(ACTION_COLUMNS, self.source, empty="no row changes", id="actions")
        yield from self.chrome()

    @property
    def table(self) -> VirtualTable:
        return self.query_one("#actions", VirtualTable)

    def on_mount(self) -> None:
        self.query_one("#counts", DataTable).add_columns(*COUNT_HEADERS)
        self.show_plan(self.plan)
        self.table.focus()

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
        self.table.reload(cursor=0)
        self.redraw_title()
        if plan.would_mutate():
            gone = len(plan.deletions)
            files = f" · f: the {gone} files deleted outright" if gone else ""
            self.say(f"a: apply (asks first) · r: plan again{files}")
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
        colours = DELETION_COLOURS if self.source.show_files else ACTION_COLOURS
        counts: Counter[str] = self.plan.by_action
        if self.source.show_files:
            counts = Counter(str(d.file.reason) for d in self.plan.deletions)
        for name, colour in colours.items():
            if counts.get(name, 0):
                text.append("■ ", style=palette_style(colour, dark))
                text.append(f"{name} {counts[name]}  ")
        if self.source.show_files:
            archives = sum(1 for d in self.plan.deletions if d.file.archive)
            text.append(f"({archives} archives)", style="dim")
        return text or Text("nothing in scope", style="dim")

    def say(self, message: str) -> None:
        self.query_one("#message", Static).update(message)

    def action_keeps(self) -> None:
        self.source.show_keep = not self.source.show_keep
        self.source.refilter()
        self.table.reload(cursor=0)

    def action_files(self) -> None:
        self.source.show_files = not self.source.show_files
        self.table.columns = self.source.columns()
        self.table.empty = "no files deleted outright" if self.source.show_files else "no rows"
        self.query_one("#legend", Static).update(self._legend())
        self.table.reload(cursor=0)

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
        if not await self.app.push_screen_wait(ConfirmScreen(_question(plan))):
            self.say("Not applied.")
            return
        client = self.tui.client
        if client is None:
            self.say("The daemon is away: nothing applied.")
            return
        progress = self.query_one("#progress", ApplyProgress)
        progress.begin("applying")
        token = progress_token()
        stop_hearing = client.on_progress(token, progress.step)
        try:
            if plan.plan_id is None and not await self._still_holds(client, plan):
                return
            self.say(f"Applying {plan.plan_id or 'the plan'}…")
            result = await run_cleanup(
                client, plan.flags, dry_run=False, plan_id=plan.plan_id, token=token
            )
        except StalePlanError as exc:
            self.say(
                "The store changed since this preview; nothing was applied. "
                f"Now: {_stale_counts(exc.data)}. Press r for a fresh preview."
            )
            return
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
            stop_hearing()
            progress.end()
        self.applied = True
        self.redraw_title()
        self.say(_applied_text(result))

    async def _still_holds(self, client: SessiondClient, plan: PlanView) -> bool:
        """A daemon without plan ids: plan again and apply only if nothing moved."""
        self.say("Checking the plan still holds…")
        fresh = await dry_run(client, plan.flags)
        if fresh.fingerprint() == plan.fingerprint():
            return True
        self.say(
            "The store changed since this preview; nothing was applied. "
            f"Now: {_difference(plan, fresh)}. Press r for a fresh preview."
        )
        return False


def _question(plan: PlanView) -> str:
    actions = ", ".join(f"{a} {n}" for a, n in plan.by_action.items() if a != "keep")
    lines = [
        f"Apply plan {plan.plan_id}?" if plan.plan_id else "Apply this plan?",
        "",
        f"{plan.changes()} rows go from {len(plan.stores)} store(s) ({actions}).",
        "Transcripts are archived as the CLI's apply does; the journal can put rows back.",
    ]
    if plan.deletions:
        archives = sum(1 for d in plan.deletions if d.file.archive)
        lines.append(
            f"{len(plan.deletions)} files are deleted outright ({archives} of them archives): "
            "no restore brings those back."
        )
    return "\n".join(lines)


def _stale_counts(data: object) -> str:
    actions = data.get("actions") if isinstance(data, dict) else None
    if not isinstance(actions, dict) or not actions:
        return "other rows, the same counts"
    parts = []
    for name, change in actions.items():
        if isinstance(change, dict):
            parts.append(f"{name} {change.get('previewed')}→{change.get('now')}")
    return ", ".join(parts)


def _difference(old: PlanView, new: PlanView) -> str:
    actions = sorted(set(old.by_action) | set(new.by_action))
    changed = [
        f"{a} {old.by_action.get(a, 0)}→{new.by_action.get(a, 0)}"
        for a in actions
        if old.by_action.get(a, 0) != new.by_action.get(a, 0)
    ]
    return ", ".join(changed) or "other rows, the same counts"


def _applied_text(result: CleanupSummary | AllAgentsCleanup) -> str:
    stores = result.stores if isinstance(result, AllAgentsCleanup) else [result]
    parts = []
    for store in stores:
        count = store.applied_count if isinstance(store.applied_count, int) else store.after_count
        parts.append(f"{store.agent_id}: {store.before_count} → {count} rows")
    return "Applied. " + "; ".join(parts) + ". 4: undo it from the journal; r plans again."


class ConfirmScreen(ModalScreen[bool]):
    """A yes/no question: only y confirms (Enter does not, so a stray key changes nothing)."""

    DEFAULT_CSS = """
    ConfirmScreen { align: center middle; }
    ConfirmScreen > Vertical {
        width: 70; height: auto; padding: 1 2;
        border: thick $warning; background: $surface;
    }
    ConfirmScreen #keys { margin-top: 1; color: $text-muted; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("y", "answer(True)", "Yes"),
        Binding("n,escape", "answer(False)", "No"),
    ]

    def __init__(self, question: str) -> None:
        super().__init__()
        self.question = question

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static(self.question, markup=False)
            yield Static("y: yes    n / Esc: no", id="keys")

    def action_answer(self, yes: bool) -> None:
        self.dismiss(yes)
