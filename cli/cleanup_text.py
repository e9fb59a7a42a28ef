"""The text form of `sessions cleanup`: the dry-run plan table and the applied summary lines.

Byte for byte what OpenClaw 2026.5.12 prints on a non-TTY stdout, so operators' scripts that
read it keep working.
"""

from __future__ import annotations

import math
import os

from sessiond.engine.js_semantics import (
    js_round,
    js_truthy,
    pad_end,
    to_number,
    utf16_len,
    utf16_slice,
)
from sessiond.protocol.cleanup import CleanupSummary

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


def _key_cell(key: str) -> str:
    if utf16_len(key) <= 26:
        return pad_end(key, 26)
    return pad_end(f"{utf16_slice(key, 0, 16)}...{utf16_slice(key, -6)}", 26)


def render_dry_run(summary: CleanupSummary, now_ms: int, agent_header: bool) -> list[str]:
    """The reference's dry-run text for one store; the table comes from `summary.actions`."""
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
    actions = summary.actions if isinstance(summary.actions, list) else []
    if not actions:
        return lines + render_deletions(summary)
    lines += ["", "Planned session actions:"]
    header = [pad_end("Action", ACTION_PAD), pad_end("Key", 26), pad_end("Age", 9)]
    lines.append(" ".join([*header, pad_end("Model", 14), "Flags"]))
    for row in actions:
        updated = row.updated_at
        age = format_time_ago(now_ms - to_number(updated)) if js_truthy(updated) else "unknown"
        cells = [
            pad_end(row.action, ACTION_PAD),
            _key_cell(row.key),
            pad_end(age, 9),
            pad_end(row.model, 14),
            row.flags,
        ]
        lines.append(" ".join(cells).rstrip(" \t\n\r\v\f"))
    return lines + render_deletions(summary)


def render_deletions(summary: CleanupSummary) -> list[str]:
    """Files the apply would delete outright (sessiond's addition; only when there are any)."""
    deletions = summary.deletions if isinstance(summary.deletions, list) else []
    if not deletions:
        return []
    lines = ["", "Files deleted outright (no archive is kept; a restore cannot bring them back):"]
    lines.append(" ".join([pad_end("Reason", 10), pad_end("Bytes", 10), "File"]))
    for gone in deletions:
        cells = [
            pad_end(gone.reason, 10),
            pad_end(str(gone.bytes), 10),
            os.path.basename(gone.path),
        ]
        lines.append(" ".join(cells))
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
