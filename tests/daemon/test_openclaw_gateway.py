"""OpenClaw gateway protocol v4: the sans-I/O state machine, the daemon's dialect choice, and
(marked `reference`) the real `openclaw` CLI running `sessions cleanup` through sessiond.

The unit tests sign connects with a key they generate, exactly as the reference client does
(`buildDeviceAuthPayloadV3`), and check every refusal against the codes the reference gateway
was observed to send (docs/openclaw-cli.md lists them).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import os
import subprocess
import time
import uuid
from pathlib import Path
from typing import Any

import msgspec
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from differential import harness
from differential.fixtures import DAY, FRESH, HOUR, StateBuilder
from harness.daemon_process import DaemonProcess
from harness.reference_gateway import ReferenceGateway
from harness.state_dirs import read_rows, write_state_dir
from sessiond.daemon import gateway_dialect as gw
from sessiond.engine.errors import StoreNotFound, StoreWriteFailed
from sessiond.protocol.cleanup import CleanupParams
from sessiond.protocol.gateway_frames import SessionsListParams
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

TOKEN = "s3cret-token"
NOW = 1_795_000_000_000


# ------------------------------------------------------------------------------- a test client


def b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


class Device:
    """A device identity like the reference CLI's: ed25519, id = sha256(raw public key)."""

    def __init__(self) -> None:
        self.key = Ed25519PrivateKey.generate()
        self.raw = self.key.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )
        self.id = hashlib.sha256(self.raw).hexdigest()
        self.public_key = b64url(self.raw)

    def pem(self) -> str:
        return (
            self.key.public_key()
            .public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
            .decode()
        )

    def sign(self, text: str) -> str:
        return b64url(self.key.sign(text.encode()))


def connect_params(
    device: Device | None,
    nonce: str,
    *,
    token: str | None = TOKEN,
    password: str | None = None,
    signed_at: int = NOW,
    scopes: tuple[str, ...] = ("operator.admin",),
    role: str = "operator",
    client_id: str = "cli",
    mode: str = "cli",
    platform: str = "linux",
    signed_token: str | None = None,
    version: str = "v3",
    protocol: tuple[int, int] = (4, 4),
) -> dict[str, Any]:
    """Connect params as `GatewayClient.sendConnect` builds them, signed like the reference."""
    params: dict[str, Any] = {
        "minProtocol": protocol[0],
        "maxProtocol": protocol[1],
        "client": {
            "id": client_id,
            "version": "2026.5.12",
            "platform": platform,
            "mode": mode,
            "instanceId": str(uuid.uuid4()),
        },
        "caps": [],
        "role": role,
        "scopes": list(scopes),
    }
    auth = {k: v for k, v in (("token", token), ("password", password)) if v is not None}
    if auth:
        params["auth"] = auth
    if device is not None:
        fields = [
            version,
            device.id,
            client_id,
            mode,
            role,
            ",".join(scopes),
            str(signed_at),
            signed_token if signed_token is not None else (token or ""),
            nonce,
        ]
        if version == "v3":
            fields += [platform.strip().lower(), ""]
        params["device"] = {
            "id": device.id,
            "publicKey": device.public_key,
            "signature": device.sign("|".join(fields)),
            "signedAt": signed_at,
            "nonce": nonce,
        }
    return params


def req(method: str, params: Any = None, ident: str | None = None) -> bytes:
    frame: dict[str, Any] = {"type": "req", "id": ident or str(uuid.uuid4()), "method": method}
    if params is not None:
        frame["params"] = params
    return json.dumps(frame).encode()


def machine(
    credentials: gw.Credentials | None = None, nonce: str = "nonce-1"
) -> gw.GatewayConnection:
    facts = gw.ServerFacts(version="0.1.0", started_ms=NOW - 5000, max_payload=4 << 20)
    return gw.GatewayConnection(
        credentials=credentials or gw.Credentials(token=TOKEN),
        facts=facts,
        nonce=nonce,
        conn_id="conn-1",
    )


def sent(outputs: list[gw.Output]) -> list[dict[str, Any]]:
    return [json.loads(o.data) for o in outputs if isinstance(o, gw.Send)]


def closes(outputs: list[gw.Output]) -> list[tuple[int, str]]:
    return [(o.code, o.reason) for o in outputs if isinstance(o, gw.Close)]


def connected(conn: gw.GatewayConnection, device: Device | None = None) -> gw.GatewayConnection:
    outputs = conn.receive(req("connect", connect_params(device or Device(), conn.nonce)), NOW)
    assert any(isinstance(o, gw.Connected) for o in outputs), sent(outputs)
    return conn


def refusal(outputs: list[gw.Output]) -> tuple[dict[str, Any], tuple[int, str]]:
    """The single error answer and the close that follows it."""
    frames = sent(outputs)
    assert len(frames) == 1 and frames[0]["ok"] is False, frames
    assert len(closes(outputs)) == 1, outputs
    return frames[0]["error"], closes(outputs)[0]


