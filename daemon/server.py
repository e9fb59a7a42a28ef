"""`sessiond serve`: the WebSocket shell around the registry and the JSON-RPC protocol.

Order of a connection: `process_request` answers `/healthz` and `/readyz`, refuses a browser
`Origin` that is not allowed (403) and a wrong `Authorization: Bearer` token (401); after the
upgrade the dialect is picked (`choose_dialect`): JSON-RPC 2.0, or OpenClaw's gateway protocol
v4 (daemon/gateway_shell.py), whose clients wait for the server to speak first. In JSON-RPC,
when a token is configured and was not sent at upgrade, the first request must be `auth`
`{token}`; anything else is answered -32000 and the connection is closed (1008). Frames are
handled concurrently, so a slow request delays nobody, not even the same connection's next
request.

Shutdown (SIGTERM/SIGINT): STOPPING=1, stop accepting connections and frames, let requests in
flight compute their answers, flush every store, then close every connection with 1012 and exit 0
(1 if a store could not be flushed). Each step is bounded: a client that stopped reading gets
`SHUTDOWN_CLOSE_TIMEOUT_S` for its close frame and is then dropped, so it cannot hold the exit.
SIGHUP re-reads the config (stores added or removed, token) and sends READY=1 again.

Startup, in an order that lets a refused start change nothing: read the config, check the state
dir exists, lock the state dir and every store (daemon/store_lock.py: one daemon per store), bind
the port, and only then load the stores (which may copy a corrupt one aside) and accept
connections. Each refusal is a `StartupError` whose message names what to fix; the command line
(cli/serve.py) prints it.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import gc
import hmac
import ipaddress
import itertools
import logging
import os
import signal
import socket
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from http import HTTPStatus
from importlib import metadata
from typing import Any, Final

import msgspec
import structlog
from sessiond.daemon import methods, systemd
from sessiond.daemon.config_file import load_config_file
from sessiond.daemon.fault_hooks import fault_point
from sessiond.daemon.gateway_dialect import GATEWAY_METHODS, looks_like_gateway
from sessiond.daemon.gateway_sessions import JSONRPC_SHAPES, REFERENCE_SHAPES, GatewaySessions
from sessiond.daemon.gateway_shell import serve_gateway
from sessiond.daemon.jsonrpc_dialect import Call, RpcProtocol
from sessiond.daemon.live_store import LiveStore
from sessiond.daemon.metrics import CONTENT_TYPE, Metrics
from sessiond.daemon.port_owner import port_owner
from sessiond.daemon.progress import RpcProgress
from sessiond.daemon.registry import Registry
from sessiond.daemon.request_log import add_request, enter_request, leave_request
from sessiond.daemon.store_lock import HeldElsewhere
from sessiond.daemon.watch_loop import watch_directories
from sessiond.engine.config import (
    ConfigError,
    Locations,
    SessionsConfig,
    resolve_config_path,
    state_dir_problem,
)
from sessiond.engine.errors import DomainError
from sessiond.protocol.gateway_frames import DEFAULT_PORT
from sessiond.protocol.jsonrpc import (
    INTERNAL_ERROR,
    ErrorObject,
    ErrorResponse,
    Notification,
    RequestId,
)
from sessiond.protocol.methods import (
    CHANGED_NOTIFICATION,
    METHODS,
    STORES_CHANGED_NOTIFICATION,
    AuthParams,
    AuthResult,
    SessionsChanged,
    StatusResult,
    StoresChanged,
    SubscribedStore,
    SubscribeParams,
    SubscribeResult,
    UnsubscribeResult,
    keyed_by_table,
)
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

log = structlog.get_logger("sessiond.server")

DEFAULT_MAX_FRAME_BYTES = 4 * 1024 * 1024
MAX_IN_FLIGHT = 64
MAX_QUEUED_NOTIFICATIONS = 10_000
GATEWAY_GRACE_S = 0.25
"""How long a client without a bearer token may stay silent before it gets the gateway
protocol's `connect.challenge` (OpenClaw clients wait for it; JSON-RPC clients speak first)."""
SHUTDOWN_INFLIGHT_S = 10.0
"""How long SIGTERM waits for requests in flight (a big cleanup) to compute their answers."""
SHUTDOWN_CLOSE_TIMEOUT_S = 1.0
"""How long SIGTERM gives each connection to take its close frame (and the gateway's `shutdown`
event) before dropping it; a client that stopped reading would otherwise block in drain."""
_ENCODER = msgspec.json.Encoder()
_LOOSE = msgspec.json.Decoder(dict[str, Any])


