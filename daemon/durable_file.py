"""The only code that writes to a sessions dir: durable store writes and a plan's file operations.

Order is the guarantee: the reduced sessions.json is on disk (fsynced, renamed, directory
fsynced) before any transcript is archived or removed, so a crash never leaves a row pointing at
a file that is gone. A file operation that fails is reported, never counted as done.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import platform
import queue
import sys
import threading
import time
from collections.abc import Callable
from typing import Any, BinaryIO, TypeVar

from sessiond.daemon.fault_hooks import fault_point
from sessiond.daemon.file_version import (
    HASH_LIMIT,
    DiskSig,
    ExternalChange,
    FileData,
    Replaced,
    Snapshot,
    digest_of,
    read_with_stat,
    still_version,
)
from sessiond.daemon.store_files import TEMP_PREFIX, TEMP_SUFFIX, temp_name
from sessiond.daemon.store_read import read_store as read_store
from sessiond.daemon.store_read import read_store_bytes as read_store_bytes
from sessiond.engine.cleanup.apply_flow import FileOpsOutcome
from sessiond.engine.cleanup.plan import FileOps


def _log() -> Any:
    """The stores' logger, imported when a line is logged: the local CLI applies through this
    module and logs nothing here, and structlog's import (with rich beside it) is tens of
    milliseconds of a fresh process."""
    import structlog

    return structlog.get_logger("sessiond.stores")


_T = TypeVar("_T")

STORE_FILE_MODE = 0o600


class StoreWriteError(OSError):
    """A durable write did not complete; the old file is untouched and no temp file is left."""


def fsync_directory(directory: str) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


WriteObserver = Callable[[str, float, bool], None]
write_observers: list[WriteObserver] = []
"""Told (path, seconds, succeeded) after every durable write: /metrics' flush durations."""


def write_durably(
    path: str, data: bytes, precheck: Callable[[], None] | None = None
) -> os.stat_result:
    """temp (0600, same dir) -> write -> fsync -> rename -> fsync dir; returns the new stat.

    `precheck` runs after the temp file is durable and just before the rename; whatever it
    raises aborts the write (the daemon checks there that nobody replaced the target meanwhile).
    """
    return _observed(path, lambda: _write_durably(path, data, precheck))


def _observed(path: str, write: Callable[[], _T]) -> _T:
    """Run one durable write of `path`, then tell `write_observers` how long it took."""
    if not write_observers:
        return write()
    started = time.perf_counter()
    ok = False
    try:
        result = write()
        ok = True
        return result
    finally:
        for observer in write_observers:
            observer(path, time.perf_counter() - started, ok)


def _write_durably(path: str, data: bytes, precheck: Callable[[], None] | None) -> os.stat_result:
    temp, fd = _durable_temp(path, data)
    try:
        try:
            if precheck is not None:
                precheck()
            fault_point("after-precheck")
            os.replace(temp, path)
        except BaseException as exc:
            with contextlib.suppress(OSError):
                os.unlink(temp)
            if isinstance(exc, OSError):
                raise _write_error(path, exc) from exc
            raise
        _durable_rename(path)
        return os.fstat(fd)
    except OSError as exc:  # renamed but not known durable: the caller retries the write
        raise _write_error(path, exc) from exc
    finally:
        os.close(fd)


def _write_error(path: str, exc: OSError) -> StoreWriteError:
    if isinstance(exc, StoreWriteError):
        return exc
    return StoreWriteError(exc.errno or errno.EIO, f"{path}: {exc.strerror or exc}")


def _write_all(fd: int, data: FileData) -> None:
    """Every byte of `data`; pieces go out by `os.writev`, up to `_IOV_MAX` a call."""
    if isinstance(data, bytes):
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        return
    for start in range(0, len(data), _IOV_MAX):
        batch = data[start : start + _IOV_MAX]
        want = sum(map(len, batch))
        written = os.writev(fd, batch)
        if written < want:  # short write (a signal, a nearly full disk): the rest one by one
            _write_all(fd, b"".join(bytes(piece) for piece in batch)[written:])


_IOV_MAX = 1024


