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


def canonical(view: DiskView, path: str) -> str:
    """`realpath` when it exists, else the normalised absolute path (the reference's rule)."""
    resolved = os.path.abspath(path)
    return view.realpath(resolved) or resolved


class OsDiskView:
    """DiskView over the real file system."""

    def realpath(self, path: str) -> str | None:
        try:
            os.stat(path)
        except OSError:
            return None
        return os.path.realpath(path)

    def exists(self, path: str) -> bool:
        return os.path.exists(path)

    def list_files(self, directory: str) -> list[DirFile]:
        files: list[DirFile] = []
        try:
            entries = list(os.scandir(directory))
        except OSError:
            return files
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
                    canonical=canonical(self, path),
                    name=entry.name,
                    size=st.st_size,
                    mtime_ms=st.st_mtime_ns / 1e6,
                )
            )
        return files
