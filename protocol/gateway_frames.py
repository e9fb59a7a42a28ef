"""OpenClaw's gateway protocol v4: the frames and payloads sessiond speaks to OpenClaw clients.

Shapes follow OpenClaw 2026.5.12 (`dist/plugin-sdk/src/gateway/protocol/schema/*.d.ts`) and the
frames it was observed to send; only what sessiond serves is typed here. Every frame is a JSON
object tagged by `type`: `req` (client -> server), `res` (the answer to one `req`, matched by
its string `id`) and `event` (server -> client, `seq` rising by one per connection). Incoming
objects the reference declares closed (`additionalProperties: false`) forbid unknown fields here
too, so a typo fails the same way it fails against the reference. Outgoing optional fields are
UNSET, never `null`, because the reference omits them (`JSON.stringify` drops `undefined`).
"""

from __future__ import annotations

from typing import Annotated, Any, Final, Literal

import msgspec

__all__ = [
    "DEFAULT_PORT",
    "INVALID_REQUEST",
    "NOT_PAIRED",
    "PROTOCOL_VERSION",
    "UNAVAILABLE",
    "AgentIdentity",
    "AgentModel",
    "AgentSummary",
    "AgentsListResult",
    "ChallengePayload",
    "ChatHistoryParams",
    "ChatHistoryResult",
    "ClientInfo",
    "ConnectAuth",
    "ConnectParams",
    "DeviceProof",
    "EmptyParams",
    "ErrorShape",
    "EventFrame",
    "Features",
    "GatewaySessionRow",
    "HealthAgent",
    "HealthAgentSessions",
    "HealthPayload",
    "HelloAuth",
    "HelloOk",
    "Policy",
    "PreviewItem",
    "RequestFrame",
    "ResolvedModel",
    "ResponseFrame",
    "ServerInfo",
    "SessionDefaultsSnapshot",
    "SessionPreview",
    "SessionsChangedPayload",
    "SessionsCleanupParams",
    "SessionsDefaults",
    "SessionsDeleteParams",
    "SessionsDeleteResult",
    "SessionsDescribeParams",
    "SessionsDescribeResult",
    "SessionsListParams",
    "SessionsListResult",
    "SessionsPatchParams",
    "SessionsPatchResult",
    "SessionsPreviewParams",
    "SessionsPreviewResult",
    "SessionsResetParams",
    "SessionsResetResult",
    "SessionsSubscribeResult",
    "ShutdownPayload",
    "Snapshot",
    "StateVersion",
    "StatusPayload",
    "StatusSessions",
    "TickPayload",
]

PROTOCOL_VERSION: Final = 4
DEFAULT_PORT: Final = 18789
"""OpenClaw's gateway port (`OPENCLAW_GATEWAY_PORT` moves it); sessiond serves both dialects
on it, so `openclaw` and sessiond's own command find the daemon without being told."""

# The error codes (`ErrorShape.code`, from the reference's `ErrorCodes`) that sessiond sends;
# protocol/errors.py says which domain error goes out as which.
NOT_PAIRED: Final = "NOT_PAIRED"
"""The device must be paired, or a device identity is required and none was sent."""
INVALID_REQUEST: Final = "INVALID_REQUEST"
"""The peer's fault: bad frame, bad params, unknown method, refused credentials."""
UNAVAILABLE: Final = "UNAVAILABLE"
"""Ours: try again (`retryable`), or a bug in the daemon."""

NonEmpty = Annotated[str, msgspec.Meta(min_length=1)]
SessionLabel = Annotated[str, msgspec.Meta(min_length=1, max_length=512)]
Positive = Annotated[int, msgspec.Meta(ge=1)]
NonNegative = Annotated[int, msgspec.Meta(ge=0)]

ClientId = Literal[
    "webchat-ui",
    "openclaw-control-ui",
    "openclaw-tui",
    "webchat",
    "cli",
    "gateway-client",
    "openclaw-macos",
    "openclaw-ios",
    "openclaw-android",
    "node-host",
    "test",
    "fingerprint",
    "openclaw-probe",
]
ClientMode = Literal["webchat", "cli", "ui", "backend", "node", "probe", "test"]


