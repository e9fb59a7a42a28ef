"""What a client is shown of a transcript, parsed from bounded chunks of it (no file access here).

A transcript is JSON lines; the lines that matter carry a `message` (`role`, `content`). The
daemon reads at most a fixed number of bytes from the head or the tail of the file and hands
the bytes here, so a 1 GB transcript costs what a 10 KB one does. Every limit below is the
reference's (OpenClaw 2026.5.12), so a list, a preview and a history show what it shows:

- derived title: the first user message among the first 10 lines of the first 8 KiB;
- last message preview: the newest user/assistant text among the last 20 lines of the last
  16 KiB;
- `sessions.preview`: the newest `limit` messages among the last 200 lines of the last 64 KiB
  (256 KiB, then 1 MiB when that holds none);
- `chat.history`: the last `limit * 20 + 20` lines, the active branch of the message tree, the
  newest `limit` messages, numbered within the lines read;
- token usage: summed over the assistant lines of the last 64 KiB.

A tail chunk that starts mid-file starts mid-line: its first line is dropped or, failing to
parse, skipped, exactly as the reference does.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any, Final

import msgspec
from sessiond.engine.js_semantics import js_trim, js_truthy, utf16_len, utf16_slice

__all__ = [
    "HEAD_TITLE_BYTES",
    "HISTORY_MAX_BYTES",
    "LAST_MESSAGE_BYTES",
    "PREVIEW_READ_SIZES",
    "USAGE_TAIL_BYTES",
    "PreviewItem",
    "TitleFields",
    "UsageSnapshot",
    "extract_text",
    "first_user_message",
    "history_line_budget",
    "last_message_preview",
    "preview_items",
    "recent_history_messages",
    "recent_preview_messages",
    "strip_directive_tags",
    "strip_envelope",
    "tail_lines",
    "text_phase",
    "usage_from_tail",
]

HEAD_TITLE_BYTES: Final = 8192
TITLE_SCAN_LINES: Final = 10
LAST_MESSAGE_BYTES: Final = 16384
LAST_MESSAGE_LINES: Final = 20
PREVIEW_READ_SIZES: Final = (64 * 1024, 256 * 1024, 1024 * 1024)
PREVIEW_MAX_LINES: Final = 200
PREVIEW_MAX_ITEMS: Final = 50
PREVIEW_MAX_CHARS: Final = 2000
USAGE_TAIL_BYTES: Final = 64 * 1024
HISTORY_MAX_BYTES: Final = 12 * 1024 * 1024
"""Twice the reference's 6 MiB history budget: the most `chat.history` ever reads of a file."""
OVERSIZED_LINE_BYTES: Final = 256 * 1024
OVERSIZED_PREFIX_CHARS: Final = 64 * 1024
OVERSIZED_PLACEHOLDER: Final = "[chat.history omitted: message too large]"

_LINE_SPLIT = re.compile(r"\r?\n")
_AUDIO_TAG = re.compile(r"\[\[\s*audio_as_voice\s*\]\]", re.IGNORECASE)
_REPLY_TAG = re.compile(
    r"\[\[\s*(?:reply_to_current|reply_to\s*:\s*([^\]\n]+))\s*\]\]", re.IGNORECASE
)
_DECODER = msgspec.json.Decoder()
_ENCODER = msgspec.json.Encoder()
_TEXT_PART_TYPES: Final = ("text", "output_text", "input_text")
_PROVENANCE_KINDS: Final = ("external_user", "inter_session", "internal_system")


# ------------------------------------------------------------------------------------ basics


def _parse(line: str) -> Any:
    """`JSON.parse(line)`; None when it fails (the caller skips the line)."""
    try:
        return _DECODER.decode(line.encode("utf-8", "surrogatepass"))
    except (msgspec.DecodeError, UnicodeEncodeError):
        return None


def _message_of(line: str) -> Any:
    parsed = _parse(line)
    return parsed.get("message") if isinstance(parsed, dict) else None


def _lines(chunk: bytes) -> list[str]:
    return _LINE_SPLIT.split(chunk.decode("utf-8", "replace"))


def _non_blank(lines: list[str]) -> list[str]:
    return [line for line in lines if js_trim(line)]


