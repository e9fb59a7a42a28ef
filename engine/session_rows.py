"""Stored rows as OpenClaw's clients are shown them: list selection, row fields, session keys.

Pure rules of OpenClaw 2026.5.12's gateway (`sessions.list`, `sessions.describe`, the
`sessions.changed` event, `agents.list`), applied to rows a caller decoded: the daemon owns the
stores and the transcript reads, this module owns what the reference derives from them.

What the reference computes from its own runtime (its model catalog and provider plugins,
active runs, the subagent registry) is not derived here: `thinkingLevels`, `thinkingOptions`,
`thinkingDefault`, `agentRuntime`, `pluginExtensions`, run-derived `status`/`subagentRunState`,
and token figures priced from a catalog. docs/compat.md lists them.
"""

from __future__ import annotations

import datetime as _dt
import heapq
import math
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Generic, Literal, TypeVar

import msgspec
from sessiond.engine.config import SessionsConfig, default_agent_id, list_agent_ids
from sessiond.engine.js_semantics import js_trim, to_number, utf16_len, utf16_slice
from sessiond.engine.keys import normalize_agent_id, parse_agent_session_key
from sessiond.engine.store import EntryView
from sessiond.engine.transcript_tail import TitleFields, UsageSnapshot
from sessiond.protocol.gateway_frames import (
    AgentIdentity,
    AgentModel,
    AgentsListResult,
    AgentSummary,
    GatewaySessionRow,
    SessionsChangedPayload,
    SessionsDefaults,
)

__all__ = [
    "DEFAULT_MODEL",
    "DEFAULT_PROVIDER",
    "LIST_DEFAULT_LIMIT",
    "TITLE_ROWS",
    "ListQuery",
    "ModelRef",
    "RowContext",
    "Selection",
    "agent_main_session_key",
    "agents_listing",
    "build_row",
    "canonical_stored_key",
    "changed_payload",
    "child_index",
    "derive_title",
    "main_session_key",
    "merge_into_combined",
    "needs_transcript_usage",
    "normalize_loaded_entry",
    "resolve_session_key",
    "select_rows",
    "session_defaults",
    "session_scope",
    "status_row",
]

DEFAULT_PROVIDER: Final = "openai"
DEFAULT_MODEL: Final = "gpt-5.5"
DEFAULT_CONTEXT_TOKENS: Final = 200_000
LIST_DEFAULT_LIMIT: Final = 100
TITLE_ROWS: Final = 100
"""Only the first 100 rows of a page get derived titles and previews (each is a file read)."""
DERIVED_TITLE_MAX: Final = 60
STORE_ONLY_CHILD_MS: Final = 3_600_000
ENDED_CHILD_MS: Final = 1_800_000
_CRON_RUN = re.compile(r"^cron:[^:]+:run:[^:]+(?::|$)")
_TERMINAL: Final = ("done", "failed", "killed", "timeout")
_CHECKPOINT_REASONS: Final = ("manual", "auto-threshold", "overflow-retry", "timeout-retry")

Owner = TypeVar("Owner")


# ----------------------------------------------------------------------------- small helpers


def _text(value: Any) -> str | None:
    """The reference's `normalizeOptionalString`: a trimmed non-empty string, else None."""
    if not isinstance(value, str):
        return None
    return js_trim(value) or None


def _lower(value: Any) -> str:
    text = _text(value)
    return text.lower() if text else ""


def _get(entry: Any, name: str) -> Any:
    return entry.get(name) if isinstance(entry, Mapping) else None


def _present(entry: Any, name: str) -> Any:
    """A stored field as the reference passes it on: absent is UNSET, `null` stays None."""
    if isinstance(entry, Mapping) and name in entry:
        return entry[name]
    return msgspec.UNSET


def _positive(value: Any) -> float | int | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return value if math.isfinite(value) and value > 0 else None


def _non_negative(value: Any) -> float | int | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return value if math.isfinite(value) and value >= 0 else None


def _finite_positive_stamp(value: Any) -> bool:
    return _positive(value) is not None


def _updated_number(value: Any) -> float:
    """`entry.updatedAt ?? 0` as JS subtracts it (a non-number coerces; NaN sorts as 0)."""
    number = to_number(value)
    return 0.0 if math.isnan(number) else number


def _unset_if_none(value: Any) -> Any:
    return msgspec.UNSET if value is None else value


def _either(first: Any, second: Any) -> Any:
    """JS `first ?? second` where both may be UNSET (absent) or None (null)."""
    return second if first is None or first is msgspec.UNSET else first


# ----------------------------------------------------------------------------- session keys


def main_key(cfg: SessionsConfig) -> str:
    session = cfg.raw.get("session") if isinstance(cfg.raw, Mapping) else None
    return _lower(_get(session, "mainKey")) or "main"


def session_scope(cfg: SessionsConfig) -> Any:
    return _get(cfg.raw.get("session"), "scope")


def main_session_key(cfg: SessionsConfig) -> str:
    """`global` under `session.scope: global`, else `agent:<default agent>:<mainKey>`."""
    if session_scope(cfg) == "global":
        return "global"
    agents = _get(cfg.raw.get("agents"), "list")
    listed = [a for a in agents if a] if isinstance(agents, list) else []
    chosen = next((a for a in listed if _get(a, "default")), listed[0] if listed else None)
    agent = _get(chosen, "id") or "main"
    return f"agent:{normalize_agent_id(str(agent))}:{main_key(cfg)}"


def agent_main_session_key(cfg: SessionsConfig, agent_id: str) -> str:
    """`agent:<id>:<mainKey>`: an agent's main session."""
    return f"agent:{normalize_agent_id(agent_id)}:{main_key(cfg)}"