def version() -> str:
    try:
        return metadata.version("sessiond")
    except metadata.PackageNotFoundError:
        return "0+unknown"


# ----------------------------------------------------------------------------------- logging


def _json_dumps(obj: Any, default: Callable[[Any], Any] | None = None, **_: Any) -> str:
    # structlog always passes default=; msgspec calls it enc_hook.
    return msgspec.json.encode(obj, enc_hook=default or repr).decode()


def configure_logging(level: int = logging.INFO) -> None:
    """JSON lines off a TTY or under the journal, readable console lines on a TTY."""
    as_json = systemd.journal_stream_attached() or not sys.stderr.isatty()
    renderer: Any = (
        structlog.processors.JSONRenderer(serializer=_json_dumps)
        if as_json
        else structlog.dev.ConsoleRenderer()
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            add_request,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
        cache_logger_on_first_use=True,
    )


# ----------------------------------------------------------------------------------- options


@dataclass(slots=True)
class ServeOptions:
    state_dir: str | None = None
    bind: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    token: str | None = None
    token_file: str | None = None
    max_frame_bytes: int = DEFAULT_MAX_FRAME_BYTES
    allowed_origins: list[str] = field(default_factory=list)
    port_file: str | None = None


class StartupError(Exception):
    """The daemon refuses to start; the message (a line per problem) says why and what to do."""


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def resolve_token(options: ServeOptions, config: SessionsConfig) -> str | None:
    """`--token`, then `--token-file`, then `OPENCLAW_GATEWAY_TOKEN`, then the config's."""
    if options.token:
        return options.token
    if options.token_file:
        try:
            with open(options.token_file, encoding="utf-8") as handle:
                text = handle.read().strip()
        except OSError as exc:
            raise StartupError(f"cannot read --token-file {options.token_file}: {exc}") from exc
        if not text:
            raise StartupError(f"--token-file {options.token_file} is empty")
        return text
    env = os.environ.get("OPENCLAW_GATEWAY_TOKEN", "").strip()
    return env or config.gateway_token or None


def token_matches(expected: str | None, offered: str | None) -> bool:
    if expected is None:
        return True
    if offered is None:
        return False
    return hmac.compare_digest(expected.encode(), offered.encode())


# ---------------------------------------------------------------------------------- the daemon


@dataclass(slots=True)
class Connection:
    """Per-connection state: auth, subscriptions and the notification queue."""

    ws: ServerConnection
    id: int
    authenticated: bool
    subscribed: set[str] | None = None  # store paths; None: not subscribed
    all_agents: bool = False  # subscribed with allAgents: stores added later are covered too
    outbox: asyncio.Queue[bytes] = field(default_factory=asyncio.Queue)
    farewell: Callable[[], bytes] | None = None  # the gateway dialect's `shutdown` event
    dialect: str = "undecided"  # jsonrpc or gateway, once the first frame (or silence) says
    gateway_event: Callable[[str, Any], bytes] | None = None  # a gateway event frame, unnumbered


