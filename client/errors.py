"""What the sessiond clients raise, split by whose move it is next.

`RpcError` is the daemon's answer (code, message, data from the JSON-RPC error object); the
generated module subclasses it once per code in the protocol, so `except KeyNotFoundError` works.
The others are the connection's: the daemon could not be reached, a mutating call was cut off
(it may or may not have been applied), or the daemon sent something the contract does not allow.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "ClientClosedError",
    "ConnectError",
    "ConnectionLostError",
    "ProtocolError",
    "RpcError",
    "SessiondError",
]


class SessiondError(Exception):
    """Base of every error a sessiond client raises."""


class RpcError(SessiondError):
    """The daemon answered with a JSON-RPC error object.

    Match on the generated subclass or on `code`; `data` is whatever the daemon attached (None
    when it sent none), e.g. `{"path": "$.limit", "reason": ...}` for invalid params.
    """

    def __init__(self, code: int, message: str, data: Any = None) -> None:
        super().__init__(f"{message} ({code})")
        self.code = code
        self.message = message
        self.data = data


class ConnectError(SessiondError):
    """The daemon could not be reached in time, or refused the connection for good."""


class ConnectionLostError(SessiondError):
    """The connection dropped while a call that changes state was in flight.

    The daemon may or may not have applied it; read the state back before retrying. Calls that
    change nothing are re-sent on the next connection instead of raising this.
    """


class ClientClosedError(SessiondError):
    """The client was closed; it makes no more calls."""


class ProtocolError(SessiondError):
    """The daemon sent a frame or result that does not match protocol/schema.json."""
