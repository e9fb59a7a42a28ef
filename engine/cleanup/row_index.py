"""What the cleanup planner asks of every row, answered once per row version and kept current.

Every plan asks the same of each row: how old it is, whether its key or chat type protects
it, which session id and transcript name it carries, whether `dmScope: main` retires it. A
`PlanIndex` keeps those answers (`RowFacts`) for one store, and for the age and count stages
the unprotected rows newest first (`by_age`), so that those stages are a bisect and a slice,
and counts per session id and per transcript name, so that "is this still referenced once
the plan's rows are gone" costs the plan's rows, not the store's.

`sync` brings the index up to a version of the store: rows whose Raw is a different object
are looked at again (an equal Raw keeps its facts), rows that are gone are dropped. The daemon
keeps one index per store across plans; the local CLI builds one per plan. Either way the
index equals one built from scratch on the same rows (`snapshot`; tests/engine).

The transcript name is decided from the row alone (`name`, `simple`): `simple` rows' transcript
is `<sessionId>.jsonl` directly in the sessions dir (or none at all) by the path rules, for
any dir without symlinks, so the planner answers them from the dir's names.
"""

from __future__ import annotations

import bisect
import math
import threading
from collections import Counter
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import msgspec
from sessiond.engine.disk_view import DirListing
from sessiond.engine.js_semantics import js_trim, to_number
from sessiond.engine.keys import chat_type_protects, key_rules
from sessiond.engine.store import RowView, encode_key, formatted_body
from sessiond.engine.transcripts import InvalidSessionId, validate_session_id

REBUILD_SHARE = 8
"""A sync that changes more than 1/REBUILD_SHARE of the rows re-sorts `by_age` once instead
of moving each row in it (a list insert or delete each)."""


class RowFacts(msgspec.Struct, gc=False):
    """One row's answers. `age`: updatedAt as a number, -inf when absent, NaN when it is not
    a number; `dated`: updatedAt is present (only such a row can be stale); `sid`: the
    sessionId when a non-empty string; `name`: `<id>.jsonl` for a sessionId that can name a
    file; `simple`: the row's transcript is `name` in its own dir (or it has none), by the
    rules alone; `checkpoints`: it lists compaction checkpoints (they reference files too);
    `dm_direct`: a peer-keyed direct-DM key of the store's agent. Outside the cycle collector,
    like `RowView` (one per row, no cycles)."""

    raw: msgspec.Raw
    view: RowView
    age: float
    dated: bool
    protected: bool
    sid: str | None
    name: str | None
    simple: bool
    checkpoints: bool
    dm_direct: bool
    chunk: int = -1  # bytes of the row in the file (`row_chunk`), once asked
    canonical: bool | None = None  # the Raw already is the row as the file holds it, once asked

    def state(self) -> tuple[Any, ...]:
        """Everything but the Raw's identity, NaN made comparable (for equality checks)."""
        age = "nan" if math.isnan(self.age) else self.age
        return (
            bytes(self.raw),
            self.view,
            age,
            self.dated,
            self.protected,
            self.sid,
            self.name,
            self.simple,
            self.checkpoints,
            self.dm_direct,
        )


def transcript_name(session_id: Any, session_file: Any, prefix: str) -> tuple[str | None, bool]:
    """(name, simple) of a row: see `RowFacts`. A recorded sessionFile that is blank, not a
    string, the bare name or the name inside the dir (`prefix` ends in "/") changes nothing;
    any other one is resolved per plan against the disk."""
    name: str | None = None
    if isinstance(session_id, str) and session_id:
        try:
            name = _validate_session_id(session_id) + ".jsonl"
        except InvalidSessionId:
            name = None
    if not isinstance(session_file, str):
        return name, True
    trimmed = js_trim(session_file)
    if not trimmed:
        return name, True
    return name, name is not None and (trimmed == name or trimmed == prefix + name)


_validate_session_id = validate_session_id.__wrapped__
"""Without its cache: the index asks once per row, and a miss that evicts costs more than the
rule itself."""


def row_facts(key: str, raw: msgspec.Raw, view: RowView, prefix: str, agent_id: str) -> RowFacts:
    """Asked of every row of a store a fresh process plans, so it calls little: positional
    fields, and the chatType asked only when the key decides nothing."""
    fields = view.fields
    protected, dm_direct = key_rules(key, agent_id)
    if protected is None:
        protected = chat_type_protects(fields)
    updated = fields.updated_at
    session_id = fields.session_id
    name, simple = transcript_name(session_id, fields.session_file, prefix)
    checkpoints = fields.compaction_checkpoints
    return RowFacts(
        raw,
        view,
        -math.inf if updated is None else to_number(updated),
        updated is not None,
        protected,
        session_id if isinstance(session_id, str) and session_id else None,
        name,
        simple,
        isinstance(checkpoints, list) and bool(checkpoints),
        dm_direct,
    )


