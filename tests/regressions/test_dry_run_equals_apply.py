"""Dry run equals apply (OpenClaw #83124, #77711).

Guarantee: with known numbers of missing, dm-scope, stale, cap-overflow and orphan rows, the
apply's counts equal the dry run's, and the file changes exactly when `wouldMutate` is true,
including `--enforce` with no `--fix-*` flag.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from .statedir import DAY, HOUR, NOW, StateDir, sid

COUNTED = ("beforeCount", "afterCount", "missing", "dmScopeRetired", "pruned", "capped")


def _fixture(state: StateDir) -> None:
    state.config("{session: {maintenance: {maxEntries: 4, mode: 'warn'}}}")
    rows = {}
    for n in range(6):  # six fresh rows: two overflow a cap of four
        rows[f"agent:main:explicit:{n}"] = {"sessionId": sid(n), "updatedAt": NOW - n * HOUR}
        state.file(f"{sid(n)}.jsonl")
    rows["agent:main:stale"] = {"sessionId": sid(10), "updatedAt": NOW - 40 * DAY}
    state.file(f"{sid(10)}.jsonl", age_ms=40 * DAY)
    rows["agent:main:telegram:direct:9"] = {"sessionId": sid(11), "updatedAt": NOW - HOUR}
    state.file(f"{sid(11)}.jsonl")
    rows["agent:main:missing"] = {"sessionId": sid(12), "updatedAt": NOW - HOUR}
    state.rows(rows)
    state.file("orphan.jsonl", age_ms=45 * DAY)


@pytest.mark.parametrize("fix", [[], ["--fix-missing", "--fix-dm-scope"]])
def test_apply_counts_equal_the_dry_run(tmp_path: Path, fix: list[str]) -> None:
    state = StateDir(tmp_path)
    _fixture(state)
    preview = state.cli_json("--dry-run", "--enforce", *fix)
    before = state.store.read_bytes()
    applied = state.cli_json("--enforce", *fix)
    for name in COUNTED:
        assert applied[name] == preview[name], name
    assert applied["unreferencedArtifacts"] == preview["unreferencedArtifacts"]
    assert applied["wouldMutate"] == preview["wouldMutate"] is True
    assert state.store.read_bytes() != before
    assert applied["appliedCount"] == preview["afterCount"] == len(state.read())


def test_nothing_to_do_means_nothing_written(tmp_path: Path) -> None:
    state = StateDir(tmp_path)
    state.rows({"agent:main:main": {"sessionId": sid(1), "updatedAt": NOW - HOUR}})
    state.file(f"{sid(1)}.jsonl")
    preview = state.cli_json("--dry-run", "--enforce")
    stat = state.store.stat()
    applied = state.cli_json("--enforce")
    assert preview["wouldMutate"] is applied["wouldMutate"] is False
    assert state.store.stat().st_mtime_ns == stat.st_mtime_ns
