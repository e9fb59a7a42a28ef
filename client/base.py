"""What the generated clients inherit: opening and closing, typed calls, the change stream.

The generated `SessiondClient` adds one method per entry of protocol/schema.json's method table;
each builds the method's params Struct, calls `_call` with the result's decoder, and returns the
protocol's own result type. Everything that is not a per-method line lives here, written by
hand: the connection, errors by code, union results, `changes()`, and the sync wrapper's loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable, Coroutine, Mapping
from types import TracebackType
from typing import Any, ClassVar, Generic, Protocol, Self, TypedDict, TypeVar, Unpack

import msgspec
from sessiond.client.changes import ChangeStream
from sessiond.client.connection import Backoff, DaemonConnection
from sessiond.client.errors import ProtocolError, RpcError, SessiondError
from sessiond.protocol.methods import (
    CHANGED_NOTIFICATION,
    PROGRESS_NOTIFICATION,
    STORES_CHANGED_NOTIFICATION,
    ProgressParams,
    SessionsChanged,
    StoresChanged,
    SubscribeParams,
    SubscribeResult,
    UnsubscribeParams,
    UnsubscribeResult,
)

__all__ = ["ClientBase", "ClientOptions", "FirstMatch", "ResultDecoder", "SyncClientBase"]

T = TypeVar("T")
T_co = TypeVar("T_co", covariant=True)
C = TypeVar("C", bound="ClientBase")

_ENCODER = msgspec.json.Encoder()
_CHANGED = msgspec.json.Decoder(SessionsChanged)
_PROGRESS = msgspec.json.Decoder(ProgressParams)
_STORES_CHANGED = msgspec.json.Decoder(StoresChanged)
_SUBSCRIBED = msgspec.json.Decoder(SubscribeResult)
_UNSUBSCRIBED = msgspec.json.Decoder(UnsubscribeResult)
_ANY = msgspec.json.Decoder()


class ClientOptions(TypedDict, total=False):
    """Keyword options of both clients (all optional)."""

    token: str | None
    """The daemon's shared token, sent as `Authorization: Bearer` at every (re)connect."""
    connect_timeout: float
    """How long a call waits for a connection before ConnectError (default 10 s)."""
    call_timeout: float | None
    """How long a call waits for its reply (default: as long as the connection lives)."""
    backoff: Backoff
    """Pauses between reconnect attempts."""
    max_frame_bytes: int
    """The largest reply accepted (default 64 MiB)."""


class ResultDecoder(Protocol[T_co]):
    def decode(self, buf: bytes, /) -> T_co: ...


class FirstMatch(Generic[T]):
    """Decodes a union of Structs that carry no tag: the first member that validates.

    `sessions.cleanup` answers a bare summary (one store) or the allAgents envelope (several),
    as OpenClaw prints them. Members with more required fields are tried first, so a looser
    member never claims an object meant for a stricter one.
    """

    def __init__(self, *members: type[msgspec.Struct]) -> None:
        def required(member: type[msgspec.Struct]) -> int:
            return sum(field.required for field in msgspec.structs.fields(member))

        ordered = sorted(members, key=required, reverse=True)
        self._decoders: list[msgspec.json.Decoder[T]] = [
            msgspec.json.Decoder(member) for member in ordered
        ]

    def decode(self, buf: bytes, /) -> T:
        for decoder in self._decoders[:-1]:
            with contextlib.suppress(msgspec.ValidationError):
                return decoder.decode(buf)
        return self._decoders[-1].decode(buf)


