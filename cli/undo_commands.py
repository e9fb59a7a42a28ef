"""`sessiond sessions restore` and `sessiond sessions cleanups`: undo and the cleanup journal.

Like `sessions cleanup`, each goes to a running daemon when one listens and works on the files
otherwise (or with `--local`).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from typing import TypeVar

import msgspec
from sessiond.cli.daemon_route import (
    DaemonFailed,
    cleanups_via_daemon,
    daemon_token,
    daemon_url,
    restore_via_daemon,
    something_listens,
)
from sessiond.cli.local_cleanup import open_journal, restore_locally
from sessiond.cli.progress_bar import terminal_progress
from sessiond.daemon.config_file import load_config_file
from sessiond.daemon.durable_file import StoreWriteError
from sessiond.daemon.journal import KEEP_DAYS, KEEP_ENTRIES
from sessiond.engine.config import (
    ConfigError,
    Locations,
    StoreTarget,
    TargetError,
    resolve_config_path,
    resolve_targets,
)
from sessiond.engine.errors import DomainError
from sessiond.engine.js_semantics import printable
from sessiond.protocol.undo import CleanupsResult, RestoreResult

T = TypeVar("T")


def print_plan_id(plan_id: str) -> None:
    """After a text dry run, on stderr: stdout stays what the reference prints."""
    print(
        f"Plan {plan_id} (apply exactly this plan: sessiond sessions cleanup --plan {plan_id})",
        file=sys.stderr,
    )


def add_undo_commands(
    session_commands: argparse._SubParsersAction[argparse.ArgumentParser],
    add_target_flags: Callable[[argparse.ArgumentParser, bool], None],
) -> None:
    restore = session_commands.add_parser(
        "restore", help="Undo a cleanup or delete recorded in the store's journal"
    )
    add_target_flags(restore, True)
    which = restore.add_mutually_exclusive_group()
    which.add_argument("id", nargs="?", help="The journal entry to undo (see `sessions cleanups`)")
    which.add_argument("--last", action="store_true", help="The newest restorable entry (default)")
    restore.add_argument("--dry-run", action="store_true", help="Say what would come back")
    _add_route_flags(restore)
    cleanups = session_commands.add_parser(
        "cleanups", help="List the store's cleanup journal, newest first"
    )
    add_target_flags(cleanups, True)
    _add_route_flags(cleanups)


def _add_route_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--url", help="sessiond to use (default: SESSIOND_URL, else ws://127.0.0.1:18789)"
    )
    parser.add_argument("--token", help="sessiond's token (default: OPENCLAW_GATEWAY_TOKEN)")
    parser.add_argument(
        "--local", action="store_true", help="Work on the files even if a daemon is running"
    )


def _now_ms() -> int:
    pinned = os.environ.get("SESSIOND_NOW_MS")
    return int(pinned) if pinned else time.time_ns() // 1_000_000


def run_undo_command(args: argparse.Namespace) -> int:
    cwd, env = os.getcwd(), os.environ
    where = Locations.from_env(env, cwd)
    try:
        config = load_config_file(resolve_config_path(env, where.state_dir, cwd))
        targets = resolve_targets(
            config, where, store=args.store, agent=args.agent, all_agents=False
        )
    except ConfigError as exc:
        print(exc.render(where.home), file=sys.stderr)
        return 1
    except TargetError as exc:
        print(str(exc), file=sys.stderr)
        return 1
    if getattr(args, "all_agents", False):
        print("--all-agents: a journal belongs to one store; name --agent", file=sys.stderr)
        return 1
    as_json = bool(args.json)
    target = targets[0]
    url = daemon_url(args.url, env)
    remote = not args.store and not args.local and something_listens(url)
    token = daemon_token(args.token, env, config)
    try:
        if args.sessions_command == "cleanups":
            listing = (
                cleanups_via_daemon(url, token, agent=args.agent)
                if remote
                else _cleanups_locally(target)
            )
            _print(listing, as_json, render_cleanups)
            return 0
        progress = terminal_progress(as_json)
        if remote:
            result = restore_via_daemon(
                url,
                token,
                agent=args.agent,
                entry_id=args.id,
                dry_run=args.dry_run,
                progress=progress,
            )
        else:
            result = restore_locally(
                target.agent_id, target.store_path, args.id, args.dry_run, _now_ms(), progress
            )
    except DaemonFailed as exc:
        print(str(exc), file=sys.stderr)
        if exc.data:
            sys.stderr.write(msgspec.json.encode(exc.data).decode() + "\n")
        return 1
    except (DomainError, StoreWriteError) as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return 1
    _print(result, as_json, render_restore)
    return 0


def _cleanups_locally(target: StoreTarget) -> CleanupsResult:
    journal = open_journal(target.store_path, _now_ms())
    return CleanupsResult(
        agent_id=target.agent_id,
        store_path=target.store_path,
        retention_entries=KEEP_ENTRIES,
        retention_days=KEEP_DAYS,
        entries=journal.summaries(KEEP_ENTRIES),
    )


def _print(value: T, as_json: bool, render: Callable[[T], list[str]]) -> None:
    if as_json:
        sys.stdout.write(msgspec.json.format(msgspec.json.encode(value), indent=2).decode() + "\n")
        return
    sys.stdout.write(printable("".join(f"{line}\n" for line in render(value))))


def render_cleanups(listing: CleanupsResult) -> list[str]:
    lines = [
        f"Session store: {listing.store_path}",
        f"Journal: {len(listing.entries)} entries (kept: {listing.retention_entries} newest, "
        f"{listing.retention_days} days, while their archives exist)",
    ]
    for entry in listing.entries:
        c = entry.counts
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(entry.time_ms / 1000))
        status = "restorable" if entry.restorable else f"not restorable: {entry.why}"
        lines.append(
            f"{entry.id}  {when}Z  {entry.kind:<8} {entry.state:<11} rows -{c.rows_removed} "
            f"+{c.rows_added} ~{c.rows_changed}  files moved {c.files_moved}, "
            f"deleted {c.files_deleted}  {status}"
        )
        for name in entry.deleted_files:
            lines.append(f"    deleted outright: {name}")
    return lines


def render_restore(result: RestoreResult) -> list[str]:
    verb = "Would restore" if result.dry_run else "Restored"
    lines = [
        f"Session store: {result.store_path}",
        f"{verb} {result.restored_id}: {result.restored_rows} rows, "
        f"{result.renamed_files} transcripts renamed back, {result.conflicts} conflicts",
    ]
    for key in result.keys:
        if key.outcome == "conflict":
            lines.append(f"  conflict: {key.key} exists again; left as it is")
        for skipped in key.skipped:
            lines.append(f"  skipped for {key.key}: {skipped}")
    for name in result.lost:
        lines.append(f"  cannot come back (deleted outright): {name}")
    if result.journal_id:
        lines.append(f"Journal entry: {result.journal_id} (restore it to undo this restore)")
    return lines
