"""`openclaw gateway run` (the reference, OpenClaw 2026.5.12) on a state dir, for live tests.

Shared by the interop test (the real CLI through both servers) and the beside-the-gateway run
(`stress/beside_gateway.py`). The gateway forks helpers and may outlive SIGTERM on a big store,
so it runs in its own process group and `stop` ends the whole group.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from pathlib import Path

from differential.harness import free_port, strip_ansi


class ReferenceGateway:
    """`openclaw gateway run` on a state dir, in its own process group (it forks helpers)."""

    def __init__(
        self,
        bin_path: Path,
        state_dir: Path,
        log_path: Path,
        token: str,
        env: dict[str, str] | None = None,
    ) -> None:
        full_env = {k: v for k, v in os.environ.items() if not k.startswith("OPENCLAW_")}
        full_env.update({"HOME": str(state_dir), "OPENCLAW_STATE_DIR": str(state_dir), "TZ": "UTC"})
        full_env.update(env or {})
        self.port = free_port()
        self.log_path = log_path
        self.log = open(log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.started = time.monotonic()
        argv = [str(bin_path), "gateway", "run", "--allow-unconfigured", "--auth", "token"]
        argv += ["--token", token, "--port", str(self.port), "--bind", "loopback"]
        self.proc = subprocess.Popen(
            argv,
            cwd=state_dir,
            env=full_env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    def wait_ready(self, timeout: float = 120.0) -> float:
        """Until it logs `[gateway] ready` (its sidecars are up and connects are accepted);
        returns the seconds since it was started."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            text = strip_ansi(self.log_path.read_text(errors="replace"))
            if any(line.rstrip().endswith("[gateway] ready") for line in text.splitlines()):
                return time.monotonic() - self.started
            if self.proc.poll() is not None:
                raise RuntimeError(f"reference gateway exited {self.proc.returncode}: {text}")
            time.sleep(0.2)
        raise TimeoutError("reference gateway not ready")

    def stop(self) -> None:
        """SIGTERM the group, then SIGKILL it: a helper may outlive the leader."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(10)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()
        self.log.close()
