"""What OpenClaw's own clients (TUI, Control UI, macOS app) call to browse and manage sessions.

The gateway dialect hands these implementations the reference's params as it decoded them
(`REFERENCE_SHAPES`, keyed by the method table's names); each answers in the reference's shape
(`protocol.gateway_frames`), with row fields from `engine.session_rows`, transcript text from
bounded reads (`transcript_reads`, in a thread) and every write through the live store
(`LiveStore.apply`, then `wait_durable`), so a write is durable, announced and merge-safe as
any other. A delete and a reset are journaled as daemon/methods.py journals a delete, so
`sessions.restore` puts either back. Refusals are domain errors worded as the reference words
them; the error table codes them. `sessions.changed` events go to the gateway connections that
subscribed, built from the live stores' own change stream: an external edit of sessions.json
reaches them too. The JSON-RPC dialect serves the same operations (`JSONRPC_SHAPES`) over the
same cores.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

import msgspec
import structlog
from sessiond.daemon.clock import now_ms
from sessiond.daemon.durable_file import write_durably
from sessiond.daemon.live_store import LiveStore
from sessiond.daemon.methods import (
    Written,
    archive_plan,
    journaled_change,
    not_writable,
    remove_row,
    store_for,
    writable,
)
from sessiond.daemon.os_disk_view import OsDiskView
from sessiond.daemon.transcript_reads import (
    read_history_lines,
    read_preview_messages,
    read_title_fields,
    read_usage,
    transcript_path,
)
from sessiond.engine.chat_display import HISTORY_TEXT_MAX_CHARS, fit_history_budget, project_history
from sessiond.engine.config import default_agent_id, resolve_store_path
from sessiond.engine.errors import (
    InvalidParams,
    RuntimeUnavailable,
    StoreNotFound,
    StoreReadOnly,
    StoreWriteFailed,
)
from sessiond.engine.js_semantics import js_trim
from sessiond.engine.keys import normalize_agent_id, parse_agent_session_key
from sessiond.engine.session_patch import PatchRefused, apply_patch, reset_entry
from sessiond.engine.session_rows import (
    LIST_DEFAULT_LIMIT,
    TITLE_ROWS,
    ListQuery,
    RowContext,
    agent_main_session_key,
    agent_of,
    agents_listing,
    build_row,
    canonical_spawned_by,
    canonical_stored_key,
    changed_payload,
    child_index,
    default_model,
    listable_rows,
    main_session_key,
    merge_into_combined,
    needs_transcript_usage,
    normalize_loaded_entry,
    resolve_session_key,
    select_rows,
    session_defaults,
    session_model,
    status_row,
)
from sessiond.engine.store import EntryView, entry_view
from sessiond.engine.transcript_tail import (
    PreviewItem as TailItem,
)
from sessiond.engine.transcript_tail import (
    preview_bounds,
    preview_items,
    recent_history_messages,
)
from sessiond.engine.transcripts import SessionsDir
from sessiond.protocol.gateway_frames import (
    AgentsListResult,
    ChatHistoryParams,
    ChatHistoryResult,
    EmptyParams,
    GatewaySessionRow,
    HealthAgent,
    HealthAgentSessions,
    HealthPayload,
    PreviewItem,
    ResolvedModel,
    SessionPreview,
    SessionsChangedPayload,
    SessionsDeleteParams,
    SessionsDeleteResult,
    SessionsDescribeParams,
    SessionsDescribeResult,
    SessionsListParams,
    SessionsListResult,
    SessionsPatchParams,
    SessionsPatchResult,
    SessionsPreviewParams,
    SessionsPreviewResult,
    SessionsResetParams,
    SessionsResetResult,
    SessionsSubscribeResult,
    StatusPayload,
    StatusSessions,
)
from sessiond.protocol.methods import (
    AgentInfo,
    AgentsParams,
    AgentsResult,
    ChangeReason,
    HistoryParams,
    HistoryResult,
    PreviewLine,
    PreviewParams,
    PreviewResult,
    ResetParams,
    ResetResult,
    SessionPreviewLines,
    SessionsChanged,
)

if TYPE_CHECKING:
    from sessiond.daemon.server import Connection, Daemon

log = structlog.get_logger("sessiond.gateway")

__all__ = ["JSONRPC_SHAPES", "REFERENCE_SHAPES", "GatewaySessions"]

MAX_EVENT_KEYS: Final = 32
"""A change touching more rows is announced once without a key: subscribers list again."""
MAX_QUEUED_EVENTS: Final = 10_000
PREVIEW_MAX_KEYS: Final = 64
HISTORY_DEFAULT_LIMIT: Final = 200
STATUS_RECENT: Final = 10
HEALTH_RECENT: Final = 5
_ROW = msgspec.json.Decoder()
_RAW_ROW = msgspec.json.Decoder(dict[str, msgspec.Raw])
_ENCODER = msgspec.json.Encoder()


# ------------------------------------------------------------------------------ row access


@dataclass(frozen=True, slots=True)
class Combined:
    """One row of the combined view: its canonical key, facts, owning store and bytes."""

    key: str
    facts: EntryView | None
    live: LiveStore
    raw: msgspec.Raw


Candidate = tuple[str, EntryView | None, Combined]


@dataclass(slots=True)
class _Listed:
    """The combined rows of one version of the listed stores: those a list may show
    (`listable`: no cron run keys, newest first), those that name a parent (`with_parent`,
    for the child index) and, per agent asked for, the listable rows of that agent."""

    version: tuple[object, ...]
    listable: list[Candidate]  # newest first, ties in store order
    with_parent: list[tuple[str, EntryView | None]]
    by_agent: dict[str, list[Candidate]] = field(default_factory=dict)

    def of_agent(self, agent_id: str) -> list[Candidate]:
        found = self.by_agent.get(agent_id)
        if found is None:
            found = self.by_agent[agent_id] = [
                c
                for c in self.listable
                if c[0] not in ("global", "unknown") and agent_of(c[0]) == agent_id
            ]
        return found


def _same_version(kept: tuple[object, ...], now: tuple[object, ...]) -> bool:
    """The same config and stores (by identity), each store's rows the same object at the
    same generation and change count."""
    if len(kept) != len(now) or kept[0] is not now[0]:
        return False
    for was, is_ in zip(kept[1:], now[1:], strict=True):
        assert isinstance(was, tuple) and isinstance(is_, tuple)
        if was[0] is not is_[0] or was[1] is not is_[1] or was[2:] != is_[2:]:
            return False
    return True


@dataclass(frozen=True, slots=True)
class Found:
    """A row a client named: its store, the key it is stored under, its bytes (None: absent)."""

    live: LiveStore | None
    canonical: str
    agent_id: str
    stored_key: str | None
    raw: msgspec.Raw | None

    @property
    def entry(self) -> Any:
        return _ROW.decode(self.raw) if self.raw is not None else None


class GatewaySessions:
    """The daemon's OpenClaw-client state: cached row facts and the event subscribers."""

    def __init__(self, daemon: Daemon) -> None:
        self.daemon = daemon
        self._canonical: dict[str, dict[str, str]] = {}
        self.subscribers: set[int] = set()
        self._changes: asyncio.Queue[tuple[str, list[tuple[str, msgspec.Raw | None]], str]] = (
            asyncio.Queue()
        )
        self._worker: asyncio.Task[None] | None = None
        self._listed: _Listed | None = None

    def listing(self, stores: list[LiveStore]) -> _Listed:
        """`combined(stores)` and what every list asks of each row's key, kept while no store
        changed: a list over 100k rows had parsed every key again per call (~0.7 s)."""
        version = (self.registry.config, *((s, s.store, s.gen, s.seq) for s in stores))
        kept = self._listed
        if kept is not None and _same_version(kept.version, version):
            return kept
        rows = self.combined(stores)
        candidates = [(row.key, row.facts, row) for row in rows]
        listable = listable_rows(candidates)
        # Only rows naming a parent can be anyone's child (`child_index` skips the rest).
        with_parent: list[tuple[str, EntryView | None]] = [
            (key, facts)
            for key, facts, _ in candidates
            if facts is not None and (facts.spawned_by or facts.parent_session_key)
        ]
        self._listed = _Listed(version, listable, with_parent)
        return self._listed

    def forget(self, live: LiveStore) -> None:
        """Drop what was derived from `live`'s rows (their canonical keys, the kept listing):
        a cleanup apply of it begins (`Registry.before_apply`)."""
        self._canonical.pop(live.path, None)
        kept = self._listed
        if kept is not None and any(
            isinstance(part, tuple) and part[0] is live for part in kept.version[1:]
        ):
            self._listed = None

    # ------------------------------------------------------------------------------ stores

    @property
    def registry(self) -> Any:
        return self.daemon.registry

    def store_of(self, agent_id: str) -> LiveStore | None:
        return next((s for s in self.registry if s.agent_id == agent_id), None)

    def store_path_of(self, agent_id: str) -> str:
        live = self.store_of(agent_id)
        if live is not None:
            return live.path
        where = self.registry.where
        return resolve_store_path(
            self.registry.config.store, agent_id, where.state_dir, where.home, where.cwd
        )

    def facts(self, live: LiveStore) -> Iterator[tuple[str, EntryView | None]]:
        """Every row's fields, from the store's views (decoded once per row version)."""
        view = live.store.view
        for key in live.store.rows:
            yield key, view(key).entry

    def find(self, key: str) -> Found:
        """The row a client's key names, as the reference finds it: among the canonical key,
        the key as sent, the agent's `main` alias and every spelling of these that differs
        only in case, the freshest row (the first of equals)."""
        cfg = self.registry.config
        canonical, agent_id = resolve_session_key(cfg, key)
        live = self.store_of(agent_id)
        if live is None:
            return Found(None, canonical, agent_id, None, None)
        rows = live.store.rows
        raw_key = js_trim(key)
        seeds = [canonical, raw_key]
        if canonical == agent_main_session_key(cfg, agent_id):
            seeds.append(f"agent:{agent_id}:main")
        wanted = {seed.lower() for seed in seeds if seed}
        candidates = [seed for seed in seeds if seed in rows]
        candidates += [stored for stored in rows if stored.lower() in wanted]
        best: tuple[float, str] | None = None
        for stored in candidates:
            facts = self.facts_of(live, stored)
            number = _number(facts.updated_at if facts is not None else None)
            if best is None or number > best[0]:
                best = (number, stored)
        if best is not None:
            return Found(live, canonical, agent_id, best[1], rows[best[1]])
        return Found(live, canonical, agent_id, None, None)

    def facts_of(self, live: LiveStore, key: str) -> EntryView | None:
        return live.store.view(key).entry

    def combined(self, stores: list[LiveStore]) -> list[Combined]:
        """The reference's combined view of these stores: canonical keys in first-seen order;
        rows under one key merged (the fresher wins), `spawnedBy` canonicalised. Only rows
        that need it are decoded; the others keep their facts and bytes."""
        cfg = self.registry.config
        out: dict[str, Combined] = {}
        for live in stores:
            names = self._canonical.setdefault(live.path, {})
            for key, facts in self.facts(live):
                canon = names.get(key)
                if canon is None:
                    canon = canonical_stored_key(cfg, live.agent_id, key)
                    # Most keys are already canonical: keep the key's own string, not an
                    # equal copy per row (~8 MB at 100k rows, held while the store is).
                    canon = names[key] = key if canon == key else canon
                raw = live.store.rows[key]
                spawned = facts.spawned_by if facts is not None else None
                plain = canon not in out and (
                    spawned is None or canonical_spawned_by(cfg, live.agent_id, spawned) == spawned
                )
                if plain:
                    out[canon] = Combined(canon, facts, live, raw)
                    continue
                before = out.get(canon)
                existing = _ROW.decode(before.raw) if before is not None else None
                merged = merge_into_combined(cfg, live.agent_id, existing, _ROW.decode(raw))
                encoded = msgspec.Raw(_ENCODER.encode(merged))
                out[canon] = Combined(canon, entry_view(encoded), live, encoded)
        return list(out.values())

    def row_context(self, live: LiveStore | None, now: int) -> RowContext:
        children = child_index(self.facts(live), now) if live is not None else {}
        return RowContext(self.registry.config, now, children)

    def full_row(
        self,
        found: Found,
        ctx: RowContext,
        *,
        title: bool = False,
        last_message: bool = False,
    ) -> GatewaySessionRow | None:
        """A row as describe and events show it. Blocking (it may read the transcript), so it
        runs in a thread: it touches only `found` (bytes captured on the loop) and `ctx`."""
        if found.raw is None or found.live is None:
            return None
        entry = found.entry
        path = None
        wants_file = needs_transcript_usage(entry) or title or last_message
        if wants_file and isinstance(entry, dict):
            path = transcript_path(
                found.live.path,
                entry.get("sessionId"),
                entry.get("sessionFile"),
                self.registry.where,
            )
        usage = read_usage(path) if needs_transcript_usage(entry) else None
        fields = read_title_fields(path) if (title or last_message) else None
        return build_row(
            found.canonical,
            entry,
            ctx,
            lightweight=False,
            title=fields,
            include_title=title,
            include_last_message=last_message,
            usage=usage,
        )

    # ------------------------------------------------------------------------------ events

    def on_change(self, change: SessionsChanged) -> None:
        """The live stores' change stream: snapshot the changed rows now, announce in order."""
        if not self.subscribers:
            return
        live = self.registry.stores.get(change.store_path)
        if live is None:
            return
        if change.reason == "cleanup" or len(change.keys) > MAX_EVENT_KEYS:
            self._changes.put_nowait((change.store_path, [], change.reason))
        else:
            rows = [(k, live.store.rows.get(k)) for k in change.keys]
            self._changes.put_nowait((change.store_path, rows, change.reason))
        if self._worker is None or self._worker.done():
            self._worker = asyncio.create_task(self._announce(), name="gateway:sessions.changed")

    async def _announce(self) -> None:
        while not self._changes.empty():
            path, rows, reason = self._changes.get_nowait()
            live = self.registry.stores.get(path)
            ctx = self.row_context(live, now_ms())  # on the loop: it walks the store's rows
            try:
                payloads = await asyncio.to_thread(self._payloads, live, rows, reason, ctx)
            except Exception:
                log.exception("building sessions.changed failed", path=path)
                continue
            for payload in payloads:
                self._send(payload)

    def _payloads(
        self,
        live: LiveStore | None,
        rows: list[tuple[str, msgspec.Raw | None]],
        reason: str,
        ctx: RowContext,
    ) -> list[SessionsChangedPayload]:
        stamp = now_ms()
        if not rows:
            return [changed_payload(None, reason, stamp, None)]
        out = []
        for key, raw in rows:
            if raw is None or live is None:
                out.append(changed_payload(key, "delete", stamp, None))
                continue
            found = Found(live, key, live.agent_id, key, raw)
            out.append(changed_payload(key, reason, stamp, self.full_row(found, ctx)))
        return out

    def _send(self, payload: SessionsChangedPayload) -> None:
        for conn_id in list(self.subscribers):
            conn = self.daemon.connections.get(conn_id)
            if conn is None or conn.gateway_event is None:
                self.subscribers.discard(conn_id)
                continue
            if conn.outbox.qsize() >= MAX_QUEUED_EVENTS:
                continue  # dropped for a client that stopped reading, as the reference drops it
            conn.outbox.put_nowait(conn.gateway_event("sessions.changed", payload))


