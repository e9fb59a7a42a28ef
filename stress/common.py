"""Shared pieces of the stress scripts: state dirs, daemons (real or forked), RSS, reports.

Every script starts real `sessiond serve` processes on 127.0.0.1 port 0 and talks to them over
WebSocket only. The crash script restarts its daemon hundreds of times, so it forks each one
from a `Zygote`: a Python process that has already imported the daemon and runs the very same
`sessiond serve` entry point in a forked child (saving ~0.3 s of interpreter start per restart;
nothing else differs).
"""

from __future__ import annotations

import json
import os
import platform
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
STORE = "sessions.json"


def write_state_dir(
    root: Path, stores: dict[str, dict[str, Any] | None], config: dict[str, Any] | None = None
) -> Path:
    """openclaw.json listing `stores`' agents (first is the default) and each agent's store."""
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


def store_path(root: Path, agent: str = "main") -> Path:
    return root / "agents" / agent / "sessions" / STORE


def clean_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENCLAW_", "SESSIOND_"))}
    env.update(extra or {})
    return env


# ------------------------------------------------------------------------------- processes


def rss_kb(pid: int) -> tuple[int, int]:
    """(VmRSS, VmHWM) of a live process in KiB, from /proc; (0, 0) when it is gone."""
    rss = hwm = 0
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("VmRSS:"):
                    rss = int(line.split()[1])
                elif line.startswith("VmHWM:"):
                    hwm = int(line.split()[1])
    except OSError:
        pass
    return rss, hwm


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie still answers kill(0); /proc says it is dead.
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def http_status(port: int, path: str, timeout: float = 5.0) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=timeout) as resp:
            return int(resp.status), resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def wait_port_file(port_file: Path, pid_alive: Any, timeout: float = 20.0) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            text = port_file.read_text().strip()
        except FileNotFoundError:
            text = ""
        if text:
            return int(text)
        if not pid_alive():
            raise RuntimeError(f"daemon exited before listening ({port_file})")
        time.sleep(0.002)
    raise TimeoutError(f"daemon did not listen within {timeout}s")


class Daemon:
    """A real `sessiond serve --port 0` subprocess; its log is kept in the state dir."""

    def __init__(
        self,
        state_dir: Path,
        *args: str,
        env: dict[str, str] | None = None,
        wait: bool = True,
        preexec: Any = None,
    ) -> None:
        self.state_dir = state_dir
        stamp = time.monotonic_ns()
        self.port_file = state_dir / f".port.{stamp}"
        self.log_path = state_dir / f".log.{stamp}"
        self.log = open(self.log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.argv = [
            *(sys.executable, "-m", "sessiond.cli.main", "serve", "--state-dir", str(state_dir)),
            *("--port", "0", "--port-file", str(self.port_file), *args),
        ]
        self.proc = subprocess.Popen(
            self.argv,
            stdout=subprocess.DEVNULL,
            stderr=self.log,
            env=clean_env(env),
            preexec_fn=preexec,
        )
        self.pid = self.proc.pid
        self.port = 0
        if wait:
            self.port = wait_port_file(self.port_file, lambda: self.proc.poll() is None)

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    def rss_kb(self) -> tuple[int, int]:
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

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            code = self.proc.wait()
        self.log.close()
        return code

    def __enter__(self) -> Daemon:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


_ZYGOTE = r"""
import json, os, signal, sys
signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # children are reaped by the kernel
import sessiond.daemon.server  # noqa: F401  (the expensive imports, done once)
from sessiond.cli.main import main
out = sys.stdout
for line in sys.stdin:
    request = json.loads(line)
    pid = os.fork()
    if pid == 0:
        code = 70
        try:
            signal.signal(signal.SIGCHLD, signal.SIG_DFL)
            null = os.open(os.devnull, os.O_RDWR)
            log = os.open(request["log"], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
            os.dup2(null, 0); os.dup2(null, 1); os.dup2(log, 2)
            sys.stdin = open(os.devnull); sys.stdout = open(os.devnull, "w")
            sys.stderr = os.fdopen(2, "w", buffering=1)
            code = main(request["argv"])
        finally:
            os._exit(code or 0)
    out.write(f"{pid}\n"); out.flush()
"""


class Zygote:
    """Forks `sessiond serve` children from one pre-imported interpreter (see module doc)."""

    def __init__(self, env: dict[str, str]) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", _ZYGOTE],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=clean_env(env),
            text=True,
        )

    def spawn(self, argv: list[str], log: Path) -> int:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(json.dumps({"argv": argv, "log": str(log)}) + "\n")
        self.proc.stdin.flush()
        return int(self.proc.stdout.readline())

    def close(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


# ---------------------------------------------------------------------------------- reports


def machine() -> str:
    model = ""
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as handle:
            for line in handle:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    load = os.getloadavg()[0]
    return (
        f"{platform.machine()} {os.cpu_count()} cores {model}, Linux {platform.release()}, "
        f"Python {platform.python_version()}, load avg {load:.1f} at start"
    )


@dataclass
class Report:
    """Figures and violations of one script; `finish` prints them and gives the exit code."""

    name: str
    figures: dict[str, Any] = field(default_factory=dict)
    violations: list[str] = field(default_factory=list)
    started: float = field(default_factory=time.monotonic)

    def fail(self, message: str) -> None:
        if len(self.violations) < 200:
            self.violations.append(message)
        elif len(self.violations) == 200:
            self.violations.append("... (more violations not listed)")

    def check(self, ok: bool, message: str) -> None:
        if not ok:
            self.fail(message)

    @property
    def ok(self) -> bool:
        return not self.violations

    def finish(self) -> int:
        self.figures["duration_s"] = round(time.monotonic() - self.started, 1)
        print(f"== {self.name}: {'OK' if self.ok else 'FAILED'}")
        for key, value in self.figures.items():
            print(f"   {key}: {value}")
        for violation in self.violations:
            print(f"   VIOLATION: {violation}")
        return 0 if self.ok else 1


def quiet_closed_futures(loop: Any) -> None:
    """Requests cut off by a kill fail with ConnectionError that nobody reads; do not log them."""

    def handler(loop: Any, context: dict[str, Any]) -> None:
        if isinstance(context.get("exception"), ConnectionError | OSError):
            return
        loop.default_exception_handler(context)

    loop.set_exception_handler(handler)


def percentile(values: list[float], pct: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(pct / 100 * (len(ordered) - 1))))
    return ordered[index]