def _durable_temp(path: str, data: FileData, temp: str | None = None) -> tuple[str, int]:
    """A fsynced temp file beside `path` (or at `temp`) holding `data`, and its fd (still open:
    its fstat after the rename is the new version's). Any failure is a `StoreWriteError` and
    leaves no temp."""
    directory = os.path.dirname(os.path.abspath(path)) or "."
    if temp is None:
        temp = os.path.join(directory, temp_name(os.path.basename(path)))
    else:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp)  # an earlier attempt's, whose write failed
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL
    try:
        # Inside the conversion too: a read-only or unwritable directory fails right here
        # (EROFS, EACCES), and any OSError other than StoreWriteError killed the flusher.
        # The directory is made only when missing: each system call is one more wait for
        # the interpreter lock, which under load the event loop holds most of the time.
        try:
            fd = os.open(temp, flags, STORE_FILE_MODE)
        except FileNotFoundError:
            os.makedirs(directory, exist_ok=True)
            fd = os.open(temp, flags, STORE_FILE_MODE)
    except OSError as exc:
        raise _write_error(path, exc) from exc
    try:
        fault_point("temp-open")
        _write_all(fd, data)
        fault_point("before-fsync")
        os.fsync(fd)
        fault_point("after-temp-write")
    except BaseException as exc:
        os.close(fd)
        with contextlib.suppress(OSError):
            os.unlink(temp)
        if isinstance(exc, OSError):
            raise _write_error(path, exc) from exc
        raise
    return temp, fd


def _durable_rename(path: str) -> None:
    """After the rename: the directory fsynced, so the rename itself survives a power cut."""
    fault_point("after-rename")
    fsync_directory(os.path.dirname(os.path.abspath(path)) or ".")
    fault_point("durable")


AT_FDCWD = -100
RENAME_NOREPLACE = 1
RENAME_EXCHANGE = 2
# renameat2's system call number where glibc (before 2.28) or musl lack the wrapper.
_SYS_RENAMEAT2 = {"x86_64": 316, "aarch64": 276, "riscv64": 276, "ppc64le": 357, "s390x": 347}
# What renameat2 answers where a flag, or the call itself, is not supported.
_UNSUPPORTED = {errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP}


def _load_renameat2() -> Callable[[bytes, bytes, int], int] | None:
    try:
        libc = ctypes.CDLL(None, use_errno=True)
    except OSError:
        return None
    wrapper = getattr(libc, "renameat2", None)
    if wrapper is not None:
        wrapper.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p]
        wrapper.argtypes.append(ctypes.c_uint)
        wrapper.restype = ctypes.c_int
        return lambda src, dst, flags: int(wrapper(AT_FDCWD, src, AT_FDCWD, dst, flags))
    number = _SYS_RENAMEAT2.get(platform.machine())
    if number is None or not hasattr(libc, "syscall"):
        return None
    syscall = libc.syscall
    syscall.restype = ctypes.c_long
    return lambda src, dst, flags: int(
        syscall(
            ctypes.c_long(number),
            ctypes.c_int(AT_FDCWD),
            ctypes.c_char_p(src),
            ctypes.c_int(AT_FDCWD),
            ctypes.c_char_p(dst),
            ctypes.c_uint(flags),
        )
    )


_renameat2 = _load_renameat2() if sys.platform == "linux" else None


def rename_atomically(source: str, target: str, flags: int) -> bool:
    """`renameat2(source, target, flags)`; False when this system or file system does not
    support it (the caller falls back to a plain rename), OSError for any other failure."""
    if _renameat2 is None:
        return False
    if _renameat2(os.fsencode(source), os.fsencode(target), flags) == 0:
        return True
    code = ctypes.get_errno()
    if code in _UNSUPPORTED:
        return False
    raise OSError(code, os.strerror(code), target)


