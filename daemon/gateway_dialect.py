"""OpenClaw's gateway protocol v4 without I/O: one connection, from challenge to requests.

The caller (server.py) owns the socket and the clock; this object owns the rules. It turns
received frames into outputs, and the caller carries them out in order:

- `Send(data)`: send one text frame; `Close(code, reason)`: close the connection, then stop;
- `Connected()`: `connect` succeeded (mark the connection authenticated, start `tick()`s every
  `facts.tick_interval_ms`);
- `Dispatch(...)`: run `dispatch.call` through the daemon's one implementation of that method
  (the JSON-RPC dialect runs the same; for OpenClaw's clients' methods it is given the
  reference's params and answers in the reference's shapes, daemon/gateway_sessions.py), then
  send `answer(...)`, `refuse(...)` (a domain error, coded from protocol/errors.py) or
  `crashed(...)` for it;
- `SwitchToJsonRpc(frame)`: the peer speaks JSON-RPC 2.0 after all (it stayed silent until the
  challenge came); hand this frame and the connection to the JSON-RPC dialect.

Rules, as OpenClaw 2026.5.12 applies them (observed codes in docs/openclaw-cli.md):

- `opening()` is the `connect.challenge` event, nonce and our clock; nothing else is accepted
  before a `connect` request. A pre-connect frame over 64 KiB closes 1009; invalid JSON closes
  1000; a frame that is not a request closes 1008; a request other than `connect`, or `connect`
  with invalid params, is answered INVALID_REQUEST and closes 1008; a protocol range without 4
  closes 1002.
- Credentials are the shared token or password, compared in constant time. A `device` block
  must name the SHA-256 of its public key, be signed within 2 minutes of our clock, carry the
  nonce of *this* connection, and hold a valid ed25519 signature over the v3 payload (v2
  accepted); each failure is INVALID_REQUEST with `details.code` and closes 1008. A connect
  replayed on another connection fails on the nonce; a second `connect` on this one is refused.
- Without a `device` block a correct shared secret connects with no scopes (so every method
  answers "missing scope"); without either, NOT_PAIRED "device identity required".
- After `hello-ok`: unknown methods, bad params and missing scopes are INVALID_REQUEST answers
  and the connection stays open; invalid JSON is ignored.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Any, Final, Literal

import msgspec
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sessiond.daemon.jsonrpc_dialect import Call
from sessiond.engine.errors import DomainError
from sessiond.protocol.cleanup import CleanupParams
from sessiond.protocol.errors import ERRORS
from sessiond.protocol.gateway_frames import (
    INVALID_REQUEST,
    NOT_PAIRED,
    PROTOCOL_VERSION,
    ChallengePayload,
    ChatHistoryParams,
    ConnectAuth,
    ConnectParams,
    DeviceProof,
    EmptyParams,
    ErrorShape,
    EventFrame,
    Features,
    HelloAuth,
    HelloOk,
    Policy,
    RequestFrame,
    ResponseFrame,
    ServerInfo,
    SessionDefaultsSnapshot,
    SessionsCleanupParams,
    SessionsDeleteParams,
    SessionsDescribeParams,
    SessionsListParams,
    SessionsPatchParams,
    SessionsPreviewParams,
    SessionsResetParams,
    ShutdownPayload,
    Snapshot,
    StateVersion,
    TickPayload,
)
from sessiond.protocol.methods import keyed_by_table, served_by

__all__ = [
    "ADMIN_SCOPE",
    "DEVICE_SIGNATURE_SKEW_MS",
    "EVENTS",
    "GATEWAY_METHODS",
    "HANDSHAKE_TIMEOUT_MS",
    "MAX_PREAUTH_FRAME_BYTES",
    "TICK_INTERVAL_MS",
    "Close",
    "Connected",
    "Credentials",
    "Dispatch",
    "GatewayConnection",
    "Output",
    "Send",
    "ServerFacts",
    "State",
    "SwitchToJsonRpc",
    "device_auth_payload",
    "device_id_for",
    "looks_like_gateway",
]

DEVICE_SIGNATURE_SKEW_MS: Final = 120_000
MAX_PREAUTH_FRAME_BYTES: Final = 64 * 1024
HANDSHAKE_TIMEOUT_MS: Final = 15_000
TICK_INTERVAL_MS: Final = 30_000
CLOSE_REASON_MAX_BYTES: Final = 120
ADMIN_SCOPE: Final = "operator.admin"
READ_SCOPE: Final = "operator.read"
WRITE_SCOPE: Final = "operator.write"
EVENTS: Final = ("connect.challenge", "tick", "shutdown", "sessions.changed")
"""Every event this dialect sends (`hello-ok.features.events`)."""

_UNREADABLE: Final = (msgspec.DecodeError, RecursionError, UnicodeDecodeError)
"""What decoding raises on bytes that are not JSON it can read: bad syntax, nesting deeper than
the decoder's limit, invalid UTF-8. Each is the peer's fault; none may end a connection 1011."""
_ENCODER = msgspec.json.Encoder()
_LOOSE = msgspec.json.Decoder(dict[str, Any])
_REQUEST = msgspec.json.Decoder(RequestFrame)
_CONNECT = msgspec.json.Decoder(ConnectParams)


# ----------------------------------------------------------------------------------- outputs


@dataclass(frozen=True, slots=True)
class Send:
    data: bytes


@dataclass(frozen=True, slots=True)
class Close:
    code: int
    reason: str


@dataclass(frozen=True, slots=True)
class Connected:
    """The handshake succeeded: the connection may now call methods and gets ticks."""


@dataclass(frozen=True, slots=True)
class SwitchToJsonRpc:
    frame: bytes


@dataclass(frozen=True, slots=True)
class Dispatch:
    """One accepted request: `call` is what `Daemon.dispatch` takes, in either dialect."""

    request_id: str
    method: str
    call: Call


Output = Send | Close | Connected | Dispatch | SwitchToJsonRpc


# ------------------------------------------------------------------------------ configuration


@dataclass(frozen=True, slots=True)
class Credentials:
    """The shared secret clients must present; neither set means no shared secret at all."""

    token: str | None = None
    password: str | None = None

    @property
    def mode(self) -> Literal["none", "token", "password"]:
        if self.password is not None and self.token is None:
            return "password"
        return "token" if self.token is not None else "none"


@dataclass(frozen=True, slots=True)
class ServerFacts:
    """What `hello-ok` tells the client about this server; the shell fills it in once."""

    version: str
    started_ms: int
    max_payload: int
    state_dir: str | None = None
    config_path: str | None = None
    tick_interval_ms: int = TICK_INTERVAL_MS
    session_defaults: SessionDefaultsSnapshot | None = None


# ------------------------------------------------------------------------- method adapters


@dataclass(frozen=True, slots=True)
class GatewayAdapter:
    """The gateway's shape of one method of the table: its params in, its payload out.

    `to_params` may raise a domain error (`InvalidParams`) for params that validate but that
    sessiond does not serve; it is answered as the error table codes its kind. The methods
    OpenClaw's clients call keep the reference's params and payload as they are (`_native`):
    the daemon's implementation serves those in the reference's shapes.
    """

    params: type[Any]
    scope: str
    to_params: Callable[[Any], Any]
    to_payload: Callable[[Any, Any, int, Mapping[str, str]], Any]
    """(sessiond result, the sessiond params, now in ms, agent id -> store path) -> payload."""


def _unset_none(value: Any) -> Any:
    return None if value is msgspec.UNSET else value


def _cleanup_params(p: SessionsCleanupParams) -> CleanupParams:
    return CleanupParams(
        agent=_unset_none(p.agent),
        all_agents=p.all_agents is True,
        enforce=p.enforce is True,
        active_key=_unset_none(p.active_key),
        fix_missing=p.fix_missing is True,
        fix_dm_scope=p.fix_dm_scope is True,
        dry_run=False,
    )


def _cleanup_payload(result: Any, _params: Any, _now_ms: int, _paths: Mapping[str, str]) -> Any:
    return result


def _same(params: Any) -> Any:
    return params


def _as_is(result: Any, _params: Any, _now_ms: int, _paths: Mapping[str, str]) -> Any:
    return result


def _native(params: type[Any], scope: str) -> GatewayAdapter:
    """A method the daemon answers in the reference's shape: its params and payload as they are."""
    return GatewayAdapter(params, scope, _same, _as_is)


