"""The narrow read-only seam between the pure cleanup planner and the file system.

The planner asks only these questions of the disk; the daemon's `OsDiskView` answers them from
the real file system. Keeping the seam this small is what lets a
dry run and an apply share one plan.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Collection, Set
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

    def listing(self, directory: str) -> DirListing:
        """`list_files` as one `DirListing` (empty when unreadable)."""

    def file_stat(self, path: str) -> tuple[int, float]:
        """(size, mtime in ms) of a listed file; (0, inf) when it is gone: never old."""


def absolute(path: str) -> str:
    """`os.path.abspath`, skipped for paths that are already absolute and normal (most are)."""
    if path.startswith("/") and "/." not in path and "//" not in path and not path.endswith("/"):
        return path
    return os.path.abspath(path)


def canonical(view: DiskView, path: str) -> str:
    """`realpath` when it exists, else the normalised absolute path (the reference's rule)."""
    return view.canonical(path)


class DirListing:
    """The regular files directly in one dir, as a plan reads them: path, canonical path and
    name of each, in directory order, plus what plans ask of the dir as a whole.

    Built once per version of the dir and shared by the plans that see that version (the
    daemon keeps it while the dir is unchanged): nothing here is a file's size or mtime,
    which change without the dir changing and are asked of the `DiskView` per plan.

    `plain`: the dir is given as its own symlink-free path and holds no symlink, so every path
    directly in it is its own canonical path and exists exactly when its name is listed
    (`entries`, files and dirs alike). The planner answers such a dir from names alone.
    """

    __slots__ = (
        "_by_canonical",
        "_by_name",
        "_kinds",
        "_previous",
        "canonicals",
        "directory",
        "entries",
        "has_trajectory",
        "names",
        "paths",
        "plain",
    )

    def __init__(
        self,
        directory: str,
        paths: list[str],
        canonicals: list[str],
        names: list[str],
        entries: Set[str],
        plain: bool,
        previous: DirListing | None = None,
    ) -> None:
        self.directory = directory
        self.paths = paths
        self.canonicals = canonicals
        self.names = names
        self.entries = entries
        self.plain = plain
        self.has_trajectory = any(n.endswith(TRAJECTORY_SUFFIXES) for n in entries)
        self._by_canonical: dict[str, int] | None = None
        self._by_name: dict[str, int] | None = None
        self._kinds: tuple[list[int], list[int]] | None = None
        # The dir's listing before this one: names both hold keep their kinds (a dir of 100k
        # transcripts changes by a few names between reads).
        self._previous = previous if previous is not None and previous._kinds else None
        if previous is not None:
            previous._previous = None  # one listing back at most

    def __len__(self) -> int:
        return len(self.names)

    @property
    def by_canonical(self) -> dict[str, int]:
        """Canonical path -> position; made on first use and kept with the listing."""
        if self._by_canonical is None:
            self._by_canonical = {c: i for i, c in enumerate(self.canonicals)}
        return self._by_canonical

    @property
    def by_name(self) -> dict[str, int]:
        """Name -> position (names are unique in one dir); made on first use and kept."""
        if self._by_name is None:
            self._by_name = {n: i for i, n in enumerate(self.names)}
        return self._by_name

    def kinds(self, kind: Callable[[str], tuple[bool, bool]]) -> tuple[list[int], list[int]]:
        """Positions of (archives, sweepable files) by `kind(name)`; kept with the listing."""
        if self._kinds is None:
            known: dict[str, tuple[bool, bool]] = {}
            before = self._previous
            if before is not None and before._kinds is not None:
                was_archive = {before.names[i] for i in before._kinds[0]}
                was_sweepable = {before.names[i] for i in before._kinds[1]}
                known = {n: (n in was_archive, n in was_sweepable) for n in before.names}
            self._previous = None
            archives: list[int] = []
            sweepable: list[int] = []
            for i, name in enumerate(self.names):
                found = known.get(name)
                is_archive, is_sweepable = found if found is not None else kind(name)
                if is_archive:
                    archives.append(i)
                if is_sweepable:
                    sweepable.append(i)
            self._kinds = (archives, sweepable)
        return self._kinds

    @classmethod
    def of_files(cls, directory: str, files: list[DirFile], plain: bool = False) -> DirListing:
        """A listing of `files` (a view that lists files but has no listing of its own)."""
        return cls(
            directory,
            [f.path for f in files],
            [f.canonical for f in files],
            [f.name for f in files],
            frozenset(f.name for f in files),
            plain,
        )


TRAJECTORY_SUFFIXES = (".trajectory.jsonl", ".trajectory-path.json")
