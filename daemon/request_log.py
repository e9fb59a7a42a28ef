"""The request a log line is written for, in both dialects.

One context variable holding (request id, method), set and reset once per request and added to
each line by `add_request` (a structlog processor). structlog's own per-key context variables
cost a formatted key, a lookup and a `set` per key and per request: ~5% of the loop under
stress/load.py's thousands of requests a second, for lines that are almost never written.
"""

from __future__ import annotations

from collections.abc import MutableMapping
from contextvars import ContextVar, Token
from typing import Any

_REQUEST: ContextVar[tuple[object, str] | None] = ContextVar("sessiond_request", default=None)


def enter_request(request_id: object, method: str) -> Token[tuple[object, str] | None]:
    return _REQUEST.set((request_id, method))


def leave_request(token: Token[tuple[object, str] | None]) -> None:
    _REQUEST.reset(token)


def add_request(_logger: Any, _name: str, event: MutableMapping[str, Any]) -> Any:
    """structlog processor: the current request's id and method, unless the line has its own."""
    current = _REQUEST.get()
    if current is not None:
        event.setdefault("req", current[0])
        event.setdefault("method", current[1])
    return event
