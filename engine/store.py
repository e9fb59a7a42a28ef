"""The in-memory model of one sessions.json, and its exact byte form on disk.

A store is an ordered mapping of session key to the row's raw JSON bytes (`msgspec.Raw`): rows
that nothing changes are written back token for token, so fields sessiond does not know survive
every release of OpenClaw. Only the handful of fields that decisions read are decoded, into an
`EntryView`, and only when a decision needs them.

Loading is tolerant where the reference is (empty or missing file, a BOM), but a file that does
not parse is never treated as empty: `load_store_bytes` reports where it broke and the store is
marked read-only, so no later save can replace it with `{}`.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from itertools import compress, count
from operator import is_not
from typing import Any

import msgspec
from sessiond.engine.js_semantics import is_array_index, js_key_order, js_truthy

_ROWS = msgspec.json.Decoder(dict[str, msgspec.Raw])
_ANY = msgspec.json.Decoder()
_BYTE_OFFSET = re.compile(r"\(byte (\d+)\)")


class EntryView(msgspec.Struct, rename="camel", omit_defaults=True, frozen=True, gc=False):
    """The fields of a row that cleanup decisions, the dry-run table and the client lists
    (their filters, search and child index) read; nothing else. One per row version, shared
    by the plans and the lists: at 100k rows a second decoded copy for the lists held ~30 MB.

    Outside the cycle collector, like `RowView`: its values are decoded JSON, which cannot
    refer back to it, and a plan decodes one per row."""

    session_id: Any = None
    session_file: Any = None
    updated_at: Any = None
    chat_type: Any = None
    origin: Any = None
    compaction_checkpoints: Any = None
    model: Any = None
    model_provider: Any = None
    model_override: Any = None
    provider_override: Any = None
    thinking_level: Any = None
    verbose_level: Any = None
    trace_level: Any = None
    reasoning_level: Any = None
    elevated_level: Any = None
    response_usage: Any = None
    group_activation: Any = None
    system_sent: Any = None
    aborted_last_run: Any = None
    label: Any = None
    spawned_by: Any = None
    parent_session_key: Any = None
    display_name: Any = None
    subject: Any = None
    channel: Any = None
    group_channel: Any = None
    space: Any = None
    status: Any = None
    ended_at: Any = None
    started_at: Any = None


_VIEW = msgspec.json.Decoder(EntryView)


class RowView(msgspec.Struct, frozen=True, gc=False):
    """A decoded row: `fields` when the row is a JSON object, `truthy` as JS would judge it.

    Outside the cycle collector (`gc=False`): a daemon holds one per row, and a collection
    that walks them all is a pause of its own on a big store; a decoded row holds no cycle.
    """

    fields: EntryView
    is_object: bool
    truthy: bool

    @property
    def entry(self) -> EntryView | None:
        """`fields` when the row is a JSON object; None for a `null` or a string row."""
        return self.fields if self.is_object else None


def view_row(raw: msgspec.Raw | bytes) -> RowView:
    try:
        return RowView(_VIEW.decode(raw), True, True)
    except msgspec.ValidationError:
        try:
            value = _ANY.decode(raw)
        except msgspec.ValidationError:
            # A number past the float range (1e400): JSON.parse reads Infinity, and so do we
            # (the stdlib's parser, loaded only for such a row).
            import json

            value = json.loads(bytes(raw))
            if isinstance(value, dict):
                return RowView(msgspec.convert(value, EntryView), True, True)
        return RowView(EntryView(), False, js_truthy(value))


def entry_view(raw: msgspec.Raw | bytes) -> EntryView | None:
    """`view_row(raw).entry`: the row's fields, None when it is not a JSON object."""
    return view_row(raw).entry


class LoadStatus(enum.Enum):
    OK = "ok"
    MISSING = "missing"
    EMPTY = "empty"
    NOT_OBJECT = "not-object"
    CORRUPT = "corrupt"


