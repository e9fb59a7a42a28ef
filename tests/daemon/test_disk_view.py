"""The planner's window on the disk: one scan per plan (or one per change of the dir, kept
across plans by a `ListingCache`), stats only when a rule needs them."""

from __future__ import annotations

import contextlib
import math
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sessiond.daemon.dir_changes import LOCAL_FILE_SYSTEMS, DirChanges, mount_type
from sessiond.daemon.os_disk_view import (
    FINE_RACY_NS,
    RACY_NS,
    ListingCache,
    OsDiskView,
    racy_window,
)
from sessiond.daemon.store_files import TEMP_PREFIX, TEMP_SUFFIX, is_own_temp, temp_name
from sessiond.engine.disk_view import canonical
from sessiond.engine.transcripts import file_kind


def test_listing_sizes_and_times_are_read_lazily(tmp_path: Path) -> None:
    (tmp_path / "a.jsonl").write_text("12345")
    os.utime(tmp_path / "a.jsonl", (1_000, 1_000))
    (tmp_path / "gone.jsonl").write_text("x")
    (tmp_path / "sub").mkdir()
    os.symlink(tmp_path / "a.jsonl", tmp_path / "link.jsonl")
    files = {f.name: f for f in OsDiskView().list_files(str(tmp_path))}
    assert sorted(files) == ["a.jsonl", "gone.jsonl"]  # no dirs, no symlinks
    assert (files["a.jsonl"].size, files["a.jsonl"].mtime_ms) == (5, 1_000_000.0)
    (tmp_path / "gone.jsonl").unlink()
    # Vanished between the scan and the first question: empty and new, never "old enough".
    assert (files["gone.jsonl"].size, files["gone.jsonl"].mtime_ms) == (0, math.inf)


def test_canonical_resolves_links_and_keeps_missing_paths(tmp_path: Path) -> None:
    real = tmp_path / "real"
    real.mkdir()
    (real / "t.jsonl").write_text("")
    os.symlink(real / "t.jsonl", real / "alias.jsonl")
    os.symlink(real, tmp_path / "dirlink")
    view = OsDiskView()
    assert canonical(view, str(real / "t.jsonl")) == str(real / "t.jsonl")
    assert canonical(view, str(real / "alias.jsonl")) == str(real / "t.jsonl")
    assert canonical(view, str(real / "missing.jsonl")) == str(real / "missing.jsonl")
    assert canonical(view, str(tmp_path / "dirlink" / "t.jsonl")) == str(real / "t.jsonl")
    assert canonical(view, str(real / ".." / "real" / "t.jsonl")) == str(real / "t.jsonl")
    assert view.exists(str(real / "t.jsonl")) and not view.exists(str(real / "missing.jsonl"))


def _names(view: OsDiskView, directory: Path) -> tuple[Any, ...]:
    found = view.listing(str(directory))
    kinds = found.kinds(file_kind)  # a kept listing's kinds come partly from the one before
    return found.names, sorted(found.entries), found.plain, kinds


FILE_OPS = st.lists(
    st.tuples(
        st.sampled_from(["create", "remove", "rename", "mkdir", "symlink"]),
        st.sampled_from(["a.jsonl", "b.jsonl", "c.trajectory.jsonl", "d", "a.jsonl.deleted.x"]),
        st.sampled_from(["a.jsonl", "b.jsonl", "e.jsonl"]),
    ),
    max_size=12,
)


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops=FILE_OPS, exact=st.booleans())
def test_a_kept_listing_equals_a_fresh_read_after_any_change(
    ops: list[tuple[str, str, str]], exact: bool
) -> None:
    """With no racy window at all, the dir's own times must tell every change (each change
    here lands on a later clock tick than the read before it); with `exact_changes`, the
    names inotify reports must, with no sleep between a change and the next plan."""
    with tempfile.TemporaryDirectory() as temp:
        directory = Path(temp)
        cache = ListingCache(racy_ns=0, exact_changes=exact)
        assert _names(OsDiskView(cache), directory) == _names(OsDiskView(), directory)
        for op, name, other in ops:
            if not exact:
                time.sleep(0.012)  # past the clock tick: each change moves the dir's time
            path, target = directory / name, directory / other
            with contextlib.suppress(OSError):
                if op == "create":
                    path.write_text("x")
                elif op == "remove":
                    path.unlink() if not path.is_dir() or path.is_symlink() else path.rmdir()
                elif op == "rename":
                    os.rename(path, target)
                elif op == "mkdir":
                    path.mkdir()
                else:
                    os.symlink(other, path)
            assert _names(OsDiskView(cache), directory) == _names(OsDiskView(), directory)