class Daemon:
    def __init__(self, options: ServeOptions, env: dict[str, str], cwd: str) -> None:
        self.options = options
        self.env = env
        self.cwd = cwd
        self.where = Locations.from_env(env, cwd)
        self.config_path = resolve_config_path(env, self.where.state_dir, cwd)
        problem = state_dir_problem(self.where.state_dir, bool(options.state_dir), env)
        if problem:
            raise StartupError(problem)
        try:
            self.config = load_config_file(self.config_path)
        except ConfigError as exc:
            lines = [f"invalid config: {line}" for line in exc.located()]
            raise StartupError("\n".join(lines)) from None
        self.token = resolve_token(options, self.config)
        if not is_loopback(options.bind) and self.token is None:
            raise StartupError(
                f"refusing to listen on {options.bind} without a token: anyone who can reach it "
                "could read and change every session. Set gateway.auth.token in the config, "
                "OPENCLAW_GATEWAY_TOKEN, --token or --token-file, or bind 127.0.0.1."
            )
        self.registry = Registry(self.config, self.where)
        self.protocol = RpcProtocol()
        self.connections: dict[int, Connection] = {}
        self.ids = itertools.count(1)
        self.stop = asyncio.Event()
        self.inflight: set[asyncio.Task[None]] = set()
        self.started = time.monotonic()
        self.registry.listeners.append(self._fan_out)
        self.registry.store_listeners.append(self._stores_changed)
        self.metrics = Metrics(
            self.registry, lambda: [c.dialect for c in self.connections.values()]
        )
        self.gateway = GatewaySessions(self)  # OpenClaw's clients (issue 14)
        self.registry.listeners.append(self.gateway.on_change)
        self.registry.derived.append(self.gateway.forget)

    # ------------------------------------------------------------------------ HTTP and upgrade

    def process_request(self, ws: ServerConnection, request: Request) -> Response | None:
        path = request.path.split("?", 1)[0]
        if path == "/healthz":
            return ws.respond(HTTPStatus.OK, "ok\n")
        if path == "/readyz":
            reasons = self.registry.not_ready_reasons()
            if reasons:
                return ws.respond(HTTPStatus.SERVICE_UNAVAILABLE, "\n".join(reasons) + "\n")
            return ws.respond(HTTPStatus.OK, "ready\n")
        origin = request.headers.get("Origin")
        if origin is not None and origin not in self.options.allowed_origins:
            log.warning("origin refused", origin=origin)
            return ws.respond(HTTPStatus.FORBIDDEN, "origin not allowed\n")
        bearer = _bearer(request.headers)
        if bearer is not None and not token_matches(self.token, bearer):
            log.warning("bad bearer token at upgrade")
            return ws.respond(HTTPStatus.UNAUTHORIZED, "bad token\n")
        if path == "/metrics":
            return self._metrics_response(ws, bearer)
        return None

    def _metrics_response(self, ws: ServerConnection, bearer: str | None) -> Response:
        """Issue 15: the upgrade's rules (Origin, bearer token when one is configured), then
        the Prometheus text; never upgraded to a WebSocket."""
        if self.token is not None and bearer is None:
            return ws.respond(HTTPStatus.UNAUTHORIZED, "bearer token required\n")
        body = self.metrics.render()
        headers = Headers([("Content-Type", CONTENT_TYPE), ("Content-Length", str(len(body)))])
        return Response(HTTPStatus.OK.value, HTTPStatus.OK.phrase, headers, body)

    # ------------------------------------------------------------------------- connections

    async def handler(self, ws: ServerConnection) -> None:
        conn_id = next(self.ids)
        bearer = _bearer(ws.request.headers) if ws.request is not None else None
        conn = Connection(ws, conn_id, self.token is None or bearer is not None)
        self.connections[conn_id] = conn
        with structlog.contextvars.bound_contextvars(conn=conn_id):
            log.info("connected", peer=str(ws.remote_address))
            sender = asyncio.create_task(self._send_loop(conn))
            try:
                # Decoded per frame type, so a text frame that is not UTF-8 fails with 1007
                # (RFC 6455 8.1) like every later frame; the dialects take bytes.
                # A client that sent a bearer token speaks JSON-RPC and may stay silent; any
                # other silent client is an OpenClaw one waiting for the gateway's challenge.
                try:
                    async with asyncio.timeout(None if bearer is not None else GATEWAY_GRACE_S):
                        received = await ws.recv()
                except TimeoutError:
                    conn.dialect = "gateway"
                    await serve_gateway(self, conn, None)
                    return
                first = received.encode() if isinstance(received, str) else received
                dialect = choose_dialect(first)
                conn.dialect = "gateway" if dialect is serve_gateway else "jsonrpc"
                await dialect(self, conn, first)
            except ConnectionClosed:
                pass
            except Exception:
                # A bug in a dialect: logged here (with the traceback) rather than by websockets'
                # stdlib logger; only this connection is closed, the daemon keeps serving.
                log.exception("connection handler failed")
                await ws.close(1011, "internal error")
            finally:
                sender.cancel()
                self.connections.pop(conn_id, None)
                log.info("disconnected", code=ws.close_code)

    async def serve_jsonrpc(self, conn: Connection, first: bytes) -> None:
        """The JSON-RPC dialect: the first frame inline (auth), the rest concurrently."""
        conn.dialect = "jsonrpc"
        await self._frame(conn, first)
        if not conn.authenticated:
            await conn.ws.close(1008, "authentication required")
            return
        slots = asyncio.Semaphore(MAX_IN_FLIGHT)

        def done(task: asyncio.Task[None]) -> None:
            self.inflight.discard(task)
            slots.release()

        async for frame in conn.ws:
            if self.stop.is_set():
                # Shutting down: a change accepted now could miss the final flush. Unanswered,
                # like a request in flight at a crash; the 1012 close follows.
                continue
            data = frame if isinstance(frame, bytes) else frame.encode()
            await slots.acquire()
            task = asyncio.create_task(self._frame(conn, data))
            self.inflight.add(task)
            task.add_done_callback(done)

    async def _frame(self, conn: Connection, data: bytes) -> None:
        """Answer one frame. Never raises: a frame that crashes is answered -32603 and logged,
        and the connection keeps serving (a task that raised would leave its request unanswered
        and log only through asyncio's 'exception was never retrieved')."""

        async def dispatch(call: Call) -> Any:
            token = enter_request(call.id, call.method)
            try:
                return await self.dispatch(conn, call)
            finally:
                leave_request(token)

        try:
            fault_point("frame", on_disk_path=False)
            reply = await self.protocol.handle(data, dispatch)
        except Exception as exc:
            log.exception("frame handling failed", frame_bytes=len(data))
            reply = _internal_error(data, exc)
        # Answered: the send no longer holds shutdown, which waits for answers, not for a client
        # that stopped reading (its connection is dropped after SHUTDOWN_CLOSE_TIMEOUT_S).
        task = asyncio.current_task()
        if task is not None:
            self.inflight.discard(task)
        if reply is None:
            return
        try:
            await conn.ws.send(reply, text=True)
        except ConnectionClosed:
            pass
        except Exception:
            log.exception("sending a reply failed")

    async def _send_loop(self, conn: Connection) -> None:
        while True:
            data = await conn.outbox.get()
            try:
                await conn.ws.send(data, text=True)
            except ConnectionClosed:
                return

    def _fan_out(self, change: SessionsChanged) -> None:
        data = _ENCODER.encode(Notification(method=CHANGED_NOTIFICATION, params=change))
        for conn in list(self.connections.values()):
            if conn.subscribed is None or change.store_path not in conn.subscribed:
                continue
            self._notify(conn, data)

    def _notify(self, conn: Connection, data: bytes) -> None:
        if conn.outbox.qsize() >= MAX_QUEUED_NOTIFICATIONS:
            log.warning("subscriber too slow; closing", conn=conn.id)
            conn.subscribed = None
            task = asyncio.create_task(conn.ws.close(1013, "notifications not read"))
            task.add_done_callback(lambda _t: None)
            return
        conn.outbox.put_nowait(data)

    def _stores_changed(self, added: list[LiveStore], removed: list[LiveStore]) -> None:
        """A reload changed the set of stores: allAgents subscribers gain the new ones, every
        subscriber loses the removed ones, and each is told which (`sessions.storesChanged`)
        before any change of a new store can reach it."""
        gained = [SubscribedStore(s.agent_id, s.path, s.seq) for s in added]
        for conn in list(self.connections.values()):
            if conn.subscribed is None:
                continue
            lost = [SubscribedStore(s.agent_id, s.path, s.seq) for s in removed]
            lost = [s for s in lost if s.store_path in conn.subscribed]
            new = gained if conn.all_agents else []
            if not lost and not new:
                continue
            conn.subscribed -= {s.store_path for s in lost}
            conn.subscribed |= {s.store_path for s in new}
            params = StoresChanged(added=new, removed=lost)
            data = _ENCODER.encode(Notification(method=STORES_CHANGED_NOTIFICATION, params=params))
            self._notify(conn, data)

    # ------------------------------------------------------------------------------ methods

    async def dispatch(self, conn: Connection, call: Call) -> Any:
        """Run one validated call of either dialect; only `auth` runs before authentication.
        Each call is counted by method and outcome (a domain error is `error`, anything else
        `internal`) with its latency, for /metrics."""
        if call.method != "auth":
            if not conn.authenticated:
                raise AuthRequired("authentication required: call auth first")
            fault_point("dispatch", on_disk_path=False)
        started = time.perf_counter()
        outcome = "internal"
        try:
            result = await _METHODS[call.method](self, conn, call.params)
            outcome = "ok"
            return result
        except DomainError:
            outcome = "error"
            raise
        finally:
            self.metrics.request(call.method, outcome, time.perf_counter() - started)

    async def _auth(self, conn: Connection, params: AuthParams) -> AuthResult:
        if not token_matches(self.token, params.token):
            log.warning("bad token in auth")
            raise AuthRequired("bad token")
        conn.authenticated = True
        return AuthResult(True)

    async def _list(self, conn: Connection, params: Any) -> Any:
        return methods.list_sessions(self.registry, params)

    async def _get(self, conn: Connection, params: Any) -> Any:
        return methods.get_session(self.registry, params)

    async def _patch(self, conn: Connection, params: Any) -> Any:
        return await methods.patch_session(self.registry, params)

    async def _delete(self, conn: Connection, params: Any) -> Any:
        return await methods.delete_session(self.registry, params)

    # ---- progress, the cleanup journal and undo

    def _progress(self, conn: Connection, token: str | int | None) -> RpcProgress | None:
        if token is None or conn.dialect != "jsonrpc":
            return None

        async def send(frame: bytes) -> None:
            await conn.ws.send(frame, text=True)

        return RpcProgress(token, send)

    async def _cleanup(self, conn: Connection, params: Any) -> Any:
        progress = self._progress(conn, params.progress_token)
        if progress is None:
            return await methods.cleanup(self.registry, params)
        try:
            return await methods.cleanup(self.registry, params, progress)
        finally:
            await progress.drain()

    async def _restore(self, conn: Connection, params: Any) -> Any:
        progress = self._progress(conn, params.progress_token)
        if progress is None:
            return await methods.restore(self.registry, params)
        try:
            return await methods.restore(self.registry, params, progress)
        finally:
            await progress.drain()

    async def _cleanups(self, conn: Connection, params: Any) -> Any:
        return methods.list_cleanups(self.registry, params)

    async def _subscribe(self, conn: Connection, params: SubscribeParams) -> Any:
        if params.all_agents:
            stores: list[LiveStore] = list(self.registry)
        else:
            stores = [methods.store_for(self.registry, params.agent)]
        conn.subscribed = (conn.subscribed or set()) | {s.path for s in stores}
        conn.all_agents = conn.all_agents or params.all_agents
        return SubscribeResult([SubscribedStore(s.agent_id, s.path, s.seq) for s in stores])

    async def _unsubscribe(self, conn: Connection, params: Any) -> Any:
        was = conn.subscribed is not None
        conn.subscribed = None
        conn.all_agents = False
        return UnsubscribeResult(was)

    async def _status(self, conn: Connection, params: Any) -> Any:
        stores = [s.status() for s in self.registry]
        return StatusResult(
            version=version(),
            pid=os.getpid(),
            uptime_ms=int((time.monotonic() - self.started) * 1000),
            connections=len(self.connections),
            ready=self.registry.ready,
            conflicts=sum(s.conflicts for s in stores),
            stale_writes_repaired=sum(s.stale_writes_repaired for s in stores),
            stores=stores,
        )

    # ----------------------------------------------------------------------------- lifecycle

    def status_line(self) -> str:
        rows = sum(len(s.store) for s in self.registry)
        return f"serving {len(self.registry.stores)} stores, {rows} sessions"

    async def reload_config(self) -> None:
        systemd.reloading()
        try:
            config = load_config_file(self.config_path)
            token = resolve_token(self.options, config)
        except (ConfigError, StartupError) as exc:
            problems = exc.located() if isinstance(exc, ConfigError) else [str(exc)]
            log.error(
                "config reload failed; still serving with the config loaded before",
                file=self.config_path,
                problems=problems,
            )
            systemd.ready(self.status_line())
            return
        self.config = config
        self.token = token
        await self.registry.reconfigure(config)
        log.info("config reloaded", stores=len(self.registry.stores))
        systemd.ready(self.status_line())

    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.stop.set)
        reloads: set[asyncio.Task[None]] = set()

        def on_hup() -> None:
            task = asyncio.create_task(self.reload_config())
            reloads.add(task)
            task.add_done_callback(reloads.discard)

        loop.add_signal_handler(signal.SIGHUP, on_hup)
        try:
            self.registry.claim()
        except HeldElsewhere as exc:
            raise StartupError(str(exc)) from None
        try:
            server = await self._listen()
        except OSError as exc:
            self.registry.locks.release_all()
            raise StartupError(_bind_failure(self.options, exc)) from None
        host, port = server_address(server)
        self.registry.locks.publish(_url_for(host, port))
        self.registry.start()
        started = time.perf_counter()
        await methods.warm_plans(self.registry)
        log.info("plans warmed", ms=round((time.perf_counter() - started) * 1000))
        # What was just loaded lives as long as the daemon: out of the cycle collector's sight,
        # its full passes stay short however big the stores (rows are freed by refcount).
        gc.collect()
        gc.freeze()
        await server.start_serving()
        log.info("listening", host=host, port=port, stores=len(self.registry.stores))
        if self.options.port_file:
            _write_port_file(self.options.port_file, port)
        background = [
            asyncio.create_task(
                watch_directories(
                    self.registry.directories,
                    self.registry.on_disk_event,
                    self.registry.rewatch,
                    self.stop,
                )
            ),
            asyncio.create_task(self._watchdog()),
        ]
        systemd.ready(self.status_line())
        await self.stop.wait()
        log.info("stopping")
        systemd.stopping()
        # Stop accepting, let requests in flight compute their (durable) answers, flush, and
        # only then close: a client that does not read can delay none of the steps before.
        server.close(close_connections=False)
        if self.inflight:
            await asyncio.wait(set(self.inflight), timeout=SHUTDOWN_INFLIGHT_S)
        flushed = await self.registry.close()
        await asyncio.gather(*(self._say_goodbye(c) for c in list(self.connections.values())))
        try:
            async with asyncio.timeout(SHUTDOWN_CLOSE_TIMEOUT_S):
                await server.wait_closed()
        except TimeoutError:
            log.warning("connection handlers still running at exit", left=len(self.connections))
        for task in background:
            task.cancel()
        for task in background:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self.metrics.close()
        self.registry.locks.release_all()
        log.info("stopped", flushed=flushed)
        return 0 if flushed else 1

    async def _say_goodbye(self, conn: Connection) -> None:
        """The gateway's `shutdown` event and the 1012 close, within SHUTDOWN_CLOSE_TIMEOUT_S;
        a client that does not take them (its socket buffers are full) is dropped."""
        try:
            async with asyncio.timeout(SHUTDOWN_CLOSE_TIMEOUT_S):
                if conn.farewell is not None:
                    with contextlib.suppress(ConnectionClosed):
                        await conn.ws.send(conn.farewell(), text=True)
                await conn.ws.close(1012, "sessiond restarting")
        except TimeoutError:
            log.warning("client did not take its close frame; dropping it", conn=conn.id)
            conn.ws.transport.abort()

    async def _listen(self) -> Server:
        kwargs: dict[str, Any] = {
            "compression": None,
            "max_size": self.options.max_frame_bytes,
            "process_request": self.process_request,
            "server_header": None,
            "start_serving": False,  # bound now; connections are accepted once stores are loaded
        }
        passed = systemd.listen_sockets()
        if passed:
            return await serve(self.handler, sock=passed[0], **kwargs)
        return await serve(self.handler, self.options.bind, self.options.port, **kwargs)

    async def _watchdog(self) -> None:
        interval = systemd.watchdog_interval()
        if interval is None:
            return
        while True:
            systemd.watchdog_ping()
            await asyncio.sleep(interval / 2)


