"""Params and results of every sessiond method, and the one table that names them.

The table is the contract: the daemon dispatches through it, clients (hand-written now, generated
later) are built from it, and nothing else in the project defines these types. Params forbid
unknown fields so a typo is an error (-32602) rather than a silently ignored option. Rows travel
as `msgspec.Raw`: the daemon never round-trips a stored row through a Struct, so fields it does
not know survive.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, Final, Literal

import msgspec
from sessiond.protocol.cleanup import AllAgentsCleanup, CleanupParams, CleanupSummary

__all__ = [
    "CHANGED_NOTIFICATION",
    "METHODS",
    "NOTIFICATIONS",
    "AgentInfo",
    "AgentsParams",
    "AgentsResult",
    "AllAgentsCleanup",
    "AuthParams",
    "AuthResult",
    "ChangeReason",
    "CleanupParams",
    "CleanupSummary",
    "DeleteParams",
    "DeleteResult",
    "GetParams",
    "GetResult",
    "HistoryParams",
    "HistoryResult",
    "ListParams",
    "ListResult",
    "MethodSpec",
    "PatchParams",
    "PatchResult",
    "PreviewLine",
    "PreviewParams",
    "PreviewResult",
    "ResetParams",
    "ResetResult",
    "SessionPreviewLines",
    "SessionSummary",
    "SessionsChanged",
    "StatusParams",
    "StatusResult",
    "StoreStatus",
    "SubscribeParams",
    "SubscribeResult",
    "SubscribedStore",
    "UnsubscribeParams",
    "UnsubscribeResult",
]


class _Params(msgspec.Struct, rename="camel", forbid_unknown_fields=True, omit_defaults=True):
    """Base of every params type: camelCase on the wire, unknown fields are an error."""


Limit = Annotated[int, msgspec.Meta(ge=1, le=1000)]
UpdatedAt = int | float | None


class AuthParams(_Params):
    """The shared token, for clients that cannot send `Authorization: Bearer` at upgrade."""

    token: str


class AuthResult(msgspec.Struct, rename="camel"):
    ok: bool


class ListParams(_Params):
    """One page, newest `updatedAt` first (rows without it last, then by key)."""

    limit: Limit = 100
    cursor: str | None = None
    agent: str | None = None
    all_agents: bool = False
    active_minutes: Annotated[int, msgspec.Meta(ge=1)] | None = None


class SessionSummary(msgspec.Struct, rename="camel", omit_defaults=True):
    """The few fields a session list shows; `sessions.get` returns the whole row."""

    key: str
    agent_id: str
    updated_at: UpdatedAt = None
    session_id: str | None = None
    chat_type: str | None = None
    model: str | None = None


class ListResult(msgspec.Struct, rename="camel"):
    sessions: list[SessionSummary]
    total_count: int
    has_more: bool
    next_cursor: str | None


class GetParams(_Params):
    key: str
    agent: str | None = None


class GetResult(msgspec.Struct, rename="camel"):
    key: str
    agent_id: str
    entry: msgspec.Raw


class PatchParams(_Params):
    """Shallow-merge `fields` into one row, creating it if absent.

    `ifUpdatedAt`, when present, must equal the row's current `updatedAt` (null: the row must
    not exist yet), else the patch fails with a conflict and changes nothing.
    """

    key: str
    fields: dict[str, msgspec.Raw]
    agent: str | None = None
    if_updated_at: UpdatedAt | msgspec.UnsetType = msgspec.UNSET


class PatchResult(msgspec.Struct, rename="camel"):
    """`durable` is false when the flush failed: the change is in memory and being retried."""

    key: str
    agent_id: str
    entry: msgspec.Raw
    durable: bool


class DeleteParams(_Params):
    key: str
    agent: str | None = None


class DeleteResult(msgspec.Struct, rename="camel"):
    """`archived` lists transcripts renamed to `*.deleted.<time>` after the row was durable."""

    key: str
    agent_id: str
    deleted: bool
    durable: bool
    archived: list[str]


class SubscribeParams(_Params):
    """Which stores to hear about: one agent, every agent, or (neither) the default agent."""

    agent: str | None = None
    all_agents: bool = False


class SubscribedStore(msgspec.Struct, rename="camel"):
    agent_id: str
    store_path: str
    seq: int


class SubscribeResult(msgspec.Struct, rename="camel"):
    """The current seq of each store, so the first notification's seq shows any gap."""

    stores: list[SubscribedStore]


class UnsubscribeParams(_Params):
    pass


class UnsubscribeResult(msgspec.Struct, rename="camel"):
    unsubscribed: bool


ChangeReason = Literal[
    "patch", "delete", "cleanup", "external", "reload", "conflict", "reset", "new"
]
"""Why rows changed; `reset`/`new`: a session was replaced by a fresh one (`sessions.reset`)."""


class SessionsChanged(msgspec.Struct, rename="camel"):
    """Params of the `sessions.changed` notification; `seq` rises by one per change per store."""

    agent_id: str
    store_path: str
    seq: int
    keys: list[str]
    reason: ChangeReason


class StatusParams(_Params):
    pass


class StoreStatus(msgspec.Struct, rename="camel"):
    agent_id: str
    store_path: str
    rows: int
    state: Literal["ok", "missing", "empty", "corrupt", "not-object", "broken"]
    writable: bool
    dirty: bool
    seq: int
    flushes: int
    last_flush_ms: int | None
    flush_error: str | None
    flush_failures: int
    last_external_reload_ms: int | None
    external_reloads: int
    conflicts: int
    parse_error: str | None
    corrupt_copy: str | None


