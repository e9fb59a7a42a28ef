"""What the TUI shows, kept without Textual: the rows, the filtered and sorted view of them.

Rows are keyed by (agent, key), so a page, a `sessions.get` after a change, or a reload after a
seq gap all land in the same place whatever order they arrive in. The view is the filtered rows
in sort order; a single change moves one row (bisect) rather than sorting every row again, which
matters at 100k rows.
"""

from __future__ import annotations

import bisect
import heapq
import math
from collections.abc import Iterable, Mapping
from typing import Any, Literal

import msgspec
from sessiond.protocol.methods import SessionSummary

SortField = Literal["updated", "key", "agent", "kind", "model"]
SORT_FIELDS: tuple[SortField, ...] = ("updated", "key", "agent", "kind", "model")

RowId = tuple[str, str]
"""(agent id, session key): one row across every store."""

SortKey = tuple[Any, ...]

# The key families, first match wins; synthetic families come first because a cron or hook key
# can carry a group or channel segment and is still the system's own row.
_FAMILIES: tuple[tuple[str, str], ...] = (
    (":cron:", "cron"),
    (":hook:", "hook"),
    (":subagent:", "subagent"),
    (":acp:", "acp"),
    (":heartbeat", "heartbeat"),
    (":thread:", "thread"),
    (":topic:", "topic"),
    (":group:", "group"),
    (":channel:", "channel"),
    (":direct:", "direct"),
    (":dm:", "direct"),
    (":explicit:", "explicit"),
)


def kind_of(key: str, chat_type: str | None) -> str:
    """A one-word family for the Kind column, read off the key (the row's chatType as fallback)."""
    lowered = key.lower()
    parts = lowered.split(":")
    if len(parts) == 3 and parts[0] == "agent" and parts[2] == "main":
        return "main"
    for marker, kind in _FAMILIES:
        if marker in lowered:
            return kind
    return chat_type or "other"


