"""`sessiond`: the command line. `serve` runs the daemon; `sessions cleanup` mirrors OpenClaw's."""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Sequence
from typing import TextIO

import msgspec
from sessiond.cli.cleanup_text import render_applied, render_dry_run
from sessiond.cli.daemon_route import (
    DaemonFailed,
    cleanup_via_daemon,
    daemon_token,
    daemon_url,
    something_listens,
)
from sessiond.cli.local_cleanup import apply_locally, open_journal
from sessiond.cli.progress_bar import terminal_progress
from sessiond.cli.undo_commands import add_undo_commands, print_plan_id, run_undo_command
from sessiond.daemon.config_file import load_config_file
from sessiond.daemon.durable_file import StoreWriteError, read_store
from sessiond.daemon.os_disk_view import OsDiskView
from sessiond.engine.cleanup.plan import CleanupOptions
from sessiond.engine.cleanup.plan_id import check_plan_id, plan_id
from sessiond.engine.cleanup.report import combine, preview_summary
from sessiond.engine.cleanup.targets import plan_targets
from sessiond.engine.config import (
    ConfigError,
    Locations,
    TargetError,
    resolve_config_path,
    resolve_targets,
)
from sessiond.engine.errors import DomainError, StoreReadOnly
from sessiond.engine.js_semantics import printable
from sessiond.protocol.cleanup import AllAgentsCleanup


def now_ms() -> int:
    """The clock; `SESSIOND_NOW_MS` pins it so a run can be compared with a recorded one."""
    pinned = os.environ.get("SESSIOND_NOW_MS")
    return int(pinned) if pinned else time.time_ns() // 1_000_000


def _print_json(value: object) -> None:
    _print_json_to(sys.stdout, value)


def _print_json_to(stream: TextIO, value: object) -> None:
    stream.write(msgspec.json.format(msgspec.json.encode(value), indent=2).decode() + "\n")


def _add_target_flags(parser: argparse.ArgumentParser, suppress: bool) -> None:
    default = argparse.SUPPRESS if suppress else None
    parser.add_argument("--store", default=default, help="Explicit sessions.json path")
    parser.add_argument("--agent", default=default, help="One configured agent's store")
    parser.add_argument(
        "--all-agents", action="store_true", default=default, help="Every configured agent"
    )
    parser.add_argument("--json", action="store_true", default=default, help="Output JSON")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sessiond", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="Run the session-store daemon (WebSocket JSON-RPC)")
    serve.add_argument("--state-dir", help="OpenClaw state dir (default: OPENCLAW_STATE_DIR)")
    serve.add_argument("--bind", default="127.0.0.1", help="Address to listen on")
    serve.add_argument("--port", type=int, default=18789, help="Port (0: any free port)")
    serve.add_argument("--token", help="Shared token clients must present")
    serve.add_argument("--token-file", help="File holding the shared token")
    serve.add_argument(
        "--max-frame-bytes", type=int, default=4 * 1024 * 1024, help="Larger frames get 1009"
    )
    serve.add_argument(
        "--allow-origin", action="append", default=[], help="Allowed browser Origin (repeatable)"
    )
    serve.add_argument("--port-file", help="Write the bound port here once listening")

    demo = commands.add_parser("demo", help="Serve a generated demo state dir; dry-run through it")
    demo.add_argument("--dir", default="demo-state", help="Where to create the demo state dir")
    demo.add_argument(
        "--serve-seconds",
        type=float,
        help="Keep serving this long after the demo (default: until Ctrl-C on a terminal)",
    )
    demo.add_argument("--tui", action="store_true", help="Open `sessiond tui` on the demo state")
    _add_tui_command(commands)

    sessions = commands.add_parser("sessions", help="Session store commands")
    _add_target_flags(sessions, suppress=False)
    session_commands = sessions.add_subparsers(dest="sessions_command", required=True)
    cleanup = session_commands.add_parser("cleanup", help="Run session-store maintenance now")
    _add_target_flags(cleanup, suppress=True)
    cleanup.add_argument("--dry-run", action="store_true", help="Preview without writing")
    cleanup.add_argument(
        "--enforce", action="store_true", help="Apply maintenance even when mode is warn"
    )
    cleanup.add_argument(
        "--fix-missing", action="store_true", help="Remove entries whose transcripts are missing"
    )
    cleanup.add_argument(
        "--fix-dm-scope",
        action="store_true",
        help="Retire stale direct-DM rows that no longer match session.dmScope=main",
    )
    cleanup.add_argument("--active-key", help="Protect this session key from eviction")
    cleanup.add_argument(
        "--url", help="sessiond to use (default: SESSIOND_URL, else ws://127.0.0.1:18789)"
    )
    cleanup.add_argument("--token", help="sessiond's token (default: OPENCLAW_GATEWAY_TOKEN)")
    cleanup.add_argument(
        "--local", action="store_true", help="Work on the files even if a daemon is running"
    )
    cleanup.add_argument(
        "--plan", metavar="ID", help="Apply only if the plan is still the dry run's plan ID"
    )
    add_undo_commands(session_commands, _add_target_flags)
    return parser