def strip_directive_tags(text: str) -> str:
    """Reply and voice directives (`[[reply_to_current]]`, `[[audio_as_voice]]`) are not text."""
    if not text:
        return text
    return _REPLY_TAG.sub("", _AUDIO_TAG.sub("", text))


def extract_text(content: Any) -> str | None:
    """The first non-empty text of a message's content (a string, or text-like parts)."""
    if isinstance(content, str):
        return js_trim(strip_directive_tags(content)) or None
    if not isinstance(content, list):
        return None
    for part in content:
        if not isinstance(part, dict) or not isinstance(part.get("text"), str):
            continue
        if part.get("type") in _TEXT_PART_TYPES:
            text = js_trim(strip_directive_tags(part["text"]))
            if text:
                return text
    return None


def _inter_session(message: dict[str, Any]) -> bool:
    provenance = message.get("provenance")
    return (
        message.get("role") == "user"
        and isinstance(provenance, dict)
        and provenance.get("kind") == "inter_session"
    )


_ENVELOPE_PREFIX = re.compile(r"^\[([^\]]+)\]\s*")
_ENVELOPE_CHANNELS: Final = (
    "WebChat",
    "WhatsApp",
    "Telegram",
    "Signal",
    "Slack",
    "Discord",
    "Google Chat",
    "iMessage",
    "Teams",
    "Matrix",
    "Zalo",
    "Zalo Personal",
)


def _looks_like_envelope(header: str) -> bool:
    if re.search(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}Z\b", header):
        return True
    if re.search(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}\b", header):
        return True
    return any(header.startswith(f"{label} ") for label in _ENVELOPE_CHANNELS)


def strip_envelope(text: str) -> str:
    """`[Telegram Ann 2026-01-01 10:00Z] hi` -> `hi`; other bracketed prefixes stay."""
    match = _ENVELOPE_PREFIX.match(text)
    if not match or not _looks_like_envelope(match.group(1)):
        return text
    return text[match.end() :]


# ------------------------------------------------------------------------- titles and previews


@dataclass(frozen=True, slots=True)
class TitleFields:
    """What a list row may show of its transcript (None: nothing usable found)."""

    first_user_message: str | None
    last_message_preview: str | None


def first_user_message(head: bytes) -> str | None:
    """The first user text in the first lines of the file (inter-session input skipped)."""
    for line in _lines(head)[:TITLE_SCAN_LINES]:
        if not js_trim(line):
            continue
        message = _message_of(line)
        if not isinstance(message, dict) or message.get("role") != "user":
            continue
        if _inter_session(message):
            continue
        text = extract_text(message.get("content"))
        if text:
            return text
    return None


def last_message_preview(tail: bytes) -> str | None:
    """The newest user or assistant text in the last lines of the file."""
    for line in reversed(_non_blank(_lines(tail))[-LAST_MESSAGE_LINES:]):
        message = _message_of(line)
        if not isinstance(message, dict) or message.get("role") not in ("user", "assistant"):
            continue
        text = extract_text(message.get("content"))
        if text:
            return text
    return None


@dataclass(frozen=True, slots=True)
class PreviewItem:
    role: str
    text: str


def recent_preview_messages(tail: bytes, max_messages: int) -> list[Any]:
    """The newest `message` values (objects, oldest first) among the last lines of a chunk."""
    collected: list[Any] = []
    for line in reversed(_non_blank(_lines(tail))[-PREVIEW_MAX_LINES:]):
        message = _message_of(line)
        if isinstance(message, dict | list):
            collected.append(message)
            if len(collected) >= max_messages:
                break
    collected.reverse()
    return collected


def _field(message: Any, name: str) -> Any:
    return message.get(name) if isinstance(message, dict) else None


def _tool_names(message: Any) -> list[str]:
    names: list[str] = []
    raw = _field(message, "toolName")
    if raw is None:
        raw = _field(message, "tool_name")
    if isinstance(raw, str) and js_trim(raw):
        names.append(js_trim(raw))
    content = _field(message, "content")
    if not isinstance(content, list):
        return names
    for block in content:
        kind = _field(block, "type")
        if not isinstance(kind, str) or js_trim(kind).lower() not in (
            "tool_use",
            "toolcall",
            "tool_call",
        ):
            continue
        name = _field(block, "name")
        if isinstance(name, str) and js_trim(name) and js_trim(name) not in names:
            names.append(js_trim(name))
    return names


