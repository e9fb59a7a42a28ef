"""Knowing a version of a file when we see it again, and the one seam a store's disk sits behind.

Our own writes are recognised by the file's `(st_dev, st_ino, st_size, st_mtime_ns,
st_ctime_ns)` plus a SHA-256 of its bytes, so they are not reloaded. The stat alone vouches for a
version once the file's last change is older than `RACY_NS`: a rewrite within the same clock
tick keeps inode, size and both times (OpenClaw #32191), so until then the bytes of a file up to
`HASH_LIMIT` are hashed and compared. A larger file is never read just to be compared (that was
a whole read of a big store before every write): its stat decides, and the one change it cannot
see is a same-size in-place rewrite within the same timestamp tick as the version we know. So a
larger version of our own write is not hashed either (`DiskSig.written`).

`StoreFile` is everything a `LiveStore` does to its file; `durable_file.DiskStoreFile` is the
one implementation, over the real file system.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import msgspec

# How long after a file's last change (its ctime) a stat can prove the file unchanged: longer
# than the kernel's coarse clock tick plus the coarsest file-system timestamp (1 s on ext3 and
# others), so that any later change is bound to carry a different ctime.
RACY_NS = 2_000_000_000
# Files up to this size are hashed when their stat alone cannot prove them unchanged.
HASH_LIMIT = 1 << 20


@dataclass(frozen=True, slots=True)
class DiskSig:
    """Identity of one version of a file: stat fields plus a hash of its bytes."""

    dev: int
    ino: int
    size: int
    mtime_ns: int
    ctime_ns: int
    digest: bytes | None  # None: not hashed (a big file of our own write; see `written`)
    seen_ns: int  # wall clock when this version was read or written

    @classmethod
    def of(cls, st: os.stat_result, data: FileData) -> DiskSig:
        return cls(
            st.st_dev,
            st.st_ino,
            st.st_size,
            st.st_mtime_ns,
            st.st_ctime_ns,
            digest_of(data),
            time.time_ns(),
        )

    @classmethod
    def written(cls, st: os.stat_result, data: FileData) -> DiskSig:
        """The version a write of ours just put in place. Over `HASH_LIMIT` its stat alone
        vouches for it (`same_stat`), so its bytes are not hashed: that hash was a third of a
        flush at 15 MB under load, and every patch waits for a flush. A digest of None equals
        no file's, so a file that turns up later with other stat fields but these very bytes
        (a `touch`) is read and merged as another writer's: a merge that changes nothing."""
        if st.st_size <= HASH_LIMIT:
            return cls.of(st, data)
        return cls(
            st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns, None, time.time_ns()
        )

    def same_stat(self, st: os.stat_result) -> bool:
        """True only when the stat proves this version; False means: compare the bytes.

        A writer can put the mtime back (utime) but not the ctime, and a rewrite in the same
        clock tick keeps both; so equal stats count only for a version whose ctime was already
        `RACY_NS` old when it was seen (git's "racily clean" rule), or that is too big to hash.
        """
        return self.same_fields(st) and (not self.racy or self.size > HASH_LIMIT)

    def same_fields(self, st: os.stat_result) -> bool:
        return (self.dev, self.ino, self.size, self.mtime_ns, self.ctime_ns) == (
            st.st_dev,
            st.st_ino,
            st.st_size,
            st.st_mtime_ns,
            st.st_ctime_ns,
        )

    @property
    def racy(self) -> bool:
        return self.ctime_ns >= self.seen_ns - RACY_NS


FileData = bytes | Sequence[bytes | msgspec.Raw]
"""A file's bytes, whole or as the pieces they are written from (engine/store.py
`store_pieces`)."""


def digest_of(data: FileData) -> bytes:
    if isinstance(data, bytes):
        return hashlib.sha256(data).digest()
    digest = hashlib.sha256()
    for piece in data:
        digest.update(piece)
    return digest.digest()


@dataclass(frozen=True, slots=True)
class Snapshot:
    """One version of the file: its bytes, and the identity they were read under."""

    data: bytes
    version: DiskSig


@dataclass(frozen=True, slots=True)
class Replaced:
    """A completed write: the version now on disk and, when the file it replaced was not the
    one expected (another writer's rename landed after the check), that file: never dropped
    unseen, the caller merges it and writes again."""

    version: DiskSig
    displaced: Snapshot | None = None


class ExternalChange(Exception):
    """The file is no longer the version expected; nothing was written. Merge, then write."""


class StoreFile(Protocol):
    """Everything a `LiveStore` does to its file (the seam a future store backend implements)."""

    @property
    def path(self) -> str: ...

    def prepare(self) -> None:
        """Make the directory; remove temp files left by writers that died mid-write."""
        ...

    def read(self) -> Snapshot | None:
        """The file's bytes and version; None when there is no file."""
        ...

    def unchanged(self, version: DiskSig | None) -> bool:
        """Whether the file is still `version` (None: absent). Stat first; bytes hashed only
        when the stat cannot tell."""
        ...

    def replace(
        self, data: FileData, expected: DiskSig | None, keep_previous_at: str | None = None
    ) -> Replaced:
        """Durably put `data` where `expected` is. Raises `ExternalChange` (nothing written)
        when the file is no longer `expected`, `StoreWriteError` when the write failed. With
        `keep_previous_at`, the version replaced is left durably at that path (where the file
        system can exchange two names atomically; see `keeps_previous`)."""
        ...

    @property
    def keeps_previous(self) -> bool:
        """Whether `replace` can keep the version it replaces."""
        ...

    def keep_aside(self, data: bytes, suffix: str) -> str:
        """Durably copy `data` to `<path><suffix>` (a file found corrupt); returns that path."""
        ...


def read_with_stat(path: str) -> tuple[bytes, os.stat_result] | None:
    """The file's bytes and the stat of the very inode they came from; None when missing."""
    try:
        with open(path, "rb") as handle:
            st = os.fstat(handle.fileno())
            return handle.read(), st
    except (FileNotFoundError, IsADirectoryError):
        return None


def still_version(path: str, sig: DiskSig | None) -> bool:
    """True when the file on disk is the version `sig` names (None: the file is absent).

    Stat first: a stat that differs, or cannot be taken, is a change (the caller reads the file
    then, to merge it, and learns there whether the bytes differ too).
    """
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return sig is None
    except OSError:
        return False
    if sig is None:
        return False
    if not sig.same_fields(st):
        return False
    if sig.same_stat(st):
        return True
    found = read_with_stat(path)
    return found is not None and digest_of(found[0]) == sig.digest
