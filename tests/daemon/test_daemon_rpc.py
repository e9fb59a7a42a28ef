"""JSON-RPC 2.0 over a real `sessiond serve` on port 0: every error class, batches, ids, methods."""

from __future__ import annotations

import asyncio
import urllib.error
import urllib.request
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import msgspec
import pytest
from harness.daemon_process import DaemonProcess
from harness.raw_frames import RpcCallError, RpcClient
from harness.state_dirs import read_rows, write_state_dir
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

ROWS = {
    "agent:main:old": {"sessionId": "s-old", "updatedAt": 1000, "custom": {"kept": [1, 2]}},
    "agent:main:new": {"sessionId": "s-new", "updatedAt": 3000, "chatType": "direct"},
    "agent:main:none": {"sessionId": "s-none"},
}


def run(coro_fn: Callable[[], Awaitable[Any]]) -> Any:
    return asyncio.run(coro_fn())  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DaemonProcess]:
    root = write_state_dir(tmp_path_factory.mktemp("state"), {"main": ROWS, "work": {}})
    with DaemonProcess(root) as proc:
        yield proc


async def raw(url: str, frame: bytes | str) -> Any:
    async with connect(url, compression=None) as ws:
        await ws.send(frame)
        return msgspec.json.decode(await asyncio.wait_for(ws.recv(), 5))


def test_parse_error_and_invalid_requests(daemon: DaemonProcess) -> None:
    async def go() -> None:
        reply = await raw(daemon.url, '{"jsonrpc": "2.0", "method": "foobar, "params": "bar"')
        assert reply["error"]["code"] == -32700 and reply["id"] is None
        reply = await raw(daemon.url, "[]")
        assert reply == {
            "jsonrpc": "2.0",
            "id": None,
            "error": {"code": -32600, "message": "Invalid Request: empty batch"},
        }
        reply = await raw(daemon.url, "[1,2,3]")
        assert [r["error"]["code"] for r in reply] == [-32600] * 3
        reply = await raw(daemon.url, '{"jsonrpc": "2.0", "method": 1, "params": "bar"}')
        assert reply["error"]["code"] == -32600 and reply["id"] is None
        reply = await raw(daemon.url, '{"jsonrpc": "1.0", "method": "daemon.status", "id": 7}')
        assert reply["error"]["code"] == -32600 and reply["id"] == 7
        reply = await raw(
            daemon.url, '{"jsonrpc":"2.0","method":"daemon.status","params":3,"id":1}'
        )
        assert reply["error"]["code"] == -32600

    run(go)


def test_method_and_params_errors(daemon: DaemonProcess) -> None:
    async def go() -> None:
        reply = await raw(daemon.url, '{"jsonrpc": "2.0", "method": "nope", "id": "a"}')
        assert reply["error"]["code"] == -32601 and reply["id"] == "a"
        frame = '{"jsonrpc":"2.0","method":"sessions.list","params":{"limit":0},"id":2}'
        reply = await raw(daemon.url, frame)
        assert reply["error"]["code"] == -32602
        assert reply["error"]["data"]["path"] == "$.limit"
        frame = '{"jsonrpc":"2.0","method":"sessions.cleanup","params":{"dryRun":"yes"},"id":3}'
        reply = await raw(daemon.url, frame)
        assert reply["error"]["data"] == {
            "path": "$.dryRun",
            "reason": "Expected `bool`, got `str`",
        }
        frame = '{"jsonrpc":"2.0","method":"sessions.get","params":["k"],"id":4}'
        assert (await raw(daemon.url, frame))["error"]["code"] == -32602
        frame = '{"jsonrpc":"2.0","method":"sessions.get","params":{"key":"k","x":1},"id":5}'
        assert (await raw(daemon.url, frame))["error"]["code"] == -32602

    run(go)


