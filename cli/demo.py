"""`sessiond demo`: a demo state dir, a real daemon on it, and a cleanup dry run through it.

The state dir looks like one an OpenClaw gateway leaves behind after `session.dmScope` went from
per-channel-peer back to main: stale peer-keyed DM rows, old cron runs, a row whose transcript
vanished, group and thread rows that maintenance must keep, and a second agent.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

DAY = 86_400_000
HOUR = 3_600_000


def _sid(n: int) -> str:
    return f"{n:08x}-de00-4000-8000-{n:012x}"


def _rows(now: int, agent: str, base: int) -> tuple[dict[str, Any], list[tuple[str, int]]]:
    spec: list[tuple[str, int, dict[str, Any]]] = [
        (f"agent:{agent}:main", 2 * HOUR, {"systemSent": True, "model": "anthropic/claude-x"}),
        (f"agent:{agent}:telegram:direct:6101", 3 * DAY, {"chatType": "direct"}),
        (f"agent:{agent}:telegram:default:direct:6102", 6 * DAY, {"chatType": "direct"}),
        (f"agent:{agent}:direct:alice", 9 * DAY, {}),
        (f"agent:{agent}:telegram:group:-1001", 45 * DAY, {"chatType": "group"}),
        (f"agent:{agent}:slack:channel:c42:thread:17", 50 * DAY, {}),
        (f"agent:{agent}:cron:nightly:run:r1", 40 * DAY, {"thinkingLevel": "low"}),
        (f"agent:{agent}:hook:gmail:1", 31 * DAY, {}),
        (f"agent:{agent}:explicit:notes", 5 * DAY, {"futureField": {"kept": True}}),
    ]
    rows: dict[str, Any] = {}
    files: list[tuple[str, int]] = []
    for index, (key, age, extra) in enumerate(spec):
        session_id = _sid(base + index)
        rows[key] = {"sessionId": session_id, "updatedAt": now - age - 600_000, **extra}
        if not key.endswith(":explicit:notes"):  # this one's transcript is gone
            files.append((f"{session_id}.jsonl", age))
    files.append((f"{_sid(base + 99)}.jsonl", 60 * DAY))  # an orphan old enough to sweep
    return rows, files


def build_demo_state(root: Path, now: int) -> None:
    """A fresh demo state dir at `root` (replaced if it exists)."""
    if root.exists():
        shutil.rmtree(root)
    (root / "openclaw.json").parent.mkdir(parents=True, exist_ok=True)
    (root / "openclaw.json").write_text(
        "// sessiond demo config (JSON5, like OpenClaw's)\n"
        "{\n  session: { dmScope: 'main', maintenance: { mode: 'enforce' } },\n"
        "  agents: { list: [ { id: 'main', default: true }, { id: 'work' } ] },\n}\n"
    )
    for agent, base in (("main", 0x100), ("work", 0x200)):
        sessions = root / "agents" / agent / "sessions"
        sessions.mkdir(parents=True)
        rows, files = _rows(now, agent, base)
        (sessions / "sessions.json").write_text(json.dumps(rows, indent=2))
        for name, age in files:
            path = sessions / name
            path.write_text('{"type":"session"}\n')
            stamp = (now - age) / 1000
            os.utime(path, (stamp, stamp))


async def _show(url: str, token: str) -> None:
    from sessiond.cli.cleanup_text import render_dry_run
    from sessiond.client import SessiondClient
    from sessiond.protocol.cleanup import AllAgentsCleanup

    async with SessiondClient(url, token=token) as client:
        result = await client.sessions_cleanup(
            all_agents=True, fix_dm_scope=True, fix_missing=True, dry_run=True, include_actions=True
        )
        print("sessiond sessions cleanup --all-agents --fix-dm-scope --fix-missing --dry-run")
        print("(planned by the daemon, over WebSocket):\n")
        summaries = result.stores if isinstance(result, AllAgentsCleanup) else [result]
        now = time.time_ns() // 1_000_000
        for index, summary in enumerate(summaries):
            if index:
                print()
            print("\n".join(render_dry_run(summary, now, agent_header=len(summaries) > 1)))
        page = await client.sessions_list(limit=5, all_agents=True)
        print(f"\nsessions.list: {page.total_count} rows; the newest {len(page.sessions)}:")
        for row in page.sessions:
            print(f"  {row.agent_id:5s} {row.key}")


def _open_tui(url: str, token: str, root: Path) -> int:
    from sessiond.cli.tui.command import maintenance_of, run_tui
    from sessiond.daemon.config_file import load_config_file

    maintenance = maintenance_of(load_config_file(str(root / "openclaw.json")))
    return run_tui(url, token, maintenance, str(root / "tui.log"))


def demo_command(directory: str, serve_seconds: float | None, *, tui: bool = False) -> int:
    """Serve a fresh demo state dir; print a dry run through the daemon, or (`tui`) open the TUI."""
    root = Path(directory).resolve()
    build_demo_state(root, time.time_ns() // 1_000_000)
    token = secrets.token_urlsafe(18)
    port_file = root / "sessiond.port"
    exe = str(Path(sys.executable).with_name("sessiond"))
    env = dict(os.environ, OPENCLAW_STATE_DIR=str(root), OPENCLAW_GATEWAY_TOKEN=token)
    if not tui:  # the TUI owns the terminal; where the demo lives is said once it is closed
        print(f"demo state dir: {root}")
    daemon = subprocess.Popen(
        [exe, "serve", "--state-dir", str(root), "--port", "0", "--port-file", str(port_file)],
        env=env,
        stderr=open(root / "sessiond.log", "wb"),  # noqa: SIM115 - the child owns it
    )
    try:
        deadline = time.monotonic() + 30
        while not port_file.exists() or not port_file.read_text().strip():
            if daemon.poll() is not None or time.monotonic() > deadline:
                print((root / "sessiond.log").read_text(), file=sys.stderr)
                print("sessiond did not start", file=sys.stderr)
                return 1
            time.sleep(0.05)
        url = f"ws://127.0.0.1:{port_file.read_text().strip()}"
        if tui:
            code = _open_tui(url, token, root)
            print(f"demo state dir: {root} (logs: sessiond.log, tui.log)")
            return code
        print(f"sessiond is serving {url} (token in OPENCLAW_GATEWAY_TOKEN={token})\n")
        asyncio.run(_show(url, token))
        if serve_seconds is None:
            serve_seconds = float("inf") if sys.stdin.isatty() else 0.0
        if serve_seconds > 0:
            print(f"\nserving until Ctrl-C; logs in {root / 'sessiond.log'}")
            with contextlib.suppress(KeyboardInterrupt, subprocess.TimeoutExpired):
                daemon.wait(timeout=None if serve_seconds == float("inf") else serve_seconds)
        return 0
    finally:
        if daemon.poll() is None:
            daemon.send_signal(signal.SIGTERM)
            daemon.wait(timeout=20)
