"""A plan as a report: the summaries (dry run and applied) and the dry-run table's rows.

Each row's model and flags are decided where the config is (the daemon or the local CLI) and
sent as text, so a client renders a table without knowing agent models or the flag order.
"""

from __future__ import annotations

from typing import Any

from sessiond.engine.cleanup.plan import (
    AppliedFigures,
    StorePlan,
    action_of,
    display_order,
    would_mutate,
)
from sessiond.engine.config import SessionsConfig
from sessiond.engine.journal import deletion
from sessiond.engine.js_semantics import js_string, js_trim, js_truthy
from sessiond.engine.store import EntryView
from sessiond.protocol.cleanup import (
    AllAgentsCleanup,
    CleanupActionRow,
    CleanupResult,
    CleanupSummary,
    DiskBudget,
    UnreferencedArtifacts,
)
from sessiond.protocol.undo import FileDeletion

DEFAULT_MODEL = "gpt-5.5"
DEFAULT_PROVIDER = "openai"


def _text(value: Any) -> str | None:
    if not isinstance(value, str):
        return None
    return js_trim(value) or None


def _primary(model: Any) -> str | None:
    if isinstance(model, str):
        return _text(model)
    if isinstance(model, dict):
        return _text(model.get("primary"))
    return None


def _parse_model_ref(raw: str, default_provider: str) -> tuple[str, str]:
    trimmed = js_trim(raw)
    if not trimmed:
        return default_provider, DEFAULT_MODEL
    slash = trimmed.find("/")
    if slash <= 0 or slash == len(trimmed) - 1:
        return default_provider, trimmed
    provider = js_trim(trimmed[:slash]) or default_provider
    return provider, js_trim(trimmed[slash + 1 :]) or DEFAULT_MODEL


def display_model(config: SessionsConfig, key: str, fields: EntryView) -> str:
    agent_part = key.split(":")[1] if key.startswith("agent:") else None
    agent_model = None
    if agent_part:
        agent = next((a for a in config.agents if a.id == agent_part), None)
        agent_model = _primary(agent.model) if agent else None
    default_provider, default_model = _parse_model_ref(
        agent_model or _primary(config.default_model) or DEFAULT_MODEL, DEFAULT_PROVIDER
    )
    provider_override = _text(fields.provider_override)
    model_override = _text(fields.model_override)
    if provider_override and model_override:
        prefix = f"{provider_override.lower()}/"
        if model_override.lower().startswith(prefix):
            model_override = js_trim(model_override[len(provider_override) + 1 :]) or model_override
    if model_override:
        return _parse_model_ref(model_override, provider_override or default_provider)[1]
    model = fields.model if isinstance(fields.model, str) else None
    if model:
        provider = fields.model_provider if isinstance(fields.model_provider, str) else None
        return _parse_model_ref(model, provider or default_provider)[1]
    return default_model


def display_flags(fields: EntryView) -> str:
    parts = [
        ("think:", fields.thinking_level),
        ("verbose:", fields.verbose_level),
        ("trace:", fields.trace_level),
        ("reasoning:", fields.reasoning_level),
        ("elev:", fields.elevated_level),
        ("usage:", fields.response_usage),
        ("activation:", fields.group_activation),
    ]
    out = [f"{label}{js_string(value)}" for label, value in parts if js_truthy(value)]
    if js_truthy(fields.system_sent):
        out.append("system")
    if js_truthy(fields.aborted_last_run):
        out.append("aborted")
    if js_truthy(fields.session_id):
        out.append(f"id:{js_string(fields.session_id)}")
    return " ".join(out)


def action_rows(plan: StorePlan, config: SessionsConfig) -> list[CleanupActionRow]:
    """Every row of the store before cleanup, newest first, with what the plan does to it."""
    rows: list[CleanupActionRow] = []
    for key in display_order(list(plan.before_keys), plan.views):
        fields = plan.views[key].fields
        updated = fields.updated_at
        rows.append(
            CleanupActionRow(
                action=action_of(plan, key).value,
                key=key,
                updated_at=updated if isinstance(updated, int | float | str) else None,
                model=display_model(config, key, fields),
                flags=display_flags(fields),
            )
        )
    return rows


def preview_summary(
    plan: StorePlan, config: SessionsConfig | None = None, include_actions: bool = False
) -> CleanupSummary:
    """The dry-run report; with `include_actions` (and the config) the table's rows too."""
    summary = _summary(
        plan,
        dry_run=True,
        after_count=plan.after_count,
        pruned=plan.pruned,
        capped=plan.capped,
        unreferenced=plan.unreferenced,
        budget=plan.disk_budget,
    )
    if include_actions and config is not None:
        summary.actions = action_rows(plan, config)
    summary.deletions = deletions(plan)
    return summary


def deletions(plan: StorePlan) -> list[FileDeletion]:
    """Files the apply deletes outright (no archive kept), in the order it deletes them."""
    out: list[FileDeletion] = []
    for removal in plan.file_ops.removals:
        gone = deletion(removal.path, removal.size, removal.stage)
        out.append(FileDeletion(removal.path, gone.size, gone.reason, gone.archive))
    return out


def applied_summary(
    plan: StorePlan, applied_count: int, applied: AppliedFigures | None = None
) -> CleanupSummary:
    """The applied report; `applied` overrides the plan's figures after reconciliation."""
    figures = applied or plan.applied
    summary = _summary(
        plan,
        dry_run=False,
        after_count=figures.after_count,
        pruned=figures.pruned,
        capped=figures.capped,
        unreferenced=figures.unreferenced,
        budget=figures.disk_budget,
    )
    summary.applied = True
    summary.applied_count = applied_count
    return summary


def _summary(
    plan: StorePlan,
    *,
    dry_run: bool,
    after_count: int,
    pruned: int,
    capped: int,
    unreferenced: UnreferencedArtifacts,
    budget: DiskBudget | None,
) -> CleanupSummary:
    return CleanupSummary(
        agent_id=plan.target.agent_id,
        store_path=plan.target.store_path,
        mode=plan.mode,
        dry_run=dry_run,
        before_count=len(plan.before_keys),
        after_count=after_count,
        missing=plan.missing,
        dm_scope_retired=plan.dm_scope_retired,
        pruned=pruned,
        capped=capped,
        unreferenced_artifacts=unreferenced,
        disk_budget=budget,
        would_mutate=would_mutate(
            plan.missing, plan.dm_scope_retired, pruned, capped, unreferenced, budget
        ),
    )


def combine(
    summaries: list[CleanupSummary], mode: str, dry_run: bool, plan_id: str | None = None
) -> CleanupResult:
    """One target prints its bare summary; several print the allAgents envelope. A dry run's
    `planId` goes on whichever is printed."""
    if len(summaries) == 1:
        if plan_id is not None:
            summaries[0].plan_id = plan_id
        return summaries[0]
    envelope = AllAgentsCleanup(
        all_agents=True,
        mode="enforce" if mode == "enforce" else "warn",
        dry_run=dry_run,
        stores=summaries,
    )
    if plan_id is not None:
        envelope.plan_id = plan_id
    return envelope
