"""`sessiond serve` daemons forked from one interpreter that has already imported the daemon.

A run that restarts its daemon hundreds of times (stress/crash.py) forks each one from a
`Zygote`: the very same `sessiond serve` entry point, minus ~0.3 s of interpreter start and
imports per restart; nothing else differs. The children are not ours to wait for (the zygote
ignores SIGCHLD, so the kernel reaps them): watch them with `proc_status.alive`.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from harness.daemon_process import clean_env

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
    """One pre-imported interpreter; every child gets the zygote's environment (clean + `env`)."""

    def __init__(self, env: dict[str, str]) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", _ZYGOTE],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=clean_env(env),
            text=True,
        )

    def spawn(self, argv: list[str], log: Path) -> int:
        """Fork a child running `sessiond <argv>` (see `daemon_process.serve_args`), stderr
        appended to `log`; its pid."""
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
