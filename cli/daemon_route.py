"""Gateway mode of the command line: send the cleanup to a running sessiond, if one answers.

Falls back to local mode only when nothing listens at the daemon's address. Once something has
answered, its error is the command's error: running locally beside a live daemon would race it,
the very failure sessiond exists to end.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Mapping
from urllib.parse import urlsplit

from sessiond.engine.config import SessionsConfig
from sessiond.protocol.cleanup import AllAgentsCleanup, CleanupSummary
from sessiond.protocol.gateway_frames import DEFAULT_PORT


def daemon_url(explicit: str | None, env: Mapping[str, str]) -> str:
    if explicit:
        return explicit
    if env.get("SESSIOND_URL"):
        return env["SESSIOND_URL"]
    port = env.get("OPENCLAW_GATEWAY_PORT", "").strip() or str(DEFAULT_PORT)
    return f"ws://127.0.0.1:{port}"


def daemon_token(
    explicit: str | None, env: Mapping[str, str], config: SessionsConfig
) -> str | None:
    return explicit or env.get("OPENCLAW_GATEWAY_TOKEN") or config.gateway_token


def something_listens(url: str, timeout: float = 1.0) -> bool:
    """A TCP connect, so an absent daemon costs milliseconds rather than a client's retries."""
    parts = urlsplit(url)
    host = parts.hostname or "127.0.0.1"
    port = parts.port or (443 if parts.scheme == "wss" else 80)
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


class DaemonFailed(Exception):
    """The daemon answered, with an error; the message says what and where."""


def cleanup_via_daemon(
    url: str,
    token: str | None,
    *,
    agent: str | None,
    all_agents: bool,
    enforce: bool,
    active_key: str | None,
    fix_missing: bool,
    fix_dm_scope: bool,
    dry_run: bool,
    include_actions: bool,
) -> CleanupSummary | AllAgentsCleanup:
    from sessiond.client import SessiondClient, SessiondError

    async def call() -> CleanupSummary | AllAgentsCleanup:
        async with SessiondClient(url, token=token, connect_timeout=5.0) as client:
            return await client.sessions_cleanup(
                agent=agent,
                all_agents=all_agents,
                enforce=enforce,
                active_key=active_key,
                fix_missing=fix_missing,
                fix_dm_scope=fix_dm_scope,
                dry_run=dry_run,
                include_actions=include_actions,
            )

    try:
        return asyncio.run(call())
    except SessiondError as exc:
        raise DaemonFailed(f"sessiond at {url}: {exc}") from exc
