"""Params and results of every sessiond method, and the one table that names them.

`METHODS` is the contract: each method's params and result types, the domain error kinds it may
raise (their wire codes are in protocol/errors.py), and the dialects that serve it. The daemon's
implementations, its JSON-RPC dialect and the gateway dialect's adapters are keyed by its names
and checked against it (`keyed_by_table`); protocol/schema.json and the generated clients are
written from its JSON-RPC rows (`make gen`); nothing else in the project defines these types
(the gateway-only rows take theirs from protocol/gateway_frames.py). Params forbid
unknown fields so a typo is an error (-32602) rather than a silently ignored option. Rows travel
as `msgspec.Raw`: the daemon never round-trips a stored row through a Struct, so fields it does
not know survive.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any, Final, Literal, TypeVar

import msgspec
from sessiond.protocol.cleanup import AllAgentsCleanup, CleanupParams, CleanupSummary
from sessiond.protocol.errors import ErrorKind
from sessiond.protocol.gateway_frames import (
    ChatHistoryParams,
    ChatHistoryResult,
    EmptyParams,
    HealthPayload,
    SessionsDescribeParams,
    SessionsDescribeResult,
    StatusPayload,
)
from sessiond.protocol.undo import (
    CleanupsParams,
    CleanupsResult,
    ProgressParams,
    RestoreParams,
    RestoreResult,
)

__all__ = [
    "CHANGED_NOTIFICATION",
    "METHODS",
    "NOTIFICATIONS",
    "PROGRESS_NOTIFICATION",
    "STORES_CHANGED_NOTIFICATION",
    "AgentInfo",
    "AgentsParams",
    "AgentsResult",
    "AllAgentsCleanup",
    "AuthParams",
    "AuthResult",
    "ChangeReason",
    "CleanupParams",
    "CleanupSummary",
    "CleanupsParams",
    "CleanupsResult",
    "DeleteParams",
    "DeleteResult",
    "DialectName",
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
    "ProgressParams",
    "ResetParams",
    "ResetResult",
    "RestoreParams",
    "RestoreResult",
    "SessionPreviewLines",
    "SessionSummary",
    "SessionsChanged",
    "StatusParams",
    "StatusResult",
    "StoreStatus",
    "StoresChanged",
    "SubscribeParams",
    "SubscribeResult",
    "SubscribedStore",
    "UnsubscribeParams",
    "UnsubscribeResult",
    "keyed_by_table",
    "served_by",
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
    "patch", "delete", "cleanup", "external", "reload", "conflict", "restore", "reset", "new"
]
"""Why rows changed; `reset`/`new`: a session was replaced by a fresh one (`sessions.reset`)."""


class SessionsChanged(msgspec.Struct, rename="camel"):
    """Params of the `sessions.changed` notification; `seq` rises by one per change per store."""

    agent_id: str
    store_path: str
    seq: int
    keys: list[str]
    reason: ChangeReason


class StoresChanged(msgspec.Struct, rename="camel"):
    """Params of `sessions.storesChanged`: the stores a subscription gained or lost when a
    config reload (SIGHUP) added or removed agents. An `allAgents` subscription gains every
    added store; any subscription loses a removed one. An added store comes with its current
    seq, so its first `sessions.changed` shows any gap; a removed one sends nothing more."""

    added: list[SubscribedStore]
    removed: list[SubscribedStore]


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
    stale_writes_repaired: int
    parse_error: str | None
    corrupt_copy: str | None


class StatusResult(msgspec.Struct, rename="camel"):
    version: str
    pid: int
    uptime_ms: int
    connections: int
    ready: bool
    conflicts: int
    stale_writes_repaired: int
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


DialectName = Literal["jsonrpc", "gateway"]
"""JSON-RPC 2.0, or OpenClaw's gateway protocol v4 (the methods OpenClaw's clients call)."""

_JSONRPC: Final[frozenset[DialectName]] = frozenset({"jsonrpc"})
_GATEWAY: Final[frozenset[DialectName]] = frozenset({"gateway"})
_BOTH: Final[frozenset[DialectName]] = frozenset({"jsonrpc", "gateway"})


@dataclass(frozen=True, slots=True)
class MethodSpec:
    """One method: params and result types, the error kinds it may raise, who serves it.

    `errors` are the method's own; any method but `auth` may also get `auth_required` on a
    connection that has not authenticated. `mutates`: the call may change a store, so a client
    does not send it again after a dropped connection. `doc` is the generated clients' docstring.

    `params` and `result` are the JSON-RPC shape when JSON-RPC serves the method, else the
    gateway's (protocol/gateway_frames.py). The gateway dialect's adapter names the params it
    decodes; `gateway_errors` are the kinds only that shape raises (the reference's refusals,
    worded as it words them), kept apart so the JSON-RPC schema lists only what JSON-RPC sends.
    """

    params: type[Any]
    result: Any
    mutates: bool
    errors: tuple[ErrorKind, ...]
    dialects: frozenset[DialectName] = _JSONRPC
    doc: str = ""
    gateway_errors: tuple[ErrorKind, ...] = ()


METHODS: Final[dict[str, MethodSpec]] = {
    "auth": MethodSpec(
        AuthParams,
        AuthResult,
        mutates=False,
        errors=("auth_required",),
        doc="Authenticate with the shared token.",
    ),
    "sessions.cleanup": MethodSpec(
        CleanupParams,
        CleanupSummary | AllAgentsCleanup,
        mutates=True,
        errors=(
            "store_not_found",
            "store_read_only",
            "store_write_failed",
            "stale_plan",
            "invalid_params",
        ),
        dialects=_BOTH,
        doc="Run session-store maintenance now, or preview it with `dryRun` (which returns a "
        "`planId`; pass it back to apply only that very plan).",
    ),
    "sessions.list": MethodSpec(
        ListParams,
        ListResult,
        mutates=False,
        errors=("store_not_found", "invalid_params"),
        dialects=_BOTH,
        doc="Session summaries, a page at a time.",
    ),
    "sessions.get": MethodSpec(
        GetParams,
        GetResult,
        mutates=False,
        errors=("store_not_found", "key_not_found"),
        doc="One session's whole row.",
    ),
    "sessions.patch": MethodSpec(
        PatchParams,
        PatchResult,
        mutates=True,
        errors=("store_not_found", "store_read_only", "conflict"),
        dialects=_BOTH,
        doc="Create or change one session's row.",
        gateway_errors=("invalid_params", "store_write_failed", "runtime_unavailable"),
    ),
    "sessions.delete": MethodSpec(
        DeleteParams,
        DeleteResult,
        mutates=True,
        errors=("store_not_found", "store_read_only"),
        dialects=_BOTH,
        doc="Remove one row, then archive its transcripts.",
        gateway_errors=("invalid_params", "store_write_failed"),
    ),
    "sessions.subscribe": MethodSpec(
        SubscribeParams,
        SubscribeResult,
        mutates=False,
        errors=("store_not_found",),
        dialects=_BOTH,
        doc="Receive `sessions.changed` for these stores on this connection (with "
        "`allAgents`, also for stores added later, announced by `sessions.storesChanged`).",
    ),
    "sessions.unsubscribe": MethodSpec(
        UnsubscribeParams,
        UnsubscribeResult,
        mutates=False,
        errors=(),
        dialects=_BOTH,
        doc="Stop every `sessions.changed` on this connection.",
    ),
    "daemon.status": MethodSpec(
        StatusParams,
        StatusResult,
        mutates=False,
        errors=(),
        doc="The daemon's health and each store's state.",
    ),
    "sessions.cleanups": MethodSpec(
        CleanupsParams,
        CleanupsResult,
        mutates=False,
        errors=("store_not_found",),
        doc="The cleanup journal of one store, newest first, and what each entry could restore.",
    ),
    "sessions.restore": MethodSpec(
        RestoreParams,
        RestoreResult,
        mutates=True,
        errors=(
            "store_not_found",
            "store_read_only",
            "store_write_failed",
            "journal_entry_not_found",
            "not_restorable",
        ),
        doc="Undo one journal entry (default: the newest restorable), or preview it with `dryRun`.",
    ),
    # ---- OpenClaw's clients' operations (issue 14); the gateway serves them in the reference's
    # shapes (daemon/gateway_sessions.py), JSON-RPC over the same cores
    "sessions.reset": MethodSpec(
        ResetParams,
        ResetResult,
        mutates=True,
        errors=("store_not_found", "store_read_only"),
        dialects=_BOTH,
        doc="Replace a session with a fresh one (journaled: `sessions.restore` puts it back).",
        gateway_errors=("invalid_params", "store_write_failed"),
    ),
    "sessions.preview": MethodSpec(
        PreviewParams,
        PreviewResult,
        mutates=False,
        errors=("store_not_found", "invalid_params"),
        dialects=_BOTH,
        doc="Each session's last messages, short.",
    ),
    "sessions.history": MethodSpec(
        HistoryParams,
        HistoryResult,
        mutates=False,
        errors=("store_not_found",),
        doc="A session's newest messages.",
    ),
    "agents.list": MethodSpec(
        AgentsParams,
        AgentsResult,
        mutates=False,
        errors=(),
        dialects=_BOTH,
        doc="The configured agents and their stores.",
    ),
    "sessions.describe": MethodSpec(
        SessionsDescribeParams,
        SessionsDescribeResult,
        mutates=False,
        errors=("invalid_params",),
        dialects=_GATEWAY,
        doc="One session's row as the reference's clients show it.",
    ),
    "chat.history": MethodSpec(
        ChatHistoryParams,
        ChatHistoryResult,
        mutates=False,
        errors=(),
        dialects=_GATEWAY,
        doc="A session's newest messages as the reference's chat view takes them.",
    ),
    "health": MethodSpec(
        EmptyParams,
        HealthPayload,
        mutates=False,
        errors=(),
        dialects=_GATEWAY,
        doc="The reference's health snapshot: each agent's store, row count and newest rows.",
    ),
    "status": MethodSpec(
        EmptyParams,
        StatusPayload,
        mutates=False,
        errors=(),
        dialects=_GATEWAY,
        doc="The reference's status summary of the sessions.",
    ),
    # ---- end of OpenClaw's clients' operations
}


def served_by(dialect: DialectName) -> dict[str, MethodSpec]:
    """The rows of `METHODS` that `dialect` serves, in table order."""
    return {name: spec for name, spec in METHODS.items() if dialect in spec.dialects}


_T = TypeVar("_T")


def keyed_by_table(entries: Mapping[str, _T], served: Mapping[str, MethodSpec]) -> dict[str, _T]:
    """`entries` in table order, once checked to name exactly the methods in `served`.

    Dispatch tables beside the method table (implementations, a dialect's adapters) go through
    this at import, so a method added to `METHODS` and left unserved fails at start-up, not as
    an internal error on its first call.
    """
    missing = [name for name in served if name not in entries]
    extra = sorted(set(entries) - set(served))
    if missing or extra:
        raise LookupError(f"not keyed by the method table: missing {missing}, unknown {extra}")
    return {name: entries[name] for name in served}


CHANGED_NOTIFICATION: Final = "sessions.changed"

STORES_CHANGED_NOTIFICATION: Final = "sessions.storesChanged"

PROGRESS_NOTIFICATION: Final = "$/progress"

NOTIFICATIONS: Final[dict[str, type[Any]]] = {
    CHANGED_NOTIFICATION: SessionsChanged,
    STORES_CHANGED_NOTIFICATION: StoresChanged,
    PROGRESS_NOTIFICATION: ProgressParams,
}
"""Every server-to-client notification and the type of its params."""