def _canonical_main_alias(cfg: SessionsConfig, agent_id: str, key: str) -> str:
    raw = js_trim(key)
    if not raw:
        return raw
    agent = normalize_agent_id(agent_id)
    mk = main_key(cfg)
    aliases = {
        "main",
        mk,
        f"agent:{agent}:{mk}",
        f"agent:{agent}:main",
        f"agent:main:{mk}",
        "agent:main:main",
    }
    if raw in aliases:
        return "global" if session_scope(cfg) == "global" else f"agent:{agent}:{mk}"
    return raw


def resolve_session_key(
    cfg: SessionsConfig, key: str, store_agent_id: str | None = None
) -> tuple[str, str]:
    """(canonical key, owning agent id) for a key a client sent: lower-cased, `main` and bare
    keys made agent keys of the default agent, main-session aliases (`agent:<id>:main`) made
    `agent:<id>:<mainKey>`, `global`/`unknown` kept (the default agent's store holds them).
    `store_agent_id`: the store the key was found in, when it is a stored key."""
    default = default_agent_id(cfg)
    raw = js_trim(key)
    lowered = raw.lower()
    if lowered in ("global", "unknown"):
        return lowered, default
    parsed = parse_agent_session_key(raw)
    if parsed is not None:
        agent = normalize_agent_id(parsed.agent_id)
        canonical = lowered
        foreign_store = store_agent_id is not None and normalize_agent_id(store_agent_id) != default
        if agent == "main" and "main" not in list_agent_ids(cfg) and not foreign_store:
            rest = parsed.rest.lower()
            if rest in ("main", main_key(cfg)):
                agent, canonical = default, f"agent:{default}:{rest}"
        canonical = _canonical_main_alias(cfg, agent, canonical)
        found = parse_agent_session_key(canonical)
        owner = normalize_agent_id(found.agent_id) if found else default
        return canonical, owner
    if lowered in ("main", main_key(cfg)):
        canonical = main_session_key(cfg)
        found = parse_agent_session_key(canonical)
        return canonical, normalize_agent_id(found.agent_id) if found else default
    return f"agent:{default}:{lowered}", default


def canonical_stored_key(cfg: SessionsConfig, agent_id: str, key: str) -> str:
    """A key found in `agent_id`'s store as the reference lists it (its combined view):
    lower-cased, agent-qualified, main-session aliases resolved. Callers cache it per key."""
    raw = js_trim(key)
    if not raw:
        return raw
    lowered = raw.lower()
    if lowered in ("global", "unknown"):
        return lowered
    full = (
        raw if parse_agent_session_key(raw) else f"agent:{normalize_agent_id(agent_id)}:{lowered}"
    )
    return resolve_session_key(cfg, full, agent_id)[0]


def canonical_spawned_by(cfg: SessionsConfig, agent_id: str, spawned_by: Any) -> str | None:
    """`spawnedBy` as the reference's combined view shows it (lower-cased, agent-qualified,
    main aliases resolved); None when empty."""
    raw = _text(spawned_by)
    if not raw:
        return None
    lower = raw.lower()
    if lower in ("global", "unknown"):
        return lower
    full = lower if lower.startswith("agent:") else f"agent:{normalize_agent_id(agent_id)}:{lower}"
    parsed = parse_agent_session_key(full)
    owner = normalize_agent_id(parsed.agent_id) if parsed else agent_id
    return _canonical_main_alias(cfg, owner, full)


def merge_into_combined(
    cfg: SessionsConfig, agent_id: str, existing: Mapping[str, Any] | None, entry: Any
) -> Any:
    """One stored row merged into the reference's combined view under its canonical key: the
    fresher row's fields win, `spawnedBy` canonicalised. Returns `entry` itself when nothing
    changes (the usual case: one row per key, `spawnedBy` already canonical)."""
    if not isinstance(entry, Mapping):
        return entry
    if existing is not None and _updated_number(existing.get("updatedAt")) > _updated_number(
        entry.get("updatedAt")
    ):
        spawned = canonical_spawned_by(
            cfg, agent_id, _either_none(existing.get("spawnedBy"), entry.get("spawnedBy"))
        )
        return _with_spawned({**entry, **existing}, spawned)
    spawned = canonical_spawned_by(
        cfg,
        agent_id,
        _either_none(entry.get("spawnedBy"), (existing or {}).get("spawnedBy")),
    )
    if existing is None and entry.get("spawnedBy") == spawned:
        return entry
    return _with_spawned({**(existing or {}), **entry}, spawned)


def _with_spawned(row: dict[str, Any], spawned: str | None) -> dict[str, Any]:
    """`{...row, spawnedBy}`: an undefined `spawnedBy` is absent from the JSON."""
    row["spawnedBy"] = spawned
    if spawned is None:
        del row["spawnedBy"]
    return row


def _either_none(first: Any, second: Any) -> Any:
    return second if first is None else first


def is_cron_run_key(key: str) -> bool:
    parsed = parse_agent_session_key(key)
    return parsed is not None and _CRON_RUN.match(parsed.rest) is not None


def agent_of(key: str) -> str | None:
    parsed = parse_agent_session_key(key)
    return normalize_agent_id(parsed.agent_id) if parsed else None


# ------------------------------------------------------------------------------- selection


@dataclass(frozen=True, slots=True)
class ListQuery:
    """`sessions.list` filters, normalised as the reference normalises them."""

    limit: int = LIST_DEFAULT_LIMIT
    include_global: bool = False
    include_unknown: bool = False
    agent_id: str = ""
    spawned_by: str = ""
    label: str = ""
    search: str = ""
    active_minutes: int | None = None


@dataclass(frozen=True, slots=True)
class Selection(Generic[Owner]):
    """The page (newest first), how many rows matched, and the limit that cut it."""

    rows: list[tuple[str, EntryView | None, Owner]]
    total: int
    limit: int


def keeps_child_link(facts: EntryView | None, now_ms: int) -> bool:
    """A store-recorded child stays linked while running, or for a while after it ended."""
    if facts is None:
        return False
    if facts.status in _TERMINAL or _finite_positive_stamp(facts.ended_at):
        ended = facts.ended_at if _finite_positive_stamp(facts.ended_at) else facts.updated_at
        return _finite_positive_stamp(ended) and now_ms - ended <= ENDED_CHILD_MS
    if facts.status == "running" or _finite_positive_stamp(facts.started_at):
        return True
    updated = facts.updated_at
    return _finite_positive_stamp(updated) and now_ms - updated <= STORE_ONLY_CHILD_MS


