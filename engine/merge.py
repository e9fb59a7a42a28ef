"""The per-key merge of an external edit with the daemon's unflushed changes.

Conflict rule (also in docs/reliability.md, "Conflict rule"). When an external edit is loaded
while the daemon holds changes not yet flushed, the merge works per key, against the *base* (the
file as the daemon last loaded or wrote it):

- a key only the daemon changed keeps the daemon's version (it is written on the next flush);
- a key only the file changed takes the file's version;
- a key both changed is a conflict, unless both made the same change. **The external file wins,
  except when both sides still have the row and the daemon's `updatedAt` is a number strictly
  greater than the file's `updatedAt`**: then the daemon's row wins. An external deletion always
  wins (the row stays deleted); a daemon deletion of a row the file changed loses (the row
  stays). Every conflict is logged with both `updatedAt` values and counted in `daemon.status`.

Rows are compared whitespace-insensitively (`msgspec.json.format(indent=0)`), so an editor that
re-indents the file does not turn untouched rows into conflicts.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import msgspec
from sessiond.engine.store import Store, view_row


def _compact(raw: msgspec.Raw | None) -> bytes | None:
    return None if raw is None else msgspec.json.format(bytes(raw), indent=0)


def same_row(a: msgspec.Raw | None, b: msgspec.Raw | None) -> bool:
    if a is None or b is None:
        return a is b
    return a == b or _compact(a) == _compact(b)


def _updated_at(raw: msgspec.Raw) -> float | None:
    value: Any = view_row(raw).fields.updated_at
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


@dataclass(frozen=True, slots=True)
class Conflict:
    key: str
    winner: str  # "external" | "daemon"
    daemon_updated_at: float | None
    external_updated_at: float | None


@dataclass(slots=True)
class MergeOutcome:
    store: Store
    pending: set[str] = field(default_factory=set)
    conflicts: list[Conflict] = field(default_factory=list)


def merge_external(base: Store, ours: Store, theirs: Store, dirty: Iterable[str]) -> MergeOutcome:
    """The store to serve after loading `theirs`, with the daemon's unflushed `dirty` keys."""
    merged = theirs.copy()
    outcome = MergeOutcome(merged)
    for key in sorted(dirty):  # sorted: the same conflicts log in the same order every run
        mine, orig, ext = ours.get(key), base.get(key), theirs.get(key)
        if same_row(ext, mine):
            continue
        if not same_row(ext, orig):
            daemon_at = _updated_at(mine) if mine is not None else None
            external_at = _updated_at(ext) if ext is not None else None
            daemon_wins = (
                mine is not None
                and ext is not None
                and daemon_at is not None
                and (external_at is None or daemon_at > external_at)
            )
            conflict = Conflict(
                key, "daemon" if daemon_wins else "external", daemon_at, external_at
            )
            outcome.conflicts.append(conflict)
            if not daemon_wins:
                continue
        if mine is None:
            merged.delete(key)
        else:
            merged.put(key, mine)
        outcome.pending.add(key)
    return outcome


def changed_keys(before: Store, after: Store) -> list[str]:
    """Keys whose row differs (added, removed or changed), in `after`'s order then removals."""
    keys = [k for k, raw in after.rows.items() if not same_row(before.rows.get(k), raw)]
    keys += [k for k in before.rows if k not in after.rows]
    return keys