SERVED = [
    "sessions.cleanup",
    "sessions.list",
    "sessions.patch",
    "sessions.delete",
    "sessions.subscribe",
    "sessions.unsubscribe",
    "sessions.reset",
    "sessions.preview",
    "agents.list",
    "sessions.describe",
    "chat.history",
    "health",
    "status",
]
"""What sessiond answers in this dialect (issue 14: what OpenClaw's clients call), in the
method table's order."""


# ---------------------------------------------------------------------------------- handshake


def test_challenge_is_the_first_frame_with_nonce_and_clock() -> None:
    frame = json.loads(machine(nonce="n-42").opening(NOW))
    assert frame == {
        "type": "event",
        "event": "connect.challenge",
        "payload": {"nonce": "n-42", "ts": NOW},
    }


def test_signed_connect_gets_hello_ok_listing_exactly_what_is_served() -> None:
    conn = machine()
    outputs = conn.receive(req("connect", connect_params(Device(), "nonce-1"), "c1"), NOW)
    (frame,) = sent(outputs)
    assert any(isinstance(o, gw.Connected) for o in outputs)
    assert frame["type"] == "res" and frame["id"] == "c1" and frame["ok"] is True
    hello = frame["payload"]
    assert list(hello)[:2] == ["type", "protocol"]
    assert hello["type"] == "hello-ok" and hello["protocol"] == 4
    assert hello["server"] == {"version": "0.1.0", "connId": "conn-1"}
    assert hello["features"]["methods"] == SERVED
    assert hello["features"]["methods"] == list(gw.GATEWAY_METHODS)
    assert hello["features"]["events"] == [
        "connect.challenge",
        "tick",
        "shutdown",
        "sessions.changed",
    ]
    assert hello["auth"] == {"role": "operator", "scopes": ["operator.admin"]}
    assert hello["policy"]["tickIntervalMs"] == 30_000
    assert hello["snapshot"]["uptimeMs"] == 5000 and hello["snapshot"]["authMode"] == "token"
    assert "error" not in frame
    assert conn.state is gw.State.CONNECTED


def test_pem_public_key_and_v2_payload_are_accepted_as_the_reference_accepts_them() -> None:
    device = Device()
    conn = machine()
    params = connect_params(device, "nonce-1", version="v2")
    params["device"]["publicKey"] = device.pem()
    outputs = conn.receive(req("connect", params), NOW)
    assert any(isinstance(o, gw.Connected) for o in outputs), sent(outputs)


def test_bad_signature_is_refused_with_the_reference_codes() -> None:
    params = connect_params(Device(), "nonce-1")
    sig = base64.urlsafe_b64decode(params["device"]["signature"] + "==")
    params["device"]["signature"] = b64url(bytes([sig[0] ^ 1]) + sig[1:])
    error, close = refusal(machine().receive(req("connect", params), NOW))
    assert error == {
        "code": "INVALID_REQUEST",
        "message": "device signature invalid",
        "details": {"code": "DEVICE_AUTH_SIGNATURE_INVALID", "reason": "device-signature"},
    }
    assert close == (1008, "device signature invalid")


def test_signature_binds_the_token_role_scopes_and_platform() -> None:
    device = Device()
    cases = [
        connect_params(device, "nonce-1", signed_token="other-token"),
        {**connect_params(device, "nonce-1"), "scopes": ["operator.read"]},
        {**connect_params(device, "nonce-1"), "role": "node"},
    ]
    tampered = connect_params(device, "nonce-1")
    tampered["client"]["platform"] = "darwin"
    cases.append(tampered)
    for params in cases:
        error, close = refusal(machine().receive(req("connect", params), NOW))
        assert error["details"]["code"] == "DEVICE_AUTH_SIGNATURE_INVALID", params
        assert close[0] == 1008


def test_replayed_connect_fails_on_another_connection_and_twice_on_one() -> None:
    device = Device()
    first = machine(nonce="nonce-A")
    frame = req("connect", connect_params(device, "nonce-A"))
    assert any(isinstance(o, gw.Connected) for o in first.receive(frame, NOW))
    # The same signed frame on a new connection: that connection's nonce is different.
    error, close = refusal(machine(nonce="nonce-B").receive(frame, NOW + 10))
    assert error["message"] == "device nonce mismatch"
    assert error["details"] == {
        "code": "DEVICE_AUTH_NONCE_MISMATCH",
        "reason": "device-nonce-mismatch",
    }
    assert close == (1008, "device nonce mismatch")
    # And again on the first connection: connect is valid only as the first request.
    (answer,) = sent(first.receive(frame, NOW + 20))
    assert answer["error"] == {
        "code": "INVALID_REQUEST",
        "message": "connect is only valid as the first request",
    }
    assert first.state is gw.State.CONNECTED