GATEWAY_METHODS: Final[dict[str, GatewayAdapter]] = keyed_by_table(
    {
        "sessions.cleanup": GatewayAdapter(
            SessionsCleanupParams, ADMIN_SCOPE, _cleanup_params, _cleanup_payload
        ),
        # ---- OpenClaw's clients (issue 14): TUI, Control UI, macOS app (gateway_sessions.py)
        "sessions.list": _native(SessionsListParams, READ_SCOPE),
        "sessions.preview": _native(SessionsPreviewParams, READ_SCOPE),
        "sessions.describe": _native(SessionsDescribeParams, READ_SCOPE),
        "sessions.subscribe": _native(EmptyParams, READ_SCOPE),
        "sessions.unsubscribe": _native(EmptyParams, READ_SCOPE),
        "sessions.patch": _native(SessionsPatchParams, ADMIN_SCOPE),
        "sessions.reset": _native(SessionsResetParams, ADMIN_SCOPE),
        "sessions.delete": _native(SessionsDeleteParams, ADMIN_SCOPE),
        "agents.list": _native(EmptyParams, READ_SCOPE),
        "chat.history": _native(ChatHistoryParams, READ_SCOPE),
        "health": _native(EmptyParams, READ_SCOPE),
        "status": _native(EmptyParams, READ_SCOPE),
    },
    served_by("gateway"),
)
"""The methods the table says this dialect serves, with their adapters: exactly the ones
`hello-ok.features.methods` announces. Anything else (chat.send, models.list, compaction,
usage: they need a model) is answered as the reference answers an unknown method, `unknown
method: <name>`, which the clients branch on."""