def _role(message: Any, is_tool: bool) -> str:
    if is_tool:
        return "tool"
    role = _field(message, "role")
    lowered = js_trim(role).lower() if isinstance(role, str) else ""
    return lowered if lowered in ("user", "assistant", "system", "tool") else "other"


def assistant_visible_text(message: dict[str, Any]) -> str | None:
    """An assistant message's text: its final answer when phased, else its unphased text."""
    return _assistant_text(message, "final_answer") or _assistant_text(message, None)


def text_phase(signature: Any) -> str | None:
    if not isinstance(signature, str) or not js_trim(signature):
        return None
    if not signature.startswith("{"):
        return None
    parsed = _parse(signature)
    if not isinstance(parsed, dict) or parsed.get("v") != 1:
        return None
    phase = parsed.get("phase")
    return phase if phase in ("commentary", "final_answer") else None


def _assistant_text(message: dict[str, Any], phase: str | None) -> str | None:
    raw_phase = message.get("phase")
    message_phase = raw_phase if raw_phase in ("commentary", "final_answer") else None

    def included(resolved: str | None) -> bool:
        return resolved == phase

    if isinstance(message.get("text"), str):
        return (js_trim(message["text"]) or None) if included(message_phase) else None
    content = message.get("content")
    if isinstance(content, str):
        return (js_trim(content) or None) if included(message_phase) else None
    if not isinstance(content, list):
        return None
    phased = any(
        isinstance(b, dict) and b.get("type") == "text" and text_phase(b.get("textSignature"))
        for b in content
    )
    if phase is None and phased:
        return None
    parts = []
    for block in content:
        if not isinstance(block, dict) or block.get("type") != "text":
            continue
        if not isinstance(block.get("text"), str):
            continue
        block_phase = text_phase(block.get("textSignature"))
        if not included(block_phase or (None if phased else message_phase)):
            continue
        if js_trim(block["text"]):
            parts.append(block["text"])
    return (js_trim("\n".join(parts)) or None) if parts else None


def _preview_text(message: Any) -> str | None:
    role = _field(message, "role")
    if isinstance(role, str) and js_trim(role).lower() == "assistant":
        assert isinstance(message, dict)
        visible = assistant_visible_text(message)
        return (js_trim(strip_directive_tags(visible)) or None) if visible else None
    content = _field(message, "content")
    if isinstance(content, str):
        return js_trim(strip_directive_tags(content)) or None
    if isinstance(content, list):
        parts = [
            strip_directive_tags(b["text"]) if isinstance(_field(b, "text"), str) else ""
            for b in content
        ]
        kept = [p for p in parts if js_trim(p)]
        if kept:
            return js_trim("\n".join(kept))
    text = _field(message, "text")
    if isinstance(text, str):
        return js_trim(strip_directive_tags(text)) or None
    return None


def _media_summary(message: Any) -> str | None:
    content = _field(message, "content")
    if not isinstance(content, list):
        return None
    for block in content:
        raw = _field(block, "type")
        kind = js_trim(raw).lower() if isinstance(raw, str) else ""
        if not kind or kind in ("text", "toolcall", "tool_call"):
            continue
        return f"[{kind}]"
    return None


def _truncate_preview(text: str, max_chars: int) -> str:
    if max_chars <= 0 or utf16_len(text) <= max_chars:
        return text
    if max_chars <= 3:
        return utf16_slice(text, 0, max_chars)
    return utf16_slice(text, 0, max_chars - 3) + "..."


