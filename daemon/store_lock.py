"""One daemon per store: a kernel lock on a file beside each store and one in the state dir.

The lock files are `<state dir>/sessiond.lock` and `<store path>.sessiond.lock`, never renamed.
Each is held with `fcntl.flock` (LOCK_EX), which the kernel drops when its process dies, kill -9
included: a crash leaves no lock behind (a file, perhaps, which the next daemon simply locks
again). The file's text says who holds it (pid, URL, agent) as JSON, for the message of whoever
is refused.

Why flock rather than a POSIX record lock (F_SETLK): a record lock needs a descriptor open for
writing, and a file held open for writing keeps its filesystem from being remounted read-only
(the disk-fault runs do exactly that under a live daemon). flock works on a read-only descriptor
and belongs to that open file, not to the process, so nothing else this process opens or closes
can drop it. The holder's pid is read back from the kernel's own table (/proc/locks) when it can
be, so a file an earlier holder wrote can never name the wrong process.

A clean exit removes the daemon's lock files. That opens the classic race (a starter that opened
the old file locks an unlinked inode), which `LockSet.claim` closes by checking, once it holds
the lock, that the path still names the file it locked. `holder_of` (used by other processes,
such as the CLI) only asks: it never locks and never creates a file.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import time
from dataclasses import dataclass
from typing import Any

from sessiond.daemon.store_files import STORE_LOCK_SUFFIX

STATE_DIR_LOCK = "sessiond.lock"


def store_lock_path(store_path: str) -> str:
    return store_path + STORE_LOCK_SUFFIX


def state_dir_lock_path(state_dir: str) -> str:
    return os.path.join(state_dir, STATE_DIR_LOCK)


@dataclass(frozen=True, slots=True)
class Holder:
    """The process that holds a lock, and what it published about itself."""

    pid: int
    url: str | None
    agent_id: str | None
    lock_path: str

    def describe(self) -> str:
        where = f"at {self.url}" if self.url else "(still starting: no URL yet)"
        return f"sessiond pid {self.pid} {where}"


class HeldElsewhere(Exception):
    """Another live process holds the lock on `subject` (a store path or a state dir)."""

    def __init__(self, what: str, subject: str, holder: Holder) -> None:
        super().__init__(f"{what} {subject} is already served by {holder.describe()}")
        self.subject = subject
        self.holder = holder


def _kernel_holders(fd: int) -> list[int]:
    """Pids holding an exclusive flock on `fd`'s file, from /proc/locks ([] if unreadable)."""
    inode = os.fstat(fd).st_ino
    pids = []
    with contextlib.suppress(OSError), open("/proc/locks", encoding="ascii") as table:
        for line in table:
            fields = line.split()
            # "1: FLOCK  ADVISORY  WRITE 1234 00:2e:5678 0 EOF"; blocked waiters start "1: ->"
            if (
                fields[1:2] == ["FLOCK"]
                and fields[3:4] == ["WRITE"]
                and fields[4:5] != []
                and fields[4].isdigit()
                and fields[5:6] != []
                and fields[5].rpartition(":")[2] == str(inode)
            ):
                pids.append(int(fields[4]))
    return pids


def _published(fd: int) -> dict[str, Any]:
    with contextlib.suppress(OSError, ValueError):
        loaded = json.loads(os.pread(fd, 65536, 0) or b"{}")
        if isinstance(loaded, dict):
            return loaded
    return {}


def _is_locked(fd: int) -> bool:
    """Whether some open file holds the lock: try a shared lock and let go of it at once."""
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except OSError as exc:
        if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
            return True
        raise
    fcntl.flock(fd, fcntl.LOCK_UN)
    return False


