"""The store model: tolerant where the reference is, never lossy, and byte-exact on write."""

from __future__ import annotations

import json

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sessiond.engine.store import (
    LoadStatus,
    encode_row,
    load_store_buffer,
    load_store_bytes,
    load_store_views,
    row_chunk,
    serialize_store,
    store_pieces,
    store_size_for_chunks,
)


def test_empty_missing_and_bom_are_tolerated() -> None:
    assert load_store_bytes(None, "p").status is LoadStatus.MISSING
    assert load_store_bytes(b"  \n", "p").status is LoadStatus.EMPTY
    bom = load_store_bytes(b'\xef\xbb\xbf{"a": {"x": 1}}', "p")
    assert bom.status is LoadStatus.OK and bom.keys() == ["a"] and bom.had_bom


def test_corrupt_store_names_file_and_position_and_is_read_only() -> None:
    store = load_store_bytes(b'{\n  "a": {"x": 1},\n  "b" 2\n}', "/s/sessions.json")
    assert store.status is LoadStatus.CORRUPT
    assert store.error is not None
    assert (store.error.path, store.error.line) == ("/s/sessions.json", 3)
    assert "line 3" in str(store.error)
    assert not store.writable


def test_truncated_store_reports_end_position() -> None:
    store = load_store_bytes(b'{"a": {"x": 1}', "p")
    assert store.status is LoadStatus.CORRUPT and store.error is not None
    assert store.error.column == len(b'{"a": {"x": 1}') + 1


def test_top_level_array_is_not_a_store() -> None:
    store = load_store_bytes(b"[1, 2]", "p")
    assert store.status is LoadStatus.NOT_OBJECT and not store.writable


def test_serialisation_matches_json_stringify_and_keeps_unknown_fields() -> None:
    source = {
        "agent:main:main": {"sessionId": "a", "updatedAt": 1, "future": {"deep": [1, {"é": "✓"}]}},
        "k": "plain string row",
        "e": {},
    }
    store = load_store_bytes(json.dumps(source, ensure_ascii=False).encode(), "p")
    written = serialize_store(store)
    assert written == json.dumps(source, indent=2, ensure_ascii=False).encode()
    assert not written.endswith(b"\n")


def test_untouched_tokens_survive_exactly() -> None:
    store = load_store_bytes(b'{"a": {"n": 1.50, "big": 123456789012345678901234567890}}', "p")
    assert b"1.50" in serialize_store(store)
    assert b"123456789012345678901234567890" in serialize_store(store)


def test_integer_like_keys_come_first_as_in_javascript() -> None:
    store = load_store_bytes(b'{"b": 1, "10": 2, "2": 3, "01": 4}', "p")
    assert store.keys() == ["2", "10", "b", "01"]
    store.put("7", encode_row(5))
    assert store.keys() == ["2", "7", "10", "b", "01"]


def test_chunk_sizes_add_up_to_the_file() -> None:
    store = load_store_bytes(b'{"a": {"x": [1, 2]}, "b": "s", "c": {}}', "p")
    sizes = [len(row_chunk(k, v)) for k, v in store.rows.items()]
    assert store_size_for_chunks(sizes) == len(serialize_store(store))
    assert store_size_for_chunks([]) == len(b"{}")


def test_views_decode_only_decision_fields() -> None:
    store = load_store_bytes(
        b'{"a": {"sessionId": "s1", "updatedAt": "100", "chatType": "group", "other": [1]},'
        b' "b": null, "c": "text"}',
        "p",
    )
    view = store.view("a")
    assert (view.fields.session_id, view.fields.updated_at) == ("s1", "100")
    assert store.view("b").truthy is False and store.view("b").is_object is False
    assert store.view("c").truthy is True and store.view("c").is_object is False
    assert msgspec.json.decode(store.rows["a"])["other"] == [1]


def test_view_cache_answers_only_for_the_row_it_decoded() -> None:
    store = load_store_bytes(b'{"a": {"sessionId": "one"}, "b": {"sessionId": "two"}}', "p")
    store.view_cache = {}
    assert store.view("a").fields.session_id == "one"
    copy = store.copy()
    assert copy.view_cache is store.view_cache  # plans on snapshots reuse the decodes
    store.put("a", encode_row({"sessionId": "changed"}))
    assert store.view("a").fields.session_id == "changed"
    assert copy.view("a").fields.session_id == "one"  # the snapshot still has its own row
    assert store.view("b").fields.session_id == "two"


_JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner),
    max_leaves=8,
)
_FIELDS = st.sampled_from(["sessionId", "updatedAt", "chatType", "origin", "model", "other"])
_ROW = st.dictionaries(_FIELDS, _JSON, max_size=4) | _JSON
_KEYS = st.sampled_from(["agent:main:a", "agent:main:b", "3", "10", "x", "\u00e9"]) | st.text()


@settings(max_examples=300, deadline=None)
@given(rows=st.lists(st.tuples(_KEYS, _ROW), max_size=8))
def test_a_store_read_as_views_plans_as_the_store_read_as_rows(
    rows: list[tuple[str, object]],
) -> None:
    """`load_store_views` (one pass) gives every row the view the two passes give it, in the
    same key order (array indexes first, a repeated key's last row), or declines; its rows
    have no bytes, and nothing can write or decode them."""
    body = (
        b"{"
        + b",".join(json.dumps(k).encode() + b":" + json.dumps(v).encode() for k, v in rows)
        + b"}"
    )
    both = load_store_buffer(memoryview(body))
    assert both is not None
    views = load_store_views(memoryview(body))
    if views is None:
        assert any(not isinstance(row, dict) for _key, row in rows)  # even one written over
        return
    assert list(views.rows) == list(both.rows)
    assert [views.view(k) for k in views.rows] == [both.view(k) for k in both.rows]
    assert not views.has_row_bytes and views.copy().without(set()).has_row_bytes is False
    with pytest.raises(ValueError):
        serialize_store(views)
    with pytest.raises(ValueError):
        store_pieces(views, lambda key, raw: True)
    if views.rows:
        with pytest.raises(ValueError):
            views.decoded(next(iter(views.rows)))
