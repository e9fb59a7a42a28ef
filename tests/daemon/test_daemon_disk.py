"""The daemon and the disk: external edits, the conflict rule, failed flushes, signals, cleanup."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import msgspec
import pytest
from harness.async_run import run, until
from harness.daemon_process import DaemonProcess, http_status
from harness.raw_frames import RpcCallError, RpcClient
from harness.state_dirs import read_rows, store_path, write_state_dir
from websockets.exceptions import ConnectionClosed

ROWS = {
    "agent:main:a": {"sessionId": "sa", "updatedAt": 1000},
    "agent:main:b": {"sessionId": "sb", "updatedAt": 2000},
}


def replace_by_rename(path: Path, rows: dict[str, Any]) -> None:
    temp = path.with_name("editor-save.tmp")
    temp.write_text(json.dumps(rows, indent=2))
    os.replace(temp, path)


async def keys_of(c: RpcClient, agent: str = "main") -> set[str]:
    page = await c.call("sessions.list", {"agent": agent, "limit": 1000})
    return {s.key for s in page.sessions}


async def store_state(c: RpcClient, agent: str = "main") -> Any:
    status = await c.call("daemon.status")
    return next(s for s in status.stores if s.agent_id == agent)


def test_external_edits_rename_in_place_delete_recreate(tmp_path: Path) -> None:
    root = write_state_dir(tmp_path, {"main": ROWS})
    path = store_path(root, "main")
    with DaemonProcess(root) as proc:

        async def go() -> None:
            async with await RpcClient.connect(proc.url) as c:
                sub = await c.call("sessions.subscribe", {})
                seq = sub.stores[0].seq
                replace_by_rename(path, {**ROWS, "agent:main:c": {"updatedAt": 5}})
                note = await asyncio.wait_for(c.notifications.get(), 5)
                assert note.params["reason"] == "external"
                assert note.params["keys"] == ["agent:main:c"]
                assert note.params["seq"] == seq + 1
                # Edit in place (same inode, truncate and write).
                with open(path, "r+") as handle:
                    handle.truncate(0)
                    handle.write(json.dumps({"agent:main:d": {"updatedAt": 6}}))
                await until(lambda: _has(c, {"agent:main:d"}))
                # Delete, then recreate.
                path.unlink()
                await until(lambda: _has(c, set()))
                path.write_text(json.dumps({"agent:main:e": {"updatedAt": 7}}))
                await until(lambda: _has(c, {"agent:main:e"}))
                state = await store_state(c)
                assert state.external_reloads >= 4 and state.flushes == 0
                # The daemon's own write is recognised: no external reload follows it.
                await c.call("sessions.patch", {"key": "agent:main:f", "fields": {"n": 1}})
                await asyncio.sleep(0.3)
                again = await store_state(c)
                assert again.external_reloads == state.external_reloads
                assert again.flushes == 1

        run(go)


async def _has(c: RpcClient, keys: set[str]) -> bool:
    return await keys_of(c) == keys


def test_broken_file_keeps_last_good_state_and_is_never_overwritten(tmp_path: Path) -> None:
    root = write_state_dir(tmp_path, {"main": ROWS})
    path = store_path(root, "main")
    with DaemonProcess(root) as proc:

        async def go() -> None:
            async with await RpcClient.connect(proc.url) as c:
                path.write_text('{"agent:main:a": {"updatedAt": 1')
                await until(lambda: _state_is(c, "broken"))
                assert await keys_of(c) == set(ROWS)
                with pytest.raises(RpcCallError) as err:
                    await c.call("sessions.patch", {"key": "agent:main:a", "fields": {"n": 1}})
                assert err.value.code == -32002
                await asyncio.sleep(0.1)
                assert path.read_text() == '{"agent:main:a": {"updatedAt": 1'
                replace_by_rename(path, {"agent:main:z": {"updatedAt": 9}})
                await until(lambda: _state_is(c, "ok"))
                assert await keys_of(c) == {"agent:main:z"}
                patched = await c.call(
                    "sessions.patch", {"key": "agent:main:z", "fields": {"n": 2}}
                )
                assert patched.durable
                assert read_rows(root, "main") == {"agent:main:z": {"updatedAt": 9, "n": 2}}

        run(go)


async def _state_is(c: RpcClient, state: str) -> bool:
    return bool((await store_state(c)).state == state)


PAUSE = {"SESSIOND_TEST_FAULT_HOOK": "after-temp-write:pause", "SESSIOND_TEST_FAULT_PAUSE": "0.4"}


@pytest.mark.parametrize(("external_at", "winner"), [(1500, "daemon"), (9000, "external")])
def test_edit_racing_a_pending_change(tmp_path: Path, external_at: int, winner: str) -> None:
    """The daemon's write is paused before its rename while another writer replaces the file."""
    root = write_state_dir(tmp_path, {"main": ROWS})
    path = store_path(root, "main")
    with DaemonProcess(root, env=PAUSE) as proc:

        async def go() -> None:
            async with await RpcClient.connect(proc.url) as c:
                patch = asyncio.create_task(
                    c.call(
                        "sessions.patch",
                        {"key": "agent:main:a", "fields": {"updatedAt": 3000, "by": "daemon"}},
                    )
                )
                await asyncio.sleep(0.15)
                external = dict(ROWS)
                external["agent:main:a"] = {
                    "sessionId": "sa",
                    "updatedAt": external_at,
                    "by": "ext",
                }
                external["agent:main:x"] = {"updatedAt": 1, "by": "ext"}
                replace_by_rename(path, external)
                result = await asyncio.wait_for(patch, 10)
                assert result.durable
                await until(lambda: _not_dirty(c))
                on_disk = read_rows(root, "main")
                assert on_disk["agent:main:x"] == {"updatedAt": 1, "by": "ext"}
                assert on_disk["agent:main:b"] == ROWS["agent:main:b"]
                expected_by = "daemon" if winner == "daemon" else "ext"
                assert on_disk["agent:main:a"]["by"] == expected_by
                assert (await store_state(c)).conflicts == 1
                got = await c.call("sessions.get", {"key": "agent:main:a"})
                assert msgspec.json.decode(got.entry)["by"] == expected_by

        run(go)
    conflict_logs = [e for e in proc.log_events() if e.get("event", "").startswith("conflict")]
    assert [e["winner"] for e in conflict_logs] == [winner]


