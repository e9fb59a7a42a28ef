"""The narrow read-only seam between the pure cleanup planner and the file system.

The planner asks only these questions of the disk; `OsDiskView` answers them from the real file
system (`disk_io`), tests can answer them from a dict. Keeping the seam this small is what lets a
dry run and an apply share one plan.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class DirFile:
    """A regular file directly inside a sessions dir."""

    path: str
    canonical: str
    name: str
    size: int
    mtime_ms: float


class DiskView(Protocol):
    def realpath(self, path: str) -> str | None:
        """The symlink-free path, or None when the path does not exist."""

    def exists(self, path: str) -> bool: ...

    def list_files(self, directory: str) -> list[DirFile]:
        """Regular files directly in `directory`, in directory order; [] when unreadable."""


def absolute(path: str) -> str:
    """`os.path.abspath`, skipped for paths that are already absolute and normal (most are)."""
    if path.startswith("/") and "/." not in path and "//" not in path and not path.endswith("/"):
        return path
    return os.path.abspath(path)


def canonical(view: DiskView, path: str) -> str:
    """`realpath` when it exists, else the normalised absolute path (the reference's rule)."""
    resolved = absolute(path)
    return view.realpath(resolved) or resolved


class OsDiskView:
    """DiskView over the real file system, as one consistent snapshot for one plan.

    Directory listings are read once and answer `realpath`/`exists` for the files directly in a
    directory whose own path is already symlink-free: the common case, and the one that would
    otherwise cost a syscall chain per row. Anything else falls through to the OS.
    """

    def __init__(self) -> None:
        self._listings: dict[str, dict[str, bool] | None] = {}

    def _listing(self, directory: str) -> dict[str, bool] | None:
        """name -> is_symlink for a symlink-free directory, else None (unknown: ask the OS)."""
        if directory in self._listings:
            return self._listings[directory]
        listing: dict[str, bool] | None = None
        if os.path.realpath(directory) == directory:
            try:
                with os.scandir(directory) as entries:
                    listing = {e.name: e.is_symlink() for e in entries}
            except OSError:
                listing = None
        self._listings[directory] = listing
        return listing

    def _cached(self, path: str) -> tuple[bool, bool] | None:
        """(exists, is_symlink) from a listing, or None when no listing can answer."""
        directory, name = os.path.split(path)
        if not name or name in (".", ".."):
            return None
        listing = self._listing(directory)
        if listing is None:
            return None
        if name not in listing:
            return (False, False)
        return (True, listing[name])

    def realpath(self, path: str) -> str | None:
        path = absolute(path)
        cached = self._cached(path)
        if cached is not None and not cached[1]:
            return path if cached[0] else None
        try:
            os.stat(path)
        except OSError:
            return None
        return os.path.realpath(path)

    def exists(self, path: str) -> bool:
        path = absolute(path)
        cached = self._cached(path)
        if cached is not None and not cached[1]:
            return cached[0]
        return os.path.exists(path)

    def list_files(self, directory: str) -> list[DirFile]:
        files: list[DirFile] = []
        try:
            with os.scandir(directory) as scan:
                entries = list(scan)
        except OSError:
            return files
        real_dir = os.path.realpath(directory) == os.path.abspath(directory)
        for entry in entries:
            try:
                if not entry.is_file(follow_symlinks=False):
                    continue
                st = entry.stat(follow_symlinks=True)
            except OSError:
                continue
            path = os.path.join(directory, entry.name)
            files.append(
                DirFile(
                    path=path,
                    canonical=os.path.abspath(path) if real_dir else canonical(self, path),
                    name=entry.name,
                    size=st.st_size,
                    mtime_ms=st.st_mtime_ns / 1e6,
                )
            )
        return files
