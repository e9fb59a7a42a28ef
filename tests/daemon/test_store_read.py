"""The dry run's reader (`leased_reads`): a store mapped and leased reads as `read_store` reads it,
and while the lease is held no other process can rewrite the file in place under the rows."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from sessiond.daemon.store_read import leased_reads, read_store
from sessiond.engine.store import Store

BODIES = {
    "plain": b'{\n  "agent:main:a": {\n    "sessionId": "s1",\n    "updatedAt": 5\n  }\n}',
    "indexes first": b'{"b": {"updatedAt": 1}, "7": {}, "a": [1], "3": null}',
    "bom": b'\xef\xbb\xbf{"a": {"sessionId": "s"}}',
    "empty": b"",
    "blank": b" \n ",
    "array": b"[1, 2]",
    "corrupt": b'{"a": {"sessionId": ',
    "big number": b'{"a": {"updatedAt": 1e400}}',
    "a row no object": b'{\n  "agent:main:a": {\n    "sessionId": "s1"\n  },\n  "b": 5\n}',
}
MAPPED = BODIES["a row no object"]  # split into rows that point into the map: kept leased


def _same(a: Store, b: Store) -> bool:
    return (
        a.status == b.status
        and a.had_bom == b.had_bom
        and str(a.error) == str(b.error)
        and list(a.rows) == list(b.rows)
        and [a.view(k) for k in a.rows] == [b.view(k) for k in b.rows]
        and (
            not (a.has_row_bytes and b.has_row_bytes)
            or all(bytes(a.rows[k]) == bytes(b.rows[k]) for k in a.rows)
        )
    )


@pytest.mark.parametrize("name", sorted(BODIES))
def test_a_leased_read_is_the_plain_read(tmp_path: Path, name: str) -> None:
    path = tmp_path / "sessions.json"
    path.write_bytes(BODIES[name])
    for views_only in (False, True):
        with leased_reads(views_only) as read:
            store = read(str(path))
            assert _same(store, read_store(str(path)))
            assert store.has_row_bytes or views_only


def test_missing_files_and_dirs_read_as_missing(tmp_path: Path) -> None:
    with leased_reads() as read:
        assert _same(read(str(tmp_path / "absent.json")), read_store(str(tmp_path / "absent.json")))
        assert _same(read(str(tmp_path)), read_store(str(tmp_path)))


def _leases_on(path: Path) -> list[str]:
    """/proc/locks' lease lines for the file at `path` ("ACTIVE", or "BREAKING" once some
    process asked for it back)."""
    st = path.stat()
    device = f"{os.major(st.st_dev):02x}:{os.minor(st.st_dev):02x}:{st.st_ino} "
    with open("/proc/locks", encoding="ascii") as locks:
        return [line for line in locks if " LEASE " in line and device in line]


def test_a_store_read_as_views_holds_no_map_and_no_lease(tmp_path: Path) -> None:
    """The views copy what they hold: a writer is not held up at all."""
    path = tmp_path / "sessions.json"
    path.write_bytes(BODIES["plain"])
    with leased_reads(views_only=True) as read:
        store = read(str(path))
        assert not store.has_row_bytes and _leases_on(path) == []
        path.write_bytes(b"{}")  # in place, at once
        assert store.view("agent:main:a").fields.session_id == "s1"


def test_a_writer_waits_until_the_block_ends(tmp_path: Path) -> None:
    path = tmp_path / "sessions.json"
    path.write_bytes(MAPPED)
    writer = [sys.executable, "-c", f"open({str(path)!r}, 'wb').write(b'{{}}')"]
    with leased_reads() as read:
        store = read(str(path))
        assert any("ACTIVE" in line for line in _leases_on(path))
        proc = subprocess.Popen(writer)
        # The writer is held in its open(): the kernel asks for the lease back and waits.
        deadline = time.monotonic() + 30
        while not any("BREAKING" in line for line in _leases_on(path)):
            assert proc.poll() is None, "the writer got through while the lease was held"
            assert time.monotonic() < deadline, "the writer never asked for the file"
            time.sleep(0.01)
        assert proc.poll() is None
        assert path.read_bytes() == MAPPED
        assert store.view("agent:main:a").fields.session_id == "s1"
        assert bytes(store.rows["b"]) == b"5"
    assert proc.wait(timeout=30) == 0
    assert path.read_bytes() == b"{}"
    assert _leases_on(path) == []


def test_a_file_open_for_writing_is_read_as_bytes(tmp_path: Path) -> None:
    path = tmp_path / "sessions.json"
    path.write_bytes(MAPPED)
    with open(path, "r+b") as held, leased_reads() as read:
        store = read(str(path))
        assert _leases_on(path) == []  # no lease is granted beside a writer: no map either
        held.write(b"[")  # so a rewrite in place cannot reach the rows read
        assert bytes(store.rows["agent:main:a"]).startswith(b"{")


def test_off_the_main_thread_stores_are_read_as_bytes(tmp_path: Path) -> None:
    path = tmp_path / "sessions.json"
    path.write_bytes(BODIES["plain"])
    found: list[tuple[Store, list[str]]] = []

    def plan() -> None:
        with leased_reads() as read:
            found.append((read(str(path)), _leases_on(path)))

    thread = threading.Thread(target=plan)
    thread.start()
    thread.join()
    store, leases = found[0]
    assert leases == []
    assert _same(store, read_store(str(path)))


def test_sigio_is_handled_as_before_once_the_block_ends(tmp_path: Path) -> None:
    path = tmp_path / "sessions.json"
    path.write_bytes(BODIES["plain"])
    before = signal.getsignal(signal.SIGIO)
    with leased_reads() as read:
        read(str(path))
        assert signal.getsignal(signal.SIGIO) == signal.SIG_IGN
    assert signal.getsignal(signal.SIGIO) == before


def test_past_the_cap_stores_are_read_as_bytes(tmp_path: Path) -> None:
    from sessiond.daemon.store_read import MAPPED_AT_MOST

    paths = []
    for n in range(MAPPED_AT_MOST + 2):
        path = tmp_path / f"{n}.json"
        path.write_bytes(MAPPED)
        paths.append(path)
    with leased_reads() as read:
        stores = [read(str(p)) for p in paths]
        leased = [p for p in paths if _leases_on(p)]
        assert len(leased) == MAPPED_AT_MOST
        assert all(_same(s, read_store(str(p))) for s, p in zip(stores, paths, strict=True))
    assert not any(_leases_on(p) for p in paths)
