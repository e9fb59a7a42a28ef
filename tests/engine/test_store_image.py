"""A store's image (`store_image`): after any sequence of puts, deletes and reorders, the blocks
it rebuilt and the ones it kept are byte for byte the file `store_pieces` lays out."""

from __future__ import annotations

import msgspec
from hypothesis import given, settings
from hypothesis import strategies as st
from sessiond.engine.store import (
    IMAGE_BLOCK_ROWS,
    Store,
    encode_row,
    formatted_body,
    load_store_bytes,
    serialize_store,
    store_image,
    store_pieces,
)


def _canonical(key: str, raw: msgspec.Raw) -> bool:
    return memoryview(raw) == formatted_body(raw)


KEYS = st.sampled_from([f"agent:main:k{i}" for i in range(40)] + ["0", "7", "agent:main:\u00e9"])
STEP = st.tuples(st.sampled_from(["put", "put-formatted", "delete"]), KEYS, st.integers(0, 9))


@settings(max_examples=150, deadline=None)
@given(st.integers(0, 3 * IMAGE_BLOCK_ROWS + 3), st.lists(st.lists(STEP, max_size=5), max_size=8))
def test_the_image_is_the_file_after_every_change(
    rows: int, writes: list[list[tuple[str, str, int]]]
) -> None:
    store = Store({f"agent:main:r{i}": encode_row({"n": i}) for i in range(rows)})
    image = None
    for changes in [[], *writes]:
        store = store.copy()
        for op, key, n in changes:
            if op == "delete":
                store.delete(key)
            elif op == "put":
                store.put(key, encode_row({"n": n}))
            else:  # a row already as the file holds it: copied, not formatted again
                store.put(key, msgspec.Raw(formatted_body(encode_row({"n": n, "l": [n]}))))
        image = store_image(store, _canonical, image)
        expected = b"".join(store_pieces(store, _canonical))
        assert b"".join(image.pieces) == expected
        assert image.size == len(expected)
        assert expected == serialize_store(store)


def test_only_the_blocks_of_changed_rows_are_rebuilt() -> None:
    rows = {f"k{i}": encode_row({"n": i}) for i in range(5 * IMAGE_BLOCK_ROWS)}
    data = serialize_store(Store(rows))
    store = load_store_bytes(data, "p")
    image = store_image(store, _canonical)
    store = store.copy()
    store.put(f"k{IMAGE_BLOCK_ROWS + 4}", encode_row({"n": "changed"}))
    after = store_image(store, _canonical, image)
    kept = [a is b for a, b in zip(after.blocks, image.blocks, strict=True)]
    assert kept == [True, False, True, True, True]
    assert b"".join(after.pieces) == serialize_store(store)