AgeEntry = tuple[float, str, "RowFacts"]
T = TypeVar("T")


def _count(counts: dict[str, int], key: str, by: int) -> int:
    left = counts.get(key, 0) + by
    if left > 0:
        counts[key] = left
    else:
        counts.pop(key, None)
    return left


class PlanIndex:
    """The facts of one store's rows, for the sessions dir whose real path ends `prefix`.

    Held under `lock` from `sync` to the end of the plan that reads it: plans of one store on
    two threads take turns.
    """

    def __init__(self, prefix: str, agent_id: str) -> None:
        self.lock = threading.Lock()
        self.reset(prefix, agent_id)

    def reset(self, prefix: str, agent_id: str) -> None:
        """Forget every row: the next `sync` looks at all of them (another dir or agent)."""
        self.prefix = prefix
        self.agent_id = agent_id
        self.facts: dict[str, RowFacts] = {}
        # (-age, key, facts) of every unprotected row with a comparable age, sorted: newest
        # first, equal ages by key. The facts ride along so a stage that walks a slice of it
        # never looks a row up (the pair before them is unique, so sorting never reaches them).
        self.by_age: list[AgeEntry] = []
        self.undated_nan: set[str] = set()  # unprotected rows whose age is NaN
        self.protected: set[str] = set()
        self.dm_direct: set[str] = set()
        self.irregular: set[str] = set()  # not `simple`, or with checkpoints
        self.sid_rows: dict[str, int] = {}  # sessionId -> rows carrying it
        self.shared_sids: set[str] = set()  # sessionIds more than one row carries
        self.name_rows: dict[str, int] = {}  # transcript name -> simple rows naming it
        # Moves with every change `sync` makes (and with a reset: never back to an old value).
        self.version = getattr(self, "version", -1) + 1
        self._unnamed: tuple[object, int, list[int]] | None = None
        self._kept: dict[str, tuple[object, Any]] = {}

    # ------------------------------------------------------------------------------ upkeep

    def sync(self, rows: Mapping[str, msgspec.Raw], view: Callable[[str], RowView]) -> int:
        """Bring the index up to `rows` (`view(key)` decodes a row); returns rows looked at."""
        facts = self.facts
        if not facts:
            return self._build(rows, view)
        changed = [k for k, raw in rows.items() if (f := facts.get(k)) is None or f.raw is not raw]
        new = sum(1 for k in changed if k not in facts)
        gone = list(facts.keys() - rows.keys()) if len(facts) + new != len(rows) else []
        if not changed and not gone:
            return 0
        self.version += 1
        bulk = len(changed) + len(gone) > max(1_000, len(facts) // REBUILD_SHARE)
        for key in gone:
            self._drop(key, facts.pop(key), bulk)
        for key in changed:
            raw = rows[key]
            old = facts.get(key)
            if old is not None and old.raw == raw:
                old.raw = raw  # the same bytes (a reload): the same answers
                continue
            if old is not None:
                self._drop(key, old, bulk)
            fresh = row_facts(key, raw, view(key), self.prefix, self.agent_id)
            facts[key] = fresh
            self._add(key, fresh, bulk)
        if bulk:
            self.by_age = sorted(
                (-f.age, k, f)
                for k, f in facts.items()
                if not f.protected and not math.isnan(f.age)
            )
        return len(changed) + len(gone)

    def _build(self, rows: Mapping[str, msgspec.Raw], view: Callable[[str], RowView]) -> int:
        """A first sync (a fresh process's only one): every row is new, so the sets and counts
        are made whole from the facts, not row by row as `_add` keeps them."""
        if not rows:
            return 0
        self.version += 1
        prefix, agent_id = self.prefix, self.agent_id
        facts = self.facts
        for key, raw in rows.items():
            facts[key] = row_facts(key, raw, view(key), prefix, agent_id)
        items = facts.items()
        self.protected = {k for k, f in items if f.protected}
        isnan = math.isnan
        self.undated_nan = {k for k, f in items if not f.protected and isnan(f.age)}
        self.by_age = sorted(
            (-f.age, k, f) for k, f in items if not f.protected and not isnan(f.age)
        )
        self.dm_direct = {k for k, f in items if f.dm_direct}
        self.irregular = {k for k, f in items if not f.simple or f.checkpoints}
        self.sid_rows = dict(Counter(f.sid for f in facts.values() if f.sid is not None))
        self.shared_sids = {sid for sid, n in self.sid_rows.items() if n > 1}
        self.name_rows = dict(
            Counter(f.name for f in facts.values() if f.simple and f.name is not None)
        )
        return len(rows)

    def _add(self, key: str, f: RowFacts, bulk: bool) -> None:
        if f.protected:
            self.protected.add(key)
        elif math.isnan(f.age):
            self.undated_nan.add(key)
        elif not bulk:
            bisect.insort(self.by_age, (-f.age, key, f))
        if f.dm_direct:
            self.dm_direct.add(key)
        if not f.simple or f.checkpoints:
            self.irregular.add(key)
        if f.sid is not None and _count(self.sid_rows, f.sid, 1) == 2:
            self.shared_sids.add(f.sid)
        if f.simple and f.name is not None:
            _count(self.name_rows, f.name, 1)

    def _drop(self, key: str, f: RowFacts, bulk: bool) -> None:
        if f.protected:
            self.protected.discard(key)
        elif math.isnan(f.age):
            self.undated_nan.discard(key)
        elif not bulk:
            i = bisect.bisect_left(self.by_age, (-f.age, key))
            if i < len(self.by_age) and self.by_age[i][2] is f:
                del self.by_age[i]
        self.dm_direct.discard(key)
        self.irregular.discard(key)
        if f.sid is not None and _count(self.sid_rows, f.sid, -1) == 1:
            self.shared_sids.discard(f.sid)
        if f.simple and f.name is not None:
            _count(self.name_rows, f.name, -1)

    # ----------------------------------------------------------------------------- answers

    def remembered(self, name: str, key: object, compute: Callable[[], T]) -> T:
        """`compute()`, or what it gave the last time it was asked under `name` with an equal
        `key` (which must name every input it reads; the index's `version` among them when
        it reads rows; None: compute and keep nothing). One answer kept per name."""
        kept = self._kept.get(name)
        if kept is not None and kept[0] == key:
            return kept[1]  # type: ignore[no-any-return]
        value = compute()
        if key is not None:
            self._kept[name] = (key, value)
        return value

    def forget(self, name: str) -> None:
        self._kept.pop(name, None)

    def unnamed(self, listing: DirListing, positions: list[int]) -> list[int]:
        """Of `positions` in `listing` (a dir's files), those whose name no simple row
        carries; kept while this index and that listing are unchanged (the sweep asks it of
        every sweepable file on every plan)."""
        kept = self._unnamed
        if kept is not None and kept[0] is listing and kept[1] == self.version:
            return kept[2]
        names = listing.names
        rows = self.name_rows
        found = [pos for pos in positions if names[pos] not in rows]
        self._unnamed = (listing, self.version, found)
        return found

    def chunk(self, key: str) -> int:
        """Bytes of the row inside the file, as `row_chunk` writes it; kept once asked."""
        f = self.facts[key]
        if f.chunk < 0:
            self._learn(key, f)
        return f.chunk

    def is_canonical(self, key: str, raw: msgspec.Raw) -> bool:
        """Whether `raw` already is the row as `serialize_store` writes it (then a write
        copies it as it is); learnt once per row version. Safe without the lock (a flush asks
        while a plan may sync): a row the index does not hold as this very Raw is 'no'."""
        f = self.facts.get(key)
        if f is None or f.raw is not raw:
            return False
        if f.canonical is None:
            self._learn(key, f)
        return bool(f.canonical)

    @staticmethod
    def _learn(key: str, f: RowFacts) -> None:
        body = formatted_body(f.raw)
        f.canonical = memoryview(f.raw) == body
        f.chunk = len(encode_key(key)) + 4 + len(body)  # `  "key": <body>`

    def snapshot(self) -> tuple[Any, ...]:
        """Everything the index holds, comparable with another index's."""
        return (
            self.prefix,
            self.agent_id,
            {k: f.state() for k, f in self.facts.items()},
            [(age, key) for age, key, _ in self.by_age],
            set(self.undated_nan),
            set(self.protected),
            set(self.dm_direct),
            set(self.irregular),
            dict(self.sid_rows),
            set(self.shared_sids),
            dict(self.name_rows),
        )
