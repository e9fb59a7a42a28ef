"""Which names of a directory changed since we last asked: exact, from Linux's inotify.

A dir listing kept across plans (`os_disk_view.ListingCache`) is otherwise read again whenever
the dir's times moved. Under a stream of writes they always have: each flush of sessions.json
creates, exchanges and removes a temp file there, and a dry run re-read 4,500 names (~3 ms of
the loop) to find them as they were.

The kernel queues an inotify event inside the very system call that creates, removes or renames
an entry, so a read of the queue made after a change has returned holds that change's event.
A listing read after its watch was added, plus every name the events since then touched, each
looked at again (`os.lstat`) when asked, is therefore exactly the dir as it is then. Where that
cannot be told, `touched` answers None and the caller reads the dir: no inotify (not Linux, no
instances or watches left), a file system whose changes may come from another machine (only
local ones are watched: `LOCAL_FILE_SYSTEMS`), a queue that overflowed, or a watch the kernel
dropped (the dir removed, moved or unmounted).
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import os
import struct
import threading
import weakref
from collections.abc import Callable, Iterable

IN_MOVED_FROM = 0x40
IN_MOVED_TO = 0x80
IN_CREATE = 0x100
IN_DELETE = 0x200
IN_DELETE_SELF = 0x400
IN_MOVE_SELF = 0x800
IN_UNMOUNT = 0x2000
IN_Q_OVERFLOW = 0x4000
IN_IGNORED = 0x8000
IN_ONLYDIR = 0x1000000
IN_NONBLOCK = os.O_NONBLOCK
IN_CLOEXEC = os.O_CLOEXEC

NAME_EVENTS = IN_MOVED_FROM | IN_MOVED_TO | IN_CREATE | IN_DELETE
WATCH_LOST = IN_DELETE_SELF | IN_MOVE_SELF | IN_UNMOUNT | IN_IGNORED
WATCH_MASK = NAME_EVENTS | IN_DELETE_SELF | IN_MOVE_SELF | IN_ONLYDIR

LOCAL_FILE_SYSTEMS = frozenset(
    {"ext2", "ext3", "ext4", "xfs", "btrfs", "tmpfs", "ramfs", "f2fs", "zfs", "overlay"}
    | {"jfs", "reiserfs", "bcachefs"}
)
"""Where every change to a dir goes through this kernel, so inotify sees it (not NFS, SMB,
9p, virtiofs or FUSE: another machine's or process's changes there raise no event here)."""

_EVENT = struct.Struct("iIII")  # wd, mask, cookie, len; then `len` bytes of NUL-padded name
_READ_BYTES = 1 << 16


def mount_type(path: str, mountinfo: Iterable[str]) -> str | None:
    """The file system type of the mount holding `path` (absolute, symlink-free), from the
    lines of /proc/self/mountinfo: the one whose mount point is the longest prefix of it."""
    best, kind = -1, None
    for line in mountinfo:
        left, sep, right = line.partition(" - ")
        fields = left.split()
        if not sep or len(fields) < 5 or not right:
            continue
        point = _unescape(fields[4])
        inside = path == point or path.startswith(point.rstrip("/") + "/")
        if inside and len(point) > best:
            best, kind = len(point), right.split()[0]
    return kind


def _unescape(field: str) -> str:
    """Undo mountinfo's octal escapes (a space in a mount point is written `\\040`)."""
    if "\\" not in field:
        return field
    out, i = [], 0
    while i < len(field):
        if field[i] == "\\" and field[i + 1 : i + 4].isdigit():
            out.append(chr(int(field[i + 1 : i + 4], 8)))
            i += 4
        else:
            out.append(field[i])
            i += 1
    return "".join(out)


def _close_quietly(fd: int) -> None:
    with contextlib.suppress(OSError):
        os.close(fd)


def _is_local(directory: str) -> bool:
    try:
        with open("/proc/self/mountinfo", encoding="utf-8", errors="replace") as mounts:
            return mount_type(directory, mounts) in LOCAL_FILE_SYSTEMS
    except OSError:
        return False


