"""The per-key merge of another writer's file with the daemon's rows.

Conflict rule (also in docs/reliability.md, "Conflict rule"). When an external file is loaded,
the merge works per key against the *base*: the version of the file its writer had seen. That is
the file as the daemon last loaded or wrote it, or an older version when the file shows it was
built on one (a stale write; `engine.write_history` infers it):

- a key only the daemon changed since the base keeps the daemon's version (written on the next
  flush); so does a key the file lacks although the daemon wrote it after the base (the writer
  never saw it); and any key the file puts back to a row from before the daemon's latest write
  of it keeps the row served now (that file was built before that write);
- a key only the file changed takes the file's version;
- a key both changed (the daemon after the base, written or still unflushed; once written, even
  if another writer's row has replaced it since: the rule then weighs the row held now) is a
  conflict, unless both made the same change. **The external file wins, except when both sides still
  have the row and the daemon's `updatedAt` is a number strictly greater than the file's
  `updatedAt`**: then the daemon's row wins. An external deletion of a row the writer saw wins
  (an unflushed daemon change of it loses); a daemon deletion of a row the file changed loses
  (the row stays). Every conflict is logged with both `updatedAt` values and counted in
  `daemon.status`; every kept stale row is logged and counted as a repaired stale write.

Rows are compared whitespace-insensitively (`msgspec.json.format(indent=0)`), so an editor that
re-indents the file does not turn untouched rows into conflicts.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from typing import Any

import msgspec
from sessiond.engine.store import Store, view_row
from sessiond.engine.write_history import RowFacts, WriteHistory, row_hash


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


@dataclass(frozen=True, slots=True)
class StaleRepair:
    """A row the file took back although its writer had not seen sessiond's version of it."""

    key: str
    file_had: msgspec.Raw | None  # None: the row was absent from the file
    kept: msgspec.Raw | None  # None: the row stays deleted
    why: str  # "stale value" | "stale absent" | "superseded value"


@dataclass(slots=True)
class MergeOutcome:
    store: Store
    pending: set[str] = field(default_factory=set)
    conflicts: list[Conflict] = field(default_factory=list)
    repairs: list[StaleRepair] = field(default_factory=list)
    base: int | None = None  # the version the file's writer was inferred to have seen


def merge_external(
    base: Store,
    ours: Store,
    theirs: Store,
    dirty: Iterable[str],
    history: WriteHistory | None = None,
    written_ns: int = 0,
    own: Collection[str] | None = None,
) -> MergeOutcome:
    """The store to serve after loading `theirs`, with the daemon's unflushed `dirty` keys.

    `base` is the file as last loaded or written. Without a `history`, the file's writer is
    taken to have seen `base`. With one, its base is inferred (`WriteHistory.infer_base`, the
    file written at `written_ns`) and the rows the history knows are judged too. `own`: keys
    whose row in `ours` is sessiond's own (put or deleted by a request, not taken from a file;
    None: every `dirty` key); only those are protected, even when unflushed (a row merged from
    another file and not yet written back is that writer's), the rows of other writers are
    theirs to settle:

    - the file holds the row as its writer saw it, and sessiond's own differs: sessiond's is
      kept (the writer did not change that row: a *stale value*, or *stale absent*);
    - the file lacks a row whose own version went on disk after the writer's base: kept (*stale
      absent*: the writer never saw the row as it is, so it cannot have deleted it);
    - the file holds a row that was on disk before sessiond's latest own write of it: the row
      held now is kept, whoever made it (*superseded*: that file was built before that write);
    - the file holds a value sessiond never had: a real change, which wins unless sessiond's own
      row went on disk after the writer's base (or is unflushed): then the conflict rule decides;
    - the file lacks a row whose current version its writer saw: a real deletion, which wins
      (and an unflushed daemon change of it loses, by the conflict rule).
    """
    merged = theirs.copy()
    outcome = MergeOutcome(merged)
    pending = set(dirty)
    if history is None:
        seen_version = None
        keys = pending
    else:
        seen_version = history.infer_base(theirs, written_ns, base)
        outcome.base = seen_version
        keys = pending | history.keys()
    for key in sorted(keys):  # sorted: the same conflicts log in the same order every run
        mine, ext = ours.get(key), theirs.get(key)
        is_own = key in pending if own is None else key in own
        if same_row(ext, mine):
            if is_own and mine is not None:
                merged.put(key, mine)  # the same row: keep sessiond's object, still its own
            continue
        on_disk = row_hash(base.get(key))
        ext_hash, mine_hash = row_hash(ext), row_hash(mine)
        if history is None or seen_version is None:
            facts = RowFacts(on_disk, on_disk, False, frozenset())
        else:
            facts = history.row_facts(key, seen_version, on_disk, mine_hash)
        unflushed = is_own and key in pending
        newer = is_own and facts.mine_came_later  # on disk after the writer's read
        keep: str | None = None  # why sessiond's row is kept; None: the file's row stands
        if ext_hash == facts.seen and is_own:  # the writer left sessiond's row as it saw it
            keep = "stale absent" if ext is None else "stale value"
        elif ext_hash in facts.superseded:  # built before sessiond's latest write of the row
            keep = "superseded value"
        elif ext_hash == facts.seen:
            pass  # another writer's row, left as this writer saw it: the file's stands
        elif ext is None:  # the writer deleted the row it saw
            if newer:
                keep = "stale absent"
            elif unflushed and mine_hash != facts.seen:
                keep = _conflict(outcome, key, mine, ext)
        elif mine_hash != facts.seen and (newer or unflushed or facts.own_later):
            # Both changed it: the writer, and sessiond after the writer's read (an own write,
            # even one another writer's row has replaced since: the rule compares that row).
            keep = _conflict(outcome, key, mine, ext)
        if keep is None:
            continue
        if mine is None:
            merged.delete(key)
        else:
            merged.put(key, mine)
        outcome.pending.add(key)
        if keep != "conflict" and ext_hash != facts.on_disk:
            outcome.repairs.append(StaleRepair(key, ext, mine, keep))
    return outcome


def _conflict(
    outcome: MergeOutcome, key: str, mine: msgspec.Raw | None, ext: msgspec.Raw | None
) -> str | None:
    """Both sides changed `key`: the conflict rule; "conflict" when the daemon's row wins."""
    daemon_at = _updated_at(mine) if mine is not None else None
    external_at = _updated_at(ext) if ext is not None else None
    daemon_wins = (
        mine is not None
        and ext is not None
        and daemon_at is not None
        and (external_at is None or daemon_at > external_at)
    )
    winner = "daemon" if daemon_wins else "external"
    outcome.conflicts.append(Conflict(key, winner, daemon_at, external_at))
    return "conflict" if daemon_wins else None


def changed_keys(before: Store, after: Store) -> list[str]:
    """Keys whose row differs (added, removed or changed), in `after`'s order then removals."""
    keys = [k for k, raw in after.rows.items() if not same_row(before.rows.get(k), raw)]
    keys += [k for k in before.rows if k not in after.rows]
    return keys
