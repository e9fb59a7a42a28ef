"""The narrow read-only seam between the pure cleanup planner and the file system.

The planner asks only these questions of the disk; the daemon's `OsDiskView` answers them from
the real file system. Keeping the seam this small is what lets a
dry run and an apply share one plan.
"""

from __future__ import annotations

import os
from collections.abc import Collection
from typing import Protocol


class DirFile(Protocol):
    """A regular file directly inside a sessions dir; size and mtime may be read lazily."""

    @property
    def path(self) -> str: ...

    @property
    def canonical(self) -> str: ...

    @property
    def name(self) -> str: ...

    @property
    def size(self) -> int: ...

    @property
    def mtime_ms(self) -> float: ...


class DiskView(Protocol):
    def realpath(self, path: str) -> str | None:
        """The symlink-free path, or None when the path does not exist."""

    def exists(self, path: str) -> bool: ...

    def canonical(self, path: str) -> str:
        """`realpath` when it exists, else the normalised absolute path (the reference's rule)."""

    def list_files(self, directory: str) -> list[DirFile]:
        """Regular files directly in `directory`, in directory order; [] when unreadable."""

    def entry_names(self, directory: str) -> Collection[str] | None:
        """Every name (files, links, dirs) in a symlink-free `directory`; None when unknown."""


def absolute(path: str) -> str:
    """`os.path.abspath`, skipped for paths that are already absolute and normal (most are)."""
    if path.startswith("/") and "/." not in path and "//" not in path and not path.endswith("/"):
        return path
    return os.path.abspath(path)


def canonical(view: DiskView, path: str) -> str:
    """`realpath` when it exists, else the normalised absolute path (the reference's rule)."""
    return view.canonical(path)