class DirChanges:
    """One inotify instance and a watch per directory asked about. Thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._fd: int | None = None
        self._add_watch: Callable[[int, bytes, int], int] | None = None
        self._rm_watch: Callable[[int, int], int] | None = None
        self._wd_of: dict[str, int] = {}
        self._dirs_of: dict[int, set[str]] = {}  # one inode may have two paths (bind mounts)
        self._touched: dict[str, set[str]] = {}
        self._lost: set[str] = set()
        self._refused: set[str] = set()  # dirs we do not watch (not local, no watch left)
        self._open()

    @property
    def available(self) -> bool:
        return self._fd is not None

    def _open(self) -> None:
        if not os.path.exists("/proc/self/mountinfo"):
            return  # not Linux
        try:
            libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
            init, add, rm = libc.inotify_init1, libc.inotify_add_watch, libc.inotify_rm_watch
        except (OSError, AttributeError):
            return
        init.argtypes, init.restype = [ctypes.c_int], ctypes.c_int
        add.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_uint32]
        add.restype = ctypes.c_int
        rm.argtypes, rm.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
        fd = init(IN_NONBLOCK | IN_CLOEXEC)
        if fd >= 0:
            self._fd, self._add_watch, self._rm_watch = fd, add, rm
            # Closed with this object at the latest: an instance is a per-user resource (128
            # by default), and a test process makes many registries.
            weakref.finalize(self, _close_quietly, fd)

    def start(self, directory: str) -> bool:
        """Watch `directory` from now on (forgetting what touched it so far): call it before
        reading the dir, so that any change the read may have missed is touched after it.
        False when it cannot be watched."""
        with self._lock:
            self._drain()
            if self._fd is None or self._add_watch is None or directory in self._refused:
                return False
            if directory not in self._wd_of and not _is_local(directory):
                self._refused.add(directory)
                return False
            self._forget(directory)
            # Added again each time: the path may name another dir than the one watched
            # (moved away and made anew); the same dir gives back the same watch.
            wd = self._add_watch(self._fd, os.fsencode(directory), WATCH_MASK)
            if wd < 0:
                return False  # gone, or no watch left (ENOSPC): read it each time
            self._wd_of[directory] = wd
            self._dirs_of.setdefault(wd, set()).add(directory)
            self._lost.discard(directory)
            self._touched[directory] = set()
            return True

    def _forget(self, directory: str) -> None:
        """Stop attributing events to `directory`; drop its watch if nothing else uses it."""
        wd = self._wd_of.pop(directory, None)
        self._touched.pop(directory, None)
        if wd is None:
            return
        dirs = self._dirs_of.get(wd, set())
        dirs.discard(directory)
        if not dirs:
            self._dirs_of.pop(wd, None)
            if self._fd is not None and self._rm_watch is not None:
                self._rm_watch(self._fd, wd)  # EINVAL if the kernel dropped it already

    def touched(self, directory: str) -> set[str] | None:
        """The names whose entries were created, removed or renamed since `start` or the last
        call (and are worth an `os.lstat` now), or None when that cannot be told: read the dir
        and `start` again."""
        with self._lock:
            self._drain()
            if directory in self._lost or directory not in self._wd_of:
                return None
            found = self._touched.get(directory)
            if found is None:
                return None
            self._touched[directory] = set()
            return found

    def _drain(self) -> None:
        """Read every queued event: names into `_touched`, lost watches into `_lost`."""
        if self._fd is None:
            return
        while True:
            try:
                data = os.read(self._fd, _READ_BYTES)
            except BlockingIOError:
                return
            except OSError:
                self._lose_all()
                return
            offset = 0
            while offset + _EVENT.size <= len(data):
                wd, mask, _cookie, size = _EVENT.unpack_from(data, offset)
                offset += _EVENT.size
                name = data[offset : offset + size].rstrip(b"\0")
                offset += size
                if mask & IN_Q_OVERFLOW:
                    self._lose_all()  # events were dropped: no dir can be told
                    continue
                dirs = self._dirs_of.get(wd, ())
                if mask & WATCH_LOST:
                    self._lost.update(dirs)
                elif name and mask & NAME_EVENTS:
                    text = os.fsdecode(name)
                    for directory in dirs:
                        touched = self._touched.get(directory)
                        if touched is not None:
                            touched.add(text)

    def _lose_all(self) -> None:
        self._lost.update(self._wd_of)