def _sessions(daemon: Daemon) -> GatewaySessions:
    found: GatewaySessions = daemon.gateway
    return found


# ----------------------------------------------------------------------------------- list


async def sessions_list(daemon: Daemon, conn: Connection, p: SessionsListParams) -> Any:
    gw = _sessions(daemon)
    cfg = daemon.registry.config
    now = now_ms()
    requested = js_trim(p.agent_id) if isinstance(p.agent_id, str) else ""
    if requested:
        agent = normalize_agent_id(requested)
        stores = [s for s in daemon.registry if s.agent_id == agent]
    else:
        stores = list(daemon.registry)
    # One store: its path; none (an agent without a store) or several: "(multiple)".
    path = stores[0].path if len(stores) == 1 else "(multiple)"
    listed = gw.listing(stores)
    label = js_trim(p.label) if isinstance(p.label, str) else ""
    query = ListQuery(
        limit=p.limit if isinstance(p.limit, int) else LIST_DEFAULT_LIMIT,
        include_global=p.include_global is True,
        include_unknown=p.include_unknown is True,
        agent_id=normalize_agent_id(p.agent_id) if isinstance(p.agent_id, str) else "",
        spawned_by=p.spawned_by if isinstance(p.spawned_by, str) else "",
        label=label,
        search=js_trim(p.search).lower() if isinstance(p.search, str) else "",
        active_minutes=p.active_minutes if isinstance(p.active_minutes, int) else None,
    )
    # Rows already sifted by key (no cron runs; the agent's own): the same selection.
    if query.agent_id:
        sifted = dataclasses.replace(query, agent_id="")
        selection = select_rows(listed.of_agent(query.agent_id), sifted, now, prepared=True)
    else:
        selection = select_rows(listed.listable, query, now, prepared=True)
    children = child_index(listed.with_parent, now)
    ctx = RowContext(cfg, now, children)
    titles = p.include_derived_titles is True
    last = p.include_last_message is True
    picked = [(key, row.live, row.raw) for key, _facts, row in selection.rows]

    def build() -> list[GatewaySessionRow]:
        rows = []
        for index, (key, live, raw) in enumerate(picked):
            entry = _ROW.decode(raw)
            wanted = index < TITLE_ROWS and (titles or last) and _has_session(entry)
            fields = None
            if wanted:
                assert isinstance(entry, dict)
                fields = read_title_fields(
                    transcript_path(
                        live.path,
                        entry.get("sessionId"),
                        entry.get("sessionFile"),
                        daemon.registry.where,
                    )
                )
            row = build_row(
                key,
                entry,
                ctx,
                lightweight=True,
                title=fields,
                include_title=wanted and titles,
                include_last_message=wanted and last,
            )
            rows.append(msgspec.structs.replace(row, has_active_run=False))
        return rows

    rows = await asyncio.to_thread(build) if (titles or last) else build()
    return SessionsListResult(
        ts=now,
        path=path,
        count=len(rows),
        total_count=selection.total,
        limit_applied=selection.limit,
        has_more=len(rows) < selection.total,
        defaults=session_defaults(cfg),
        sessions=rows,
    )