class StoreParseError(Exception):
    """sessions.json does not parse; names the file and the line and column where it broke."""

    def __init__(self, path: str, line: int, column: int, reason: str) -> None:
        super().__init__(f"{path}: line {line}, column {column}: {reason}")
        self.path = path
        self.line = line
        self.column = column
        self.reason = reason


@dataclass(slots=True)
class Store:
    """One sessions.json in memory. `writable` is False while the file on disk does not parse."""

    rows: dict[str, msgspec.Raw] = field(default_factory=dict)
    status: LoadStatus = LoadStatus.OK
    error: StoreParseError | None = None
    had_bom: bool = False
    # Decoded rows kept across plans (the daemon sets one per live store; copies share it).
    # An entry counts only while its Raw is the very object in `rows`, so no write, reload or
    # copy can make it answer for a row it was not decoded from.
    view_cache: dict[str, tuple[msgspec.Raw, RowView]] | None = field(default=None, repr=False)
    # False for a store read by `load_store_views`: its rows are views only, never written.
    has_row_bytes: bool = True

    @property
    def writable(self) -> bool:
        return self.status not in (LoadStatus.CORRUPT, LoadStatus.NOT_OBJECT)

    def __len__(self) -> int:
        return len(self.rows)

    def __contains__(self, key: object) -> bool:
        return key in self.rows

    def __iter__(self) -> Iterator[str]:
        return iter(self.rows)

    def keys(self) -> list[str]:
        return list(self.rows)

    def get(self, key: str) -> msgspec.Raw | None:
        return self.rows.get(key)

    def view(self, key: str) -> RowView:
        raw = self.rows[key]
        cache = self.view_cache
        if cache is None:
            return view_row(raw)
        hit = cache.get(key)
        if hit is not None and hit[0] is raw:
            return hit[1]
        view = view_row(raw)
        cache[key] = (raw, view)
        return view

    def decoded(self, key: str) -> Any:
        if not self.has_row_bytes:
            raise ValueError("a store read as views only has no row bytes to decode")
        return _ANY.decode(self.rows[key])

    def put(self, key: str, raw: msgspec.Raw) -> None:
        fresh = key not in self.rows
        self.rows[key] = raw
        if fresh and is_array_index(key):
            self.rows = {k: self.rows[k] for k in js_key_order(self.rows)}

    def delete(self, key: str) -> msgspec.Raw | None:
        return self.rows.pop(key, None)

    def without(self, keys: set[str]) -> Store:
        rows = {k: v for k, v in self.rows.items() if k not in keys}
        return Store(rows, self.status, None, self.had_bom, self.view_cache, self.has_row_bytes)

    def copy(self) -> Store:
        return Store(
            dict(self.rows),
            self.status,
            self.error,
            self.had_bom,
            self.view_cache,
            self.has_row_bytes,
        )


def _position(data: bytes, offset: int) -> tuple[int, int]:
    offset = max(0, min(offset, len(data)))
    line = data.count(b"\n", 0, offset) + 1
    column = offset - (data.rfind(b"\n", 0, offset) + 1) + 1
    return line, column


def load_store_bytes(data: bytes | None, path: str) -> Store:
    """Parse sessions.json bytes (None: the file is missing) into a Store; never raises."""
    if data is None:
        return Store(status=LoadStatus.MISSING)
    had_bom = data.startswith(b"\xef\xbb\xbf")
    body = data[3:] if had_bom else data
    if not body.strip():
        return Store(status=LoadStatus.EMPTY, had_bom=had_bom)
    try:
        rows = _ROWS.decode(body)
    except msgspec.ValidationError:
        try:
            _ANY.decode(body)
        except msgspec.DecodeError as exc:
            return _corrupt(body, path, exc, had_bom)
        line, column = _position(body, len(body) - len(body.lstrip()))
        error = StoreParseError(path, line, column, "top-level value is not a JSON object")
        return Store(status=LoadStatus.NOT_OBJECT, error=error, had_bom=had_bom)
    except msgspec.DecodeError as exc:
        return _corrupt(body, path, exc, had_bom)
    return _loaded(rows, had_bom)


