"""Where a cleanup or restore reports how far it is: a JSON-RPC client, a terminal, or nobody.

Drivers call `begin` once, `report` at each stage and (throttled) within long stages, and
`end` once, in that order. A sink must be cheap: it is called between steps that each touch
thousands of rows, never per row.
"""

from __future__ import annotations

from typing import Protocol


class Progress(Protocol):
    def begin(self, title: str, stage: str, total: int) -> None: ...

    def report(self, stage: str, done: int, total: int) -> None: ...

    def end(self, message: str) -> None: ...


class NoProgress:
    """Nobody is listening."""

    def begin(self, title: str, stage: str, total: int) -> None:
        pass

    def report(self, stage: str, done: int, total: int) -> None:
        pass

    def end(self, message: str) -> None:
        pass


NO_PROGRESS = NoProgress()