def test_ids_of_every_legal_type(daemon: DaemonProcess) -> None:
    async def go() -> None:
        for ident in ["abc", 0, -5, 1.5, None, ""]:
            frame = msgspec.json.encode(
                {"jsonrpc": "2.0", "method": "sessions.get", "params": {"key": "x"}, "id": ident}
            )
            reply = await raw(daemon.url, frame)
            assert reply["id"] == ident and type(reply["id"]) is type(ident)
            assert reply["error"]["code"] == -32004

    run(go)


def test_batches_and_notifications(daemon: DaemonProcess) -> None:
    async def go() -> None:
        async with connect(daemon.url, compression=None) as ws:
            batch = [
                {
                    "jsonrpc": "2.0",
                    "method": "sessions.get",
                    "params": {"key": "agent:main:old"},
                    "id": 1,
                },
                {"jsonrpc": "2.0", "method": "daemon.status"},
                {"jsonrpc": "2.0", "method": "nope", "id": "2"},
                {"foo": "boo"},
                {"jsonrpc": "2.0", "method": "nope"},
                {"jsonrpc": "2.0", "method": "sessions.list", "params": {"limit": 1}, "id": None},
            ]
            await ws.send(msgspec.json.encode(batch).decode())
            reply = msgspec.json.decode(await ws.recv())
            assert len(reply) == 4
            assert reply[0]["id"] == 1
            assert reply[0]["result"]["entry"]["custom"] == {"kept": [1, 2]}
            assert reply[1]["id"] == "2" and reply[1]["error"]["code"] == -32601
            assert reply[2]["id"] is None and reply[2]["error"]["code"] == -32600
            assert reply[3]["id"] is None and reply[3]["result"]["totalCount"] == 3
            # A batch of only notifications gets no reply at all; the next request does.
            await ws.send(
                '[{"jsonrpc":"2.0","method":"daemon.status"},{"jsonrpc":"2.0","method":"x"}]'
            )
            await ws.send('{"jsonrpc":"2.0","method":"nope"}')
            await ws.send('{"jsonrpc":"2.0","method":"daemon.status","id":"after"}')
            reply = msgspec.json.decode(await asyncio.wait_for(ws.recv(), 5))
            assert reply["id"] == "after"

    run(go)


def test_list_get_patch_delete_and_noop(daemon: DaemonProcess) -> None:
    async def go() -> None:
        async with await RpcClient.connect(daemon.url) as c:
            page = await c.call("sessions.list", {"limit": 2})
            assert [s.key for s in page.sessions] == ["agent:main:new", "agent:main:old"]
            assert page.total_count == 3 and page.has_more
            rest = await c.call("sessions.list", {"limit": 2, "cursor": page.next_cursor})
            assert [s.key for s in rest.sessions] == ["agent:main:none"] and not rest.has_more
            bad = await raw(
                daemon.url,
                '{"jsonrpc":"2.0","method":"sessions.list","params":{"cursor":"!!"},"id":1}',
            )
            assert bad["error"]["data"]["path"] == "$.cursor"
            with pytest.raises(RpcCallError) as err:
                await c.call("sessions.get", {"key": "agent:main:old", "agent": "ghost"})
            assert err.value.code == -32001

            before = await c.call("daemon.status")
            flushes = before.stores[0].flushes
            patched = await c.call(
                "sessions.patch",
                {"key": "agent:main:old", "fields": {"model": "m1", "updatedAt": 1500}},
            )
            assert patched.durable
            entry = msgspec.json.decode(patched.entry)
            assert entry["custom"] == {"kept": [1, 2]} and entry["model"] == "m1"
            same = await c.call(
                "sessions.patch", {"key": "agent:main:old", "fields": {"model": "m1"}}
            )
            assert same.durable
            after = await c.call("daemon.status")
            assert after.stores[0].flushes == flushes + 1, "a no-op patch must not write"
            assert read_rows(daemon.state_dir, "main")["agent:main:old"]["model"] == "m1"

            with pytest.raises(RpcCallError) as err:
                await c.call(
                    "sessions.patch",
                    {"key": "agent:main:old", "fields": {"x": 1}, "ifUpdatedAt": 999},
                )
            assert err.value.code == -32003 and err.value.data["updatedAt"] == 1500
            ok = await c.call(
                "sessions.patch",
                {"key": "agent:main:fresh", "fields": {"updatedAt": 1}, "ifUpdatedAt": None},
            )
            assert ok.durable
            gone = await c.call("sessions.delete", {"key": "agent:main:fresh"})
            assert gone.deleted and gone.durable
            again = await c.call("sessions.delete", {"key": "agent:main:fresh"})
            assert not again.deleted
            with pytest.raises(RpcCallError) as err:
                await c.call("sessions.get", {"key": "agent:main:fresh"})
            assert err.value.code == -32004

    run(go)