def _has_session(entry: Any) -> bool:
    return isinstance(entry, dict) and bool(entry.get("sessionId"))


# ----------------------------------------------------------------------- preview, describe


async def sessions_preview(daemon: Daemon, conn: Connection, p: SessionsPreviewParams) -> Any:
    gw = _sessions(daemon)
    keys = [js_trim(k) for k in p.keys if isinstance(k, str) and js_trim(k)][:PREVIEW_MAX_KEYS]
    limit, max_chars = preview_bounds(
        p.limit if isinstance(p.limit, int) else None,
        p.max_chars if isinstance(p.max_chars, int) else None,
    )
    found = [(key, gw.find(key)) for key in keys]

    def build() -> list[SessionPreview]:
        return [preview_of(gw, key, row.live, row.entry, limit, max_chars) for key, row in found]

    previews = await asyncio.to_thread(build) if found else []
    return SessionsPreviewResult(ts=now_ms(), previews=previews)


def preview_of(
    gw: GatewaySessions,
    key: str,
    live: LiveStore | None,
    entry: Any,
    limit: int,
    max_chars: int,
) -> SessionPreview:
    """One key's preview (blocking: reads up to 1 MiB of the transcript's tail)."""
    if live is None or not _has_session(entry):
        return SessionPreview(key, "missing", [])
    try:
        path = transcript_path(
            live.path, entry.get("sessionId"), entry.get("sessionFile"), gw.registry.where
        )
        messages = read_preview_messages(path, limit) if path else []
        items = preview_items(messages, limit, max_chars)
    except Exception:
        log.exception("preview failed", key=key)
        return SessionPreview(key, "error", [])
    return SessionPreview(key, "ok" if items else "empty", [_item(i) for i in items])