def load_store_buffer(buffer: memoryview) -> Store | None:
    """The store whose file `buffer` holds (a read-only map of it: the rows are views into
    it), when it is one JSON object without a BOM, as nearly every store is; None for anything
    else, which `load_store_bytes` then judges from the file's bytes (and says why)."""
    try:
        rows = _ROWS.decode(buffer)
    except msgspec.DecodeError:
        return None
    return _loaded(rows, False)


_VIEWS = msgspec.json.Decoder(dict[str, EntryView])

NO_ROW_BYTES = msgspec.Raw(b"null")
"""Every row's bytes in a store `load_store_views` read: it has none to give."""


def load_store_views(buffer: memoryview) -> Store | None:
    """The store `buffer` holds as decisions see it, for a plan that writes nothing (a dry
    run in a fresh process): each row's `EntryView` is decoded in the one pass that finds the
    rows, instead of splitting the file into rows and decoding every row again (a second pass
    over the whole file, ~30 ms of a 100 MB store). The rows carry no bytes
    (`has_row_bytes` is False) and the buffer is not needed once this returns. None when a
    row is not an object, or anything else the two passes judge row by row."""
    try:
        views = _VIEWS.decode(buffer)
    except msgspec.DecodeError:  # ValidationError too: a row that is no object
        return None
    store = _loaded(dict.fromkeys(views, NO_ROW_BYTES), False)
    store.has_row_bytes = False
    store.view_cache = {k: (NO_ROW_BYTES, RowView(v, True, True)) for k, v in views.items()}
    return store


def _loaded(rows: dict[str, msgspec.Raw], had_bom: bool) -> Store:
    # An array index is all digits; most stores have no such key, which `map` rules out in C.
    if any(map(str.isdigit, rows)) and any(is_array_index(k) for k in rows):
        rows = {k: rows[k] for k in js_key_order(rows)}
    return Store(rows=rows, status=LoadStatus.OK, had_bom=had_bom)


def _corrupt(body: bytes, path: str, exc: msgspec.DecodeError, had_bom: bool) -> Store:
    message = str(exc)
    found = _BYTE_OFFSET.search(message)
    offset = int(found.group(1)) if found else len(body)
    line, column = _position(body, offset)
    reason = _BYTE_OFFSET.sub("", message).strip().rstrip(":").strip() or "malformed JSON"
    error = StoreParseError(path, line, column, reason)
    return Store(status=LoadStatus.CORRUPT, error=error, had_bom=had_bom)


# -------------------------------------------------------------------------------- byte form


def encode_key(key: str) -> bytes:
    """A key as `JSON.stringify` writes it (lone surrogates escaped, the rest as is)."""
    try:
        return msgspec.json.encode(key)
    except UnicodeEncodeError:
        escaped = "".join(f"\\u{ord(c):04x}" if 0xD800 <= ord(c) <= 0xDFFF else c for c in key)
        return msgspec.json.encode(escaped).replace(b"\\\\u", b"\\u")


def row_chunk(key: str, raw: msgspec.Raw | bytes) -> bytes:
    """`  "key": <row>` exactly as it sits inside a two-space-indented store."""
    return b"  " + encode_key(key) + b": " + formatted_body(raw)


def serialize_store(
    store: Store, canonical: Callable[[str, msgspec.Raw], bool] | None = None
) -> bytes:
    """`JSON.stringify(store, null, 2)` with untouched tokens kept exactly; no trailing newline.

    `canonical(key, raw)`: the row's bytes already are its place in the file (read from a file
    written this way), so they are copied as they are instead of formatted again: a row
    formatted costs about as much as all the rest of a write.
    """
    if not store.has_row_bytes:
        raise ValueError("a store read as views only has no rows to write")
    if not store.rows:
        return b"{}"
    if canonical is None:
        return b"{\n" + b",\n".join(row_chunk(k, v) for k, v in store.rows.items()) + b"\n}"
    return b"".join(store_pieces(store, canonical))


