"""`sessions.list` order and pages: rows across stores merged by one sort key, cut by cursor."""

from __future__ import annotations

import bisect
import heapq
import math
from collections.abc import Iterator, Sequence
from typing import TypeVar

from sessiond.engine.js_semantics import to_number
from sessiond.engine.store import RowView

# Sort key of a row in `sessions.list`: rows with a finite updatedAt first, newest first.
ListKey = tuple[int, float, str, str]

Owner = TypeVar("Owner")


def list_key(agent_id: str, key: str, view: RowView) -> tuple[ListKey, str | None]:
    """The row's place in the list and its session id (None when it has no string id).
    `view` is the store's (`Store.view`): a view decoded here would keep a second copy of
    every row's session id alive in the list index (~8 MB at 100k rows)."""
    fields = view.fields
    value = fields.updated_at
    number = math.nan if value is None or isinstance(value, bool) else to_number(value)
    sid = fields.session_id if isinstance(fields.session_id, str) else None
    if math.isfinite(number):
        return (0, -number, agent_id, key), sid
    return (1, 0.0, agent_id, key), sid


def _rows(
    owner: Owner, order: Sequence[ListKey], start: int, end: int
) -> Iterator[tuple[Owner, ListKey]]:
    for i in range(start, end):
        yield owner, order[i]


def merge_pages(
    orders: Sequence[tuple[Owner, Sequence[ListKey]]],
    after: ListKey | None,
    cutoff: float | None,
    limit: int,
) -> tuple[list[tuple[Owner, ListKey]], int, bool]:
    """One page across sorted orders: (rows, total matching, more after this page)."""
    total = 0
    iterators = []
    for owner, order in orders:
        end = len(order)
        if cutoff is not None:
            end = bisect.bisect_right(order, (0, -cutoff), key=lambda k: (k[0], k[1]))
        start = 0 if after is None else bisect.bisect_right(order, after, 0, end)
        total += end
        iterators.append(_rows(owner, order, start, end))
    page: list[tuple[Owner, ListKey]] = []
    for item in heapq.merge(*iterators, key=lambda item: item[1]):
        if len(page) == limit:
            return page, total, True
        page.append(item)
    return page, total, False
