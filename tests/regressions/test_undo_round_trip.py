"""Undo round trip (issue 15): apply a cleanup, restore it, get the state dir back.

On every differential fixture, with every cleanup flag set, `sessiond sessions cleanup` then
`sessiond sessions restore --last` (per store, newest first) leaves every file byte-identical
to the original, apart from the files the journal listed as deleted outright and the journal
itself. A store file whose original layout is not the one sessiond writes (compact, a BOM,
keys out of JavaScript order) comes back row for row, byte for byte per row, in order: the
apply already rewrote its layout, and the layout is not a row.

The property test does the same on generated stores, in-process, through the local drivers.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from differential.fixtures import CASES, build_state_dir
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sessiond.cli.local_cleanup import apply_locally, restore_locally
from sessiond.daemon.durable_file import read_store
from sessiond.daemon.os_disk_view import OsDiskView
from sessiond.engine.cleanup.plan import CleanupOptions
from sessiond.engine.cleanup.targets import plan_targets
from sessiond.engine.config import Locations, parse_config, resolve_targets
from sessiond.engine.store import load_store_bytes, serialize_store

NOW = 1_795_000_000_000
EVERY_FLAG = ("--enforce", "--fix-missing", "--fix-dm-scope", "--all-agents")


def _env(root: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENCLAW_", "SESSIOND_"))}
    env.update(
        OPENCLAW_STATE_DIR=str(root),
        HOME=str(root),
        SESSIOND_NOW_MS=str(NOW),
        OPENCLAW_GATEWAY_PORT="1",  # no daemon at the default address: local mode
    )
    return env


def _sessiond(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    exe = str(Path(sys.executable).with_name("sessiond"))
    return subprocess.run(
        [exe, "sessions", *args], env=_env(root), cwd=root, capture_output=True, text=True
    )


def _files(root: Path) -> dict[str, bytes]:
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and not p.name.endswith((".journal", ".sessiond.lock"))
    }


def _is_store(data: bytes, path: str) -> bool:
    store = load_store_bytes(data, path)
    return store.error is None and path.endswith(".json") and "trajectory" not in path


def _same(before: dict[str, bytes], after: dict[str, bytes], deleted: set[str]) -> list[str]:
    """Paths that differ, apart from deletions; non-canonical stores compared row by row."""
    problems = []
    for path in sorted(set(before) | set(after)):
        if os.path.basename(path) in deleted and path not in after:
            continue
        old, new = before.get(path), after.get(path)
        if old == new:
            continue
        if old is not None and new is not None and _is_store(old, path):
            original = load_store_bytes(old, path)
            if serialize_store(original) != old:  # not sessiond's layout: rows must match
                restored = load_store_bytes(new, path)
                if list(original.rows.items()) == list(restored.rows.items()):
                    continue
        problems.append(path)
    return problems


@pytest.mark.parametrize("case", sorted(CASES))
def test_apply_then_restore_gives_the_state_dir_back(case: str, tmp_path: Path) -> None:
    root = tmp_path / "state"
    build_state_dir(case, root, NOW)
    before = _files(root)
    flags = list(EVERY_FLAG)
    if case == "active_key":
        flags += ["--active-key", "agent:main:recent4"]
    applied = _sessiond(root, "cleanup", *flags)
    journals = sorted(root.rglob("*.journal"), key=lambda p: p.stat().st_mtime_ns, reverse=True)
    if applied.returncode != 0:
        assert journals == [], "a cleanup that failed journaled something"
        assert _files(root) == before
        return
    deleted: set[str] = set()
    for journal in journals:
        store = str(journal)[: -len(".journal")]
        listing = json.loads(_sessiond(root, "cleanups", "--store", store, "--json").stdout)
        for entry in listing["entries"]:
            deleted |= set(entry["deletedFiles"])
        if not any(entry["restorable"] for entry in listing["entries"]):
            assert all(entry["counts"]["rowsRemoved"] == 0 for entry in listing["entries"])
            continue  # it only deleted files: nothing can come back
        done = _sessiond(root, "restore", "--last", "--store", store, "--json")
        assert done.returncode == 0, done.stderr
        result = json.loads(done.stdout)
        assert result["conflicts"] == 0, result
        assert set(result["lost"]) <= deleted
    assert _same(before, _files(root), deleted) == []


# ----------------------------------------------------------------------------- property


def _sid(n: int) -> str:
    return f"{n:08x}-0000-4000-8000-{n:012x}"


ROWS = st.lists(
    st.tuples(
        st.sampled_from(["explicit", "slack:direct", "cron:job:run", "telegram:group"]),
        st.integers(0, 40),  # key suffix
        st.integers(0, 12),  # session id (shared ids happen)
        st.integers(1, 90 * 24),  # age in hours
        st.booleans(),  # transcript exists
        st.sampled_from([None, "x", 7, {"n": [1, 2]}, "é\u2028"]),  # an unknown field
    ),
    min_size=0,
    max_size=25,
)
CONFIG = st.fixed_dictionaries(
    {
        "maxEntries": st.integers(1, 20),
        "pruneAfter": st.sampled_from(["7d", "30d", "90d"]),
        "maxDiskBytes": st.sampled_from([None, 1500, 4000]),
    }
)


def _build(root: Path, rows: list[Any], cfg: dict[str, Any]) -> Path:
    maintenance = {"mode": "enforce", "maxEntries": cfg["maxEntries"]}
    maintenance["pruneAfter"] = cfg["pruneAfter"]
    if cfg["maxDiskBytes"] is not None:
        maintenance["maxDiskBytes"] = cfg["maxDiskBytes"]
    (root / "openclaw.json").write_text(
        json.dumps(
            {
                "agents": {"list": [{"id": "main", "default": True}]},
                "session": {"maintenance": maintenance},
            }
        )
    )
    sessions = root / "agents" / "main" / "sessions"
    sessions.mkdir(parents=True)
    store: dict[str, Any] = {}
    for family, suffix, sid, hours, exists, extra in rows:
        row: dict[str, Any] = {"sessionId": _sid(sid), "updatedAt": NOW - hours * 3_600_000}
        if extra is not None:
            row["extra"] = extra
        store[f"agent:main:{family}:{suffix}"] = row
        if exists:
            (sessions / f"{_sid(sid)}.jsonl").write_text("t" * (50 + 7 * sid))
    (sessions / "sessions.json").write_text(json.dumps(store, indent=2, ensure_ascii=False))
    return sessions / "sessions.json"


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(rows=ROWS, cfg=CONFIG, fix=st.booleans())
def test_round_trip_over_generated_stores(
    tmp_path: Path, rows: list[Any], cfg: dict[str, Any], fix: bool
) -> None:
    root = tmp_path / hashlib.sha256(repr((rows, cfg, fix)).encode()).hexdigest()[:12]
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir()
    store_path = _build(root, rows, cfg)
    before = _files(root)
    where = Locations(state_dir=str(root), home=str(root), cwd=str(root))
    config = parse_config(json.loads((root / "openclaw.json").read_text()), str(root))
    targets = resolve_targets(config, where, all_agents=True)
    options = CleanupOptions(fix_missing=fix, enforce=True)
    planned = plan_targets(
        targets, lambda t: read_store(t.store_path), config, options, OsDiskView(), NOW, where
    )
    for p in planned:
        apply_locally(p, options, NOW)
    journal = Path(str(store_path) + ".journal")
    if not journal.exists():
        assert _files(root) == before, "a cleanup that changed something journaled nothing"
        return
    result = restore_locally("main", str(store_path), None, False, NOW)
    assert result.conflicts == 0
    assert _same(before, _files(root), set(result.lost)) == []