def test_a_listing_is_kept_while_the_dir_is_unchanged_and_read_again_after(tmp_path: Path) -> None:
    (tmp_path / "a.jsonl").write_text("x")
    past = time.time() - 60
    os.utime(tmp_path, (past, past))  # the dir's mtime is old; its ctime is now: racy
    cache = ListingCache()
    OsDiskView(cache).listing(str(tmp_path))
    OsDiskView(cache).listing(str(tmp_path))
    assert (cache.reads, cache.reuses) == (2, 0)  # changed within the racy window: read again
    steady = ListingCache(racy_ns=0)
    first = OsDiskView(steady).listing(str(tmp_path))
    assert OsDiskView(steady).listing(str(tmp_path)) is first
    assert (steady.reads, steady.reuses) == (1, 1)
    time.sleep(0.012)
    (tmp_path / "b.jsonl").write_text("x")
    assert OsDiskView(steady).listing(str(tmp_path)).names.count("b.jsonl") == 1
    assert steady.reads == 2


def test_a_dir_stamped_in_fractions_of_a_second_is_kept_a_tenth_of_a_second_after_its_change(
    tmp_path: Path,
) -> None:
    """A sessions dir copied or restored just before the daemon starts is read at start; that
    read is kept once its last change is FINE_RACY_NS old, not git's two seconds."""
    (tmp_path / "a.jsonl").write_text("x")
    sig = os.stat(tmp_path)
    if sig.st_mtime_ns % 1_000_000_000 == 0 and sig.st_ctime_ns % 1_000_000_000 == 0:
        pytest.skip("a file system stamping whole seconds: the 2 s window applies (below)")
    time.sleep(FINE_RACY_NS / 1e9 + 0.05)
    cache = ListingCache()
    first = OsDiskView(cache).listing(str(tmp_path))
    assert OsDiskView(cache).listing(str(tmp_path)) is first
    assert (cache.reads, cache.reuses) == (1, 1)


def test_whole_second_stamps_keep_the_two_second_window() -> None:
    """Times that are whole seconds may come from a coarse clock (FAT, some network file
    systems): a change two seconds later could still carry the same time."""
    assert racy_window((1, 2, 5_000_000_000, 6_000_000_000)) == RACY_NS
    assert racy_window((1, 2, 5_000_000_000, 6_000_000_001)) == FINE_RACY_NS
    assert racy_window((1, 2, 5_123_456_789, 5_123_456_789)) == FINE_RACY_NS


def test_a_write_of_ours_in_progress_leaves_the_listing_as_it_was(tmp_path: Path) -> None:
    """Under a stream of patches a flush is nearly always in progress when a dry run lists the
    dir; its temp file must not make the listing new (every plan would redo what it keeps by
    listing). Another process's temp, a leftover of a dead writer, is still listed."""
    (tmp_path / "a.jsonl").write_text("x")
    (tmp_path / "sessions.json").write_text("{}")
    cache = ListingCache()
    before = OsDiskView(cache).listing(str(tmp_path))
    ours = tmp_path / temp_name("sessions.json")
    ours.write_text("{}")
    during = OsDiskView(cache).listing(str(tmp_path))
    assert cache.reads == 2  # the dir changed: read again ...
    assert during is before  # ... and found as it was
    assert is_own_temp(ours.name) and ours.name not in during.entries
    theirs = tmp_path / f"{TEMP_PREFIX}sessions.json.1.deadbeef0{TEMP_SUFFIX}"
    theirs.write_text("{}")
    assert not is_own_temp(theirs.name)
    assert theirs.name in OsDiskView(cache).listing(str(tmp_path)).names


