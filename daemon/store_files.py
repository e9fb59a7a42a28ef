"""The files sessiond keeps beside a store: its lock (daemon/store_lock.py), its cleanup
journal (daemon/journal.py) and the temp file of a write in progress (daemon/durable_file.py).
A sessions dir's listing leaves them out (daemon/os_disk_view.py): they are never planned,
never counted. Named apart from the code that writes them, so that a dry run, which lists the
dir, loads none of it."""

from __future__ import annotations

import itertools
import os
import secrets

STORE_LOCK_SUFFIX = ".sessiond.lock"
JOURNAL_SUFFIX = ".journal"

TEMP_PREFIX = ".sessiond-"
TEMP_SUFFIX = ".tmp"
# Temp names: `<pid>.<this run's random tag><count>`, unique without a random draw (a system
# call) per write; the tag keeps a reused pid's names apart from a dead writer's leftovers.
_TEMP_RUN = secrets.token_hex(4)
_temp_count = itertools.count()


def temp_name(target: str) -> str:
    """A fresh name, in this process's series, for a temp file beside the file `target`."""
    return f"{TEMP_PREFIX}{target}.{os.getpid()}.{_TEMP_RUN}{next(_temp_count)}{TEMP_SUFFIX}"


def is_own_temp(name: str) -> bool:
    """Whether `name` is one of this process's temp files: a write of ours in progress. A
    listing made during it would otherwise differ from the last one by that name alone, and
    under a stream of writes almost every plan would find its dir 'changed'."""
    return (
        name.startswith(TEMP_PREFIX)
        and name.endswith(TEMP_SUFFIX)
        and f".{os.getpid()}.{_TEMP_RUN}" in name
    )