@pytest.mark.parametrize("skew_ms", [-120_001, 120_001, -(10**9)])
def test_stale_or_future_signed_at_is_refused(skew_ms: int) -> None:
    signed_at = max(0, NOW + skew_ms)
    params = connect_params(Device(), "nonce-1", signed_at=signed_at)
    error, close = refusal(machine().receive(req("connect", params), NOW))
    assert error["details"] == {
        "code": "DEVICE_AUTH_SIGNATURE_EXPIRED",
        "reason": "device-signature-stale",
    }
    assert close == (1008, "device signature expired")


@pytest.mark.parametrize("skew_ms", [-120_000, 0, 120_000])
def test_signed_at_within_two_minutes_is_accepted(skew_ms: int) -> None:
    params = connect_params(Device(), "nonce-1", signed_at=NOW + skew_ms)
    assert any(isinstance(o, gw.Connected) for o in machine().receive(req("connect", params), NOW))


def test_device_id_must_be_the_hash_of_its_key() -> None:
    params = connect_params(Device(), "nonce-1")
    params["device"]["id"] = "ab" * 32
    error, close = refusal(machine().receive(req("connect", params), NOW))
    assert error["details"]["code"] == "DEVICE_AUTH_DEVICE_ID_MISMATCH"
    assert close == (1008, "device identity mismatch")


def test_wrong_token_is_refused_as_the_reference_words_it_for_the_cli() -> None:
    params = connect_params(Device(), "nonce-1", token="WRONG")
    error, close = refusal(machine().receive(req("connect", params), NOW))
    message = (
        "unauthorized: gateway token mismatch "
        "(set gateway.remote.token to match gateway.auth.token)"
    )
    assert error == {
        "code": "INVALID_REQUEST",
        "message": message,
        "details": {
            "code": "AUTH_TOKEN_MISMATCH",
            "authReason": "token_mismatch",
            "canRetryWithDeviceToken": False,
            "recommendedNextStep": "update_auth_credentials",
        },
    }
    assert close == (1008, message)


def test_missing_token_and_password_mode() -> None:
    error, _ = refusal(
        machine().receive(req("connect", connect_params(Device(), "nonce-1", token=None)), NOW)
    )
    assert error["details"]["code"] == "AUTH_TOKEN_MISSING"
    assert error["message"].startswith("unauthorized: gateway token missing")
    creds = gw.Credentials(password="pw")
    bad = connect_params(Device(), "nonce-1", token=None, password="nope")
    error, _ = refusal(machine(creds).receive(req("connect", bad), NOW))
    assert error["details"]["code"] == "AUTH_PASSWORD_MISMATCH"
    good = connect_params(Device(), "nonce-1", token=None, password="pw")
    assert any(
        isinstance(o, gw.Connected) for o in machine(creds).receive(req("connect", good), NOW)
    )


def test_secrets_are_compared_with_hmac_compare_digest(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[bytes, bytes]] = []
    real = gw.hmac.compare_digest

    def spy(a: Any, b: Any) -> bool:
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(gw.hmac, "compare_digest", spy)
    machine().receive(req("connect", connect_params(Device(), "nonce-1", token="WRONG")), NOW)
    assert (b"WRONG", TOKEN.encode()) in calls


def test_no_device_with_the_token_connects_without_scopes() -> None:
    conn = machine()
    outputs = conn.receive(req("connect", connect_params(None, "nonce-1")), NOW)
    (hello,) = sent(outputs)
    assert hello["payload"]["auth"] == {"role": "operator", "scopes": []}
    (answer,) = sent(conn.receive(req("sessions.cleanup", {}), NOW))
    assert answer["error"]["message"] == "missing scope: operator.admin"
    (answer,) = sent(conn.receive(req("sessions.list", {}), NOW))
    assert answer["error"]["message"] == "missing scope: operator.read"


def test_no_device_and_no_secret_needs_a_device_identity() -> None:
    params = connect_params(None, "nonce-1", token=None)
    error, close = refusal(machine().receive(req("connect", params), NOW))
    assert error == {
        "code": "NOT_PAIRED",
        "message": "device identity required",
        "details": {"code": "DEVICE_IDENTITY_REQUIRED"},
    }
    assert close == (1008, "device identity required")


def test_without_a_configured_secret_a_signed_device_connects() -> None:
    conn = machine(gw.Credentials())
    params = connect_params(Device(), "nonce-1", token=None)
    outputs = conn.receive(req("connect", params), NOW)
    assert sent(outputs)[0]["payload"]["snapshot"]["authMode"] == "none"


