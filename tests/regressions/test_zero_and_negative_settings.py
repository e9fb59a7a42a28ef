"""Zero and negative settings (OpenClaw #119909, #121106).

Guarantee: a maintenance setting of 0 switches its rule off, and a negative or unparsable one is
a config error; none of them deletes all history. (2026.5.12 reads `pruneAfter: 0` and
`maxDiskBytes: 0` as "remove everything"; see docs/compat.md.)
"""

from __future__ import annotations

from pathlib import Path

import pytest

from .statedir import HOUR, NOW, StateDir, sid


def _three_rows(state: StateDir) -> None:
    state.rows(
        {
            f"agent:main:explicit:{n}": {"sessionId": sid(n), "updatedAt": NOW - (n + 1) * HOUR}
            for n in range(3)
        }
    )
    for n in range(3):
        state.file(f"{sid(n)}.jsonl", age_ms=(n + 1) * HOUR)


@pytest.mark.parametrize(
    "maintenance",
    [
        "pruneAfter: 0",
        'pruneAfter: "0"',
        "pruneAfter: '0d'",
        "maxDiskBytes: 0",
        'maxDiskBytes: "0"',
        "maxDiskBytes: 100000, highWaterBytes: 0",
        "maxDiskBytes: 300, highWaterBytes: 0",
        "resetArchiveRetention: 0",
    ],
)
def test_zero_switches_the_rule_off(tmp_path: Path, maintenance: str) -> None:
    state = StateDir(tmp_path)
    state.config(f"{{session: {{maintenance: {{{maintenance}}}}}}}")
    _three_rows(state)
    preview = state.cli_json("--dry-run")
    applied = state.cli_json()
    assert preview["pruned"] == 0 and applied["pruned"] == 0
    assert len(state.read()) >= 1, "history must never be wiped by a zero setting"
    if "300" not in maintenance:
        assert len(state.read()) == 3


@pytest.mark.parametrize(
    ("maintenance", "problem"),
    [
        ("pruneAfter: -1", "pruneAfter"),
        ('pruneAfter: "-2d"', "pruneAfter"),
        ("maxEntries: 0", "maxEntries"),
        ("maxEntries: -5", "maxEntries"),
        ('maxDiskBytes: "-1"', "maxDiskBytes"),
        ('pruneAfter: "1w"', "pruneAfter"),
    ],
)
def test_negative_or_unparsable_is_a_config_error(
    tmp_path: Path, maintenance: str, problem: str
) -> None:
    state = StateDir(tmp_path)
    state.config(f"{{session: {{maintenance: {{{maintenance}}}}}}}")
    _three_rows(state)
    before = state.store.read_bytes()
    done = state.cli(check=False)
    assert done.returncode == 1
    assert "OpenClaw config is invalid" in done.stderr and problem in done.stderr
    assert state.store.read_bytes() == before