class AuthRequired(DomainError):
    """A JSON-RPC connection called a method before a good token (or sent a bad one)."""

    kind = "auth_required"


_Method = Callable[[Daemon, Connection, Any], Awaitable[Any]]


def _in_two_shapes(jsonrpc: _Method, reference: _Method, reference_params: type[Any]) -> _Method:
    """One method both dialects serve, each in its own shape: the gateway dialect's adapter
    hands over the reference's params as they are (`GATEWAY_METHODS`), and their type picks
    the implementation that answers in the reference's shape (daemon/gateway_sessions.py)."""

    async def run(daemon: Daemon, conn: Connection, params: Any) -> Any:
        if isinstance(params, reference_params):
            return await reference(daemon, conn, params)
        return await jsonrpc(daemon, conn, params)

    return run


def _implementations(own: dict[str, _Method], reference: dict[str, _Method]) -> dict[str, _Method]:
    both = own.keys() & reference.keys()
    merged = {**own, **reference}
    for name in both:
        merged[name] = _in_two_shapes(own[name], reference[name], GATEWAY_METHODS[name].params)
    return merged


_METHODS: Final[dict[str, _Method]] = keyed_by_table(
    _implementations(
        {
            "auth": Daemon._auth,
            "sessions.list": Daemon._list,
            "sessions.get": Daemon._get,
            "sessions.patch": Daemon._patch,
            "sessions.delete": Daemon._delete,
            "sessions.cleanup": Daemon._cleanup,
            "sessions.subscribe": Daemon._subscribe,
            "sessions.unsubscribe": Daemon._unsubscribe,
            "daemon.status": Daemon._status,
            "sessions.cleanups": Daemon._cleanups,
            "sessions.restore": Daemon._restore,
            **JSONRPC_SHAPES,  # OpenClaw's clients' operations for JSON-RPC (issue 14)
        },
        REFERENCE_SHAPES,  # OpenClaw's clients' methods, in the reference's shapes (issue 14)
    ),
    METHODS,
)
"""Every method's implementation, whichever dialect calls it (checked against `METHODS`)."""