class _Closed(msgspec.Struct, rename="camel", forbid_unknown_fields=True, omit_defaults=True):
    """A closed incoming object: camelCase on the wire, unknown fields refused."""


class _Out(msgspec.Struct, rename="camel", omit_defaults=True):
    """An outgoing object: camelCase, UNSET fields left out."""


# ------------------------------------------------------------------------------------ frames


class RequestFrame(msgspec.Struct, tag_field="type", tag="req", forbid_unknown_fields=True):
    """`params` stays raw until the method (and so its params type) is known."""

    id: NonEmpty
    method: NonEmpty
    params: msgspec.Raw | msgspec.UnsetType = msgspec.UNSET


class ErrorShape(_Out):
    code: str
    message: str
    details: Any = msgspec.UNSET
    retryable: bool | msgspec.UnsetType = msgspec.UNSET
    retry_after_ms: int | msgspec.UnsetType = msgspec.UNSET


class ResponseFrame(_Out, tag_field="type", tag="res"):
    """`payload` on success, `error` on failure; `payload` is usually pre-encoded (Raw)."""

    id: str
    ok: bool
    payload: Any = msgspec.UNSET
    error: ErrorShape | msgspec.UnsetType = msgspec.UNSET


class EventFrame(_Out, tag_field="type", tag="event"):
    """A server event. `seq` is absent on `connect.challenge`, as the reference sends it."""

    event: str
    payload: Any = msgspec.UNSET
    seq: int | msgspec.UnsetType = msgspec.UNSET


class ChallengePayload(_Out):
    """The nonce the client must sign into its `device` proof, and our clock in ms."""

    nonce: str
    ts: int


class TickPayload(_Out):
    ts: int


class ShutdownPayload(_Out):
    reason: str
    restart_expected_ms: int | msgspec.UnsetType = msgspec.UNSET


# ----------------------------------------------------------------------------------- connect


class ClientInfo(_Closed):
    id: ClientId
    version: NonEmpty
    platform: NonEmpty
    mode: ClientMode
    display_name: NonEmpty | msgspec.UnsetType = msgspec.UNSET
    device_family: NonEmpty | msgspec.UnsetType = msgspec.UNSET
    model_identifier: NonEmpty | msgspec.UnsetType = msgspec.UNSET
    instance_id: NonEmpty | msgspec.UnsetType = msgspec.UNSET


class DeviceProof(_Closed):
    """An ed25519 signature over the v3 payload, made with the device's key for our nonce.

    `publicKey` is the raw 32-byte key in base64url (or a PEM); `id` is the hex SHA-256 of the
    raw key; `signedAt` is the client's clock in ms.
    """

    id: NonEmpty
    public_key: NonEmpty
    signature: NonEmpty
    signed_at: NonNegative
    nonce: NonEmpty


class ConnectAuth(_Closed):
    token: str | msgspec.UnsetType = msgspec.UNSET
    bootstrap_token: str | msgspec.UnsetType = msgspec.UNSET
    device_token: str | msgspec.UnsetType = msgspec.UNSET
    password: str | msgspec.UnsetType = msgspec.UNSET


class ConnectParams(_Closed):
    """Params of `connect`, which must be a connection's first request."""

    min_protocol: Positive
    max_protocol: Positive
    client: ClientInfo
    caps: list[NonEmpty] | msgspec.UnsetType = msgspec.UNSET
    commands: list[NonEmpty] | msgspec.UnsetType = msgspec.UNSET
    permissions: dict[NonEmpty, bool] | msgspec.UnsetType = msgspec.UNSET
    path_env: str | msgspec.UnsetType = msgspec.UNSET
    role: NonEmpty | msgspec.UnsetType = msgspec.UNSET
    scopes: list[NonEmpty] | msgspec.UnsetType = msgspec.UNSET
    device: DeviceProof | msgspec.UnsetType = msgspec.UNSET
    auth: ConnectAuth | msgspec.UnsetType = msgspec.UNSET
    locale: str | msgspec.UnsetType = msgspec.UNSET
    user_agent: str | msgspec.UnsetType = msgspec.UNSET


class ServerInfo(_Out):
    version: str
    conn_id: str


