"""Domain errors: what went wrong in sessiond's terms, before any wire code is chosen.

Every error the engine or the daemon means a client to see derives from `DomainError` and names
its `kind` (the daemon's own, `AuthRequired`, lives in daemon/server.py); the dialects translate
a kind to a JSON-RPC code and a gateway error code from the one table in
`sessiond.protocol.errors`, at the edge. Nothing below the dialects knows a wire code.
"""

from __future__ import annotations

from typing import Any, ClassVar

from sessiond.protocol.errors import ErrorKind


class DomainError(Exception):
    """Base of sessiond's own errors; `data` carries the facts a client may show."""

    kind: ClassVar[ErrorKind] = "internal"

    def __init__(self, message: str, data: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.data = data


class StoreReadOnly(DomainError):
    """The store's file does not parse: it is never replaced, and served read-only until it does."""

    kind = "store_read_only"


class StoreNotFound(DomainError):
    """No store answers to that agent (not configured, or not loaded)."""

    kind = "store_not_found"


class StoreWriteFailed(DomainError):
    """A durable write did not complete; the change is kept in memory and retried."""

    kind = "store_write_failed"


class KeyNotFound(DomainError):
    """The session key is not in the store."""

    kind = "key_not_found"


class WriteConflict(DomainError):
    """The row changed since the caller read it (`ifUpdatedAt` did not match)."""

    kind = "conflict"


class InvalidParams(DomainError):
    """Params that decode but cannot be carried out together (a bad cursor, `agent` with
    `allAgents`)."""

    kind = "invalid_params"


class StalePlan(DomainError):
    """`planId` names a plan other than the one a cleanup would carry out now; `data` has the
    counts per action then and now."""

    kind = "stale_plan"


class JournalEntryNotFound(DomainError):
    """No journal entry by that id (or none at all) for the store."""

    kind = "journal_entry_not_found"


class NotRestorable(DomainError):
    """The journal entry exists but cannot be restored (unfinished, rolled back, restored
    already); `data.why` says which."""

    kind = "not_restorable"


class RuntimeUnavailable(DomainError):
    """The request needs OpenClaw's own runtime (its model catalog: a `model` patch), which
    sessiond does not run; the reference's clients get the reference's UNAVAILABLE for it."""

    kind = "runtime_unavailable"
