"""No surprises for an operator, daemon side (issue 13): a refused start says why in sessiond's
words and changes nothing; subscriptions follow the set of stores; rows travel compact."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
from pathlib import Path
from typing import Any

import msgspec
from harness.async_run import run, until
from harness.daemon_process import DaemonProcess
from harness.raw_frames import RpcClient
from harness.state_dirs import store_path, write_state_dir
from sessiond.client import SeqGap, SessiondClient
from sessiond.protocol.methods import SessionsChanged, StoresChanged

ROWS = {"agent:main:a": {"sessionId": "sa", "updatedAt": 1000}}


def _refused(proc: DaemonProcess) -> list[str]:
    """A daemon that must refuse to start: exit 2, its stderr lines."""
    code = proc.proc.wait(15)
    proc.stop()
    assert code == 2, proc.logs()
    return [line for line in proc.logs().splitlines() if line.strip()]


# ------------------------------------------------------------------ 4. stores added by SIGHUP


def test_an_all_agents_subscription_covers_stores_a_reload_adds(tmp_path: Path) -> None:
    root = write_state_dir(tmp_path, {"main": ROWS})
    extra = "agent:extra:1"
    with DaemonProcess(root) as proc:

        async def raw() -> None:
            async with await RpcClient.connect(proc.url) as c:
                await c.call("sessions.subscribe", {"allAgents": True})
                write_state_dir(root, {"main": None, "extra": {extra: {"updatedAt": 1}}})
                proc.send(signal.SIGHUP)
                note = await asyncio.wait_for(c.notifications.get(), 10)
                assert note.method == "sessions.storesChanged"
                added = note.params["added"]
                assert [s["agentId"] for s in added] == ["extra"] and note.params["removed"] == []
                await c.call("sessions.patch", {"agent": "extra", "key": extra, "fields": {"n": 1}})
                change = await asyncio.wait_for(c.notifications.get(), 10)
                assert change.method == "sessions.changed"
                assert change.params["agentId"] == "extra" and change.params["keys"] == [extra]
                assert change.params["seq"] == added[0]["seq"] + 1

                write_state_dir(root, {"main": None})
                proc.send(signal.SIGHUP)
                note = await asyncio.wait_for(c.notifications.get(), 10)
                assert note.method == "sessions.storesChanged"
                assert [s["agentId"] for s in note.params["removed"]] == ["extra"]

        async def client() -> None:
            """The Python client's change stream yields the announcement and follows the store."""
            async with SessiondClient(proc.url) as c, c.changes(all_agents=True) as changes:
                write_state_dir(root, {"main": None, "extra": {extra: {"updatedAt": 1}}})
                proc.send(signal.SIGHUP)
                items: list[SessionsChanged | SeqGap | StoresChanged] = []
                stream = aiter(changes)
                items.append(await asyncio.wait_for(anext(stream), 10))
                await c.sessions_patch(agent="extra", key=extra, fields={"n": msgspec.Raw(b"2")})
                items.append(await asyncio.wait_for(anext(stream), 10))
                assert isinstance(items[0], StoresChanged)
                assert isinstance(items[1], SessionsChanged) and items[1].agent_id == "extra"

        run(raw)
        run(client)


# -------------------------------------------------------------- 5. a state dir that is not


def test_serve_refuses_a_state_dir_that_does_not_exist(tmp_path: Path) -> None:
    missing = tmp_path / "typo" / "state"
    log_dir = write_state_dir(tmp_path / "logs", {})
    proc = DaemonProcess(log_dir, "--state-dir", str(missing), wait=False)
    assert _refused(proc) == [
        f"sessiond: not starting: state dir {missing} (from --state-dir) does not exist"
    ]
    assert not (tmp_path / "typo").exists(), "nothing of the tree is created"


# ------------------------------------------------------------------------- 6. a port in use


def test_a_port_in_use_is_one_line_and_nothing_is_written(tmp_path: Path) -> None:
    root = write_state_dir(tmp_path, {"main": None})
    path = store_path(root, "main")
    path.write_bytes(b'{"agent:main:a": {"updatedAt": 1}, "cut')  # corrupt: would be copied aside
    with socket.create_server(("127.0.0.1", 0)) as holder:
        port = holder.getsockname()[1]
        proc = DaemonProcess(root, "--port", str(port), wait=False)
        [line] = _refused(proc)
    assert line.startswith(
        f"sessiond: not starting: cannot listen on 127.0.0.1:{port}: address already in use "
        f"(held by pid {os.getpid()}"
    ), line
    assert sorted(p.name for p in path.parent.iterdir()) == ["sessions.json"]
    assert path.read_bytes() == b'{"agent:main:a": {"updatedAt": 1}, "cut'


# --------------------------------------------------------------------- 7. config errors


def test_a_config_error_names_file_line_and_column_in_sessionds_words(tmp_path: Path) -> None:
    root = write_state_dir(tmp_path, {"main": ROWS})
    config = root / "openclaw.json"
    config.write_text('{\n  session: {\n    maintenance: { mode: "sometimes" },\n  },\n}\n')
    lines = _refused(DaemonProcess(root, wait=False))
    assert lines == [
        f"sessiond: not starting: invalid config: {config}:3:20: session.maintenance.mode: "
        'Invalid option: expected one of "enforce"|"warn"'
    ]
    assert "doctor" not in "".join(lines)


def test_a_reload_error_names_the_file_and_keeps_serving(tmp_path: Path) -> None:
    root = write_state_dir(tmp_path, {"main": ROWS})
    config = root / "openclaw.json"
    with DaemonProcess(root) as proc:
        config.write_text("{\n  session: { dmScope: 'main' ]\n}\n")
        proc.send(signal.SIGHUP)

        def failed() -> dict[str, Any] | None:
            return next(
                (e for e in proc.log_events() if e.get("event", "").startswith("config reload")),
                None,
            )

        async def logged() -> bool:
            return failed() is not None

        async def still_serving() -> None:
            await until(logged, 10)
            async with await RpcClient.connect(proc.url) as c:
                assert (await c.call("sessions.get", {"key": "agent:main:a"})).key

        run(still_serving)
        event = failed()
        assert event is not None
        assert event["event"] == "config reload failed; still serving with the config loaded before"
        assert event["file"] == str(config)
        assert event["problems"] == [f'{config}:2:30: JSON5 parse failed: Unexpected "]"']


# ------------------------------------------------------------------ 8. compact entries


def test_sessions_get_returns_the_entry_compact_and_leaves_the_file_alone(tmp_path: Path) -> None:
    root = write_state_dir(tmp_path, {"main": None})
    path = store_path(root, "main")
    path.write_text('{\n  "agent:main:a": {\n    "sessionId": "sa",\n    "n": 1.50\n  }\n}\n')
    before = path.read_bytes()
    with DaemonProcess(root) as proc:

        async def go() -> None:
            async with await RpcClient.connect(proc.url) as c:
                got = await c.call("sessions.get", {"key": "agent:main:a"})
                assert bytes(got.entry) == b'{"sessionId":"sa","n":1.50}'
                patched = await c.call(
                    "sessions.patch", {"key": "agent:main:a", "fields": {"sessionId": "sa"}}
                )
                assert bytes(patched.entry) == b'{"sessionId":"sa","n":1.50}'

        run(go)
    assert path.read_bytes() == before
    assert json.loads(before) == {"agent:main:a": {"sessionId": "sa", "n": 1.5}}