class DiskStoreFile:
    """`StoreFile` over the real file system: one sessions.json, written by temp and rename.

    The check before the rename cannot close the window between itself and the rename; where
    Linux offers it, the rename is a `RENAME_EXCHANGE` instead: the new file takes the target's
    name and the file it replaced lands at the temp name, where it is compared with the version
    expected. Another writer's rename that landed after the check is thus handed back
    (`Replaced.displaced`) instead of being lost. A file system without it (EINVAL) gets the
    check and a plain rename, and the window of those two system calls remains.
    """

    def __init__(self, path: str) -> None:
        self._path = path
        self.exchanges = True  # until the file system says it cannot

    @property
    def path(self) -> str:
        return self._path

    @property
    def keeps_previous(self) -> bool:
        return self.exchanges

    def prepare(self) -> None:
        directory = os.path.dirname(self._path)
        os.makedirs(directory, exist_ok=True)
        remove_dead_temps(directory, os.path.basename(self._path))

    def read(self) -> Snapshot | None:
        found = read_with_stat(self._path)
        return None if found is None else Snapshot(found[0], DiskSig.of(found[1], found[0]))

    def unchanged(self, version: DiskSig | None) -> bool:
        return still_version(self._path, version)

    def replace(
        self, data: FileData, expected: DiskSig | None, keep_previous_at: str | None = None
    ) -> Replaced:
        return _observed(self._path, lambda: self._replace(data, expected, keep_previous_at))

    def _replace(
        self, data: FileData, expected: DiskSig | None, keep_previous_at: str | None
    ) -> Replaced:
        # Kept: the new version is written at `keep_previous_at` and exchanged with the old,
        # which thus stays there, durable, without a byte copied (a journal snapshot).
        temp, fd = _durable_temp(self._path, data, keep_previous_at)
        try:
            try:
                if not self.unchanged(expected):
                    raise ExternalChange(self._path)
                fault_point("after-precheck")
                swapped = self._swap(temp, expected)
            except BaseException as exc:
                with contextlib.suppress(OSError):
                    os.unlink(temp)
                if isinstance(exc, OSError):
                    raise _write_error(self._path, exc) from exc
                raise
            # From here on our file is in place: what the swap handed back is looked at, never
            # deleted unseen.
            kept = keep_previous_at is not None
            unlinked: list[BinaryIO] = []
            try:
                displaced = self._handed_back(temp, expected, kept, unlinked) if swapped else None
                if kept and swapped:
                    fsync_directory(os.path.dirname(temp))
                _durable_rename(self._path)
            finally:
                # Closed (its blocks freed) only after the directory fsync: freeing them during
                # it made that fsync 3.5 ms instead of 0.7 ms (median, under stress/load.py).
                for handle in unlinked:
                    _close_later(handle)
            return Replaced(DiskSig.written(os.fstat(fd), data), displaced)
        except OSError as exc:  # renamed but not known durable: the caller retries the write
            raise _write_error(self._path, exc) from exc
        finally:
            os.close(fd)

    def _swap(self, temp: str, expected: DiskSig | None) -> bool:
        """Put `temp` in place; True when the replaced file now sits at `temp` (an exchange)."""
        if self.exchanges:
            try:
                if expected is None:
                    done = rename_atomically(temp, self._path, RENAME_NOREPLACE)
                    if done:
                        return False
                elif rename_atomically(temp, self._path, RENAME_EXCHANGE):
                    return True
            except (FileExistsError, FileNotFoundError) as exc:
                # Created (NOREPLACE) or removed (EXCHANGE) since the check: merge first.
                raise ExternalChange(self._path) from exc
            self.exchanges = False
            _log().warning(
                "file system cannot exchange files atomically; using check then rename",
                path=self._path,
            )
        os.replace(temp, self._path)
        return False

    def _handed_back(
        self, temp: str, expected: DiskSig | None, kept: bool, unlinked: list[BinaryIO]
    ) -> Snapshot | None:
        """The file the exchange replaced, now at `temp`: None when it is the version expected,
        else its bytes (another writer's rename landed after the check). Removed either way,
        unless `kept` (a journal snapshot); a removed one's handle, still open, goes to
        `unlinked`: its blocks are freed when that closes."""
        try:
            handle = open(temp, "rb")  # noqa: SIM115 - closed here if kept, else by _close_later
            try:
                st = os.fstat(handle.fileno())
                same_inode = expected is not None and (
                    st.st_dev,
                    st.st_ino,
                    st.st_size,
                    st.st_mtime_ns,
                ) == (expected.dev, expected.ino, expected.size, expected.mtime_ns)
                # The rename itself moved the ctime, so a big file's inode, size and mtime must
                # do; a small one is hashed (an in-place rewrite could keep all three).
                if same_inode and st.st_size > HASH_LIMIT:
                    data = None
                else:
                    data, st = _settled_read(handle, st)
            except BaseException:
                handle.close()
                raise
        except OSError as exc:
            aside = temp if kept else f"{self._path}.displaced.{time.time_ns()}"
            with contextlib.suppress(OSError):
                os.rename(temp, aside)
            _log().error("could not read the file our write replaced", path=aside, error=str(exc))
            return None
        if kept:
            handle.close()
        else:
            unlinked.append(handle)
            os.unlink(temp)
        if data is None or (expected is not None and digest_of(data) == expected.digest):
            return None
        return Snapshot(data, DiskSig.of(st, data))

    def keep_aside(self, data: bytes, suffix: str) -> str:
        copy = f"{self._path}{suffix}"
        write_durably(copy, data)
        return copy


_closing: queue.SimpleQueue[BinaryIO] = queue.SimpleQueue()
_closer: list[threading.Thread] = []


def _close_later(handle: BinaryIO) -> None:
    """Close `handle`, a file already unlinked, on a thread of its own. That last close frees
    the file's blocks: 5 ms for a 15 MB store on ext4, and more under load, which the write
    (durable without it) and every request waiting on that write were paying for."""
    if not _closer or not _closer[0].is_alive():
        _closer[:] = [threading.Thread(target=_close_forever, name="sessiond-close", daemon=True)]
        _closer[0].start()
    _closing.put(handle)


def _close_forever() -> None:
    while True:
        handle = _closing.get()
        with contextlib.suppress(OSError):
            handle.close()


# How long a handed-back file must keep its size and mtime before it counts as complete.
SETTLE_S = 0.05
SETTLE_TRIES = 40


