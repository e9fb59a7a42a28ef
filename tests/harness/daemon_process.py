"""A real `sessiond serve` subprocess on 127.0.0.1 port 0, for the tests, stress/ and bench/.

The daemon writes the port it bound to a port file in its state dir; the harness reads it from
there, so nothing races for a port. Its structured log (stderr) is kept beside it in the state
dir. Both the sync `wait_ready` and the async `ready` wait for the port file, so a test that
keeps an event loop busy (several daemons at once) can start a daemon without blocking it.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from harness.proc_status import rss_kb

POLL_S = 0.002


def clean_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """This process's environment without OPENCLAW_* and SESSIOND_* (a developer's own
    settings must not reach the daemon under test), plus `extra`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENCLAW_", "SESSIOND_"))}
    env.update(extra or {})
    return env


def serve_args(state_dir: Path, port_file: Path, *args: str) -> list[str]:
    """`sessiond serve` arguments for port 0 on `state_dir`, the bound port written to
    `port_file`; `args` are more flags."""
    return [
        *("serve", "--state-dir", str(state_dir)),
        *("--port", "0", "--port-file", str(port_file), *args),
    ]


def read_port(port_file: Path, running: Callable[[], bool]) -> int | None:
    """The port once the daemon has written it; None until then; an error if it exited first."""
    try:
        text = port_file.read_text().strip()
    except FileNotFoundError:
        text = ""
    if text:
        return int(text)
    if not running():
        raise RuntimeError(f"daemon exited before listening ({port_file})")
    return None


async def port_ready(port_file: Path, running: Callable[[], bool], timeout: float = 20.0) -> int:
    """`read_port` polled without blocking the event loop."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        port = read_port(port_file, running)
        if port is not None:
            return port
        await asyncio.sleep(POLL_S)
    raise TimeoutError(f"daemon did not listen within {timeout}s ({port_file})")


def http_reply(port: int, path: str, timeout: float = 5.0) -> tuple[int, str]:
    """Status and body of a plain GET on the daemon's port (/healthz, /readyz)."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=timeout) as resp:
            return int(resp.status), resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def http_status(port: int, path: str) -> int:
    return http_reply(port, path)[0]


class DaemonProcess:
    """`python -m sessiond.cli.main serve` on `state_dir`, with a clean environment plus `env`.

    `args` are more `serve` flags. With `wait` (the default) the constructor returns once the
    daemon listens; `preexec` runs in the child before exec (resource limits).
    """

    def __init__(
        self,
        state_dir: Path,
        *args: str,
        env: dict[str, str] | None = None,
        wait: bool = True,
        preexec: Callable[[], Any] | None = None,
    ) -> None:
        self.state_dir = state_dir
        stamp = time.monotonic_ns()
        self.port_file = state_dir / f".port.{stamp}"
        self.log_path = state_dir / f".log.{stamp}"
        self.log = open(self.log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "sessiond.cli.main",
                *serve_args(state_dir, self.port_file, *args),
            ],
            stdout=subprocess.DEVNULL,
            stderr=self.log,
            env=clean_env(env),
            preexec_fn=preexec,
        )
        self.pid = self.proc.pid
        self.port = 0
        if wait:
            self.wait_ready()

    def running(self) -> bool:
        return self.proc.poll() is None

    def wait_ready(self, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                port = read_port(self.port_file, self.running)
            except RuntimeError:
                raise RuntimeError(f"daemon exited {self.proc.returncode}: {self.logs()}") from None
            if port is not None:
                self.port = port
                return
            time.sleep(POLL_S)
        raise TimeoutError(f"daemon not ready: {self.logs()}")

    async def ready(self, timeout: float = 20.0) -> None:
        """`wait_ready` for a caller inside an event loop."""
        try:
            self.port = await port_ready(self.port_file, self.running, timeout)
        except RuntimeError:
            raise RuntimeError(f"daemon exited {self.proc.returncode}: {self.logs()}") from None

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    def rss_kb(self) -> tuple[int, int]:
        """(VmRSS, VmHWM) in KiB."""
        return rss_kb(self.pid)

    def logs(self) -> str:
        if not self.log.closed:
            self.log.flush()
        return self.log_path.read_text(errors="replace")

    def log_events(self) -> list[dict[str, Any]]:
        events = []
        for line in self.logs().splitlines():
            try:
                events.append(json.loads(line))
            except ValueError:
                continue
        return events

    def send(self, sig: int) -> None:
        self.proc.send_signal(sig)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15.0) -> int:
        """Send `sig` (if it still runs), wait, SIGKILL after `timeout`; the exit code."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            code = self.proc.wait()
        self.log.close()
        return code

    def __enter__(self) -> DaemonProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
