"""The built wheel claims one top-level name, `sessiond`, and carries what runs from it."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_wheel_installs_everything_under_sessiond_only(tmp_path: Path) -> None:
    built = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "-q",
            "-w",
            str(tmp_path),
            str(ROOT),
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert built.returncode == 0, built.stderr[-3000:]
    [wheel] = tmp_path.glob("sessiond-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    top = {name.split("/")[0] for name in names if not name.split("/")[0].endswith(".dist-info")}
    assert top == {"sessiond"}
    for module in (
        "sessiond/engine/cleanup/plan.py",
        "sessiond/engine/py.typed",
        "sessiond/daemon/server.py",
        "sessiond/protocol/methods.py",
        "sessiond/protocol/schema.json",
        "sessiond/cli/main.py",
        "sessiond/cli/tui/app.py",
        "sessiond/client/generated.py",
        "sessiond/client/codegen/__init__.py",
    ):
        assert module in names, module
    assert not any(name.startswith("sessiond/__init__") for name in names), "a namespace package"
