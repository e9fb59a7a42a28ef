"""Seeing other writers: file signatures, the per-key merge, and the watchfiles loop.

Each store's *directory* is watched (an atomic save replaces the inode, so a watch on the file
itself would be lost; a rename-over arrives as DELETED(temp) + ADDED(target)). An event for a
store's file name makes the registry re-read it. Our own writes are recognised by the file's
`(st_dev, st_ino, st_size, st_mtime_ns, st_ctime_ns)` plus a SHA-256 of its bytes, so they are
not reloaded. The stat alone vouches for a version only once the file's last change is older than
`RACY_NS`: a rewrite within the same clock tick keeps inode, size and both times (OpenClaw
#32191), so until then the bytes are hashed and compared.

Conflict rule (also in docs/reliability.md, "Conflict rule"). When an external edit is loaded
while the daemon holds changes not yet flushed, the merge works per key, against the *base* (the
file as the daemon last loaded or wrote it):

- a key only the daemon changed keeps the daemon's version (it is written on the next flush);
- a key only the file changed takes the file's version;
- a key both changed is a conflict, unless both made the same change. **The external file wins,
  except when both sides still have the row and the daemon's `updatedAt` is a number strictly
  greater than the file's `updatedAt`**: then the daemon's row wins. An external deletion always
  wins (the row stays deleted); a daemon deletion of a row the file changed loses (the row
  stays). Every conflict is logged with both `updatedAt` values and counted in `daemon.status`.

Rows are compared whitespace-insensitively (`msgspec.json.format(indent=0)`), so an editor that
re-indents the file does not turn untouched rows into conflicts.
"""

from __future__ import annotations

import asyncio
import hashlib
import math
import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import msgspec
import structlog
import watchfiles
from sessiond.daemon.store import Store, view_row

log = structlog.get_logger("sessiond.watcher")


# How long after a file's last change (its ctime) a stat can prove the file unchanged: longer
# than the kernel's coarse clock tick plus the coarsest file-system timestamp (1 s on ext3 and
# others), so that any later change is bound to carry a different ctime.
RACY_NS = 2_000_000_000


@dataclass(frozen=True, slots=True)
class DiskSig:
    """Identity of one version of a file: stat fields plus a hash of its bytes."""

    dev: int
    ino: int
    size: int
    mtime_ns: int
    ctime_ns: int
    digest: bytes
    seen_ns: int  # wall clock when this version was read or written

    @classmethod
    def of(cls, st: os.stat_result, data: bytes) -> DiskSig:
        return cls(
            st.st_dev,
            st.st_ino,
            st.st_size,
            st.st_mtime_ns,
            st.st_ctime_ns,
            hashlib.sha256(data).digest(),
            time.time_ns(),
        )

    def same_stat(self, st: os.stat_result) -> bool:
        """True only when the stat proves this version; False means: compare the bytes.

        A writer can put the mtime back (utime) but not the ctime, and a rewrite in the same
        clock tick keeps both; so equal stats count only for a version whose ctime was already
        `RACY_NS` old when it was seen (git's "racily clean" rule).
        """
        return self.ctime_ns < self.seen_ns - RACY_NS and (
            self.dev,
            self.ino,
            self.size,
            self.mtime_ns,
            self.ctime_ns,
        ) == (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


def read_with_stat(path: str) -> tuple[bytes, os.stat_result] | None:
    """The file's bytes and the stat of the very inode they came from; None when missing."""
    try:
        with open(path, "rb") as handle:
            st = os.fstat(handle.fileno())
            return handle.read(), st
    except (FileNotFoundError, IsADirectoryError):
        return None


def still_version(path: str, sig: DiskSig | None) -> bool:
    """True when the file on disk is the version `sig` names (None: the file is absent)."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return sig is None
    if sig is None:
        return False
    if sig.same_stat(st):
        return True
    found = read_with_stat(path)
    return found is not None and hashlib.sha256(found[0]).digest() == sig.digest


# ------------------------------------------------------------------------------------- merge


def _compact(raw: msgspec.Raw | None) -> bytes | None:
    return None if raw is None else msgspec.json.format(bytes(raw), indent=0)


def same_row(a: msgspec.Raw | None, b: msgspec.Raw | None) -> bool:
    if a is None or b is None:
        return a is b
    return a == b or _compact(a) == _compact(b)


def _updated_at(raw: msgspec.Raw) -> float | None:
    value: Any = view_row(raw).fields.updated_at
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


@dataclass(frozen=True, slots=True)
class Conflict:
    key: str
    winner: str  # "external" | "daemon"
    daemon_updated_at: float | None
    external_updated_at: float | None


@dataclass(slots=True)
class MergeOutcome:
    store: Store
    pending: set[str] = field(default_factory=set)
    conflicts: list[Conflict] = field(default_factory=list)


def merge_external(base: Store, ours: Store, theirs: Store, dirty: Iterable[str]) -> MergeOutcome:
    """The store to serve after loading `theirs`, with the daemon's unflushed `dirty` keys."""
    merged = theirs.copy()
    outcome = MergeOutcome(merged)
    for key in sorted(dirty):  # sorted: the same conflicts log in the same order every run
        mine, orig, ext = ours.get(key), base.get(key), theirs.get(key)
        if same_row(ext, mine):
            continue
        if not same_row(ext, orig):
            daemon_at = _updated_at(mine) if mine is not None else None
            external_at = _updated_at(ext) if ext is not None else None
            daemon_wins = (
                mine is not None
                and ext is not None
                and daemon_at is not None
                and (external_at is None or daemon_at > external_at)
            )
            conflict = Conflict(
                key, "daemon" if daemon_wins else "external", daemon_at, external_at
            )
            outcome.conflicts.append(conflict)
            if not daemon_wins:
                continue
        if mine is None:
            merged.delete(key)
        else:
            merged.put(key, mine)
        outcome.pending.add(key)
    return outcome


def changed_keys(before: Store, after: Store) -> list[str]:
    """Keys whose row differs (added, removed or changed), in `after`'s order then removals."""
    keys = [k for k, raw in after.rows.items() if not same_row(before.rows.get(k), raw)]
    keys += [k for k in before.rows if k not in after.rows]
    return keys


# ------------------------------------------------------------------------------- watch loop


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
