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
    "ChallengePayload",
    "ClientInfo",
    "ConnectAuth",
    "ConnectParams",
    "DeviceProof",
    "ErrorShape",
    "EventFrame",
    "Features",
    "HelloAuth",
    "HelloOk",
    "Policy",
    "RequestFrame",
    "ResponseFrame",
    "ServerInfo",
    "SessionsCleanupParams",
    "SessionsDefaults",
    "SessionsListParams",
    "SessionsListResult",
    "SessionsListRow",
    "ShutdownPayload",
    "Snapshot",
    "StateVersion",
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


class Snapshot(_Out):
    presence: list[Any]
    health: Any
    state_version: StateVersion
    uptime_ms: int
    config_path: str | msgspec.UnsetType = msgspec.UNSET
    state_dir: str | msgspec.UnsetType = msgspec.UNSET
    auth_mode: Literal["none", "token", "password"] | msgspec.UnsetType = msgspec.UNSET


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
    """`sessions.list` params as the reference declares them; docs/compat.md says which ones
    sessiond refuses (`label`, `spawnedBy`, `search`) rather than ignores."""

    limit: Positive | msgspec.UnsetType = msgspec.UNSET
    active_minutes: Positive | msgspec.UnsetType = msgspec.UNSET
    include_global: bool | msgspec.UnsetType = msgspec.UNSET
    include_unknown: bool | msgspec.UnsetType = msgspec.UNSET
    configured_agents_only: bool | msgspec.UnsetType = msgspec.UNSET
    include_derived_titles: bool | msgspec.UnsetType = msgspec.UNSET
    include_last_message: bool | msgspec.UnsetType = msgspec.UNSET
    label: str | msgspec.UnsetType = msgspec.UNSET
    spawned_by: NonEmpty | msgspec.UnsetType = msgspec.UNSET
    agent_id: NonEmpty | msgspec.UnsetType = msgspec.UNSET
    search: str | msgspec.UnsetType = msgspec.UNSET


class SessionsDefaults(msgspec.Struct, rename="camel"):
    """Model defaults; sessiond knows no model catalog, so each is null."""

    model_provider: str | None = None
    model: str | None = None
    context_tokens: int | None = None


class SessionsListRow(_Out):
    """The reference's `GatewaySessionRow`, restricted to what a stored row says by itself."""

    key: str
    kind: Literal["direct", "group", "global", "unknown"]
    updated_at: int | float | None
    session_id: str | msgspec.UnsetType = msgspec.UNSET
    chat_type: str | msgspec.UnsetType = msgspec.UNSET
    model: str | msgspec.UnsetType = msgspec.UNSET


class SessionsListResult(msgspec.Struct, rename="camel"):
    ts: int
    path: str
    count: int
    total_count: int
    limit_applied: int
    has_more: bool
    defaults: SessionsDefaults
    sessions: list[SessionsListRow]
