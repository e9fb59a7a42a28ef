"""`sessiond`: the command line. `serve` runs the daemon; `sessions cleanup` mirrors OpenClaw's;
`sessions restore` and `sessions cleanups` undo a cleanup and list the cleanup journal.

The parser is also the source of docs/cli.md (`python -m sessiond.cli.docs`): every flag's help,
where its value comes from when it is not given (`SOURCES`) and each command's exit statuses
(`EXIT_CODES`) are declared here, once.
"""

from __future__ import annotations

import argparse
import gc
import os
import sys
from collections.abc import Sequence
from typing import Any

import msgspec
from sessiond.cli.serve import EXIT_FLUSH_FAILED, EXIT_REFUSED
from sessiond.protocol.gateway_frames import DEFAULT_PORT

EXIT_USAGE = 2


class Source(msgspec.Struct, frozen=True):
    """Where a setting comes from when its flag is not given, in the order they are tried."""

    flags: tuple[str, ...] = ()
    env: tuple[str, ...] = ()
    config: str | None = None
    default: str | None = None


SOURCES: dict[tuple[str, str], Source] = {}
"""By (command, flag): filled in by `_flag` as the parser is built."""

EXIT_CODES: dict[str, list[tuple[int, str]]] = {
    "serve": [
        (0, "stopped by SIGTERM or SIGINT with every store flushed"),
        (EXIT_FLUSH_FAILED, "stopped, but a store could not be flushed (its changes are lost)"),
        (
            EXIT_REFUSED,
            "refused to start, having changed nothing: a bad command line, invalid config, "
            "missing state dir, port in use, a store another sessiond serves, unreadable token "
            "file, or a non-loopback address without a token",
        ),
    ],
    "sessions cleanup": [
        (0, "done (or previewed, with --dry-run)"),
        (
            1,
            "not done: invalid config, bad --agent/--store, a path that does not exist, a daemon "
            "named by --url or SESSIOND_URL that cannot be reached, a daemon's error, a store "
            "held by a daemon that does not answer, a store that does not parse, a failed write",
        ),
        (EXIT_USAGE, "bad command line"),
    ],
    "sessions restore": [
        (
            0,
            "restored (or previewed, with --dry-run); keys that exist again are reported, not "
            "overwritten",
        ),
        (
            1,
            "not done: invalid config, bad --agent/--store, --all-agents, a path that does not "
            "exist, no such journal entry or one that cannot be restored, a daemon named by "
            "--url or SESSIOND_URL that cannot be reached, a daemon's error, a store held by a "
            "daemon that does not answer, a store that does not parse, a failed write",
        ),
        (EXIT_USAGE, "bad command line"),
    ],
    "sessions cleanups": [
        (0, "listed"),
        (
            1,
            "not listed: invalid config, bad --agent/--store, --all-agents, a path that does not "
            "exist, a daemon named by --url or SESSIOND_URL that cannot be reached, a daemon's "
            "error, a store held by a daemon that does not answer",
        ),
        (EXIT_USAGE, "bad command line"),
    ],
    "tui": [
        (0, "quit (q)"),
        (EXIT_USAGE, "bad command line, or stdin and stdout are not a terminal"),
    ],
    "demo": [
        (0, "the demo ran"),
        (1, "the directory is not one the demo may use, or the daemon did not start"),
        (EXIT_USAGE, "bad command line"),
    ],
}

ENVIRONMENT: list[tuple[str, str]] = [
    ("OPENCLAW_STATE_DIR", "the state dir, when --state-dir is not given"),
    (
        "OPENCLAW_CONFIG_PATH",
        "the config file (default: openclaw.json in the state dir, clawdbot.json when only "
        "that exists)",
    ),
    ("OPENCLAW_HOME", "the home dir that `~` in paths means (default: HOME)"),
    ("OPENCLAW_GATEWAY_TOKEN", "the shared token, when --token is not given"),
    (
        "OPENCLAW_GATEWAY_PORT",
        f"the port of cleanup's default daemon address (default {DEFAULT_PORT})",
    ),
    ("SESSIOND_URL", "the daemon cleanup runs on, when --url is not given"),
    ("SESSIOND_NOW_MS", "pins cleanup's clock (milliseconds), for reproducible runs"),
    (
        "LISTEN_FDS, NOTIFY_SOCKET, WATCHDOG_USEC",
        "set by systemd for serve: socket activation, readiness and watchdog (systemd/README.md)",
    ),
]
"""Every environment variable the command reads, for docs/cli.md."""