def preview_items(messages: list[Any], max_items: int, max_chars: int) -> list[PreviewItem]:
    """Each message as one short line (`role`, `text`), the newest `max_items` of them."""
    items: list[PreviewItem] = []
    for message in messages:
        tools = _tool_names(message)
        role = _role(message, bool(tools))
        text = _preview_text(message)
        if not text and tools:
            shown = tools[:2]
            text = f"call {', '.join(shown)}"
            if len(tools) > len(shown):
                text += f" +{len(tools) - len(shown)}"
        if not text:
            text = _media_summary(message)
        if not text:
            continue
        trimmed = js_trim(text)
        if not trimmed:
            continue
        if role == "user":
            trimmed = strip_envelope(trimmed)
        items.append(PreviewItem(role, _truncate_preview(trimmed, max_chars)))
    return items[-max_items:] if len(items) > max_items else items


def preview_bounds(limit: int | None, max_chars: int | None) -> tuple[int, int]:
    """The reference's clamps: limit 1..50 (default 12), maxChars 20..2000 (default 240)."""
    items = 12 if limit is None else max(1, limit)
    chars = 240 if max_chars is None else max(20, max_chars)
    return max(1, min(items, PREVIEW_MAX_ITEMS)), max(20, min(chars, PREVIEW_MAX_CHARS))


# ------------------------------------------------------------------------------------ history


def history_line_budget(max_messages: int) -> int:
    return max(max_messages, max_messages * 20 + 20)


def tail_lines(chunk: bytes, started_mid_file: bool, max_lines: int) -> list[str]:
    """The chunk's complete, non-blank lines, the last `max_lines` of them."""
    lines = _lines(chunk)
    if started_mid_file:
        lines = lines[1:]
    return _non_blank(lines)[-max_lines:] if max_lines > 0 else []


@dataclass(slots=True)
class _Record:
    record: dict[str, Any]
    id: str | None
    parent_id: str | None


def _string_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) and js_trim(value) else None


def _prefix_field(prefix: str, name: str) -> str | None:
    match = re.search(rf'"{name}"\s*:\s*"((?:\\.|[^"\\])*)"', prefix)
    if not match:
        return None
    value = _parse(f'"{match.group(1)}"')
    return _string_or_none(value)


def _oversized_record(line: str) -> _Record:
    prefix = line[:OVERSIZED_PREFIX_CHARS]
    ident = _prefix_field(prefix, "id")
    parent_null = re.search(r'"parentId"\s*:\s*null', prefix) is not None
    parent = None if parent_null else _prefix_field(prefix, "parentId")
    kind = _prefix_field(prefix, "type")
    role = _prefix_field(prefix, "role") or "assistant"
    record: dict[str, Any] = {}
    if kind:
        record["type"] = kind
    if ident:
        record["id"] = ident
    if parent_null or parent is not None:
        record["parentId"] = parent
    record["message"] = {
        "role": role,
        "content": [{"type": "text", "text": OVERSIZED_PLACEHOLDER}],
        "__openclaw": {"truncated": True, "reason": "oversized"},
    }
    return _Record(record, ident, parent)


def _record(line: str) -> _Record | None:
    if len(line.encode("utf-8", "surrogatepass")) > OVERSIZED_LINE_BYTES:
        return _oversized_record(line)
    parsed = _parse(line)
    if not isinstance(parsed, dict):
        return None
    return _Record(
        parsed, _string_or_none(parsed.get("id")), _string_or_none(parsed.get("parentId"))
    )


def _tree_linked(entry: _Record) -> bool:
    return (
        entry.record.get("type") != "session"
        and entry.id is not None
        and "parentId" in entry.record
    )


def _active_branch(entries: list[_Record]) -> list[_Record]:
    """The path from the newest tree-linked record back to its root, within the lines read."""
    if not any(_tree_linked(e) for e in entries):
        return entries
    by_id: dict[str, _Record] = {}
    leaf: str | None = None
    for entry in entries:
        if entry.id:
            by_id[entry.id] = entry
        if _tree_linked(entry) and entry.id:
            leaf = entry.id
    if leaf is None:
        return entries
    selected: list[_Record] = []
    seen: set[str] = set()
    current: str | None = leaf
    while current:
        if current in seen:
            return []
        seen.add(current)
        found = by_id.get(current)
        if found is None:
            break
        selected.append(found)
        current = found.parent_id
    selected.reverse()
    first = selected[0] if selected else None
    first_index = next((i for i, e in enumerate(entries) if e is first), -1)
    if first_index > 0:
        # The compaction record that precedes the branch explains where its history starts.
        for index in range(first_index - 1, -1, -1):
            if entries[index].record.get("type") == "compaction":
                return [entries[index], *selected]
    return selected