async def _not_dirty(c: RpcClient) -> bool:
    return not (await store_state(c)).dirty


def test_failed_flush_is_kept_retried_and_reported(tmp_path: Path) -> None:
    root = write_state_dir(tmp_path, {"main": ROWS})
    flag = tmp_path / "disk-full"
    flag.touch()
    env = {
        "SESSIOND_TEST_FAULT_HOOK": "after-temp-write:enospc",
        "SESSIOND_TEST_FAULT_FLAG": str(flag),
    }
    with DaemonProcess(root, env=env) as proc:

        async def go() -> None:
            async with await RpcClient.connect(proc.url) as c:
                result = await c.call("sessions.patch", {"key": "agent:main:n", "fields": {"n": 1}})
                assert not result.durable
                state = await store_state(c)
                assert state.flush_error and "No space left" in state.flush_error
                assert state.dirty and not (await c.call("daemon.status")).ready
                assert http_status(proc.port, "/readyz") == 503
                got = await c.call("sessions.get", {"key": "agent:main:n"})
                assert msgspec.json.decode(got.entry) == {"n": 1}
                assert "agent:main:n" not in read_rows(root, "main")
                flag.unlink()
                await until(lambda: _not_dirty(c), timeout=10)
                assert http_status(proc.port, "/readyz") == 200
                assert read_rows(root, "main")["agent:main:n"] == {"n": 1}

        run(go)
    leftovers = [p.name for p in store_path(root, "main").parent.iterdir() if p.suffix == ".tmp"]
    assert leftovers == []