STATE_DIR_SOURCE = Source(
    env=("OPENCLAW_STATE_DIR",), default="~/.openclaw (~/.clawdbot when only that exists)"
)
PATHS_NOTE = (
    "A --store file or a state dir that does not exist is an error (a typo must not look like an "
    "empty store). A configured agent whose sessions dir does not exist yet is an empty store: "
    "OpenClaw creates those on first write."
)
SERVE_PATHS_NOTE = (
    "A state dir that does not exist is an error, never created (a typo must not look like an "
    "empty state dir). A configured agent whose sessions dir does not exist yet is served as an "
    "empty store; its sessions dir is created, as OpenClaw does on its first write."
)


def _flag(
    parser: argparse.ArgumentParser,
    command: str,
    *names: str,
    source: Source | None = None,
    **kwargs: Any,
) -> None:
    parser.add_argument(*names, **kwargs)
    if source is not None:
        SOURCES[(command, names[0])] = source


class _Version(argparse.Action):
    """`--version`, importing the daemon (for its version string) only when asked."""

    def __init__(self, option_strings: Sequence[str], dest: str, **kwargs: Any) -> None:
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, **kwargs)

    def __call__(self, parser: argparse.ArgumentParser, *_args: Any, **_kwargs: Any) -> None:
        from importlib import metadata

        try:
            version = metadata.version("sessiond")
        except metadata.PackageNotFoundError:
            version = "0+unknown"
        print(f"sessiond {version}")
        parser.exit()


def _add_target_flags(
    parser: argparse.ArgumentParser, suppress: bool, command: str = "sessions cleanup"
) -> None:
    default = argparse.SUPPRESS if suppress else None
    _flag(
        parser,
        command,
        "--state-dir",
        default=default,
        source=STATE_DIR_SOURCE,
        help="OpenClaw state dir (openclaw.json and agents/*/sessions are read from it)",
    )
    parser.add_argument("--store", default=default, help="Explicit sessions.json path (must exist)")
    parser.add_argument("--agent", default=default, help="One agent's store")
    parser.add_argument(
        "--all-agents", action="store_true", default=default, help="Every agent's store"
    )
    parser.add_argument("--json", action="store_true", default=default, help="Output JSON")


SERVE_DESCRIPTION = f"""\
Run the session-store daemon: JSON-RPC 2.0 and OpenClaw's gateway protocol on one WebSocket port.

It reads openclaw.json from the state dir, locks the state dir and every configured store (one
sessiond per store), binds the port, and only then loads the stores. {SERVE_PATHS_NOTE}"""

CLEANUP_DESCRIPTION = f"""\
Run session-store maintenance now. Without --dry-run it APPLIES: rows are removed from
sessions.json and transcripts are archived or deleted. Preview with --dry-run first.

Where it runs: on the sessiond named by --url or SESSIOND_URL (an error if it cannot be
reached); else on the one at ws://127.0.0.1:$OPENCLAW_GATEWAY_PORT (18789) if it answers;
else on the files, and it says so on stderr. An apply to a store that a running sessiond
holds always runs on that daemon, even with --local or --store.

The state dir comes from --state-dir, else OPENCLAW_STATE_DIR, else ~/.openclaw; the config
is openclaw.json in it (or OPENCLAW_CONFIG_PATH). {PATHS_NOTE}

A dry run ends with a plan id (on stderr; `planId` with --json). --plan ID applies only that
very plan: if the store changed so that the plan would differ, nothing is written and the
error says which counts changed. Every apply is journaled beside the store first, so
`sessions restore` can undo it."""


UNDO_ROUTE_NOTE = """\
Where it runs: chosen as for `sessions cleanup` (a daemon named by --url or SESSIOND_URL, else
the one at the default address if it answers, else the files). A store that a running sessiond
holds is always handled by that daemon, even with --local or --store."""

RESTORE_DESCRIPTION = f"""\
Put back what one journal entry removed: rows byte for byte, archived transcripts renamed back.
ID names the entry (`sessions cleanups` lists them); without it, or with --last, the newest
restorable entry. A key that exists again, or a transcript name now taken, is reported and left
as it is; the rest is restored. Files the cleanup deleted outright cannot come back: the output
names them. A restore is journaled too, so restoring it undoes the restore.

{UNDO_ROUTE_NOTE}"""