# ---------------------------------------------------------------------------- device proofs


def _b64url_decode(text: str) -> bytes:
    text = text.strip()
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _raw_public_key(public_key: str) -> bytes | None:
    """The raw key bytes from base64url or a PEM, as the reference accepts both."""
    try:
        if "BEGIN" in public_key:
            key = serialization.load_pem_public_key(public_key.encode())
            if not isinstance(key, Ed25519PublicKey):
                return None
            return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        raw = _b64url_decode(public_key)
    except (ValueError, binascii.Error, TypeError):
        return None
    return raw or None


def device_id_for(public_key: str) -> str | None:
    """The device id a public key must come with: hex SHA-256 of the raw key."""
    raw = _raw_public_key(public_key)
    return hashlib.sha256(raw).hexdigest() if raw is not None else None


def _metadata(value: str | msgspec.UnsetType) -> str:
    if not isinstance(value, str):
        return ""
    return re.sub(r"[A-Z]", lambda m: m.group(0).lower(), value.strip())


def device_auth_payload(
    params: ConnectParams, *, role: str, scopes: list[str], nonce: str, version: str = "v3"
) -> str:
    """The text a device signs, fields joined by `|`.

    v3: `v3`, device id, client id, client mode, role, scopes (comma-joined), signedAt, token,
    nonce, platform, device family (both trimmed, ASCII-lowercased); v2 lacks the last two.
    `token` is the first of auth token, device token and bootstrap token that was sent.
    """
    assert isinstance(params.device, DeviceProof)
    auth = params.auth if isinstance(params.auth, ConnectAuth) else ConnectAuth()
    token = next(
        (t for t in (auth.token, auth.device_token, auth.bootstrap_token) if isinstance(t, str)),
        "",
    )
    fields = [
        version,
        params.device.id,
        params.client.id,
        params.client.mode,
        role,
        ",".join(scopes),
        str(params.device.signed_at),
        token,
        nonce,
    ]
    if version == "v3":
        fields += [_metadata(params.client.platform), _metadata(params.client.device_family)]
    return "|".join(fields)


def _signature_valid(public_key: bytes, payload: str, signature: str) -> bool:
    try:
        sig = _b64url_decode(signature)
        Ed25519PublicKey.from_public_bytes(public_key).verify(sig, payload.encode())
    except (ValueError, binascii.Error, InvalidSignature):
        return False
    return True


# --------------------------------------------------------------------------------- helpers


def _encode(frame: Any) -> bytes:
    return _ENCODER.encode(frame)