def _with_meta(message: dict[str, Any], meta: dict[str, Any]) -> dict[str, Any]:
    existing = message.get("__openclaw")
    merged = dict(existing) if isinstance(existing, dict) else {}
    merged.update(meta)
    return {**message, "__openclaw": merged}


def _iso_ms(text: Any) -> float | None:
    if not isinstance(text, str):
        return None
    import datetime as _dt

    try:
        moment = _dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=_dt.UTC)
    return math.floor(moment.timestamp() * 1000)


def _to_message(record: dict[str, Any], seq: int, now_ms: int) -> Any:
    """A record as a message (None: not one). A truthy non-object `message` counts as one and
    is passed on as is, as the reference does; the display projection drops it later."""
    message = record.get("message")
    if js_truthy(message):
        if not isinstance(message, dict):
            return message
        meta: dict[str, Any] = {}
        if isinstance(record.get("id"), str):
            meta["id"] = record["id"]
        meta["seq"] = seq
        return _with_meta(message, meta)
    if record.get("type") == "compaction":
        stamp = _iso_ms(record.get("timestamp"))
        meta = {"kind": "compaction"}
        if isinstance(record.get("id"), str):
            meta["id"] = record["id"]
        meta["seq"] = seq
        return {
            "role": "system",
            "content": [{"type": "text", "text": "Compaction"}],
            "timestamp": stamp if stamp is not None else now_ms,
            "__openclaw": meta,
        }
    return None


def recent_history_messages(lines: list[str], max_messages: int, now_ms: int) -> list[Any]:
    """The newest `max_messages` messages of the active branch, numbered from 1 in `lines`."""
    records = [r for r in (_record(line) for line in lines) if r is not None]
    messages: list[Any] = []
    for entry in _active_branch(records):
        message = _to_message(entry.record, len(messages) + 1, now_ms)
        if message is not None:
            messages.append(message)
    return messages[-max_messages:] if max_messages > 0 else []


# -------------------------------------------------------------------------------------- usage


@dataclass(frozen=True, slots=True)
class UsageSnapshot:
    """Token figures summed over a transcript tail's assistant lines (None: never seen)."""

    model_provider: str | None = None
    model: str | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    cache_read: int | None = None
    cache_write: int | None = None
    total_tokens: float | None = None
    cost_usd: float | None = None