def child_index(rows: Iterable[tuple[str, EntryView | None]], now_ms: int) -> dict[str, list[str]]:
    """Parent key -> child keys, from each row's `spawnedBy` and `parentSessionKey`."""
    children: dict[str, list[str]] = {}
    for key, facts in rows:
        if facts is None:
            continue
        parents = [p for p in (_text(facts.spawned_by), _text(facts.parent_session_key)) if p]
        parents = [p for p in parents if p != key]
        if not parents or not keeps_child_link(facts, now_ms):
            continue
        for parent in parents:
            listed = children.setdefault(parent, [])
            if key not in listed:
                listed.append(key)
    return children


def parse_group_key(key: str) -> tuple[str, str, str] | None:
    """(channel, group|channel, id) of `…:<channel>:group:<id>` keys."""
    parsed = parse_agent_session_key(key)
    parts = [p for p in (parsed.rest if parsed else key).split(":") if p]
    if len(parts) >= 3 and parts[1] in ("group", "channel"):
        return parts[0], parts[1], ":".join(parts[2:])
    return None


def _search_display_name(key: str, facts: EntryView) -> Any:
    if facts.display_name:
        return facts.display_name
    group = parse_group_key(key)
    channel = facts.channel if facts.channel is not None else (group[0] if group else None)
    if not channel:
        return None
    return group_display_name(
        channel, facts.subject, facts.group_channel, facts.space, group[2] if group else None, key
    )


def _matches_search(key: str, facts: EntryView | None, needle: str) -> bool:
    known = facts if facts is not None else EntryView()
    values = (
        _search_display_name(key, known),
        known.label,
        known.subject,
        known.session_id,
        key,
    )
    return any(isinstance(v, str) and needle in _lower(v) for v in values)


def listable_rows(
    candidates: Sequence[tuple[str, EntryView | None, Owner]],
) -> list[tuple[str, EntryView | None, Owner]]:
    """The candidates a list may show (no cron run keys), in the order it shows them: newest
    first, ties in store order. A caller that keeps this passes `prepared=True` to
    `select_rows`, which then neither parses every key nor sorts again."""

    def age(row: tuple[str, EntryView | None, Owner]) -> float:
        facts = row[1]
        return -_updated_number(facts.updated_at if facts is not None else None)

    shown = [c for c in candidates if not is_cron_run_key(c[0])]
    return sorted(shown, key=age)  # stable: equal times keep their order


def select_rows(
    candidates: Sequence[tuple[str, EntryView | None, Owner]],
    query: ListQuery,
    now_ms: int,
    prepared: bool = False,
) -> Selection[Owner]:
    """Filter as the reference does, then the newest `limit` (ties keep their store order).
    `prepared`: the candidates are `listable_rows`' (sifted and in that order already)."""
    kept: list[tuple[str, EntryView | None, Owner]] = []
    cutoff = None if query.active_minutes is None else now_ms - query.active_minutes * 60_000
    if prepared and not (
        query.agent_id or query.spawned_by or query.label or query.search or cutoff is not None
    ):
        # Nothing to ask of a row but its key: the page is the first rows not left out.
        left_out = {"global"} if not query.include_global else set()
        if not query.include_unknown:
            left_out.add("unknown")
        page: list[tuple[str, EntryView | None, Owner]] = []
        for row in candidates:
            if len(page) >= query.limit:
                break
            if row[0] not in left_out:
                page.append(row)
        total = len(candidates) - sum(1 for row in candidates if row[0] in left_out)
        return Selection(page, total, query.limit)
    for key, facts, owner in candidates:
        if not prepared and is_cron_run_key(key):
            continue
        if key == "global" and not query.include_global:
            continue
        if key == "unknown" and not query.include_unknown:
            continue
        if query.agent_id and (key in ("global", "unknown") or agent_of(key) != query.agent_id):
            continue
        if query.spawned_by:
            if key in ("global", "unknown") or not keeps_child_link(facts, now_ms):
                continue
            assert facts is not None
            if query.spawned_by not in (facts.spawned_by, facts.parent_session_key):
                continue
        if query.label and (facts is None or facts.label != query.label):
            continue
        if query.search and not _matches_search(key, facts, query.search):
            continue
        if cutoff is not None:
            updated = _updated_number(facts.updated_at if facts is not None else None)
            if updated < cutoff:
                continue
        kept.append((key, facts, owner))
    if prepared:
        return Selection(kept[: max(query.limit, 0)], len(kept), query.limit)

    def newest(i: int) -> tuple[float, int]:
        facts = kept[i][1]
        return -_updated_number(facts.updated_at if facts is not None else None), i

    order = heapq.nsmallest(query.limit, range(len(kept)), key=newest)
    return Selection([kept[i] for i in order], len(kept), query.limit)


# ------------------------------------------------------------------------------ display name


def _slug(raw: Any) -> str:
    text = _lower(raw)
    import unicodedata

    text = unicodedata.normalize("NFC", text)
    if not text:
        return ""
    text = re.sub(r"\s+", "-", text)
    text = re.sub(r"(?:[^\w#@.+\-]|_)+", "-", text)
    text = re.sub(r"-{2,}", "-", text)
    return re.sub(r"^[-.]+|[-.]+$", "", text)


def _shorten_id(value: Any) -> str:
    text = _text(value) or ""
    if utf16_len(text) <= 14:
        return text
    return f"{utf16_slice(text, 0, 6)}...{utf16_slice(text, -4)}"


