"""A tiny builder of real OpenClaw state dirs, and a runner of the real `sessiond` CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

NOW = 1_795_000_000_000
DAY = 86_400_000
HOUR = 3_600_000


def sid(n: int) -> str:
    return f"{n:08x}-0000-4000-8000-{n:012x}"


@dataclass
class StateDir:
    root: Path
    agent: str = "main"

    @property
    def sessions(self) -> Path:
        path = self.root / "agents" / self.agent / "sessions"
        path.mkdir(parents=True, exist_ok=True)
        return path

    @property
    def store(self) -> Path:
        return self.sessions / "sessions.json"

    def config(self, text: str) -> None:
        (self.root / "openclaw.json").write_text(text)

    def rows(self, rows: dict[str, Any]) -> None:
        self.store.write_text(json.dumps(rows, indent=2))

    def file(self, name: str, size: int = 100, age_ms: int = 0) -> Path:
        path = self.sessions / name
        path.write_text("x" * size)
        stamp = (NOW - age_ms) / 1000
        os.utime(path, (stamp, stamp))
        return path

    def read(self) -> dict[str, Any]:
        loaded: dict[str, Any] = json.loads(self.store.read_text())
        return loaded

    def names(self) -> list[str]:
        return sorted(os.listdir(self.sessions))

    def cli(self, *flags: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        env = dict(
            os.environ,
            OPENCLAW_STATE_DIR=str(self.root),
            HOME=str(self.root),
            SESSIOND_NOW_MS=str(NOW),
            OPENCLAW_GATEWAY_PORT="1",  # no daemon at the default address: these runs are local
        )
        exe = Path(sys.executable).with_name("sessiond")
        done = subprocess.run(
            [str(exe), "sessions", "cleanup", *flags],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        if check and done.returncode != 0:
            raise AssertionError(f"sessiond failed ({done.returncode}): {done.stderr}")
        return done

    def cli_json(self, *flags: str) -> dict[str, Any]:
        result: dict[str, Any] = json.loads(self.cli(*flags, "--json").stdout)
        return result