Dialect = Callable[[Daemon, Connection, bytes], Awaitable[None]]


def choose_dialect(first_frame: bytes) -> Dialect:
    """Which protocol this connection speaks, judged from the client's first frame.

    An object with `type` (and no `jsonrpc`) is OpenClaw's gateway protocol: its challenge goes
    out at once and the frame is handled after it. Anything else is JSON-RPC 2.0, whose own
    rules answer what is not valid JSON-RPC. A client that sends nothing for GATEWAY_GRACE_S is
    served the gateway protocol without a first frame (see `handler`).
    """
    if looks_like_gateway(first_frame):
        return serve_gateway
    return Daemon.serve_jsonrpc


def _internal_error(frame: bytes, exc: Exception) -> bytes | None:
    """-32603 for a frame whose handling crashed: with its id when it is one request that has a
    legal id, `null` otherwise (a batch, unreadable JSON), nothing for a notification."""
    ident: RequestId = None
    with contextlib.suppress(msgspec.DecodeError, msgspec.ValidationError, RecursionError):
        loose = _LOOSE.decode(frame)
        if "method" in loose and "id" not in loose:
            return None
        value = loose.get("id")
        if isinstance(value, str | int | float) and not isinstance(value, bool):
            ident = value
    error = ErrorObject(INTERNAL_ERROR, "Internal error", type(exc).__name__)
    return _ENCODER.encode(ErrorResponse(id=ident, error=error))