class ClientBase:
    """An asyncio client of one daemon; use as `async with`, or `open()` and `close()`."""

    errors: ClassVar[Mapping[int, type[RpcError]]] = {}
    """Error class per JSON-RPC code; the generated subclass fills it from the schema."""

    def __init__(self, url: str, **options: Unpack[ClientOptions]) -> None:
        self.url = url
        self.call_timeout = options.get("call_timeout")
        self._connection = DaemonConnection(
            url,
            token=options.get("token"),
            error_for=self._error_for,
            backoff=options.get("backoff", Backoff()),
            connect_timeout=options.get("connect_timeout", 10.0),
            max_frame_bytes=options.get("max_frame_bytes", 64 * 1024 * 1024),
        )
        self._connection.on_notification = self._on_notification
        self._connection.on_reconnect = self._on_reconnect
        self._streams: list[ChangeStream] = []
        self._progress: dict[str | int, Callable[[ProgressParams], None]] = {}

    async def __aenter__(self) -> Self:
        await self.open()
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def open(self) -> None:
        """Connect, retrying for up to `connect_timeout`; raises ConnectError or a refusal."""
        await self._connection.open()

    async def close(self) -> None:
        for stream in self._streams:
            stream.end(StopAsyncIteration())
        self._streams.clear()
        await self._connection.close()

    @property
    def connections(self) -> int:
        """How many times this client has connected (1 + reconnects)."""
        return self._connection.connections

    def changes(
        self, *, agent: str | None = None, all_agents: bool = False, max_queued: int = 1000
    ) -> ChangeStream:
        """`sessions.changed` for one agent's store, every store, or (neither) the default's.

        `async with client.changes() as changes: async for item in changes: ...` yields
        `SessionsChanged`, and a `SeqGap` before any point where changes may have been missed;
        with `all_agents`, a `StoresChanged` when a config reload adds or removes stores.
        """
        params = SubscribeParams(agent=agent, all_agents=all_agents)

        async def subscribe() -> SubscribeResult:
            return await self._call("sessions.subscribe", params, _SUBSCRIBED, mutates=False)

        return ChangeStream(
            subscribe,
            self._streams.append,
            self._stream_stopped,
            lambda: self._connection.final is not None,
            max_queued,
        )

    def on_progress(
        self, token: str | int, listener: Callable[[ProgressParams], None]
    ) -> Callable[[], None]:
        """Hear `$/progress` for calls made with `progress_token=token`; returns the remover.

        Steps arrive in order (`begin`, `report`..., `end`), before the call's own reply.
        """
        self._progress[token] = listener

        def remove() -> None:
            self._progress.pop(token, None)

        return remove

    async def call(self, method: str, params: Any = None, *, mutates: bool = True) -> Any:
        """An untyped call, for a method newer than this client; the result as plain JSON."""
        return await self._call(method, {} if params is None else params, _ANY, mutates=mutates)

    async def _call(
        self, method: str, params: Any, result: ResultDecoder[T], *, mutates: bool
    ) -> T:
        raw = msgspec.Raw(_ENCODER.encode(params))
        async with asyncio.timeout(self.call_timeout):
            data = await self._connection.call(method, raw, resend=not mutates)
        try:
            return result.decode(data)
        except (msgspec.ValidationError, msgspec.DecodeError) as exc:
            raise ProtocolError(f"{method}: the result does not match the schema: {exc}") from exc

    def _error_for(self, code: int, message: str, data: Any) -> RpcError:
        return self.errors.get(code, RpcError)(code, message, data)

    def _on_notification(self, method: str, params: msgspec.Raw) -> None:
        if method == PROGRESS_NOTIFICATION:
            try:
                step = _PROGRESS.decode(params)
            except msgspec.ValidationError:
                return
            listener = self._progress.get(step.token)
            if listener is not None:
                listener(step)
            return
        change: SessionsChanged | StoresChanged
        try:
            if method == CHANGED_NOTIFICATION:
                change = _CHANGED.decode(params)
            elif method == STORES_CHANGED_NOTIFICATION:
                change = _STORES_CHANGED.decode(params)
            else:
                return
        except msgspec.ValidationError:
            return
        for stream in self._streams:
            stream.push(change)

    def _on_reconnect(self) -> None:
        for stream in self._streams:
            stream.reconnected()

    async def _stream_stopped(self, stream: ChangeStream) -> None:
        if stream in self._streams:
            self._streams.remove(stream)
        if not self._streams and self._connection.final is None:
            # Best effort: a closed connection has dropped the subscription anyway.
            with contextlib.suppress(SessiondError):
                await self._call(
                    "sessions.unsubscribe", UnsubscribeParams(), _UNSUBSCRIBED, mutates=False
                )


class SyncClientBase(Generic[C]):
    """Runs an asyncio client on a private event-loop thread, for scripts without asyncio.

    A thread (rather than a loop run only during calls) keeps the connection answering the
    daemon's pings and reconnecting between calls.
    """

    def __init__(self, client: C) -> None:
        self.client = client
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="sessiond-client", daemon=True
        )

    def __enter__(self) -> Self:
        self.open()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def open(self) -> None:
        self._thread.start()
        try:
            self._run(self.client.open())
        except BaseException:
            self._stop_loop()
            raise

    def close(self) -> None:
        if not self._thread.is_alive():
            return
        try:
            self._run(self.client.close())
        finally:
            self._stop_loop()

    def _stop_loop(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join()
        self._loop.close()

    def _run(self, call: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(call, self._loop).result()