def group_display_name(
    provider: Any, subject: Any, group_channel: Any, space: Any, ident: Any, key: str
) -> str:
    """`telegram:g-family-chat`, `slack:acme#general`: a group row's name for people."""
    provider_key = _lower(provider) or "group"
    channel, space_text, subject_text = _text(group_channel), _text(space), _text(subject)
    if channel and space_text:
        detail = f"{space_text}{'' if channel.startswith('#') else '#'}{channel}"
    else:
        detail = channel or subject_text or space_text or ""
    fallback = _text(ident) or key
    label = detail or fallback
    token = _slug(label) or _slug(_shorten_id(label))
    if not group_channel and token.startswith("#"):
        token = token.lstrip("#")
    if token and not re.match(r"^[@#]", token) and not token.startswith("g-") and "#" not in token:
        token = f"g-{token}"
    return f"{provider_key}:{token}" if token else provider_key


# -------------------------------------------------------------------------- delivery fields


def _account_id(value: Any) -> str | None:
    text = _text(value)
    if text is None:
        return None
    lowered = text.lower()
    if re.fullmatch(r"[a-z0-9][a-z0-9_-]{0,63}", text, re.IGNORECASE):
        return lowered
    cleaned = re.sub(r"[^a-z0-9_-]+", "-", lowered).lstrip("-").rstrip("-")[:64]
    return cleaned or None


def _thread_id(value: Any) -> Any:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return math.trunc(value) if math.isfinite(value) else None
    return _text(value)


def _delivery(channel: Any, to: Any, account: Any, thread: Any) -> dict[str, Any] | None:
    chan = ""
    if isinstance(channel, str):
        chan = _lower(channel)
        chan = "webchat" if chan == "webchat" else chan
    target = _text(to)
    acct = _account_id(account) if isinstance(account, str) else None
    thread_id = _thread_id(thread)
    if not chan and not target and not acct and thread_id is None:
        return None
    out: dict[str, Any] = {}
    out["channel"] = chan or None
    out["to"] = target
    out["accountId"] = acct
    if thread_id is not None:
        out["threadId"] = thread_id
    return out


def _merge_delivery(
    primary: dict[str, Any] | None, fallback: dict[str, Any] | None
) -> dict[str, Any] | None:
    if primary is None and fallback is None:
        return None
    p, f = primary or {}, fallback or {}
    conflict = bool(p.get("channel") and f.get("channel") and p["channel"] != f["channel"])

    def pick(name: str) -> Any:
        if conflict:
            return p.get(name)
        return p.get(name) if p.get(name) is not None else f.get(name)

    return _delivery(
        p.get("channel") or f.get("channel"), pick("to"), pick("accountId"), pick("threadId")
    )


def normalize_loaded_entry(entry: Mapping[str, Any]) -> dict[str, Any]:
    """A row as the reference holds it after loading the store, which is what it writes back
    when it saves the row: legacy field names migrated, runtime model fields trimmed, the
    delivery fields recomputed, the skills cache dropped. sessiond applies it to the rows it
    writes, so a patched or reset row is stored as the reference would store it."""
    row = dict(entry)
    if not isinstance(row.get("channel"), str) and isinstance(row.get("provider"), str):
        row["channel"] = row.pop("provider")
    if not isinstance(row.get("lastChannel"), str) and isinstance(row.get("lastProvider"), str):
        row["lastChannel"] = row.pop("lastProvider")
    if not isinstance(row.get("groupChannel"), str) and isinstance(row.get("room"), str):
        row["groupChannel"] = row.pop("room")
    else:
        row.pop("room", None)
    model = _text(row.get("model"))
    provider = _text(row.get("modelProvider"))
    if not model:
        row.pop("model", None)
        row.pop("modelProvider", None)
    else:
        row["model"] = model
        if provider:
            row["modelProvider"] = provider
        else:
            row.pop("modelProvider", None)
    thread = row.get("lastThreadId")
    if thread is None:
        thread = _get(row.get("deliveryContext"), "threadId")
    if thread is None:
        thread = _get(row.get("origin"), "threadId")
    source = {
        "channel": row.get("channel"),
        "lastChannel": row.get("lastChannel"),
        "lastTo": row.get("lastTo"),
        "lastAccountId": row.get("lastAccountId"),
        "lastThreadId": thread,
        "deliveryContext": row.get("deliveryContext"),
    }
    found = delivery_fields(source)
    merged = found.get("delivery_context")
    context = row.get("deliveryContext")
    same_delivery = all(
        _get(context, name) == (merged or {}).get(name)
        for name in ("channel", "to", "accountId", "threadId")
    )
    pairs = (
        ("lastChannel", "last_channel"),
        ("lastTo", "last_to"),
        ("lastAccountId", "last_account_id"),
        ("lastThreadId", "last_thread_id"),
    )
    same_last = all(
        row.get(name, msgspec.UNSET) == found.get(field, msgspec.UNSET) for name, field in pairs
    )
    if not (same_delivery and same_last):
        for name, value in (("deliveryContext", merged), *((n, found.get(f)) for n, f in pairs)):
            if value is None or value is msgspec.UNSET:
                row.pop(name, None)
            else:
                row[name] = value
    skills = row.get("skillsSnapshot")
    if isinstance(skills, Mapping) and "resolvedSkills" in skills:
        row["skillsSnapshot"] = {k: v for k, v in skills.items() if k != "resolvedSkills"}
    return row


def delivery_fields(entry: Any) -> dict[str, Any]:
    """`deliveryContext` and the `last*` fields, merged from the row's own delivery fields."""
    if not isinstance(entry, Mapping):
        return {}
    last_channel = entry.get("lastChannel")
    chan = last_channel if last_channel is not None else entry.get("channel")
    own = _delivery(
        chan, entry.get("lastTo"), entry.get("lastAccountId"), entry.get("lastThreadId")
    )
    context = entry.get("deliveryContext")
    stored = (
        _delivery(
            context.get("channel"),
            context.get("to"),
            context.get("accountId"),
            context.get("threadId"),
        )
        if isinstance(context, Mapping) and context
        else None
    )
    merged = _merge_delivery(own, stored)
    if merged is None:
        return {}
    out = {k: v for k, v in merged.items() if v is not None}
    return {
        "delivery_context": out,
        "last_channel": _unset_if_none(merged.get("channel")),
        "last_to": _unset_if_none(merged.get("to")),
        "last_account_id": _unset_if_none(merged.get("accountId")),
        "last_thread_id": _unset_if_none(merged.get("threadId")),
    }


