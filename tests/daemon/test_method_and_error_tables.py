"""The one method table and the one error table, and both dialects coding domain errors from it."""

from __future__ import annotations

import asyncio
import json
from typing import Any, get_args

import msgspec
import pytest
import sessiond.daemon.server  # noqa: F401  (defines AuthRequired, the daemon-only domain error)
from sessiond.daemon import gateway_dialect as gw
from sessiond.daemon.jsonrpc_dialect import Call, RpcProtocol
from sessiond.engine.config import ConfigError
from sessiond.engine.errors import DomainError
from sessiond.protocol import gateway_frames, jsonrpc
from sessiond.protocol.errors import ERRORS, ErrorKind
from sessiond.protocol.methods import METHODS, keyed_by_table, served_by


def _domain_errors() -> list[type[DomainError]]:
    found: list[type[DomainError]] = [DomainError]
    for cls in found:
        found += cls.__subclasses__()
    return found


def _instance(cls: type[DomainError]) -> DomainError:
    if cls is ConfigError:
        return ConfigError("/cfg.json", ["<root>: broken"])
    return cls(f"a {cls.__name__}", {"why": cls.kind})


def test_every_error_kind_has_one_row_and_every_row_a_kind() -> None:
    kinds = {cls.kind for cls in _domain_errors()}
    assert kinds == set(ERRORS) == set(get_args(ErrorKind))


def test_wire_codes_are_named_and_each_application_code_means_one_kind() -> None:
    named = {getattr(jsonrpc, name) for name in jsonrpc.__all__ if name.isupper()}
    assert {codes.jsonrpc for codes in ERRORS.values()} <= named
    application = [getattr(jsonrpc, n) for n in jsonrpc.__all__ if n.startswith("APP_")]
    for code in application:
        assert len([k for k, c in ERRORS.items() if c.jsonrpc == code]) == 1, code
    gateway_codes = {getattr(gateway_frames, n) for n in gateway_frames.__all__ if n.isupper()}
    assert {codes.gateway for codes in ERRORS.values()} <= gateway_codes


def test_methods_name_only_kinds_of_the_table() -> None:
    for name, spec in METHODS.items():
        assert set(spec.errors) <= set(ERRORS), name
        assert spec.dialects and spec.dialects <= {"jsonrpc", "gateway"}, name
        assert set(spec.gateway_errors) <= set(ERRORS), name
        assert not spec.gateway_errors or "gateway" in spec.dialects, name


def test_each_dialect_serves_what_the_table_says() -> None:
    assert RpcProtocol().methods == served_by("jsonrpc")
    assert list(gw.GATEWAY_METHODS) == list(served_by("gateway"))
    # Gateway-only: the read-only companions OpenClaw's clients call (issue 14), whose shapes
    # are the reference's; every other method the gateway serves, JSON-RPC serves too.
    gateway_only = set(served_by("gateway")) - set(served_by("jsonrpc"))
    assert gateway_only == {"sessions.describe", "chat.history", "health", "status"}
    assert not any(METHODS[name].mutates for name in gateway_only)


def test_a_dispatch_table_must_match_the_method_table() -> None:
    served = served_by("gateway")
    entries = {name: name.upper() for name in reversed(served)}
    assert list(keyed_by_table(entries, served)) == list(served), "table order, whatever given"
    with pytest.raises(LookupError, match="missing"):
        keyed_by_table({}, served)
    with pytest.raises(LookupError, match=r"unknown \['sessions.nope'\]"):
        keyed_by_table({**entries, "sessions.nope": "?"}, served)


@pytest.mark.parametrize("cls", _domain_errors(), ids=lambda cls: cls.__name__)
def test_jsonrpc_sends_each_domain_error_with_its_kinds_code(cls: type[DomainError]) -> None:
    error = _instance(cls)

    async def fail(_call: Call) -> Any:
        raise error

    frame = b'{"jsonrpc":"2.0","id":7,"method":"daemon.status","params":{}}'
    reply = asyncio.run(RpcProtocol().handle(frame, fail))
    assert reply is not None
    expected: dict[str, Any] = {"code": ERRORS[error.kind].jsonrpc, "message": error.message}
    if error.data is not None:
        expected["data"] = error.data
    assert json.loads(reply) == {"jsonrpc": "2.0", "id": 7, "error": expected}


@pytest.mark.parametrize("cls", _domain_errors(), ids=lambda cls: cls.__name__)
def test_the_gateway_sends_each_domain_error_with_its_kinds_code(cls: type[DomainError]) -> None:
    error = _instance(cls)
    machine = gw.GatewayConnection(
        credentials=gw.Credentials(),
        facts=gw.ServerFacts(version="0", started_ms=0, max_payload=1 << 20),
        nonce="n",
        conn_id="c",
    )
    dispatch = gw.Dispatch("r1", "sessions.list", Call("sessions.list", None, "r1"))
    frame = msgspec.json.decode(machine.refuse(dispatch, error))
    codes = ERRORS[error.kind]
    expected: dict[str, Any] = {"code": codes.gateway, "message": error.message}
    if error.data is not None:
        expected["details"] = error.data
    if codes.retryable:
        expected["retryable"] = True
    assert frame == {"type": "res", "id": "r1", "ok": False, "error": expected}