def _item(item: TailItem) -> PreviewItem:
    return PreviewItem(item.role, item.text)


async def sessions_describe(daemon: Daemon, conn: Connection, p: SessionsDescribeParams) -> Any:
    gw = _sessions(daemon)
    key = _require_key(p.key)
    found = gw.find(key)
    ctx = gw.row_context(found.live, now_ms())
    row = await asyncio.to_thread(
        gw.full_row,
        found,
        ctx,
        title=p.include_derived_titles is True,
        last_message=p.include_last_message is True,
    )
    return SessionsDescribeResult(session=row)


def _require_key(raw: Any) -> str:
    key = js_trim(raw) if isinstance(raw, str) else ""
    if not key:
        raise InvalidParams("key required")
    return key


# --------------------------------------------------------------------------------- writes


def _writable_store(gw: GatewaySessions, found: Found) -> LiveStore:
    if found.live is None:
        raise StoreNotFound(f'Agent "{found.agent_id}" no longer exists in configuration')
    return writable(found.live)  # StoreReadOnly for a store that does not parse


async def _commit(live: LiveStore, changes: dict[str, msgspec.Raw | None], reason: Any) -> None:
    """Apply through the live store and wait until it is on disk; a failed flush is refused
    (UNAVAILABLE, retryable): the change stays in memory and is retried."""
    try:
        gen = live.apply(changes, reason)
    except StoreReadOnly as exc:
        raise not_writable(live) from exc
    if not await live.wait_durable(gen):
        raise _not_durable(live)