# ---------------------------------------------------------------------------------- models


@dataclass(frozen=True, slots=True)
class ModelRef:
    provider: str | None
    model: str | None


def _primary(value: Any) -> str | None:
    if isinstance(value, str):
        return _text(value)
    if isinstance(value, Mapping):
        return _text(value.get("primary"))
    return None


def _agent_entry(cfg: SessionsConfig, agent_id: str) -> Mapping[str, Any] | None:
    listed = _get(cfg.raw.get("agents"), "list")
    if not isinstance(listed, list):
        return None
    wanted = normalize_agent_id(agent_id)
    for item in listed:
        if isinstance(item, Mapping) and normalize_agent_id(_text(item.get("id"))) == wanted:
            return item
    return None


def _defaults(cfg: SessionsConfig) -> Mapping[str, Any]:
    found = _get(cfg.raw.get("agents"), "defaults")
    return found if isinstance(found, Mapping) else {}


def _parse_model(raw: str, default_provider: str) -> ModelRef | None:
    text = js_trim(raw)
    if not text:
        return None
    if text.lower() == "openrouter:auto":
        return ModelRef("openrouter", "auto")
    slash = text.find("/")
    if slash == -1:
        return ModelRef(default_provider.lower(), text)
    provider, model = js_trim(text[:slash]), js_trim(text[slash + 1 :])
    if not provider or not model:
        return None
    return ModelRef(provider.lower(), model)


def default_model(cfg: SessionsConfig, agent_id: str | None = None) -> ModelRef:
    """The agent's configured model, else the defaults', else openai/gpt-5.5."""
    raw = None
    if agent_id is not None:
        entry = _agent_entry(cfg, agent_id)
        raw = _primary(entry.get("model")) if entry is not None else None
    raw = raw or _primary(_defaults(cfg).get("model"))
    if raw:
        found = _parse_model(raw, DEFAULT_PROVIDER)
        if found is not None:
            return found
    return ModelRef(DEFAULT_PROVIDER, DEFAULT_MODEL)


def _override(entry: Any) -> tuple[str | None, str | None]:
    provider = _text(_get(entry, "providerOverride"))
    model = _text(_get(entry, "modelOverride"))
    if provider and model and model.lower().startswith(f"{provider.lower()}/"):
        model = js_trim(model[len(provider) + 1 :]) or model
    return provider, model


def session_model(cfg: SessionsConfig, entry: Any, agent_id: str) -> ModelRef:
    """The reference's `resolveSessionModelRef`: override, then runtime, then the default."""
    provider_override, model_override = _override(entry)
    if provider_override and model_override:
        found = _parse_model(f"{provider_override}/{model_override}", provider_override)
        return found or ModelRef(provider_override, model_override)
    runtime_provider = _text(_get(entry, "modelProvider"))
    runtime_model = _text(_get(entry, "model"))
    if runtime_provider and runtime_model:
        return ModelRef(runtime_provider, runtime_model)
    resolved = default_model(cfg, agent_id)
    fallback_provider = resolved.provider or DEFAULT_PROVIDER
    if model_override:
        text = f"{provider_override}/{model_override}" if provider_override else model_override
        return _parse_model(text, fallback_provider) or ModelRef(
            provider_override or fallback_provider, model_override
        )
    if runtime_model:
        return _parse_model(runtime_model, fallback_provider) or ModelRef(
            fallback_provider, runtime_model
        )
    return resolved


def _identity_model(cfg: SessionsConfig, entry: Any, agent_id: str) -> ModelRef:
    model = _get(entry, "model")
    runtime_model = js_trim(model) if isinstance(model, str) else ""
    provider = _get(entry, "modelProvider")
    runtime_provider = js_trim(provider) if isinstance(provider, str) else ""
    if runtime_model:
        if runtime_provider:
            return ModelRef(runtime_provider, runtime_model)
        if "/" in runtime_model:
            return _parse_model(runtime_model, DEFAULT_PROVIDER) or ModelRef(None, runtime_model)
        return ModelRef(None, runtime_model)
    return session_model(cfg, entry, agent_id)


def session_defaults(cfg: SessionsConfig) -> SessionsDefaults:
    model = default_model(cfg)
    tokens = _defaults(cfg).get("contextTokens")
    return SessionsDefaults(
        model_provider=model.provider,
        model=model.model,
        context_tokens=tokens if tokens is not None else DEFAULT_CONTEXT_TOKENS,
    )


# ------------------------------------------------------------------------------------ rows


@dataclass(frozen=True, slots=True)
class RowContext:
    cfg: SessionsConfig
    now_ms: int
    children: Mapping[str, list[str]] = field(default_factory=dict)


def classify_kind(key: str, entry: Any) -> Literal["direct", "group", "global", "unknown"]:
    if key == "global":
        return "global"
    if key == "unknown":
        return "unknown"
    if _get(entry, "chatType") in ("group", "channel"):
        return "group"
    return "group" if ":group:" in key or ":channel:" in key else "direct"


def _truncate_title(text: str) -> str:
    if utf16_len(text) <= DERIVED_TITLE_MAX:
        return text
    cut = utf16_slice(text, 0, DERIVED_TITLE_MAX - 1)
    space = cut.rfind(" ")
    if space > DERIVED_TITLE_MAX * 0.6:
        return cut[:space] + "…"
    return cut + "…"


