"""The daemon's pure parts without a process: JSON-RPC frame rules and the conflict rule."""

from __future__ import annotations

import asyncio
from typing import Any

import msgspec
from sessiond.daemon.jsonrpc_dialect import Call, RpcProtocol
from sessiond.engine.merge import changed_keys, merge_external
from sessiond.engine.store import load_store_bytes
from sessiond.protocol.methods import METHODS, AuthResult, served_by


async def _ok(call: Call) -> Any:
    return AuthResult(True)


def handle(frame: str) -> Any:
    reply = asyncio.run(RpcProtocol().handle(frame.encode(), _ok))
    return None if reply is None else msgspec.json.decode(reply)


def test_notifications_never_get_an_answer_even_when_wrong() -> None:
    assert handle('{"jsonrpc":"2.0","method":"auth","params":{"token":"x"}}') is None
    assert handle('{"jsonrpc":"2.0","method":"nope"}') is None
    assert handle('{"jsonrpc":"2.0","method":"auth","params":{"bad":1}}') is None
    assert handle('[{"jsonrpc":"2.0","method":"nope"}]') is None
    # ... but an invalid Request is answered even without an id (the spec's own examples).
    assert handle('{"jsonrpc":"2.0","method":1}')["error"]["code"] == -32600


def test_id_null_is_a_request() -> None:
    reply = handle('{"jsonrpc":"2.0","method":"auth","params":{"token":"x"},"id":null}')
    assert reply == {"jsonrpc": "2.0", "id": None, "result": {"ok": True}}


def test_every_method_has_a_decoder_and_result_type() -> None:
    protocol = RpcProtocol()
    assert set(protocol._decoders) == set(served_by("jsonrpc"))  # every JSON-RPC method
    assert all(spec.result is not None for spec in METHODS.values())


def store(rows: dict[str, Any]) -> Any:
    return load_store_bytes(msgspec.json.encode(rows), "s.json")


def test_merge_keeps_both_sides_and_applies_the_conflict_rule() -> None:
    base = store({"a": {"updatedAt": 1}, "b": {"updatedAt": 1}, "c": {"updatedAt": 1}})
    ours = store(
        {
            "a": {"updatedAt": 5, "by": "daemon"},  # both changed, daemon newer -> daemon
            "b": {"updatedAt": 2, "by": "daemon"},  # both changed, file newer -> file
            "c": {"updatedAt": 1},
            "d": {"new": True},  # only the daemon -> kept
        }
    )
    theirs = store(
        {
            "a": {"updatedAt": 3, "by": "file"},
            "b": {"updatedAt": 4, "by": "file"},
            "e": {"updatedAt": 1},  # only the file (and c deleted by the file)
        }
    )
    outcome = merge_external(base, ours, theirs, {"a", "b", "d"})
    merged = {k: msgspec.json.decode(v) for k, v in outcome.store.rows.items()}
    assert merged == {
        "a": {"updatedAt": 5, "by": "daemon"},
        "b": {"updatedAt": 4, "by": "file"},
        "e": {"updatedAt": 1},
        "d": {"new": True},
    }
    assert [(c.key, c.winner) for c in outcome.conflicts] == [("a", "daemon"), ("b", "external")]
    assert outcome.pending == {"a", "d"}


def test_external_deletion_wins_and_daemon_deletion_loses() -> None:
    base = store({"x": {"updatedAt": 1}, "y": {"updatedAt": 1}})
    ours = store({"x": {"updatedAt": 9}})  # daemon changed x, deleted y
    theirs = store({"y": {"updatedAt": 2}})  # file deleted x, changed y
    outcome = merge_external(base, ours, theirs, {"x", "y"})
    assert list(outcome.store.rows) == ["y"]
    assert {c.winner for c in outcome.conflicts} == {"external"}
    assert outcome.pending == set()


def test_reindented_rows_are_not_changes() -> None:
    before = load_store_bytes(b'{"a": {"x": 1, "y": [1, 2]}}', "s")
    after = load_store_bytes(b'{\n  "a": {\n    "x": 1,\n    "y": [\n 1,\n 2]\n  }\n}', "s")
    assert changed_keys(before, after) == []
    assert merge_external(before, before, after, {"a"}).conflicts == []
