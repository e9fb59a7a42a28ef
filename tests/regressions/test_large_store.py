"""Large store (OpenClaw #69451, #71234, #64321, #76891).

Guarantee: listing, paging, filtering, reading one row and `daemon.status` on a store of 2,700
rows never open a transcript.

Every transcript here is a FIFO: a reader would block on it, and while nobody holds it open for
reading, opening it for writing without blocking fails with ENXIO, which the test checks after
every call. Behaviour only; speed is measured in bench/.
"""

from __future__ import annotations

import errno
import os
import time
from pathlib import Path

import pytest
from harness.daemon_process import DaemonProcess
from harness.state_dirs import store_path, write_state_dir

from .live import client, run

ROWS = 2_700
MINUTE = 60_000


def _nobody_reads(fifos: list[Path]) -> None:
    for fifo in fifos:
        with pytest.raises(OSError) as err:
            os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
        assert err.value.errno == errno.ENXIO, f"someone opened {fifo}"


def test_list_and_get_never_open_a_transcript(tmp_path: Path) -> None:
    now = time.time_ns() // 1_000_000
    root = write_state_dir(tmp_path / "state", {"main": {}})
    sessions = store_path(root, "main").parent
    fifos: list[Path] = []
    rows = {}
    for n in range(ROWS):
        fifo = sessions / f"s-{n:05d}.jsonl"
        os.mkfifo(fifo)
        fifos.append(fifo)
        rows[f"agent:main:explicit:{n:05d}"] = {
            "sessionId": f"s-{n:05d}",
            "sessionFile": str(fifo),
            "updatedAt": now - n * MINUTE,
            "chatType": "direct",
            "model": "gpt-x",
            "skillsSnapshot": {"prompt": "p" * 400},
        }
    write_state_dir(root, {"main": rows})
    sample = fifos[:: ROWS // 27]

    with DaemonProcess(root) as proc:

        async def go() -> None:
            async with client(proc) as c:
                seen: list[str] = []
                cursor = None
                while True:
                    page = await c.sessions_list(limit=500, cursor=cursor)
                    assert page.total_count == ROWS
                    seen += [s.key for s in page.sessions]
                    if not page.has_more:
                        break
                    cursor = page.next_cursor
                assert seen == list(rows), "not newest first, or rows lost"
                _nobody_reads(sample)
                recent = await c.sessions_list(active_minutes=60, limit=1000)
                assert recent.total_count == 60  # rows 0..59; row 60 is just older
                last = await c.sessions_get(key=f"agent:main:explicit:{ROWS - 1:05d}")
                assert last.key.endswith(f"{ROWS - 1:05d}")
                status = await c.daemon_status()
                assert status.stores[0].rows == ROWS
                _nobody_reads(fifos)

        run(go)
