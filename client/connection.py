"""One WebSocket to the daemon under the generated clients: ids, replies, reconnects.

The rules, so that callers never have to know them:

- A call waits for a connection (at most `connect_timeout` seconds), sends one JSON-RPC request
  and resolves with the raw `result` bytes, or raises the daemon's error.
- When the connection drops, a call in flight that changes nothing is sent again on the next
  connection (a few times at most); one that may change state raises ConnectionLostError, as
  the daemon may already have applied it.
- The connection comes back by itself after doubling, jittered pauses. A token or Origin refused
  at the upgrade (HTTP 401/403) is final: no more attempts, and every call raises.
- Notifications go to `on_notification` as (method, raw params); `on_reconnect` runs after each
  connection but the first, so a subscriber can subscribe again and look for missed changes.
- An error with `"id": null` (the daemon could not read one of our frames) cannot be matched to
  a call, so it fails every call in flight rather than leave one waiting for ever.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import msgspec
from sessiond.client.errors import (
    ClientClosedError,
    ConnectError,
    ConnectionLostError,
    RpcError,
    SessiondError,
)
from sessiond.protocol.jsonrpc import APP_AUTH_REQUIRED, ErrorObject, Request
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus

log = logging.getLogger("sessiond.client")

ErrorFactory = Callable[[int, str, Any], RpcError]

_FRAME = msgspec.json.Decoder(dict[str, msgspec.Raw])
_ERROR = msgspec.json.Decoder(ErrorObject)
_REPLY_ID = msgspec.json.Decoder(int | None)
_METHOD = msgspec.json.Decoder(str)
_ENCODER = msgspec.json.Encoder()
_RESENDS = 3


@dataclass(frozen=True, slots=True)
class Backoff:
    """Pauses between connection attempts: doubling from `first` to `most`, each jittered.

    The jitter (a pause is drawn from its upper half) keeps many clients of one restarted daemon
    from reconnecting in the same instant.
    """

    first: float = 0.05
    most: float = 5.0

    def delays(self) -> Iterator[float]:
        ceiling = self.first
        while True:
            yield random.uniform(ceiling / 2, ceiling)
            ceiling = min(ceiling * 2, self.most)


class _Lost(Exception):
    """The connection that carried a call closed before the reply came."""


class DaemonConnection:
    """The client's end of a daemon socket, kept up across drops, under the module's rules."""

    def __init__(
        self,
        url: str,
        *,
        token: str | None,
        error_for: ErrorFactory,
        backoff: Backoff,
        connect_timeout: float,
        max_frame_bytes: int,
    ) -> None:
        self.url = url
        self.token = token
        self.error_for = error_for
        self.backoff = backoff
        self.connect_timeout = connect_timeout
        self.max_frame_bytes = max_frame_bytes
        self.on_notification: Callable[[str, msgspec.Raw], None] = lambda _m, _p: None
        self.on_reconnect: Callable[[], None] = lambda: None
        self.final: SessiondError | None = None
        """Set once no call can succeed any more: the client was closed, or the daemon refused."""
        self.connections = 0
        self._ws: ClientConnection | None = None
        self._changed = asyncio.Event()
        self._pending: dict[int, asyncio.Future[bytes]] = {}
        self._ids = itertools.count(1)
        self._supervisor: asyncio.Task[None] | None = None
        self._last_failure = "no attempt yet"

    async def open(self) -> None:
        """Connect (retrying for up to `connect_timeout`), then keep the connection up."""
        try:
            ws = await asyncio.wait_for(self._dial(), self.connect_timeout)
        except TimeoutError:
            raise ConnectError(
                f"could not reach {self.url} in {self.connect_timeout}s: {self._last_failure}"
            ) from None
        self._attach(ws)
        self._supervisor = asyncio.create_task(self._supervise(ws))

    async def close(self) -> None:
        self._finish(ClientClosedError("the client is closed"))
        if self._supervisor is not None:
            self._supervisor.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._supervisor
        ws, self._ws = self._ws, None
        if ws is not None:
            await ws.close()

    async def call(self, method: str, params: msgspec.Raw, *, resend: bool) -> bytes:
        """The raw `result` of one request; `resend`: safe to send again after a drop."""
        for attempt in itertools.count():
            ws = await self._connected()
            ident = next(self._ids)
            reply: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
            self._pending[ident] = reply
            try:
                frame = Request(jsonrpc="2.0", method=method, params=params, id=ident)
                await ws.send(_ENCODER.encode(frame), text=True)
                return await reply
            except (_Lost, ConnectionClosed):
                if not resend or attempt >= _RESENDS:
                    raise ConnectionLostError(
                        f"{method}: the connection closed before the reply"
                    ) from None
                log.info("resending %s after the connection closed", method)
            finally:
                self._pending.pop(ident, None)
        raise AssertionError("unreachable")

    # ------------------------------------------------------------------------------ internals

    async def _connected(self) -> ClientConnection:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.connect_timeout
        while True:
            if self.final is not None:
                raise self.final
            if self._ws is not None:
                return self._ws
            self._changed.clear()
            try:
                await asyncio.wait_for(self._changed.wait(), max(0.0, deadline - loop.time()))
            except TimeoutError:
                raise ConnectError(
                    f"no connection to {self.url} for {self.connect_timeout}s: {self._last_failure}"
                ) from None

    async def _dial(self) -> ClientConnection:
        """Attempts until one connects; raises only when the daemon refuses for good."""
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else None
        for pause in self.backoff.delays():
            try:
                return await connect(
                    self.url,
                    additional_headers=headers,
                    compression=None,
                    max_size=self.max_frame_bytes,
                    open_timeout=self.connect_timeout,
                )
            except InvalidStatus as exc:
                status = exc.response.status_code
                if status == 401:
                    raise self.error_for(
                        APP_AUTH_REQUIRED, "the token was refused", {"httpStatus": status}
                    ) from exc
                if status == 403:
                    raise ConnectError(f"{self.url} refused this client: HTTP 403") from exc
                self._last_failure = f"HTTP {status}"
            except (OSError, InvalidHandshake, TimeoutError) as exc:
                self._last_failure = f"{type(exc).__name__}: {exc}"
            await asyncio.sleep(pause)
        raise AssertionError("unreachable")

    def _attach(self, ws: ClientConnection) -> None:
        self._ws = ws
        self.connections += 1
        self._changed.set()

    async def _supervise(self, ws: ClientConnection) -> None:
        while True:
            await self._read(ws)
            self._ws = None
            self._fail_pending(_Lost())
            if self.final is not None:
                return
            log.info("connection to %s closed; reconnecting", self.url)
            try:
                ws = await self._dial()
            except SessiondError as exc:
                self._finish(exc)
                return
            self._attach(ws)
            self.on_reconnect()

    async def _read(self, ws: ClientConnection) -> None:
        while True:
            try:
                data = await ws.recv(decode=False)
            except ConnectionClosed:
                return
            self._dispatch(data)

    def _dispatch(self, data: bytes) -> None:
        try:
            frame = _FRAME.decode(data)
            if "type" in frame and "jsonrpc" not in frame:
                # The daemon greets a silent client in OpenClaw's gateway dialect too; a
                # JSON-RPC client simply goes on speaking JSON-RPC (docs/openclaw-cli.md).
                return
            if "method" in frame:
                params = frame.get("params", msgspec.Raw(b"null"))
                self.on_notification(_METHOD.decode(frame["method"]), params)
                return
            ident = _REPLY_ID.decode(frame.get("id", b"null"))
            if "error" in frame:
                error = _ERROR.decode(frame["error"])
                data_ = None if error.data is msgspec.UNSET else error.data
                self._settle(ident, self.error_for(error.code, error.message, data_))
            elif "result" in frame:
                self._settle(ident, bytes(frame["result"]))
            else:
                raise msgspec.ValidationError("neither result, error nor method")
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            log.warning("ignoring a frame that is not JSON-RPC 2.0 from sessiond: %s", exc)

    def _settle(self, ident: int | None, outcome: bytes | RpcError) -> None:
        if ident is None:
            if isinstance(outcome, RpcError):
                self._fail_pending(outcome)
            return
        reply = self._pending.pop(ident, None)
        if reply is None or reply.done():
            return
        if isinstance(outcome, RpcError):
            reply.set_exception(outcome)
        else:
            reply.set_result(outcome)

    def _fail_pending(self, exc: BaseException) -> None:
        pending, self._pending = self._pending, {}
        for reply in pending.values():
            if not reply.done():
                reply.set_exception(exc)

    def _finish(self, exc: SessiondError) -> None:
        if self.final is None:
            self.final = exc
        self._fail_pending(exc)
        self._changed.set()