def _flush_like_ours(directory: Path) -> None:
    """What a flush does to the dir: a temp of ours written, exchanged with sessions.json (a
    rename here), and the old version removed."""
    temp = directory / temp_name("sessions.json")
    temp.write_text("{}")
    os.replace(temp, directory / "sessions.json")


@pytest.mark.skipif(not DirChanges().available, reason="no inotify here")
def test_with_exact_changes_a_flush_leaves_the_listing_without_a_read(tmp_path: Path) -> None:
    """A flush moves the dir's times, so without events every plan after one read the dir
    again; with them, the names it touched are looked at and found as they were. A transcript
    made right after, within the same clock tick, is seen by the very next plan."""
    (tmp_path / "a.jsonl").write_text("x")
    (tmp_path / "sessions.json").write_text("{}")
    cache = ListingCache(exact_changes=True)
    first = OsDiskView(cache).listing(str(tmp_path))
    for _ in range(3):
        _flush_like_ours(tmp_path)
        assert OsDiskView(cache).listing(str(tmp_path)) is first
    assert (cache.reads, cache.reuses) == (1, 3)
    _flush_like_ours(tmp_path)
    (tmp_path / "b.jsonl").write_text("x")
    os.symlink("a.jsonl", tmp_path / "c.jsonl")
    (tmp_path / "a.jsonl").unlink()
    after = OsDiskView(cache).listing(str(tmp_path))
    assert cache.reads == 2  # changed: read again, in the order the kernel lists it
    assert sorted(after.names) == ["b.jsonl", "sessions.json"]
    assert sorted(after.entries) == ["b.jsonl", "c.jsonl", "sessions.json"]
    assert _names(OsDiskView(cache), tmp_path) == _names(OsDiskView(), tmp_path)


@pytest.mark.skipif(not DirChanges().available, reason="no inotify here")
def test_with_exact_changes_lost_events_mean_a_read(tmp_path: Path) -> None:
    """A watch the kernel drops (its dir removed and made anew) or a queue that overflowed
    cannot tell what changed: the dir is read again, and watched again from before that read."""
    directory = tmp_path / "sessions"
    directory.mkdir()
    (directory / "a.jsonl").write_text("x")
    cache = ListingCache(exact_changes=True)
    OsDiskView(cache).listing(str(directory))
    for entry in directory.iterdir():
        entry.unlink()
    directory.rmdir()
    directory.mkdir()
    (directory / "b.jsonl").write_text("x")
    assert OsDiskView(cache).listing(str(directory)).names == ["b.jsonl"]
    assert cache.reads == 2
    queue_cap = int(Path("/proc/sys/fs/inotify/max_queued_events").read_text())
    if queue_cap > 40_000:
        pytest.skip("a queue too long to overflow quickly here")
    for i in range(queue_cap // 2 + 10):  # two events each: past the queue's length
        (directory / f"t{i}").write_text("")
        (directory / f"t{i}").unlink()
    (directory / "c.jsonl").write_text("x")
    assert sorted(OsDiskView(cache).listing(str(directory)).names) == ["b.jsonl", "c.jsonl"]
    assert cache.reads == 3


MOUNTINFO = [
    "22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw",
    "30 22 0:40 / /mnt/nfs rw,relatime shared:9 - nfs4 server:/export rw,vers=4.2",
    "31 22 0:41 / /mnt/with\\040space rw shared:10 - tmpfs tmpfs rw",
    "32 30 0:42 / /mnt/nfs/local rw shared:11 - xfs /dev/sdb1 rw",
]


def test_only_local_file_systems_are_watched() -> None:
    """inotify sees only this kernel's changes: a dir on NFS (or SMB, 9p, FUSE...) is read."""
    assert mount_type("/home/u/.openclaw", MOUNTINFO) == "ext4"
    assert mount_type("/mnt/nfs/agents/main/sessions", MOUNTINFO) == "nfs4"
    assert mount_type("/mnt/nfs/local/sessions", MOUNTINFO) == "xfs"
    assert mount_type("/mnt/nfsother", MOUNTINFO) == "ext4"
    assert mount_type("/mnt/with space/x", MOUNTINFO) == "tmpfs"
    assert "nfs4" not in LOCAL_FILE_SYSTEMS and "ext4" in LOCAL_FILE_SYSTEMS
