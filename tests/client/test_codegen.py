"""The generated files are what the generator writes now, and the generator's own rules hold."""

from __future__ import annotations

import json
from pathlib import Path

import msgspec
import pytest
import sessiond.client
from sessiond.client.base import FirstMatch
from sessiond.client.changes import SeqGap, SeqTracker
from sessiond.client.codegen import contract
from sessiond.client.codegen.outputs import outputs, stale
from sessiond.protocol.cleanup import UnreferencedArtifacts
from sessiond.protocol.methods import (
    AllAgentsCleanup,
    CleanupSummary,
    SessionsChanged,
    SubscribedStore,
    served_by,
)
from sessiond.protocol.schema_export import SCHEMA_PATH, build_schema, render


def test_schema_and_clients_are_current() -> None:
    """What `make check-gen` checks: regenerate in memory, compare with the committed files."""
    assert SCHEMA_PATH.read_text(encoding="utf-8") == render(build_schema()), "run `make gen`"
    assert stale(outputs()) == [], "run `make gen`"


def test_schema_is_stable_text() -> None:
    schema = SCHEMA_PATH.read_text(encoding="utf-8")
    assert render(json.loads(schema)) == schema
    assert json.loads(schema)["$schema"] == "https://json-schema.org/draft/2020-12/schema"


def test_generated_parameter_names_are_the_struct_fields() -> None:
    """The generator inverts msgspec's camelCase renaming; this checks it against the Structs."""
    loaded = contract.parse(build_schema())
    by_name = {method.name: method for method in loaded.methods}
    assert set(by_name) == set(served_by("jsonrpc"))  # the gateway-only rows are not ours
    for name, spec in served_by("jsonrpc").items():
        fields = loaded.structs[by_name[name].params].fields
        assert {f.snake for f in fields} == {f.name for f in msgspec.structs.fields(spec.params)}
        assert {f.wire for f in fields} == {
            f.encode_name for f in msgspec.structs.fields(spec.params)
        }


def test_unknown_schema_keywords_fail_loudly(tmp_path: Path) -> None:
    schema = build_schema()
    schema["$defs"]["GetParams"]["properties"]["key"]["format"] = "uuid"
    bent = tmp_path / "schema.json"
    bent.write_text(json.dumps(schema))
    with pytest.raises(ValueError, match="format"):
        contract.load(bent)


def test_error_class_names() -> None:
    names = {e.name: e.class_name for e in contract.load(SCHEMA_PATH).errors}
    assert names["APP_KEY_NOT_FOUND"] == "KeyNotFoundError"
    assert names["PARSE_ERROR"] == "ParseError"
    assert names["INTERNAL_ERROR"] == "InternalError"


def test_union_results_decode_to_the_right_member() -> None:
    decoder: FirstMatch[CleanupSummary | AllAgentsCleanup] = FirstMatch(
        AllAgentsCleanup, CleanupSummary
    )
    artifacts = UnreferencedArtifacts(0, 0, 0, 0)
    summary = CleanupSummary(
        "main", "/s.json", "warn", True, 1, 1, 0, 0, 0, 0, artifacts, None, False
    )
    assert decoder.decode(msgspec.json.encode(summary)) == summary
    envelope = AllAgentsCleanup(True, "warn", True, [summary, summary])
    assert decoder.decode(msgspec.json.encode(envelope)) == envelope
    with pytest.raises(msgspec.ValidationError):
        decoder.decode(b'{"neither": 1}')


def _changed(seq: int, path: str = "/a") -> SessionsChanged:
    return SessionsChanged("a", path, seq, ["k"], "patch")


def test_seq_tracker_marks_skips_and_drops_stale() -> None:
    tracker = SeqTracker()
    assert tracker.resync([SubscribedStore("a", "/a", 4)], None) == []
    assert tracker.observe(_changed(5)) == [_changed(5)]
    assert tracker.observe(_changed(5)) == [], "a duplicate is dropped"
    assert tracker.observe(_changed(8)) == [SeqGap("a", "/a", 5, 8, "skipped"), _changed(8)]
    assert tracker.observe(_changed(1, "/other")) == [], "not a subscribed store"


def test_seq_tracker_resyncs() -> None:
    tracker = SeqTracker()
    tracker.resync([SubscribedStore("a", "/a", 4), SubscribedStore("b", "/b", 2)], None)
    moved = tracker.resync(
        [SubscribedStore("a", "/a", 6), SubscribedStore("b", "/b", 2)], "overflow"
    )
    assert moved == [SeqGap("a", "/a", 4, 6, "overflow")]
    after_restart = tracker.resync(
        [SubscribedStore("a", "/a", 6), SubscribedStore("c", "/c", 0)], "reconnected"
    )
    assert after_restart == [
        SeqGap("a", "/a", 6, 6, "reconnected"),
        SeqGap("c", "/c", None, 0, "reconnected"),
    ]


def test_public_names_of_sessiond_client() -> None:
    assert sorted(sessiond.client.__all__) == sorted(
        [
            "ERRORS", "AuthRequiredError", "Backoff", "ChangeStream", "ClientClosedError",
            "ConflictError", "ConnectError", "ConnectionLostError", "InternalError",
            "InvalidParamsError", "InvalidRequestError", "KeyNotFoundError",
            "MethodNotFoundError", "ParseError", "ProtocolError", "RpcError", "SeqGap",
            "SessiondClient", "SessiondError", "SessiondSyncClient", "StoreNotFoundError",
            "StoreNotWritableError", "StoreWriteFailedError",
            "JournalEntryNotFoundError", "NotRestorableError", "StalePlanError",
                "RuntimeUnavailableError",
        ]
    )  # fmt: skip
    for name in sessiond.client.__all__:
        assert getattr(sessiond.client, name) is not None
    generated = sessiond.client.generated
    assert {cls.__name__ for cls in generated.ERRORS.values()} <= set(sessiond.client.__all__)
