"""dmScope round trip (OpenClaw #45554, #47561, #77880, #146033).

Guarantee: after `session.dmScope` goes main -> per-channel-peer -> main, `--fix-dm-scope
--dry-run` lists exactly the stale peer-keyed direct rows as retire-dm-scope, skips the active
key, changes nothing; the apply archives their transcripts as `.deleted.<ts>`. Under a non-main
scope nothing is retired.
"""

from __future__ import annotations

from pathlib import Path

from .statedir import NOW, StateDir, sid

ROWS = {
    "agent:main:main": 1,
    "agent:main:telegram:direct:111": 2,
    "agent:main:telegram:default:direct:222": 3,
    "agent:main:slack:direct:active": 4,
    "agent:main:telegram:group:-100": 5,
}


def _build(state: StateDir) -> None:
    state.rows(
        {key: {"sessionId": sid(n), "updatedAt": NOW - n * 60_000} for key, n in ROWS.items()}
    )
    for n in ROWS.values():
        state.file(f"{sid(n)}.jsonl")


def test_round_trip_back_to_main(tmp_path: Path) -> None:
    state = StateDir(tmp_path)
    state.config("{session: {dmScope: 'per-channel-peer'}}")
    _build(state)
    assert state.cli_json("--dry-run", "--fix-dm-scope")["dmScopeRetired"] == 0

    state.config("{session: {dmScope: 'main'}}")
    before = state.store.read_bytes()
    listing = state.cli(
        "--dry-run", "--fix-dm-scope", "--active-key", "agent:main:slack:direct:active"
    )
    retired = [
        line.split()[1] for line in listing.stdout.splitlines() if line.startswith("retire-")
    ]
    assert sorted(retired) == ["agent:main:teleg...ct:111", "agent:main:teleg...ct:222"]
    assert state.store.read_bytes() == before, "a dry run changes nothing"

    applied = state.cli_json("--fix-dm-scope", "--active-key", "agent:main:slack:direct:active")
    assert applied["dmScopeRetired"] == 2
    assert sorted(state.read()) == sorted(
        ["agent:main:main", "agent:main:slack:direct:active", "agent:main:telegram:group:-100"]
    )
    names = state.names()
    for n in (2, 3):
        assert f"{sid(n)}.jsonl" not in names
        assert any(name.startswith(f"{sid(n)}.jsonl.deleted.") for name in names)


def test_per_channel_to_per_account_retires_nothing(tmp_path: Path) -> None:
    state = StateDir(tmp_path)
    state.config("{session: {dmScope: 'per-account-channel-peer'}}")
    _build(state)
    assert state.cli_json("--fix-dm-scope")["dmScopeRetired"] == 0
    assert len(state.read()) == len(ROWS)