class Features(_Out):
    """`methods` lists exactly what this server answers; clients check it before calling."""

    methods: list[str]
    events: list[str]


class StateVersion(_Out):
    presence: int
    health: int


class SessionDefaultsSnapshot(_Out):
    """Which agent and key a client opens by default (`hello-ok.snapshot.sessionDefaults`)."""

    default_agent_id: str
    main_key: str
    main_session_key: str
    scope: str | msgspec.UnsetType = msgspec.UNSET


class Snapshot(_Out):
    presence: list[Any]
    health: Any
    state_version: StateVersion
    uptime_ms: int
    config_path: str | msgspec.UnsetType = msgspec.UNSET
    state_dir: str | msgspec.UnsetType = msgspec.UNSET
    auth_mode: Literal["none", "token", "password"] | msgspec.UnsetType = msgspec.UNSET
    session_defaults: SessionDefaultsSnapshot | msgspec.UnsetType = msgspec.UNSET


class HelloAuth(_Out):
    """The role and scopes granted. sessiond issues no device tokens (no pairing)."""

    role: str
    scopes: list[str]


class Policy(_Out):
    """`tickIntervalMs`: a `tick` event comes at least this often; clients drop a connection
    that stays silent for two intervals."""

    max_payload: int
    max_buffered_bytes: int
    tick_interval_ms: int


class HelloOk(_Out, tag_field="type", tag="hello-ok"):
    """The payload of the `res` that accepts `connect` (`type: "hello-ok"` comes first)."""

    protocol: int
    server: ServerInfo
    features: Features
    snapshot: Snapshot
    auth: HelloAuth
    policy: Policy


# ---------------------------------------------------------------------------------- methods


class SessionsCleanupParams(_Closed):
    """`sessions.cleanup` exactly as the reference takes it: always an apply, never a dry run.

    Absent and `null` differ, as in the reference's schema: `"agent": null` is refused.
    """

    agent: NonEmpty | msgspec.UnsetType = msgspec.UNSET
    all_agents: bool | msgspec.UnsetType = msgspec.UNSET
    enforce: bool | msgspec.UnsetType = msgspec.UNSET
    active_key: NonEmpty | msgspec.UnsetType = msgspec.UNSET
    fix_missing: bool | msgspec.UnsetType = msgspec.UNSET
    fix_dm_scope: bool | msgspec.UnsetType = msgspec.UNSET


class SessionsListParams(_Closed):
    """`sessions.list` params as the reference declares them (a closed schema)."""

    limit: Positive | msgspec.UnsetType = msgspec.UNSET
    active_minutes: Positive | msgspec.UnsetType = msgspec.UNSET
    include_global: bool | msgspec.UnsetType = msgspec.UNSET
    include_unknown: bool | msgspec.UnsetType = msgspec.UNSET
    configured_agents_only: bool | msgspec.UnsetType = msgspec.UNSET
    include_derived_titles: bool | msgspec.UnsetType = msgspec.UNSET
    include_last_message: bool | msgspec.UnsetType = msgspec.UNSET
    label: SessionLabel | msgspec.UnsetType = msgspec.UNSET
    spawned_by: NonEmpty | msgspec.UnsetType = msgspec.UNSET
    agent_id: NonEmpty | msgspec.UnsetType = msgspec.UNSET
    search: str | msgspec.UnsetType = msgspec.UNSET


class SessionsDefaults(msgspec.Struct, rename="camel"):
    """The configured default model, as the reference resolves it from the config alone."""

    model_provider: str | None = None
    model: str | None = None
    context_tokens: int | None = None


# Every optional field of a row is UNSET when the reference leaves it `undefined` (and so out of
# its JSON); a stored `null` stays `null`. Values the store holds are passed on as they are.
Field = Any