def _holder(fd: int, lock_path: str) -> Holder:
    info = _published(fd)
    written = info.get("pid") if isinstance(info.get("pid"), int) else None
    kernel = _kernel_holders(fd)
    if kernel and written not in kernel:
        info = {}  # written by an earlier holder, or not written yet
    pid = kernel[0] if kernel and written not in kernel else written or 0
    url, agent = info.get("url"), info.get("agentId")
    return Holder(
        pid=pid,
        url=url if isinstance(url, str) else None,
        agent_id=agent if isinstance(agent, str) else None,
        lock_path=lock_path,
    )


def holder_of(lock_path: str) -> Holder | None:
    """Who holds `lock_path` now, asked without keeping a lock or creating anything; None:
    nobody. (The probe takes a shared lock for an instant, which no holder ever waits on.)"""
    try:
        fd = os.open(lock_path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        return _holder(fd, lock_path) if _is_locked(fd) else None
    finally:
        os.close(fd)


@dataclass(slots=True)
class _Held:
    fd: int
    lock_path: str
    info: dict[str, Any]


class LockSet:
    """The locks one daemon holds, by subject, and what it publishes in each of them."""

    def __init__(self) -> None:
        self.held: dict[str, _Held] = {}
        self.url: str | None = None

    def claim(self, what: str, subject: str, lock_path: str, **info: Any) -> bool:
        """Lock `subject` (a `what`: "store", "state dir") for this process; raises HeldElsewhere
        when a live process has it.

        False when the lock file cannot be created at all (a read-only directory): the subject is
        then served unlocked, since nothing can be written there by this daemon either.
        """
        if subject in self.held:
            return True
        busy = 0
        while True:
            try:
                fd = os.open(lock_path, os.O_RDONLY | os.O_CLOEXEC)
            except FileNotFoundError:
                if not _create(lock_path):
                    return False
                continue
            except PermissionError:
                return False
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as exc:
                if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN):
                    os.close(fd)
                    raise
                holder = _holder(fd, lock_path)
                os.close(fd)
                if holder.pid == 0 and busy < 50:
                    # No holder to name: a `holder_of` probe's instant shared lock; try again.
                    busy += 1
                    time.sleep(0.01)
                    continue
                raise HeldElsewhere(what, subject, holder) from None
            if _same_file(fd, lock_path):
                break
            os.close(fd)  # a holder that was leaving removed it: lock the file at the path now
        held = _Held(fd, lock_path, {"pid": os.getpid(), **info})
        self.held[subject] = held
        self._write(held)
        return True

    def publish(self, url: str) -> None:
        """Put the daemon's URL in every lock file, once it is listening."""
        self.url = url
        for held in self.held.values():
            self._write(held)

    def release(self, subject: str) -> None:
        held = self.held.pop(subject, None)
        if held is not None:
            with contextlib.suppress(OSError):
                os.unlink(held.lock_path)
            os.close(held.fd)

    def release_all(self) -> None:
        for subject in list(self.held):
            self.release(subject)

    def _write(self, held: _Held) -> None:
        """Replace the file's text in place (never renamed: the lock is on this inode). A short
        descriptor for writing: the one that holds the lock stays read-only."""
        info = dict(held.info, url=self.url) if self.url else held.info
        data = json.dumps(info, sort_keys=True).encode() + b"\n"
        with contextlib.suppress(OSError):
            fd = os.open(held.lock_path, os.O_WRONLY | os.O_CLOEXEC)
            try:
                if _same_inode(os.fstat(fd), os.fstat(held.fd)):
                    os.ftruncate(fd, 0)
                    os.pwrite(fd, data, 0)
            finally:
                os.close(fd)


def _create(path: str) -> bool:
    """Create an empty lock file; False when this directory cannot take one (read-only)."""
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o600))
    except OSError as exc:
        if exc.errno in (errno.EACCES, errno.EROFS, errno.EPERM):
            return False
        raise
    return True


def _same_inode(a: os.stat_result, b: os.stat_result) -> bool:
    return (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)


def _same_file(fd: int, path: str) -> bool:
    try:
        return _same_inode(os.fstat(fd), os.stat(path))
    except FileNotFoundError:
        return False