def _add_tui_command(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    tui = commands.add_parser("tui", help="A live terminal view of every store, its plan, undo")
    tui.add_argument(
        "--url", help="sessiond to use (default: SESSIOND_URL, else ws://127.0.0.1:18789)"
    )
    tui.add_argument("--token", help="sessiond's token (default: OPENCLAW_GATEWAY_TOKEN)")
    tui.add_argument("--log", help="Append the TUI's logs to this file (default: none)")


def cleanup_command(args: argparse.Namespace) -> int:
    cwd = os.getcwd()
    env = os.environ
    where = Locations.from_env(env, cwd)
    try:
        config = load_config_file(resolve_config_path(env, where.state_dir, cwd))
    except ConfigError as exc:
        print(exc.render(where.home), file=sys.stderr)
        return 1
    store, agent = args.store, args.agent
    all_agents, as_json = bool(args.all_agents), bool(args.json)
    try:
        targets = resolve_targets(config, where, store=store, agent=agent, all_agents=all_agents)
    except TargetError as exc:
        print(str(exc), file=sys.stderr)
        return 1
    if not store and not args.local:
        url = daemon_url(args.url, env)
        if something_listens(url):
            return _cleanup_through_daemon(args, url, daemon_token(args.token, env, config))
    options = CleanupOptions(
        fix_missing=args.fix_missing,
        fix_dm_scope=args.fix_dm_scope,
        active_key=args.active_key,
        enforce=args.enforce,
    )
    clock = now_ms()
    progress = terminal_progress(as_json)
    if not args.dry_run:
        for target in targets:  # a killed apply is finished or rolled back before planning
            open_journal(target.store_path, clock)
    try:
        planned = plan_targets(
            targets, lambda t: read_store(t.store_path), config, options, OsDiskView(), clock, where
        )
    except StoreReadOnly as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return 1
    mode = planned[0].plan.mode if planned else config.maintenance.mode
    plans = [p.plan for p in planned]
    if args.dry_run:
        summaries = [preview_summary(p.plan, config, include_actions=not as_json) for p in planned]
        previewed = str(plan_id(plans, 0))
        if as_json:
            _print_json(combine(summaries, mode, dry_run=True, plan_id=previewed))
            return 0
        out: list[str] = []
        for index, summary in enumerate(summaries):
            if index > 0:
                out.append("")
            out += render_dry_run(summary, clock, agent_header=len(summaries) > 1)
        sys.stdout.write(printable("".join(f"{line}\n" for line in out)))
        print_plan_id(previewed)
        return 0
    if args.plan:
        try:
            check_plan_id(args.plan, plans, 0)
        except DomainError as exc:
            print(f"Error: {exc.message}", file=sys.stderr)
            if exc.data:
                _print_json_to(sys.stderr, exc.data)
            return 1
    applied = []
    rows = sum(len(p.store) for p in planned)
    progress.begin("sessions cleanup", "plan", rows)
    progress.report("plan", rows, rows)
    for p in planned:
        try:
            result = apply_locally(p, options, clock, progress)
        except (StoreReadOnly, StoreWriteError) as exc:
            progress.end("failed")
            print(f"Error: {exc}", file=sys.stderr)
            return 1
        for path, reason in result.files.failed:
            print(f"[sessiond] could not remove or archive {path}: {reason}", file=sys.stderr)
        applied.append(result.summary)
    progress.end("applied")
    for p in planned:
        for level, message in p.plan.applied.log:
            # The reference's info lines reach stdout in text mode; warnings, and everything
            # under --json, go to stderr so stdout stays parseable.
            stream = sys.stdout if level == "info" and not as_json else sys.stderr
            stream.write(f"[sessions/store] {message}\n")
    if as_json:
        _print_json(combine(applied, mode, dry_run=False))
    else:
        sys.stdout.write("".join(f"{line}\n" for line in render_applied(applied)))
    return 0


def _cleanup_through_daemon(args: argparse.Namespace, url: str, token: str | None) -> int:
    """Gateway mode: the daemon plans and applies; this process only prints."""
    as_json = bool(args.json)
    try:
        result = cleanup_via_daemon(
            url,
            token,
            agent=args.agent,
            all_agents=bool(args.all_agents),
            enforce=args.enforce,
            active_key=args.active_key,
            fix_missing=args.fix_missing,
            fix_dm_scope=args.fix_dm_scope,
            dry_run=args.dry_run,
            include_actions=args.dry_run and not as_json,
            plan_id=args.plan,
            progress=terminal_progress(as_json),
        )
    except DaemonFailed as exc:
        print(str(exc), file=sys.stderr)
        if exc.data:
            _print_json_to(sys.stderr, exc.data)
        return 1
    if as_json:
        _print_json(result)
        return 0
    summaries = result.stores if isinstance(result, AllAgentsCleanup) else [result]
    if args.dry_run:
        out: list[str] = []
        for index, summary in enumerate(summaries):
            if index > 0:
                out.append("")
            out += render_dry_run(summary, now_ms(), agent_header=len(summaries) > 1)
    else:
        out = render_applied(summaries)
    sys.stdout.write(printable("".join(f"{line}\n" for line in out)))
    if args.dry_run and isinstance(result.plan_id, str):
        print_plan_id(result.plan_id)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "demo":
        from sessiond.cli.demo import demo_command

        return demo_command(args.dir, args.serve_seconds, tui=args.tui)
    if args.command == "tui":
        from sessiond.cli.tui.command import tui_command

        return tui_command(args.url, args.token, args.log)
    # Sub-command flags default to SUPPRESS, so `sessions --json cleanup` keeps the parent's.
    if args.command == "serve":
        from sessiond.daemon.server import serve_command  # websockets only when serving

        return serve_command(args)
    if args.command == "sessions" and args.sessions_command == "cleanup":
        return cleanup_command(args)
    if args.command == "sessions" and args.sessions_command in ("restore", "cleanups"):
        return run_undo_command(args)
    parser.error("unknown command")
    return 2


if __name__ == "__main__":
    raise SystemExit(main())
