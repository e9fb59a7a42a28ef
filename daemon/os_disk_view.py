"""The planner's `DiskView` answered from the real file system, one snapshot per plan.

A plan reads each dir once. The daemon also passes a `ListingCache`, which keeps a dir's
listing across plans for as long as the dir provably did not change (see `ListingCache`): a
sessions dir of 100k transcripts costs tens of milliseconds to read, the rest of a warm dry run
less than that.
"""

from __future__ import annotations

import enum
import math
import os
import stat
import threading
import time
from collections.abc import Collection

import msgspec
from sessiond.daemon.dir_changes import DirChanges
from sessiond.daemon.store_files import JOURNAL_SUFFIX, STORE_LOCK_SUFFIX, is_own_temp
from sessiond.engine.disk_view import DirFile, DirListing, absolute

RACY_NS = 2_000_000_000
"""A dir whose mtime or ctime is this close to the clock when it is read is read again next
time: a change in the same clock tick as the one before would leave both times as they were.
(git's "racily clean" rule.) This is the window for a file system that stamps whole seconds."""

FINE_RACY_NS = 100_000_000
"""The window for a dir stamped with sub-second times: Linux stamps from a clock that moves
once a scheduler tick (10 ms at the slowest, HZ=100), so 100 ms is ten ticks of margin. The
daemon reads a freshly copied or restored sessions dir at start; with the 2 s window that read
could not be kept, and the first plans each read 90k names again."""


class OsDirFile:
    """A regular file directly inside a sessions dir.

    Size and mtime are read on first use: most plans need them for a few files only (orphans
    old enough to sweep), and a stat per transcript was the largest cost of a plan on a big
    store. A file that vanishes before it is asked reads as empty and brand new, so no rule
    can take it for old.
    """

    __slots__ = ("_mtime_ms", "_size", "canonical", "name", "path")

    def __init__(
        self,
        path: str,
        canonical: str,
        name: str,
        size: int | None = None,
        mtime_ms: float | None = None,
    ) -> None:
        self.path = path
        self.canonical = canonical
        self.name = name
        self._size = size
        self._mtime_ms = mtime_ms

    def _stat(self) -> None:
        self._size, self._mtime_ms = stat_of(self.path)

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


def stat_of(path: str) -> tuple[int, float]:
    """(size, mtime ms) following links; a file gone since it was listed is empty and new."""
    try:
        st = os.stat(path)
    except OSError:
        return 0, math.inf
    return st.st_size, st.st_mtime_ns / 1e6


class _Scan(msgspec.Struct):
    """One read of a dir: every entry's name and whether it is a symlink, and its regular
    files (lock and journal files left out) as paths and names, in the same order. The
    listing made from it holds these very lists and the links' keys as its entries: a dir of
    90k transcripts is kept for the daemon's life, and a (path, name) pair per file, copies of
    the lists and a set of the names cost ~15 MB more."""

    links: dict[str, bool]
    paths: list[str]
    names: list[str]
    listing: DirListing | None = None  # made on first use, for a dir that is its own realpath
    others: frozenset[str] = frozenset()  # entries neither links nor listed files (dirs, ...)

    def state(self, name: str) -> _EntryState:
        link = self.links.get(name)
        if link is None:
            return _EntryState.ABSENT
        if link:
            return _EntryState.LINK
        return _EntryState.OTHER if name in self.others else _EntryState.LISTED


class _EntryState(enum.Enum):
    """What one name of a dir is, as far as a listing cares."""

    ABSENT = "absent"
    LINK = "link"
    LISTED = "listed"  # a regular file, neither a lock nor a journal: planned and counted
    OTHER = "other"  # a dir, a fifo, a lock or journal file: present, never planned


def _state_on_disk(directory: str, name: str) -> _EntryState:
    try:
        mode = os.lstat(os.path.join(directory, name)).st_mode
    except FileNotFoundError:
        return _EntryState.ABSENT
    except OSError:
        return _EntryState.OTHER  # there, but not ours to look at (EACCES on a path below)
    if stat.S_ISLNK(mode):
        return _EntryState.LINK
    if stat.S_ISREG(mode) and not _never_listed(name):
        return _EntryState.LISTED
    return _EntryState.OTHER