def test_handshake_frames_that_are_not_a_valid_connect() -> None:
    error, close = refusal(machine().receive(req("sessions.list", {}), NOW))
    assert error["message"] == "invalid handshake: first request must be connect"
    assert close == (1008, "invalid handshake: first request must be connect")

    error, close = refusal(machine().receive(req("connect", {"minProtocol": 4}), NOW))
    assert error["message"].startswith("invalid connect params: ")
    assert "must have required property 'maxProtocol'" in error["message"]
    assert close[0] == 1008

    params = connect_params(Device(), "nonce-1", protocol=(5, 6))
    error, close = refusal(machine().receive(req("connect", params), NOW))
    assert error == {
        "code": "INVALID_REQUEST",
        "message": "protocol mismatch",
        "details": {"expectedProtocol": 4, "minimumProbeProtocol": 4},
    }
    assert close == (1002, "protocol mismatch")

    params = {**connect_params(Device(), "nonce-1"), "role": "king"}
    error, close = refusal(machine().receive(req("connect", params), NOW))
    assert (error["message"], close) == ("invalid role", (1008, "invalid role"))

    outputs = machine().receive(b'{"type":"event","event":"x"}', NOW)
    assert sent(outputs) == [] and closes(outputs) == [(1008, "invalid request frame")]
    outputs = machine().receive(b"{nope", NOW)
    assert sent(outputs) == [] and closes(outputs) == [(1000, "")]
    big = req("connect", {"pad": "x" * gw.MAX_PREAUTH_FRAME_BYTES})
    assert closes(machine().receive(big, NOW)) == [(1009, "preauth payload too large")]


def test_a_json_rpc_frame_before_connect_hands_the_connection_over() -> None:
    frame = b'{"jsonrpc":"2.0","id":1,"method":"daemon.status"}'
    assert machine().receive(frame, NOW) == [gw.SwitchToJsonRpc(frame)]
    assert gw.looks_like_gateway(req("connect", {}))
    assert not gw.looks_like_gateway(frame)
    assert not gw.looks_like_gateway(b"[1, 2]")


def test_handshake_timeout_closes_1000_once() -> None:
    conn = machine()
    assert conn.handshake_timeout() == [gw.Close(1000, "")]
    assert conn.handshake_timeout() == []
    assert connected(machine()).handshake_timeout() == []


# ----------------------------------------------------------------------------------- requests


def test_cleanup_request_becomes_the_json_rpc_call_with_the_same_params() -> None:
    conn = connected(machine())
    params = {"allAgents": False, "enforce": False, "fixMissing": True, "fixDmScope": True}
    (dispatch,) = conn.receive(req("sessions.cleanup", params, "r1"), NOW)
    assert isinstance(dispatch, gw.Dispatch)
    assert dispatch.request_id == "r1" and dispatch.call.method == "sessions.cleanup"
    assert dispatch.call.params == CleanupParams(fix_missing=True, fix_dm_scope=True, dry_run=False)
    (dispatch,) = conn.receive(req("sessions.cleanup", {"agent": "ops", "activeKey": "k"}), NOW)
    assert isinstance(dispatch, gw.Dispatch)
    assert dispatch.call.params == CleanupParams(agent="ops", active_key="k")
    (dispatch,) = conn.receive(req("sessions.cleanup"), NOW)  # params absent: {}
    assert isinstance(dispatch, gw.Dispatch)


def test_unknown_method_bad_params_and_bad_frames_keep_the_connection_open() -> None:
    conn = connected(machine())
    (answer,) = sent(conn.receive(req("nope.method", {}, "u1"), NOW))
    assert answer == {
        "type": "res",
        "id": "u1",
        "ok": False,
        "error": {"code": "INVALID_REQUEST", "message": "unknown method: nope.method"},
    }
    (answer,) = sent(conn.receive(req("sessions.cleanup", {"bogus": 1}), NOW))
    assert answer["error"]["message"] == (
        "invalid sessions.cleanup params: at root: unexpected property 'bogus'"
    )
    (answer,) = sent(conn.receive(req("sessions.cleanup", {"dryRun": True}), NOW))
    assert "unexpected property 'dryRun'" in answer["error"]["message"]
    (answer,) = sent(conn.receive(req("sessions.cleanup", {"agent": None}), NOW))
    assert answer["error"]["message"].startswith("invalid sessions.cleanup params: at /agent")
    (answer,) = sent(conn.receive(req("sessions.list", {"search": 1}), NOW))
    assert answer["error"]["message"].startswith("invalid sessions.list params: at /search")
    (answer,) = sent(conn.receive(b'{"type":"req","method":"x"}', NOW))
    assert answer["id"] == "invalid"
    assert answer["error"]["message"].startswith("invalid request frame: ")
    assert conn.receive(b"not json", NOW) == []
    assert conn.state is gw.State.CONNECTED


def test_node_role_may_connect_but_call_nothing() -> None:
    device = Device()
    conn = machine()
    params = connect_params(device, "nonce-1", role="node", scopes=())
    assert any(isinstance(o, gw.Connected) for o in conn.receive(req("connect", params), NOW))
    (answer,) = sent(conn.receive(req("sessions.list", {}), NOW))
    assert answer["error"]["message"] == "unauthorized role: node"


