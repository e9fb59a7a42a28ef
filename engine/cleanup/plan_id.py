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
from dataclasses import dataclass

import msgspec
from sessiond.engine.cleanup.plan import Action, StorePlan
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


@dataclass(frozen=True, slots=True)
class PlanId:
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


def _decisions(plan: StorePlan) -> list[object]:
    """Names, not paths: the same state dir seen from elsewhere (a copy, another mount) plans
    the same."""
    removed = sorted((key, plan.actions[key].value) for key in plan.removed_keys)
    return [
        plan.target.agent_id,
        os.path.basename(plan.target.store_path),
        plan.mode,
        removed,
        sorted((key, os.path.basename(path)) for key, path in plan.repairs.items()),
        sorted(os.path.basename(source) for source, _ in plan.file_ops.archives),
        sorted((os.path.basename(r.path), r.stage) for r in plan.file_ops.removals),
    ]


def plan_counts(plans: Sequence[StorePlan]) -> tuple[int, ...]:
    counter: Counter[str] = Counter()
    for plan in plans:
        counter.update(plan.actions[key].value for key in plan.removed_keys)
        counter["repair"] += len(plan.repairs)
        counter["archive"] += len(plan.file_ops.archives)
        counter["delete-file"] += len(plan.file_ops.removals)
    return tuple(counter[name] for name in COUNTED)


def plan_id(plans: Sequence[StorePlan], generation: int) -> PlanId:
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