def _truncate(reason: str) -> str:
    data = reason.encode()
    if len(data) <= CLOSE_REASON_MAX_BYTES:
        return reason
    return data[:CLOSE_REASON_MAX_BYTES].decode(errors="ignore")


def _json_pointer(path: str) -> str:
    """msgspec's `$.a[0].b` as the JSON pointer the reference prints (`/a/0/b`)."""
    parts = re.findall(r"\.([^.\[]+)|\[(\d+)\]", path[1:])
    return "".join("/" + (name or index) for name, index in parts)


def describe_validation(exc: msgspec.ValidationError) -> str:
    """A msgspec validation error worded like the reference's (ajv) messages."""
    reason, sep, path = str(exc).rpartition(" - at `")
    if not sep:
        reason, path = str(exc), "$"
    pointer = _json_pointer(path.rstrip("`"))
    unknown = re.fullmatch(r"Object contains unknown field `(.+)`", reason)
    if unknown:
        return f"at {pointer or 'root'}: unexpected property '{unknown.group(1)}'"
    missing = re.fullmatch(r"Object missing required field `(.+)`", reason)
    if missing:
        reason = f"must have required property '{missing.group(1)}'"
    return f"at {pointer}: {reason}" if pointer else reason


def looks_like_gateway(frame: bytes) -> bool:
    """Whether a client's first frame is this dialect's (an object with `type`) not JSON-RPC."""
    try:
        loose = _LOOSE.decode(frame)
    except (*_UNREADABLE, msgspec.ValidationError):
        return False
    return "type" in loose and "jsonrpc" not in loose


def _is_jsonrpc(loose: Any) -> bool:
    return isinstance(loose, dict) and "jsonrpc" in loose and "type" not in loose


_AUTH_CODES: Final = {
    "token_missing": "AUTH_TOKEN_MISSING",
    "token_mismatch": "AUTH_TOKEN_MISMATCH",
    "token_missing_config": "AUTH_TOKEN_NOT_CONFIGURED",
    "password_missing": "AUTH_PASSWORD_MISSING",
    "password_mismatch": "AUTH_PASSWORD_MISMATCH",
    "password_missing_config": "AUTH_PASSWORD_NOT_CONFIGURED",
    "bootstrap_token_invalid": "AUTH_BOOTSTRAP_TOKEN_INVALID",
    "device_token_mismatch": "AUTH_DEVICE_TOKEN_MISMATCH",
}
_NEXT_STEP: Final = {
    "token_missing": "update_auth_configuration",
    "token_missing_config": "update_auth_configuration",
    "password_missing": "update_auth_configuration",
    "password_missing_config": "update_auth_configuration",
    "token_mismatch": "update_auth_credentials",
    "password_mismatch": "update_auth_credentials",
    "device_token_mismatch": "update_auth_credentials",
}
_DEVICE_CODES: Final = {
    "device-id-mismatch": "DEVICE_AUTH_DEVICE_ID_MISMATCH",
    "device-signature-stale": "DEVICE_AUTH_SIGNATURE_EXPIRED",
    "device-nonce-missing": "DEVICE_AUTH_NONCE_REQUIRED",
    "device-nonce-mismatch": "DEVICE_AUTH_NONCE_MISMATCH",
    "device-signature": "DEVICE_AUTH_SIGNATURE_INVALID",
    "device-public-key": "DEVICE_AUTH_PUBLIC_KEY_INVALID",
}


def _offered(value: str | msgspec.UnsetType) -> str | None:
    if not isinstance(value, str):
        return None
    return value.strip() or None


def _same_secret(offered: str, expected: str) -> bool:
    return hmac.compare_digest(offered.encode(), expected.encode())