CLEANUPS_DESCRIPTION = f"""\
List the store's cleanup journal, newest first: each applied cleanup, delete and restore, with
its time, options, counts, the files it deleted outright, and whether it can be restored (and
why not).

{UNDO_ROUTE_NOTE}"""


def build_parser() -> argparse.ArgumentParser:
    SOURCES.clear()
    parser = argparse.ArgumentParser(prog="sessiond", description=__doc__.split("\n\n")[0])
    parser.add_argument("--version", action=_Version, help="Print the version and exit")
    commands = parser.add_subparsers(dest="command", required=True)
    raw = argparse.RawDescriptionHelpFormatter

    serve = commands.add_parser(
        "serve",
        help="Run the session-store daemon (WebSocket JSON-RPC)",
        description=SERVE_DESCRIPTION,
        formatter_class=raw,
    )
    _flag(serve, "serve", "--state-dir", source=STATE_DIR_SOURCE, help="OpenClaw state dir")
    _flag(serve, "serve", "--bind", default="127.0.0.1", help="Address (default %(default)s)")
    _flag(
        serve,
        "serve",
        "--port",
        type=int,
        default=DEFAULT_PORT,
        help="Port (default %(default)s; 0: any free port)",
    )
    _flag(
        serve,
        "serve",
        "--token",
        source=Source(
            flags=("--token-file",),
            env=("OPENCLAW_GATEWAY_TOKEN",),
            config="gateway.auth.token",
            default="none (allowed on loopback only)",
        ),
        help="Shared token clients must present",
    )
    _flag(serve, "serve", "--token-file", help="File holding the shared token")
    _flag(
        serve,
        "serve",
        "--max-frame-bytes",
        type=int,
        default=4 * 1024 * 1024,
        help="Larger frames get 1009 (default %(default)s)",
    )
    _flag(
        serve,
        "serve",
        "--allow-origin",
        action="append",
        default=[],
        help="Allowed browser Origin (repeatable; default: none)",
    )
    _flag(serve, "serve", "--port-file", help="Write the bound port here once listening")

    demo = commands.add_parser(
        "demo",
        help="Serve a generated demo state dir; dry-run through it",
        description="Create a demo state dir, serve it, and preview a cleanup through the "
        "daemon. It only ever creates a new directory, or reuses one it created (it marks it); "
        "anything else is refused.",
    )
    _flag(
        demo,
        "demo",
        "--dir",
        default="demo-state",
        help="Where to create the demo state dir (default %(default)s)",
    )
    _flag(
        demo,
        "demo",
        "--serve-seconds",
        type=float,
        help="Keep serving this long after the demo (default: until Ctrl-C on a terminal)",
    )
    _flag(demo, "demo", "--tui", action="store_true", help="Open `sessiond tui` on the demo state")
    _add_tui_command(commands)

    sessions = commands.add_parser("sessions", help="Session store commands")
    _add_target_flags(sessions, suppress=False)
    session_commands = sessions.add_subparsers(dest="sessions_command", required=True)
    cleanup = session_commands.add_parser(
        "cleanup",
        help="Run session-store maintenance now (applies unless --dry-run)",
        description=CLEANUP_DESCRIPTION,
        formatter_class=raw,
    )
    # Sub-command flags default to SUPPRESS, so `sessions --json cleanup` keeps the parent's.
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
    command = "sessions cleanup"
    _flag(
        cleanup,
        command,
        "--url",
        source=Source(
            env=("SESSIOND_URL",),
            default="ws://127.0.0.1:$OPENCLAW_GATEWAY_PORT (port 18789), if it answers",
        ),
        help="sessiond to run on; it must answer (an error otherwise)",
    )
    _flag(
        cleanup,
        command,
        "--token",
        source=Source(env=("OPENCLAW_GATEWAY_TOKEN",), config="gateway.auth.token"),
        help="sessiond's token",
    )
    cleanup.add_argument(
        "--local",
        action="store_true",
        help="Do not look for a daemon at the URL (an apply to a store a running sessiond holds "
        "still runs there)",
    )
    cleanup.add_argument(
        "--plan",
        metavar="ID",
        help="Apply only if the plan is still the one the dry run printed as ID (else: an error "
        "with the counts that changed, and nothing written)",
    )

    restore = session_commands.add_parser(
        "restore",
        help="Undo a cleanup, delete or restore recorded in the store's journal",
        description=RESTORE_DESCRIPTION,
        formatter_class=raw,
    )
    _add_target_flags(restore, suppress=True, command="sessions restore")
    which = restore.add_mutually_exclusive_group()
    which.add_argument(
        "id", nargs="?", metavar="ID", help="The journal entry to undo (see `sessions cleanups`)"
    )
    which.add_argument(
        "--last", action="store_true", help="The newest restorable entry (also without ID)"
    )
    restore.add_argument(
        "--dry-run", action="store_true", help="Say what would come back; change nothing"
    )
    _add_route_flags(restore, "sessions restore")

    cleanups = session_commands.add_parser(
        "cleanups",
        help="List the store's cleanup journal, newest first",
        description=CLEANUPS_DESCRIPTION,
        formatter_class=raw,
    )
    _add_target_flags(cleanups, suppress=True, command="sessions cleanups")
    _add_route_flags(cleanups, "sessions cleanups")
    return parser


