"""`sessiond demo`: a demo state dir, a real daemon on it, and a cleanup dry run through it.

The state dir looks like one an OpenClaw gateway leaves behind after `session.dmScope` went from
per-channel-peer back to main: stale peer-keyed DM rows, old cron runs, a row whose transcript
vanished, group and thread rows that maintenance must keep, and a second agent.

`--dir` may name a directory that does not exist (it is created and marked with `MARK`), an
empty one, or one this command marked before (what it made there is rebuilt, anything else is
left alone). Any other directory is refused: `--dir ~/.openclaw` must never touch real data.
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

from sessiond.daemon.clock import now_ms

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


MARK = ".sessiond-demo"
"""The file that says a directory is the demo's own."""
MADE = ("agents", "openclaw.json", "sessiond.log", "sessiond.port", "tui.log")
"""What the demo puts in its directory: all it ever removes there."""


class NotTheDemosDir(Exception):
    """The directory holds something the demo did not make; the message says what to do."""


def claim_demo_dir(root: Path) -> None:
    """Make `root` the demo's: create and mark it, or clear what an earlier demo made there."""
    if root.exists() and not root.is_dir():
        raise NotTheDemosDir(f"{root} exists and is not a directory; choose another --dir")
    if root.is_dir() and not (root / MARK).is_file() and any(root.iterdir()):
        raise NotTheDemosDir(
            f"{root} exists and was not made by `sessiond demo`; refusing to touch it. "
            "Choose a new --dir (it is created), or an empty directory"
        )
    root.mkdir(parents=True, exist_ok=True)
    (root / MARK).write_text(
        "Made by `sessiond demo`, which may rebuild what it made here: " + ", ".join(MADE) + ".\n"
    )
    for name in MADE:
        path = root / name
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        elif path.exists() or path.is_symlink():
            path.unlink()


def build_demo_state(root: Path, now: int) -> None:
    """The demo's files in `root`, a directory `claim_demo_dir` made ready."""
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
        now = now_ms()
        for index, summary in enumerate(summaries):
            if index:
                print()
            print("\n".join(render_dry_run(summary, now, agent_header=len(summaries) > 1)))
        page = await client.sessions_list(limit=5, all_agents=True)
        print(f"\nsessions.list: {page.total_count} rows; the newest {len(page.sessions)}:")
        for row in page.sessions:
            print(f"  {row.agent_id:5s} {row.key}")


def next_steps(root: Path, url: str, token: str) -> list[str]:
    """What to try next, with this demo's URL and token: every command works as printed."""
    flags = "--all-agents --fix-dm-scope --fix-missing"
    sessions = root / "agents" / "main" / "sessions"
    return [
        "Next, in another terminal while this demo serves:",
        f"  export SESSIOND_URL={url} OPENCLAW_GATEWAY_TOKEN={token}",
        f"  sessiond sessions cleanup {flags} --dry-run   # the preview above, again",
        f"  sessiond sessions cleanup {flags}             # apply it, through the daemon",
        "  sessiond sessions restore --last             # undo it: rows and transcripts come back",
        "  sessiond tui                                 # the live view: sessions, plan, undo",
        "An apply archives the transcript of each row it removes as",
        "<sessionId>.jsonl.deleted.<time> beside it, and journals what it did, e.g.",
        f"  ls {sessions}",
    ]


def _open_tui(url: str, token: str, root: Path) -> int:
    from sessiond.cli.tui.command import maintenance_of, run_tui
    from sessiond.daemon.config_file import load_config_file

    maintenance = maintenance_of(load_config_file(str(root / "openclaw.json")))
    return run_tui(url, token, maintenance, str(root / "tui.log"))


def demo_command(directory: str, serve_seconds: float | None, *, tui: bool = False) -> int:
    """Serve a fresh demo state dir; print a dry run through the daemon, or (`tui`) open the TUI."""
    from sessiond.daemon.store_lock import holder_of, state_dir_lock_path

    root = Path(directory).expanduser().resolve()
    holder = holder_of(state_dir_lock_path(str(root)))
    if holder is not None:
        print(f"sessiond: {root} is served by {holder.describe()}; stop it first", file=sys.stderr)
        return 1
    try:
        claim_demo_dir(root)
    except NotTheDemosDir as exc:
        print(f"sessiond: {exc}", file=sys.stderr)
        return 1
    build_demo_state(root, now_ms())
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
        print()
        print("\n".join(next_steps(root, url, token)))
        if serve_seconds <= 0:
            print(
                f"(This run stops serving now: `sessiond demo --dir {root}` on a terminal, or "
                "with --serve-seconds, keeps the daemon up for them.)"
            )
        else:
            until = "until Ctrl-C" if serve_seconds == float("inf") else f"{serve_seconds:g} s"
            print(f"\nserving {until}; logs in {root / 'sessiond.log'}", flush=True)
            with contextlib.suppress(KeyboardInterrupt, subprocess.TimeoutExpired):
                daemon.wait(timeout=None if serve_seconds == float("inf") else serve_seconds)
        return 0
    finally:
        if daemon.poll() is None:
            daemon.send_signal(signal.SIGTERM)
            daemon.wait(timeout=20)
