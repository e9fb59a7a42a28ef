"""Transcript and artifact files of a sessions dir: their names, and which row points at which.

Pure rules over names and paths; existence and symlinks are asked of a `DiskView`. Every path that
leaves the sessions dir is refused here, so no archive or removal can ever reach outside it.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from typing import Any

from sessiond.daemon.disk_view import DiskView, canonical
from sessiond.daemon.js_semantics import js_trim
from sessiond.daemon.keys import normalize_agent_id
from sessiond.daemon.store import EntryView

_ARCHIVE_TS = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}-\d{2}-\d{2}(?:\.\d{3})?Z$")
_LEGACY_BAK = re.compile(r"^sessions\.json\.bak\.\d+$")
_CHECKPOINT = re.compile(
    r"^(.+)\.checkpoint\.([0-9a-f]{8}-[0-9a-f]{4}-[1-5][0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12})\.jsonl$",
    re.IGNORECASE,
)
_SAFE_SESSION_ID = re.compile(r"^[a-z0-9][a-z0-9._-]{0,127}$", re.IGNORECASE)
_GENERATED_ID = re.compile(
    r"^[0-9a-f]{8}-[0-9a-f]{4}-[1-8][0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$", re.IGNORECASE
)
_FORK_NAME = re.compile(r"^(\d{4}-\d{2}-\d{2}T[\w-]+(?:Z|[+-]\d{2}(?:-\d{2})?)?)_(.+)$")
ARCHIVE_REASONS = ("deleted", "reset", "bak")


class InvalidSessionId(ValueError):
    """A sessionId that cannot name a file; the reference's message, word for word."""

    def __init__(self, session_id: str) -> None:
        super().__init__(f"Invalid session ID: {session_id}")


class OutsideSessionsDir(ValueError):
    pass


# ------------------------------------------------------------------------------------ names


def archive_timestamp(name: str, reason: str) -> str | None:
    marker = f".{reason}."
    index = name.rfind(marker)
    if index < 0:
        return None
    stamp = name[index + len(marker) :]
    return stamp if _ARCHIVE_TS.match(stamp) else None


def is_archive(name: str) -> bool:
    return bool(_LEGACY_BAK.match(name)) or any(
        archive_timestamp(name, r) is not None for r in ARCHIVE_REASONS
    )


def is_checkpoint(name: str) -> bool:
    return bool(_CHECKPOINT.match(name))


def is_trajectory(name: str) -> bool:
    return name.endswith(".trajectory.jsonl") or name.endswith(".trajectory-path.json")


def is_primary(name: str) -> bool:
    return (
        name != "sessions.json"
        and name.endswith(".jsonl")
        and not name.endswith(".trajectory.jsonl")
        and not is_checkpoint(name)
        and not is_archive(name)
    )


def is_sweepable(name: str) -> bool:
    """Kinds the unreferenced-artifact sweep may remove when nothing references them."""
    return is_checkpoint(name) or is_trajectory(name) or is_primary(name)


def archive_name(path: str, reason: str, now_ms: int) -> str:
    """`<file>.<reason>.<ISO time with : made file-safe>`, as the reference names archives."""
    return f"{path}.{reason}.{iso_stamp(now_ms)}"


def iso_stamp(now_ms: int) -> str:
    import datetime as _dt

    moment = _dt.datetime.fromtimestamp(now_ms / 1000, tz=_dt.UTC)
    text = moment.strftime("%Y-%m-%dT%H:%M:%S") + f".{now_ms % 1000:03d}Z"
    return text.replace(":", "-")


def parse_archive_stamp_ms(stamp: str) -> int | None:
    import datetime as _dt

    date, _, time = stamp.partition("T")
    try:
        moment = _dt.datetime.strptime(
            f"{date}T{time.replace('-', ':')}".rstrip("Z"),
            "%Y-%m-%dT%H:%M:%S.%f" if "." in time else "%Y-%m-%dT%H:%M:%S",
        ).replace(tzinfo=_dt.UTC)
    except ValueError:
        return None
    return int(moment.timestamp() * 1000)


