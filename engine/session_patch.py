"""`sessions.patch` and `sessions.reset` as OpenClaw 2026.5.12 applies them to one row, pure.

The daemon hands in the current row (decoded), the params and the clock, and writes what comes
back through the live store. Field names, accepted spellings and error texts are the
reference's. Two rules need a model catalog sessiond does not have: a `model` patch other than
`null` is answered as the reference answers without one (UNAVAILABLE "model catalog
unavailable"), and thinking levels are checked against the default model's list.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Final, Literal

import msgspec
from sessiond.engine.js_semantics import js_trim, utf16_len
from sessiond.engine.session_rows import ModelRef, session_model
from sessiond.protocol.gateway_frames import SessionsPatchParams

__all__ = [
    "PatchRefused",
    "apply_patch",
    "reset_entry",
]

THINKING_LEVELS_TEXT: Final = "off|minimal|low|medium|high|xhigh"
"""The levels of the reference's default model (openai/gpt-5.5), as its errors list them."""
LABEL_MAX: Final = 512


class PatchRefused(Exception):
    """The patch is refused; `code` is the gateway error code, `message` the reference's text."""

    def __init__(
        self, message: str, code: Literal["INVALID_REQUEST", "UNAVAILABLE"] = "INVALID_REQUEST"
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


def _lower(value: Any) -> str | None:
    if not isinstance(value, str):
        return None
    text = js_trim(value)
    return text.lower() if text else None


def normalize_think_level(raw: Any) -> str | None:
    key = _lower(raw)
    if not key:
        return None
    collapsed = "".join(ch for ch in key if ch not in " \t\n\r_-")
    if collapsed in ("adaptive", "auto"):
        return "adaptive"
    if collapsed == "max":
        return "max"
    if collapsed in ("xhigh", "extrahigh"):
        return "xhigh"
    table = {
        "off": "off",
        "on": "low",
        "enable": "low",
        "enabled": "low",
        "min": "minimal",
        "minimal": "minimal",
        "low": "low",
        "thinkhard": "low",
        "think-hard": "low",
        "think_hard": "low",
        "mid": "medium",
        "med": "medium",
        "medium": "medium",
        "thinkharder": "medium",
        "think-harder": "medium",
        "harder": "medium",
        "high": "high",
        "ultra": "high",
        "ultrathink": "high",
        "thinkhardest": "high",
        "highest": "high",
        "think": "minimal",
    }
    return table.get(key)


def _fast_mode(raw: Any) -> bool | None:
    if isinstance(raw, bool):
        return raw
    key = _lower(raw)
    if key in ("off", "false", "no", "0", "disable", "disabled", "normal"):
        return False
    if key in ("on", "true", "yes", "1", "enable", "enabled", "fast"):
        return True
    return None


def _one_of(raw: Any, table: Mapping[str, tuple[str, ...]]) -> str | None:
    key = _lower(raw)
    if not key:
        return None
    return next((value for value, spellings in table.items() if key in spellings), None)


_VERBOSE = {"off": ("off", "false", "no", "0"), "full": ("full", "all", "everything"),
            "on": ("on", "minimal", "true", "yes", "1")}  # fmt: skip
_TRACE = {"off": ("off", "false", "no", "0"), "on": ("on", "true", "yes", "1"),
          "raw": ("raw", "unfiltered")}  # fmt: skip
_REASONING = {
    "off": ("off", "false", "no", "0", "hide", "hidden", "disable", "disabled"),
    "on": ("on", "true", "yes", "1", "show", "visible", "enable", "enabled"),
    "stream": ("stream", "streaming", "draft", "live"),
}
_USAGE = {
    "off": ("off", "false", "no", "0", "disable", "disabled"),
    "tokens": ("on", "true", "yes", "1", "enable", "enabled", "tokens", "token", "tok",
               "minimal", "min"),
    "full": ("full", "session"),
}  # fmt: skip
_ELEVATED = {
    "off": ("off", "false", "no", "0"),
    "full": ("full", "auto", "auto-approve", "autoapprove"),
    "ask": ("ask", "prompt", "approval", "approve"),
    "on": ("on", "true", "yes", "1"),
}
_EXEC_HOST = {v: (v,) for v in ("auto", "sandbox", "gateway", "node")}
_EXEC_SECURITY = {v: (v,) for v in ("deny", "allowlist", "full")}
_EXEC_ASK = {v: (v,) for v in ("off", "on-miss", "always")}
_SEND_POLICY = {v: (v,) for v in ("allow", "deny")}
_ACTIVATION = {v: (v,) for v in ("mention", "always")}
_SUBAGENT_ROLE = {v: (v,) for v in ("orchestrator", "leaf")}
_CONTROL_SCOPE = {v: (v,) for v in ("children", "none")}


def _spawn_lineage(key: str) -> bool:
    """subagent:* and acp:* sessions (with or without the `agent:<id>:` prefix)."""
    raw = js_trim(key).lower()
    parts = [p for p in raw.split(":") if p]
    rest = ":".join(parts[2:]) if len(parts) >= 3 and parts[0] == "agent" else raw
    return rest.startswith(("subagent:", "acp:"))


def _text(value: Any) -> str | None:
    return (js_trim(value) or None) if isinstance(value, str) else None


def apply_patch(
    existing: Mapping[str, Any] | None,
    patch: SessionsPatchParams,
    *,
    store_key: str,
    label_taken: Callable[[str], bool],
    default_model: ModelRef,
    now_ms: int,
    new_session_id: str,
) -> dict[str, Any]:
    """The patched row (a new dict, the reference's key order), or PatchRefused."""
    nxt: dict[str, Any]
    if existing is not None:
        nxt = dict(existing)
        current = existing.get("updatedAt")
        base = current if isinstance(current, int | float) and not isinstance(current, bool) else 0
        nxt["updatedAt"] = max(base, now_ms)
    else:
        nxt = {"sessionId": new_session_id, "updatedAt": now_ms}
    old = existing or {}
    unset = msgspec.UNSET
    lineage = _spawn_lineage(store_key)

    def lineage_field(name: str, value: Any, what: str, normalize: Callable[[Any], Any]) -> None:
        if value is unset:
            return
        if value is None:
            if old.get(name) or (name == "spawnDepth" and isinstance(old.get(name), int | float)):
                raise PatchRefused(f"{name} cannot be cleared once set")
            return
        normalized = normalize(value)
        if not lineage:
            raise PatchRefused(f"{name} is only supported for subagent:* or acp:* sessions")
        if normalized is None:
            raise PatchRefused(what)
        present = old.get(name)
        set_before = isinstance(present, int | float) if name == "spawnDepth" else bool(present)
        if set_before and present != normalized:
            raise PatchRefused(f"{name} cannot be changed once set")
        nxt[name] = normalized

    if patch.spawned_by is not unset:
        if patch.spawned_by is None:
            if old.get("spawnedBy"):
                raise PatchRefused("spawnedBy cannot be cleared once set")
        else:
            trimmed = _text(patch.spawned_by)
            if not trimmed:
                raise PatchRefused("invalid spawnedBy: empty")
            if not lineage:
                raise PatchRefused("spawnedBy is only supported for subagent:* or acp:* sessions")
            if old.get("spawnedBy") and old.get("spawnedBy") != trimmed:
                raise PatchRefused("spawnedBy cannot be changed once set")
            nxt["spawnedBy"] = trimmed
    if patch.spawned_workspace_dir is not unset:
        if patch.spawned_workspace_dir is None:
            if old.get("spawnedWorkspaceDir"):
                raise PatchRefused("spawnedWorkspaceDir cannot be cleared once set")
        else:
            if not lineage:
                raise PatchRefused(
                    "spawnedWorkspaceDir is only supported for subagent:* or acp:* sessions"
                )
            trimmed = _text(patch.spawned_workspace_dir)
            if not trimmed:
                raise PatchRefused("invalid spawnedWorkspaceDir: empty")
            if old.get("spawnedWorkspaceDir") and old.get("spawnedWorkspaceDir") != trimmed:
                raise PatchRefused("spawnedWorkspaceDir cannot be changed once set")
            nxt["spawnedWorkspaceDir"] = trimmed
    if patch.spawn_depth is not unset:
        if patch.spawn_depth is None:
            if isinstance(old.get("spawnDepth"), int | float):
                raise PatchRefused("spawnDepth cannot be cleared once set")
        else:
            if not lineage:
                raise PatchRefused("spawnDepth is only supported for subagent:* or acp:* sessions")
            if patch.spawn_depth < 0:
                raise PatchRefused("invalid spawnDepth (use an integer >= 0)")
            present = old.get("spawnDepth")
            if isinstance(present, int | float) and present != patch.spawn_depth:
                raise PatchRefused("spawnDepth cannot be changed once set")
            nxt["spawnDepth"] = patch.spawn_depth
    lineage_field(
        "subagentRole",
        patch.subagent_role,
        'invalid subagentRole (use "orchestrator" or "leaf")',
        lambda v: _one_of(v, _SUBAGENT_ROLE),
    )
    lineage_field(
        "subagentControlScope",
        patch.subagent_control_scope,
        'invalid subagentControlScope (use "children" or "none")',
        lambda v: _one_of(v, _CONTROL_SCOPE),
    )
    if patch.label is not unset:
        if patch.label is None:
            nxt.pop("label", None)
        else:
            label = js_trim(patch.label)
            if not label:
                raise PatchRefused("invalid label: empty")
            if utf16_len(label) > LABEL_MAX:
                raise PatchRefused(f"invalid label: too long (max {LABEL_MAX})")
            if label_taken(label):
                raise PatchRefused(f"label already in use: {label}")
            nxt["label"] = label
    if patch.thinking_level is not unset:
        if patch.thinking_level is None:
            nxt.pop("thinkingLevel", None)
        else:
            level = normalize_think_level(patch.thinking_level)
            if not level:
                raise PatchRefused(f"invalid thinkingLevel (use {THINKING_LEVELS_TEXT})")
            nxt["thinkingLevel"] = level
    if patch.fast_mode is not unset:
        if patch.fast_mode is None:
            nxt.pop("fastMode", None)
        else:
            nxt["fastMode"] = patch.fast_mode
    _levels(
        nxt,
        "verboseLevel",
        patch.verbose_level,
        _VERBOSE,
        'invalid verboseLevel (use "on"|"off"|"full")',
    )
    _levels(
        nxt, "traceLevel", patch.trace_level, _TRACE, 'invalid traceLevel (use "on"|"off"|"raw")'
    )
    _simple(
        nxt,
        "reasoningLevel",
        patch.reasoning_level,
        _REASONING,
        'invalid reasoningLevel (use "on"|"off"|"stream")',
    )
    if patch.response_usage is not unset:
        if patch.response_usage is None:
            nxt.pop("responseUsage", None)
        else:
            usage = _one_of(patch.response_usage, _USAGE)
            if not usage:
                raise PatchRefused('invalid responseUsage (use "off"|"tokens"|"full")')
            if usage == "off":
                nxt.pop("responseUsage", None)
            else:
                nxt["responseUsage"] = usage
    _simple(
        nxt,
        "elevatedLevel",
        patch.elevated_level,
        _ELEVATED,
        'invalid elevatedLevel (use "on"|"off"|"ask"|"full")',
    )
    _simple(
        nxt,
        "execHost",
        patch.exec_host,
        _EXEC_HOST,
        'invalid execHost (use "auto"|"sandbox"|"gateway"|"node")',
    )
    _simple(
        nxt,
        "execSecurity",
        patch.exec_security,
        _EXEC_SECURITY,
        'invalid execSecurity (use "deny"|"allowlist"|"full")',
    )
    _simple(
        nxt, "execAsk", patch.exec_ask, _EXEC_ASK, 'invalid execAsk (use "off"|"on-miss"|"always")'
    )
    if patch.exec_node is not unset:
        if patch.exec_node is None:
            nxt.pop("execNode", None)
        else:
            node = _text(patch.exec_node)
            if not node:
                raise PatchRefused("invalid execNode: empty")
            nxt["execNode"] = node
    if patch.model is not unset:
        if patch.model is None:
            _clear_model_override(nxt, default_model, now_ms)
        else:
            if not _text(patch.model):
                raise PatchRefused("invalid model: empty")
            raise PatchRefused("model catalog unavailable", "UNAVAILABLE")
    if nxt.get("thinkingLevel") and normalize_think_level(nxt["thinkingLevel"]) is None:
        del nxt["thinkingLevel"]
    _simple(
        nxt,
        "sendPolicy",
        patch.send_policy,
        _SEND_POLICY,
        'invalid sendPolicy (use "allow"|"deny")',
    )
    _simple(
        nxt,
        "groupActivation",
        patch.group_activation,
        _ACTIVATION,
        'invalid groupActivation (use "mention"|"always")',
    )
    return nxt


def _simple(
    row: dict[str, Any], name: str, value: Any, table: Mapping[str, tuple[str, ...]], error: str
) -> None:
    if value is msgspec.UNSET:
        return
    if value is None:
        row.pop(name, None)
        return
    normalized = _one_of(value, table)
    if not normalized:
        raise PatchRefused(error)
    row[name] = normalized


def _levels(
    row: dict[str, Any], name: str, value: Any, table: Mapping[str, tuple[str, ...]], error: str
) -> None:
    """verbose/trace: a non-string (other than null) is refused like a bad spelling."""
    if value is not msgspec.UNSET and value is not None and not isinstance(value, str):
        raise PatchRefused(error)
    _simple(row, name, value, table, error)


def _clear_model_override(row: dict[str, Any], default: ModelRef, now_ms: int) -> None:
    """`model: null`: back to the agent's default model, as the reference clears an override."""
    updated = selection_updated = False
    for name in ("providerOverride", "modelOverride"):
        if row.get(name):
            del row[name]
            updated = selection_updated = True
    if row.get("modelOverrideSource"):
        del row["modelOverrideSource"]
        updated = True
    for name in ("modelOverrideFallbackOriginProvider", "modelOverrideFallbackOriginModel"):
        if name in row and row[name] is not None:
            del row[name]
            updated = True
    runtime_model = _text(row.get("model")) or ""
    runtime_provider = _text(row.get("modelProvider")) or ""
    present = bool(runtime_model or runtime_provider)
    aligned = runtime_model == default.model and (
        not runtime_provider or runtime_provider == default.provider
    )
    if present and (selection_updated or not aligned):
        for name in ("model", "modelProvider"):
            if name in row:
                del row[name]
                updated = True
    if "contextTokens" in row and (selection_updated or (present and not aligned)):
        del row["contextTokens"]
        updated = True
    for name in ("authProfileOverride", "authProfileOverrideSource"):
        if row.get(name):
            del row[name]
            updated = True
    if "authProfileOverrideCompactionCount" in row:
        del row["authProfileOverrideCompactionCount"]
        updated = True
    if updated:
        if selection_updated:
            row["liveModelSwitchPending"] = True
        for name in ("fallbackNoticeSelectedModel", "fallbackNoticeActiveModel",
                     "fallbackNoticeReason"):  # fmt: skip
            row.pop(name, None)
        row["updatedAt"] = now_ms


_RESET_KEPT: Final = (
    "thinkingLevel",
    "fastMode",
    "verboseLevel",
    "traceLevel",
    "reasoningLevel",
    "elevatedLevel",
    "ttsAuto",
    "execHost",
    "execSecurity",
    "execAsk",
    "execNode",
    "responseUsage",
)
_RESET_KEPT_AFTER: Final = (
    "groupActivation",
    "groupActivationNeedsSystemIntro",
    "chatType",
)
_RESET_KEPT_TAIL: Final = (
    "compactionCount",
    "compactionCheckpoints",
    "sendPolicy",
    "queueMode",
    "queueDebounceMs",
    "queueCap",
    "queueDrop",
    "spawnedBy",
    "spawnedWorkspaceDir",
    "parentSessionKey",
    "forkedFromParent",
    "spawnDepth",
    "subagentRole",
    "subagentControlScope",
    "label",
    "displayName",
    "channel",
    "groupId",
    "subject",
    "groupChannel",
    "space",
)
_RESET_KEPT_DELIVERY: Final = (
    "deliveryContext",
    "cliSessionBindings",
    "cliSessionIds",
    "claudeCliSessionId",
    "lastChannel",
    "lastTo",
    "lastAccountId",
    "lastThreadId",
    "acp",
)


def _preserved_selection(entry: Mapping[str, Any]) -> dict[str, Any]:
    kept: dict[str, Any] = {}
    source = entry.get("modelOverrideSource")
    override = entry.get("modelOverride")
    if (source == "user" or (source is None and override)) and override:
        if "providerOverride" in entry:
            kept["providerOverride"] = entry["providerOverride"]
        kept["modelOverride"] = override
        kept["modelOverrideSource"] = "user"
    if entry.get("authProfileOverrideSource") == "user" and entry.get("authProfileOverride"):
        kept["authProfileOverride"] = entry["authProfileOverride"]
        kept["authProfileOverrideSource"] = entry["authProfileOverrideSource"]
        if "authProfileOverrideCompactionCount" in entry:
            kept["authProfileOverrideCompactionCount"] = entry["authProfileOverrideCompactionCount"]
    return kept


def reset_entry(
    current: Mapping[str, Any] | None,
    *,
    cfg: Any,
    agent_id: str,
    new_session_id: str,
    session_file: str,
    now_ms: int,
) -> dict[str, Any]:
    """The row that replaces `current` on reset: a new session id and transcript, the person's
    settings and the row's identity kept, token counts zeroed."""
    old = dict(current or {})
    preserved = _preserved_selection(old)
    stripped = {
        k: v
        for k, v in old.items()
        if k not in ("model", "modelProvider", "contextTokens", "systemPromptReport")
        and k not in ("providerOverride", "modelOverride", "modelOverrideSource")
        and not k.startswith("authProfileOverride")
    }
    stripped.update(preserved)
    model = session_model(cfg, stripped, agent_id)
    unset = msgspec.UNSET
    row: dict[str, Any] = {
        "sessionId": new_session_id,
        "sessionFile": session_file,
        "updatedAt": now_ms,
        "systemSent": False,
        "abortedLastRun": False,
    }
    for name in _RESET_KEPT:
        row[name] = old.get(name, unset)
    row.update(preserved)
    for name in _RESET_KEPT_AFTER:
        row[name] = old.get(name, unset)
    row["model"] = model.model if model.model is not None else unset
    row["modelProvider"] = model.provider if model.provider is not None else unset
    # contextTokens: the runtime figure is stripped before the reset, so it is never kept.
    for name in _RESET_KEPT_TAIL:
        row[name] = old.get(name, unset)
    origin = old.get("origin")
    row["origin"] = dict(origin) if isinstance(origin, Mapping) else (origin or unset)
    for name in _RESET_KEPT_DELIVERY:
        row[name] = old.get(name, unset)
    row.update({"inputTokens": 0, "outputTokens": 0, "totalTokens": 0, "totalTokensFresh": True})
    # JSON.stringify drops `undefined`: a field the old row lacked stays absent (a null stays).
    return {k: v for k, v in row.items() if v is not unset}
