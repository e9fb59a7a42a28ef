"""The client library: generated clients, their connection, the change stream, typed errors.

`from sessiond.client import SessiondClient` loads the client on first use (PEP 562), so the
command line's local cleanup does not pay for importing websockets and asyncio at start-up.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sessiond.client.changes import ChangeStream, SeqGap
    from sessiond.client.connection import Backoff
    from sessiond.client.errors import (
        ClientClosedError,
        ConnectError,
        ConnectionLostError,
        ProtocolError,
        RpcError,
        SessiondError,
    )
    from sessiond.client.generated import (
        ERRORS,
        AuthRequiredError,
        ConflictError,
        InternalError,
        InvalidParamsError,
        InvalidRequestError,
        JournalEntryNotFoundError,
        KeyNotFoundError,
        MethodNotFoundError,
        NotRestorableError,
        ParseError,
        RuntimeUnavailableError,
        SessiondClient,
        SessiondSyncClient,
        StalePlanError,
        StoreNotFoundError,
        StoreNotWritableError,
        StoreWriteFailedError,
    )

_HOMES = {
    "changes": ["ChangeStream", "SeqGap"],
    "connection": ["Backoff"],
    "errors": [
        "ClientClosedError",
        "ConnectError",
        "ConnectionLostError",
        "ProtocolError",
        "RpcError",
        "SessiondError",
    ],
    "generated": [
        "ERRORS",
        "AuthRequiredError",
        "ConflictError",
        "InternalError",
        "InvalidParamsError",
        "InvalidRequestError",
        "JournalEntryNotFoundError",
        "KeyNotFoundError",
        "MethodNotFoundError",
        "NotRestorableError",
        "ParseError",
        "RuntimeUnavailableError",
        "SessiondClient",
        "SessiondSyncClient",
        "StalePlanError",
        "StoreNotFoundError",
        "StoreNotWritableError",
        "StoreWriteFailedError",
    ],
}
_MODULE_OF = {name: module for module, names in _HOMES.items() for name in names}

__all__ = [
    "ERRORS",
    "AuthRequiredError",
    "Backoff",
    "ChangeStream",
    "ClientClosedError",
    "ConflictError",
    "ConnectError",
    "ConnectionLostError",
    "InternalError",
    "InvalidParamsError",
    "InvalidRequestError",
    "JournalEntryNotFoundError",
    "KeyNotFoundError",
    "MethodNotFoundError",
    "NotRestorableError",
    "ParseError",
    "ProtocolError",
    "RpcError",
    "RuntimeUnavailableError",
    "SeqGap",
    "SessiondClient",
    "SessiondError",
    "SessiondSyncClient",
    "StalePlanError",
    "StoreNotFoundError",
    "StoreNotWritableError",
    "StoreWriteFailedError",
]


def __getattr__(name: str) -> Any:
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module 'sessiond.client' has no attribute {name!r}")
    return getattr(importlib.import_module(f"sessiond.client.{module}"), name)