def test_sigterm_flushes_pending_change_and_exits_cleanly(tmp_path: Path) -> None:
    root = write_state_dir(tmp_path, {"main": ROWS})
    proc = DaemonProcess(root, env=PAUSE)

    async def go() -> None:
        c = await RpcClient.connect(proc.url)
        patch = asyncio.create_task(
            c.call("sessions.patch", {"key": "agent:main:t", "fields": {"n": 1}})
        )
        await asyncio.sleep(0.1)
        proc.send(signal.SIGTERM)
        try:
            result = await asyncio.wait_for(patch, 10)
            assert result.durable
        except ConnectionError:
            pass
        # The client's reader task owns recv(); it ends with the 1012 close.
        with pytest.raises(ConnectionClosed) as closed:
            await asyncio.wait_for(c.reader, 10)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1012

    run(go)
    assert proc.stop() == 0
    assert read_rows(root, "main")["agent:main:t"] == {"n": 1}
    assert any(e.get("event") == "stopped" and e.get("flushed") for e in proc.log_events())


def test_sighup_adds_and_removes_stores(tmp_path: Path) -> None:
    root = write_state_dir(tmp_path, {"main": ROWS})
    with DaemonProcess(root) as proc:

        async def agents(c: RpcClient) -> set[str]:
            return {s.agent_id for s in (await c.call("daemon.status")).stores}

        async def go() -> None:
            async with await RpcClient.connect(proc.url) as c:
                assert await agents(c) == {"main"}
                write_state_dir(root, {"main": None, "extra": {"agent:extra:1": {"updatedAt": 1}}})
                proc.send(signal.SIGHUP)
                await until(lambda: _agents_are(c, {"main", "extra"}))
                assert await keys_of(c, "extra") == {"agent:extra:1"}
                # The new store is watched too.
                replace_by_rename(store_path(root, "extra"), {"agent:extra:2": {"updatedAt": 2}})
                await until(lambda: _keys_are(c, "extra", {"agent:extra:2"}))
                write_state_dir(root, {"main": None})
                proc.send(signal.SIGHUP)
                await until(lambda: _agents_are(c, {"main"}))

        async def _agents_are(c: RpcClient, wanted: set[str]) -> bool:
            return await agents(c) == wanted

        run(go)


async def _keys_are(c: RpcClient, agent: str, wanted: set[str]) -> bool:
    return await keys_of(c, agent) == wanted


# ---------------------------------------------------------------------------------- cleanup

NOW_MS = 1_800_000_000_000
DAY = 86_400_000


def cleanup_state(root: Path) -> None:
    rows: dict[str, Any] = {}
    for i in range(8):
        sid = f"sess-{i}"
        age = (40 if i < 3 else i) * DAY
        rows[f"agent:main:chat{i}"] = {"sessionId": sid, "updatedAt": NOW_MS - age}
    work = {
        f"agent:work:w{i}": {"sessionId": f"w-{i}", "updatedAt": NOW_MS - i * 20 * DAY}
        for i in range(4)
    }
    config = {"session": {"maintenance": {"mode": "enforce", "pruneAfter": "30d", "maxEntries": 4}}}
    write_state_dir(root, {"main": rows, "work": work}, config)
    for agent, table in (("main", rows), ("work", work)):
        sessions = store_path(root, agent).parent
        for row in table.values():
            (sessions / f"{row['sessionId']}.jsonl").write_text('{"type":"session"}\n')
        (sessions / "orphan.jsonl").write_text("{}\n")
        old = (NOW_MS - 60 * DAY) / 1000
        os.utime(sessions / "orphan.jsonl", (old, old))


