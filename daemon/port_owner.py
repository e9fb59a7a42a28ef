"""Which process listens on a TCP port, for the message of a daemon that cannot bind it.

Linux only, and only as far as this user may look: the listening socket's inode comes from
/proc/net/tcp and tcp6, its process from the /proc/<pid>/fd links that point at it. Anything
unreadable means "unknown" (None), never an error: this only improves a message.
"""

from __future__ import annotations

import contextlib
import os

_LISTEN = "0A"


def _listening_inodes(port: int) -> set[str]:
    inodes: set[str] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table, encoding="ascii") as handle:
                lines = handle.readlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if len(fields) < 10 or fields[3] != _LISTEN:
                continue
            local_port = fields[1].rpartition(":")[2]
            if int(local_port, 16) == port:
                inodes.add(fields[9])
    return inodes


def _command_line(pid: str) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as handle:
            words = handle.read().rstrip(b"\0").decode(errors="replace").split("\0")
    except OSError:
        return ""
    words[0] = os.path.basename(words[0])
    return " ".join(words)[:120]


def port_owner(port: int) -> str | None:
    """`pid 1234: sessiond serve --port 18789`, or None when it cannot be seen."""
    inodes = _listening_inodes(port)
    if not inodes:
        return None
    targets = {f"socket:[{inode}]" for inode in inodes}
    with contextlib.suppress(OSError):
        for pid in os.listdir("/proc"):
            if not pid.isdigit():
                continue
            with contextlib.suppress(OSError):
                for fd in os.listdir(f"/proc/{pid}/fd"):
                    with contextlib.suppress(OSError):
                        if os.readlink(f"/proc/{pid}/fd/{fd}") in targets:
                            command = _command_line(pid)
                            return f"pid {pid}: {command}" if command else f"pid {pid}"
    return None
