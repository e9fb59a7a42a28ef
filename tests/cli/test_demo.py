"""The README's first command: `sessiond demo` serves a generated state dir and dry-runs it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path


def test_demo_serves_and_dry_runs_without_changing_anything(tmp_path: Path) -> None:
    exe = str(Path(sys.executable).with_name("sessiond"))
    demo = tmp_path / "demo"
    done = subprocess.run(
        [exe, "demo", "--dir", str(demo), "--serve-seconds", "0"],
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )
    assert done.returncode == 0, done.stderr
    assert "planned by the daemon, over WebSocket" in done.stdout
    assert "retire-dm-scope  agent:main:teleg...t:6101" in done.stdout
    assert "sessions.list: 18 rows" in done.stdout
    store = demo / "agents" / "main" / "sessions" / "sessions.json"
    assert len(json.loads(store.read_text())) == 9, "a dry run changes nothing"
