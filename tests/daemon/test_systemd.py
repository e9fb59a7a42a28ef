"""systemd glue against the real thing: datagram sockets, passed fds, child processes, and
systemd's own unit checker. Nothing under test is mocked; only environment variables are set,
exactly as systemd would set them."""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import struct
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sessiond.daemon import systemd

REPO = Path(__file__).resolve().parents[2]
UNITS = REPO / "systemd"
VENV_SESSIOND = Path(sys.executable).parent / "sessiond"
TIMEOUT = 5.0


# ------------------------------------------------------------------------------- sd_notify


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """No systemd variables leak in from whatever runs the tests (CI may itself be a unit)."""
    for name in (
        "NOTIFY_SOCKET",
        "WATCHDOG_USEC",
        "WATCHDOG_PID",
        "LISTEN_PID",
        "LISTEN_FDS",
        "LISTEN_FDNAMES",
        "JOURNAL_STREAM",
    ):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def _receiver(address: str) -> socket.socket:
    """A datagram socket standing where systemd's notify socket would, sender pids switched on."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(address)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
    sock.settimeout(TIMEOUT)
    return sock


def _recv(sock: socket.socket) -> tuple[bytes, int]:
    """One datagram and the pid the kernel vouches for (what NotifyAccess=main checks)."""
    data, ancdata, _flags, _addr = sock.recvmsg(4096, socket.CMSG_SPACE(struct.calcsize("3i")))
    pids = [
        struct.unpack("3i", cmsg_data)[0]
        for level, kind, cmsg_data in ancdata
        if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS
    ]
    assert len(pids) == 1
    return data, pids[0]


@pytest.fixture
def path_socket(clean_env: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[socket.socket]:
    path = str(tmp_path / "notify")
    with _receiver(path) as sock:
        clean_env.setenv("NOTIFY_SOCKET", path)
        yield sock


@pytest.fixture
def abstract_socket(clean_env: pytest.MonkeyPatch) -> Iterator[socket.socket]:
    name = f"sessiond-test-{uuid.uuid4().hex}"
    with _receiver("\0" + name) as sock:
        clean_env.setenv("NOTIFY_SOCKET", "@" + name)
        yield sock


@pytest.mark.parametrize("kind", ["path_socket", "abstract_socket"])
def test_each_helper_sends_its_exact_datagram(kind: str, request: pytest.FixtureRequest) -> None:
    sock: socket.socket = request.getfixturevalue(kind)
    sent = [
        (systemd.ready(), b"READY=1"),
        (systemd.ready("serving 3 stores"), b"READY=1\nSTATUS=serving 3 stores"),
        (systemd.status("cleanup: 12 of 40 sessions"), b"STATUS=cleanup: 12 of 40 sessions"),
        (systemd.watchdog_ping(), b"WATCHDOG=1"),
        (systemd.stopping(), b"STOPPING=1"),
        (systemd.notify("EXTEND_TIMEOUT_USEC=5000000"), b"EXTEND_TIMEOUT_USEC=5000000"),
    ]
    for returned, expected in sent:
        assert returned is True
        data, pid = _recv(sock)
        assert data == expected
        assert pid == os.getpid()


def test_reloading_carries_a_monotonic_timestamp(path_socket: socket.socket) -> None:
    before = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
    assert systemd.reloading() is True
    after = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
    data, _pid = _recv(path_socket)
    match = re.fullmatch(rb"RELOADING=1\nMONOTONIC_USEC=(\d+)", data)
    assert match is not None, data
    assert before <= int(match.group(1)) <= after


def test_status_text_cannot_inject_another_assignment(path_socket: socket.socket) -> None:
    assert systemd.status("loaded\nREADY=1\r\nWATCHDOG=1") is True
    data, _pid = _recv(path_socket)
    assert data == b"STATUS=loaded READY=1 WATCHDOG=1"
    assert data.count(b"\n") == 0


def test_notify_is_a_quiet_no_op_without_systemd(clean_env: pytest.MonkeyPatch) -> None:
    assert systemd.notify("READY=1") is False
    assert systemd.ready("x") is False
    clean_env.setenv("NOTIFY_SOCKET", "")
    assert systemd.watchdog_ping() is False
    clean_env.setenv("NOTIFY_SOCKET", "vsock:2:1234")  # systemd 253+; not spoken here
    assert systemd.stopping() is False


def test_notify_reports_a_socket_nobody_listens_on(
    clean_env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    clean_env.setenv("NOTIFY_SOCKET", str(tmp_path / "gone"))
    assert systemd.ready() is False
    with pytest.raises(ValueError):
        systemd.notify("")


# -------------------------------------------------------------------------------- watchdog


def test_watchdog_interval(clean_env: pytest.MonkeyPatch) -> None:
    assert systemd.watchdog_interval() is None
    clean_env.setenv("WATCHDOG_USEC", "30000000")
    assert systemd.watchdog_interval() == 30.0
    clean_env.setenv("WATCHDOG_PID", str(os.getpid()))
    assert systemd.watchdog_interval() == 30.0
    # Inherited from a parent whose watchdog it is, not ours.
    clean_env.setenv("WATCHDOG_PID", str(os.getppid()))
    assert systemd.watchdog_interval() is None
    clean_env.setenv("WATCHDOG_PID", "not-a-pid")
    assert systemd.watchdog_interval() is None
    clean_env.delenv("WATCHDOG_PID")
    for bad in ("0", "-5", "", "30s"):
        clean_env.setenv("WATCHDOG_USEC", bad)
        assert systemd.watchdog_interval() is None, bad


# ------------------------------------------------------------------------ socket activation

# Run in a child because it takes fds 3.. as its own: in the test process they belong to pytest.
CHILD = """
import json, os, socket
from sessiond.daemon import systemd
try:
    named = systemd.listen_sockets_with_names()
