"""Fast variants of the stress scripts (stress/), so the normal suite checks the same properties.

Each runs the stress script's own code with small counts against a real daemon and asserts that
its report has no violation; the long runs are `make stress`.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import msgspec
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from stress.common import Daemon, Report, write_state_dir


def assert_ok(report: Report) -> None:
    report.finish()
    assert report.ok, report.violations


async def _exchange(url: str, frame: bytes, text: bool) -> tuple[str, object]:
    async with connect(url, compression=None, max_size=None) as ws:
        await ws.send(frame, text=text)
        try:
            return "reply", msgspec.json.decode(await asyncio.wait_for(ws.recv(), 5))
        except ConnectionClosed as exc:
            return "closed", exc.rcvd.code if exc.rcvd else None


def test_frames_the_decoder_chokes_on_get_parse_errors_not_1011(tmp_path: Path) -> None:
    """Deep nesting and invalid UTF-8 once closed the connection 1011 (uncaught decoder error)."""
    root = write_state_dir(tmp_path, {"main": {}})
    deep = b'{"jsonrpc":"2.0","method":"sessions.patch","params":{"key":"k","fields":{"x":'
    deep += b"[" * 3000 + b"]" * 3000 + b'}},"id":4}'
    bad_utf8 = b'{"jsonrpc":"2.0","method":"sessions.get","params":{"key":"\xff"},"id":2}'
    with Daemon(root) as daemon:

        async def go() -> None:
            for frame, text in [(b"[" * 5000 + b"]" * 5000, True), (deep, True), (bad_utf8, False)]:
                kind, reply = await _exchange(daemon.url, frame, text)
                assert kind == "reply", (frame[:40], reply)
                assert isinstance(reply, dict) and reply["error"]["code"] == -32700
            # Invalid UTF-8 in a text frame fails the connection (RFC 6455), first frame or not.
            assert await _exchange(daemon.url, bad_utf8, True) == ("closed", 1007)

        asyncio.run(go())
