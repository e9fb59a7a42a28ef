"""Bounded reads of transcripts: a fixed number of bytes from the head or the tail, never more.

Everything a client is shown of a transcript (a derived title, a last-message preview, a
preview, a chat history, token usage) comes from one of these reads, parsed by
`engine.transcript_tail`. A file's size never changes what a read costs beyond its bound, so a
list of 100 rows reads at most 100 x 24 KiB whatever the transcripts hold. Blocking: callers
run these in a thread. A file that cannot be read reads as empty (the reference's rule).
"""

from __future__ import annotations

import contextlib
import os
from typing import Any

from sessiond.daemon.os_disk_view import OsDiskView
from sessiond.engine.config import Locations
from sessiond.engine.transcript_tail import (
    HEAD_TITLE_BYTES,
    HISTORY_MAX_BYTES,
    LAST_MESSAGE_BYTES,
    PREVIEW_READ_SIZES,
    USAGE_TAIL_BYTES,
    TitleFields,
    UsageSnapshot,
    first_user_message,
    history_line_budget,
    last_message_preview,
    recent_preview_messages,
    tail_lines,
    usage_from_tail,
)
from sessiond.engine.transcripts import SessionsDir

__all__ = [
    "read_head",
    "read_history_lines",
    "read_preview_messages",
    "read_tail",
    "read_title_fields",
    "read_usage",
    "transcript_path",
]


def transcript_path(
    store_path: str, session_id: Any, session_file: Any, where: Locations
) -> str | None:
    """The row's transcript that exists: its recorded file, else `<sessionId>.jsonl`, inside the
    store's directory (the order the reference tries them); None when there is none."""
    if not isinstance(session_id, str) or not session_id:
        return None
    directory = os.path.dirname(os.path.abspath(store_path))
    sessions = SessionsDir(directory, OsDiskView(), where.state_dir)
    found = sessions.archive_candidates(session_id, session_file, where.home)
    return found[0] if found else None


def read_head(path: str, limit: int) -> bytes:
    with contextlib.suppress(OSError), open(path, "rb") as handle:
        return handle.read(limit)
    return b""


def read_tail(path: str, limit: int) -> tuple[bytes, bool]:
    """The last `limit` bytes and whether they start after the file's first byte."""
    try:
        with open(path, "rb") as handle:
            size = os.fstat(handle.fileno()).st_size
            start = max(0, size - limit)
            handle.seek(start)
            return handle.read(limit), start > 0
    except OSError:
        return b"", False


def read_title_fields(path: str | None) -> TitleFields:
    """First user message (head 8 KiB) and last message preview (tail 16 KiB)."""
    if path is None:
        return TitleFields(None, None)
    head = read_head(path, HEAD_TITLE_BYTES)
    if not head:
        return TitleFields(None, None)
    tail, _ = read_tail(path, LAST_MESSAGE_BYTES)
    return TitleFields(first_user_message(head), last_message_preview(tail))


def read_preview_messages(path: str, max_items: int) -> list[Any]:
    """The newest messages of the tail: 64 KiB, then 256 KiB, then 1 MiB while none is found."""
    messages: list[Any] = []
    for size in PREVIEW_READ_SIZES:
        chunk, _ = read_tail(path, size)
        messages = recent_preview_messages(chunk, max_items)
        if messages:
            break
    return messages


def read_history_lines(path: str, max_messages: int) -> list[str]:
    """The last lines `chat.history` parses: at most 12 MiB, at most `limit * 20 + 20` lines."""
    chunk, mid_file = read_tail(path, HISTORY_MAX_BYTES)
    return tail_lines(chunk, mid_file, history_line_budget(max_messages))


def read_usage(path: str | None) -> UsageSnapshot | None:
    """Token usage summed over the last 64 KiB (a full row's fallback for missing figures)."""
    if path is None:
        return None
    chunk, mid_file = read_tail(path, USAGE_TAIL_BYTES)
    return usage_from_tail(chunk, mid_file) if chunk else None
