"""A minimal OpenClaw gateway protocol v4 client with a device identity, for benchmarks and
live runs beside the reference gateway.

Both the reference gateway and sessiond's gateway dialect are measured through this same client
(one connect, then `req`/`res` frames), so a method's latency compares the servers, not two
client implementations (bench/report.py); `beside_gateway` writes through the reference
gateway with it. The device is a fresh ed25519 key; the reference auto-approves a
loopback device that presents the shared token.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import itertools
import json
import time
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from websockets.asyncio.client import ClientConnection, connect

SCOPES = ["operator.admin", "operator.read", "operator.write"]


def _b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


class GatewayError(Exception):
    pass


class GatewayClient:
    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.ids = itertools.count(1)
        self.hello: Any = None  # the `hello-ok` payload, once connected

    @classmethod
    async def connect(cls, url: str, token: str, timeout: float = 30.0) -> GatewayClient:
        # No keepalive pings: a server busy loading a big store must not be dropped for a late
        # pong (the reference gateway's event loop stalls for many seconds at 10k+ rows).
        ws = await connect(
            url, compression=None, max_size=None, open_timeout=timeout, ping_interval=None
        )
        client = cls(ws)
        challenge = await client._next(lambda m: m.get("event") == "connect.challenge", timeout)
        nonce = challenge["payload"]["nonce"]
        key = Ed25519PrivateKey.generate()
        raw = key.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )
        device_id = hashlib.sha256(raw).hexdigest()
        signed_at = int(time.time() * 1000)
        payload = "|".join(
            [
                "v3",
                device_id,
                "gateway-client",
                "backend",
                "operator",
                ",".join(SCOPES),
                str(signed_at),
                token,
                nonce,
                "linux",
                "",
            ]
        )
        params = {
            "minProtocol": 4,
            "maxProtocol": 4,
            "client": {
                "id": "gateway-client",
                "version": "bench",
                "platform": "linux",
                "mode": "backend",
            },
            "role": "operator",
            "scopes": SCOPES,
            "caps": [],
            "auth": {"token": token},
            "device": {
                "id": device_id,
                "publicKey": _b64url(raw),
                "signature": _b64url(key.sign(payload.encode())),
                "signedAt": signed_at,
                "nonce": nonce,
            },
        }
        client.hello = await client.call("connect", params, timeout)
        return client

    async def _next(self, match: Any, timeout: float) -> Any:
        deadline = time.monotonic() + timeout
        while True:
            data = await asyncio.wait_for(self.ws.recv(), max(0.01, deadline - time.monotonic()))
            message = json.loads(data)
            if match(message):
                return message

    async def call(self, method: str, params: Any = None, timeout: float = 600.0) -> Any:
        ident = f"b{next(self.ids)}"
        frame = {"type": "req", "id": ident, "method": method, "params": params or {}}
        await self.ws.send(json.dumps(frame))
        reply = await self._next(lambda m: m.get("type") == "res" and m.get("id") == ident, timeout)
        if not reply.get("ok"):
            raise GatewayError(f"{method}: {reply.get('error')}")
        return reply.get("payload")

    async def close(self) -> None:
        await self.ws.close()