def _not_durable(live: LiveStore) -> StoreWriteFailed:
    return StoreWriteFailed(
        "the change could not be written yet; it is kept in memory and retried",
        {"storePath": live.path, "error": live.flush_error},
    )


async def sessions_patch(daemon: Daemon, conn: Connection, p: SessionsPatchParams) -> Any:
    gw = _sessions(daemon)
    key = _require_key(p.key)
    found = gw.find(key)
    live = _writable_store(gw, found)
    cfg = daemon.registry.config
    loaded = found.entry if isinstance(found.entry, dict) else None
    existing = normalize_loaded_entry(loaded) if loaded is not None else None
    others = {k for k in live.store.rows if k != found.canonical}

    def label_taken(label: str) -> bool:
        return any(
            k in others and facts is not None and facts.label == label
            for k, facts in gw.facts(live)
        )

    try:
        row = apply_patch(
            existing,
            p,
            store_key=found.canonical,
            label_taken=label_taken,
            default_model=default_model(cfg, found.agent_id),
            now_ms=now_ms(),
            new_session_id=str(uuid.uuid4()),
        )
    except PatchRefused as exc:
        if exc.code == "UNAVAILABLE":
            raise RuntimeUnavailable(exc.message) from exc
        raise InvalidParams(exc.message) from exc
    changes: dict[str, msgspec.Raw | None] = {found.canonical: _encode_row(loaded, row, found)}
    if found.stored_key is not None and found.stored_key != found.canonical:
        changes[found.stored_key] = None  # the legacy spelling is migrated to the canonical key
    await _commit(live, changes, "patch")
    resolved = session_model(cfg, row, found.agent_id)
    return SessionsPatchResult(
        ok=True,
        path=live.path,
        key=found.canonical,
        entry=live.store.rows.get(found.canonical)
        or changes[found.canonical]
        or msgspec.Raw(b"{}"),
        resolved=ResolvedModel(
            model_provider=resolved.provider or msgspec.UNSET,
            model=resolved.model or msgspec.UNSET,
        ),
    )


def _encode_row(existing: dict[str, Any] | None, row: dict[str, Any], found: Found) -> msgspec.Raw:
    """The new row's bytes; fields the patch left alone keep their stored bytes."""
    if existing is None or found.raw is None:
        return msgspec.Raw(_ENCODER.encode(row))
    stored = _RAW_ROW.decode(found.raw)
    out: dict[str, msgspec.Raw] = {}
    for name, value in row.items():
        same = name in existing and existing[name] == value and type(existing[name]) is type(value)
        out[name] = stored[name] if same and name in stored else msgspec.Raw(_ENCODER.encode(value))
    return msgspec.Raw(_ENCODER.encode(out))


async def sessions_delete(daemon: Daemon, conn: Connection, p: SessionsDeleteParams) -> Any:
    gw = _sessions(daemon)
    key = _require_key(p.key)
    cfg = daemon.registry.config
    found = gw.find(key)
    main = main_session_key(cfg)
    if found.canonical == main:
        raise InvalidParams(f"Cannot delete the main session ({main}).")
    if found.live is None or found.stored_key is None:
        return SessionsDeleteResult(ok=True, key=found.canonical, deleted=False, archived=[])
    live = _writable_store(gw, found)
    archive = p.delete_transcript is not False
    removed = await remove_row(daemon.registry, live, found.stored_key, archive=archive)
    if not removed.durable:
        raise _not_durable(live)
    return SessionsDeleteResult(
        ok=True, key=found.canonical, deleted=True, archived=removed.archived
    )


async def sessions_reset(daemon: Daemon, conn: Connection, p: SessionsResetParams) -> Any:
    gw = _sessions(daemon)
    found = gw.find(_require_key(p.key))
    live = _writable_store(gw, found)
    encoded, written = await reset_row(gw, live, found, p.reason == "new")
    if not written.durable:
        raise _not_durable(live)
    return SessionsResetResult(ok=True, key=found.canonical, entry=encoded)


