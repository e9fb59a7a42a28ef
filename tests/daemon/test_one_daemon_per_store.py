"""One daemon per store (issue 18, item 2): a second `sessiond serve` on a served state dir or
store refuses in one line naming the first one's pid and URL; the lock dies with its process
(kill -9 included); a local apply on a held store runs on the holder, or is refused when the
holder does not answer. Real daemons, real signals, real lock files."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from harness.async_run import run, until
from harness.daemon_process import DaemonProcess, clean_env
from harness.raw_frames import RpcClient
from harness.state_dirs import read_rows, store_path, write_state_dir

EXE = str(Path(sys.executable).with_name("sessiond"))
DAY = 86_400_000


def _refusal(proc: DaemonProcess) -> str:
    code = proc.proc.wait(15)
    proc.stop()
    assert code == 2, proc.logs()
    lines = [line for line in proc.logs().splitlines() if line.strip()]
    assert len(lines) == 1, lines
    return lines[0]


def test_a_second_daemon_on_the_same_state_dir_refuses(tmp_path: Path) -> None:
    root = write_state_dir(tmp_path / "state", {"main": {"agent:main:a": {"updatedAt": 1}}})
    with DaemonProcess(root) as first:
        line = _refusal(DaemonProcess(root, wait=False))
        assert line == (
            f"sessiond: not starting: state dir {root} is already served by "
            f"sessiond pid {first.proc.pid} at {first.url}"
        )
        assert first.proc.poll() is None


def test_a_second_daemon_on_a_shared_store_path_refuses(tmp_path: Path) -> None:
    """Two state dirs whose `session.store` templates name the same files."""
    shared = tmp_path / "shared"
    config = {"session": {"store": str(shared / "{agentId}.json")}}
    one = write_state_dir(tmp_path / "one", {"main": None}, config)
    two = write_state_dir(tmp_path / "two", {"main": None}, config)
    with DaemonProcess(one) as first:
        line = _refusal(DaemonProcess(two, wait=False))
        assert line == (
            f"sessiond: not starting: store {shared / 'main.json'} is already served by "
            f"sessiond pid {first.proc.pid} at {first.url}"
        )
    # The refused daemon took nothing: its own state dir lock was let go as it left.
    with DaemonProcess(two) as again:
        assert again.port


def test_a_reload_leaves_out_a_store_another_daemon_serves(tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    config = {"session": {"store": str(shared / "{agentId}.json")}}
    one = write_state_dir(tmp_path / "one", {"main": None}, config)
    two = write_state_dir(tmp_path / "two", {"other": None}, config)
    with DaemonProcess(one) as first, DaemonProcess(two) as second:
        write_state_dir(two, {"other": None, "main": None}, config)
        second.send(signal.SIGHUP)

        def left_out() -> list[dict[str, Any]]:
            return [e for e in second.log_events() if e.get("event") == "store not served"]

        async def logged() -> bool:
            return bool(left_out())

        async def status() -> list[str]:
            await until(logged, 10)
            async with await RpcClient.connect(second.url) as c:
                return [s.agent_id for s in (await c.call("daemon.status")).stores]

        assert run(status) == ["other"]
        [event] = left_out()
        assert event["path"] == str(shared / "main.json")
        assert f"sessiond pid {first.proc.pid} at {first.url}" in event["error"]


def test_after_kill_9_a_new_daemon_starts_at_once(tmp_path: Path) -> None:
    root = write_state_dir(tmp_path / "state", {"main": {"agent:main:a": {"updatedAt": 1}}})
    first = DaemonProcess(root)
    assert first.stop(signal.SIGKILL) == -signal.SIGKILL
    lock = Path(f"{store_path(root, 'main')}.sessiond.lock")
    assert lock.exists(), "kill -9 leaves the file; the lock died with the process"
    with DaemonProcess(root) as second:  # no wait, no retry: the first start must succeed
        published = json.loads(lock.read_text())
        assert published["pid"] == second.proc.pid and published["url"] == second.url
    assert not lock.exists(), "a clean exit removes its lock files"
    assert not (root / "sessiond.lock").exists()


def _cleanup_state(root: Path) -> Path:
    now = time.time_ns() // 1_000_000
    rows = {
        "agent:main:main": {"sessionId": "s-main", "updatedAt": now - 60_000},
        "agent:main:hook:old": {"sessionId": "s-old", "updatedAt": now - 40 * DAY},
    }
    write_state_dir(root, {"main": rows})
    for sid in ("s-main", "s-old"):
        (store_path(root, "main").parent / f"{sid}.jsonl").write_text("{}\n")
    return root


def _local_apply(root: Path, *flags: str) -> subprocess.CompletedProcess[str]:
    env = clean_env()
    env.update(OPENCLAW_STATE_DIR=str(root), HOME=str(root), OPENCLAW_GATEWAY_PORT="1")
    return subprocess.run(
        [EXE, "sessions", "cleanup", "--json", *flags],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_a_local_apply_on_a_held_store_runs_on_the_holder(tmp_path: Path) -> None:
    root = _cleanup_state(tmp_path / "state")
    with DaemonProcess(root) as daemon:
        for flags in (["--local"], ["--store", str(store_path(root, "main"))]):
            done = _local_apply(root, *flags)
            assert done.returncode == 0, done.stderr
            result: dict[str, Any] = json.loads(done.stdout)
            assert result["applied"] is True
            assert (
                f"ran on sessiond pid {daemon.proc.pid} at {daemon.url}, which holds the store"
                in done.stderr
            )
        assert list(read_rows(root, "main")) == ["agent:main:main"]
        assert daemon.logs().count('"event":"disconnected"') == 2


def test_a_local_apply_on_a_store_whose_holder_does_not_answer_is_refused(tmp_path: Path) -> None:
    root = _cleanup_state(tmp_path / "state")
    before = store_path(root, "main").read_bytes()
    with DaemonProcess(root) as daemon:
        daemon.send(signal.SIGSTOP)
        try:
            done = _local_apply(root, "--local")
        finally:
            daemon.send(signal.SIGCONT)
    assert done.returncode == 1 and done.stdout == ""
    assert done.stderr.startswith(
        f"sessiond: {store_path(root, 'main')} is held by sessiond pid {daemon.proc.pid} at "
        f"{daemon.url}; the files were not touched"
    ), done.stderr
    assert store_path(root, "main").read_bytes() == before
    assert (store_path(root, "main").parent / "s-old.jsonl").exists()
