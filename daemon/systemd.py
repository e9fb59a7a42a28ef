"""The few systemd protocols sessiond speaks, in plain Python so there is no libsystemd to install.

- sd_notify: one datagram of newline-separated `KEY=VALUE` lines to the AF_UNIX socket named by
  `$NOTIFY_SOCKET`. `Type=notify` waits for `READY=1`; `WatchdogSec=` expects `WATCHDOG=1`
  more often than `$WATCHDOG_USEC`.
- Socket activation: systemd passes listening sockets as fds 3, 4, ... and says how many in
  `$LISTEN_FDS`, for the pid in `$LISTEN_PID` only.
- Journal: `$JOURNAL_STREAM` is `dev:ino` of the stream systemd connected to stdout/stderr, so a
  process can tell whether its stderr really goes to the journal.

Every function is a no-op (False, None or []) when not run under systemd, so the daemon calls
them unconditionally.
"""

from __future__ import annotations

import os
import socket
import stat
import time

__all__ = [
    "SD_LISTEN_FDS_START",
    "journal_stream_attached",
    "listen_sockets",
    "listen_sockets_with_names",
    "notify",
    "ready",
    "reloading",
    "status",
    "stopping",
    "watchdog_interval",
    "watchdog_ping",
]

SD_LISTEN_FDS_START = 3
"""The first fd that socket activation passes; 0-2 stay stdin, stdout and stderr."""

_LISTEN_ENV = ("LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES")


def notify(state: str) -> bool:
    """Send one sd_notify message; True once the datagram is handed to the socket.

    False when `$NOTIFY_SOCKET` is unset (not started by systemd, or not `Type=notify`) and when
    sending fails: systemd then shows the failure itself (start timeout, watchdog kill), and a
    lost status line must never take the daemon down with it.
    """
    if not state:
        raise ValueError("empty sd_notify state")
    address = os.environ.get("NOTIFY_SOCKET", "")
    if address.startswith("@"):
        # Abstract namespace: the name is the rest, after a NUL byte instead of the '@'.
        target = "\0" + address[1:]
    elif address.startswith("/"):
        target = address
    else:
        # Unset, or a kind this code does not speak (systemd 253 added vsock:...).
        return False
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            sock.connect(target)
            sock.sendall(state.encode())
    except OSError:
        return False
    return True


def _one_line(text: str) -> str:
    # A newline would end the STATUS= line and let the rest be read as another assignment.
    return " ".join(text.splitlines())


def ready(status_text: str | None = None) -> bool:
    """Tell systemd start-up is done (`Type=notify` holds dependents until then)."""
    if status_text is None:
        return notify("READY=1")
    return notify(f"READY=1\nSTATUS={_one_line(status_text)}")


def status(text: str) -> bool:
    """Set the one-line status that `systemctl status` shows."""
    return notify(f"STATUS={_one_line(text)}")


def stopping() -> bool:
    """Say shutdown has begun, so systemd shows "deactivating" rather than a hang."""
    return notify("STOPPING=1")


def reloading() -> bool:
    """Say a reload (SIGHUP) has begun; send `ready()` when it is done.

    MONOTONIC_USEC is ignored by systemd 252 but required by `Type=notify-reload` (253+), so the
    same call keeps working if the unit moves to that type.
    """
    return notify(
        f"RELOADING=1\nMONOTONIC_USEC={time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000}"
    )


def watchdog_ping() -> bool:
    """Reset the `WatchdogSec=` timer; systemd kills and restarts a service that stops pinging."""
    return notify("WATCHDOG=1")


def watchdog_interval() -> float | None:
    """The watchdog timeout in seconds, or None when no watchdog is armed for this process.

    Ping at half this interval or more often. `$WATCHDOG_PID`, when set, names the one process
    the watchdog is meant for: a child that inherited the environment must not think it is.
    """
    pid = os.environ.get("WATCHDOG_PID")
    if pid is not None and not _is_our_pid(pid):
        return None
    try:
        usec = int(os.environ.get("WATCHDOG_USEC", ""))
    except ValueError:
        return None
    if usec <= 0:
        return None
    return usec / 1_000_000


def _is_our_pid(text: str) -> bool:
    try:
        return int(text) == os.getpid()
    except ValueError:
        return False


def listen_sockets() -> list[socket.socket]:
    """The sockets systemd passed us (socket activation), in order; [] when there are none."""
    return [sock for _name, sock in listen_sockets_with_names()]


def listen_sockets_with_names() -> list[tuple[str, socket.socket]]:
    """The passed sockets with their `FileDescriptorName=` (default: the socket unit's name).

    Names are "unknown" when `$LISTEN_FDNAMES` is unset (older managers, systemd-socket-activate
    without --fdname). The LISTEN_* variables are removed in every case: they describe fds of
    this pid only, and a child that inherited them would take fds that are not its own. The fds
    are made close-on-exec for the same reason.

    Raises ValueError when the variables contradict each other or an fd is not a socket, since
    serving on something other than what the unit file says is worse than failing to start.
    """
    env = {name: os.environ.pop(name, None) for name in _LISTEN_ENV}
    pid, count_text, names_text = env["LISTEN_PID"], env["LISTEN_FDS"], env["LISTEN_FDNAMES"]
    if pid is None or count_text is None or not _is_our_pid(pid):
        return []
    try:
        count = int(count_text)
    except ValueError:
        raise ValueError(f"LISTEN_FDS is not a number: {count_text!r}") from None
    if count < 0:
        raise ValueError(f"LISTEN_FDS is negative: {count}")
    if count == 0:
        return []
    names = names_text.split(":") if names_text is not None else ["unknown"] * count
    if len(names) != count:
        raise ValueError(f"LISTEN_FDNAMES has {len(names)} names for {count} fds: {names_text!r}")
    fds = range(SD_LISTEN_FDS_START, SD_LISTEN_FDS_START + count)
    for fd in fds:
        try:
            mode = os.fstat(fd).st_mode
        except OSError as exc:
            raise ValueError(f"fd {fd} promised by LISTEN_FDS is not open: {exc}") from None
        if not stat.S_ISSOCK(mode):
            raise ValueError(f"fd {fd} passed by socket activation is not a socket")
    passed: list[tuple[str, socket.socket]] = []
    for name, fd in zip(names, fds, strict=True):
        os.set_inheritable(fd, False)
        # fileno= asks the kernel for family, type and protocol, so any ListenStream= /
        # ListenDatagram= kind comes back as the right socket object.
        passed.append((name, socket.socket(fileno=fd)))
    return passed


def journal_stream_attached(fd: int = 2) -> bool:
    """True when `fd` (stderr) is the stream systemd connected to the journal.

    `$JOURNAL_STREAM` alone is not enough: it is inherited by children whose stderr was
    redirected, and by a shell started from a service. Matching device and inode shows the
    stream is still the journal's, which is when logs should be JSON rather than for a TTY.
    """
    value = os.environ.get("JOURNAL_STREAM", "")
    dev_text, sep, ino_text = value.partition(":")
    if not sep:
        return False
    try:
        dev, ino = int(dev_text), int(ino_text)
        st = os.fstat(fd)
    except (ValueError, OSError):
        return False
    return (st.st_dev, st.st_ino) == (dev, ino)
