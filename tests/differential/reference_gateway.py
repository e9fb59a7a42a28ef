"""`openclaw gateway run` (the reference, 2026.5.12) on a state dir, for live comparisons."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from pathlib import Path

from differential import harness


class ReferenceGateway:
    """The reference gateway in its own process group (it forks helpers), HOME and state dir
    at `state_dir`, token auth, loopback; `stop()` ends the whole group."""

    def __init__(self, bin_path: Path, state_dir: Path, log_path: Path, token: str) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("OPENCLAW_")}
        env.update({"HOME": str(state_dir), "OPENCLAW_STATE_DIR": str(state_dir), "TZ": "UTC"})
        self.port = harness.free_port()
        self.log_path = log_path
        self.log = open(log_path, "wb")  # noqa: SIM115 - closed in stop()
        argv = [str(bin_path), "gateway", "run", "--allow-unconfigured", "--auth", "token"]
        argv += ["--token", token, "--port", str(self.port), "--bind", "loopback"]
        self.proc = subprocess.Popen(
            argv,
            cwd=state_dir,
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    def wait_ready(self, timeout: float = 120.0) -> None:
        """Until it logs `[gateway] ready` (its sidecars are up and connects are accepted)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            text = harness.strip_ansi(self.log_path.read_text(errors="replace"))
            if any(line.rstrip().endswith("[gateway] ready") for line in text.splitlines()):
                return
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
