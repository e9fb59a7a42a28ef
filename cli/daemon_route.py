"""Where `sessions cleanup` runs: on a sessiond, or on the files, and why.

The rules, most specific first:

1. An apply to a store that a live sessiond holds (its lock, daemon/store_lock.py) runs on that
   daemon, whatever the flags say: writing beside it would race it. A holder that does not answer
   is an error; the files are not touched. (A dry run only reads, so `--local` may read them.)
2. `--url` or `SESSIOND_URL` names a daemon: it must answer. One that cannot be reached is an
   error naming the URL and the reason, never a quiet switch to the files.
3. Otherwise the default address (`ws://127.0.0.1:$OPENCLAW_GATEWAY_PORT`, port 18789) is tried;
   when nothing listens there the command runs on the files and says so on stderr.

`--local` and `--store` skip 2 and 3. Once a daemon has answered, its error is the command's
error: running locally beside a live daemon would race it, the very failure sessiond exists to
end.
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Coroutine, Mapping
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlsplit

import msgspec
from sessiond.cli.progress_bar import TerminalProgress
from sessiond.engine.cleanup.progress import NO_PROGRESS, Progress
from sessiond.engine.config import SessionsConfig, StoreTarget
from sessiond.protocol.cleanup import AllAgentsCleanup, CleanupSummary
from sessiond.protocol.gateway_frames import DEFAULT_PORT
from sessiond.protocol.undo import CleanupsResult, RestoreResult

if TYPE_CHECKING:
    from sessiond.client import SessiondClient
    from sessiond.daemon.store_lock import Holder


class DaemonUrl(msgspec.Struct, frozen=True):
    url: str
    explicit: bool
    source: str  # "--url", "SESSIOND_URL" or "the default"


def daemon_url(explicit: str | None, env: Mapping[str, str]) -> DaemonUrl:
    if explicit:
        return DaemonUrl(explicit, True, "--url")
    if env.get("SESSIOND_URL", "").strip():
        return DaemonUrl(env["SESSIOND_URL"].strip(), True, "SESSIOND_URL")
    port = env.get("OPENCLAW_GATEWAY_PORT", "").strip() or str(DEFAULT_PORT)
    return DaemonUrl(f"ws://127.0.0.1:{port}", False, "the default")


def daemon_token(
    explicit: str | None, env: Mapping[str, str], config: SessionsConfig
) -> str | None:
    return explicit or env.get("OPENCLAW_GATEWAY_TOKEN") or config.gateway_token


def unreachable(url: str, timeout: float = 1.0) -> str | None:
    """Why nothing can answer at `url` (a TCP connect, so an absent daemon costs milliseconds
    rather than a client's retries); None when something listens there."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        return f"not a valid URL ({exc})"
    if parts.scheme not in ("ws", "wss") or not parts.hostname:
        return "not a ws:// or wss:// URL"
    port = port or (443 if parts.scheme == "wss" else 80)
    # An ASCII host goes to the resolver as bytes: as a str it would be IDNA-encoded, and the
    # codec's import is a millisecond of every local run.
    name = parts.hostname
    host = name.encode("ascii") if name.isascii() else name
    try:
        with socket.create_connection((host, port), timeout=timeout):  # type: ignore[arg-type]
            return None
    except TimeoutError:
        return f"no answer within {timeout:g} s"
    except socket.gaierror as exc:
        return f"cannot resolve {parts.hostname} ({exc.strerror})"
    except OSError as exc:
        return (exc.strerror or str(exc)).lower()


class Held(msgspec.Struct, frozen=True):
    """The targets' stores are all held by one live daemon, which serves them as these agents."""

    holder: Holder
    targets: list[StoreTarget]


class HeldUnusable(Exception):
    """Some target is held by a live daemon, but the command cannot simply run there."""


def held_by_daemon(targets: list[StoreTarget]) -> Held | None:
    """The daemon holding the targets' stores, if any does; raises HeldUnusable when they are
    split between daemons, or only some of them are held. (The lock module loads here: a dry
    run never asks.)"""
    from sessiond.daemon.store_lock import holder_of, store_lock_path

    holders = [(t, holder_of(store_lock_path(t.store_path))) for t in targets]
    held = [(t, h) for t, h in holders if h is not None]
    if not held:
        return None
    target, first = held[0]
    if first.url is None:
        raise HeldUnusable(
            f"{target.store_path} is held by {first.describe()}; try again once it is serving"
        )
    free = [t.store_path for t, h in holders if h is None]
    others = [h for _t, h in held if h.pid != first.pid or h.url != first.url]
    if free or others:
        raise HeldUnusable(
            f"{target.store_path} is held by {first.describe()}, but not every store this "
            "command names is: run it once per agent (--agent)"
        )
    return Held(first, targets)


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
        import asyncio  # here: a local run never needs it

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
