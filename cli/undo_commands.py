"""`sessiond sessions restore` and `sessiond sessions cleanups`: undo and the cleanup journal.

They go where `sessions cleanup` goes (cli/daemon_route.py): a store a live sessiond holds is
handled by that daemon, whatever the flags (even the listing may finish an interrupted entry,
a write); else a daemon named by `--url` or `SESSIOND_URL`, which must answer; else the one at
the default address if it answers; else the files, saying so on stderr. The parser is in
cli/main.py.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from typing import TypeVar

import msgspec
from sessiond.cli.cleanup import EXIT_FAILED, EXIT_OK, fail, local_flag, missing_path
from sessiond.cli.daemon_route import (
    DaemonFailed,
    HeldUnusable,
    cleanups_via_daemon,
    daemon_token,
    daemon_url,
    held_by_daemon,
    restore_via_daemon,
    unreachable,
)
from sessiond.cli.local_cleanup import open_journal, restore_locally
from sessiond.cli.progress_bar import terminal_progress
from sessiond.daemon.clock import now_ms
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


def undo_command(args: argparse.Namespace) -> int:
    env = dict(os.environ)
    if args.state_dir:
        env["OPENCLAW_STATE_DIR"] = args.state_dir
    cwd = os.getcwd()
    where = Locations.from_env(env, cwd)
    try:
        config = load_config_file(resolve_config_path(env, where.state_dir, cwd))
    except ConfigError as exc:
        print(exc.render(where.home), file=sys.stderr)
        return EXIT_FAILED
    if args.all_agents:
        return fail("--all-agents: a journal belongs to one store; name --agent")
    if args.url and (args.store or args.local):
        return fail(f"--url names a daemon; it cannot be combined with {local_flag(args)}")
    token = daemon_token(args.token, env, config)
    note = None
    if not args.store and not args.local:
        target = daemon_url(args.url, env)
        reason = unreachable(target.url)
        if reason is None:
            return _on_daemon(args, target.url, token, args.agent)
        if target.explicit:
            return fail(f"cannot reach sessiond at {target.url} (from {target.source}): {reason}")
        note = f"no sessiond at {target.url} ({reason}); ran locally on the files"
    try:
        targets = resolve_targets(
            config, where, store=args.store, agent=args.agent, all_agents=False
        )
    except TargetError as exc:
        print(str(exc), file=sys.stderr)
        return EXIT_FAILED
    missing = missing_path(args, env, where, targets)
    if missing:
        return fail(missing)
    try:
        held = held_by_daemon(targets)
    except HeldUnusable as exc:
        return fail(f"{exc}; the files were not touched")
    if held is not None:
        holder = held.holder
        reason = unreachable(holder.url or "")
        if reason is not None:
            return fail(
                f"{targets[0].store_path} is held by {holder.describe()}, which does not answer "
                f"({reason}); the files were not touched"
            )
        code = _on_daemon(args, holder.url or "", token, holder.agent_id)
        if code == EXIT_OK:
            print(f"sessiond: ran on {holder.describe()}, which holds the store", file=sys.stderr)
        return code
    code = _locally(args, targets[0])
    if note is not None and code == EXIT_OK:
        print(f"sessiond: {note}", file=sys.stderr)
    return code


def _on_daemon(args: argparse.Namespace, url: str, token: str | None, agent: str | None) -> int:
    as_json = bool(args.json)
    try:
        if args.sessions_command == "cleanups":
            _print(cleanups_via_daemon(url, token, agent=agent), as_json, render_cleanups)
            return EXIT_OK
        result = restore_via_daemon(
            url,
            token,
            agent=agent,
            entry_id=args.id,
            dry_run=args.dry_run,
            progress=terminal_progress(as_json),
        )
    except DaemonFailed as exc:
        print(str(exc), file=sys.stderr)
        if exc.data:
            sys.stderr.write(msgspec.json.encode(exc.data).decode() + "\n")
        return EXIT_FAILED
    _print(result, as_json, render_restore)
    return EXIT_OK


def _locally(args: argparse.Namespace, target: StoreTarget) -> int:
    as_json = bool(args.json)
    try:
        if args.sessions_command == "cleanups":
            _print(_cleanups_locally(target), as_json, render_cleanups)
            return EXIT_OK
        result = restore_locally(
            target.agent_id,
            target.store_path,
            args.id,
            args.dry_run,
            now_ms(),
            terminal_progress(as_json),
        )
    except (DomainError, StoreWriteError) as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    _print(result, as_json, render_restore)
    return EXIT_OK


def _cleanups_locally(target: StoreTarget) -> CleanupsResult:
    journal = open_journal(target.store_path, now_ms())
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
