"""Gateway mode of the command line: send the cleanup to a running sessiond, if one answers.

Falls back to local mode only when nothing listens at the daemon's address. Once something has
answered, its error is the command's error: running locally beside a live daemon would race it,
the very failure sessiond exists to end.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable, Coroutine, Mapping
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlsplit

from sessiond.cli.progress_bar import TerminalProgress
from sessiond.engine.cleanup.progress import NO_PROGRESS, Progress
from sessiond.engine.config import SessionsConfig
from sessiond.protocol.cleanup import AllAgentsCleanup, CleanupSummary
from sessiond.protocol.undo import CleanupsResult, RestoreResult

if TYPE_CHECKING:
    from sessiond.client import SessiondClient

DEFAULT_PORT = 18789


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
    """The daemon answered, with an error; the message says what and where, `data` the facts."""

    def __init__(self, message: str, data: Any = None) -> None:
        super().__init__(message)
        self.data = data


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
    plan_id: str | None = None,
    progress: Progress = NO_PROGRESS,
) -> CleanupSummary | AllAgentsCleanup:
    from sessiond.client import SessiondClient

    async def call() -> CleanupSummary | AllAgentsCleanup:
        async with SessiondClient(url, token=token, connect_timeout=5.0) as client:
            token_for = _listen(client, progress)
            return await client.sessions_cleanup(
                agent=agent,
                all_agents=all_agents,
                enforce=enforce,
                active_key=active_key,
                fix_missing=fix_missing,
                fix_dm_scope=fix_dm_scope,
                dry_run=dry_run,
                include_actions=include_actions,
                plan_id=plan_id,
                progress_token=token_for,
            )

    return _run(url, call)


T = TypeVar("T")


def _run(url: str, call: Callable[[], Coroutine[Any, Any, T]]) -> T:
    from sessiond.client import RpcError, SessiondError

    try:
        return asyncio.run(call())
    except SessiondError as exc:
        data = exc.data if isinstance(exc, RpcError) else None
        raise DaemonFailed(f"sessiond at {url}: {exc}", data) from exc


def _listen(client: SessiondClient, progress: Progress) -> str | None:
    """A progress token wired to `progress`, or None when nobody watches."""
    if not isinstance(progress, TerminalProgress):
        return None
    client.on_progress(PROGRESS_TOKEN, lambda step: progress.take(step.value))
    return PROGRESS_TOKEN


PROGRESS_TOKEN = "sessiond-cli"


def restore_via_daemon(
    url: str,
    token: str | None,
    *,
    agent: str | None,
    entry_id: str | None,
    dry_run: bool,
    progress: Progress = NO_PROGRESS,
) -> RestoreResult:
    from sessiond.client import SessiondClient

    async def call() -> RestoreResult:
        async with SessiondClient(url, token=token, connect_timeout=5.0) as client:
            return await client.sessions_restore(
                agent=agent, id=entry_id, dry_run=dry_run, progress_token=_listen(client, progress)
            )

    return _run(url, call)


def cleanups_via_daemon(url: str, token: str | None, *, agent: str | None) -> CleanupsResult:
    from sessiond.client import SessiondClient

    async def call() -> CleanupsResult:
        async with SessiondClient(url, token=token, connect_timeout=5.0) as client:
            return await client.sessions_cleanups(agent=agent)

    return _run(url, call)