except ValueError as exc:
    left = sorted(k for k in os.environ if k.startswith("LISTEN_"))
    print(json.dumps({"error": str(exc), "env_left": left}), flush=True)
    raise SystemExit(0)
print(json.dumps({
    "sockets": [
        {
            "name": name,
            "fd": sock.fileno(),
            "family": sock.family.name,
            "type": sock.type.name,
            "inheritable": sock.get_inheritable(),
            "listening": sock.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN),
        }
        for name, sock in named
    ],
    "env_left": sorted(k for k in os.environ if k.startswith("LISTEN_")),
}), flush=True)
for _name, sock in named:
    conn, _peer = sock.accept()
    with conn:
        conn.sendall(f"accepted by {os.getpid()}".encode())
"""

CHILD_ARGV = (sys.executable, "-c", CHILD)

# What systemd does between fork and exec: the socket moved to fd 3, LISTEN_PID set to the pid
# that exec keeps. argv: fd to move, LISTEN_FDS, LISTEN_FDNAMES ("-" for unset).
WRAPPER = """
import os, sys
fd, count, names = int(sys.argv[1]), sys.argv[2], sys.argv[3]
if fd != 3:
    os.dup2(fd, 3)
    os.close(fd)
os.environ["LISTEN_FDS"] = count
os.environ["LISTEN_PID"] = str(os.getpid())
if names != "-":
    os.environ["LISTEN_FDNAMES"] = names