def _auth_failure_message(mode: str, provided: str, reason: str, params: ConnectParams) -> str:
    """The reference's wording, which its CLI prints as `gateway connect failed: ...`."""
    client = params.client
    is_cli = client.mode == "cli"
    is_ui = client.id in ("openclaw-control-ui", "openclaw-tui")
    is_webchat = client.mode == "webchat" or client.id == "webchat-ui"
    if is_cli:
        token_hint = "set gateway.remote.token to match gateway.auth.token"
        password_hint = "set gateway.remote.password to match gateway.auth.password"
    elif is_ui or is_webchat:
        token_hint = "open the dashboard URL and paste the token in Control UI settings"
        password_hint = "enter the password in Control UI settings"
    else:
        token_hint = "provide gateway auth token"
        password_hint = "provide gateway auth password"
    messages = {
        "token_missing": f"unauthorized: gateway token missing ({token_hint})",
        "token_mismatch": f"unauthorized: gateway token mismatch ({token_hint})",
        "token_missing_config": (
            "unauthorized: gateway token not configured on gateway (set gateway.auth.token)"
        ),
        "password_missing": f"unauthorized: gateway password missing ({password_hint})",
        "password_mismatch": f"unauthorized: gateway password mismatch ({password_hint})",
        "password_missing_config": (
            "unauthorized: gateway password not configured on gateway (set gateway.auth.password)"
        ),
        "bootstrap_token_invalid": (
            "unauthorized: bootstrap token invalid or expired (scan a fresh setup code)"
        ),
        "device_token_mismatch": (
            "unauthorized: device token mismatch (rotate/reissue device token)"
        ),
    }
    if reason in messages:
        return messages[reason]
    if mode == "token" and provided == "none":
        return messages["token_missing"]
    if mode == "password" and provided == "none":
        return messages["password_missing"]
    return "unauthorized"


# ------------------------------------------------------------------------------ the machine


class State(Enum):
    AWAITING_CONNECT = "awaiting-connect"
    CONNECTED = "connected"
    CLOSED = "closed"


@dataclass(frozen=True, slots=True)
class _Handshake:
    """What a successful connect grants."""

    role: str
    scopes: list[str]


class _Reject(Exception):
    """A refused connect: the error answer (if any) and the close that follows it."""

    def __init__(self, error: ErrorShape | None, code: int, reason: str) -> None:
        super().__init__(reason)
        self.error = error
        self.code = code
        self.reason = reason