def test_list_entries_follow_each_change_of_their_row(daemon: DaemonProcess) -> None:
    """List entries are kept from page to page (daemon/methods.py `_summary`): a patched row's
    next entry is the new one, a deleted row has none, and an untouched row's is as it was."""

    async def go() -> None:
        async with await RpcClient.connect(daemon.url) as c:

            async def listed() -> dict[str, Any]:
                page = await c.call("sessions.list", {"limit": 50})
                return {s.key: s for s in page.sessions}

            key = "agent:main:listed"
            await c.call("sessions.patch", {"key": key, "fields": {"updatedAt": 1700}})
            first = await listed()
            assert first[key].model is None
            await c.call("sessions.patch", {"key": key, "fields": {"model": "m2"}})
            second = await listed()
            assert second[key].model == "m2" and second[key].updated_at == 1700
            assert second["agent:main:new"] == first["agent:main:new"]
            await c.call("sessions.delete", {"key": key})
            assert key not in await listed()

    run(go)


def test_subscriptions_carry_seq(daemon: DaemonProcess) -> None:
    async def go() -> None:
        async with (
            await RpcClient.connect(daemon.url) as watcher,
            await RpcClient.connect(daemon.url) as writer,
        ):
            sub = await watcher.call("sessions.subscribe", {"agent": "work"})
            start = sub.stores[0].seq
            for i in range(3):
                await writer.call(
                    "sessions.patch",
                    {"key": f"agent:work:{i}", "agent": "work", "fields": {"n": i}},
                )
            await writer.call("sessions.patch", {"key": "agent:main:other", "fields": {"n": 1}})
            seen = [await asyncio.wait_for(watcher.notifications.get(), 5) for _ in range(3)]
            assert [n.params["seq"] for n in seen] == [start + 1, start + 2, start + 3]
            assert [n.params["keys"] for n in seen] == [[f"agent:work:{i}"] for i in range(3)]
            assert {n.params["reason"] for n in seen} == {"patch"}
            assert watcher.notifications.empty()
            assert (await watcher.call("sessions.unsubscribe")).unsubscribed
            await writer.call(
                "sessions.patch", {"key": "agent:work:9", "agent": "work", "fields": {}}
            )
            await writer.call(
                "sessions.patch", {"key": "agent:work:9", "agent": "work", "fields": {"n": 9}}
            )
            await asyncio.sleep(0.1)
            assert watcher.notifications.empty()

    run(go)


def test_concurrent_writers_on_two_connections(daemon: DaemonProcess) -> None:
    async def writer(name: str) -> None:
        async with await RpcClient.connect(daemon.url) as c:
            results = await asyncio.gather(
                *(
                    c.call(
                        "sessions.patch",
                        {"key": f"agent:work:{name}{i}", "agent": "work", "fields": {"i": i}},
                    )
                    for i in range(40)
                )
            )
            assert all(r.durable for r in results)

    async def go() -> None:
        before = await status(daemon)
        await asyncio.gather(writer("a"), writer("b"))
        after = await status(daemon)
        rows = read_rows(daemon.state_dir, "work")
        assert all(f"agent:work:{n}{i}" in rows for n in "ab" for i in range(40))
        work_before = next(s for s in before.stores if s.agent_id == "work")
        work_after = next(s for s in after.stores if s.agent_id == "work")
        assert work_after.flushes - work_before.flushes < 80, "bursts must coalesce"

    run(go)