def tree(root: Path) -> dict[str, bytes]:
    """Every file under agents/ but a running daemon's store locks (daemon/store_lock.py) and
    the cleanup journals (`journals` compares those)."""
    return {
        str(p.relative_to(root)): p.read_bytes()
        for p in sorted((root / "agents").rglob("*"))
        if p.is_file() and not p.name.endswith((".sessiond.lock", ".journal"))
    }


def journals(root: Path) -> dict[str, list[Any]]:
    """Each cleanup journal's records without the entry ids and times (random, clock)."""
    out: dict[str, list[Any]] = {}
    for path in sorted((root / "agents").rglob("*.journal")):
        records = []
        for line in path.read_text().splitlines():
            record = json.loads(line)
            record.get("entry", record).pop("id", None)
            record.get("entry", record).pop("timeMs", None)
            records.append(record)
        out[str(path.relative_to(root))] = records
    return out


def cli_cleanup(root: Path, *flags: str) -> Any:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENCLAW_")}
    env.update({"OPENCLAW_STATE_DIR": str(root), "SESSIOND_NOW_MS": str(NOW_MS), "HOME": str(root)})
    out = subprocess.run(
        [sys.executable, "-m", "sessiond.cli.main", "sessions", "cleanup", "--json", *flags],
        capture_output=True,
        env=env,
        check=True,
    )
    return json.loads(out.stdout)


def test_cleanup_through_daemon_equals_local_cli(tmp_path: Path) -> None:
    daemon_root, local_root = tmp_path / "daemon", tmp_path / "local"
    cleanup_state(daemon_root)
    subprocess.run(["cp", "-a", str(daemon_root), str(local_root)], check=True)
    assert tree(daemon_root) == tree(local_root)
    env = {"SESSIOND_NOW_MS": str(NOW_MS), "HOME": str(daemon_root)}
    with DaemonProcess(daemon_root, env=env) as proc:

        async def call(params: dict[str, Any]) -> Any:
            async with await RpcClient.connect(proc.url) as c:
                result = await c.call("sessions.cleanup", params)
                return json.loads(msgspec.json.encode(result))

        def normal(value: Any, root: Path) -> str:
            return json.dumps(value, sort_keys=True).replace(str(root), "<root>")

        dry = run(lambda: call({"allAgents": True, "dryRun": True}))
        local_dry = cli_cleanup(local_root, "--all-agents", "--dry-run")
        assert normal(dry, daemon_root) == normal(local_dry, local_root)
        assert dry["stores"][0]["wouldMutate"]
        assert tree(daemon_root) == tree(local_root), "a dry run changes nothing"

        applied = run(lambda: call({"allAgents": True}))
        local_applied = cli_cleanup(local_root, "--all-agents")
        assert normal(applied, daemon_root) == normal(local_applied, local_root)
        assert tree(daemon_root) == tree(local_root)
        assert any(".deleted." in name for name in tree(daemon_root))
        daemon_journals = json.loads(normal(journals(daemon_root), daemon_root))
        assert daemon_journals == json.loads(normal(journals(local_root), local_root))
        assert daemon_journals, "both applies were journaled"
    shutil.rmtree(local_root)


def test_delete_archives_the_transcript(tmp_path: Path) -> None:
    root = write_state_dir(tmp_path, {"main": ROWS})
    sessions = store_path(root, "main").parent
    (sessions / "sa.jsonl").write_text("{}\n")
    with DaemonProcess(root, env={"SESSIOND_NOW_MS": str(NOW_MS)}) as proc:

        async def go() -> Any:
            async with await RpcClient.connect(proc.url) as c:
                return await c.call("sessions.delete", {"key": "agent:main:a"})

        result = run(go)
    assert result.deleted and result.durable
    assert not (sessions / "sa.jsonl").exists()
    assert [Path(p).name for p in result.archived] == [
        n for n in os.listdir(sessions) if n.startswith("sa.jsonl.deleted.")
    ]
    assert "agent:main:a" not in read_rows(root, "main")