def _never_listed(name: str) -> bool:
    # A daemon's lock (daemon/store_lock.py) or a store's cleanup journal
    # (daemon/journal.py): never planned, never counted.
    return name.endswith((STORE_LOCK_SUFFIX, JOURNAL_SUFFIX))


def _unchanged(directory: str, scan: _Scan, touched: set[str]) -> bool:
    """Whether `scan` still holds for every `touched` name, looked at now. A flush's temp,
    exchanged and removed, touches the store file and leaves it a listed file: unchanged.
    Anything else that changed means a new read: a read keeps the order the kernel lists
    the dir in, which the plan's file operations follow (as the reference's do)."""
    for name in touched:
        if name[0] == "." and is_own_temp(name):
            continue
        if _state_on_disk(directory, name) is not scan.state(name):
            return False
    return True


DirSig = tuple[int, int, int, int]


def racy_window(sig: DirSig) -> int:
    """How close to the clock a dir's times may be before a read of it cannot be kept:
    times that are whole seconds may come from a file system with a coarse clock."""
    coarse = sig[2] % 1_000_000_000 == 0 and sig[3] % 1_000_000_000 == 0
    return RACY_NS if coarse else FINE_RACY_NS


def _dir_sig(directory: str) -> DirSig | None:
    try:
        st = os.stat(directory)
    except OSError:
        return None
    return (st.st_dev, st.st_ino, st.st_mtime_ns, st.st_ctime_ns)


def _scan_dir(directory: str) -> _Scan | None:
    try:
        with os.scandir(directory) as found:
            entries = list(found)
    except OSError:
        return None
    links: dict[str, bool] = {}
    paths: list[str] = []
    names: list[str] = []
    others: list[str] = []
    for entry in entries:
        name = entry.name
        if name[0] == "." and is_own_temp(name):
            continue  # a write of ours in progress: not part of the dir's state
        try:
            link = entry.is_symlink()
            regular = not link and entry.is_file(follow_symlinks=False)
        except OSError:
            link = regular = False
        links[name] = link
        if regular and not _never_listed(name):
            paths.append(entry.path)
            names.append(name)
        elif not link:
            others.append(name)
    return _Scan(links, paths, names, None, frozenset(others))


class ListingCache:
    """Dir reads kept across plans (the daemon holds one for its life).

    With `exact_changes` (the daemon's), a dir on a local file system is watched from before
    its read, and a kept read answers while every name changed since is as it was
    (`dir_changes.DirChanges`): a dir a flush just touched is not read again.

    Otherwise, or where a dir cannot be watched, a kept read answers while the dir's device,
    inode, mtime and ctime are what they were when it was read, and only if that read was not
    racy: any entry added, removed or renamed sets the dir's mtime and ctime to the clock's
    time, so a read made more than `racy_window` after the last change stays exact until the
    next one.

    Contents and sizes of files are never kept (they change without the dir changing): they
    are asked of the disk per plan.
    """

    def __init__(self, racy_ns: int | None = None, *, exact_changes: bool = False) -> None:
        self._racy_ns = racy_ns  # None: `racy_window` of each dir
        self._lock = threading.Lock()
        self._scans: dict[str, tuple[DirSig, _Scan]] = {}
        self._last: dict[str, DirListing] = {}  # each dir's latest listing, kept or not
        self._changes = DirChanges() if exact_changes else None
        self._watched: set[str] = set()  # dirs whose kept read the events keep current
        self._reading: dict[str, int] = {}  # a read's turn per dir: only the last one is kept
        self.reads = 0
        self.reuses = 0

    def previous(self, directory: str) -> DirListing | None:
        return self._last.get(directory)

    def remember(self, listing: DirListing) -> None:
        with self._lock:
            self._last[listing.directory] = listing

    def scan(self, directory: str) -> _Scan | None:
        sig = _dir_sig(directory)
        turn = 0
        if sig is not None:
            with self._lock:
                kept = self._scans.get(directory)
                if kept is not None and directory in self._watched and self._changes is not None:
                    touched = None if kept[0][:2] != sig[:2] else self._changes.touched(directory)
                    if touched is not None and _unchanged(directory, kept[1], touched):
                        self._scans[directory] = (sig, kept[1])
                        self.reuses += 1
                        return kept[1]
                    self._watched.discard(directory)  # changed, another dir now, or events lost
                elif kept is not None and kept[0] == sig:
                    self.reuses += 1
                    return kept[1]
                turn = self._reading[directory] = self._reading.get(directory, 0) + 1
        # Watched from before the read: a change the read may miss is among the names touched.
        watched = sig is not None and self._changes is not None and self._changes.start(directory)
        # The clock before the read: a change after this instant is stamped no earlier than
        # a tick before it, so only times within the window of it can hide one.
        now = time.time_ns()
        scan = _scan_dir(directory)
        self.reads += 1
        if scan is None or sig is None:
            return scan
        window = racy_window(sig) if self._racy_ns is None else self._racy_ns
        racy = now - sig[2] < window or now - sig[3] < window
        with self._lock:
            if self._reading.get(directory) != turn:
                pass  # a later read started meanwhile (another thread): its result is kept
            elif watched:
                self._watched.add(directory)
                self._scans[directory] = (sig, scan)
            elif racy or _dir_sig(directory) != sig:
                self._watched.discard(directory)
                self._scans.pop(directory, None)
            else:
                self._watched.discard(directory)
                self._scans[directory] = (sig, scan)
        return scan


