"""JSON-RPC 2.0 without I/O: one frame of bytes in, the frame to send back (or nothing) out.

The caller reads a text frame, awaits `RpcProtocol.handle(frame, handler)`, and sends the bytes
it returns unless they are None (a notification, or a batch of only notifications). The spec's
rules, all enforced here so the socket code never has to know them:

- invalid JSON -> one -32700 with `id: null`; an empty batch `[]` -> one -32600;
- a member that is not a valid Request -> -32600 for that member, with its id when the id itself
  is a legal id, else null; a batch's other members are still answered;
- an absent `id` is a notification (never answered, not even with an error from the method);
  `"id": null` is a request and is answered with `"id": null`;
- `params` must be an object when present (by-name only; an array is -32602, a scalar -32600);
- unknown method -> -32601; params that do not validate -> -32602 with `data.path` (msgspec's
  JSON path, e.g. `$.limit`) and `data.reason`;
- a domain error the handler raises (`DomainError`) -> the code of its kind in the error table
  (protocol/errors.py), with its message and data; any other exception is a bug -> -32603.
Batch members run concurrently; responses come back in request order (the spec allows any).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import msgspec
import structlog
from sessiond.engine.errors import DomainError
from sessiond.protocol.errors import ERRORS
from sessiond.protocol.jsonrpc import (
    INTERNAL_ERROR,
    INVALID_PARAMS,
    INVALID_REQUEST,
    METHOD_NOT_FOUND,
    PARSE_ERROR,
    ErrorObject,
    ErrorResponse,
    Request,
    RequestId,
    SuccessResponse,
)
from sessiond.protocol.methods import MethodSpec, served_by

log = structlog.get_logger("sessiond.rpc")

_RAW = msgspec.json.Decoder(msgspec.Raw)
_BATCH = msgspec.json.Decoder(list[msgspec.Raw])
_REQUEST = msgspec.json.Decoder(Request)
_LOOSE = msgspec.json.Decoder(dict[str, Any])
_ENCODER = msgspec.json.Encoder()


def error_object(error: DomainError) -> ErrorObject:
    """A domain error as JSON-RPC sends it: its kind's code, its own message and data."""
    data = msgspec.UNSET if error.data is None else error.data
    return ErrorObject(ERRORS[error.kind].jsonrpc, error.message, data)


@dataclass(frozen=True, slots=True)
class Call:
    """A validated request: what the handler receives."""

    method: str
    params: Any
    id: RequestId | msgspec.UnsetType

    @property
    def is_notification(self) -> bool:
        return self.id is msgspec.UNSET


Handler = Callable[[Call], Awaitable[Any]]


def _validation_data(exc: msgspec.ValidationError) -> dict[str, str]:
    reason, sep, path = str(exc).rpartition(" - at `")
    if not sep:
        return {"path": "$", "reason": str(exc)}
    return {"path": path.rstrip("`"), "reason": reason}


def _parse_error(exc: Exception) -> bytes:
    message = str(exc) if isinstance(exc, msgspec.DecodeError) else f"{type(exc).__name__}: {exc}"
    return _ENCODER.encode(
        ErrorResponse(id=None, error=ErrorObject(PARSE_ERROR, "Parse error", message))
    )


def _legal_id(value: Any) -> RequestId:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return value
    return None


class RpcProtocol:
    """Parses frames against a method table and runs calls through one handler."""

    def __init__(self, methods: dict[str, MethodSpec] | None = None) -> None:
        self.methods = served_by("jsonrpc") if methods is None else methods
        self._decoders: dict[str, msgspec.json.Decoder[Any]] = {
            name: msgspec.json.Decoder(spec.params) for name, spec in self.methods.items()
        }

    async def handle(self, frame: bytes, handler: Handler) -> bytes | None:
        """The bytes to send back for one frame, or None when nothing must be sent."""
        try:
            _RAW.decode(frame)
            if not frame.isascii():
                frame.decode()  # JSON text is UTF-8; msgspec.Raw does not check strings
        except (msgspec.DecodeError, UnicodeDecodeError, RecursionError) as exc:
            return _parse_error(exc)
        if frame.lstrip()[:1] != b"[":
            return await self._one(frame, handler)
        members = _BATCH.decode(frame)
        if not members:
            return _ENCODER.encode(
                ErrorResponse(
                    id=None, error=ErrorObject(INVALID_REQUEST, "Invalid Request: empty batch")
                )
            )
        answers = await asyncio.gather(*(self._one(bytes(m), handler) for m in members))
        sent = [a for a in answers if a is not None]
        if not sent:
            return None
        return b"[" + b",".join(sent) + b"]"

    def parse(self, member: bytes) -> Call | ErrorResponse | None:
        """One request object -> a validated Call, the error response to send, or None.

        None: a well-formed notification whose method or params are wrong; the spec forbids
        any reply to a notification, errors included.
        """
        try:
            request = _REQUEST.decode(member)
        except (msgspec.ValidationError, msgspec.DecodeError) as exc:
            ident: RequestId = None
            try:
                loose = _LOOSE.decode(member)
                ident = _legal_id(loose.get("id"))
            except (msgspec.ValidationError, msgspec.DecodeError):
                pass
            return ErrorResponse(
                id=ident, error=ErrorObject(INVALID_REQUEST, "Invalid Request", str(exc))
            )
        checked = self._validate(request)
        if isinstance(checked, Call):
            return checked
        if request.is_notification and checked.code != INVALID_REQUEST:
            return None
        return ErrorResponse(id=None if request.id is msgspec.UNSET else request.id, error=checked)

    def _validate(self, request: Request) -> Call | ErrorObject:
        params_raw = bytes(request.params) if request.params is not msgspec.UNSET else b"{}"
        first = params_raw.lstrip()[:1]
        if first not in (b"{", b"["):
            return ErrorObject(INVALID_REQUEST, "Invalid Request: params must be structured")
        spec = self.methods.get(request.method)
        if spec is None:
            return ErrorObject(METHOD_NOT_FOUND, "Method not found", request.method)
        if first == b"[":
            return ErrorObject(
                INVALID_PARAMS,
                "Invalid params: by-name params only",
                {"path": "$", "reason": "Expected `object`, got `array`"},
            )
        try:
            params = self._decoders[request.method].decode(params_raw)
        except msgspec.ValidationError as exc:
            return ErrorObject(INVALID_PARAMS, "Invalid params", _validation_data(exc))
        return Call(request.method, params, request.id)

    async def _one(self, member: bytes, handler: Handler) -> bytes | None:
        try:
            parsed = self.parse(member)
        except RecursionError as exc:  # nesting at the decoder's limit, caught a level deeper
            return _parse_error(exc)
        if parsed is None:
            return None
        if isinstance(parsed, ErrorResponse):
            return _ENCODER.encode(parsed)
        call = parsed
        answer_id: RequestId = None if call.id is msgspec.UNSET else call.id
        try:
            result = await handler(call)
            encoded = msgspec.Raw(_ENCODER.encode(result))
        except DomainError as exc:
            if call.is_notification:
                return None
            return _ENCODER.encode(ErrorResponse(id=answer_id, error=error_object(exc)))
        except Exception as exc:
            log.exception("internal error", method=call.method, req=answer_id)
            if call.is_notification:
                return None
            return _ENCODER.encode(
                ErrorResponse(
                    id=answer_id,
                    error=ErrorObject(INTERNAL_ERROR, "Internal error", type(exc).__name__),
                )
            )
        if call.is_notification:
            return None
        return _ENCODER.encode(SuccessResponse(id=answer_id, result=encoded))
