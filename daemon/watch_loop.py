"""The watch loop: each store's directory watched with watchfiles, store paths reported.

Each store's *directory* is watched (an atomic save replaces the inode, so a watch on the file
itself would be lost; a rename-over arrives as DELETED(temp) + ADDED(target)). An event for a
store's file name makes the registry re-read it.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable

import structlog
import watchfiles

log = structlog.get_logger("sessiond.watcher")


async def watch_directories(
    directories: Callable[[], dict[str, list[str]]],
    on_change: Callable[[str], None],
    rewatch: asyncio.Event,
    stop: asyncio.Event,
) -> None:
    """Call `on_change(store_path)` for every event on a store file until `stop` is set.

    `directories()` maps each directory to the store paths in it; setting `rewatch` (after a
    config reload) restarts the watch on the new set.
    """
    while not stop.is_set():
        rewatch.clear()
        watched = directories()
        if not watched:
            await _first(rewatch, stop)
            continue
        paths = {p for store_paths in watched.values() for p in store_paths}
        local_stop = asyncio.Event()
        relay = asyncio.create_task(_relay(local_stop, rewatch, stop))
        # Runs once awatch has set up its inotify watches (synchronously, before its first
        # await): a re-read of every store then covers edits made before the watch existed.
        asyncio.get_running_loop().call_soon(_resync, paths, on_change)
        try:
            async for changes in watchfiles.awatch(
                *watched,
                watch_filter=None,
                debounce=30,
                step=10,
                recursive=False,
                stop_event=local_stop,
                ignore_permission_denied=True,
            ):
                for path in sorted({os.path.abspath(p) for _c, p in changes} & paths):
                    on_change(path)
        except FileNotFoundError:
            log.warning("watched directory vanished", directories=sorted(watched))
            await asyncio.sleep(0.5)
        finally:
            relay.cancel()


def _resync(paths: set[str], on_change: Callable[[str], None]) -> None:
    for path in sorted(paths):
        on_change(path)


async def _first(*events: asyncio.Event) -> None:
    waits = [asyncio.create_task(e.wait()) for e in events]
    try:
        await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in waits:
            task.cancel()


async def _relay(local_stop: asyncio.Event, *events: asyncio.Event) -> None:
    await _first(*events)
    local_stop.set()