async def status(daemon: DaemonProcess) -> Any:
    async with await RpcClient.connect(daemon.url) as c:
        return await c.call("daemon.status")


def test_oversize_frame_closes_1009(tmp_path: Path) -> None:
    root = write_state_dir(tmp_path, {"main": {}})
    with DaemonProcess(root, "--max-frame-bytes", "1024") as proc:

        async def go() -> None:
            async with connect(proc.url, compression=None, max_size=None) as ws:
                await ws.send("x" * 2048)
                with pytest.raises(ConnectionClosed) as closed:
                    await asyncio.wait_for(ws.recv(), 5)
                assert closed.value.rcvd is not None and closed.value.rcvd.code == 1009

        run(go)


def http_get(port: int, path: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def test_health_and_origin(daemon: DaemonProcess) -> None:
    assert http_get(daemon.port, "/healthz") == (200, "ok\n")
    assert http_get(daemon.port, "/readyz") == (200, "ready\n")

    async def go() -> None:
        with pytest.raises(InvalidStatus) as refused:
            async with connect(daemon.url, origin="https://evil.example"):  # type: ignore[arg-type]
                pass
        assert refused.value.response.status_code == 403

    run(go)


def test_token_auth(tmp_path: Path) -> None:
    root = write_state_dir(tmp_path, {"main": ROWS}, {"gateway": {"auth": {"token": "s3cret"}}})
    with DaemonProcess(root) as proc:

        async def go() -> None:
            async with await RpcClient.connect(proc.url, "s3cret") as c:
                assert (await c.call("daemon.status")).ready
            async with await RpcClient.connect(proc.url, "s3cret", bearer=False) as c:
                assert (await c.call("sessions.get", {"key": "agent:main:old"})).key
            with pytest.raises(InvalidStatus) as refused:
                await RpcClient.connect(proc.url, "wrong")
            assert refused.value.response.status_code == 401
            # No token: the first request is refused and the connection closed (1008).
            async with connect(proc.url, compression=None) as ws:
                await ws.send('{"jsonrpc":"2.0","method":"daemon.status","id":1}')
                reply = msgspec.json.decode(await ws.recv())
                assert reply["error"]["code"] == -32000
                with pytest.raises(ConnectionClosed) as closed:
                    await ws.recv()
                assert closed.value.rcvd is not None and closed.value.rcvd.code == 1008
            async with connect(proc.url, compression=None) as ws:
                await ws.send('{"jsonrpc":"2.0","method":"auth","params":{"token":"nope"},"id":1}')
                reply = msgspec.json.decode(await ws.recv())
                assert reply["error"]["code"] == -32000

        run(go)


def test_non_loopback_without_token_is_refused(tmp_path: Path) -> None:
    root = write_state_dir(tmp_path, {"main": {}})
    proc = DaemonProcess(root, "--bind", "0.0.0.0", wait=False)
    code = proc.proc.wait(15)
    assert code == 2
    assert "without a token" in proc.logs()
    proc.stop()


def test_corrupt_store_at_start_is_read_only_and_copied_aside(tmp_path: Path) -> None:
    root = write_state_dir(tmp_path, {"main": ROWS, "work": None})
    broken = root / "agents" / "work" / "sessions" / "sessions.json"
    broken.write_text('{"agent:work:a": {"x": 1},,}')
    with DaemonProcess(root) as proc:

        async def go() -> None:
            async with await RpcClient.connect(proc.url) as c:
                with pytest.raises(RpcCallError) as err:
                    await c.call(
                        "sessions.patch", {"key": "k", "agent": "work", "fields": {"a": 1}}
                    )
                assert err.value.code == -32002
                st = await c.call("daemon.status")
                work = next(s for s in st.stores if s.agent_id == "work")
                assert work.state == "broken" and not work.writable
                assert "line 1, column" in (work.parse_error or "")
                assert (
                    work.corrupt_copy and Path(work.corrupt_copy).read_text() == broken.read_text()
                )

        run(go)
    assert broken.read_text() == '{"agent:work:a": {"x": 1},,}'
