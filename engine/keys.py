"""Session key grammar: `agent:<id>:<rest>`, agent ids, and the maintenance key families.

Rules (all from OpenClaw 2026.5.12, case-insensitive unless said otherwise):
- a key parses when, trimmed and lowercased and split on `:` with empty segments dropped, it has
  at least three segments and the first is `agent`;
- synthetic keys (subagent, acp, cron, hook, node, heartbeat) age out even when their metadata
  says group or channel;
- durable external conversation pointers (threads, Telegram topics, group/channel keys, rows whose
  chatType is group/channel/thread) are kept by age, count and disk maintenance;
- under `dmScope=main`, peer-keyed direct rows of the target agent are stale.
"""

from __future__ import annotations

import functools
import re
from typing import Any

import msgspec
from sessiond.engine.js_semantics import js_trim

_AGENT_ID_VALID = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$", re.IGNORECASE)
_AGENT_ID_INVALID_RUN = re.compile(r"[^a-z0-9_-]+")
_TELEGRAM_TOPIC = re.compile(r"^telegram:(?:group|channel|direct|dm):.+:topic:[^:]+$", re.DOTALL)
_GROUP_OR_CHANNEL = re.compile(r"^[^:]+:(?:group|channel):.+$", re.DOTALL)
DEFAULT_AGENT_ID = "main"
KEY_CACHE = 1 << 12
"""Keys remembered per rule. Small on purpose: a plan asks about a key several times in a row
(one parse serves them all), but what a row's key decides is kept with the row by the plan
index (engine/cleanup/row_index.py), not here; 100k keys per rule cost ~100 MB."""


class ParsedKey(msgspec.Struct, frozen=True):
    agent_id: str
    rest: str


def normalize_agent_id(value: str | None) -> str:
    text = js_trim(value or "")
    if not text:
        return DEFAULT_AGENT_ID
    if _AGENT_ID_VALID.match(text):
        return text.lower()
    cleaned = _AGENT_ID_INVALID_RUN.sub("-", text.lower()).strip("-")[:64]
    return cleaned or DEFAULT_AGENT_ID


@functools.lru_cache(maxsize=KEY_CACHE)
def parse_agent_session_key(key: str) -> ParsedKey | None:
    raw = js_trim(key).lower()
    if not raw:
        return None
    parts = [p for p in raw.split(":") if p]
    if len(parts) < 3 or parts[0] != "agent":
        return None
    agent_id = js_trim(parts[1])
    rest = ":".join(parts[2:])
    if not agent_id or not rest:
        return None
    return ParsedKey(agent_id, rest)


@functools.lru_cache(maxsize=KEY_CACHE)
def _rest_or_key(key: str) -> str:
    parsed = parse_agent_session_key(key)
    return js_trim(parsed.rest if parsed else key).lower()


@functools.lru_cache(maxsize=KEY_CACHE)
def thread_id(key: str) -> str | None:
    """The id after the last `:thread:` marker, or None when absent or blank."""
    raw = js_trim(key)
    if not raw:
        return None
    marker = raw.lower().rfind(":thread:")
    if marker == -1:
        return None
    return js_trim(raw[marker + 8 :]) or None


@functools.lru_cache(maxsize=KEY_CACHE)
def is_synthetic(key: str) -> bool:
    """Keys the system made for itself: they age out whatever their metadata says."""
    raw = js_trim(key)
    parsed = parse_agent_session_key(raw) if raw else None
    parsed_rest = parsed.rest if parsed else None
    if raw and (raw.lower().startswith("subagent:") or raw.lower().startswith("acp:")):
        return True
    if parsed_rest is not None and (
        parsed_rest.startswith("subagent:")
        or parsed_rest.startswith("acp:")
        or parsed_rest.startswith("cron:")
    ):
        return True
    rest = _rest_or_key(key)
    return (
        rest.startswith("hook:")
        or rest.startswith("node:")
        or rest == "heartbeat"
        or rest.endswith(":heartbeat")
        or ":heartbeat:" in rest
    )


def _chat_type(entry: Any) -> str:
    chat_type = getattr(entry, "chat_type", None)
    if chat_type is None:
        origin = getattr(entry, "origin", None)
        if isinstance(origin, dict):
            chat_type = origin.get("chatType")
    return js_trim(chat_type).lower() if isinstance(chat_type, str) else ""


