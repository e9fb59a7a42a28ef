"""`planId`: a name for the decisions of a dry run, so an apply can insist on exactly them.

The id is `p1-<generation>-<digest>-<counts>`. The digest hashes the plan's decisions, per
store in order: the agent, the mode, each removed key with its action, each repair, each file
archived (by source: the archive's name carries the apply's clock) and each file deleted with
its stage. Not the clock, not the rows that stay: a patch to a row the plan keeps, or time passing
without moving a row across a cutoff, leaves the id valid. The generation (the stores' change
counters when previewed) and the counts per action ride along, so a refusal can say what
changed without the daemon remembering the preview.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections import Counter
from collections.abc import Sequence

import msgspec
from sessiond.engine.cleanup.plan import Action, StorePlan
from sessiond.engine.cleanup.targets import collector_paused
from sessiond.engine.errors import InvalidParams, StalePlan

COUNTED: tuple[str, ...] = (
    Action.PRUNE_MISSING.value,
    Action.RETIRE_DM_SCOPE.value,
    Action.PRUNE_STALE.value,
    Action.CAP_OVERFLOW.value,
    Action.EVICT_BUDGET.value,
    "repair",
    "archive",
    "delete-file",
)
"""Counts carried in the id, in this order."""

_FORMAT = re.compile(r"^p1-(\d+)-([0-9a-f]{16})-(\d+(?:\.\d+){7})$")


class PlanId(msgspec.Struct, frozen=True):
    generation: int
    digest: str
    counts: tuple[int, ...]

    def __str__(self) -> str:
        return f"p1-{self.generation}-{self.digest}-{'.'.join(map(str, self.counts))}"


def parse_plan_id(text: str) -> PlanId:
    found = _FORMAT.match(text.strip())
    if found is None:
        raise InvalidParams(
            f"not a plan id: {text!r}", {"path": "$.planId", "reason": "not a plan id"}
        )
    return PlanId(
        int(found.group(1)), found.group(2), tuple(int(n) for n in found.group(3).split("."))
    )


def _name(path: str) -> str:
    return path[path.rfind("/") + 1 :]  # `os.path.basename`, without its call per file


_KEPT: dict[object, tuple[bytes, bytes]] = {}
"""The two big parts of a plan's decisions, encoded, by the plan's `memo_key`: the removed
rows and the archives follow from the key alone (see `StorePlan.memo_key`). A few kept."""
KEPT_PLANS = 2


def _decisions(plan: StorePlan) -> list[object]:
    """Names, not paths: the same state dir seen from elsewhere (a copy, another mount) plans
    the same. (An Action encodes as its text.)"""
    key = (plan.memo_key, plan.mode, len(plan.removed_keys), len(plan.file_ops.archives))
    parts = _KEPT.get(key) if plan.memo_key is not None else None
    if parts is None:
        actions = plan.actions
        removed = msgspec.json.encode([(k, actions[k]) for k in sorted(plan.removed_keys)])
        archives = msgspec.json.encode(sorted([_name(s) for s, _ in plan.file_ops.archives]))
        parts = removed, archives
        if plan.memo_key is not None:
            while len(_KEPT) >= KEPT_PLANS:
                _KEPT.pop(next(iter(_KEPT)))
            _KEPT[key] = parts
    return [
        plan.target.agent_id,
        os.path.basename(plan.target.store_path),
        plan.mode,
        msgspec.Raw(parts[0]),
        sorted((key, _name(path)) for key, path in plan.repairs.items()),
        msgspec.Raw(parts[1]),
        sorted((_name(r.path), r.stage) for r in plan.file_ops.removals),
    ]


def plan_counts(plans: Sequence[StorePlan]) -> tuple[int, ...]:
    counter: Counter[str] = Counter()
    for plan in plans:
        counter.update(map(plan.actions.__getitem__, plan.removed_keys))
        counter["repair"] += len(plan.repairs)
        counter["archive"] += len(plan.file_ops.archives)
        counter["delete-file"] += len(plan.file_ops.removals)
    return tuple(counter[name] for name in COUNTED)


def plan_id(plans: Sequence[StorePlan], generation: int) -> PlanId:
    with collector_paused():  # tens of thousands of short-lived pairs on a big plan
        digest = hashlib.sha256(msgspec.json.encode([_decisions(p) for p in plans])).hexdigest()
        return PlanId(generation, digest[:16], plan_counts(plans))


def check_plan_id(wanted: str, plans: Sequence[StorePlan], generation: int) -> PlanId:
    """The current plan's id when it matches `wanted`; else StalePlan with counts per action."""
    expected = parse_plan_id(wanted)
    now = plan_id(plans, generation)
    if now.digest == expected.digest:
        return now
    actions = {
        name: {"previewed": before, "now": after}
        for name, before, after in zip(COUNTED, expected.counts, now.counts, strict=True)
        if before != after
    }
    raise StalePlan(
        "the plan changed since it was previewed; preview again",
        {
            "planId": wanted,
            "currentPlanId": str(now),
            "storeChanged": now.generation != expected.generation,
            "actions": actions,
        },
    )
