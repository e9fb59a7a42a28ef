"""Reading a sessions.json: its bytes (None when there is none) and the `Store` they parse to.

Apart from daemon/durable_file.py, which re-exports `read_store` and `read_store_bytes`, so that
a dry run, which only reads, never imports the write path (its renameat2 binding, the apply
flow, the journal's hashing): those were a fifth of a fresh CLI process's imports.

`leased_reads` is the local dry run's reader: it maps each store read-only instead of copying
it (a 100 MB store: ~40 ms of page faults and copying saved, and no private copy) and decodes
each row's view in the same pass that finds the rows (`load_store_views`) when the plan
reads no row's bytes; the views copy what they hold, so the map and its lease are let go at
once. Otherwise (a disk budget sizes the store from its rows' bytes, or a row is not an
object) the store is split into rows that point into the map, and holds a read lease on it
(`F_SETLEASE`) while the rows are in use. A mapped file that another process
truncated or rewrote in place would change under the plan, or fault it (SIGBUS); the lease
rules that out: while it is held, the kernel makes anyone who opens the file for writing or
truncates it wait, and it is not granted while the file is open for writing. (The wait lasts
at most `/proc/sys/fs/lease-break-time`, 45 s by default: only a dry run slower than that,
on a file rewritten in place meanwhile, could still be faulted.)
Writers that replace the file by rename, as OpenClaw and sessiond do, are not held up: the
mapping keeps the old file's pages. Where a lease or a map cannot be had (not Linux, another
owner's file without CAP_LEASE, a network file system, a file open for writing, an empty or
unusual file) the store is read as bytes, as `read_store` does.
"""

from __future__ import annotations

import contextlib
import fcntl
import mmap
import os
import signal
from collections.abc import Callable, Iterator
from types import FrameType

from sessiond.engine.store import Store, load_store_buffer, load_store_bytes, load_store_views

_SETLEASE: int | None = getattr(fcntl, "F_SETLEASE", None)  # Linux only
_POPULATE: int = getattr(mmap, "MAP_POPULATE", 0)
MAPPED_AT_MOST = 64
"""Stores mapped by one `leased_reads`; the rest are read as bytes. Each map holds two file
descriptors until the block ends (ours, and the map's own duplicate), and `--all-agents` over
a great many agents must not run out of them."""


def read_store_bytes(path: str) -> bytes | None:
    """The file's bytes, or None when it does not exist."""
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except FileNotFoundError:
        return None
    except IsADirectoryError:
        return None


def read_store(path: str) -> Store:
    return load_store_bytes(read_store_bytes(path), path)


class _Leases:
    """The files `leased_reads` mapped, each open (and leased) until it ends."""

    def __init__(self, lease: int | None, views_only: bool) -> None:
        self.lease = lease  # F_SETLEASE, or None: no mapping
        self.views_only = views_only
        self.fds: list[int] = []

    def read(self, path: str) -> Store:
        store = None
        if self.lease is not None and len(self.fds) < MAPPED_AT_MOST:
            store = self._mapped(path, self.lease)
        return store if store is not None else read_store(path)

    def _mapped(self, path: str, lease: int) -> Store | None:
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except OSError:
            return None
        try:
            fcntl.fcntl(fd, lease, fcntl.F_RDLCK)
            # Leased, the file can no longer change size or bytes under us.
            size = os.fstat(fd).st_size
            mapping = mmap.mmap(fd, size, flags=mmap.MAP_SHARED | _POPULATE, prot=mmap.PROT_READ)
        except (OSError, ValueError, OverflowError):  # ValueError: an empty file
            os.close(fd)  # which lets go of a lease
            return None
        buffer = memoryview(mapping)
        views = load_store_views(buffer) if self.views_only else None
        if views is not None:  # nothing refers to the map: let it and the lease go now
            buffer.release()
            mapping.close()
            fcntl.fcntl(fd, lease, fcntl.F_UNLCK)
            os.close(fd)
            return views
        self.fds.append(fd)
        return load_store_buffer(buffer)

    def release(self) -> None:
        """Let go of every lease. Said outright, not left to the close: each map keeps a
        duplicate of its descriptor, and a lease lasts while any of them is open."""
        for fd in self.fds:
            if self.lease is not None:  # always, once a file was mapped
                with contextlib.suppress(OSError):
                    fcntl.fcntl(fd, self.lease, fcntl.F_UNLCK)
            os.close(fd)
        self.fds.clear()


@contextlib.contextmanager
def leased_reads(views_only: bool = False) -> Iterator[Callable[[str], Store]]:
    """A `read_store` whose stores stay valid until the block ends, for a dry run: plan and
    print inside it, and read no row's bytes after it (a writer may truncate the file then).
    `views_only`: the plan reads no row's bytes (`reads_row_bytes`), so a mapped store is
    read as views (`load_store_views`).

    A lease that another process wants broken is signalled with SIGIO, whose default is to
    end the process: it is ignored for the block (the kernel holds the writer back whether or
    not anyone listens), so only the main thread, which alone may set a signal's handling,
    maps; elsewhere every store is read as bytes.
    """
    lease = _SETLEASE
    previous: Callable[[int, FrameType | None], object] | int | None = None
    if lease is not None:
        try:
            previous = signal.signal(signal.SIGIO, signal.SIG_IGN)
        except ValueError:  # not the main thread
            lease = None
    leases = _Leases(lease, views_only)
    try:
        yield leases.read
    finally:
        leases.release()
        if lease is not None:  # (a handler set outside Python reads as None: the default)
            signal.signal(signal.SIGIO, signal.SIG_DFL if previous is None else previous)