os.execv(sys.executable, [sys.executable, "-c", sys.argv[4]])
"""


def _activate(listener: socket.socket, count: str = "1", names: str = "-") -> subprocess.Popen[str]:
    fd = listener.fileno()
    return subprocess.Popen(
        [sys.executable, "-c", WRAPPER, str(fd), count, names, CHILD],
        pass_fds=(fd,),
        stdout=subprocess.PIPE,
        text=True,
    )


def _finish(proc: subprocess.Popen[str]) -> dict[str, Any]:
    out, _err = proc.communicate(timeout=TIMEOUT)
    assert proc.returncode == 0
    report = json.loads(out)
    assert isinstance(report, dict)
    return report


def test_child_accepts_on_a_tcp_socket_passed_as_fd_3() -> None:
    with socket.create_server(("127.0.0.1", 0)) as listener:
        port = listener.getsockname()[1]
        proc = _activate(listener, names="websocket")
    # Our copy is closed: only the child can accept now.
    with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as client:
        reply = client.recv(100)
    report = _finish(proc)
    assert reply == f"accepted by {proc.pid}".encode()
    assert report == {
        "sockets": [
            {
                "name": "websocket",
                "fd": 3,
                "family": "AF_INET",
                "type": "SOCK_STREAM",
                "inheritable": False,
                "listening": 1,
            }
        ],
        "env_left": [],
    }


def test_names_must_match_the_fd_count() -> None:
    with socket.create_server(("127.0.0.1", 0)) as listener:
        proc = _activate(listener, names="websocket:admin")
    report = _finish(proc)
    assert report["error"] == "LISTEN_FDNAMES has 2 names for 1 fds: 'websocket:admin'"
    assert report["env_left"] == []


@pytest.mark.skipif(
    shutil.which("systemd-socket-activate") is None,
    reason="systemd-socket-activate not installed (Debian: apt-get install -y systemd)",
)
def test_systemd_socket_activate_starts_the_child_on_first_connection(tmp_path: Path) -> None:
    path = str(tmp_path / "ws.sock")
    proc = subprocess.Popen(
        ["systemd-socket-activate", "--listen", path, "--fdname=websocket", *CHILD_ARGV],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        deadline = time.monotonic() + TIMEOUT
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as client:
            client.settimeout(TIMEOUT)
            # The path appears at bind, a moment before listen: until then a connect is
            # refused (or finds no file), which is not yet an answer.
            while True:
                try:
                    client.connect(path)
                    break
                except (FileNotFoundError, ConnectionRefusedError):
                    assert time.monotonic() < deadline, "systemd-socket-activate never listened"
                    time.sleep(0.01)
            reply = client.recv(100)
        report = _finish(proc)
    finally:
        proc.kill()
        proc.wait()
    # systemd-socket-activate execs the child in its own pid, as systemd does.
    assert reply == f"accepted by {proc.pid}".encode()
    assert report["env_left"] == []
    [sock] = report["sockets"]
    assert sock["name"] == "websocket"
    assert (sock["fd"], sock["family"], sock["type"]) == (3, "AF_UNIX", "SOCK_STREAM")


def test_variables_for_another_pid_are_dropped_and_fds_left_alone(
    clean_env: pytest.MonkeyPatch,
) -> None:
    assert systemd.listen_sockets() == []
    probe = os.open(os.devnull, os.O_RDONLY)
    try:
        clean_env.setenv("LISTEN_PID", str(os.getppid()))
        clean_env.setenv("LISTEN_FDS", "1")
        clean_env.setenv("LISTEN_FDNAMES", "websocket")
        assert systemd.listen_sockets() == []
        assert not any(name.startswith("LISTEN_") for name in os.environ)
        os.fstat(probe)  # still open: nothing was wrapped or closed
    finally:
        os.close(probe)


# ------------------------------------------------------------------------------ journal


def test_journal_stream_must_match_the_fd(clean_env: pytest.MonkeyPatch) -> None:
    journal, other = socket.socketpair()
    with journal, other:
        st = os.fstat(journal.fileno())
        assert systemd.journal_stream_attached(journal.fileno()) is False
        clean_env.setenv("JOURNAL_STREAM", f"{st.st_dev}:{st.st_ino}")
        assert systemd.journal_stream_attached(journal.fileno()) is True
        # Inherited variable, stream redirected elsewhere: not the journal any more.
        assert systemd.journal_stream_attached(other.fileno()) is False
        for bad in ("", "12", "a:b", f"{st.st_dev}:"):
            clean_env.setenv("JOURNAL_STREAM", bad)
            assert systemd.journal_stream_attached(journal.fileno()) is False, bad


def test_child_whose_stderr_is_the_journal_stream_sees_it() -> None:
    # journald hands services a connected AF_UNIX stream socket as stdout/stderr.
    journal, reader = socket.socketpair()
    with journal, reader:
        st = os.fstat(journal.fileno())
        env = {**os.environ, "JOURNAL_STREAM": f"{st.st_dev}:{st.st_ino}"}
        code = "from sessiond.daemon import systemd; print(systemd.journal_stream_attached())"
        out = [
            subprocess.run(
                [sys.executable, "-c", code],
                stderr=stderr,
                stdout=subprocess.PIPE,
                env=env,
                text=True,
                timeout=TIMEOUT,
                check=True,
            ).stdout
            for stderr in (journal.fileno(), subprocess.DEVNULL)
        ]
    assert out == ["True\n", "False\n"]


# ---------------------------------------------------------------------------- unit files

ANALYZE = shutil.which("systemd-analyze")
needs_analyze = pytest.mark.skipif(
    ANALYZE is None, reason="systemd-analyze not installed (Debian: apt-get install -y systemd)"
)


@pytest.fixture
def installed_units(tmp_path: Path) -> Path:
    """The units as shipped, but with ExecStart pointing at this venv's real `sessiond`, since
    verify rejects a unit whose binary is missing and /usr/bin/sessiond is not installed here."""
    assert VENV_SESSIOND.is_file(), VENV_SESSIOND
    service = (UNITS / "sessiond.service").read_text()
    assert service.count("ExecStart=/usr/bin/sessiond ") == 1
    service = service.replace("ExecStart=/usr/bin/sessiond ", f"ExecStart={VENV_SESSIOND} ")
    (tmp_path / "sessiond.service").write_text(service)
    shutil.copy(UNITS / "sessiond.socket", tmp_path / "sessiond.socket")
    return tmp_path


def _analyze(*args: str) -> subprocess.CompletedProcess[str]:
    assert ANALYZE is not None
    return subprocess.run(
        [ANALYZE, *args], capture_output=True, text=True, timeout=TIMEOUT, check=False
    )


@needs_analyze
def test_units_pass_systemd_analyze_verify_silently(installed_units: Path) -> None:
    # verify exits 0 on many warnings, so any output at all is a failure.
    result = _analyze(
        "verify",
        str(installed_units / "sessiond.socket"),
        str(installed_units / "sessiond.service"),
    )
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")


@needs_analyze
def test_service_hardening_exposure_stays_low(installed_units: Path) -> None:
    # --threshold is the exposure score times ten: fail above 2.5 ("OK" is below 4.5).
    result = _analyze(
        "security", "--offline=true", "--threshold=25", str(installed_units / "sessiond.service")
    )
    match = re.search(r"Overall exposure level for sessiond\.service: (\d+\.\d)", result.stdout)
    assert match is not None, result.stdout + result.stderr
    assert result.returncode == 0, result.stdout
    assert float(match.group(1)) <= 2.5