async def reset_row(
    gw: GatewaySessions, live: LiveStore, found: Found, as_new: bool
) -> tuple[msgspec.Raw, Written]:
    """Replace the row with a fresh session (the reference's reset), journaled as a `reset`
    (so `sessions.restore` puts the old row and transcript back): the row durably, then the
    old transcript archived as `.reset.` unless another row shares it; then the new transcript
    started. Returns the new row and what was written.

    The new transcript keeps the recorded `sessionFile` path when the row had one inside the
    sessions dir (the reference reuses it), else `<new id>.jsonl`."""
    cfg = gw.registry.config
    current = normalize_loaded_entry(found.entry) if isinstance(found.entry, dict) else None
    new_id = str(uuid.uuid4())
    directory = os.path.dirname(os.path.abspath(live.path))
    sessions = SessionsDir(directory, OsDiskView(), gw.registry.where.state_dir)
    recorded = current.get("sessionFile") if current else None
    session_file = os.path.join(sessions.real, f"{new_id}.jsonl")
    if isinstance(recorded, str) and js_trim(recorded):
        with contextlib.suppress(ValueError):
            session_file = sessions.within(recorded)
    clock = now_ms()
    row = reset_entry(
        current,
        cfg=cfg,
        agent_id=found.agent_id,
        new_session_id=new_id,
        session_file=session_file,
        now_ms=clock,
    )
    encoded = msgspec.Raw(_ENCODER.encode(row))
    changes: dict[str, msgspec.Raw | None] = {found.canonical: encoded}
    if found.stored_key is not None and found.stored_key != found.canonical:
        changes[found.stored_key] = None
    old_id = current.get("sessionId") if current else None
    old_file = current.get("sessionFile") if current else None
    archives: list[tuple[str, str]] = []
    if isinstance(old_id, str) and old_id and not _shared(gw, live, old_id, changes):
        archives = await asyncio.to_thread(
            archive_plan, gw.registry, live.path, old_id, old_file, "reset", clock
        )
    owners = {old_id.strip(): found.canonical} if isinstance(old_id, str) and old_id else {}
    reason: ChangeReason = "new" if as_new else "reset"
    written = await journaled_change(
        gw.registry, live, "reset", changes, archives, owners, clock, reason
    )
    if written.durable:
        await asyncio.to_thread(_new_transcript, session_file, new_id, clock)
    return encoded, written


def _shared(gw: GatewaySessions, live: LiveStore, session_id: str, changes: dict[str, Any]) -> bool:
    """Whether a row the change leaves alone uses this session id: its transcript is not
    ours to archive. On the loop (it walks the store's rows)."""
    return any(
        f is not None and f.session_id == session_id and k not in changes for k, f in gw.facts(live)
    )


def _new_transcript(path: str, session_id: str, clock: int) -> None:
    """The new session's transcript header, as the reference starts one (0600, if absent)."""
    if os.path.exists(path):
        return
    header = {
        "type": "session",
        "version": 3,
        "id": session_id,
        "timestamp": _iso(clock),
        "cwd": os.getcwd(),
    }
    os.makedirs(os.path.dirname(path), exist_ok=True)
    write_durably(path, _ENCODER.encode(header) + b"\n")


def _iso(clock: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(clock / 1000)) + f".{clock % 1000:03d}Z"


# ------------------------------------------------------------------------- subscriptions


async def sessions_subscribe(daemon: Daemon, conn: Connection, p: EmptyParams) -> Any:
    _sessions(daemon).subscribers.add(conn.id)
    return SessionsSubscribeResult(subscribed=True)


async def sessions_unsubscribe(daemon: Daemon, conn: Connection, p: EmptyParams) -> Any:
    _sessions(daemon).subscribers.discard(conn.id)
    return SessionsSubscribeResult(subscribed=False)


# ---------------------------------------------------------------------- agents, history


def _disk_agent_ids(state_dir: str) -> list[str]:
    try:
        with os.scandir(os.path.join(state_dir, "agents")) as entries:
            return [e.name for e in entries if e.is_dir()]
    except OSError:
        return []


async def agents_list(daemon: Daemon, conn: Connection, p: EmptyParams) -> Any:
    where = daemon.registry.where
    disk = await asyncio.to_thread(_disk_agent_ids, where.state_dir)
    result: AgentsListResult = agents_listing(
        daemon.registry.config, where.state_dir, where.home, disk
    )
    return result


async def chat_history(daemon: Daemon, conn: Connection, p: ChatHistoryParams) -> Any:
    gw = _sessions(daemon)
    found = gw.find(p.session_key)
    cfg = daemon.registry.config
    entry = found.entry if isinstance(found.entry, dict) else None
    limit = min(1000, p.limit if isinstance(p.limit, int) else HISTORY_DEFAULT_LIMIT)
    max_chars = p.max_chars if isinstance(p.max_chars, int) else _history_chars(cfg)
    messages = await asyncio.to_thread(history_messages, gw, found.live, entry, limit, max_chars)
    session_id = entry.get("sessionId") if entry else None
    thinking = entry.get("thinkingLevel") if entry else None
    verbose = entry.get("verboseLevel") if entry else None
    if verbose is None:
        verbose = _verbose_default(cfg)
    return ChatHistoryResult(
        session_key=p.session_key,
        session_id=session_id if isinstance(session_id, str) else msgspec.UNSET,
        messages=messages,
        thinking_level=thinking if thinking else "off",
        fast_mode=entry.get("fastMode", msgspec.UNSET) if entry else msgspec.UNSET,
        verbose_level=msgspec.UNSET if verbose is None else verbose,
    )


