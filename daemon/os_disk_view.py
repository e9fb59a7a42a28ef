"""The planner's `DiskView` answered from the real file system, one snapshot per plan."""

from __future__ import annotations

import math
import os
from collections.abc import Collection

from sessiond.daemon.journal import JOURNAL_SUFFIX
from sessiond.daemon.store_lock import STORE_LOCK_SUFFIX
from sessiond.engine.disk_view import DirFile, absolute


class OsDirFile:
    """A regular file directly inside a sessions dir.

    Size and mtime are read on first use: most plans need them for a few files only (orphans
    old enough to sweep), and a stat per transcript was the largest cost of a plan on a big
    store. A file that vanishes before it is asked reads as empty and brand new, so no rule
    can take it for old.
    """

    __slots__ = ("_entry", "_mtime_ms", "_size", "canonical", "name", "path")

    def __init__(
        self,
        path: str,
        canonical: str,
        name: str,
        size: int | None = None,
        mtime_ms: float | None = None,
        entry: os.DirEntry[str] | None = None,
    ) -> None:
        self.path = path
        self.canonical = canonical
        self.name = name
        self._size = size
        self._mtime_ms = mtime_ms
        self._entry = entry

    def _stat(self) -> None:
        try:
            if self._entry is None:
                st = os.stat(self.path)
            else:
                st = self._entry.stat(follow_symlinks=True)
            self._size, self._mtime_ms = st.st_size, st.st_mtime_ns / 1e6
        except OSError:
            self._size, self._mtime_ms = 0, math.inf
        self._entry = None

    @property
    def size(self) -> int:
        if self._size is None:
            self._stat()
        assert self._size is not None
        return self._size

    @property
    def mtime_ms(self) -> float:
        if self._mtime_ms is None:
            self._stat()
        assert self._mtime_ms is not None
        return self._mtime_ms

    def __repr__(self) -> str:
        return f"OsDirFile({self.path!r})"


_UNKNOWN: dict[str, bool] = {}  # sentinel: no listing asked for yet


class OsDiskView:
    """DiskView over the real file system, as one consistent snapshot for one plan.

    Directory listings are read once and answer `realpath`/`exists` for the files directly in a
    directory whose own path is already symlink-free: the common case, and the one that would
    otherwise cost a syscall chain per row. Anything else falls through to the OS.
    """

    def __init__(self) -> None:
        self._listings: dict[str, dict[str, bool] | None] = {}
        self._scans: dict[str, list[os.DirEntry[str]] | None] = {}

    def _scan(self, directory: str) -> list[os.DirEntry[str]] | None:
        """One directory read per plan, shared by the lookups and `list_files`."""
        if directory not in self._scans:
            try:
                with os.scandir(directory) as entries:
                    self._scans[directory] = list(entries)
            except OSError:
                self._scans[directory] = None
        return self._scans[directory]

    def _listing(self, directory: str) -> dict[str, bool] | None:
        """name -> is_symlink for a symlink-free directory, else None (unknown: ask the OS)."""
        if directory in self._listings:
            return self._listings[directory]
        listing: dict[str, bool] | None = None
        if os.path.realpath(directory) == directory:
            entries = self._scan(directory)
            if entries is not None:
                listing = {e.name: e.is_symlink() for e in entries}
        self._listings[directory] = listing
        return listing

    def _cached(self, path: str) -> tuple[bool, bool] | None:
        """(exists, is_symlink) from a listing, or None when no listing can answer.

        `path` is absolute and normal (see `absolute`), so splitting at the last "/" is exact.
        """
        directory, _, name = path.rpartition("/")
        listing = self._listings.get(directory or "/", _UNKNOWN)
        if listing is _UNKNOWN:
            listing = self._listing(directory or "/")
        if listing is None or name in ("", ".", ".."):
            return None
        link = listing.get(name)
        return (False, False) if link is None else (True, link)

    def realpath(self, path: str) -> str | None:
        path = absolute(path)
        cached = self._cached(path)
        if cached is not None and not cached[1]:
            return path if cached[0] else None
        return self._realpath_of(path)

    @staticmethod
    def _realpath_of(path: str) -> str | None:
        try:
            os.stat(path)
        except OSError:
            return None
        return os.path.realpath(path)

    def canonical(self, path: str) -> str:
        # The hottest question of a plan (several per row), hence `absolute` and `_cached`
        # written out inline.
        if path.startswith("/") and "/." not in path and "//" not in path and path[-1] != "/":
            resolved = path
        else:
            resolved = os.path.abspath(path)
        directory, _, name = resolved.rpartition("/")
        listing = self._listings.get(directory or "/", _UNKNOWN)
        if listing is _UNKNOWN:
            listing = self._listing(directory or "/")
        if listing is not None and name not in ("", ".", "..") and not listing.get(name, False):
            return resolved  # a listed non-link is its own realpath; an unlisted path is kept
        return self._realpath_of(resolved) or resolved

    def exists(self, path: str) -> bool:
        if not (path.startswith("/") and "/." not in path and "//" not in path and path[-1] != "/"):
            path = os.path.abspath(path)  # `absolute`, inline: asked once per removed row
        cached = self._cached(path)
        if cached is not None and not cached[1]:
            return cached[0]
        return os.path.exists(path)

    def entry_names(self, directory: str) -> Collection[str] | None:
        return self._listing(directory)

    def list_files(self, directory: str) -> list[DirFile]:
        files: list[DirFile] = []
        entries = self._scan(directory)
        if entries is None:
            return files
        # In a symlink-free dir given as a normal absolute path, `entry.path` of a regular file
        # is already canonical (a dot-name gives "/.", which abspath keeps as it is).
        plain = os.path.realpath(directory) == directory == absolute(directory)
        for entry in entries:
            if entry.name.endswith((STORE_LOCK_SUFFIX, JOURNAL_SUFFIX)):
                # a daemon's lock (daemon/store_lock.py) or a store's cleanup journal
                # (daemon/journal.py): never planned, never counted
                continue
            try:
                if not entry.is_file(follow_symlinks=False):
                    continue
            except OSError:
                continue
            path = entry.path  # the same join of `directory` and the name
            resolved = path if plain else self.canonical(path)
            files.append(OsDirFile(path, resolved, entry.name, entry=entry))
        return files
