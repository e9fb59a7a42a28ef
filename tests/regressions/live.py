"""Helpers for the regression tests that run a real daemon: waits, the fault hook, raw bytes."""

from __future__ import annotations

import os
import time
from pathlib import Path

from harness.async_run import run as run  # re-exported for the scenario modules
from harness.async_run import until as until
from harness.daemon_process import DaemonProcess
from sessiond.client import SessiondClient


def client(proc: DaemonProcess) -> SessiondClient:
    return SessiondClient(proc.url, connect_timeout=5.0)


def fault_env(phase: Path, hook: str, pause: float = 30.0) -> dict[str, str]:
    """The test-only fault hook (daemon/fault_hooks.py): pause at `hook`, record in `phase`."""
    return {
        "SESSIOND_TEST_FAULT_HOOK": hook,
        "SESSIOND_TEST_FAULT_PAUSE": str(pause),
        "SESSIOND_TEST_FAULT_PHASE": str(phase),
    }


def wait_phase(phase: Path, point: str, timeout: float = 10.0) -> None:
    """Block until the process under test has reached fault point `point` (and sits there)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if phase.exists() and phase.read_text().split()[1:2] == [point]:
            return
        time.sleep(0.005)
    raise AssertionError(f"fault point {point} not reached; phase: {_text(phase)}")


def _text(path: Path) -> str:
    return path.read_text().strip() if path.exists() else "(no write started)"


def temp_files(directory: Path) -> list[str]:
    return sorted(n for n in os.listdir(directory) if n.startswith(".sessiond-"))
