"""The generated Python client against a real `sessiond serve`: every method, every error class,
the change stream's gap detection, reconnects across a daemon restart, and the sync wrapper."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec
import pytest
from harness.daemon_process import DaemonProcess
from harness.state_dirs import read_rows, write_state_dir
from sessiond.client import (
    AuthRequiredError,
    Backoff,
    ConflictError,
    ConnectError,
    ConnectionLostError,
    InternalError,
    InvalidParamsError,
    InvalidRequestError,
    KeyNotFoundError,
    MethodNotFoundError,
    ParseError,
    ProtocolError,
    RpcError,
    SeqGap,
    SessiondClient,
    SessiondSyncClient,
    StoreNotFoundError,
    StoreNotWritableError,
    StoreWriteFailedError,
)
from sessiond.client.generated import ERRORS
from sessiond.protocol import jsonrpc
from sessiond.protocol.methods import (
    AgentsResult,
    AllAgentsCleanup,
    AuthResult,
    CleanupsResult,
    CleanupSummary,
    DeleteResult,
    GetResult,
    HistoryResult,
    ListResult,
    PatchResult,
    PreviewResult,
    ResetResult,
    RestoreResult,
    SessionsChanged,
    StatusResult,
    SubscribeResult,
    UnsubscribeResult,
    served_by,
)
from websockets.asyncio.server import ServerConnection, serve

ROWS = {
    "agent:main:old": {"sessionId": "s-old", "updatedAt": 1000, "custom": {"kept": [1, 2]}},
    "agent:main:new": {"sessionId": "s-new", "updatedAt": 3000, "chatType": "direct"},
    "agent:main:none": {"sessionId": "s-none"},
}
FAST = Backoff(first=0.02, most=0.2)


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DaemonProcess]:
    root = write_state_dir(tmp_path_factory.mktemp("state"), {"main": ROWS, "work": {}})
    with DaemonProcess(root) as proc:
        yield proc


def test_every_method_returns_the_protocol_types(daemon: DaemonProcess) -> None:
    called: set[str] = set()

    async def go() -> None:
        async with SessiondClient(daemon.url) as c:
            auth = await c.auth(token="unused without a configured token")
            assert isinstance(auth, AuthResult) and auth.ok
            called.add("auth")

            status = await c.daemon_status()
            assert isinstance(status, StatusResult)
            assert {s.agent_id for s in status.stores} == {"main", "work"}
            called.add("daemon.status")

            page = await c.sessions_list(limit=2)
            assert isinstance(page, ListResult)
            assert [s.key for s in page.sessions] == ["agent:main:new", "agent:main:old"]
            rest = await c.sessions_list(limit=2, cursor=page.next_cursor)
            assert [s.key for s in rest.sessions] == ["agent:main:none"] and not rest.has_more
            called.add("sessions.list")

            got = await c.sessions_get(key="agent:main:old")
            assert isinstance(got, GetResult) and got.agent_id == "main"
            assert msgspec.json.decode(got.entry)["custom"] == {"kept": [1, 2]}
            called.add("sessions.get")

            made = await c.sessions_patch(
                key="agent:work:py",
                agent="work",
                fields={"n": 1, "updatedAt": 5},
                if_updated_at=None,
            )
            assert isinstance(made, PatchResult) and made.durable
            again = await c.sessions_patch(
                key="agent:work:py", agent="work", fields={"n": 2}, if_updated_at=5
            )
            assert msgspec.json.decode(again.entry) == {"n": 2, "updatedAt": 5}
            assert read_rows(daemon.state_dir, "work")["agent:work:py"]["n"] == 2
            called.add("sessions.patch")

            gone = await c.sessions_delete(key="agent:work:py", agent="work")
            assert isinstance(gone, DeleteResult) and gone.deleted and gone.durable
            called.add("sessions.delete")

            journal = await c.sessions_cleanups(agent="work")
            assert isinstance(journal, CleanupsResult) and journal.entries[0].kind == "delete"
            called.add("sessions.cleanups")
            back = await c.sessions_restore(agent="work")
            assert isinstance(back, RestoreResult) and back.restored_rows == 1
            assert read_rows(daemon.state_dir, "work")["agent:work:py"]["n"] == 2
            called.add("sessions.restore")
            await c.sessions_delete(key="agent:work:py", agent="work")

            one = await c.sessions_cleanup(fix_dm_scope=True, dry_run=True)
            assert isinstance(one, CleanupSummary)
            assert one.dry_run and one.agent_id == "main" and one.before_count == 3
            every = await c.sessions_cleanup(all_agents=True, dry_run=True)
            assert isinstance(every, AllAgentsCleanup)
            assert [s.agent_id for s in every.stores] == ["main", "work"]
            assert all(isinstance(s, CleanupSummary) for s in every.stores)
            called.add("sessions.cleanup")

            agents = await c.agents_list()
            assert isinstance(agents, AgentsResult) and agents.default_id == "main"
            assert [(a.id, a.default) for a in agents.agents] == [("main", True), ("work", False)]
            called.add("agents.list")
            previews = await c.sessions_preview(keys=["agent:main:new", "agent:main:nope"])
            assert isinstance(previews, PreviewResult)
            assert [(p.key, p.status) for p in previews.previews] == [
                ("agent:main:new", "empty"),  # a session id, no transcript on disk
                ("agent:main:nope", "missing"),
            ]
            called.add("sessions.preview")
            history = await c.sessions_history(key="agent:main:new")
            assert isinstance(history, HistoryResult) and history.messages == []
            assert history.session_id == "s-new"
            called.add("sessions.history")
            fresh = await c.sessions_reset(key="agent:work:fresh", agent="work", reason="new")
            assert isinstance(fresh, ResetResult) and fresh.durable and fresh.archived == []
            assert read_rows(daemon.state_dir, "work")["agent:work:fresh"]["totalTokens"] == 0
            await c.sessions_delete(key="agent:work:fresh", agent="work")
            called.add("sessions.reset")

            sub = await c.sessions_subscribe(agent="work")
            assert isinstance(sub, SubscribeResult) and sub.stores[0].agent_id == "work"
            called.add("sessions.subscribe")
            off = await c.sessions_unsubscribe()
            assert isinstance(off, UnsubscribeResult) and off.unsubscribed
            called.add("sessions.unsubscribe")

    asyncio.run(go())
    assert called == set(served_by("jsonrpc")), "every JSON-RPC method of the table is exercised"


def test_daemon_errors_raise_their_classes(daemon: DaemonProcess) -> None:
    async def go() -> None:
        async with SessiondClient(daemon.url) as c:
            with pytest.raises(StoreNotFoundError) as store:
                await c.sessions_get(key="agent:main:old", agent="ghost")
            assert store.value.code == jsonrpc.APP_STORE_NOT_FOUND
            assert store.value.data == {"agent": "ghost"}

            with pytest.raises(KeyNotFoundError) as key:
                await c.sessions_get(key="agent:main:nope")
            assert key.value.data == {"key": "agent:main:nope"}

            with pytest.raises(ConflictError) as conflict:
                await c.sessions_patch(key="agent:main:old", fields={"x": 1}, if_updated_at=999)
            assert conflict.value.data["updatedAt"] == 1000 and conflict.value.data["exists"]

            with pytest.raises(InvalidParamsError) as params:
                await c.sessions_list(limit=0)
            assert params.value.data["path"] == "$.limit"

            with pytest.raises(MethodNotFoundError) as method:
                await c.call("sessions.nope")
            assert method.value.data == "sessions.nope"

            with pytest.raises(InvalidRequestError):
                await c.call("daemon.status", 3)

            # The connection is still good after every one of them.
            assert (await c.daemon_status()).ready

    asyncio.run(go())


def test_store_not_writable_and_write_failed(tmp_path: Path) -> None:
    root = write_state_dir(tmp_path, {"main": ROWS, "work": None})
    (root / "agents" / "work" / "sessions" / "sessions.json").write_text('{"a": {"x": 1},,}')
    flag = tmp_path / "disk-full"
    env = {
        "SESSIOND_TEST_FAULT_HOOK": "after-temp-write:enospc",
        "SESSIOND_TEST_FAULT_FLAG": str(flag),
    }
    with DaemonProcess(root, env=env) as proc:

        async def go() -> None:
            async with SessiondClient(proc.url) as c:
                with pytest.raises(StoreNotWritableError) as broken:
                    await c.sessions_patch(key="k", agent="work", fields={"a": 1})
                assert broken.value.code == jsonrpc.APP_STORE_NOT_WRITABLE
                flag.touch()
                # No row has a transcript, so --fix-missing removes them: a write that fails.
                with pytest.raises(StoreWriteFailedError) as failed:
                    await c.sessions_cleanup(fix_missing=True)
                assert "No space left" in failed.value.data["error"]
                flag.unlink()

        asyncio.run(go())


def test_token_refused_or_missing_raises_auth_required(tmp_path: Path) -> None:
    root = write_state_dir(tmp_path, {"main": ROWS}, {"gateway": {"auth": {"token": "s3cret"}}})
    with DaemonProcess(root) as proc:

        async def go() -> None:
            async with SessiondClient(proc.url, token="s3cret") as c:
                assert (await c.sessions_get(key="agent:main:old")).key == "agent:main:old"
            with pytest.raises(AuthRequiredError) as refused:
                await SessiondClient(proc.url, token="wrong").open()
            assert refused.value.data == {"httpStatus": 401}
            async with SessiondClient(proc.url, backoff=FAST) as anonymous:
                with pytest.raises(AuthRequiredError):
                    await anonymous.daemon_status()
                # The daemon closes that connection; `auth` is re-sent on the next one.
                assert (await anonymous.auth(token="s3cret")).ok
                assert (await anonymous.daemon_status()).ready

        asyncio.run(go())


async def _canned_daemon(connection: ServerConnection) -> None:
    """Answers as no well-behaved daemon does, for the classes a real one cannot provoke."""
    async for frame in connection:
        request = msgspec.json.decode(frame)
        ident, method = request["id"], request["method"]
        if method == "boom":
            error = {"code": -32603, "message": "Internal error", "data": "KeyError"}
            reply: dict[str, Any] = {"id": ident, "error": error}
        elif method == "garble":
            reply = {"id": None, "error": {"code": -32700, "message": "Parse error"}}
        elif method == "daemon.status":
            reply = {"id": ident, "result": {"version": "x"}}
        else:
            reply = {"id": ident, "error": {"code": -32099, "message": "custom"}}
        await connection.send(msgspec.json.encode({"jsonrpc": "2.0", **reply}).decode())


def test_error_classes_a_real_daemon_does_not_send() -> None:
    async def go() -> None:
        async with (
            serve(_canned_daemon, "127.0.0.1", 0) as server,
            SessiondClient(f"ws://127.0.0.1:{server.sockets[0].getsockname()[1]}") as c,
        ):
            with pytest.raises(InternalError) as internal:
                await c.call("boom")
            assert internal.value.data == "KeyError"
            # `"id": null` cannot be matched, so it fails the call in flight instead of hanging.
            with pytest.raises(ParseError):
                await asyncio.wait_for(c.call("garble"), 5)
            with pytest.raises(RpcError) as unknown:
                await c.call("other")
            assert type(unknown.value) is RpcError and unknown.value.code == -32099
            with pytest.raises(ProtocolError):
                await c.daemon_status()

    asyncio.run(go())
    assert set(ERRORS) == {
        v for k, v in vars(jsonrpc).items() if k in jsonrpc.__all__ and isinstance(v, int)
    }, "each code in protocol/jsonrpc.py has its class, and each was raised in these tests"


async def _next(stream: Any) -> Any:
    return await asyncio.wait_for(anext(stream), 5)


def test_changes_in_order_with_overflow_gap(daemon: DaemonProcess) -> None:
    async def go() -> None:
        async with SessiondClient(daemon.url) as watcher, SessiondClient(daemon.url) as writer:
            async with watcher.changes(agent="work") as changes:
                start = (await watcher.daemon_status()).stores[1].seq
                for i in range(3):
                    await writer.sessions_patch(key=f"agent:work:c{i}", agent="work", fields={})
                await writer.sessions_patch(key="agent:main:elsewhere", fields={"n": 1})
                seen = [await _next(changes) for _ in range(3)]
                assert all(isinstance(item, SessionsChanged) for item in seen)
                assert [item.seq for item in seen] == [start + 1, start + 2, start + 3]
                assert [item.keys for item in seen] == [[f"agent:work:c{i}"] for i in range(3)]

            async with watcher.changes(agent="work", max_queued=3) as slow:
                for i in range(5):
                    await writer.sessions_patch(key=f"agent:work:o{i}", agent="work", fields={})
                await asyncio.sleep(0.3)  # let all five arrive while nobody reads
                gap = await _next(slow)
                assert gap == SeqGap("work", gap.store_path, start + 3, start + 8, "overflow")
                await writer.sessions_patch(key="agent:work:after", agent="work", fields={})
                after = await _next(slow)
                assert isinstance(after, SessionsChanged) and after.seq == start + 9
            # Leaving the last stream unsubscribed on the daemon too.
            assert not (await watcher.sessions_unsubscribe()).unsubscribed

    asyncio.run(go())


def test_reconnect_after_the_daemon_restarts(tmp_path: Path) -> None:
    root = write_state_dir(tmp_path, {"main": ROWS})
    first = DaemonProcess(root)
    daemons = [first]

    async def go() -> None:
        async with SessiondClient(first.url, backoff=FAST) as c, c.changes() as changes:
            await c.sessions_patch(key="agent:main:a", fields={"n": 1})
            assert (await _next(changes)).seq == 1

            first.send(signal.SIGSTOP)  # requests are sent but never answered
            read = asyncio.create_task(c.sessions_get(key="agent:main:old"))
            write = asyncio.create_task(c.sessions_patch(key="agent:main:b", fields={}))
            await asyncio.sleep(0.3)
            first.stop(signal.SIGKILL)
            with pytest.raises(ConnectionLostError):
                await write  # it changes state, so it is not sent again
            daemons.append(DaemonProcess(root, "--port", str(first.port)))
            assert (await asyncio.wait_for(read, 10)).key == "agent:main:old"
            assert c.connections == 2

            gap = await _next(changes)
            assert isinstance(gap, SeqGap) and gap.reason == "reconnected"
            assert gap.last_seen == 1 and gap.current == 0
            await c.sessions_patch(key="agent:main:c", fields={"n": 3})
            change = await _next(changes)
            assert isinstance(change, SessionsChanged) and change.seq == 1
            assert change.keys == ["agent:main:c"]

    try:
        asyncio.run(go())
    finally:
        for proc in daemons:
            proc.stop()
    assert "agent:main:b" not in read_rows(root, "main")


def test_connect_error_when_nothing_listens(tmp_path: Path) -> None:
    async def go() -> None:
        client = SessiondClient("ws://127.0.0.1:9", connect_timeout=0.3, backoff=FAST)
        with pytest.raises(ConnectError, match="could not reach"):
            await client.open()

    asyncio.run(go())


def test_sync_client(daemon: DaemonProcess) -> None:
    with SessiondSyncClient(daemon.url) as c:
        summary = c.sessions_cleanup(fix_dm_scope=True, dry_run=True)
        assert isinstance(summary, CleanupSummary) and summary.dry_run
        assert c.sessions_list(limit=1).total_count >= 3
        with pytest.raises(KeyNotFoundError):
            c.sessions_get(key="agent:main:nope")
        assert c.daemon_status().ready


def test_a_refused_subscription_leaves_no_stream_behind(daemon: DaemonProcess) -> None:
    async def go() -> None:
        async with SessiondClient(daemon.url) as c:
            with pytest.raises(StoreNotFoundError):
                async with c.changes(agent="ghost"):
                    pass
            async with c.changes(agent="work") as changes:
                await c.sessions_patch(key="agent:work:after-ghost", agent="work", fields={})
                item = await _next(changes)
                assert isinstance(item, SessionsChanged) and item.keys == ["agent:work:after-ghost"]

    asyncio.run(go())


def test_sync_client_that_cannot_connect_stops_its_thread() -> None:
    client = SessiondSyncClient("ws://127.0.0.1:9", connect_timeout=0.2, backoff=FAST)
    with pytest.raises(ConnectError):
        client.open()
    assert not client._thread.is_alive()