def _bearer(headers: Headers) -> str | None:
    value = headers.get("Authorization")
    if value is None:
        return None
    scheme, _, token = value.partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


def server_address(server: Server) -> tuple[str, int]:
    for sock in server.sockets:
        if sock.family in (socket.AF_INET, socket.AF_INET6):
            name = sock.getsockname()
            return str(name[0]), int(name[1])
    return "unix", 0


def _write_port_file(path: str, port: int) -> None:
    temp = f"{path}.{os.getpid()}.tmp"
    with open(temp, "w", encoding="utf-8") as handle:
        handle.write(f"{port}\n")
    os.replace(temp, path)


# ---------------------------------------------------------------------------------- startup


def _url_for(host: str, port: int) -> str:
    """The URL a local client uses: a wildcard bind is reached through loopback."""
    if host in ("0.0.0.0", ""):
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    return f"ws://[{host}]:{port}" if ":" in host else f"ws://{host}:{port}"


def _bind_failure(options: ServeOptions, exc: OSError) -> str:
    address = f"{options.bind}:{options.port}"
    if exc.errno == errno.EADDRINUSE:
        owner = port_owner(options.port)
        held = f" (held by {owner})" if owner else ""
        return f"cannot listen on {address}: address already in use{held}"
    reason = exc.strerror or str(exc)
    return f"cannot listen on {address}: {reason[:1].lower()}{reason[1:]}"


async def run_daemon(options: ServeOptions, env: dict[str, str], cwd: str) -> int:
    """Start (or raise StartupError, having changed nothing) and serve until SIGTERM/SIGINT."""
    return await Daemon(options, env, cwd).run()
