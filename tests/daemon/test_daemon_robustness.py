"""Robustness of a real `sessiond serve`: crashing frames, a crashing flusher, SIGTERM with a
client that stopped reading, zombie writers' temp files, and a late-speaking JSON-RPC client."""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import signal
import socket
import stat
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec
import pytest
from harness.async_run import run, until
from harness.daemon_process import DaemonProcess, http_status
from harness.raw_frames import RpcClient
from harness.state_dirs import read_rows, store_path, write_state_dir
from sessiond.daemon.live_store import temp_writer_alive
from websockets.asyncio.client import connect
from websockets.client import ClientProtocol
from websockets.exceptions import ConnectionClosed
from websockets.protocol import State
from websockets.uri import parse_uri

ROWS = {
    "agent:main:a": {"sessionId": "sa", "updatedAt": 1000},
    "agent:main:b": {"sessionId": "sb", "updatedAt": 2000},
}


def logged(proc: DaemonProcess, event: str) -> list[dict[str, Any]]:
    return [e for e in proc.log_events() if e.get("event") == event]


# ------------------------------------------------------------- 1. a frame or a flush that crashes


@pytest.fixture(params=["frame", "dispatch"])
def faulty(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[tuple[DaemonProcess, Path, str]]:
    """A daemon whose `frame` (before parsing) or `dispatch` (in the handler) point raises
    RuntimeError while the flag file exists: the test hook documented in daemon/server.py."""
    root = write_state_dir(tmp_path / "state", {"main": ROWS})
    flag = tmp_path / "crash"
    env = {
        "SESSIOND_TEST_FAULT_HOOK": f"{request.param}:raise",
        "SESSIOND_TEST_FAULT_FLAG": str(flag),
    }
    with DaemonProcess(root, env=env) as proc:
        yield proc, flag, request.param


def test_a_crashing_frame_is_answered_internal_error_and_the_connection_keeps_serving(
    faulty: tuple[DaemonProcess, Path, str],
) -> None:
    proc, flag, point = faulty
    request = b'{"jsonrpc":"2.0","method":"sessions.list","params":{},"id":"req-41"}'

    async def go() -> None:
        async with await RpcClient.connect(proc.url) as c:
            assert (await c.call("sessions.list")).total_count == 2
            flag.touch()
            reply = await c.send_raw(request)
            assert reply == {
                "jsonrpc": "2.0",
                "id": "req-41",
                "error": {"code": -32603, "message": "Internal error", "data": "RuntimeError"},
            }
            # A notification that crashes is still never answered.
            await c.notify("sessions.list", {})
            # A connection whose very first frame crashes is answered and stays open.
            async with connect(proc.url, compression=None) as first:
                await first.send(request.replace(b'"req-41"', b"7"))
                assert json.loads(await asyncio.wait_for(first.recv(), 5))["id"] == 7
                flag.unlink()
                await first.send(request.replace(b'"req-41"', b"8"))
                again = json.loads(await asyncio.wait_for(first.recv(), 5))
                assert again["id"] == 8 and again["result"]["totalCount"] == 2
            assert (await c.call("sessions.list")).total_count == 2
            assert c.raw_replies.empty()

    run(go)
    # Logged by the frame's catch-all (frame) or by the JSON-RPC layer (dispatch), with the
    # traceback: the request, the notification and the first frame.
    events = logged(proc, "frame handling failed" if point == "frame" else "internal error")
    assert len(events) == 3, events
    assert all("Traceback" in e["exception"] for e in events)
    assert all(f"RuntimeError: test fault at {point}" in e["exception"] for e in events)
    assert proc.proc.poll() is None


def test_a_flusher_that_raises_keeps_running_and_reports_the_failure(tmp_path: Path) -> None:
    """The store file is replaced by a socket: the flush sees an external change and the reload
    then fails to open it (ENXIO), an error the flush did not expect. That once killed the
    flusher for good: the patch was never answered, /readyz stayed 200, nothing was retried."""
    root = write_state_dir(tmp_path, {"main": None})  # no file yet: any file is an external change
    path = store_path(root, "main")

    async def go(proc: DaemonProcess) -> None:
        async with await RpcClient.connect(proc.url) as c:
            os.mknod(path, stat.S_IFSOCK | 0o600)
            patch = {"key": "agent:main:x", "fields": {"n": 1}}
            result = await c.call("sessions.patch", patch, timeout=5)
            assert result.durable is False
            status = await c.call("daemon.status")
            store = status.stores[0]
            assert not status.ready and store.flush_failures >= 1 and store.dirty
            assert store.flush_error and "OSError" in store.flush_error
            assert http_status(proc.port, "/readyz") == 503
            path.unlink()

            async def settled() -> bool:
                return not (await c.call("daemon.status")).stores[0].dirty

            await until(settled)
            assert http_status(proc.port, "/readyz") == 200
            assert (await c.call("daemon.status")).stores[0].flush_error is None
            again = await c.call("sessions.patch", {"key": "agent:main:y", "fields": {"n": 2}})
            assert again.durable is True

    with DaemonProcess(root) as proc:
        run(lambda: go(proc))
    assert read_rows(root, "main") == {"agent:main:x": {"n": 1}, "agent:main:y": {"n": 2}}
    crashes = logged(proc, "flush crashed; change kept in memory, retrying")
    assert crashes and "Traceback" in crashes[0]["exception"]


# ------------------------------------------------------- 2. SIGTERM and a client that never reads


def _tx_queue(local_port: int, remote_port: int) -> int:
    """Bytes the kernel still holds to send on that loopback TCP socket (Linux /proc/net/tcp)."""
    with open("/proc/net/tcp", encoding="ascii") as handle:
        for line in handle.readlines()[1:]:
            fields = line.split()
            local, remote = fields[1].split(":")[1], fields[2].split(":")[1]
            if (int(local, 16), int(remote, 16)) == (local_port, remote_port):
                return int(fields[4].split(":")[0], 16)
    return 0


class NonReader:
    """A websockets client (sans-I/O protocol over a blocking socket with a tiny receive
    buffer) that reads the upgrade answer and then never reads again."""

    def __init__(self, port: int) -> None:
        self.protocol = ClientProtocol(parse_uri(f"ws://127.0.0.1:{port}"))
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        self.sock.settimeout(5)
        self.sock.connect(("127.0.0.1", port))
        self.protocol.send_request(self.protocol.connect())
        self._flush()
        while self.protocol.state is State.CONNECTING:
            self.protocol.receive_data(self.sock.recv(1))  # byte by byte: nothing past the 101
        assert self.protocol.state is State.OPEN, self.protocol.handshake_exc
        self.ids = itertools.count(1)

    def request(self, method: str, params: dict[str, Any]) -> None:
        frame = {"jsonrpc": "2.0", "method": method, "params": params, "id": next(self.ids)}
        self.protocol.send_text(json.dumps(frame).encode())
        self._flush()

    def _flush(self) -> None:
        for data in self.protocol.data_to_send():
            self.sock.sendall(data)


def test_sigterm_exits_quickly_past_a_client_that_never_reads(tmp_path: Path) -> None:
    pad = "x" * 1500
    rows = {
        f"agent:main:r{i}": {"sessionId": f"s{i}", "updatedAt": i, "pad": pad} for i in range(300)
    }
    root = write_state_dir(tmp_path, {"main": rows})
    proc = DaemonProcess(root)
    acked: dict[str, int] = {}

    async def writer(name: str, stop: asyncio.Event) -> None:
        c = await RpcClient.connect(proc.url)
        try:
            for n in itertools.count(1):
                result = await c.call("sessions.patch", {"key": name, "fields": {"n": n}})
                assert result.durable
                acked[name] = n
                if stop.is_set():
                    return
        except (ConnectionError, ConnectionClosed, TimeoutError):
            return
        finally:
            await c.close()

    async def go() -> float:
        stuck = NonReader(proc.port)
        stuck.request("sessions.subscribe", {"allAgents": True})
        for _ in range(30):  # ~14 MB of answers into a 4 KiB receive buffer
            stuck.request("sessions.list", {"limit": 1000})
        local_port = stuck.sock.getsockname()[1]
        stop = asyncio.Event()
        writers = [asyncio.create_task(writer(f"agent:main:w{i}", stop)) for i in range(3)]

        async def blocked() -> bool:
            return _tx_queue(proc.port, local_port) > 100_000 and len(acked) == 3

        await until(blocked)
        started = time.monotonic()
        proc.send(signal.SIGTERM)
        code = await asyncio.to_thread(proc.proc.wait, 10)
        elapsed = time.monotonic() - started
        stop.set()
        await asyncio.gather(*writers)
        stuck.sock.close()
        assert code == 0
        return elapsed

    try:
        elapsed = run(go)
    finally:
        proc.stop()
    assert elapsed < 3.0, elapsed
    on_disk = read_rows(root, "main")
    assert all(on_disk[key]["n"] >= n for key, n in acked.items()), (acked, on_disk)
    assert any(e.get("event") == "stopped" and e.get("flushed") for e in proc.log_events())
    assert logged(proc, "client did not take its close frame; dropping it")


# ----------------------------------------------------------------------- 3. zombie temp writers


def _state(pid: int) -> str:
    with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as handle:
        return handle.read().rpartition(")")[2].split()[0]


def test_a_zombie_writer_is_dead_and_its_temp_file_is_removed(tmp_path: Path) -> None:
    zombie = subprocess.Popen(["true"])  # exits at once; not reaped until wait() below
    live = subprocess.Popen(["sleep", "30"])
    try:
        deadline = time.monotonic() + 5
        while _state(zombie.pid) != "Z":
            assert time.monotonic() < deadline, "child did not exit"
            time.sleep(0.01)
        assert not temp_writer_alive(zombie.pid)
        assert temp_writer_alive(live.pid) and temp_writer_alive(os.getpid())

        root = write_state_dir(tmp_path, {"main": ROWS})
        directory = store_path(root, "main").parent
        dead_temp = directory / f".sessiond-sessions.json.{zombie.pid}.0a0b0c0d0e0f.tmp"
        live_temp = directory / f".sessiond-sessions.json.{live.pid}.0a0b0c0d0e0f.tmp"
        dead_temp.write_text("{}")
        live_temp.write_text("{}")
        with DaemonProcess(root):
            pass
        assert not dead_temp.exists()
        assert live_temp.exists()
        assert _state(zombie.pid) == "Z"  # the daemon judged a real zombie
    finally:
        live.kill()
        live.wait()
        zombie.wait()


# ------------------------------------------------------ 4. a JSON-RPC client that speaks late


def test_a_json_rpc_client_silent_past_the_grace_gets_the_challenge_then_json_rpc(
    tmp_path: Path,
) -> None:
    root = write_state_dir(tmp_path, {"main": ROWS})

    async def go(url: str) -> None:
        async with connect(url, compression=None) as ws:
            await asyncio.sleep(0.4)  # past GATEWAY_GRACE_S (0.25 s)
            await ws.send('{"jsonrpc":"2.0","method":"sessions.list","params":{},"id":1}')
            challenge = json.loads(await asyncio.wait_for(ws.recv(), 5))
            assert challenge["type"] == "event" and challenge["event"] == "connect.challenge"
            reply = msgspec.json.decode(await asyncio.wait_for(ws.recv(), 5))
            assert reply["jsonrpc"] == "2.0" and reply["id"] == 1
            assert [s["key"] for s in reply["result"]["sessions"]] == list(reversed(ROWS))
            await ws.send('{"jsonrpc":"2.0","method":"daemon.status","id":2}')
            status = json.loads(await asyncio.wait_for(ws.recv(), 5))
            assert status["id"] == 2 and status["result"]["ready"] is True

    with DaemonProcess(root) as proc:
        run(lambda: go(proc.url))
