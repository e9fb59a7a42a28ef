"""Where the generator writes, what it writes there now, and how that differs from the disk.

The Python file goes through ruff (imports sorted, then formatted, with the repository's
settings), so what is written is exactly what `make lint` accepts.
"""

from __future__ import annotations

import difflib
import subprocess
import sys
from pathlib import Path

from sessiond.client.codegen import contract, python_client, typescript_client
from sessiond.protocol.schema_export import SCHEMA_PATH

CLIENT_DIR = Path(__file__).resolve().parents[1]
PYTHON_OUT = CLIENT_DIR / "generated.py"
TYPESCRIPT_OUT = CLIENT_DIR / "typescript" / "src" / "generated.ts"


def _ruff(args: list[str], text: str, target: Path) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "ruff", *args, "--stdin-filename", str(target), "-"],
        input=text,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"ruff {' '.join(args)} failed on {target.name}:\n{done.stderr}")
    return done.stdout


def format_python(text: str, target: Path) -> str:
    """`text` as ruff leaves it for `target`: imports sorted, then formatted."""
    text = _ruff(["check", "--select", "I", "--fix", "--exit-zero", "--quiet"], text, target)
    return _ruff(["format", "--quiet"], text, target)


def outputs(schema: Path = SCHEMA_PATH) -> dict[Path, str]:
    """Every generated file and the text the generator writes into it now."""
    loaded = contract.load(schema)
    return {
        PYTHON_OUT: format_python(python_client.render(loaded), PYTHON_OUT),
        TYPESCRIPT_OUT: typescript_client.render(loaded),
    }


def stale(files: dict[Path, str]) -> list[str]:
    """Unified diffs of each file that differs from its generated text."""
    diffs = []
    for path, text in files.items():
        current = path.read_text(encoding="utf-8") if path.exists() else ""
        if current != text:
            diffs.append(
                "".join(
                    difflib.unified_diff(
                        current.splitlines(keepends=True),
                        text.splitlines(keepends=True),
                        f"{path} (checked in)",
                        f"{path} (generated now)",
                    )
                )
            )
    return diffs
