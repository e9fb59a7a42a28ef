"""A real `sessiond serve` subprocess on port 0 with a throwaway state dir, for the daemon tests."""

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
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

STORE = "sessions.json"


def run(fn: Callable[[], Awaitable[Any]]) -> Any:
    return asyncio.run(fn())  # type: ignore[arg-type]


async def until(check: Callable[[], Awaitable[bool]], timeout: float = 5.0) -> None:
    """Poll `check` until it holds; a test that waits on a daemon never sleeps a fixed time."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await check():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("condition not reached in time")


def http_status(port: int, path: str) -> int:
    """Status of a plain GET on the daemon's port (/healthz, /readyz)."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as resp:
            return int(resp.status)
    except urllib.error.HTTPError as exc:
        return exc.code


def write_state_dir(
    root: Path,
    stores: dict[str, dict[str, Any]],
    config: dict[str, Any] | None = None,
) -> Path:
    """openclaw.json listing `stores`' agents (first is default) and each agent's store."""
    agents = [{"id": a, "default": i == 0} for i, a in enumerate(stores)]
    cfg: dict[str, Any] = {"agents": {"list": agents}}
    cfg.update(config or {})
    root.mkdir(parents=True, exist_ok=True)
    (root / "openclaw.json").write_text(json.dumps(cfg, indent=2))
    for agent, rows in stores.items():
        path = store_path(root, agent)
        path.parent.mkdir(parents=True, exist_ok=True)
        if rows is not None:
            path.write_text(json.dumps(rows, indent=2))
    return root


def store_path(root: Path, agent: str) -> Path:
    return root / "agents" / agent / "sessions" / STORE


def read_rows(root: Path, agent: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(store_path(root, agent).read_text())
    return data


class DaemonProcess:
    def __init__(
        self,
        state_dir: Path,
        *args: str,
        env: dict[str, str] | None = None,
        wait: bool = True,
    ) -> None:
        self.state_dir = state_dir
        self.port_file = state_dir / f".port.{time.monotonic_ns()}"
        self.log_path = state_dir / f".log.{time.monotonic_ns()}"
        full_env = {k: v for k, v in os.environ.items() if not k.startswith("OPENCLAW_")}
        full_env.update(env or {})
        self.log = open(self.log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "sessiond.cli.main",
                "serve",
                "--state-dir",
                str(state_dir),
                "--port",
                "0",
                "--port-file",
                str(self.port_file),
                *args,
            ],
            stdout=subprocess.DEVNULL,
            stderr=self.log,
            env=full_env,
        )
        self.port = 0
        if wait:
            self.wait_ready()

    def wait_ready(self, timeout: float = 15.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.port_file.exists():
                text = self.port_file.read_text().strip()
                if text:
                    self.port = int(text)
                    return
            if self.proc.poll() is not None:
                raise RuntimeError(f"daemon exited {self.proc.returncode}: {self.logs()}")
            time.sleep(0.01)
        raise TimeoutError(f"daemon not ready: {self.logs()}")

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

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

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 10.0) -> int:
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