class GatewaySessionRow(_Out, kw_only=True):
    """The reference's `GatewaySessionRow`, fields in its order, from one stored row."""

    key: str
    spawned_by: Field = msgspec.UNSET
    spawned_workspace_dir: Field = msgspec.UNSET
    forked_from_parent: Field = msgspec.UNSET
    spawn_depth: Field = msgspec.UNSET
    subagent_role: Field = msgspec.UNSET
    subagent_control_scope: Field = msgspec.UNSET
    kind: Literal["direct", "group", "global", "unknown"]
    label: Field = msgspec.UNSET
    display_name: Field = msgspec.UNSET
    derived_title: Field = msgspec.UNSET
    last_message_preview: Field = msgspec.UNSET
    channel: Field = msgspec.UNSET
    subject: Field = msgspec.UNSET
    group_channel: Field = msgspec.UNSET
    space: Field = msgspec.UNSET
    chat_type: Field = msgspec.UNSET
    origin: Field = msgspec.UNSET
    updated_at: Field
    session_id: Field = msgspec.UNSET
    system_sent: Field = msgspec.UNSET
    aborted_last_run: Field = msgspec.UNSET
    thinking_level: Field = msgspec.UNSET
    fast_mode: Field = msgspec.UNSET
    verbose_level: Field = msgspec.UNSET
    trace_level: Field = msgspec.UNSET
    reasoning_level: Field = msgspec.UNSET
    elevated_level: Field = msgspec.UNSET
    send_policy: Field = msgspec.UNSET
    input_tokens: Field = msgspec.UNSET
    output_tokens: Field = msgspec.UNSET
    total_tokens: Field = msgspec.UNSET
    total_tokens_fresh: bool
    estimated_cost_usd: Field = msgspec.UNSET
    status: Field = msgspec.UNSET
    started_at: Field = msgspec.UNSET
    ended_at: Field = msgspec.UNSET
    runtime_ms: Field = msgspec.UNSET
    parent_session_key: Field = msgspec.UNSET
    child_sessions: list[str] | msgspec.UnsetType = msgspec.UNSET
    response_usage: Field = msgspec.UNSET
    model_provider: Field = msgspec.UNSET
    model: Field = msgspec.UNSET
    context_tokens: Field = msgspec.UNSET
    delivery_context: Field = msgspec.UNSET
    last_channel: Field = msgspec.UNSET
    last_to: Field = msgspec.UNSET
    last_account_id: Field = msgspec.UNSET
    last_thread_id: Field = msgspec.UNSET
    compaction_checkpoint_count: Field = msgspec.UNSET
    latest_compaction_checkpoint: Field = msgspec.UNSET
    has_active_run: bool | msgspec.UnsetType = msgspec.UNSET
    """Set on list rows and events: sessiond runs no agent, so it is always false."""


class SessionsListResult(msgspec.Struct, rename="camel"):
    ts: int
    path: str
    count: int
    total_count: int
    limit_applied: int
    has_more: bool
    defaults: SessionsDefaults
    sessions: list[GatewaySessionRow]


class SessionsChangedPayload(_Out, kw_only=True):
    """`sessions.changed`: which row changed and why, with the row's fields unless it is gone
    (`reason: "delete"`); no `sessionKey` when many rows changed (clients list again)."""

    session_key: str | msgspec.UnsetType = msgspec.UNSET
    reason: str
    ts: int
    updated_at: Field = msgspec.UNSET
    session_id: Field = msgspec.UNSET
    kind: Field = msgspec.UNSET
    channel: Field = msgspec.UNSET
    subject: Field = msgspec.UNSET
    group_channel: Field = msgspec.UNSET
    space: Field = msgspec.UNSET
    chat_type: Field = msgspec.UNSET
    origin: Field = msgspec.UNSET
    spawned_by: Field = msgspec.UNSET
    spawned_workspace_dir: Field = msgspec.UNSET
    forked_from_parent: Field = msgspec.UNSET
    spawn_depth: Field = msgspec.UNSET
    subagent_role: Field = msgspec.UNSET
    subagent_control_scope: Field = msgspec.UNSET
    label: Field = msgspec.UNSET
    display_name: Field = msgspec.UNSET
    delivery_context: Field = msgspec.UNSET
    parent_session_key: Field = msgspec.UNSET
    child_sessions: Field = msgspec.UNSET
    thinking_level: Field = msgspec.UNSET
    fast_mode: Field = msgspec.UNSET
    verbose_level: Field = msgspec.UNSET
    trace_level: Field = msgspec.UNSET
    reasoning_level: Field = msgspec.UNSET
    elevated_level: Field = msgspec.UNSET
    send_policy: Field = msgspec.UNSET
    system_sent: Field = msgspec.UNSET
    aborted_last_run: Field = msgspec.UNSET
    input_tokens: Field = msgspec.UNSET
    output_tokens: Field = msgspec.UNSET
    last_channel: Field = msgspec.UNSET
    last_to: Field = msgspec.UNSET
    last_account_id: Field = msgspec.UNSET
    last_thread_id: Field = msgspec.UNSET
    total_tokens: Field = msgspec.UNSET
    total_tokens_fresh: Field = msgspec.UNSET
    context_tokens: Field = msgspec.UNSET
    estimated_cost_usd: Field = msgspec.UNSET
    response_usage: Field = msgspec.UNSET
    model_provider: Field = msgspec.UNSET
    model: Field = msgspec.UNSET
    status: Field = msgspec.UNSET
    has_active_run: Field = msgspec.UNSET
    started_at: Field = msgspec.UNSET
    ended_at: Field = msgspec.UNSET
    runtime_ms: Field = msgspec.UNSET
    compaction_checkpoint_count: Field = msgspec.UNSET
    latest_compaction_checkpoint: Field = msgspec.UNSET