def test_answers_refusals_and_crashes() -> None:
    conn = connected(machine())
    (dispatch,) = conn.receive(req("sessions.list", {"limit": 5000, "agentId": "main"}, "l1"), NOW)
    assert isinstance(dispatch, gw.Dispatch)
    # The table's sessions.list, handed the reference's params as they came: the daemon's
    # implementation answers those in the reference's shape (gateway_sessions.py).
    assert dispatch.call.method == "sessions.list"
    assert dispatch.call.params == SessionsListParams(limit=5000, agent_id="main")
    payload = {"ts": NOW, "path": "/s/main.json", "count": 0, "sessions": []}
    frame = json.loads(conn.answer(dispatch, payload, NOW, {}))
    assert frame == {"type": "res", "id": "l1", "ok": True, "payload": payload}

    error = StoreNotFound('Unknown agent id "x".', {"agent": "x"})
    frame = json.loads(conn.refuse(dispatch, error))
    assert frame["error"] == {
        "code": "INVALID_REQUEST",
        "message": 'Unknown agent id "x".',
        "details": {"agent": "x"},
    }
    frame = json.loads(conn.refuse(dispatch, StoreWriteFailed("disk full")))
    assert frame["error"] == {"code": "UNAVAILABLE", "message": "disk full", "retryable": True}
    frame = json.loads(conn.crashed(dispatch, KeyError("x")))
    assert frame["error"] == {"code": "UNAVAILABLE", "message": "internal error: KeyError"}


def test_ticks_and_shutdown_carry_a_rising_seq() -> None:
    conn = connected(machine())
    assert json.loads(conn.tick(NOW)) == {
        "type": "event",
        "event": "tick",
        "payload": {"ts": NOW},
        "seq": 1,
    }
    assert json.loads(conn.tick(NOW + 1))["seq"] == 2
    assert json.loads(conn.shutdown("sessiond restarting")) == {
        "type": "event",
        "event": "shutdown",
        "payload": {"reason": "sessiond restarting"},
        "seq": 3,
    }


def test_device_payload_matches_the_reference_layout() -> None:
    device = Device()
    params = msgspec.convert(
        connect_params(device, "n", platform=" Linux ", signed_at=7), gw.ConnectParams
    )
    text = gw.device_auth_payload(params, role="operator", scopes=["a", "b"], nonce="n")
    assert text == f"v3|{device.id}|cli|cli|operator|a,b|7|{TOKEN}|n|linux|"
    assert gw.device_id_for(device.public_key) == device.id
    assert gw.device_id_for(device.pem()) == device.id


# --------------------------------------------------------------------- the daemon, end to end


def run(coro: Any) -> Any:
    return asyncio.run(coro)


async def gateway_connect(
    url: str, device: Device | None = None, token: str | None = TOKEN
) -> tuple[Any, dict[str, Any]]:
    """Open a connection as the reference client does: wait for the challenge, sign, connect."""
    ws = await connect(url, compression=None)
    challenge = json.loads(await asyncio.wait_for(ws.recv(), 5))
    assert challenge["event"] == "connect.challenge"
    nonce = challenge["payload"]["nonce"]
    params = connect_params(
        device or Device(), nonce, token=token, signed_at=int(time.time() * 1000)
    )
    await ws.send(req("connect", params, "hello").decode())
    return ws, json.loads(await asyncio.wait_for(ws.recv(), 5))


async def call(ws: Any, method: str, params: Any = None) -> dict[str, Any]:
    ident = str(uuid.uuid4())
    await ws.send(req(method, params, ident).decode())
    while True:
        frame = json.loads(await asyncio.wait_for(ws.recv(), 10))
        if frame.get("type") == "res" and frame["id"] == ident:
            return frame  # type: ignore[no-any-return]


_HOUR = 3_600_000
_NOW = int(time.time() * 1000)
ROWS = {
    "agent:main:main": {"sessionId": "s-main", "updatedAt": _NOW - _HOUR},
    "agent:main:telegram:group:9": {"sessionId": "s-group", "updatedAt": _NOW - 2 * _HOUR},
    "agent:main:direct:7": {
        "sessionId": "s-dm",
        "updatedAt": _NOW - 3 * _HOUR,
        "chatType": "direct",
    },
}


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Any:
    root = write_state_dir(
        tmp_path_factory.mktemp("gw"),
        {"main": ROWS, "work": {}},
        {"session": {"dmScope": "main"}},
    )
    with DaemonProcess(root, "--token", TOKEN) as proc:
        yield proc


