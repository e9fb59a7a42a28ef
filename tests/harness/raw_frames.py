"""A raw-frame JSON-RPC 2.0 client over WebSocket, for tests that need to see the wire.

The library client (`sessiond.client`) is what applications use; this one exists for what it
hides: `send_raw` for malformed frames and batches (their replies, and any reply no `call`
claimed, land in `raw_replies`), `notify` for requests without an id, the `auth` method instead
of a header, and the notification queue as it arrives. `call` decodes a result as the method
table (`protocol/methods.METHODS`) types it.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import types
import typing
from types import TracebackType
from typing import Any

import msgspec
from sessiond.protocol.jsonrpc import ErrorObject, Notification
from sessiond.protocol.methods import METHODS
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed


class RpcCallError(Exception):
    """The server answered with a JSON-RPC error object."""

    def __init__(self, error: ErrorObject) -> None:
        super().__init__(f"{error.code}: {error.message}")
        self.code = error.code
        self.data = error.data


class _Reply(msgspec.Struct):
    id: Any = None
    result: msgspec.Raw | msgspec.UnsetType = msgspec.UNSET
    error: ErrorObject | msgspec.UnsetType = msgspec.UNSET
    method: str | msgspec.UnsetType = msgspec.UNSET
    params: Any = None


_REPLY = msgspec.json.Decoder(_Reply | list[_Reply])
_ENCODER = msgspec.json.Encoder()


class RpcClient:
    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.ids = itertools.count(1)
        self.pending: dict[Any, asyncio.Future[_Reply]] = {}
        self.notifications: asyncio.Queue[Notification] = asyncio.Queue()
        self.raw_replies: asyncio.Queue[bytes] = asyncio.Queue()
        self.reader = asyncio.create_task(self._read())

    @classmethod
    async def connect(cls, url: str, token: str | None = None, *, bearer: bool = True) -> RpcClient:
        """Connect; with `token`, send it as `Authorization: Bearer` or (bearer=False) `auth`."""
        headers = {"Authorization": f"Bearer {token}"} if token and bearer else None
        ws = await connect(url, additional_headers=headers, compression=None)
        client = cls(ws)
        if token and not bearer:
            await client.call("auth", {"token": token})
        return client

    async def __aenter__(self) -> RpcClient:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def close(self) -> None:
        await self.ws.close()
        self.reader.cancel()
        with contextlib.suppress(asyncio.CancelledError, ConnectionClosed):
            await self.reader

    async def _read(self) -> None:
        try:
            async for frame in self.ws:
                self._dispatch(frame if isinstance(frame, bytes) else frame.encode())
        finally:
            for future in self.pending.values():
                if not future.done():
                    future.set_exception(ConnectionError("connection closed"))
                    # A caller that gave up on it already must not make asyncio complain.
                    future.exception()

    def _dispatch(self, data: bytes) -> None:
        try:
            decoded = _REPLY.decode(data)
        except msgspec.DecodeError:
            self.raw_replies.put_nowait(data)
            return
        replies = decoded if isinstance(decoded, list) else [decoded]
        unmatched = False
        for reply in replies:
            if reply.method is not msgspec.UNSET:
                self.notifications.put_nowait(
                    Notification(method=reply.method, params=reply.params)
                )
                continue
            future = self.pending.pop(_key(reply.id), None)
            if future is None or isinstance(decoded, list):
                unmatched = True
            if future is not None and not future.done():
                future.set_result(reply)
        if unmatched:
            self.raw_replies.put_nowait(data)

    async def call(self, method: str, params: Any = None, *, timeout: float = 30.0) -> Any:
        """One request; the result decoded as the method table's result type."""
        ident = next(self.ids)
        future: asyncio.Future[_Reply] = asyncio.get_running_loop().create_future()
        self.pending[_key(ident)] = future
        frame: dict[str, Any] = {"jsonrpc": "2.0", "method": method, "id": ident}
        if params is not None:
            frame["params"] = params
        await self.ws.send(_ENCODER.encode(frame), text=True)
        reply = await asyncio.wait_for(future, timeout)
        if not isinstance(reply.error, msgspec.UnsetType):
            raise RpcCallError(reply.error)
        assert not isinstance(reply.result, msgspec.UnsetType)
        spec = METHODS.get(method)
        if spec is None:
            return msgspec.json.decode(reply.result)
        return _decode_result(reply.result, spec.result)

    async def notify(self, method: str, params: Any = None) -> None:
        frame: dict[str, Any] = {"jsonrpc": "2.0", "method": method}
        if params is not None:
            frame["params"] = params
        await self.ws.send(_ENCODER.encode(frame), text=True)

    async def send_raw(self, data: bytes | str, *, timeout: float = 10.0) -> Any:
        """Send any frame; return the next reply not matched to a `call`, decoded loosely."""
        await self.ws.send(data, text=True)
        raw = await asyncio.wait_for(self.raw_replies.get(), timeout)
        return msgspec.json.decode(raw)


def _decode_result(raw: msgspec.Raw, kind: Any) -> Any:
    """Untagged unions of Structs (the cleanup result) are tried member by member."""
    members = typing.get_args(kind) if isinstance(kind, types.UnionType) else ()
    if not members:
        return msgspec.json.decode(raw, type=kind)
    value = msgspec.json.decode(raw)
    for member in members:
        try:
            return msgspec.convert(value, member)
        except msgspec.ValidationError:
            continue
    raise msgspec.ValidationError(f"result matches none of {kind}")


def _key(ident: Any) -> Any:
    # 1 and 1.0 are one JSON-RPC id to the server's encoder only if equal as values.
    return (type(ident).__name__, ident)