def _finite(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def _token_count(value: Any) -> int | None:
    number = _finite(value)
    if number is None:
        return None
    return 0 if number <= 0 else min(math.trunc(number), 2**53 - 1)


def _first_present(raw: dict[str, Any], *names: str) -> Any:
    for name in names:
        value = raw.get(name)
        if value is not None:
            return value
    return None


def _nested(raw: dict[str, Any], outer: str, inner: str) -> Any:
    value = raw.get(outer)
    return value.get(inner) if isinstance(value, dict) else None


def _coalesce(*values: Any) -> Any:
    """JS `a ?? b ?? c`: the first value that is not null or undefined."""
    return next((v for v in values if v is not None), None)


def _normalize_usage(raw: Any) -> dict[str, int | None] | None:
    """Token counts under any provider's field names (the reference's `normalizeUsage`)."""
    if not isinstance(raw, dict):
        return None
    cache_read = _token_count(
        _coalesce(
            _first_present(
                raw, "cacheRead", "cache_read", "cache_read_input_tokens", "cached_tokens"
            ),
            _nested(raw, "input_tokens_details", "cached_tokens"),
            _nested(raw, "prompt_tokens_details", "cached_tokens"),
        )
    )
    raw_input = _coalesce(
        _first_present(
            raw, "input", "inputTokens", "input_tokens", "promptTokens", "prompt_tokens", "prompt_n"
        ),
        _nested(raw, "timings", "prompt_n"),
    )
    openai_style = (
        "cached_tokens" in raw
        or _nested(raw, "input_tokens_details", "cached_tokens") is not None
        or _nested(raw, "prompt_tokens_details", "cached_tokens") is not None
    )
    input_number = _finite(raw_input)
    if input_number is not None and openai_style and cache_read is not None:
        input_number -= cache_read
    output_raw = _coalesce(
        _first_present(
            raw,
            "output",
            "outputTokens",
            "output_tokens",
            "completionTokens",
            "completion_tokens",
            "predicted_n",
        ),
        _nested(raw, "timings", "predicted_n"),
    )
    usage = {
        "input": _token_count(input_number),
        "output": _token_count(output_raw),
        "cacheRead": cache_read,
        "cacheWrite": _token_count(
            _first_present(raw, "cacheWrite", "cache_write", "cache_creation_input_tokens")
        ),
        "total": _token_count(_first_present(raw, "total", "totalTokens", "total_tokens")),
    }
    return usage if any(v is not None for v in usage.values()) else None


def _line_usage(line: str) -> UsageSnapshot | None:
    if len(line.encode("utf-8", "surrogatepass")) > OVERSIZED_LINE_BYTES:
        return None
    parsed = _parse(line)
    if not isinstance(parsed, dict):
        return None
    message = parsed.get("message")
    if not isinstance(message, dict):
        return None
    role = message.get("role")
    if isinstance(role, str) and role and role != "assistant":
        return None
    raw = message.get("usage") if isinstance(message.get("usage"), dict) else parsed.get("usage")
    raw = raw if isinstance(raw, dict) else None
    usage = _normalize_usage(raw)
    prompt = None
    if usage is not None:
        prompt_sum = sum(usage[k] or 0 for k in ("input", "cacheRead", "cacheWrite"))
        prompt = float(prompt_sum) if prompt_sum > 0 else None
    cost = raw.get("cost") if raw is not None else None
    cost_total = _finite(cost.get("total")) if isinstance(cost, dict) else None
    cost_usd = cost_total if cost_total is not None and cost_total >= 0 else None

    def named(field: str) -> str | None:
        value = message.get(field)
        if not isinstance(value, str):
            value = parsed.get(field)
        return js_trim(value) if isinstance(value, str) else None

    provider, model = named("provider"), named("model")
    nonzero = usage is not None and any(
        isinstance(usage[k], int) and (usage[k] or 0) > 0
        for k in ("input", "output", "cacheRead", "cacheWrite", "total")
    )
    meaningful = nonzero or prompt is not None or cost_usd is not None
    if not meaningful and not (provider or model):
        return None
    mirror = provider == "openclaw" and model == "delivery-mirror"
    if mirror and not meaningful:
        return None
    return UsageSnapshot(
        model_provider=None if mirror else (provider or None),
        model=None if mirror else (model or None),
        input_tokens=usage["input"] if usage else None,
        output_tokens=usage["output"] if usage else None,
        cache_read=usage["cacheRead"] if usage else None,
        cache_write=usage["cacheWrite"] if usage else None,
        total_tokens=prompt,
        cost_usd=cost_usd,
    )


def usage_from_tail(chunk: bytes, started_mid_file: bool) -> UsageSnapshot | None:
    """Token counts summed over the chunk's assistant lines; model and total from the newest."""
    lines = _lines(chunk)
    if started_mid_file:
        lines = lines[1:]
    found = False
    provider = model = None
    sums: dict[str, int | None] = {"in": None, "out": None, "cr": None, "cw": None}
    total: float | None = None
    cost: float | None = None
    for line in _non_blank(lines):
        current = _line_usage(line)
        if current is None:
            continue
        found = True
        provider = current.model_provider or provider
        model = current.model or model
        for slot, value in (
            ("in", current.input_tokens),
            ("out", current.output_tokens),
            ("cr", current.cache_read),
            ("cw", current.cache_write),
        ):
            if value is not None:
                sums[slot] = (sums[slot] or 0) + value
        if current.total_tokens is not None:
            total = current.total_tokens
        if current.cost_usd is not None:
            cost = (cost or 0.0) + current.cost_usd
    if not found:
        return None
    return UsageSnapshot(
        provider, model, sums["in"], sums["out"], sums["cr"], sums["cw"], total, cost
    )
