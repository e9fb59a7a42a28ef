"""The only code that writes to a sessions dir: durable store writes and a plan's file operations.

Order is the guarantee: the reduced sessions.json is on disk (fsynced, renamed, directory
fsynced) before any transcript is archived or removed, so a crash never leaves a row pointing at
a file that is gone. A file operation that fails is reported, never counted as done.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import time
from collections.abc import Callable

from sessiond.engine.cleanup.apply_flow import FileOpsOutcome
from sessiond.engine.cleanup.plan import FileOps
from sessiond.engine.store import Store, load_store_bytes

STORE_FILE_MODE = 0o600
TEMP_PREFIX = ".sessiond-"
TEMP_SUFFIX = ".tmp"


class StoreWriteError(OSError):
    """A durable write did not complete; the old file is untouched and no temp file is left."""


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


# Test-only fault injection: the crash tests pause or die at named points of a write.
# Points of a store write, in order: temp-open, before-fsync, after-temp-write (the temp file is
# written and fsynced), after-precheck, after-rename, durable; and of a plan's file operations:
# after-archive (each rename) and after-unlink (each removal); and of the cleanup journal
# (daemon/journal.py): journal-begin (an entry is durable) and journal-finish (it is closed).
# `SESSIOND_TEST_FAULT_PHASE=<file>` records "<write number> <point>" there at each point (one
# pwrite, so a test that SIGKILLs the daemon can tell where the write was, and an external
# writer can tell whether its rename raced the window between the precheck and the rename).
_FAULT_HOOK = os.environ.get("SESSIOND_TEST_FAULT_HOOK")
_PHASE_PATH = os.environ.get("SESSIOND_TEST_FAULT_PHASE")
_phase_state: list[int] = []  # [fd, writes so far], opened on first use (after any fork)


def _fault_point(name: str) -> None:
    if _PHASE_PATH is not None:
        if not _phase_state:
            _phase_state.extend([os.open(_PHASE_PATH, os.O_WRONLY | os.O_CREAT, 0o600), 0])
        if name == "temp-open":
            _phase_state[1] += 1
        os.pwrite(_phase_state[0], f"{_phase_state[1]} {name}".ljust(40).encode(), 0)
    if _FAULT_HOOK is None:
        return
    hooks = _FAULT_HOOK.split(",")
    if f"{name}:pause" in hooks:
        time.sleep(float(os.environ.get("SESSIOND_TEST_FAULT_PAUSE", "0.05")))
    # `<name>:enospc` fails the write as a full disk would, while the flag file exists.
    flag = os.environ.get("SESSIOND_TEST_FAULT_FLAG", "")
    if f"{name}:enospc" in hooks and flag and os.path.exists(flag):
        raise OSError(errno.ENOSPC, "No space left on device (test fault)")


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
    if not write_observers:
        return _write_durably(path, data, precheck)
    started = time.perf_counter()
    ok = False
    try:
        st = _write_durably(path, data, precheck)
        ok = True
        return st
    finally:
        for observer in write_observers:
            observer(path, time.perf_counter() - started, ok)


def _write_durably(path: str, data: bytes, precheck: Callable[[], None] | None) -> os.stat_result:
    directory = os.path.dirname(os.path.abspath(path)) or "."
    temp = os.path.join(
        directory,
        f"{TEMP_PREFIX}{os.path.basename(path)}.{os.getpid()}.{secrets.token_hex(6)}{TEMP_SUFFIX}",
    )
    try:
        # Inside the conversion too: a read-only or unwritable directory fails right here
        # (EROFS, EACCES), and any OSError other than StoreWriteError killed the flusher.
        os.makedirs(directory, exist_ok=True)
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, STORE_FILE_MODE)
    except OSError as exc:
        raise StoreWriteError(exc.errno or errno.EIO, f"{path}: {exc.strerror or exc}") from exc
    try:
        try:
            _fault_point("temp-open")
            view = memoryview(data)
            while view:
                written = os.write(fd, view)
                view = view[written:]
            _fault_point("before-fsync")
            os.fsync(fd)
        finally:
            os.close(fd)
        _fault_point("after-temp-write")
        if precheck is not None:
            precheck()
        _fault_point("after-precheck")
        os.replace(temp, path)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        if isinstance(exc, OSError):
            raise StoreWriteError(exc.errno or errno.EIO, f"{path}: {exc.strerror or exc}") from exc
        raise
    try:
        _fault_point("after-rename")
        fsync_directory(directory)
        _fault_point("durable")
        return os.stat(path)
    except OSError as exc:  # renamed but not known durable: the caller retries the write
        raise StoreWriteError(exc.errno or errno.EIO, f"{path}: {exc.strerror or exc}") from exc


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
        if os.path.lexists(archive):
            outcome.failed.append((source, f"{os.path.basename(archive)} exists"))
            continue
        try:
            os.rename(source, archive)
            outcome.archived.append((source, archive))
            _fault_point("after-archive")
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
            _fault_point("after-unlink")
        except FileNotFoundError:
            continue
        except OSError as exc:
            outcome.failed.append((path, exc.strerror or str(exc)))
    if outcome.archived or outcome.removed:
        with contextlib.suppress(OSError):
            fsync_directory(root)
    return outcome
