"""The one error table: each kind of domain error, as each dialect puts it on the wire.

The daemon raises domain errors (`sessiond.engine.errors.DomainError` and its subclasses), each
naming its `kind`; the two dialects look the kind up here, at the edge, and send the JSON-RPC
code of protocol/jsonrpc.py or the gateway v4 code of protocol/gateway_frames.py. The message
and `data` are the error's own in both. Nothing beneath the dialects knows a wire code, and this
module knows nothing of the engine: the table is keyed by the kind strings.
"""

from __future__ import annotations

from typing import Final, Literal

import msgspec
from sessiond.protocol import gateway_frames, jsonrpc

__all__ = ["ERRORS", "ErrorKind", "WireCodes"]

ErrorKind = Literal[
    "auth_required",
    "config_invalid",
    "conflict",
    "internal",
    "invalid_params",
    "journal_entry_not_found",
    "key_not_found",
    "not_restorable",
    "runtime_unavailable",
    "stale_plan",
    "store_not_found",
    "store_read_only",
    "store_write_failed",
]
"""Every `DomainError.kind`; the method table names the ones each method may raise."""


class WireCodes(msgspec.Struct, frozen=True):
    """How one kind goes out: a JSON-RPC error code and a gateway v4 error code."""

    jsonrpc: int
    gateway: str
    retryable: bool = False
    """Gateway only: sent as `retryable: true` (the same request may succeed later)."""


ERRORS: Final[dict[ErrorKind, WireCodes]] = {
    "auth_required": WireCodes(jsonrpc.APP_AUTH_REQUIRED, gateway_frames.INVALID_REQUEST),
    "store_not_found": WireCodes(jsonrpc.APP_STORE_NOT_FOUND, gateway_frames.INVALID_REQUEST),
    "store_read_only": WireCodes(jsonrpc.APP_STORE_NOT_WRITABLE, gateway_frames.INVALID_REQUEST),
    "conflict": WireCodes(jsonrpc.APP_CONFLICT, gateway_frames.INVALID_REQUEST),
    "key_not_found": WireCodes(jsonrpc.APP_KEY_NOT_FOUND, gateway_frames.INVALID_REQUEST),
    "store_write_failed": WireCodes(
        jsonrpc.APP_STORE_WRITE_FAILED, gateway_frames.UNAVAILABLE, retryable=True
    ),
    "invalid_params": WireCodes(jsonrpc.INVALID_PARAMS, gateway_frames.INVALID_REQUEST),
    "stale_plan": WireCodes(jsonrpc.APP_STALE_PLAN, gateway_frames.INVALID_REQUEST),
    "journal_entry_not_found": WireCodes(
        jsonrpc.APP_JOURNAL_ENTRY_NOT_FOUND, gateway_frames.INVALID_REQUEST
    ),
    "not_restorable": WireCodes(jsonrpc.APP_NOT_RESTORABLE, gateway_frames.INVALID_REQUEST),
    "runtime_unavailable": WireCodes(jsonrpc.APP_RUNTIME_UNAVAILABLE, gateway_frames.UNAVAILABLE),
    "config_invalid": WireCodes(jsonrpc.INTERNAL_ERROR, gateway_frames.UNAVAILABLE),
    "internal": WireCodes(jsonrpc.INTERNAL_ERROR, gateway_frames.UNAVAILABLE),
}
"""Every kind has a row (a test holds the keys to `ErrorKind`); the JSON-RPC codes are the ones
clients already match on, and in the gateway dialect only a failed write is worth retrying."""