def store_pieces(
    store: Store, canonical: Callable[[str, msgspec.Raw], bool]
) -> list[bytes | msgspec.Raw]:
    """`serialize_store`'s bytes as the pieces they are made of, rows copied by reference: a
    writer that hands them to the disk as they are never holds the file twice in memory."""
    if not store.has_row_bytes:
        raise ValueError("a store read as views only has no rows to write")
    if not store.rows:
        return [b"{}"]
    parts: list[bytes | msgspec.Raw] = [b"{\n"]
    for key, raw in store.rows.items():
        if canonical(key, raw):
            parts += (b"  ", encode_key(key), b": ", raw, b",\n")
        else:
            parts += (row_chunk(key, raw), b",\n")
    parts[-1] = b"\n}"
    return parts


IMAGE_BLOCK_ROWS = 16
"""Rows per block of a `StoreImage`: a patch rebuilds its row's block, 16 rows of work."""


@dataclass(frozen=True, slots=True)
class StoreImage:
    """`store_pieces`' bytes in blocks of `IMAGE_BLOCK_ROWS` rows, and the rows they were made
    of. The next version of the store, with the same keys in the same order, rebuilds only the
    blocks holding a row that is not the very same object (`store_image`): under
    stress/load.py a write changes ~30 of 5,000 rows, and formatting, measuring and joining
    every row held the interpreter lock ~5 ms a write. A writer hands `pieces` to the disk as
    they are (one writev)."""

    keys: list[str]
    rows: list[msgspec.Raw]
    blocks: list[bytes]
    size: int

    @property
    def pieces(self) -> list[bytes]:
        return [b"{\n", *self.blocks, b"\n}"] if self.keys else [b"{}"]


def store_image(
    store: Store,
    canonical: Callable[[str, msgspec.Raw], bool],
    previous: StoreImage | None = None,
) -> StoreImage:
    """The image of `store`, reusing the blocks of `previous` whose rows are unchanged."""
    keys = list(store.rows)
    rows = list(store.rows.values())
    if previous is None or previous.keys != keys:
        starts: Iterator[int] = iter(range(0, len(keys), IMAGE_BLOCK_ROWS))
        blocks: list[bytes] = []
    else:
        changed = compress(count(), map(is_not, rows, previous.rows))
        starts = iter(sorted({i - i % IMAGE_BLOCK_ROWS for i in changed}))
        blocks = previous.blocks.copy()
    for start in starts:
        block = _image_block(keys, rows, start, canonical)
        if start // IMAGE_BLOCK_ROWS < len(blocks):
            blocks[start // IMAGE_BLOCK_ROWS] = block
        else:
            blocks.append(block)
    size = sum(map(len, blocks)) + 4 if keys else 2
    return StoreImage(keys, rows, blocks, size)


def _image_block(
    keys: list[str],
    rows: list[msgspec.Raw],
    start: int,
    canonical: Callable[[str, msgspec.Raw], bool],
) -> bytes:
    """The rows from `start` as `store_pieces` lays them out, each followed by its separator
    but the store's last."""
    end = min(start + IMAGE_BLOCK_ROWS, len(keys))
    parts: list[bytes | msgspec.Raw] = []
    for key, raw in zip(keys[start:end], rows[start:end], strict=True):
        if canonical(key, raw):
            parts += (b"  ", encode_key(key), b": ", raw, b",\n")
        else:
            parts += (row_chunk(key, raw), b",\n")
    if end == len(keys):
        parts.pop()
    return b"".join(parts)


def formatted_body(raw: msgspec.Raw | bytes) -> bytes:
    """The row as it stands inside a two-space-indented store, without its key."""
    return msgspec.json.format(bytes(raw), indent=2).replace(b"\n", b"\n  ")


def store_size_for_chunks(chunk_sizes: list[int]) -> int:
    if not chunk_sizes:
        return 2
    return 4 + sum(chunk_sizes) + 2 * (len(chunk_sizes) - 1)


def encode_row(value: Any) -> msgspec.Raw:
    return msgspec.Raw(msgspec.json.encode(value))
