"""A cleanup dry run as the Plan screen shows it: per-store stage counts, actions, deletions.

Built from the `sessions.cleanup` result alone (the daemon decides and labels every action), so
the counts on screen are the numbers `sessiond sessions cleanup --dry-run --json` prints. The
result's `planId` is what an apply is bound to; `deletions` are the files the apply would delete
outright (expired or over-budget archives among them), which no restore brings back.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, replace
from typing import Any

import msgspec
from sessiond.protocol.cleanup import AllAgentsCleanup, CleanupActionRow, CleanupSummary
from sessiond.protocol.undo import FileDeletion

# Every action the daemon labels, in the order the legend lists them, with the colour each is
# drawn in (a widgets.PALETTE name: one shade for light themes, one for dark).
ACTION_COLOURS: dict[str, str] = {
    "prune-missing": "red",
    "retire-dm-scope": "orange",
    "prune-stale": "magenta",
    "cap-overflow": "cyan",
    "evict-budget": "blue",
    "keep": "green",
}

# (label, field of CleanupSummary or a dotted path into it): the per-stage counts.
STAGES: tuple[tuple[str, str], ...] = (
    ("rows before", "beforeCount"),
    ("rows after", "afterCount"),
    ("missing transcript", "missing"),
    ("stale direct DM", "dmScopeRetired"),
    ("stale (pruneAfter)", "pruned"),
    ("over maxEntries", "capped"),
    ("unreferenced files", "unreferencedArtifacts.removedFiles"),
    ("budget: files", "diskBudget.removedFiles"),
    ("budget: rows", "diskBudget.removedEntries"),
)

DELETION_COLOURS: dict[str, str] = {
    "retention": "orange",
    "budget": "blue",
    "sweep": "grey",
    "sidecar": "magenta",
}
"""The colour of each reason a file is deleted outright (a widgets.PALETTE name)."""


@dataclass(frozen=True, slots=True)
class CleanupFlags:
    """The CLI's cleanup flags, as the Cleanup screen sets them."""

    agent: str | None = None
    all_agents: bool = True
    enforce: bool = False
    fix_missing: bool = False
    fix_dm_scope: bool = False
    active_key: str | None = None

    def switched(self, name: str, on: bool) -> CleanupFlags:
        """These flags with one switch (`enforce`, `fix_missing`, `fix_dm_scope`) set to `on`."""
        if name == "enforce":
            return replace(self, enforce=on)
        if name == "fix_missing":
            return replace(self, fix_missing=on)
        if name == "fix_dm_scope":
            return replace(self, fix_dm_scope=on)
        raise ValueError(f"no switch {name!r}")

    def argv(self) -> list[str]:
        """The same choice as `sessiond sessions cleanup` flags, shown so it can be repeated."""
        out = ["--all-agents"] if self.all_agents else []
        if self.agent and not self.all_agents:
            out += ["--agent", self.agent]
        out += [flag for flag, on in self._switches() if on]
        if self.active_key:
            out += ["--active-key", self.active_key]
        return out

    def _switches(self) -> list[tuple[str, bool]]:
        return [
            ("--enforce", self.enforce),
            ("--fix-missing", self.fix_missing),
            ("--fix-dm-scope", self.fix_dm_scope),
        ]


@dataclass(frozen=True, slots=True)
class ActionRow:
    agent: str
    row: CleanupActionRow


@dataclass(frozen=True, slots=True)
class Deletion:
    agent: str
    file: FileDeletion


def _dig(value: Any, path: str) -> int | None:
    for part in path.split("."):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return value if isinstance(value, int) and not isinstance(value, bool) else None


class PlanView:
    """One dry run: its stores, each stage's count per store, and every action row."""

    def __init__(self, result: CleanupSummary | AllAgentsCleanup, flags: CleanupFlags) -> None:
        self.result = result
        self.flags = flags
        self.stores = result.stores if isinstance(result, AllAgentsCleanup) else [result]
        self.mode = result.mode
        self.actions: list[ActionRow] = [
            ActionRow(store.agent_id, row)
            for store in self.stores
            for row in (store.actions if isinstance(store.actions, list) else [])
        ]
        self.by_action = Counter(item.row.action for item in self.actions)
        self.deletions: list[Deletion] = [
            Deletion(store.agent_id, gone)
            for store in self.stores
            for gone in (store.deletions if isinstance(store.deletions, list) else [])
        ]
        self.plan_id = result.plan_id if isinstance(result.plan_id, str) else None
        """The id an apply passes so the daemon applies this plan or nothing (None: a daemon
        without plan ids; the apply then compares a fresh dry run's `fingerprint`)."""
        self._plain = [msgspec.to_builtins(store) for store in self.stores]

    def count(self, store: int, path: str) -> int | None:
        """A stage's count for one store; None where the result has no such figure."""
        return _dig(self._plain[store], path)

    def deleted(self, store: int) -> int:
        """Files one store's apply would delete outright."""
        agent = self.stores[store].agent_id
        return sum(1 for d in self.deletions if d.agent == agent)

    def changes(self) -> int:
        """Rows the apply would remove, over every store."""
        return sum(s.before_count - s.after_count for s in self.stores)

    def would_mutate(self) -> bool:
        return any(store.would_mutate for store in self.stores)

    def fingerprint(self) -> tuple[object, ...]:
        """What must hold for an apply to do what this plan showed: every action, every count."""
        actions = sorted((item.agent, item.row.key, item.row.action) for item in self.actions)
        counts = [
            (store.agent_id, *(self.count(i, path) for _label, path in STAGES))
            for i, store in enumerate(self.stores)
        ]
        return (tuple(actions), tuple(counts))