class SessionsSubscribeResult(msgspec.Struct, rename="camel"):
    subscribed: bool


class SessionsPreviewParams(_Closed):
    keys: Annotated[list[NonEmpty], msgspec.Meta(min_length=1)]
    limit: Positive | msgspec.UnsetType = msgspec.UNSET
    max_chars: Annotated[int, msgspec.Meta(ge=20)] | msgspec.UnsetType = msgspec.UNSET


class PreviewItem(msgspec.Struct):
    role: str
    text: str


class SessionPreview(msgspec.Struct):
    """`status`: ok (items found), empty (a transcript, nothing to show), missing (no row or no
    session id), error (the transcript could not be read)."""

    key: str
    status: Literal["ok", "empty", "missing", "error"]
    items: list[PreviewItem]


class SessionsPreviewResult(msgspec.Struct):
    ts: int
    previews: list[SessionPreview]


class SessionsDescribeParams(_Closed):
    key: NonEmpty
    include_derived_titles: bool | msgspec.UnsetType = msgspec.UNSET
    include_last_message: bool | msgspec.UnsetType = msgspec.UNSET


class SessionsDescribeResult(msgspec.Struct):
    session: GatewaySessionRow | None


Nullable = Any


class SessionsPatchParams(_Closed):
    """The reference's patch fields; `null` clears a field, absent leaves it."""

    key: NonEmpty
    label: SessionLabel | msgspec.UnsetType | None = msgspec.UNSET
    thinking_level: NonEmpty | msgspec.UnsetType | None = msgspec.UNSET
    fast_mode: bool | msgspec.UnsetType | None = msgspec.UNSET
    verbose_level: NonEmpty | msgspec.UnsetType | None = msgspec.UNSET
    trace_level: NonEmpty | msgspec.UnsetType | None = msgspec.UNSET
    reasoning_level: NonEmpty | msgspec.UnsetType | None = msgspec.UNSET
    response_usage: Literal["off", "tokens", "full", "on"] | msgspec.UnsetType | None = (
        msgspec.UNSET
    )
    elevated_level: NonEmpty | msgspec.UnsetType | None = msgspec.UNSET
    exec_host: NonEmpty | msgspec.UnsetType | None = msgspec.UNSET
    exec_security: NonEmpty | msgspec.UnsetType | None = msgspec.UNSET
    exec_ask: NonEmpty | msgspec.UnsetType | None = msgspec.UNSET
    exec_node: NonEmpty | msgspec.UnsetType | None = msgspec.UNSET
    model: NonEmpty | msgspec.UnsetType | None = msgspec.UNSET
    spawned_by: NonEmpty | msgspec.UnsetType | None = msgspec.UNSET
    spawned_workspace_dir: NonEmpty | msgspec.UnsetType | None = msgspec.UNSET
    spawn_depth: Annotated[int, msgspec.Meta(ge=0)] | msgspec.UnsetType | None = msgspec.UNSET
    subagent_role: Literal["orchestrator", "leaf"] | msgspec.UnsetType | None = msgspec.UNSET
    subagent_control_scope: Literal["children", "none"] | msgspec.UnsetType | None = msgspec.UNSET
    send_policy: Literal["allow", "deny"] | msgspec.UnsetType | None = msgspec.UNSET
    group_activation: Literal["mention", "always"] | msgspec.UnsetType | None = msgspec.UNSET