class GatewayConnection:
    """One connection's protocol state. Not thread-safe; one per socket."""

    def __init__(
        self,
        *,
        credentials: Credentials,
        facts: ServerFacts,
        nonce: str,
        conn_id: str,
        methods: Mapping[str, GatewayAdapter] = GATEWAY_METHODS,
    ) -> None:
        self.credentials = credentials
        self.facts = facts
        self.nonce = nonce
        self.conn_id = conn_id
        self.methods = methods
        self.state = State.AWAITING_CONNECT
        self.role = "operator"
        self.scopes: list[str] = []
        self._seq = 0
        self._decoders = {name: msgspec.json.Decoder(m.params) for name, m in methods.items()}

    # ------------------------------------------------------------------------- server events

    def opening(self, now_ms: int) -> bytes:
        """The `connect.challenge` event: send it as soon as the connection is open."""
        payload = ChallengePayload(nonce=self.nonce, ts=now_ms)
        return _encode(EventFrame(event="connect.challenge", payload=payload))

    def tick(self, now_ms: int) -> bytes:
        return self._event("tick", TickPayload(ts=now_ms))

    def targeted_event(self, name: str, payload: Any) -> bytes:
        """An event for subscribers only (`sessions.changed`): like the reference's targeted
        events it carries no `seq` and leaves the connection's sequence alone."""
        return _encode(EventFrame(event=name, payload=payload))

    def shutdown(self, reason: str, restart_expected_ms: int | None = None) -> bytes:
        """The event the reference sends to every client before closing them with 1012."""
        later = msgspec.UNSET if restart_expected_ms is None else restart_expected_ms
        return self._event("shutdown", ShutdownPayload(reason, later))

    def handshake_timeout(self) -> list[Output]:
        """No `connect` in time: close as the reference does (1000, no reason)."""
        if self.state is not State.AWAITING_CONNECT:
            return []
        self.state = State.CLOSED
        return [Close(1000, "")]

    def _event(self, name: str, payload: Any) -> bytes:
        self._seq += 1
        return _encode(EventFrame(event=name, payload=payload, seq=self._seq))

    # ---------------------------------------------------------------------------- receiving

    def receive(self, data: bytes, now_ms: int) -> list[Output]:
        """What to do about one frame from the client."""
        if self.state is State.CLOSED:
            return []
        if self.state is State.AWAITING_CONNECT:
            return self._before_connect(data, now_ms)
        return self._request(data)

    def _before_connect(self, data: bytes, now_ms: int) -> list[Output]:
        if len(data) > MAX_PREAUTH_FRAME_BYTES:
            return self._close(1009, "preauth payload too large")
        try:
            loose = msgspec.json.decode(data)
        except _UNREADABLE:
            return self._close(1000, "")
        if _is_jsonrpc(loose):
            self.state = State.CLOSED
            return [SwitchToJsonRpc(data)]
        try:
            frame = _REQUEST.decode(data)
        except (*_UNREADABLE, msgspec.ValidationError):
            return self._close(1008, "invalid request frame")
        if frame.method != "connect":
            message = "invalid handshake: first request must be connect"
            return self._reject(
                frame.id, _Reject(ErrorShape(INVALID_REQUEST, message), 1008, message)
            )
        try:
            raw = bytes(frame.params) if frame.params is not msgspec.UNSET else b"null"
            params = _CONNECT.decode(raw)
        except (*_UNREADABLE, msgspec.ValidationError) as exc:
            detail = (
                describe_validation(exc)
                if isinstance(exc, msgspec.ValidationError)
                else f"unreadable ({type(exc).__name__})"
            )
            message = f"invalid connect params: {detail}"
            return self._reject(
                frame.id, _Reject(ErrorShape(INVALID_REQUEST, message), 1008, message)
            )
        try:
            granted = self._handshake(params, now_ms)
        except _Reject as reject:
            return self._reject(frame.id, reject)
        self.state = State.CONNECTED
        self.role = granted.role
        self.scopes = granted.scopes
        hello = self._hello(granted, now_ms)
        return [Send(_encode(ResponseFrame(id=frame.id, ok=True, payload=hello))), Connected()]

    def _reject(self, request_id: str, reject: _Reject) -> list[Output]:
        out: list[Output] = []
        if reject.error is not None:
            out.append(Send(_encode(ResponseFrame(id=request_id, ok=False, error=reject.error))))
        return out + self._close(reject.code, _truncate(reject.reason or "invalid handshake"))

    def _close(self, code: int, reason: str) -> list[Output]:
        self.state = State.CLOSED
        return [Close(code, reason)]

    # ----------------------------------------------------------------------------- handshake

    def _handshake(self, params: ConnectParams, now_ms: int) -> _Handshake:
        """The grants for a valid connect, or `_Reject`: checks in the reference's order."""
        if not (params.max_protocol >= PROTOCOL_VERSION >= params.min_protocol):
            error = ErrorShape(
                INVALID_REQUEST,
                "protocol mismatch",
                details={"expectedProtocol": PROTOCOL_VERSION, "minimumProbeProtocol": 4},
            )
            raise _Reject(error, 1002, "protocol mismatch")
        role = "operator" if params.role is msgspec.UNSET else params.role
        if role not in ("operator", "node"):
            raise _Reject(ErrorShape(INVALID_REQUEST, "invalid role"), 1008, "invalid role")
        scopes = list(params.scopes) if isinstance(params.scopes, list) else []
        auth = params.auth if isinstance(params.auth, ConnectAuth) else ConnectAuth()
        shared_offered = _offered(auth.token) is not None or _offered(auth.password) is not None
        reason, method = self._check_secret(auth)
        shared_ok = reason is None and method in ("token", "password")
        device = params.device if isinstance(params.device, DeviceProof) else None
        if device is None:
            is_ui = params.client.id in ("openclaw-control-ui", "openclaw-tui")
            if is_ui:
                message = (
                    "control ui requires device identity (use HTTPS or localhost secure context)"
                )
                details = {"code": "CONTROL_UI_DEVICE_IDENTITY_REQUIRED"}
                raise _Reject(ErrorShape(INVALID_REQUEST, message, details=details), 1008, message)
            if role == "operator" and shared_ok:
                return _Handshake(role, [])  # no device: no scopes, as the reference does
            if reason is not None and shared_offered:
                raise self._unauthorized(reason, auth, params)
            message = "device identity required"
            details = {"code": "DEVICE_IDENTITY_REQUIRED"}
            raise _Reject(ErrorShape(NOT_PAIRED, message, details=details), 1008, message)
        self._check_device(params, device, role, scopes, now_ms)
        if reason is not None:
            if _offered(auth.device_token) is not None:
                reason = "device_token_mismatch"  # sessiond issues no device tokens
            elif not shared_offered and _offered(auth.bootstrap_token) is not None:
                reason = "bootstrap_token_invalid"
            raise self._unauthorized(reason, auth, params)
        return _Handshake(role, scopes)

    def _check_secret(self, auth: ConnectAuth) -> tuple[str | None, str]:
        """(failure reason or None, auth method) for the offered shared secret."""
        creds = self.credentials
        mode = creds.mode
        if mode == "none":
            return None, "none"
        if mode == "password":
            assert creds.password is not None
            offered = _offered(auth.password)
            if offered is None:
                return "password_missing", mode
            return (None if _same_secret(offered, creds.password) else "password_mismatch"), mode
        assert creds.token is not None
        offered = _offered(auth.token)
        if offered is None:
            password = _offered(auth.password)
            if password is not None and creds.password is not None:
                ok = _same_secret(password, creds.password)
                return (None, "password") if ok else ("password_mismatch", "password")
            return "token_missing", mode
        return (None if _same_secret(offered, creds.token) else "token_mismatch"), mode

    def _unauthorized(self, reason: str, auth: ConnectAuth, params: ConnectParams) -> _Reject:
        provided = (
            "password"
            if _offered(auth.password)
            else "token"
            if _offered(auth.token)
            else "bootstrap-token"
            if _offered(auth.bootstrap_token)
            else "device-token"
            if _offered(auth.device_token)
            else "none"
        )
        message = _auth_failure_message(self.credentials.mode, provided, reason, params)
        details = {
            "code": _AUTH_CODES.get(reason, "AUTH_UNAUTHORIZED"),
            "authReason": reason,
            # sessiond issues no device tokens, so retrying with one can never help.
            "canRetryWithDeviceToken": False,
            "recommendedNextStep": _NEXT_STEP.get(reason, "review_auth_configuration"),
        }
        return _Reject(ErrorShape(INVALID_REQUEST, message, details=details), 1008, message)

    def _check_device(
        self, params: ConnectParams, device: DeviceProof, role: str, scopes: list[str], now_ms: int
    ) -> None:
        def invalid(reason: str, message: str) -> _Reject:
            details = {"code": _DEVICE_CODES.get(reason, "DEVICE_AUTH_INVALID"), "reason": reason}
            return _Reject(ErrorShape(INVALID_REQUEST, message, details=details), 1008, message)

        derived = device_id_for(device.public_key)
        if derived is None or not hmac.compare_digest(derived, device.id):
            raise invalid("device-id-mismatch", "device identity mismatch")
        if abs(now_ms - device.signed_at) > DEVICE_SIGNATURE_SKEW_MS:
            raise invalid("device-signature-stale", "device signature expired")
        nonce = device.nonce.strip()
        if not nonce:
            raise invalid("device-nonce-missing", "device nonce required")
        if not hmac.compare_digest(nonce.encode(), self.nonce.encode()):
            raise invalid("device-nonce-mismatch", "device nonce mismatch")
        raw = _raw_public_key(device.public_key)
        if raw is None or len(raw) != 32:
            raise invalid("device-signature", "device signature invalid")
        signed = any(
            _signature_valid(
                raw,
                device_auth_payload(params, role=role, scopes=scopes, nonce=nonce, version=v),
                device.signature,
            )
            for v in ("v3", "v2")
        )
        if not signed:
            raise invalid("device-signature", "device signature invalid")

    def _hello(self, granted: _Handshake, now_ms: int) -> HelloOk:
        facts = self.facts
        mode = self.credentials.mode
        return HelloOk(
            protocol=PROTOCOL_VERSION,
            server=ServerInfo(version=facts.version, conn_id=self.conn_id),
            features=Features(methods=list(self.methods), events=list(EVENTS)),
            snapshot=Snapshot(
                presence=[],
                health={"ok": True, "ts": now_ms},
                state_version=StateVersion(presence=0, health=0),
                uptime_ms=max(0, now_ms - facts.started_ms),
                config_path=facts.config_path or msgspec.UNSET,
                state_dir=facts.state_dir or msgspec.UNSET,
                auth_mode=mode,
                session_defaults=facts.session_defaults or msgspec.UNSET,
            ),
            auth=HelloAuth(role=granted.role, scopes=granted.scopes),
            policy=Policy(
                max_payload=facts.max_payload,
                max_buffered_bytes=facts.max_payload,
                tick_interval_ms=facts.tick_interval_ms,
            ),
        )

    # ------------------------------------------------------------------------------ requests

    def _request(self, data: bytes) -> list[Output]:
        try:
            loose = msgspec.json.decode(data)
        except _UNREADABLE:
            return []  # the reference logs and ignores unparsable frames once connected
        try:
            frame = _REQUEST.decode(data)
        except msgspec.ValidationError as exc:  # (a DecodeError too: caught first)
            ident = loose.get("id") if isinstance(loose, dict) else None
            message = f"invalid request frame: {describe_validation(exc)}"
            return [self._error(ident if isinstance(ident, str) else "invalid", message)]
        except _UNREADABLE:
            return []
        if frame.method == "connect":
            return [self._error(frame.id, "connect is only valid as the first request")]
        denied = self._authorize(frame.method)
        if denied is not None:
            return [self._error(frame.id, denied)]
        method = self.methods.get(frame.method)
        if method is None:
            return [self._error(frame.id, f"unknown method: {frame.method}")]
        raw = bytes(frame.params) if frame.params is not msgspec.UNSET else b"{}"
        if raw.strip() == b"null":
            raw = b"{}"
        try:
            target = method.to_params(self._decoders[frame.method].decode(raw))
        except msgspec.ValidationError as exc:
            message = f"invalid {frame.method} params: {describe_validation(exc)}"
            return [self._error(frame.id, message)]
        except RecursionError:
            return [self._error(frame.id, f"invalid {frame.method} params: nested too deeply")]
        except DomainError as exc:
            return [Send(self._refusal(frame.id, exc))]
        call = Call(frame.method, target, frame.id)
        return [Dispatch(frame.id, frame.method, call)]

    def _authorize(self, method: str) -> str | None:
        """The reference's role and scope rule, for the methods served here."""
        if self.role != "operator":
            return f"unauthorized role: {self.role}"
        if ADMIN_SCOPE in self.scopes:
            return None
        known = self.methods.get(method)
        needed = known.scope if known is not None else ADMIN_SCOPE
        if needed == READ_SCOPE and (READ_SCOPE in self.scopes or WRITE_SCOPE in self.scopes):
            return None
        if needed != ADMIN_SCOPE and needed in self.scopes:
            return None
        return f"missing scope: {needed}"

    def _error(self, request_id: str, message: str) -> Send:
        error = ErrorShape(INVALID_REQUEST, message)
        return Send(_encode(ResponseFrame(id=request_id, ok=False, error=error)))

    # ------------------------------------------------------------------------------ answers

    def answer(
        self, dispatch: Dispatch, result: Any, now_ms: int, paths: Mapping[str, str]
    ) -> bytes:
        """The `res` for a method's result; `paths` maps each agent id to its store path."""
        method = self.methods[dispatch.method]
        payload = msgspec.Raw(
            _encode(method.to_payload(result, dispatch.call.params, now_ms, paths))
        )
        return _encode(ResponseFrame(id=dispatch.request_id, ok=True, payload=payload))

    def refuse(self, dispatch: Dispatch, error: DomainError) -> bytes:
        """The `res` for a domain error (the peer's fault or a store's state), coded by kind."""
        return self._refusal(dispatch.request_id, error)

    def _refusal(self, request_id: str, error: DomainError) -> bytes:
        codes = ERRORS[error.kind]
        shape = ErrorShape(
            codes.gateway,
            error.message,
            details=msgspec.UNSET if error.data is None else error.data,
            retryable=True if codes.retryable else msgspec.UNSET,
        )
        return _encode(ResponseFrame(id=request_id, ok=False, error=shape))

    def crashed(self, dispatch: Dispatch, exc: BaseException) -> bytes:
        """The `res` for a bug in a method: the `internal` row (UNAVAILABLE), as the reference
        answers one."""
        shape = ErrorShape(ERRORS["internal"].gateway, f"internal error: {type(exc).__name__}")
        return _encode(ResponseFrame(id=dispatch.request_id, ok=False, error=shape))
