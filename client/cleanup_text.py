"""The text form of `sessions cleanup`: the dry-run plan table and the applied summary lines.

Byte for byte what OpenClaw 2026.5.12 prints on a non-TTY stdout, so operators' scripts that
read it keep working.
"""

from __future__ import annotations

import math
from typing import Any

from sessiond.daemon.cleanup import StorePlan, action_of, display_order
from sessiond.daemon.config import SessionsConfig
from sessiond.daemon.js_semantics import (
    js_round,
    js_string,
    js_trim,
    js_truthy,
    pad_end,
    to_number,
    utf16_len,
    utf16_slice,
)
from sessiond.daemon.store import EntryView
from sessiond.protocol.cleanup import CleanupSummary

DEFAULT_MODEL = "gpt-5.5"
DEFAULT_PROVIDER = "openai"
ACTION_PAD = 16


def format_time_ago(duration_ms: float) -> str:
    if not math.isfinite(duration_ms) or duration_ms < 0:
        return "unknown"
    seconds = js_round(duration_ms / 1000)
    minutes = js_round(seconds / 60)
    if minutes < 1:
        return "just now"
    if minutes < 60:
        return f"{minutes}m ago"
    hours = js_round(minutes / 60)
    if hours < 48:
        return f"{hours}h ago"
    return f"{js_round(hours / 24)}d ago"


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


def _key_cell(key: str) -> str:
    if utf16_len(key) <= 26:
        return pad_end(key, 26)
    return pad_end(f"{utf16_slice(key, 0, 16)}...{utf16_slice(key, -6)}", 26)


def _flags(fields: EntryView) -> str:
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


def render_dry_run(
    plan: StorePlan,
    summary: CleanupSummary,
    config: SessionsConfig,
    now_ms: int,
    agent_header: bool,
) -> list[str]:
    lines: list[str] = []
    if agent_header:
        lines.append(f"Agent: {summary.agent_id}")
    lines += [
        f"Session store: {summary.store_path}",
        f"Maintenance mode: {summary.mode}",
        f"Entries: {summary.before_count} -> {summary.after_count} "
        f"(remove {summary.before_count - summary.after_count})",
        f"Would prune missing transcripts: {summary.missing}",
        f"Would retire stale direct DM sessions: {summary.dm_scope_retired}",
        f"Would prune stale: {summary.pruned}",
        f"Would cap overflow: {summary.capped}",
    ]
    if summary.unreferenced_artifacts.scanned_files:
        lines.append(
            f"Would prune unreferenced artifacts: {summary.unreferenced_artifacts.removed_files}"
        )
    budget = summary.disk_budget
    if budget is not None:
        lines.append(
            f"Would enforce disk budget: {budget.total_bytes_before} -> {budget.total_bytes_after}"
            f" bytes (files {budget.removed_files}, entries {budget.removed_entries})"
        )
    if not plan.before_keys:
        return lines
    lines += ["", "Planned session actions:"]
    lines.append(
        " ".join(
            [
                pad_end("Action", ACTION_PAD),
                pad_end("Key", 26),
                pad_end("Age", 9),
                pad_end("Model", 14),
                "Flags",
            ]
        )
    )
    for key in display_order(list(plan.before_keys), plan.views):
        fields = plan.views[key].fields
        updated = fields.updated_at
        age = format_time_ago(now_ms - to_number(updated)) if js_truthy(updated) else "unknown"
        cells = [
            pad_end(action_of(plan, key).value, ACTION_PAD),
            _key_cell(key),
            pad_end(age, 9),
            pad_end(display_model(config, key, fields), 14),
            _flags(fields),
        ]
        lines.append(" ".join(cells).rstrip(" \t\n\r\v\f"))
    return lines


def render_applied(summaries: list[CleanupSummary]) -> list[str]:
    lines: list[str] = []
    for index, summary in enumerate(summaries):
        if index > 0:
            lines.append("")
        if len(summaries) > 1:
            lines.append(f"Agent: {summary.agent_id}")
        lines.append(f"Session store: {summary.store_path}")
        count = summary.applied_count if isinstance(summary.applied_count, int) else 0
        lines.append(f"Applied maintenance. Current entries: {count}")
        if summary.unreferenced_artifacts.removed_files:
            lines.append(
                f"Pruned unreferenced artifacts: {summary.unreferenced_artifacts.removed_files}"
            )
    return lines
