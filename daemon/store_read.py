"""Reading a sessions.json: its bytes (None when there is none) and the `Store` they parse to.

Apart from daemon/durable_file.py, which re-exports both, so that a dry run, which only reads,
never imports the write path (its renameat2 binding, the apply flow, the journal's hashing):
those are a fifth of a fresh CLI process's imports.
"""

from __future__ import annotations

from sessiond.engine.store import Store, load_store_bytes


def read_store_bytes(path: str) -> bytes | None:
    """The file's bytes, or None when it does not exist."""
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except FileNotFoundError:
        return None
    except IsADirectoryError:
        return None


def read_store(path: str) -> Store:
    return load_store_bytes(read_store_bytes(path), path)
