"""JSON-RPC 2.0 envelopes and error codes: the wire frame around every sessiond method.

JSON-RPC has no tag field, so a frame is decoded in two steps: the envelope with `params` kept
as `msgspec.Raw` and `id` defaulting to `UNSET` (absent id: a notification; `"id": null` is a
request whose answer carries `null`), then the params with the method's own decoder.
"""

from __future__ import annotations

from typing import Any, Final, Literal

import msgspec

__all__ = [
    "APP_AUTH_REQUIRED",
    "APP_CONFLICT",
    "APP_JOURNAL_ENTRY_NOT_FOUND",
    "APP_KEY_NOT_FOUND",
    "APP_NOT_RESTORABLE",
    "APP_RUNTIME_UNAVAILABLE",
    "APP_STALE_PLAN",
    "APP_STORE_NOT_FOUND",
    "APP_STORE_NOT_WRITABLE",
    "APP_STORE_WRITE_FAILED",
    "INTERNAL_ERROR",
    "INVALID_PARAMS",
    "INVALID_REQUEST",
    "METHOD_NOT_FOUND",
    "PARSE_ERROR",
    "ErrorObject",
    "ErrorResponse",
    "Notification",
    "Request",
    "RequestId",
    "SuccessResponse",
]

PARSE_ERROR: Final = -32700
INVALID_REQUEST: Final = -32600
METHOD_NOT_FOUND: Final = -32601
INVALID_PARAMS: Final = -32602
INTERNAL_ERROR: Final = -32603

# Application range (-32000..-32099 is reserved for implementation-defined server errors).
APP_AUTH_REQUIRED: Final = -32000
"""No valid token yet on this connection (send `auth` first, or `Authorization: Bearer`)."""
APP_STORE_NOT_FOUND: Final = -32001
"""The agent is not configured, so there is no store for it."""
APP_STORE_NOT_WRITABLE: Final = -32002
"""The store's file does not parse; it is served read-only until it does."""
APP_CONFLICT: Final = -32003
"""`ifUpdatedAt` did not match, or the row cannot be patched (not an object)."""
APP_KEY_NOT_FOUND: Final = -32004
"""No row with that key in the store."""
APP_STORE_WRITE_FAILED: Final = -32005
"""The change could not be made durable; it is kept in memory and retried."""
APP_STALE_PLAN: Final = -32006
"""`planId` no longer names the plan a cleanup would carry out; `data.actions` says what changed."""
APP_JOURNAL_ENTRY_NOT_FOUND: Final = -32007
"""No cleanup journal entry by that id (or none at all) for the store."""
APP_NOT_RESTORABLE: Final = -32008
"""The journal entry cannot be restored (unfinished, rolled back, or restored already)."""
APP_RUNTIME_UNAVAILABLE: Final = -32009
"""The request needs OpenClaw's own runtime (its model catalog), which sessiond does not run.
Only the gateway dialect's `sessions.patch` of a `model` sends it today (as UNAVAILABLE)."""

RequestId = str | int | float | None


class Request(msgspec.Struct, omit_defaults=True):
    """One call as decoded off the wire; `params` stays raw until the method is known."""

    jsonrpc: Literal["2.0"]
    method: str
    params: msgspec.Raw | msgspec.UnsetType = msgspec.UNSET
    id: RequestId | msgspec.UnsetType = msgspec.UNSET

    @property
    def is_notification(self) -> bool:
        return self.id is msgspec.UNSET


class ErrorObject(msgspec.Struct, omit_defaults=True):
    code: int
    message: str
    data: Any = msgspec.UNSET


class SuccessResponse(msgspec.Struct, kw_only=True):
    """`result` is usually pre-encoded (`msgspec.Raw`), each method's with its own result type."""

    jsonrpc: Literal["2.0"] = "2.0"
    id: RequestId
    result: Any


class ErrorResponse(msgspec.Struct, kw_only=True):
    jsonrpc: Literal["2.0"] = "2.0"
    id: RequestId
    error: ErrorObject


class Notification(msgspec.Struct, kw_only=True):
    """A server-to-client notification (no id), e.g. `sessions.changed`."""

    jsonrpc: Literal["2.0"] = "2.0"
    method: str
    params: Any
