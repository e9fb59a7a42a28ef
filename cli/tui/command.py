"""`sessiond tui`: find the daemon as the CLI's gateway mode does, then run the app.

The terminal belongs to the app: logs go to `--log FILE` or nowhere, never to stderr, where they
would tear the screen.
"""

from __future__ import annotations

import logging
import os
import sys

from sessiond.cli.daemon_route import daemon_token, daemon_url
from sessiond.cli.tui.app import Maintenance
from sessiond.engine.config import (
    ConfigError,
    Locations,
    SessionsConfig,
    parse_config,
    resolve_config_path,
)

DAY_MS = 86_400_000


def _duration(ms: int | None) -> str:
    if ms is None:
        return "off"
    if ms % DAY_MS == 0:
        return f"{ms // DAY_MS}d"
    if ms % 3_600_000 == 0:
        return f"{ms // 3_600_000}h"
    return f"{ms / 1000:g}s"


def _size(count: int | None) -> str:
    return "off" if count is None else f"{count:,} bytes"


def maintenance_of(config: SessionsConfig) -> Maintenance:
    m = config.maintenance
    return Maintenance(
        config.path,
        [
            ("mode", m.mode),
            ("pruneAfter", _duration(m.prune_after_ms)),
            ("maxEntries", f"{m.max_entries:,}"),
            ("resetArchiveRetention", _duration(m.reset_archive_retention_ms)),
            ("maxDiskBytes", _size(m.max_disk_bytes)),
            ("highWaterBytes", _size(m.high_water_bytes)),
            ("dmScope", config.dm_scope),
        ],
    )


def resolve(url: str | None, token: str | None) -> tuple[str, str | None, Maintenance]:
    """The daemon's URL and token exactly as `sessions cleanup` finds them, and the maintenance.

    An unreadable config is no reason not to look at the daemon: its problem is shown on the
    Cleanup screen instead.
    """
    from sessiond.daemon.config_file import load_config_file

    env = os.environ
    cwd = os.getcwd()
    where = Locations.from_env(env, cwd)
    path = resolve_config_path(env, where.state_dir, cwd)
    try:
        config = load_config_file(path)
        maintenance = maintenance_of(config)
    except ConfigError as exc:
        config = parse_config({}, path)
        maintenance = Maintenance(path, problem=exc.render(where.home))
    return daemon_url(url, env).url, daemon_token(token, env, config), maintenance


def quiet_logs(log_file: str | None) -> None:
    """Every log record to `log_file`, or nowhere: nothing may reach the terminal."""
    logging.captureWarnings(True)
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    sink: logging.Handler = logging.NullHandler()
    if log_file:
        sink = logging.FileHandler(log_file, encoding="utf-8")
        sink.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
        root.setLevel(logging.INFO)
    root.addHandler(sink)


def run_tui(url: str, token: str | None, maintenance: Maintenance, log_file: str | None) -> int:
    """The app on this terminal until `q`; 2 (and a line on stderr) when there is no terminal."""
    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        print("sessiond tui needs a terminal", file=sys.stderr)
        return 2
    from sessiond.cli.tui.app import SessiondTui

    quiet_logs(log_file)
    SessiondTui(url, token, maintenance).run()
    return 0


def tui_command(url: str | None, token: str | None, log_file: str | None) -> int:
    resolved_url, resolved_token, maintenance = resolve(url, token)
    return run_tui(resolved_url, resolved_token, maintenance, log_file)
