"""The README's examples run as written (a doc example that breaks fails CI).

The convention, also stated in the README: inside a fenced block marked `sh`, a line that starts
with `$ ` is an example to run. Each runs, in the README's order, with the installed `sessiond`,
in one fresh demo state dir (`sessiond demo`'s, built without a daemon) that is both the working
directory and `OPENCLAW_STATE_DIR`, with no daemon at the default address; each must exit 0.
Comments after `#` are dropped. Lines without `$ ` (`sessiond serve`, `make test`) are not run.
Only `sessiond` commands may be marked: nothing else is run from a document.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
import time
from pathlib import Path

from sessiond.cli.demo import build_demo_state, claim_demo_dir

ROOT = Path(__file__).resolve().parents[2]
FENCE = re.compile(r"^```sh\n(.*?)^```", re.M | re.S)


def readme_examples(text: str) -> list[str]:
    return [
        line[2:]
        for block in FENCE.findall(text)
        for line in block.splitlines()
        if line.startswith("$ ")
    ]


def test_the_readme_has_examples_and_only_sessiond_ones() -> None:
    examples = readme_examples((ROOT / "README.md").read_text(encoding="utf-8"))
    assert len(examples) >= 4
    for example in examples:
        assert shlex.split(example, comments=True)[0] == "sessiond", example


def test_every_readme_example_runs_as_written(tmp_path: Path) -> None:
    state = tmp_path / "demo-state"
    claim_demo_dir(state)
    build_demo_state(state, time.time_ns() // 1_000_000)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENCLAW_", "SESSIOND_"))}
    env.update(OPENCLAW_STATE_DIR=str(state), HOME=str(tmp_path), OPENCLAW_GATEWAY_PORT="1")
    exe = str(Path(sys.executable).with_name("sessiond"))
    for example in readme_examples((ROOT / "README.md").read_text(encoding="utf-8")):
        argv = shlex.split(example, comments=True)
        done = subprocess.run(
            [exe, *argv[1:]],
            cwd=state,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            stdin=subprocess.DEVNULL,
        )
        assert done.returncode == 0, f"README example failed: $ {example}\n{done.stderr}"
        assert done.stdout.strip(), f"README example printed nothing: $ {example}"