def derive_title(entry: Any, first_user_message: str | None) -> str | None:
    """displayName, else subject, else the first user message, else the session id's start."""
    if not isinstance(entry, Mapping):
        return None
    for name in ("displayName", "subject"):
        found = _text(entry.get(name))
        if found:
            return found
    if first_user_message and js_trim(first_user_message):
        return _truncate_title(js_trim(re.sub(r"\s+", " ", first_user_message)))
    session_id = entry.get("sessionId")
    if not session_id or not isinstance(session_id, str):
        return None
    prefix = utf16_slice(session_id, 0, 8)
    updated = _positive(entry.get("updatedAt"))
    if updated is not None:
        try:
            day = _dt.datetime.fromtimestamp(updated / 1000, tz=_dt.UTC).strftime("%Y-%m-%d")
        except (OverflowError, ValueError, OSError):
            return prefix
        return f"{prefix} ({day})"
    return prefix


def _latest_checkpoint(entry: Any) -> dict[str, Any] | msgspec.UnsetType:
    checkpoints = _get(entry, "compactionCheckpoints")
    if not isinstance(checkpoints, list) or not checkpoints:
        return msgspec.UNSET
    latest: Any = None
    for checkpoint in checkpoints:
        created = _get(checkpoint, "createdAt")
        if latest is None:
            latest = checkpoint
            continue
        current = _get(latest, "createdAt")
        if (
            isinstance(created, int | float)
            and isinstance(current, int | float)
            and created > current
        ):
            latest = checkpoint
    ident = _text(_get(latest, "checkpointId"))
    created = _get(latest, "createdAt")
    reason = _get(latest, "reason")
    if not ident or isinstance(created, bool) or not isinstance(created, int | float):
        return msgspec.UNSET
    if not math.isfinite(created) or reason not in _CHECKPOINT_REASONS:
        return msgspec.UNSET
    return {"checkpointId": ident, "createdAt": created, "reason": reason}


def _checkpoint_count(entry: Any) -> Any:
    checkpoints = _get(entry, "compactionCheckpoints")
    if isinstance(checkpoints, list):
        return len(checkpoints)
    if isinstance(checkpoints, str):
        return utf16_len(checkpoints)
    return msgspec.UNSET


def needs_transcript_usage(entry: Any) -> bool:
    """Whether a full row (describe, events) would read token usage from the transcript."""
    if not _get(entry, "sessionId"):
        return False
    return (
        _positive(fresh_total_tokens(entry)) is None
        or _positive(_get(entry, "contextTokens")) is None
        or _non_negative(_get(entry, "estimatedCostUsd")) is None
    )


def fresh_total_tokens(entry: Any) -> Any:
    total = _get(entry, "totalTokens")
    if isinstance(total, bool) or not isinstance(total, int | float):
        return None
    if not math.isfinite(total) or total < 0 or _get(entry, "totalTokensFresh") is False:
        return None
    return total


def build_row(
    key: str,
    entry: Any,
    ctx: RowContext,
    *,
    lightweight: bool,
    title: TitleFields | None = None,
    include_title: bool = False,
    include_last_message: bool = False,
    usage: UsageSnapshot | None = None,
) -> GatewaySessionRow:
    """One row as the reference builds it: `lightweight` for list rows (no transcript usage),
    else as `sessions.describe` and events (token usage from the transcript tail, `usage`)."""
    cfg = ctx.cfg
    group = parse_group_key(key)
    stored_channel = _get(entry, "channel")
    channel = stored_channel if stored_channel is not None else (group[0] if group else None)
    subject, group_channel, space = (
        _get(entry, "subject"),
        _get(entry, "groupChannel"),
        _get(entry, "space"),
    )
    origin = _get(entry, "origin")
    display = _get(entry, "displayName")
    if display is None and channel:
        display = group_display_name(
            channel, subject, group_channel, space, group[2] if group else None, key
        )
    if display is None:
        display = _get(entry, "label")
    if display is None and isinstance(origin, Mapping):
        display = origin.get("label")
    parsed = parse_agent_session_key(key)
    agent_id = normalize_agent_id(parsed.agent_id if parsed else default_agent_id(cfg))
    selected = session_model(cfg, entry, agent_id) if _override(entry)[1] else None
    resolved = _identity_model(cfg, entry, agent_id)
    runtime_present = bool(_text(_get(entry, "model")) or _text(_get(entry, "modelProvider")))
    stored_total = _positive(fresh_total_tokens(entry))
    needs_context = _positive(_get(entry, "contextTokens")) is None
    transcript = None if lightweight else usage
    provider, model = resolved.provider, resolved.model or DEFAULT_MODEL
    if runtime_present and (stored_total is None or needs_context) and transcript is not None:
        provider = transcript.model_provider or provider
        model = transcript.model or model
    total = stored_total
    if total is None and transcript is not None:
        total = _positive(transcript.total_tokens)
    row_provider = selected.provider if selected else provider
    row_model = selected.model if selected else model
    cost = _non_negative(_get(entry, "estimatedCostUsd"))
    if cost is None and transcript is not None:
        cost = _non_negative(transcript.cost_usd)
    derived: Any = msgspec.UNSET
    preview: Any = msgspec.UNSET
    if _get(entry, "sessionId") and (include_title or include_last_message):
        fields = title or TitleFields(None, None)
        if include_title:
            derived = _unset_if_none(derive_title(entry, fields.first_user_message))
        if include_last_message and fields.last_message_preview:
            preview = fields.last_message_preview
    delivery = delivery_fields(entry)
    children = ctx.children.get(key)
    return GatewaySessionRow(
        key=key,
        spawned_by=_present(entry, "spawnedBy"),
        spawned_workspace_dir=_present(entry, "spawnedWorkspaceDir"),
        forked_from_parent=_present(entry, "forkedFromParent"),
        spawn_depth=_present(entry, "spawnDepth"),
        subagent_role=_present(entry, "subagentRole"),
        subagent_control_scope=_present(entry, "subagentControlScope"),
        kind=classify_kind(key, entry),
        label=_present(entry, "label"),
        display_name=_unset_if_none(display),
        derived_title=derived,
        last_message_preview=preview,
        channel=_unset_if_none(channel),
        subject=_present(entry, "subject"),
        group_channel=_present(entry, "groupChannel"),
        space=_present(entry, "space"),
        chat_type=_present(entry, "chatType"),
        origin=_present(entry, "origin"),
        updated_at=_get(entry, "updatedAt"),
        session_id=_present(entry, "sessionId"),
        system_sent=_present(entry, "systemSent"),
        aborted_last_run=_present(entry, "abortedLastRun"),
        thinking_level=_present(entry, "thinkingLevel"),
        fast_mode=_present(entry, "fastMode"),
        verbose_level=_present(entry, "verboseLevel"),
        trace_level=_present(entry, "traceLevel"),
        reasoning_level=_present(entry, "reasoningLevel"),
        elevated_level=_present(entry, "elevatedLevel"),
        send_policy=_present(entry, "sendPolicy"),
        input_tokens=_present(entry, "inputTokens"),
        output_tokens=_present(entry, "outputTokens"),
        total_tokens=_unset_if_none(total),
        total_tokens_fresh=total is not None,
        estimated_cost_usd=_unset_if_none(cost),
        status=_present(entry, "status"),
        started_at=_present(entry, "startedAt"),
        ended_at=_present(entry, "endedAt"),
        runtime_ms=_present(entry, "runtimeMs"),
        parent_session_key=_present(entry, "parentSessionKey"),
        child_sessions=list(children) if children else msgspec.UNSET,
        response_usage=_present(entry, "responseUsage"),
        model_provider=_unset_if_none(row_provider),
        model=_unset_if_none(row_model),
        context_tokens=_unset_if_none(_positive(_get(entry, "contextTokens"))),
        delivery_context=delivery.get("delivery_context", msgspec.UNSET),
        last_channel=_either(delivery.get("last_channel"), _present(entry, "lastChannel")),
        last_to=_either(delivery.get("last_to"), _present(entry, "lastTo")),
        last_account_id=_either(delivery.get("last_account_id"), _present(entry, "lastAccountId")),
        last_thread_id=_either(delivery.get("last_thread_id"), _present(entry, "lastThreadId")),
        compaction_checkpoint_count=_checkpoint_count(entry),
        latest_compaction_checkpoint=_latest_checkpoint(entry),
    )


