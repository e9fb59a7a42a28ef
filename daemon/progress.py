"""`$/progress` for one JSON-RPC request: LSP's work-done progress over the connection.

The sink is called synchronously by the drivers; each step is encoded at once and sent, in
order, by one task per request. `drain` waits until every step has been written, so the
caller sends its reply only after `end`: a client sees begin, reports, end, then the answer.
Reports within a stage are throttled to one per `REPORT_EVERY_S`; a stage's first and last
report always go out.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable

import msgspec
from sessiond.protocol.jsonrpc import Notification
from sessiond.protocol.methods import PROGRESS_NOTIFICATION
from sessiond.protocol.undo import ProgressParams, ProgressToken, ProgressValue

REPORT_EVERY_S = 0.1
_ENCODER = msgspec.json.Encoder()


class RpcProgress:
    def __init__(self, token: ProgressToken, send: Callable[[bytes], Awaitable[None]]) -> None:
        self.token = token
        self._send = send
        self._queue: asyncio.Queue[bytes | None] = asyncio.Queue()
        self._task = asyncio.create_task(self._pump())
        self._last = 0.0
        self._stage = ""

    def _put(self, value: ProgressValue) -> None:
        params = ProgressParams(self.token, value)
        self._queue.put_nowait(
            _ENCODER.encode(Notification(method=PROGRESS_NOTIFICATION, params=params))
        )

    def begin(self, title: str, stage: str, total: int) -> None:
        self._stage = stage
        self._put(ProgressValue("begin", title=title, stage=stage, done=0, total=total))

    def report(self, stage: str, done: int, total: int) -> None:
        now = time.monotonic()
        edge = stage != self._stage or done == 0 or done >= total
        if not edge and now - self._last < REPORT_EVERY_S:
            return
        self._stage, self._last = stage, now
        self._put(ProgressValue("report", stage=stage, done=done, total=total))

    def end(self, message: str) -> None:
        self._put(ProgressValue("end", message=message))

    async def _pump(self) -> None:
        while True:
            frame = await self._queue.get()
            if frame is None:
                return
            with contextlib.suppress(Exception):  # a closed connection: the reply fails too
                await self._send(frame)

    async def drain(self) -> None:
        """Every step sent (or the connection gone); then the sink is spent."""
        self._queue.put_nowait(None)
        await self._task