def test_daemon_speaks_the_gateway_protocol_to_a_silent_client(daemon: DaemonProcess) -> None:
    async def go() -> None:
        ws, hello = await gateway_connect(daemon.url)
        async with ws:
            assert hello["ok"] is True and hello["payload"]["type"] == "hello-ok"
            assert hello["payload"]["features"]["methods"] == SERVED
            listed = await call(ws, "sessions.list", {"limit": 2, "agentId": "main"})
            page = listed["payload"]
            assert [r["key"] for r in page["sessions"]] == [
                "agent:main:main",
                "agent:main:telegram:group:9",
            ]
            assert (page["count"], page["totalCount"], page["hasMore"]) == (2, 3, True)
            assert page["path"] == str(daemon.state_dir / "agents/main/sessions/sessions.json")
            unknown = await call(ws, "sessions.nope", {})
            assert unknown["error"] == {
                "code": "INVALID_REQUEST",
                "message": "unknown method: sessions.nope",
            }
            bad_agent = await call(ws, "sessions.cleanup", {"agent": "nobody"})
            assert bad_agent["ok"] is False
            assert bad_agent["error"]["code"] == "INVALID_REQUEST"

    run(go())


def test_wrong_token_closes_1008_with_the_reference_message(daemon: DaemonProcess) -> None:
    async def go() -> None:
        ws, answer = await gateway_connect(daemon.url, token="WRONG")
        assert answer["error"]["details"]["code"] == "AUTH_TOKEN_MISMATCH"
        with pytest.raises(ConnectionClosed):
            await asyncio.wait_for(ws.recv(), 5)
        assert ws.close_code == 1008
        assert ws.close_reason == answer["error"]["message"]

    run(go())


def test_json_rpc_clients_are_not_sent_the_challenge(daemon: DaemonProcess) -> None:
    status = b'{"jsonrpc":"2.0","id":1,"method":"auth","params":{"token":"%s"}}' % TOKEN.encode()

    async def go() -> None:
        # Speaks at once: JSON-RPC from the first frame, no challenge.
        async with connect(daemon.url, compression=None) as ws:
            await ws.send(status.decode())
            assert json.loads(await asyncio.wait_for(ws.recv(), 5)) == {
                "jsonrpc": "2.0",
                "id": 1,
                "result": {"ok": True},
            }
        # Sent its token at upgrade: may stay silent as long as it likes.
        headers = {"Authorization": f"Bearer {TOKEN}"}
        async with connect(daemon.url, compression=None, additional_headers=headers) as ws:
            await asyncio.sleep(0.6)
            await ws.send('{"jsonrpc":"2.0","id":2,"method":"sessions.list","params":{}}')
            reply = json.loads(await asyncio.wait_for(ws.recv(), 5))
            assert reply["id"] == 2 and "result" in reply
        # Silent without a token: gets the challenge, then is served JSON-RPC all the same.
        async with connect(daemon.url, compression=None) as ws:
            challenge = json.loads(await asyncio.wait_for(ws.recv(), 5))
            assert challenge["event"] == "connect.challenge"
            await ws.send(status.decode())
            reply = json.loads(await asyncio.wait_for(ws.recv(), 5))
            assert reply == {"jsonrpc": "2.0", "id": 1, "result": {"ok": True}}

    run(go())


def test_cleanup_through_the_gateway_changes_the_store(tmp_path: Path) -> None:
    root = write_state_dir(tmp_path, {"main": ROWS}, {"session": {"dmScope": "main"}})

    async def go(url: str) -> dict[str, Any]:
        ws, _hello = await gateway_connect(url)
        async with ws:
            return await call(ws, "sessions.cleanup", {"fixDmScope": True, "allAgents": False})

    with DaemonProcess(root, "--token", TOKEN) as proc:
        answer = run(go(proc.url))
        assert answer["ok"] is True, answer
        assert answer["payload"]["dmScopeRetired"] == 1 and answer["payload"]["applied"] is True
        assert set(read_rows(root, "main")) == {"agent:main:main", "agent:main:telegram:group:9"}


def test_sigterm_sends_shutdown_then_closes_1012(tmp_path: Path) -> None:
    root = write_state_dir(tmp_path, {"main": ROWS})

    async def go(proc: DaemonProcess) -> list[dict[str, Any]]:
        ws, _hello = await gateway_connect(proc.url)
        proc.send(15)
        frames = []
        with pytest.raises(ConnectionClosed):
            while True:
                frames.append(json.loads(await asyncio.wait_for(ws.recv(), 10)))
        assert ws.close_code == 1012
        return frames

    with DaemonProcess(root, "--token", TOKEN) as proc:
        frames = run(go(proc))
    assert frames[-1]["event"] == "shutdown"
    assert frames[-1]["payload"] == {"reason": "sessiond restarting"}


# ------------------------------------------------------------ the real OpenClaw CLI (marked)

INTEROP_TOKEN = "interop-token-5"
INTEROP_CASE = "openclaw_gateway"  # the case name KNOWN_DIFFERENCES globs are matched against
INTEROP_RUNS: tuple[tuple[str, ...], ...] = (
    ("--fix-dm-scope", "--json"),
    ("--fix-missing",),
    ("--all-agents", "--fix-dm-scope", "--fix-missing", "--json"),
    ("--agent", "nobody", "--fix-dm-scope"),  # the method's error, through the CLI
)


