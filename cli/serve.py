"""`sessiond serve`: the command-line side of running the daemon.

Turns the parsed flags into `ServeOptions`, runs the daemon (daemon/server.py owns its
lifecycle), and turns a refused start into one line per problem on stderr and exit status
`EXIT_REFUSED`, so a supervisor can tell "will not start as configured" from a crash.
"""

from __future__ import annotations

import argparse
import os
import sys

EXIT_FLUSH_FAILED = 1
EXIT_REFUSED = 2  # what argparse uses for a bad command line: also a refusal to start


def serve_command(args: argparse.Namespace) -> int:
    # asyncio, websockets and the daemon only load when serving: `sessiond sessions cleanup`
    # stays light (cli/main.py imports this module for its exit statuses).
    import asyncio

    from sessiond.daemon.glibc_malloc import fix_mmap_threshold, limit_malloc_arenas
    from sessiond.daemon.server import ServeOptions, StartupError, configure_logging, run_daemon

    limit_malloc_arenas()  # before the first thread: see daemon/glibc_malloc.py
    fix_mmap_threshold()
    configure_logging()
    options = ServeOptions(
        state_dir=args.state_dir,
        bind=args.bind,
        port=args.port,
        token=args.token,
        token_file=args.token_file,
        max_frame_bytes=args.max_frame_bytes,
        allowed_origins=list(args.allow_origin),
        port_file=args.port_file,
    )
    env = dict(os.environ)
    if options.state_dir:
        env["OPENCLAW_STATE_DIR"] = options.state_dir
    try:
        code = asyncio.run(run_daemon(options, env, os.getcwd()))
    except StartupError as exc:
        for line in str(exc).splitlines():
            print(f"sessiond: not starting: {line}", file=sys.stderr)
        return EXIT_REFUSED
    return EXIT_FLUSH_FAILED if code else 0
