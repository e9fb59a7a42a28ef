"""`sessiond sessions cleanup`: OpenClaw's command, run on a sessiond or on the files.

cli/daemon_route.py decides where it runs. Through a daemon, the daemon resolves the agents and
plans; this process only prints. On the files, the plan and apply are the reference's
(engine/cleanup), with sessiond's guarantees (a dry run is what the apply does).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from typing import TextIO

import msgspec
from sessiond.cli.cleanup_text import render_applied, render_dry_run
from sessiond.cli.daemon_route import (
    DaemonFailed,
    HeldUnusable,
    cleanup_via_daemon,
    daemon_token,
    daemon_url,
    held_by_daemon,
    unreachable,
)
from sessiond.cli.progress_bar import terminal_progress
from sessiond.daemon.clock import now_ms
from sessiond.daemon.config_file import load_config_file
from sessiond.daemon.os_disk_view import OsDiskView
from sessiond.daemon.store_read import leased_reads, read_store
from sessiond.engine.cleanup.plan import CleanupOptions, reads_row_bytes
from sessiond.engine.cleanup.plan_id import check_plan_id, plan_id
from sessiond.engine.cleanup.report import combine, preview_summary
from sessiond.engine.cleanup.targets import PlannedStore, plan_targets
from sessiond.engine.config import (
    ConfigError,
    Locations,
    SessionsConfig,
    StoreTarget,
    TargetError,
    resolve_config_path,
    resolve_targets,
    state_dir_problem,
)
from sessiond.engine.errors import DomainError, StoreReadOnly
from sessiond.engine.js_semantics import printable
from sessiond.engine.store import Store
from sessiond.protocol.cleanup import AllAgentsCleanup

EXIT_OK = 0
EXIT_FAILED = 1


def _print_json(value: object, stream: TextIO | None = None) -> None:
    out = sys.stdout if stream is None else stream
    out.write(msgspec.json.format(msgspec.json.encode(value), indent=2).decode() + "\n")


def print_plan_id(plan_id: str) -> None:
    """After a text dry run, on stderr: stdout stays what the reference prints."""
    print(
        f"Plan {plan_id} (apply exactly this plan: sessiond sessions cleanup --plan {plan_id})",
        file=sys.stderr,
    )


def fail(message: str) -> int:
    print(f"sessiond: {message}", file=sys.stderr)
    return EXIT_FAILED


def cleanup_command(args: argparse.Namespace) -> int:
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
    if args.url and (args.store or args.local):
        return fail(f"--url names a daemon; it cannot be combined with {local_flag(args)}")
    token = daemon_token(args.token, env, config)
    note = None
    if not args.store and not args.local:
        target = daemon_url(args.url, env)
        reason = unreachable(target.url)
        if reason is None:
            # The daemon decides which agents exist and plans; nothing is resolved here.
            return _through_daemon(args, target.url, token, args.agent, bool(args.all_agents))
        if target.explicit:
            return fail(f"cannot reach sessiond at {target.url} (from {target.source}): {reason}")
        note = f"no sessiond at {target.url} ({reason}); ran locally on the files"
    try:
        targets = resolve_targets(
            config,
            where,
            store=args.store,
            agent=args.agent,
            all_agents=bool(args.all_agents),
        )
    except TargetError as exc:
        print(str(exc), file=sys.stderr)
        return EXIT_FAILED
    missing = missing_path(args, env, where, targets)
    if missing:
        return fail(missing)
    # A dry run only reads, so it may read the files beside a daemon; an apply may not.
    try:
        held = None if args.dry_run else held_by_daemon(targets)
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
        single = len(targets) == 1
        code = _through_daemon(
            args,
            holder.url or "",
            token,
            holder.agent_id if single else None,
            not single,
            failed=f"{targets[0].store_path} is held by {holder.describe()}; the files were not "
            "touched, and the daemon did not clean it",
        )
        if code == EXIT_OK:
            print(f"sessiond: ran on {holder.describe()}, which holds the store", file=sys.stderr)
        return code
    code = _locally(args, config, where, targets)
    if note is not None and code == EXIT_OK:
        print(f"sessiond: {note}", file=sys.stderr)
    return code


def local_flag(args: argparse.Namespace) -> str:
    return "--store" if args.store else "--local"


def missing_path(
    args: argparse.Namespace, env: dict[str, str], where: Locations, targets: list[StoreTarget]
) -> str | None:
    """A path the operator named that does not exist: a typo, not an empty store. (A configured
    agent whose sessions dir does not exist yet is an empty store: OpenClaw makes it lazily.)"""
    if args.store:
        path = targets[0].store_path
        if not os.path.isfile(path):
            what = "is not a file" if os.path.exists(path) else "does not exist"
            return f"--store {path} {what}"
        return None
    return state_dir_problem(where.state_dir, bool(args.state_dir), env)


def _locally(
    args: argparse.Namespace, config: SessionsConfig, where: Locations, targets: list[StoreTarget]
) -> int:
    as_json = bool(args.json)
    options = CleanupOptions(
        fix_missing=args.fix_missing,
        fix_dm_scope=args.fix_dm_scope,
        active_key=args.active_key,
        enforce=args.enforce,
    )
    clock = now_ms()
    if args.dry_run:
        # The stores are mapped, not copied, and leased until the preview is printed.
        with leased_reads(views_only=not reads_row_bytes(config.maintenance)) as read:
            return _dry_run(args, config, targets, where, options, clock, read)
    progress = terminal_progress(as_json)
    # The journal (and the apply) load only for an apply: a dry run is a fresh process too.
    from sessiond.cli.local_cleanup import open_journal

    for target in targets:  # a killed apply is finished or rolled back before planning
        open_journal(target.store_path, clock)
    planned = _plan(targets, read_store, config, options, clock, where)
    if planned is None:
        return EXIT_FAILED
    mode = planned[0].plan.mode if planned else config.maintenance.mode
    plans = [p.plan for p in planned]
    if args.plan:
        try:
            check_plan_id(args.plan, plans, 0)
        except DomainError as exc:
            print(f"Error: {exc.message}", file=sys.stderr)
            if exc.data:
                _print_json(exc.data, sys.stderr)
            return EXIT_FAILED
    from sessiond.cli.local_cleanup import apply_locally
    from sessiond.daemon.durable_file import StoreWriteError

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
            return EXIT_FAILED
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
    return EXIT_OK


def _plan(
    targets: list[StoreTarget],
    read: Callable[[str], Store],
    config: SessionsConfig,
    options: CleanupOptions,
    clock: int,
    where: Locations,
) -> list[PlannedStore] | None:
    """Every target's plan on the files; None (said on stderr) when a store cannot be read."""
    try:
        return plan_targets(
            targets, lambda t: read(t.store_path), config, options, OsDiskView(), clock, where
        )
    except StoreReadOnly as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return None