def _interop_state(b: StateBuilder) -> None:
    """Two agents, DM rows for --fix-dm-scope, missing transcripts for --fix-missing, a stale
    row and an old orphan for the default maintenance; only canonical keys, each with a
    sessionId, so the reference gateway's start-up migration leaves the stores alone."""
    b.config(
        {
            "session": {"dmScope": "main"},
            "agents": {"list": [{"id": "main", "default": True}, {"id": "work"}]},
        }
    )
    main: dict[str, Any] = {}
    md = b.sessions_dir("main")
    b.session(main, "agent:main:main", FRESH)
    b.session(main, "agent:main:direct:6101", 2 * HOUR)
    b.session(main, "agent:main:telegram:direct:42", 3 * HOUR, sidecars=True)
    b.session(main, "agent:main:telegram:default:direct:7", 4 * HOUR)
    b.session(main, "agent:main:telegram:group:1", 5 * HOUR)
    b.session(main, "agent:main:explicit:gone", 6 * HOUR, transcript=False)
    b.session(main, "agent:main:explicit:kept", 7 * HOUR)
    b.session(main, "agent:main:hook:old", 40 * DAY)
    b.store(main)
    b.transcript(md, f"{b.uuid4()}.jsonl", 40 * DAY)
    b.transcript(md, f"{b.uuid4()}.jsonl", 2 * DAY)
    work: dict[str, Any] = {}
    wd = b.sessions_dir("work")
    b.session(work, "agent:work:main", 2 * HOUR, directory=wd)
    b.session(work, "agent:work:slack:direct:u1", 3 * HOUR, directory=wd)
    b.session(work, "agent:work:explicit:missing", 4 * HOUR, directory=wd, transcript=False)
    b.session(work, "agent:work:cron:nightly", 35 * DAY, directory=wd, sidecars=True)
    b.store(work, agent="work")


def _sessions_only(observation: dict[str, Any]) -> dict[str, Any]:
    """The observation with `after` cut down to agents/: the gateway writes devices/, tasks/..."""
    after = observation.get("after")
    if after is not None:
        observation["after"] = {
            "dirs": {k: v for k, v in after["dirs"].items() if k.startswith("agents")},
            "stores": {k: v for k, v in after["stores"].items() if k.startswith("agents/")},
        }
    return observation