def history_messages(
    gw: GatewaySessions, live: LiveStore | None, entry: Any, limit: int, max_chars: int
) -> list[Any]:
    """The newest `limit` messages as a chat client shows them (blocking: reads the tail)."""
    session_id = entry.get("sessionId") if isinstance(entry, dict) else None
    if live is None or not session_id:
        return []
    assert isinstance(entry, dict)
    path = transcript_path(live.path, session_id, entry.get("sessionFile"), gw.registry.where)
    if path is None:
        return []
    now = now_ms()
    messages = recent_history_messages(read_history_lines(path, limit), limit, now)
    return fit_history_budget(project_history(messages, limit, max_chars), now)


def _verbose_default(cfg: Any) -> Any:
    agents = cfg.raw.get("agents") if isinstance(cfg.raw, dict) else None
    defaults = agents.get("defaults") if isinstance(agents, dict) else None
    return defaults.get("verboseDefault") if isinstance(defaults, dict) else None


def _history_chars(cfg: Any) -> int:
    gateway = cfg.raw.get("gateway") if isinstance(cfg.raw, dict) else None
    webchat = gateway.get("webchat") if isinstance(gateway, dict) else None
    value = webchat.get("chatHistoryMaxChars") if isinstance(webchat, dict) else None
    if isinstance(value, int | float) and not isinstance(value, bool):
        return int(value)
    return HISTORY_TEXT_MAX_CHARS


# -------------------------------------------------------------------------- health, status


def _recent(
    stores: list[LiveStore], gw: GatewaySessions, now: int, limit: int
) -> list[tuple[LiveStore, str, EntryView | None]]:
    rows = [
        (live, key, facts)
        for live in stores
        for key, facts in gw.facts(live)
        if key not in ("global", "unknown")
    ]
    order = sorted(
        range(len(rows)),
        key=lambda i: (-_updated(rows[i][2]), i),
    )
    return [rows[i] for i in order[:limit]]


def _updated(facts: EntryView | None) -> float:
    value = facts.updated_at if facts is not None else None
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else 0.0


def _count(live: LiveStore) -> int:
    return sum(1 for key in live.store.rows if key not in ("global", "unknown"))


def _store_sessions(live: LiveStore, gw: GatewaySessions, now: int) -> HealthAgentSessions:
    recent = [
        {
            "key": key,
            "updatedAt": facts.updated_at if facts else None,
            "age": now - _updated(facts) if facts and facts.updated_at is not None else None,
        }
        for _live, key, facts in _recent([live], gw, now, HEALTH_RECENT)
    ]
    return HealthAgentSessions(path=live.path, count=_count(live), recent=recent)


async def health(daemon: Daemon, conn: Connection, p: EmptyParams) -> Any:
    started = time.monotonic()
    gw = _sessions(daemon)
    cfg = daemon.registry.config
    now = now_ms()
    default = next((s for s in daemon.registry if s.agent_id == default_agent_id(cfg)), None)
    agents = [
        HealthAgent(
            agent_id=live.agent_id,
            name=_agent_name(cfg, live.agent_id),
            is_default=live is default,
            sessions=_store_sessions(live, gw, now),
        )
        for live in daemon.registry
    ]
    top = (
        _store_sessions(default, gw, now)
        if default is not None
        else HealthAgentSessions(path="", count=0, recent=[])
    )
    return HealthPayload(
        ok=daemon.registry.ready,
        ts=now,
        duration_ms=int((time.monotonic() - started) * 1000),
        heartbeat_seconds=0,
        default_agent_id=default_agent_id(cfg),
        agents=agents,
        sessions=top,
    )


def _agent_name(cfg: Any, agent_id: str) -> Any:
    listed = (
        cfg.raw.get("agents", {}).get("list") if isinstance(cfg.raw.get("agents"), dict) else None
    )
    for item in listed if isinstance(listed, list) else []:
        if isinstance(item, dict) and normalize_agent_id(str(item.get("id") or "")) == agent_id:
            name = item.get("name")
            if isinstance(name, str) and js_trim(name):
                return js_trim(name)
    return msgspec.UNSET


async def status(daemon: Daemon, conn: Connection, p: EmptyParams) -> Any:
    from sessiond.daemon.server import version

    cfg = daemon.registry.config
    now = now_ms()
    where = daemon.registry.where
    gw = _sessions(daemon)
    disk = await asyncio.to_thread(_disk_agent_ids, where.state_dir)
    listing = agents_listing(cfg, where.state_dir, where.home, disk)
    by_agent = []
    paths: list[str] = []
    for agent in listing.agents:
        live = gw.store_of(agent.id)
        path = live.path if live is not None else gw.store_path_of(agent.id)
        if path not in paths:
            paths.append(path)
        rows = _status_rows(cfg, live, agent.id, now)
        by_agent.append(
            {"agentId": agent.id, "path": path, "count": len(rows), "recent": rows[:10]}
        )
    everything = []
    for path in paths:
        everything.extend(_status_rows(cfg, daemon.registry.stores.get(path), None, now))
    everything.sort(key=lambda r: -_number(r.get("updatedAt")))
    defaults = session_defaults(cfg)
    return StatusPayload(
        runtime_version=version(),
        sessions=StatusSessions(
            paths=paths,
            count=len(everything),
            defaults={"model": defaults.model, "contextTokens": defaults.context_tokens},
            recent=everything[:STATUS_RECENT],
            by_agent=by_agent,
        ),
    )