_EVENT_FIELDS: Final = tuple(
    name
    for name in SessionsChangedPayload.__struct_fields__
    if name not in ("session_key", "reason", "ts", "has_active_run")
)


def changed_payload(
    key: str | None, reason: str, ts: int, row: GatewaySessionRow | None
) -> SessionsChangedPayload:
    """The `sessions.changed` payload: the key, why, and the row's fields unless it is gone."""
    payload = SessionsChangedPayload(
        session_key=msgspec.UNSET if key is None else key, reason=reason, ts=ts
    )
    if row is None:
        return payload
    values = {name: getattr(row, name) for name in _EVENT_FIELDS if hasattr(row, name)}
    if values.get("updated_at") is None:
        values["updated_at"] = msgspec.UNSET
    return msgspec.structs.replace(payload, has_active_run=False, **values)


# ---------------------------------------------------------------------------------- status


def _status_kind(key: str, entry: Any) -> str:
    if key in ("global", "unknown"):
        return key
    parsed = parse_agent_session_key(key)
    if parsed is not None and parsed.rest.startswith("cron:"):
        return "cron"
    return classify_kind(key, entry)


def _flags(entry: Any) -> list[str]:
    if not isinstance(entry, Mapping):
        return []
    flags = []
    for name, label in (("thinkingLevel", "think"), ("verboseLevel", "verbose")):
        value = entry.get(name)
        if isinstance(value, str) and value:
            flags.append(f"{label}:{value}")
    if isinstance(entry.get("fastMode"), bool):
        flags.append("fast" if entry["fastMode"] else "fast:off")
    for name, label in (("reasoningLevel", "reasoning"), ("elevatedLevel", "elevated")):
        value = entry.get(name)
        if isinstance(value, str) and value:
            flags.append(f"{label}:{value}")
    if entry.get("systemSent"):
        flags.append("system")
    if entry.get("abortedLastRun"):
        flags.append("aborted")
    session_id = entry.get("sessionId")
    if isinstance(session_id, str) and session_id:
        flags.append(f"id:{session_id}")
    return flags


_STATUS_PASSED: Final = (
    "thinkingLevel", "fastMode", "verboseLevel", "traceLevel", "reasoningLevel",
    "elevatedLevel", "systemSent", "abortedLastRun", "inputTokens", "outputTokens",
    "cacheRead", "cacheWrite",
)  # fmt: skip


def _status_model(cfg: SessionsConfig, entry: Any, agent_id: str | None) -> str | None:
    """The status summary's model: override as stored, then runtime, then the default."""
    resolved = default_model(cfg, agent_id)
    fallback = resolved.provider or DEFAULT_PROVIDER
    provider_override = _text(_get(entry, "providerOverride"))
    model_override = _text(_get(entry, "modelOverride"))
    if model_override:
        text = f"{provider_override}/{model_override}" if provider_override else model_override
        found = _parse_model(text, fallback)
        return found.model if found else model_override
    runtime_model = _text(_get(entry, "model"))
    if runtime_model:
        if _text(_get(entry, "modelProvider")):
            return runtime_model
        found = _parse_model(runtime_model, fallback)
        return found.model if found else runtime_model
    return resolved.model