class StatusResult(msgspec.Struct, rename="camel"):
    version: str
    pid: int
    uptime_ms: int
    connections: int
    ready: bool
    conflicts: int
    stores: list[StoreStatus]


# ---- OpenClaw's clients' operations (issue 14): what the gateway dialect serves them, for
# JSON-RPC clients too. Keys are as stored, in `agent`'s store (the default agent's if absent).


class ResetParams(_Params):
    """Replace a session with a fresh one: new `sessionId`, token counts zeroed, settings and
    identity kept; the old transcript is archived as `<file>.reset.<time>` once the row is on
    disk. `reason: "new"` announces it as a new session rather than a reset."""

    key: str
    agent: str | None = None
    reason: Literal["reset", "new"] = "reset"


class ResetResult(msgspec.Struct, rename="camel"):
    key: str
    agent_id: str
    entry: msgspec.Raw
    durable: bool
    archived: list[str]


class PreviewParams(_Params):
    """The last messages of each session as short lines (1 to 64 keys, bounded reads)."""

    keys: list[str]
    agent: str | None = None
    limit: Annotated[int, msgspec.Meta(ge=1, le=50)] = 12
    max_chars: Annotated[int, msgspec.Meta(ge=20, le=2000)] = 240


class PreviewLine(msgspec.Struct):
    role: str
    text: str


class SessionPreviewLines(msgspec.Struct):
    """`status`: ok, empty (nothing to show), missing (no row or no transcript), error."""

    key: str
    status: Literal["ok", "empty", "missing", "error"]
    items: list[PreviewLine]


class PreviewResult(msgspec.Struct):
    previews: list[SessionPreviewLines]


class HistoryParams(_Params):
    """A session's newest messages as a chat client shows them (from the transcript's tail)."""

    key: str
    agent: str | None = None
    limit: Annotated[int, msgspec.Meta(ge=1, le=1000)] = 200
    max_chars: Annotated[int, msgspec.Meta(ge=1, le=500_000)] = 8000


class HistoryResult(msgspec.Struct, rename="camel"):
    """`messages`: transcript message objects (`role`, `content`, ...), oldest first."""

    key: str
    agent_id: str
    session_id: str | None
    messages: list[dict[str, Any]]


class AgentsParams(_Params):
    pass


class AgentInfo(msgspec.Struct, rename="camel"):
    id: str
    name: str | None
    default: bool
    workspace: str
    store_path: str


class AgentsResult(msgspec.Struct, rename="camel"):
    default_id: str
    main_key: str
    agents: list[AgentInfo]


# ---- end of OpenClaw's clients' operations


@dataclass(frozen=True, slots=True)
class MethodSpec:
    """A method's params type, result type, whether it may change a store, and one line on it.

    `doc` is what generated clients show as the method's docstring.
    """

    params: type[Any]
    result: Any
    mutates: bool
    doc: str = ""


METHODS: Final[dict[str, MethodSpec]] = {
    "auth": MethodSpec(
        AuthParams, AuthResult, mutates=False, doc="Authenticate with the shared token."
    ),
    "sessions.cleanup": MethodSpec(
        CleanupParams,
        CleanupSummary | AllAgentsCleanup,
        mutates=True,
        doc="Run session-store maintenance now, or preview it with `dryRun`.",
    ),
    "sessions.list": MethodSpec(
        ListParams, ListResult, mutates=False, doc="Session summaries, a page at a time."
    ),
    "sessions.get": MethodSpec(GetParams, GetResult, mutates=False, doc="One session's whole row."),
    "sessions.patch": MethodSpec(
        PatchParams, PatchResult, mutates=True, doc="Create or change one session's row."
    ),
    "sessions.delete": MethodSpec(
        DeleteParams,
        DeleteResult,
        mutates=True,
        doc="Remove one row, then archive its transcripts.",
    ),
    "sessions.subscribe": MethodSpec(
        SubscribeParams,
        SubscribeResult,
        mutates=False,
        doc="Receive `sessions.changed` for these stores on this connection.",
    ),
    "sessions.unsubscribe": MethodSpec(
        UnsubscribeParams,
        UnsubscribeResult,
        mutates=False,
        doc="Stop every `sessions.changed` on this connection.",
    ),
    "daemon.status": MethodSpec(
        StatusParams, StatusResult, mutates=False, doc="The daemon's health and each store's state."
    ),
    # ---- OpenClaw's clients' operations (issue 14)
    "sessions.reset": MethodSpec(
        ResetParams, ResetResult, mutates=True, doc="Replace a session with a fresh one."
    ),
    "sessions.preview": MethodSpec(
        PreviewParams, PreviewResult, mutates=False, doc="Each session's last messages, short."
    ),
    "sessions.history": MethodSpec(
        HistoryParams, HistoryResult, mutates=False, doc="A session's newest messages."
    ),
    "agents.list": MethodSpec(
        AgentsParams, AgentsResult, mutates=False, doc="The configured agents and their stores."
    ),
    # ---- end of OpenClaw's clients' operations
}

CHANGED_NOTIFICATION: Final = "sessions.changed"

NOTIFICATIONS: Final[dict[str, type[Any]]] = {CHANGED_NOTIFICATION: SessionsChanged}
"""Every server-to-client notification and the type of its params."""
