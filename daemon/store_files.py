"""The files sessiond keeps beside a store: its lock (daemon/store_lock.py) and its cleanup
journal (daemon/journal.py). A sessions dir's listing leaves them out (daemon/os_disk_view.py):
they are never planned, never counted. Named apart from the code that writes them, so that a
dry run, which lists the dir, loads neither."""

from __future__ import annotations

STORE_LOCK_SUFFIX = ".sessiond.lock"
JOURNAL_SUFFIX = ".journal"