def status_row(
    key: str,
    entry: Any,
    agent_id: str | None,
    cfg: SessionsConfig,
    now_ms: int,
    model_agent: str | None = None,
) -> dict[str, Any]:
    """One row of `status.sessions` (the reference's status summary), without `runtime`.
    `model_agent`: whose configured model is the default (per-agent lists name one)."""
    updated = _get(entry, "updatedAt")
    model = _status_model(cfg, entry, model_agent)
    context = _positive(_get(entry, "contextTokens")) or session_defaults(cfg).context_tokens
    total = _get(entry, "totalTokens")
    total_number = (
        total
        if isinstance(total, int | float)
        and not isinstance(total, bool)
        and math.isfinite(total)
        and total >= 0
        else None
    )
    row: dict[str, Any] = {
        "agentId": agent_id if agent_id is not None else msgspec.UNSET,
        "key": key,
        "kind": _status_kind(key, entry),
        "sessionId": _present(entry, "sessionId"),
        "updatedAt": updated,
        "age": now_ms - updated if isinstance(updated, int | float) and updated else None,
    }
    for name in _STATUS_PASSED:
        row[name] = _present(entry, name)
    row["totalTokens"] = total_number
    row["totalTokensFresh"] = (
        _get(entry, "totalTokensFresh") is not False if isinstance(total, int | float) else False
    )
    row["remainingTokens"] = (
        max(0, context - total_number) if context is not None and total_number is not None else None
    )
    row["percentUsed"] = (
        min(999, math.floor(total_number / context * 100 + 0.5))
        if context and total_number is not None
        else None
    )
    row["model"] = model
    row["contextTokens"] = context
    row["flags"] = _flags(entry)
    return {k: v for k, v in row.items() if v is not msgspec.UNSET}


# ---------------------------------------------------------------------------------- agents


def _state_workspace(cfg: SessionsConfig, agent_id: str, state_dir: str, home: str) -> str:
    entry = _agent_entry(cfg, agent_id)
    configured = _text(entry.get("workspace")) if entry is not None else None
    if configured:
        return _user_path(configured, home)
    fallback = _text(_defaults(cfg).get("workspace"))
    if agent_id == default_agent_id(cfg):
        if fallback:
            return _user_path(fallback, home)
        return os.path.join(home, ".openclaw", "workspace")
    if fallback:
        return os.path.join(_user_path(fallback, home), agent_id)
    return os.path.join(state_dir, f"workspace-{agent_id}")


def _user_path(path: str, home: str) -> str:
    if path == "~" or path.startswith("~/"):
        path = home + path[1:]
    return os.path.abspath(path)


def _identity(raw: Any) -> AgentIdentity | msgspec.UnsetType:
    if not raw:
        return msgspec.UNSET
    avatar = _text(_get(raw, "avatar"))
    url = avatar if avatar and re.match(r"^(data:|https?://)", avatar, re.IGNORECASE) else None
    return AgentIdentity(
        name=_unset_if_none(_text(_get(raw, "name"))),
        theme=_unset_if_none(_text(_get(raw, "theme"))),
        emoji=_unset_if_none(_text(_get(raw, "emoji"))),
        avatar=_unset_if_none(avatar),
        avatar_url=_unset_if_none(url),
    )


def _agent_model(cfg: SessionsConfig, agent_id: str) -> AgentModel | msgspec.UnsetType:
    entry = _agent_entry(cfg, agent_id)
    own = entry.get("model") if entry is not None else None
    primary = _primary(own) or _primary(_defaults(cfg).get("model"))
    fallbacks: Any = None
    if own:
        if isinstance(own, str):
            fallbacks = [] if _primary(own) else None
        elif isinstance(own, Mapping):
            if "fallbacks" not in own:
                fallbacks = [] if "primary" in own and _primary(own) else None
            elif isinstance(own.get("fallbacks"), list):
                fallbacks = own["fallbacks"]
    if fallbacks is None:
        defaults_model = _defaults(cfg).get("model")
        listed = _get(defaults_model, "fallbacks")
        fallbacks = listed if isinstance(listed, list) else []
    seen: set[str] = set()
    unique: list[str] = []
    for value in fallbacks:
        text = js_trim(value) if isinstance(value, str) else ""
        if text and text.lower() not in seen:
            seen.add(text.lower())
            unique.append(text)
    if not primary and not unique:
        return msgspec.UNSET
    return AgentModel(
        primary=_unset_if_none(primary), fallbacks=unique if unique else msgspec.UNSET
    )


def agents_listing(
    cfg: SessionsConfig, state_dir: str, home: str, disk_agent_ids: Iterable[str]
) -> AgentsListResult:
    """`agents.list`: configured agents (and, without an explicit list, those found on disk)."""
    default = default_agent_id(cfg)
    mk = main_key(cfg)
    scope = _get(cfg.raw.get("session"), "scope")
    listed = _get(cfg.raw.get("agents"), "list")
    entries = [e for e in listed if isinstance(e, Mapping)] if isinstance(listed, list) else []
    explicit = {normalize_agent_id(_text(e.get("id"))) for e in entries if e.get("id")}
    allowed = explicit | {default} if explicit else None
    ids = {default, *explicit, *(normalize_agent_id(a) for a in disk_agent_ids)}
    ordered = sorted((i for i in ids if i), key=_locale_key)
    if default in ordered:
        ordered = [default, *(i for i in ordered if i != default)]
    ordered = [i for i in ordered if allowed is None or i in allowed]
    if mk and mk not in ordered and (allowed is None or mk in allowed):
        ordered.append(mk)
    agents = []
    for agent_id in ordered:
        entry = next(
            (e for e in entries if normalize_agent_id(_text(e.get("id"))) == agent_id), None
        )
        agents.append(
            AgentSummary(
                id=agent_id,
                name=_unset_if_none(_text(entry.get("name"))) if entry else msgspec.UNSET,
                identity=_identity(entry.get("identity")) if entry else msgspec.UNSET,
                workspace=_state_workspace(cfg, agent_id, state_dir, home),
                model=_agent_model(cfg, agent_id),
            )
        )
    return AgentsListResult(
        default_id=default,
        main_key=mk,
        scope=scope if scope is not None else "per-sender",
        agents=agents,
    )


def _locale_key(text: str) -> tuple[str, str]:
    """Close to `localeCompare` for agent ids (lower-case ASCII, digits, `-`, `_`)."""
    return (re.sub(r"[-_]", "", text), text)
