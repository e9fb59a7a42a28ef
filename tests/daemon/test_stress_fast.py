"""Fast variants of the stress scripts (stress/), so the normal suite checks the same properties.

Each runs the stress script's own code with small counts against a real daemon and asserts that
its report has no violation; the long runs are `make stress`. The scripts are files run by path,
not a package: `stress_script` loads one from its file.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType

import msgspec
from harness.daemon_process import DaemonProcess
from harness.state_dirs import store_path, write_state_dir
from harness.stress_report import Report
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

STRESS = Path(__file__).resolve().parents[2] / "stress"


def stress_script(name: str) -> ModuleType:
    """stress/<name>.py as a module (registered, so its dataclasses resolve their module)."""
    spec = importlib.util.spec_from_file_location(f"stress_{name}", STRESS / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = sys.modules.get(spec.name)
    if module is None:
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module
        spec.loader.exec_module(module)
    return module


def assert_ok(report: Report) -> None:
    report.finish()
    assert report.ok, report.violations


async def _exchange(url: str, frame: bytes, text: bool) -> tuple[str, object]:
    async with connect(url, compression=None, max_size=None) as ws:
        await ws.send(frame, text=text)
        try:
            return "reply", msgspec.json.decode(await asyncio.wait_for(ws.recv(), 5))
        except ConnectionClosed as exc:
            return "closed", exc.rcvd.code if exc.rcvd else None


def test_frames_the_decoder_chokes_on_get_parse_errors_not_1011(tmp_path: Path) -> None:
    """Deep nesting and invalid UTF-8 once closed the connection 1011 (uncaught decoder error)."""
    root = write_state_dir(tmp_path, {"main": {}})
    deep = b'{"jsonrpc":"2.0","method":"sessions.patch","params":{"key":"k","fields":{"x":'
    deep += b"[" * 3000 + b"]" * 3000 + b'}},"id":4}'
    bad_utf8 = b'{"jsonrpc":"2.0","method":"sessions.get","params":{"key":"\xff"},"id":2}'
    with DaemonProcess(root) as daemon:

        async def go() -> None:
            for frame, text in [(b"[" * 5000 + b"]" * 5000, True), (deep, True), (bad_utf8, False)]:
                kind, reply = await _exchange(daemon.url, frame, text)
                assert kind == "reply", (frame[:40], reply)
                assert isinstance(reply, dict) and reply["error"]["code"] == -32700
            # Invalid UTF-8 in a text frame fails the connection (RFC 6455), first frame or not.
            assert await _exchange(daemon.url, bad_utf8, True) == ("closed", 1007)

        asyncio.run(go())


def test_list_index_kept_current_equals_a_rebuild() -> None:
    """The list index is updated per changed row (a rebuild per write made list O(rows))."""
    import random

    from sessiond.daemon.live_store import LiveStore
    from sessiond.engine.config import StoreTarget

    rng = random.Random(5)
    live = LiveStore(StoreTarget("main", "/nonexistent/sessions.json"))
    values: list[object] = [1, 2.5, -3, None, "7", "x", True, 1e400, 10**30]
    for step in range(400):
        changes: dict[str, msgspec.Raw | None] = {}
        for _ in range(rng.randint(1, 4)):
            key = f"agent:main:k{rng.randrange(40)}"
            if rng.random() < 0.2:
                changes[key] = None
            else:
                row = {"updatedAt": rng.choice(values), "sessionId": f"s{rng.randrange(8)}"}
                text = msgspec.json.encode(row) if row["updatedAt"] != 1e400 else None
                text = text or b'{"updatedAt":1e400,"sessionId":"s1"}'
                changes[key] = msgspec.Raw(text)
        live.apply(changes, "patch")
        kept = live.index()
        live._index = None
        rebuilt = live.index()
        assert kept.order == rebuilt.order, step
        assert kept.session_ids == rebuilt.session_ids, step


def test_a_number_past_float_range_does_not_poison_the_store(tmp_path: Path) -> None:
    """A row with 1e400 (JSON.parse: Infinity) once made list/cleanup/delete answer -32603."""
    root = write_state_dir(tmp_path, {"main": {"agent:main:a": {"updatedAt": 1}}})
    frames = [
        '{"method":"sessions.patch","params":{"key":"agent:main:x","fields":{"updatedAt":1e400}}',
        '{"method":"sessions.list","params":{}',
        '{"method":"sessions.cleanup","params":{"dryRun":true}',
        '{"method":"sessions.delete","params":{"key":"agent:main:x"}',
    ]
    with DaemonProcess(root) as daemon:

        async def go() -> None:
            async with connect(daemon.url, compression=None) as ws:
                for i, frame in enumerate(frames):
                    await ws.send(f'{frame},"jsonrpc":"2.0","id":{i}}}')
                    reply = json.loads(await asyncio.wait_for(ws.recv(), 5))
                    assert "result" in reply, reply

        asyncio.run(go())


def test_a_directory_that_refuses_the_temp_file_is_a_store_write_error() -> None:
    """EROFS/EACCES at temp creation escaped as a bare OSError and killed the flusher task."""
    import pytest
    from sessiond.daemon.durable_file import StoreWriteError, write_durably

    with pytest.raises(StoreWriteError):
        write_durably("/proc/sessiond-no-such-dir/sessions.json", b"{}")


def test_disk_faults_stress_fast(tmp_path: Path) -> None:
    """Full disk and read-only tmpfs (as root), RLIMIT_FSIZE: not durable, 503, recovery."""
    diskfaults = stress_script("diskfaults")
    assert_ok(diskfaults.run(tmp_path))


def test_security_fast(tmp_path: Path) -> None:
    """Tokens, compare timing, Origins, binds, traversal (stress/security.py, fewer rounds)."""
    security = stress_script("security")
    assert_ok(security.run(tmp_path, quick=True))


def test_crash_fast(tmp_path: Path) -> None:
    """SIGKILLs aimed at the write points (random, temp written, renamed), one lane."""
    crash = stress_script("crash")
    assert_ok(crash.run(kills=12, lanes=1, seed=3, workdir=tmp_path))


def test_races_fast(tmp_path: Path) -> None:
    races = stress_script("races")
    assert_ok(races.run(edits=150, writes=150, seed=2, workdir=tmp_path))


def test_fuzz_fast(tmp_path: Path) -> None:
    fuzz = stress_script("fuzz")
    assert_ok(fuzz.run(frames=2000, connections=4, seed=2, workdir=tmp_path))


def test_load_fast(tmp_path: Path) -> None:
    load = stress_script("load")
    assert_ok(load.run(clients=20, seconds=2, rows=300, workdir=tmp_path))


def test_a_truncating_in_place_save_is_not_read_as_an_empty_store(tmp_path: Path) -> None:
    """An editor that truncates, then writes: the daemon once read the empty file in between
    as "every row deleted" (readers saw an empty store; unflushed changes lost to it)."""
    import os
    import time

    rows = {f"agent:main:r{i}": {"updatedAt": i} for i in range(20)}
    root = write_state_dir(tmp_path, {"main": rows})
    path = store_path(root)
    with DaemonProcess(root) as daemon:

        async def go() -> None:
            from harness.raw_frames import RpcClient

            async with await RpcClient.connect(daemon.url) as client:
                seen: list[int] = []
                for i in range(3):
                    with open(path, "r+b") as handle:
                        handle.truncate(0)
                        handle.flush()
                        os.fsync(handle.fileno())
                        deadline = time.monotonic() + 0.06  # a slow editor
                        while time.monotonic() < deadline:
                            page = await client.call("sessions.list", {"limit": 1000})
                            seen.append(page.total_count)
                            await asyncio.sleep(0.005)
                        rows[f"agent:main:new{i}"] = {"updatedAt": 100 + i}
                        handle.write(json.dumps(rows).encode())
                    await asyncio.sleep(0.3)
                    page = await client.call("sessions.list", {"limit": 1000})
                    assert page.total_count == len(rows)
                assert min(seen) >= 20, seen

        asyncio.run(go())