def _dry_run(
    args: argparse.Namespace,
    config: SessionsConfig,
    targets: list[StoreTarget],
    where: Locations,
    options: CleanupOptions,
    clock: int,
    read: Callable[[str], Store],
) -> int:
    as_json = bool(args.json)
    planned = _plan(targets, read, config, options, clock, where)
    if planned is None:
        return EXIT_FAILED
    mode = planned[0].plan.mode if planned else config.maintenance.mode
    summaries = [preview_summary(p.plan, config, include_actions=not as_json) for p in planned]
    previewed = str(plan_id([p.plan for p in planned], 0))
    if as_json:
        _print_json(combine(summaries, mode, dry_run=True, plan_id=previewed))
        return EXIT_OK
    out: list[str] = []
    for index, summary in enumerate(summaries):
        if index > 0:
            out.append("")
        out += render_dry_run(summary, clock, agent_header=len(summaries) > 1)
    sys.stdout.write(printable("".join(f"{line}\n" for line in out)))
    print_plan_id(previewed)
    return EXIT_OK


def _through_daemon(
    args: argparse.Namespace,
    url: str,
    token: str | None,
    agent: str | None,
    all_agents: bool,
    failed: str | None = None,
) -> int:
    """The daemon plans and applies; this process only prints. `failed` is said first when
    the daemon cannot do it."""
    as_json = bool(args.json)
    try:
        result = cleanup_via_daemon(
            url,
            token,
            agent=agent,
            all_agents=all_agents,
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
        print(f"sessiond: {failed}: {exc}" if failed else str(exc), file=sys.stderr)
        if exc.data:
            _print_json(exc.data, sys.stderr)
        return EXIT_FAILED
    if as_json:
        _print_json(result)
        return EXIT_OK
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
    return EXIT_OK