def _add_tui_command(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    tui = commands.add_parser(
        "tui",
        help="A live terminal view of every store, its cleanup plan, and undo",
        description="Every agent's sessions, live; each store's state; the cleanup plan and its "
        "apply; the cleanup journal and its undo (docs/tui.md). Keys are listed at the bottom.",
    )
    _flag(
        tui,
        "tui",
        "--url",
        source=Source(env=("SESSIOND_URL",), default="ws://127.0.0.1:$OPENCLAW_GATEWAY_PORT"),
        help="sessiond to watch (waited for, with backoff, while it does not answer)",
    )
    _flag(
        tui,
        "tui",
        "--token",
        source=Source(env=("OPENCLAW_GATEWAY_TOKEN",), config="gateway.auth.token"),
        help="sessiond's token",
    )
    _flag(tui, "tui", "--log", help="Append the TUI's logs to this file (default: none)")


def _add_route_flags(parser: argparse.ArgumentParser, command: str) -> None:
    """Where an undo command runs: chosen as for `sessions cleanup` (cli/daemon_route.py)."""
    _flag(
        parser,
        command,
        "--url",
        source=Source(
            env=("SESSIOND_URL",),
            default="ws://127.0.0.1:$OPENCLAW_GATEWAY_PORT (port 18789), if it answers",
        ),
        help="sessiond to run on; it must answer (an error otherwise)",
    )
    _flag(
        parser,
        command,
        "--token",
        source=Source(env=("OPENCLAW_GATEWAY_TOKEN",), config="gateway.auth.token"),
        help="sessiond's token",
    )
    parser.add_argument(
        "--local",
        action="store_true",
        help="Do not look for a daemon at the URL (a store a running sessiond holds is still "
        "read and restored there)",
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    return _run_command(parser, parser.parse_args(argv))


def _run_command(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    if args.command == "demo":
        from sessiond.cli.demo import demo_command

        return demo_command(args.dir, args.serve_seconds, tui=args.tui)
    if args.command == "tui":
        from sessiond.cli.tui.command import tui_command

        return tui_command(args.url, args.token, args.log)
    if args.command == "serve":
        from sessiond.cli.serve import serve_command

        return serve_command(args)
    if args.command == "sessions" and args.sessions_command == "cleanup":
        from sessiond.cli.cleanup import cleanup_command

        return cleanup_command(args)
    if args.command == "sessions" and args.sessions_command in ("restore", "cleanups"):
        from sessiond.cli.undo_commands import undo_command

        return undo_command(args)
    parser.error("unknown command")
    return EXIT_USAGE


ONE_SHOT = frozenset({"sessions"})
"""Commands that have finished everything once they return: nothing runs on after them (no
thread, no server, no terminal to restore), and what they print is all written and flushed."""


def run() -> None:
    """The `sessiond` process. A one-shot command runs without the cycle collector, and ends
    at once, as mypy's fast exit does, instead of tearing the interpreter down.

    The collector would walk the thousands of long-lived objects the imports make a few dozen
    times (~6 ms of a local dry run) and find nothing: plans pause it anyway
    (engine/cleanup/targets.py), and the process is gone before what it might free would
    matter. Freeing a dry run's rows, index and plan object by object at exit is another tenth
    of a dry run on a big store; the kernel takes the memory back whole. Output is flushed
    first; a flush that fails exits the ordinary way, which reports it."""
    gc.disable()
    parser = build_parser()
    args = parser.parse_args()
    if args.command not in ONE_SHOT:
        gc.enable()
    code = _run_command(parser, args)
    if args.command in ONE_SHOT:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        except (OSError, ValueError):
            raise SystemExit(code) from None
        os._exit(code)
    raise SystemExit(code)


if __name__ == "__main__":
    run()