def _number(value: Any) -> float:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else 0.0


def _status_rows(cfg: Any, live: LiveStore | None, agent: str | None, now: int) -> list[Any]:
    """Every row but `global` and `unknown`, newest first (stable, as JS sorts)."""
    if live is None:
        return []
    rows = []
    for key, raw in live.store.rows.items():
        if key in ("global", "unknown"):
            continue
        owner = agent
        if owner is None:
            parsed = parse_agent_session_key(key)
            owner = normalize_agent_id(parsed.agent_id) if parsed else None
        rows.append(status_row(key, _ROW.decode(raw), owner, cfg, now, model_agent=agent))
    rows.sort(key=lambda r: -_number(r.get("updatedAt")))
    return rows


# ------------------------------------------------------------------- the JSON-RPC dialect


def _rpc_found(gw: GatewaySessions, agent: str | None, key: str) -> Found:
    """A key as stored in `agent`'s store (JSON-RPC addresses rows exactly, like sessions.get)."""
    live = store_for(gw.registry, agent)
    raw = live.store.rows.get(key)
    return Found(live, key, live.agent_id, key if raw is not None else None, raw)


async def rpc_reset(daemon: Daemon, conn: Connection, p: ResetParams) -> Any:
    gw = _sessions(daemon)
    found = _rpc_found(gw, p.agent, p.key)
    live = _writable_store(gw, found)
    encoded, written = await reset_row(gw, live, found, p.reason == "new")
    return ResetResult(p.key, live.agent_id, encoded, written.durable, written.archived)


async def rpc_preview(daemon: Daemon, conn: Connection, p: PreviewParams) -> Any:
    gw = _sessions(daemon)
    if not 1 <= len(p.keys) <= PREVIEW_MAX_KEYS:
        raise InvalidParams(
            "Invalid params",
            {"path": "$.keys", "reason": f"expected 1 to {PREVIEW_MAX_KEYS} keys"},
        )
    found = [_rpc_found(gw, p.agent, key) for key in p.keys]

    def build() -> list[SessionPreviewLines]:
        out = []
        for row in found:
            shown = preview_of(gw, row.canonical, row.live, row.entry, p.limit, p.max_chars)
            items = [PreviewLine(i.role, i.text) for i in shown.items]
            out.append(SessionPreviewLines(shown.key, shown.status, items))
        return out

    return PreviewResult(await asyncio.to_thread(build))


async def rpc_history(daemon: Daemon, conn: Connection, p: HistoryParams) -> Any:
    gw = _sessions(daemon)
    found = _rpc_found(gw, p.agent, p.key)
    entry = found.entry if isinstance(found.entry, dict) else None
    messages = await asyncio.to_thread(
        history_messages, gw, found.live, entry, p.limit, p.max_chars
    )
    session_id = entry.get("sessionId") if entry else None
    return HistoryResult(
        p.key,
        found.agent_id,
        session_id if isinstance(session_id, str) else None,
        messages,
    )


async def rpc_agents(daemon: Daemon, conn: Connection, p: AgentsParams) -> Any:
    gw = _sessions(daemon)
    listing = await agents_list(daemon, conn, EmptyParams())
    configured = {s.agent_id for s in daemon.registry}
    agents = [
        AgentInfo(
            id=a.id,
            name=a.name if isinstance(a.name, str) else None,
            default=a.id == listing.default_id,
            workspace=a.workspace,
            store_path=gw.store_path_of(a.id),
        )
        for a in listing.agents
        if a.id in configured
    ]
    return AgentsResult(listing.default_id, listing.main_key, agents)


# ---------------------------------------------------------------------------- the tables

Handler = Callable[["Daemon", "Connection", Any], Awaitable[Any]]

REFERENCE_SHAPES: Final[dict[str, Handler]] = {
    "sessions.list": sessions_list,
    "sessions.preview": sessions_preview,
    "sessions.describe": sessions_describe,
    "sessions.patch": sessions_patch,
    "sessions.reset": sessions_reset,
    "sessions.delete": sessions_delete,
    "sessions.subscribe": sessions_subscribe,
    "sessions.unsubscribe": sessions_unsubscribe,
    "agents.list": agents_list,
    "chat.history": chat_history,
    "health": health,
    "status": status,
}
"""The methods of the table the gateway dialect serves in the reference's shapes: each takes
the params its adapter decoded (protocol/gateway_frames.py). The server runs these for the
gateway's params and its own JSON-RPC implementation for a name both dialects serve."""

JSONRPC_SHAPES: Final[dict[str, Handler]] = {
    "sessions.reset": rpc_reset,
    "sessions.preview": rpc_preview,
    "sessions.history": rpc_history,
    "agents.list": rpc_agents,
}
"""The same operations for JSON-RPC (`protocol.methods` params and results)."""