def _settled_read(handle: BinaryIO, st: os.stat_result) -> tuple[bytes, os.stat_result]:
    """The file's bytes once nobody is writing it any more. A file the exchange replaced may be
    one another process is still rewriting in place (truncated, half written): its writes go on
    into this very inode, so it is read again until its size and mtime hold for `SETTLE_S`."""
    data = handle.read()
    for _ in range(SETTLE_TRIES):
        if st.st_mtime_ns < time.time_ns() - 1_000_000_000:
            break  # untouched for a second: nobody is writing it
        time.sleep(SETTLE_S)
        now = os.fstat(handle.fileno())
        if (now.st_size, now.st_mtime_ns) == (st.st_size, st.st_mtime_ns) and len(
            data
        ) == now.st_size:
            break
        handle.seek(0)
        data, st = handle.read(), now
    return data, st


def remove_dead_temps(directory: str, name: str) -> None:
    """Temp files of a writer that died mid-write (SIGKILL); a live writer's are left alone."""
    prefix = f"{TEMP_PREFIX}{name}."
    try:
        entries = os.listdir(directory)
    except OSError:
        return
    for entry in entries:
        if not (entry.startswith(prefix) and entry.endswith(TEMP_SUFFIX)):
            continue
        pid_text = entry[len(prefix) :].split(".", 1)[0]
        if pid_text.isdigit() and int(pid_text) != os.getpid() and temp_writer_alive(int(pid_text)):
            continue
        with contextlib.suppress(OSError):
            os.unlink(os.path.join(directory, entry))


def temp_writer_alive(pid: int) -> bool:
    """Whether `pid` may still write its temp file. A zombie (exited, not yet reaped by its
    parent) still answers signal 0 but writes nothing, so on Linux /proc's state `Z` counts as
    dead; without a readable /proc the answer is signal 0's (alive: its temp file is kept)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            stat = handle.read()
    except FileNotFoundError:
        # Gone since the signal, if /proc is mounted at all.
        return not os.path.exists("/proc/self/stat")
    except OSError:
        return True
    # "<pid> (<comm>) <state> ...": comm may hold spaces and parentheses, so split at the last ")".
    fields = stat.rpartition(b")")[2].split()
    return not fields or fields[0] != b"Z"


def _rename_no_replace(source: str, target: str) -> bool:
    """Rename unless `target` exists (False then). One system call where renameat2 has
    RENAME_NOREPLACE (no window, and a third of a 59k-file apply's rename time was the lstat
    asking first); elsewhere the lstat, then the rename."""
    try:
        if rename_atomically(source, target, RENAME_NOREPLACE):
            return True
    except FileExistsError:
        return False
    if os.path.lexists(target):
        return False
    os.rename(source, target)
    return True


def apply_file_ops(
    ops: FileOps, allowed_dir: str, on_step: Callable[[int], None] | None = None
) -> FileOpsOutcome:
    """Renames then removals, each confined to `allowed_dir`; failures are collected, not raised.

    A rename never replaces a file: a target that exists is a failure (a restore must not
    overwrite a transcript that took the name since). `on_step(n)` hears after each operation.
    """
    outcome = FileOpsOutcome()
    steps = 0
    root = os.path.realpath(allowed_dir)
    parents: dict[str, bool] = {}

    def inside(path: str) -> bool:
        # realpath walks every component with an lstat; all files of one apply share a parent,
        # so it is resolved once per apply instead of twice per file.
        parent = os.path.dirname(path)
        known = parents.get(parent)
        if known is None:
            known = parents[parent] = os.path.realpath(parent) == root
        return known

    for source, archive in ops.archives:
        if on_step is not None:
            on_step(steps)
        steps += 1
        if not inside(source) or not inside(archive):
            outcome.failed.append((source, "outside the sessions dir"))
            continue
        try:
            if not _rename_no_replace(source, archive):
                outcome.failed.append((source, f"{os.path.basename(archive)} exists"))
                continue
            outcome.archived.append((source, archive))
            fault_point("after-archive")
        except FileNotFoundError:
            continue
        except OSError as exc:
            outcome.failed.append((source, exc.strerror or str(exc)))
    for removal in ops.removals:
        if on_step is not None:
            on_step(steps)
        steps += 1
        path = removal.path
        if not inside(path):
            outcome.failed.append((path, "outside the sessions dir"))
            continue
        try:
            if not os.path.isfile(path) or os.path.islink(path):
                continue
            os.unlink(path)
            outcome.removed.append(path)
            fault_point("after-unlink")
        except FileNotFoundError:
            continue
        except OSError as exc:
            outcome.failed.append((path, exc.strerror or str(exc)))
    if outcome.archived or outcome.removed:
        with contextlib.suppress(OSError):
            fsync_directory(root)
    return outcome