def is_protected(key: str, entry: Any) -> bool:
    """A durable external conversation pointer that age/count/disk maintenance must keep."""
    by_key = _protected_by_key(key)
    if by_key is not None:
        return by_key
    return chat_type_protects(entry)


@functools.lru_cache(maxsize=KEY_CACHE)
def _protected_by_key(key: str) -> bool | None:
    """What the key alone decides (None: the row's chatType decides)."""
    if is_synthetic(key):
        return False
    if thread_id(key):
        return True
    rest = _rest_or_key(key)
    if _TELEGRAM_TOPIC.match(rest) or _GROUP_OR_CHANNEL.match(rest):
        return True
    return None


def normalize_preserve_key(key: str | None) -> str | None:
    text = js_trim(key or "").lower()
    return text or None


def is_main_scope_stale_direct_key(
    key: str, target_agent_id: str, active_key: str | None, dm_scope: str
) -> bool:
    """A peer-keyed direct-DM row that `dmScope=main` no longer routes to."""
    if dm_scope != "main":
        return False
    if active_key and key == active_key:
        return False
    parsed = parse_agent_session_key(key)
    if parsed is None:
        return False
    if normalize_agent_id(parsed.agent_id) != normalize_agent_id(target_agent_id):
        return False
    parts = [p for p in parsed.rest.split(":") if p]
    return (
        (len(parts) == 2 and parts[0] == "direct")
        or (len(parts) == 3 and parts[1] == "direct")
        or (len(parts) == 4 and parts[2] == "direct")
    )


def key_rules(key: str, agent_id: str) -> tuple[bool | None, bool]:
    """(what the key alone decides about protection, whether `dmScope: main` retires it for
    `agent_id` when it is not the active key): `_protected_by_key` and
    `is_main_scope_stale_direct_key`, from one parse of the key. The plan index asks it of every
    row a fresh process plans, so the parse is inlined (no `ParsedKey`), the agent ids' normal
    forms are cached, and a regex runs only on a key holding the words it needs;
    tests/engine/test_units_and_keys.py holds it to the rules one by one."""
    raw = js_trim(key)
    lowered = raw.lower()
    # `parse_agent_session_key`: its segments are `parts`, its rest `parts[2:]` joined.
    parts = lowered.split(":")
    if "" in parts:
        parts = [p for p in parts if p]
    owner = js_trim(parts[1]) if len(parts) >= 3 and parts[0] == "agent" else ""
    if owner:
        parsed_rest = ":".join(parts[2:])
        rest = js_trim(parsed_rest).lower()
        synthetic = parsed_rest.startswith(("subagent:", "acp:", "cron:"))
    else:
        rest = lowered
        synthetic = False
    protected: bool | None = None
    if (
        synthetic
        or lowered.startswith(("subagent:", "acp:"))
        or rest.startswith(("hook:", "node:"))
        or rest == "heartbeat"
        or rest.endswith(":heartbeat")
        or ":heartbeat:" in rest
    ):
        protected = False
    else:
        marker = lowered.rfind(":thread:") if raw else -1
        if (
            (marker != -1 and js_trim(raw[marker + 8 :]))
            or (":topic:" in rest and _TELEGRAM_TOPIC.match(rest))
            or ((":group:" in rest or ":channel:" in rest) and _GROUP_OR_CHANNEL.match(rest))
        ):
            protected = True
    direct = False
    if owner and _normal_agent_id(owner) == _normal_agent_id(agent_id):
        count = len(parts) - 2  # segments of the rest
        direct = (
            (count == 2 and parts[2] == "direct")
            or (count == 3 and parts[3] == "direct")
            or (count == 4 and parts[4] == "direct")
        )
    return protected, direct


@functools.lru_cache(maxsize=256)
def _normal_agent_id(value: str) -> str:
    """`normalize_agent_id` for the few agent ids a store's keys name, once each."""
    return normalize_agent_id(value)


def chat_type_protects(entry: Any) -> bool:
    """`is_protected` for a key that decides nothing (`key_rules` gave None): the row's
    chatType (or its origin's) does."""
    return _chat_type(entry) in ("group", "channel", "thread")