_UNKNOWN: dict[str, bool] = {}  # sentinel: no listing asked for yet


class OsDiskView:
    """DiskView over the real file system, as one consistent snapshot for one plan.

    Directory listings are read once and answer `realpath`/`exists` for the files directly in a
    directory whose own path is already symlink-free: the common case, and the one that would
    otherwise cost a syscall chain per row. Anything else falls through to the OS.
    """

    def __init__(self, cache: ListingCache | None = None) -> None:
        self._cache = cache
        self._listings: dict[str, dict[str, bool] | None] = {}
        self._scans: dict[str, _Scan | None] = {}
        self._plain: dict[str, bool] = {}

    def _scan(self, directory: str) -> _Scan | None:
        """One directory read per plan (or fewer, with a cache), shared by every question."""
        if directory not in self._scans:
            if self._cache is not None:
                self._scans[directory] = self._cache.scan(directory)
            else:
                self._scans[directory] = _scan_dir(directory)
        return self._scans[directory]

    def _is_own_realpath(self, directory: str) -> bool:
        known = self._plain.get(directory)
        if known is None:
            known = self._plain[directory] = os.path.realpath(directory) == directory
        return known

    def _listing(self, directory: str) -> dict[str, bool] | None:
        """name -> is_symlink for a symlink-free directory, else None (unknown: ask the OS)."""
        if directory in self._listings:
            return self._listings[directory]
        listing: dict[str, bool] | None = None
        if self._is_own_realpath(directory):
            scan = self._scan(directory)
            if scan is not None:
                listing = scan.links
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

    def listing(self, directory: str) -> DirListing:
        scan = self._scan(directory)
        if scan is None:
            return DirListing(directory, [], [], [], frozenset(), False)
        # In a symlink-free dir given as a normal absolute path, `entry.path` of a regular file
        # is already canonical (a dot-name gives "/.", which abspath keeps as it is).
        own = self._is_own_realpath(directory) and directory == absolute(directory)
        if own and scan.listing is not None:
            return scan.listing
        paths = scan.paths
        names = scan.names
        canonicals = paths if own else [self.canonical(p) for p in paths]
        plain = own and directory != "/" and not any(scan.links.values())
        previous = self._cache.previous(directory) if self._cache is not None else None
        entries = scan.links.keys()  # never changed after the read
        if (
            own
            and previous is not None
            and previous.plain == plain
            and previous.names == names
            and previous.entries == entries
        ):
            # Read again (the dir's times moved, or were too recent to trust) and found as it
            # was: the same listing, so what plans keep by listing stays good.
            listing = previous
        else:
            listing = DirListing(directory, paths, canonicals, names, entries, plain, previous)
        if own:
            scan.listing = listing
        if self._cache is not None:
            self._cache.remember(listing)
        return listing

    def list_files(self, directory: str) -> list[DirFile]:
        found = self.listing(directory)
        return [
            OsDirFile(path, canonical, name)
            for path, canonical, name in zip(
                found.paths, found.canonicals, found.names, strict=True
            )
        ]

    def file_stat(self, path: str) -> tuple[int, float]:
        return stat_of(path)
