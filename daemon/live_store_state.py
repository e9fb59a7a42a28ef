"""A LiveStore's lifecycle: its states, the events that move it, and which event is legal where.

The whole machine is the `TRANSITIONS` table below; `Lifecycle.fire` is the only way to change
the state, and an event the table does not allow in the current state raises
`IllegalTransition` (a bug in the caller, never a user error: user-facing refusals such as a
write to a broken store are checked before an event is fired).

States:
- CLEAN: memory holds exactly the file as last loaded or written (a new store: no file, empty).
- DIRTY: memory holds changes the file lacks; the flusher is due.
- FLUSHING: a durable write of a snapshot is running (the store's lock is held).
- FAILED: changes are pending and the last write failed; retried after a backoff.
- RELOADING: a watcher event: the file is being checked, read and merged (lock held).
- MERGING: a write found the file was not the version it expected (before its rename: nothing
  written; or handed back by the rename itself: another writer's file that landed after the
  check); that file is being merged before writing again (lock held, same flush attempt).
- BROKEN: the file does not parse; the store is read-only and the file is never written.

Changes (CHANGE) may land at any moment but BROKEN, even while a write or a reload awaits its
thread; the outcome of a write or reload says where they leave the store.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final


class State(enum.Enum):
    CLEAN = "clean"
    DIRTY = "dirty"
    FLUSHING = "flushing"
    FAILED = "failed"
    RELOADING = "reloading"
    MERGING = "merging"
    BROKEN = "broken"


class Event(enum.Enum):
    LOADED = "loaded"  # the file read at start parses (or is missing)
    LOADED_BROKEN = "loaded-broken"  # the file read at start does not parse
    CHANGE = "change"  # rows put or deleted in memory
    FLUSH = "flush"  # a write of a snapshot begins
    WRITTEN = "written"  # the write holds every change
    WRITTEN_MORE = "written-more"  # the write is durable; changes made meanwhile wait
    WRITE_FAILED = "write-failed"  # the write, or reading the file it found, failed
    CHECK_FAILED = "check-failed"  # the file was not the version expected; nothing written
    HANDED_BACK = "handed-back"  # written, but the file it replaced was another writer's
    RELOAD = "reload"  # a watcher event: look at the file again
    SETTLED_CLEAN = "settled-clean"  # read and merged: nothing left to write
    SETTLED_DIRTY = "settled-dirty"  # read and merged: changes to write
    SETTLED_FAILED = "settled-failed"  # read and merged: changes to write, last write failed
    BROKE = "broke"  # the file read does not parse


S = State
E = Event

TRANSITIONS: Final[dict[State, dict[Event, State]]] = {
    S.CLEAN: {
        E.LOADED: S.CLEAN,
        E.LOADED_BROKEN: S.BROKEN,
        E.CHANGE: S.DIRTY,
        E.RELOAD: S.RELOADING,
    },
    S.DIRTY: {
        E.CHANGE: S.DIRTY,
        E.FLUSH: S.FLUSHING,
        E.RELOAD: S.RELOADING,
    },
    S.FLUSHING: {
        E.CHANGE: S.FLUSHING,
        E.WRITTEN: S.CLEAN,
        E.WRITTEN_MORE: S.DIRTY,
        E.WRITE_FAILED: S.FAILED,
        E.CHECK_FAILED: S.MERGING,
        E.HANDED_BACK: S.MERGING,
    },
    S.FAILED: {
        E.CHANGE: S.FAILED,
        E.FLUSH: S.FLUSHING,
        E.RELOAD: S.RELOADING,
    },
    S.RELOADING: {
        E.CHANGE: S.RELOADING,
        E.SETTLED_CLEAN: S.CLEAN,
        E.SETTLED_DIRTY: S.DIRTY,
        E.SETTLED_FAILED: S.FAILED,
        E.BROKE: S.BROKEN,
    },
    S.MERGING: {
        E.CHANGE: S.MERGING,
        E.SETTLED_CLEAN: S.CLEAN,
        E.SETTLED_DIRTY: S.DIRTY,
        E.SETTLED_FAILED: S.FAILED,
        E.BROKE: S.BROKEN,
        E.WRITE_FAILED: S.FAILED,
    },
    S.BROKEN: {
        E.RELOAD: S.BROKEN,  # a re-read of a broken file: still read-only until it parses
        E.SETTLED_CLEAN: S.CLEAN,
        E.SETTLED_DIRTY: S.DIRTY,
        E.SETTLED_FAILED: S.FAILED,
        E.BROKE: S.BROKEN,
    },
}


class IllegalTransition(RuntimeError):
    """An event fired in a state whose row of `TRANSITIONS` does not list it."""

    def __init__(self, state: State, event: Event) -> None:
        allowed = ", ".join(e.name for e in TRANSITIONS[state]) or "nothing"
        super().__init__(
            f"LiveStore event {event.name} is illegal in state {state.name} (allowed: {allowed})"
        )
        self.state = state
        self.event = event


Observer = Callable[[State, Event, State], None]


@dataclass(slots=True)
class Lifecycle:
    """The current state; `fire` moves it by the table and tells `observer` (state before,
    event, state after) once the new state is in place, so an observer may fire again."""

    state: State = State.CLEAN
    observer: Observer | None = None

    def fire(self, event: Event) -> State:
        before = self.state
        after = TRANSITIONS[before].get(event)
        if after is None:
            raise IllegalTransition(before, event)
        self.state = after
        if self.observer is not None:
            self.observer(before, event, after)
        return after