# -------------------------------------------------------------------------------- resolution


def validate_session_id(session_id: str) -> str:
    trimmed = js_trim(session_id)
    if not _SAFE_SESSION_ID.match(trimmed) or is_checkpoint(f"{trimmed}.jsonl"):
        raise InvalidSessionId(session_id)
    return trimmed


def _relative_escapes(relative: str) -> bool:
    return not relative or relative.startswith("..") or os.path.isabs(relative)


def _relative(base: str, target: str) -> str:
    rel = os.path.relpath(target, base)
    return "" if rel == "." else rel


class SessionsDir:
    """Path rules for one sessions dir (`dirname(storePath)`), answered against a DiskView."""

    def __init__(self, sessions_dir: str, view: DiskView, state_dir: str | None = None) -> None:
        self.path = os.path.abspath(sessions_dir)
        self.view = view
        self.real = view.realpath(self.path) or self.path
        self.state_dir = state_dir
        self._artifacts: dict[tuple[str, Any], list[str]] = {}

    def contains(self, path: str) -> bool:
        return self._contains_canonical(canonical(self.view, path))

    def _contains_canonical(self, resolved: str) -> bool:
        prefix = self.real.rstrip(os.sep) + os.sep
        # Same answer as the reference's `relative(...).startsWith("..")`, names like `..notes`
        # included, without the cost of relpath on every row: a normalised absolute path that
        # does not start with the dir's prefix is the dir itself or outside it.
        return resolved.startswith(prefix) and not resolved[len(prefix) :].startswith("..")

    def _from_agent_dir(self, agent_dir: str, candidate: str) -> str | None:
        base = self.view.realpath(os.path.abspath(agent_dir)) or os.path.abspath(agent_dir)
        real = self.view.realpath(candidate) or candidate
        rel = _relative(base, real)
        return None if _relative_escapes(rel) else os.path.join(base, rel)

    def _agent_fallback(self, candidate: str) -> str | None:
        parts = [p for p in os.path.normpath(candidate).split(os.sep) if p]
        try:
            index = len(parts) - 1 - parts[::-1].index("sessions")
        except ValueError:
            return None
        if index < 2 or parts[index - 2] != "agents" or not parts[index - 1]:
            return None
        agent_part = parts[index - 1]
        agent_id = normalize_agent_id(agent_part)
        base = self.real
        if (
            os.path.basename(base) == "sessions"
            and os.path.basename(os.path.dirname(os.path.dirname(base))) == "agents"
        ):
            root = os.path.dirname(os.path.dirname(os.path.dirname(base)))
            sibling = os.path.join(root, "agents", agent_id, "sessions")
            found = self._from_agent_dir(sibling, candidate)
            if found:
                return found
        if self.state_dir:
            found = self._from_agent_dir(
                os.path.join(self.state_dir, "agents", agent_id, "sessions"), candidate
            )
            if found:
                return found
        if agent_id != agent_part.lower() or len(parts) - index - 1 != 1:
            return None
        name = parts[-1]
        if name in (".", ".."):
            return None
        return os.path.normpath(candidate)

    def within(self, candidate: str) -> str:
        """The reference's `resolvePathWithinSessionsDir`; raises OutsideSessionsDir."""
        trimmed = js_trim(candidate)
        if not trimmed:
            raise OutsideSessionsDir("Session file path must not be empty")
        absolute = os.path.isabs(trimmed)
        real = (self.view.realpath(trimmed) or trimmed) if absolute else trimmed
        normalized = _relative(self.real, real) if absolute else real
        if normalized.startswith("..") and absolute:
            found = self._agent_fallback(real)
            if found:
                return found
        if _relative_escapes(normalized):
            raise OutsideSessionsDir("Session file path must be within sessions directory")
        return os.path.normpath(os.path.join(self.real, normalized))

    def transcript_path(self, session_id: str, session_file: Any) -> str:
        """Where a row's transcript lives; raises InvalidSessionId like the reference."""
        if isinstance(session_file, str) and js_trim(session_file):
            try:
                return self.within(session_file)
            except OutsideSessionsDir:
                pass
        return self.within(f"{validate_session_id(session_id)}.jsonl")

    def artifact_paths(self, entry: EntryView) -> list[str]:
        """Canonical transcript, trajectory pointer and runtime sidecar of a row, inside the dir."""
        session_id = entry.session_id
        if not isinstance(session_id, str) or not session_id:
            return []
        memo_key = (session_id, entry.session_file if isinstance(entry.session_file, str) else None)
        found = self._artifacts.get(memo_key)
        if found is None:
            found = self._artifacts[memo_key] = self._artifact_paths(session_id, entry.session_file)
        return found

    def _artifact_paths(self, session_id: str, session_file: Any) -> list[str]:
        try:
            transcript = canonical(self.view, self.transcript_path(session_id, session_file))
        except (InvalidSessionId, OutsideSessionsDir):
            return []
        if not self._contains_canonical(transcript):
            return []
        stem = transcript[: -len(".jsonl")] if transcript.endswith(".jsonl") else transcript
        return [
            transcript,
            canonical(self.view, f"{stem}.trajectory-path.json"),
            canonical(self.view, f"{stem}.trajectory.jsonl"),
        ]

    def referenced(self, entries: Iterable[EntryView]) -> set[str]:
        """Canonical paths that remaining rows still reference (artifacts and checkpoints)."""
        found: set[str] = set()
        for entry in entries:
            found.update(self.artifact_paths(entry))
            checkpoints = entry.compaction_checkpoints
            if not isinstance(checkpoints, list):
                continue
            for checkpoint in checkpoints:
                pre = checkpoint.get("preCompaction") if isinstance(checkpoint, dict) else None
                file = pre.get("sessionFile") if isinstance(pre, dict) else None
                if not isinstance(file, str) or not js_trim(file):
                    continue
                # The reference resolves these against the process cwd, not the sessions dir.
                resolved = canonical(self.view, js_trim(file))
                if self.contains(resolved):
                    found.add(resolved)
        return found

    def archive_candidates(self, session_id: str, session_file: Any, home: str) -> list[str]:
        """Existing transcripts of a removed session, in the reference's order, inside the dir."""
        ordered: list[str] = []

        def push(resolve: Any) -> None:
            try:
                path = resolve()
            except (InvalidSessionId, OutsideSessionsDir):
                return
            if path not in ordered:
                ordered.append(path)

        state = _classify_session_file(session_id, session_file)
        has_file = isinstance(session_file, str) and bool(session_file)
        if has_file and state != "stale":
            push(lambda: self.transcript_path(session_id, session_file))
        push(lambda: self.within(f"{validate_session_id(session_id)}.jsonl"))
        if has_file and state == "stale":
            push(lambda: self.transcript_path(session_id, session_file))
        legacy_dir = os.path.join(home, ".openclaw", "sessions")
        if os.path.normpath(legacy_dir) in (self.path, self.real):
            # The legacy location counts only when it is this very dir; elsewhere it is always
            # outside and never archived (restrictToStoreDir), so skip the syscalls.
            legacy = os.path.join(legacy_dir, f"{session_id.strip()}.jsonl")
            push(lambda: _validated_legacy(session_id, legacy))
        result: list[str] = []
        for path in ordered:
            real = canonical(self.view, path)
            if not self.contains(real) or not self.view.exists(real):
                continue
            if real not in result:
                result.append(real)
        return result


def _validated_legacy(session_id: str, legacy: str) -> str:
    validate_session_id(session_id)
    return legacy


def _classify_session_file(session_id: str, session_file: Any) -> str:
    if not isinstance(session_file, str):
        return "custom"
    base = os.path.basename(js_trim(session_file))
    if not base.endswith(".jsonl"):
        return "custom"
    stem = base[:-6]
    topic = stem.find("-topic-")
    if topic > 0:
        found: str | None = stem[:topic]
    else:
        fork = _FORK_NAME.match(stem)
        found = fork.group(2) if fork else stem
    if found is None or not _GENERATED_ID.match(found):
        return "custom"
    return "current" if found == session_id else "stale"