@pytest.fixture(scope="module")
def interop(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """One state dir built once, copied with `cp -a`; the reference gateway on one copy,
    `sessiond serve` on the other. Started once per module: the gateway takes ~15 s."""
    ref_dir = os.environ.get("OPENCLAW_REF_DIR")
    if not ref_dir:
        pytest.skip("set OPENCLAW_REF_DIR to an installed OpenClaw 2026.5.12 to run live")
    ref_bin = harness.reference_bin(Path(ref_dir))
    base = tmp_path_factory.mktemp("interop")
    now = int(time.time() * 1000)
    original = base / "original"
    original.mkdir()
    _interop_state(StateBuilder(INTEROP_CASE, original, now))
    ref_state, our_state = base / "reference", base / "sessiond"
    for target in (ref_state, our_state):
        subprocess.run(["cp", "-a", str(original), str(target)], check=True)
    started = time.monotonic()
    gateway = ReferenceGateway(ref_bin, ref_state, base / "gateway.log", INTEROP_TOKEN)
    try:
        ours = DaemonProcess(our_state, "--token", INTEROP_TOKEN)
        try:
            gateway.wait_ready()
            print(f"reference gateway ready after {time.monotonic() - started:.1f} s")
            snapshot = harness.snapshot_state
            fresh = _sessions_only({"after": snapshot(original, now)})["after"]
            migrated = _sessions_only({"after": snapshot(ref_state, now)})["after"]
            assert migrated == fresh, "the reference gateway rewrote the stores as it started"
            yield {
                "ref": ref_bin,
                "now": now,
                "base": base,
                "reference": (ref_state, gateway.port),
                "sessiond": (our_state, ours.port),
                "daemon": ours,
            }
        finally:
            ours.stop()
    finally:
        gateway.stop()


def _cli(interop: dict[str, Any], side: str, flags: tuple[str, ...], token: str) -> Any:
    """The real CLI against one server, from an empty state dir of its own (no local fallback
    can produce a result there); returns (run, the CLI's dir)."""
    _state, port = interop[side]
    cli_dir = Path(interop["base"]) / f"cli-{side}-{uuid.uuid4().hex[:8]}"
    cli_dir.mkdir()
    env = {"OPENCLAW_GATEWAY_PORT": str(port), "OPENCLAW_GATEWAY_TOKEN": token}
    raw = harness.run_command(harness.cleanup_argv(interop["ref"], flags), cli_dir, env)
    return raw, cli_dir


@pytest.mark.reference
def test_real_cli_cleans_up_through_sessiond_as_through_the_reference(interop: Any) -> None:
    now = interop["now"]
    daemon: DaemonProcess = interop["daemon"]
    reports, known = [], []
    for index, flags in enumerate(INTEROP_RUNS):
        observed = {}
        for side in ("reference", "sessiond"):
            raw, cli_dir = _cli(interop, side, flags, INTEROP_TOKEN)
            assert (raw.exit_code == 0) == ("nobody" not in flags), f"{side} {flags}: {raw.stderr}"
            assert not (cli_dir / "agents").exists(), f"{side} {flags}: the CLI ran locally"
            observed[side] = _sessions_only(harness.observe(raw, flags, interop[side][0], now))
            print(f"{side} {' '.join(flags)}: {raw.elapsed_s} s")
        if "--json" in flags:
            assert "<STATE>/agents/" in json.dumps(observed["sessiond"]["stdout"])
        diffs = harness.compare_observations(
            INTEROP_CASE, index, observed["reference"], observed["sessiond"]
        )
        known += [f"run {index}: {d.render()}" for d in diffs if d.known_reason is not None]
        if any(d.known_reason is None for d in diffs):
            reports.append(
                harness.render_report(
                    INTEROP_CASE, index, observed["reference"], observed["sessiond"], diffs
                )
            )
    for line in known:
        print("known difference:", line)
    assert not reports, "\n\n".join(reports)
    served = [e for e in daemon.log_events() if e.get("event") == "gateway connected"]
    assert len(served) >= len(INTEROP_RUNS)


@pytest.mark.reference
def test_real_cli_with_a_wrong_token_fails_as_against_the_reference(interop: Any) -> None:
    now = interop["now"]
    flags = ("--fix-dm-scope", "--json")
    observed = {}
    for side in ("reference", "sessiond"):
        state = interop[side][0]
        before = _sessions_only({"after": harness.snapshot_state(state, now)})
        raw, cli_dir = _cli(interop, side, flags, "not-the-token")
        # The CLI falls back to a local run on its own (empty) state dir: compare that.
        observation = _sessions_only(harness.observe(raw, flags, cli_dir, now))
        observation["refusal"] = [
            line for line in observation["stderrLines"] if "gateway connect failed" in line
        ]
        observed[side] = observation
        after = _sessions_only({"after": harness.snapshot_state(state, now)})
        assert after == before, f"{side}: a refused connect changed the server's stores"
    reference, ours = observed["reference"], observed["sessiond"]
    assert ours["refusal"] == reference["refusal"]
    assert ours["refusal"] == [
        "gateway connect failed: GatewayClientRequestError: unauthorized: gateway token "
        "mismatch (set gateway.remote.token to match gateway.auth.token)"
    ]
    for key in ("exitCode", "stdoutFormat", "stdout", "after"):
        assert ours[key] == reference[key], key


def test_frames_the_decoder_chokes_on_never_raise() -> None:
    """Nesting at the decoder's limit and invalid UTF-8 are the peer's fault, not a crash."""
    deep = b"[" * 5000 + b"]" * 5000
    deep_params = b'{"type":"req","id":"d","method":"sessions.cleanup","params":{"agent":'
    deep_params += b"[" * 3000 + b"]" * 3000 + b"}}"
    bad_utf8 = b'{"type":"req","id":"u","method":"sessions.list","params":{"agentId":"\xff"}}'
    assert closes(machine().receive(deep, NOW)) == [(1000, "")]
    assert len(closes(machine().receive(bad_utf8, NOW))) == 1
    conn = connected(machine())
    assert conn.receive(deep, NOW) == []
    assert conn.receive(bad_utf8, NOW) == []
    frames = sent(conn.receive(deep_params, NOW))  # ignored, or answered as invalid params
    assert frames == [] or frames[0]["ok"] is False
    assert gw.looks_like_gateway(deep) is False
    assert conn.state is gw.State.CONNECTED


def test_a_silent_json_rpc_client_without_a_token_is_served_after_the_challenge(
    tmp_path: Path,
) -> None:
    """No token configured: the JSON-RPC client needs no `auth`, challenge or not."""
    root = write_state_dir(tmp_path, {"main": ROWS})

    async def go(url: str) -> dict[str, Any]:
        async with connect(url, compression=None) as ws:
            challenge = json.loads(await asyncio.wait_for(ws.recv(), 5))
            assert challenge["event"] == "connect.challenge"
            await ws.send('{"jsonrpc":"2.0","id":7,"method":"sessions.list","params":{}}')
            return json.loads(await asyncio.wait_for(ws.recv(), 5))  # type: ignore[no-any-return]

    with DaemonProcess(root) as proc:
        reply = run(go(proc.url))
    assert reply["id"] == 7 and reply["result"]["totalCount"] == 3
