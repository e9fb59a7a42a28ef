"""The TypeScript client compiled with tsc and run under Node against a real `sessiond serve`.

It runs once per suitable Node found (22+ has a global WebSocket; 20.10+ gets
`--experimental-websocket`): `$SESSIOND_NODE`, `$OPENCLAW_REF_DIR/bin/node`, the reference
install beside the checkout, and `node` on PATH. The daemon has a token, so the browser path
(an `auth` request as the first frame) is the one exercised.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from harness.daemon_process import DaemonProcess
from harness.state_dirs import read_rows, write_state_dir

HERE = Path(__file__).resolve().parent
PACKAGE = HERE.parents[1] / "client" / "typescript"
RUNNER = HERE / "typescript_client_run.mjs"
ROWS = {
    "agent:main:old": {"sessionId": "s-old", "updatedAt": 1000},
    "agent:main:new": {"sessionId": "s-new", "updatedAt": 3000},
}


def _node_candidates() -> list[Path]:
    found = [os.environ.get("SESSIOND_NODE"), shutil.which("node")]
    if os.environ.get("OPENCLAW_REF_DIR"):
        found.append(str(Path(os.environ["OPENCLAW_REF_DIR"]) / "bin" / "node"))
    found.append(str(HERE.parents[2] / "ref" / "bin" / "node"))
    return [Path(p).resolve() for p in found if p and Path(p).is_file()]


def _node_command(node: Path) -> list[str] | None:
    """How to run this Node with a global WebSocket, or None if it has none."""
    try:
        version = subprocess.run(
            [str(node), "--version"], capture_output=True, text=True, timeout=20, check=True
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    match = re.match(r"v(\d+)\.(\d+)", version.strip())
    if match is None:
        return None
    major, minor = int(match[1]), int(match[2])
    if major >= 22:
        return [str(node)]
    if (major, minor) >= (20, 10):
        return [str(node), "--experimental-websocket"]
    return None


def suitable_nodes() -> dict[str, list[str]]:
    nodes: dict[str, list[str]] = {}
    for node in dict.fromkeys(_node_candidates()):
        command = _node_command(node)
        if command is not None:
            nodes[str(node)] = command
    return nodes


NODES = suitable_nodes()


@pytest.fixture(scope="module")
def compiled(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The client compiled by the package's pinned tsc into a temporary ES-module directory."""
    if not NODES:
        pytest.skip("no Node 20.10+ found (PATH, $SESSIOND_NODE, $OPENCLAW_REF_DIR/bin/node)")
    tsc = PACKAGE / "node_modules" / ".bin" / "tsc"
    if not tsc.exists():
        npm = shutil.which("npm")
        if npm is None:
            pytest.skip("typescript is not installed in client/typescript and npm is missing")
        installed = subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund"], cwd=PACKAGE, capture_output=True, timeout=300
        )
        if installed.returncode != 0 or not tsc.exists():
            pytest.skip(f"npm ci failed in client/typescript: {installed.stderr.decode()[-500:]}")
    out = tmp_path_factory.mktemp("ts-dist")
    subprocess.run(
        [str(tsc), "-p", str(PACKAGE), "--outDir", str(out), "--strict"],
        check=True,
        timeout=300,
    )
    (out / "package.json").write_text('{"type": "module"}\n')
    return out / "index.js"


@pytest.fixture
def daemon(tmp_path: Path) -> Iterator[DaemonProcess]:
    root = write_state_dir(tmp_path, {"main": ROWS}, {"gateway": {"auth": {"token": "t0ken"}}})
    with DaemonProcess(root) as proc:
        yield proc


@pytest.mark.parametrize("node", sorted(NODES) or ["none"])
def test_typescript_client_under_node(compiled: Path, daemon: DaemonProcess, node: str) -> None:
    done = subprocess.run(
        [*NODES[node], str(RUNNER), str(compiled), daemon.url, "t0ken"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    steps: dict[str, Any] = {}
    for line in done.stdout.splitlines():
        step = json.loads(line)
        steps[step.pop("step")] = step
    assert steps["cleanup"] == {"dryRun": True, "agentId": "main", "beforeCount": 2}
    assert steps["list"] == {"keys": ["agent:main:new", "agent:main:old"], "totalCount": 2}
    assert steps["error"] == {"keyNotFound": True, "code": -32004}
    assert steps["changed"] == {
        "gap": False,
        "keys": ["agent:main:from-node"],
        "reason": "patch",
        "seq": 1,
    }
    assert read_rows(daemon.state_dir, "main")["agent:main:from-node"] == {"from": "node"}
