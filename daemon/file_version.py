"""Knowing a version of a file when we see it again: stat fields plus a hash of the bytes.

Our own writes are recognised by the file's `(st_dev, st_ino, st_size, st_mtime_ns,
st_ctime_ns)` plus a SHA-256 of its bytes, so they are not reloaded. The stat alone vouches for a
version only once the file's last change is older than `RACY_NS`: a rewrite within the same clock
tick keeps inode, size and both times (OpenClaw #32191), so until then the bytes are hashed and
compared.
"""

from __future__ import annotations

import hashlib
import os
import time
from dataclasses import dataclass

# How long after a file's last change (its ctime) a stat can prove the file unchanged: longer
# than the kernel's coarse clock tick plus the coarsest file-system timestamp (1 s on ext3 and
# others), so that any later change is bound to carry a different ctime.
RACY_NS = 2_000_000_000


@dataclass(frozen=True, slots=True)
class DiskSig:
    """Identity of one version of a file: stat fields plus a hash of its bytes."""

    dev: int
    ino: int
    size: int
    mtime_ns: int
    ctime_ns: int
    digest: bytes
    seen_ns: int  # wall clock when this version was read or written

    @classmethod
    def of(cls, st: os.stat_result, data: bytes) -> DiskSig:
        return cls(
            st.st_dev,
            st.st_ino,
            st.st_size,
            st.st_mtime_ns,
            st.st_ctime_ns,
            hashlib.sha256(data).digest(),
            time.time_ns(),
        )

    def same_stat(self, st: os.stat_result) -> bool:
        """True only when the stat proves this version; False means: compare the bytes.

        A writer can put the mtime back (utime) but not the ctime, and a rewrite in the same
        clock tick keeps both; so equal stats count only for a version whose ctime was already
        `RACY_NS` old when it was seen (git's "racily clean" rule).
        """
        return self.ctime_ns < self.seen_ns - RACY_NS and (
            self.dev,
            self.ino,
            self.size,
            self.mtime_ns,
            self.ctime_ns,
        ) == (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


def read_with_stat(path: str) -> tuple[bytes, os.stat_result] | None:
    """The file's bytes and the stat of the very inode they came from; None when missing."""
    try:
        with open(path, "rb") as handle:
            st = os.fstat(handle.fileno())
            return handle.read(), st
    except (FileNotFoundError, IsADirectoryError):
        return None


def still_version(path: str, sig: DiskSig | None) -> bool:
    """True when the file on disk is the version `sig` names (None: the file is absent)."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return sig is None
    if sig is None:
        return False
    if sig.same_stat(st):
        return True
    found = read_with_stat(path)
    return found is not None and hashlib.sha256(found[0]).digest() == sig.digest
