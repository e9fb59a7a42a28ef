"""The asyncio shell around `GatewayConnection`: one OpenClaw gateway-protocol connection.

It only moves bytes and time: frames in, the state machine's outputs carried out in order,
requests run through `Daemon.dispatch` (the same implementations the JSON-RPC dialect runs, so
no method is implemented twice; OpenClaw's clients' methods answer in the reference's shapes), a
`tick` every `policy.tickIntervalMs`, subscribers' `sessions.changed` events (through the
outbox), and the handshake deadline. Auth uses `wall_ms` even when `SESSIOND_NOW_MS` pins
`now_ms`: a device's `signedAt` is compared with real time.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from typing import TYPE_CHECKING, Any

import structlog
from sessiond.daemon.clock import now_ms, wall_ms
from sessiond.daemon.gateway_dialect import (
    HANDSHAKE_TIMEOUT_MS,
    Close,
    Connected,
    Credentials,
    Dispatch,
    GatewayConnection,
    Send,
    ServerFacts,
    State,
    SwitchToJsonRpc,
)
from sessiond.daemon.request_log import enter_request, leave_request
from sessiond.engine import session_rows
from sessiond.engine.config import default_agent_id
from sessiond.engine.errors import DomainError
from sessiond.protocol.gateway_frames import SessionDefaultsSnapshot
from websockets.exceptions import ConnectionClosed

if TYPE_CHECKING:
    from sessiond.daemon.server import Connection, Daemon

log = structlog.get_logger("sessiond.gateway")

_STARTED_MS = wall_ms()


def new_machine(daemon: Daemon) -> GatewayConnection:
    from sessiond.daemon.server import version

    cfg = daemon.registry.config
    main_key, main_session = session_rows.main_key(cfg), session_rows.main_session_key(cfg)
    scope = session_rows.session_scope(cfg)
    facts = ServerFacts(
        version=version(),
        started_ms=_STARTED_MS,
        max_payload=daemon.options.max_frame_bytes,
        state_dir=daemon.where.state_dir,
        config_path=daemon.config_path,
        session_defaults=SessionDefaultsSnapshot(
            default_agent_id=default_agent_id(cfg),
            main_key=main_key,
            main_session_key=main_session,
            scope=scope if isinstance(scope, str) else "per-sender",
        ),
    )
    return GatewayConnection(
        credentials=Credentials(token=daemon.token),
        facts=facts,
        nonce=str(uuid.uuid4()),
        conn_id=str(uuid.uuid4()),
    )


async def serve_gateway(daemon: Daemon, conn: Connection, first: bytes | None) -> None:
    """Speak first (the challenge), then run the connection until it closes.

    `first` is a frame the client sent before the challenge, if any: handled right after it.
    """
    from sessiond.daemon.server import MAX_IN_FLIGHT  # late: the server imports this module

    ws = conn.ws
    jsonrpc_authenticated = conn.authenticated  # restored if the peer turns out to be JSON-RPC
    conn.authenticated = False  # only a successful `connect` authenticates in this dialect
    machine = new_machine(daemon)
    await ws.send(machine.opening(wall_ms()), text=True)
    slots = asyncio.Semaphore(MAX_IN_FLIGHT)
    ticker: asyncio.Task[None] | None = None

    async def run(dispatch: Dispatch) -> None:
        try:
            token = enter_request(dispatch.request_id, dispatch.method)
            try:
                result = await daemon.dispatch(conn, dispatch.call)
                paths = {s.agent_id: s.path for s in daemon.registry}
                reply = machine.answer(dispatch, result, now_ms(), paths)
            except DomainError as exc:
                reply = machine.refuse(dispatch, exc)
            except Exception as exc:
                log.exception("internal error", method=dispatch.method, req=dispatch.request_id)
                reply = machine.crashed(dispatch, exc)
            finally:
                leave_request(token)
            with contextlib.suppress(ConnectionClosed):
                await ws.send(reply, text=True)
        finally:
            slots.release()

    async def carry_out(data: bytes) -> bool:
        """Handle one frame; False once the connection is finished (closed or handed over)."""
        nonlocal ticker
        for out in machine.receive(data, wall_ms()):
            if isinstance(out, Send):
                await ws.send(out.data, text=True)
            elif isinstance(out, Close):
                await ws.close(out.code, out.reason)
                return False
            elif isinstance(out, Connected):
                conn.authenticated = True
                conn.farewell = lambda: machine.shutdown("sessiond restarting")
                conn.gateway_event = machine.targeted_event
                ticker = asyncio.create_task(_tick(conn, machine))
                log.info("gateway connected", role=machine.role, scopes=machine.scopes)
            elif isinstance(out, SwitchToJsonRpc):
                conn.authenticated = jsonrpc_authenticated
                await daemon.serve_jsonrpc(conn, out.frame)
                return False
            else:
                await slots.acquire()
                task = asyncio.create_task(run(out))
                daemon.inflight.add(task)
                task.add_done_callback(daemon.inflight.discard)
        return True

    try:
        deadline = asyncio.get_running_loop().time() + HANDSHAKE_TIMEOUT_MS / 1000
        if first is not None and not await carry_out(first):
            return
        while machine.state is State.AWAITING_CONNECT:
            try:
                async with asyncio.timeout_at(deadline):
                    received = await ws.recv()
            except TimeoutError:
                for out in machine.handshake_timeout():
                    if isinstance(out, Close):
                        await ws.close(out.code, out.reason)
                return
            if not await carry_out(_as_bytes(received)):
                return
        async for received in ws:
            if not await carry_out(_as_bytes(received)):
                return
    finally:
        if ticker is not None:
            ticker.cancel()


def _as_bytes(frame: Any) -> bytes:
    return frame.encode() if isinstance(frame, str) else bytes(frame)


async def _tick(conn: Connection, machine: GatewayConnection) -> None:
    """A `tick` event every interval, through the outbox so it queues behind nothing slow."""
    interval = machine.facts.tick_interval_ms / 1000
    while True:
        await asyncio.sleep(interval)
        conn.outbox.put_nowait(machine.tick(wall_ms()))