def _finite(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


class Row(msgspec.Struct, frozen=True, gc=False):
    """One session as the table shows it; `sessions.list` and `sessions.get` both make these.

    Out of the cycle collector's sight (`gc=False`: it holds only strings and numbers), so 100k
    rows cost nothing in each full collection; tracked, they stalled the screen as they loaded.
    """

    agent: str
    key: str
    updated_at: float | None
    session_id: str | None
    chat_type: str | None
    model: str | None
    kind: str
    search_text: str
    extra: tuple[tuple[str, int | float], ...] = ()
    """Figures the list gave beyond the ones above (token counts, transcript size)."""

    @property
    def ident(self) -> RowId:
        return (self.agent, self.key)

    def figure(self, name: str) -> int | float | None:
        """An extra figure by its SessionSummary field name, if the list gave it."""
        for have, value in self.extra:
            if have == name:
                return value
        return None


def make_row(
    agent: str,
    key: str,
    updated_at: Any,
    session_id: Any,
    chat_type: Any,
    model: Any,
    extra: tuple[tuple[str, int | float], ...] = (),
) -> Row:
    sid = session_id if isinstance(session_id, str) else None
    chat = chat_type if isinstance(chat_type, str) else None
    mod = model if isinstance(model, str) else None
    kind = kind_of(key, chat)
    search = f"{agent} {key} {sid or ''} {mod or ''} {kind}".lower()
    return Row(agent, key, _finite(updated_at), sid, chat, mod, kind, search, extra)


_SUMMARY_FIXED = {"key", "agent_id", "updated_at", "session_id", "chat_type", "model"}
_EXTRA_FIELDS: tuple[tuple[str, str], ...] = tuple(
    (name, "".join(part if i == 0 else part.title() for i, part in enumerate(name.split("_"))))
    for name in SessionSummary.__struct_fields__
    if name not in _SUMMARY_FIXED
)
"""What a summary carries beyond the fixed columns, if the protocol has it (a token count, a
transcript size): (field name, the row's camelCase field it comes from)."""


def _figures(values: list[Any]) -> tuple[tuple[str, int | float], ...]:
    return tuple(
        (name, value)
        for (name, _wire), value in zip(_EXTRA_FIELDS, values, strict=True)
        if isinstance(value, int | float) and not isinstance(value, bool)
    )


def row_from_summary(summary: SessionSummary) -> Row:
    extra = _figures([getattr(summary, name) for name, _wire in _EXTRA_FIELDS])
    return make_row(
        summary.agent_id,
        summary.key,
        summary.updated_at,
        summary.session_id,
        summary.chat_type,
        summary.model,
        extra,
    )


def row_from_entry(agent: str, key: str, entry: Any) -> Row:
    """The row as `sessions.list` would summarize it, from the whole entry `sessions.get` gave."""
    fields: Mapping[str, Any] = entry if isinstance(entry, dict) else {}
    return make_row(
        agent,
        key,
        fields.get("updatedAt"),
        fields.get("sessionId"),
        fields.get("chatType"),
        fields.get("model"),
        _figures([fields.get(wire) for _name, wire in _EXTRA_FIELDS]),
    )


def list_order(row: Row) -> SortKey:
    """`sessions.list`'s own order: newest `updatedAt` first, rows without one last."""
    if row.updated_at is None:
        return (1, 0.0, row.agent, row.key)
    return (0, -row.updated_at, row.agent, row.key)


def sort_key(row: Row, by: SortField) -> SortKey:
    """A total order for each sortable column; ties fall back to the list's order."""
    base = list_order(row)
    if by == "updated":
        return base
    if by == "key":
        return (row.key.lower(), *base)
    if by == "agent":
        return (row.agent, *base)
    if by == "kind":
        return (row.kind, *base)
    return (row.model is None, (row.model or "").lower(), *base)


def format_age(now_ms: float, updated_at: float | None) -> str:
    """A short age for a narrow column: `now`, `12m`, `5h`, `3d`, `-` when unknown."""
    if updated_at is None:
        return "-"
    minutes = (now_ms - updated_at) / 60_000
    if minutes < 1:
        return "now"
    if minutes < 60:
        return f"{int(minutes)}m"
    if minutes < 48 * 60:
        return f"{int(minutes // 60)}h"
    return f"{int(minutes // 1440)}d"


def format_bytes(count: int) -> str:
    size = float(count)
    for unit in ("B", "K", "M", "G"):
        if size < 1024 or unit == "G":
            return f"{size:.0f}{unit}" if unit == "B" else f"{size:.1f}{unit}"
        size /= 1024
    raise AssertionError("unreachable")


class RowSet:
    """Every row the TUI knows, and the view: those passing the filter, in sort order.

    `view` is kept sorted ascending by `sort_key`; `reverse` only flips how it is read, so one
    change is a bisect and an insert whichever way the table is sorted.
    """

    def __init__(self) -> None:
        self.rows: dict[RowId, Row] = {}
        self.query = ""
        self.agent: str | None = None
        self.sort: SortField = "updated"
        self.reverse = False
        self._view: list[Row] = []
        self._keys: list[SortKey] = []

    # ------------------------------------------------------------------------------ reading

    def __len__(self) -> int:
        return len(self._view)

    def at(self, index: int) -> Row:
        """The row at `index` as the table shows it (reverse applied)."""
        return self._view[len(self._view) - 1 - index if self.reverse else index]

    def index_of(self, ident: RowId) -> int | None:
        row = self.rows.get(ident)
        if row is None or not self._passes(row):
            return None
        spot = bisect.bisect_left(self._keys, sort_key(row, self.sort))
        if spot >= len(self._view) or self._view[spot].ident != ident:
            return None
        return len(self._view) - 1 - spot if self.reverse else spot

    def agents(self) -> list[str]:
        return sorted({agent for agent, _key in self.rows})

    # ------------------------------------------------------------------------------ changing

    def set_view(
        self,
        *,
        query: str | None = None,
        agent: str | Literal[False] | None = False,
        sort: SortField | None = None,
        reverse: bool | None = None,
    ) -> None:
        """Change the filter or order and rebuild the view (`agent=False`: leave it as is)."""
        if query is not None:
            self.query = query.strip().lower()
        if agent is not False:
            self.agent = agent
        if sort is not None:
            self.sort = sort
        if reverse is not None:
            self.reverse = reverse
        self._rebuild()

    def upsert_many(self, rows: Iterable[Row]) -> None:
        """Add or replace rows; many at once sort once (a page, a reload)."""
        batch = {row.ident: row for row in rows}
        if len(batch) <= 64:
            for row in batch.values():
                self.upsert(row)
            return
        replaced = any(ident in self.rows for ident in batch)
        self.rows.update(batch)
        if replaced:
            self._rebuild()
            return
        by = self.sort
        pairs = sorted(
            ((sort_key(row, by), row) for row in batch.values() if self._passes(row)),
            key=lambda pair: pair[0],
        )
        if not pairs:
            return
        if not self._keys or pairs[0][0] > self._keys[-1]:
            # The usual case while paging in list order: the page goes after what is there.
            self._keys.extend(pair[0] for pair in pairs)
            self._view.extend(pair[1] for pair in pairs)
            return
        here = zip(self._keys, self._view, strict=True)
        merged = list(heapq.merge(here, pairs, key=lambda pair: pair[0]))
        self._keys = [pair[0] for pair in merged]
        self._view = [pair[1] for pair in merged]

    def upsert(self, row: Row) -> None:
        old = self.rows.get(row.ident)
        if old is not None:
            self._unplace(old)
        self.rows[row.ident] = row
        if self._passes(row):
            sk = sort_key(row, self.sort)
            spot = bisect.bisect_left(self._keys, sk)
            self._keys.insert(spot, sk)
            self._view.insert(spot, row)

    def remove(self, ident: RowId) -> bool:
        old = self.rows.pop(ident, None)
        if old is None:
            return False
        self._unplace(old)
        return True

    def replace_all(self, rows: Iterable[Row]) -> None:
        """Every store read again in full: the rows are exactly `rows` now."""
        self.rows = {row.ident: row for row in rows}
        self._rebuild()

    def replace_agent(self, agent: str, rows: Iterable[Row]) -> None:
        """One store read again in full: its rows are exactly `rows` now."""
        for ident in [ident for ident in self.rows if ident[0] == agent]:
            del self.rows[ident]
        for row in rows:
            self.rows[row.ident] = row
        self._rebuild()

    # ----------------------------------------------------------------------------- internals

    def _passes(self, row: Row) -> bool:
        if self.agent is not None and row.agent != self.agent:
            return False
        return not self.query or self.query in row.search_text

    def _unplace(self, row: Row) -> None:
        if not self._passes(row):
            return
        spot = bisect.bisect_left(self._keys, sort_key(row, self.sort))
        if spot < len(self._view) and self._view[spot].ident == row.ident:
            del self._keys[spot]
            del self._view[spot]

    def _rebuild(self) -> None:
        by = self.sort
        pairs = sorted(
            ((sort_key(row, by), row) for row in self.rows.values() if self._passes(row)),
            key=lambda pair: pair[0],
        )
        self._keys = [pair[0] for pair in pairs]
        self._view = [pair[1] for pair in pairs]
