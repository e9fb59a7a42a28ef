"""Corrupt store at startup (OpenClaw #77783, #66522).

Guarantee: a sessions.json that does not parse at start (cut mid-object, or a valid document
followed by garbage) is never replaced: its bytes are copied aside to
`sessions.json.corrupt.<time>`, it is reported on `/readyz` and in `daemon.status`, and it is
served read-only until it parses again.

A 0-byte file is not corrupt: it holds no rows to lose, so it is served as an empty, writable
store (as the reference reads it), and nothing is written to it until something changes.
OpenClaw 2026.5.12 reads all of these as `{}` and its next save writes `{}` over the file
(docs/compat.md rows 3 and 26); sessiond differs on purpose.
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from harness.daemon_process import DaemonProcess
from harness.state_dirs import store_path, write_state_dir
from sessiond.client import StoreNotWritableError

from .live import client, run, until

GOOD = {"agent:{a}:one": {"sessionId": "s1", "updatedAt": 1000}}
BROKEN = {
    "cut": b'{\n  "agent:cut:one": {\n    "sessionId": "s1",\n    "upda',
    "garbage": json.dumps(GOOD, indent=2).encode() + b"\n}garbage",
    "nul": json.dumps(GOOD, indent=2).encode() + b"\x00" * 64,
}


def readyz(port: int) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=5) as reply:
            return reply.status, reply.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode()


def test_corrupt_stores_are_kept_copied_aside_reported_and_read_only(tmp_path: Path) -> None:
    agents = ["main", "empty", *BROKEN]
    root = write_state_dir(tmp_path, {a: None for a in agents})
    store_path(root, "main").write_text(json.dumps({"agent:main:one": {"updatedAt": 1}}))
    store_path(root, "empty").write_bytes(b"")
    for agent, data in BROKEN.items():
        store_path(root, agent).write_bytes(data)

    with DaemonProcess(root) as proc:

        async def go() -> None:
            async with client(proc) as c:
                status = {s.agent_id: s for s in (await c.daemon_status()).stores}
                assert not (await c.daemon_status()).ready
                code, body = readyz(proc.port)
                assert code == 503
                for agent, data in BROKEN.items():
                    st = status[agent]
                    assert st.state == "broken" and not st.writable and st.rows == 0
                    assert "line " in (st.parse_error or "") and "column " in st.parse_error
                    assert st.corrupt_copy is not None
                    copy = Path(st.corrupt_copy)
                    assert copy.parent == store_path(root, agent).parent
                    assert copy.name.startswith("sessions.json.corrupt.")
                    assert copy.read_bytes() == data
                    assert os.stat(copy).st_mode & 0o777 == 0o600
                    assert str(store_path(root, agent)) in body
                    with pytest.raises(StoreNotWritableError):
                        await c.sessions_patch(agent=agent, key="k", fields={"a": 1})
                    with pytest.raises(StoreNotWritableError):
                        await c.sessions_cleanup(agent=agent, enforce=True)
                # The empty file is an empty, writable store; nothing was written at start.
                assert status["empty"].state == "empty" and status["empty"].writable
                assert status["empty"].corrupt_copy is None
                assert store_path(root, "empty").read_bytes() == b""
                assert str(store_path(root, "empty")) not in body
                # The healthy store is unaffected.
                assert (await c.sessions_patch(agent="main", key="k", fields={"a": 1})).durable

                # Repaired (an editor's rename-over): it is loaded and writable again.
                fixed = store_path(root, "cut").with_name("fixed.tmp")
                fixed.write_text(json.dumps({"agent:cut:one": {"sessionId": "s1"}}))
                os.replace(fixed, store_path(root, "cut"))

                async def cut_is_writable() -> bool:
                    found = await c.daemon_status()
                    return any(s.agent_id == "cut" and s.writable for s in found.stores)

                await until(cut_is_writable)
                assert str(store_path(root, "cut")) not in readyz(proc.port)[1]
                patched = await c.sessions_patch(agent="cut", key="agent:cut:one", fields={"n": 2})
                assert patched.durable
                page = await c.sessions_list(agent="cut")
                assert [s.key for s in page.sessions] == ["agent:cut:one"]

                for agent in ("garbage", "nul"):
                    store_path(root, agent).write_text("{}")
                await until(lambda: _ready(c))
                assert readyz(proc.port) == (200, "ready\n")

        run(go)

    # Nothing sessiond did replaced a file it could not read.
    assert json.loads(store_path(root, "cut").read_text()) == {
        "agent:cut:one": {"sessionId": "s1", "n": 2}
    }
    assert store_path(root, "empty").read_bytes() == b""


async def _ready(c: object) -> bool:
    return bool((await c.daemon_status()).ready)  # type: ignore[attr-defined]


def test_still_broken_at_restart_is_still_untouched(tmp_path: Path) -> None:
    root = write_state_dir(tmp_path, {"main": None})
    store_path(root, "main").write_bytes(BROKEN["cut"])
    for _ in range(2):
        with DaemonProcess(root) as proc:
            assert readyz(proc.port)[0] == 503
    assert store_path(root, "main").read_bytes() == BROKEN["cut"]
    copies = [n for n in os.listdir(store_path(root, "main").parent) if ".corrupt." in n]
    assert copies, "no copy of the corrupt store"
