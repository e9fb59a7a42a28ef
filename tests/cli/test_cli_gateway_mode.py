"""The CLI in gateway mode: through the daemon when one answers, local only when none does."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

from harness.daemon_process import DaemonProcess, clean_env
from harness.state_dirs import read_rows, store_path, write_state_dir

DAY = 86_400_000


def _state(root: Path) -> Path:
    now = time.time_ns() // 1_000_000
    rows = {
        "agent:main:main": {"sessionId": "s-main", "updatedAt": now - 60_000},
        "agent:main:telegram:direct:42": {"sessionId": "s-dm", "updatedAt": now - 2 * DAY},
        "agent:main:hook:old": {"sessionId": "s-old", "updatedAt": now - 40 * DAY},
    }
    write_state_dir(root, {"main": rows})
    for sid in ("s-main", "s-dm", "s-old"):
        (store_path(root, "main").parent / f"{sid}.jsonl").write_text("{}\n")
    return root


def _cli(
    root: Path, url: str | None, *flags: str, token: str | None = "T", port: str | None = None
) -> subprocess.CompletedProcess[str]:
    """`sessions cleanup` with SESSIOND_URL=url (None: the default address, on `port`)."""
    env = clean_env()
    env.update(OPENCLAW_STATE_DIR=str(root), HOME=str(root))
    if url is not None:
        env["SESSIOND_URL"] = url
    if port is not None:
        env["OPENCLAW_GATEWAY_PORT"] = port
    if token is not None:
        env["OPENCLAW_GATEWAY_TOKEN"] = token
    exe = str(Path(sys.executable).with_name("sessiond"))
    return subprocess.run(
        [exe, "sessions", "cleanup", *flags], env=env, capture_output=True, text=True, timeout=60
    )


def test_dry_run_through_the_daemon_prints_what_a_local_run_prints(tmp_path: Path) -> None:
    root = _state(tmp_path / "state")
    with DaemonProcess(root, "--token", "T") as daemon:
        remote = _cli(root, daemon.url, "--dry-run", "--fix-dm-scope")
        local = _cli(root, daemon.url, "--dry-run", "--fix-dm-scope", "--local")
        remote_json = _cli(root, daemon.url, "--dry-run", "--fix-dm-scope", "--json")
        assert remote.returncode == local.returncode == remote_json.returncode == 0
        # Ages may tick between the two runs; everything else must be identical.
        assert remote.stdout.splitlines()[:9] == local.stdout.splitlines()[:9]
        assert "retire-dm-scope  agent:main:teleg...ect:42" in remote.stdout
        assert json.loads(remote_json.stdout)["dmScopeRetired"] == 1
        # The two gateway-mode runs connected to the daemon; the --local one did not.
        assert daemon.logs().count('"event":"disconnected"') == 2


def test_apply_through_the_daemon_changes_the_store(tmp_path: Path) -> None:
    root = _state(tmp_path / "state")
    with DaemonProcess(root, "--token", "T") as daemon:
        done = _cli(root, daemon.url, "--fix-dm-scope", "--json")
        assert done.returncode == 0, done.stderr
        result = json.loads(done.stdout)
        assert result["applied"] is True and result["appliedCount"] == 1
        assert list(read_rows(root, "main")) == ["agent:main:main"]


def test_a_daemon_error_is_final_never_a_local_fallback(tmp_path: Path) -> None:
    root = _state(tmp_path / "state")
    before = store_path(root, "main").read_bytes()
    with DaemonProcess(root, "--token", "T") as daemon:
        done = _cli(root, daemon.url, "--fix-dm-scope", token="wrong")
    assert done.returncode == 1
    assert "token" in done.stderr and daemon.url in done.stderr
    assert store_path(root, "main").read_bytes() == before


def test_no_daemon_means_local_mode(tmp_path: Path) -> None:
    """Only at the default address (no --url, no SESSIOND_URL); and the output says so."""
    root = _state(tmp_path / "state")
    copy = tmp_path / "copy"
    shutil.copytree(root, copy)
    done = _cli(root, None, "--fix-dm-scope", "--json", port="1")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["dmScopeRetired"] == 1
    assert list(read_rows(root, "main")) == ["agent:main:main"]
    assert "no sessiond at ws://127.0.0.1:1 (connection refused); ran locally" in done.stderr