class ResolvedModel(_Out):
    model_provider: str | msgspec.UnsetType = msgspec.UNSET
    model: str | msgspec.UnsetType = msgspec.UNSET


class SessionsPatchResult(msgspec.Struct):
    ok: bool
    path: str
    key: str
    entry: msgspec.Raw
    resolved: ResolvedModel


class SessionsResetParams(_Closed):
    key: NonEmpty
    reason: Literal["new", "reset"] | msgspec.UnsetType = msgspec.UNSET


class SessionsResetResult(msgspec.Struct):
    ok: bool
    key: str
    entry: msgspec.Raw


class SessionsDeleteParams(_Closed):
    key: NonEmpty
    delete_transcript: bool | msgspec.UnsetType = msgspec.UNSET
    emit_lifecycle_hooks: bool | msgspec.UnsetType = msgspec.UNSET


class SessionsDeleteResult(msgspec.Struct):
    ok: bool
    key: str
    deleted: bool
    archived: list[str]


class EmptyParams(_Closed):
    """Methods that take no params (`{}`, or none at all)."""


class AgentIdentity(_Out):
    name: str | msgspec.UnsetType = msgspec.UNSET
    theme: str | msgspec.UnsetType = msgspec.UNSET
    emoji: str | msgspec.UnsetType = msgspec.UNSET
    avatar: str | msgspec.UnsetType = msgspec.UNSET
    avatar_url: str | msgspec.UnsetType = msgspec.UNSET


class AgentModel(_Out):
    primary: str | msgspec.UnsetType = msgspec.UNSET
    fallbacks: list[str] | msgspec.UnsetType = msgspec.UNSET


class AgentSummary(_Out, kw_only=True):
    id: str
    name: str | msgspec.UnsetType = msgspec.UNSET
    identity: AgentIdentity | msgspec.UnsetType = msgspec.UNSET
    workspace: str
    model: AgentModel | msgspec.UnsetType = msgspec.UNSET


class AgentsListResult(msgspec.Struct, rename="camel"):
    default_id: str
    main_key: str
    scope: str
    agents: list[AgentSummary]


class ChatHistoryParams(_Closed):
    session_key: NonEmpty
    limit: Annotated[int, msgspec.Meta(ge=1, le=1000)] | msgspec.UnsetType = msgspec.UNSET
    max_chars: Annotated[int, msgspec.Meta(ge=1, le=500_000)] | msgspec.UnsetType = msgspec.UNSET


class ChatHistoryResult(_Out, kw_only=True):
    session_key: str
    session_id: str | msgspec.UnsetType = msgspec.UNSET
    messages: list[Any]
    thinking_level: str | msgspec.UnsetType = msgspec.UNSET
    fast_mode: Any = msgspec.UNSET
    verbose_level: Any = msgspec.UNSET


class HealthAgentSessions(msgspec.Struct):
    path: str
    count: int
    recent: list[dict[str, Any]]


class HealthAgent(_Out, kw_only=True):
    agent_id: str
    name: str | msgspec.UnsetType = msgspec.UNSET
    is_default: bool
    sessions: HealthAgentSessions


class HealthPayload(msgspec.Struct, rename="camel"):
    """The part of the reference's health snapshot a store daemon can truthfully fill
    (`heartbeatSeconds` 0: sessiond runs no heartbeat)."""

    ok: bool
    ts: int
    duration_ms: int
    heartbeat_seconds: int
    default_agent_id: str
    agents: list[HealthAgent]
    sessions: HealthAgentSessions


class StatusSessions(msgspec.Struct, rename="camel"):
    paths: list[str]
    count: int
    defaults: dict[str, Any]
    recent: list[dict[str, Any]]
    by_agent: list[dict[str, Any]]


class StatusPayload(msgspec.Struct, rename="camel"):
    """The part of the reference's `status` a store daemon can truthfully fill."""

    runtime_version: str
    sessions: StatusSessions
