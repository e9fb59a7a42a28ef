"""The cleanup engine on real files: scenario checks and the properties a plan must keep.

Properties (hypothesis, real tmp dirs): an enforce apply does exactly what its dry run said;
rows outside the plan are untouched byte for byte; applying twice changes nothing the second time.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import msgspec
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sessiond.cli.local_cleanup import apply_locally
from sessiond.daemon.durable_file import read_store
from sessiond.daemon.os_disk_view import OsDiskView
from sessiond.engine.cleanup.plan import Action, CleanupOptions
from sessiond.engine.cleanup.report import preview_summary
from sessiond.engine.cleanup.targets import plan_targets
from sessiond.engine.config import Locations, StoreTarget, parse_config
from sessiond.engine.transcripts import file_kind, is_archive, is_sweepable

NOW = 1_795_000_000_000
DAY = 86_400_000


def _uuid(n: int) -> str:
    return f"{n:08x}-0000-4000-8000-{n:012x}"


def make_state(root: Path, rows: dict[str, Any], files: dict[str, int] | None = None) -> Path:
    sessions = root / "agents" / "main" / "sessions"
    sessions.mkdir(parents=True, exist_ok=True)
    (sessions / "sessions.json").write_text(json.dumps(rows, indent=2))
    for name, age_days in (files or {}).items():
        path = sessions / name
        path.write_text("x" * 100)
        stamp = (NOW - age_days * DAY) / 1000
        os.utime(path, (stamp, stamp))
    return sessions / "sessions.json"


def plan_for(store_path: Path, config: dict[str, Any], options: CleanupOptions) -> Any:
    cfg = parse_config(config, "cfg")
    where = Locations(state_dir=str(store_path.parents[3]), home="/nonexistent", cwd="/")
    target = StoreTarget("main", str(store_path))
    [planned] = plan_targets(
        [target], lambda t: read_store(t.store_path), cfg, options, OsDiskView(), NOW, where
    )
    return planned


def test_seed_scenario_from_the_spec(tmp_path: Path) -> None:
    rows = {
        "agent:main:main": {"sessionId": _uuid(1), "updatedAt": NOW - 2 * 3600_000},
        "agent:main:telegram:direct:61": {"sessionId": _uuid(5), "updatedAt": NOW - 3 * DAY},
        "agent:main:explicit:notes": {"sessionId": _uuid(6), "updatedAt": NOW - 5 * DAY},
        "agent:main:hook:gmail:1": {"sessionId": _uuid(3), "updatedAt": NOW - 31 * DAY},
        "agent:main:telegram:group:-1": {"sessionId": _uuid(4), "updatedAt": NOW - 45 * DAY},
    }
    files = {f"{_uuid(n)}.jsonl": 1 for n in (1, 5, 3, 4)}
    store = make_state(tmp_path, rows, files)
    options = CleanupOptions(fix_missing=True, fix_dm_scope=True)
    planned = plan_for(store, {}, options)
    plan = planned.plan
    assert plan.actions == {
        "agent:main:explicit:notes": Action.PRUNE_MISSING,
        "agent:main:telegram:direct:61": Action.RETIRE_DM_SCOPE,
        "agent:main:hook:gmail:1": Action.PRUNE_STALE,
    }
    result = apply_locally(planned)
    left = json.loads(store.read_text())
    assert list(left) == ["agent:main:main", "agent:main:telegram:group:-1"]
    names = sorted(os.listdir(store.parent))
    assert f"{_uuid(1)}.jsonl" in names and f"{_uuid(4)}.jsonl" in names
    assert any(n.startswith(f"{_uuid(5)}.jsonl.deleted.") for n in names)
    assert any(n.startswith(f"{_uuid(3)}.jsonl.deleted.") for n in names)
    assert result.summary.applied_count == 2
    assert result.summary.before_count == 5


def test_shared_transcript_stays_while_a_row_references_it(tmp_path: Path) -> None:
    rows = {
        "agent:main:old": {"sessionId": _uuid(7), "updatedAt": NOW - 50 * DAY},
        "agent:main:new": {"sessionId": _uuid(7), "updatedAt": NOW - 60_000},
    }
    store = make_state(tmp_path, rows, {f"{_uuid(7)}.jsonl": 0})
    apply_locally(plan_for(store, {}, CleanupOptions()))
    assert (store.parent / f"{_uuid(7)}.jsonl").exists()
    assert list(json.loads(store.read_text())) == ["agent:main:new"]


def test_warn_mode_removes_only_fix_stage_rows(tmp_path: Path) -> None:
    rows = {
        "agent:main:direct:1": {"sessionId": _uuid(1), "updatedAt": NOW - 50 * DAY},
        "agent:main:stale": {"sessionId": _uuid(2), "updatedAt": NOW - 50 * DAY},
    }
    store = make_state(tmp_path, rows)
    config = {"session": {"maintenance": {"mode": "warn"}}}
    planned = plan_for(store, config, CleanupOptions(fix_dm_scope=True))
    assert preview_summary(planned.plan).pruned == 1
    result = apply_locally(planned)
    assert list(json.loads(store.read_text())) == ["agent:main:stale"]
    assert result.summary.pruned == 0 and result.summary.mode == "warn"


def test_nothing_to_do_writes_nothing(tmp_path: Path) -> None:
    store = make_state(tmp_path, {"agent:main:main": {"sessionId": _uuid(1), "updatedAt": NOW}})
    store.write_bytes(b'{"agent:main:main":{"sessionId":"x","updatedAt":%d}}' % NOW)
    before = store.stat()
    apply_locally(plan_for(store, {}, CleanupOptions()))
    after = store.stat()
    assert (before.st_ino, before.st_mtime_ns) == (after.st_ino, after.st_mtime_ns)


def test_corrupt_store_is_refused_and_left_alone(tmp_path: Path) -> None:
    store = make_state(tmp_path, {})
    store.write_bytes(b'{"agent:main:main": {"sessionId": "x"')
    try:
        plan_for(store, {}, CleanupOptions())
    except Exception as exc:
        assert "line 1" in str(exc)
    else:
        raise AssertionError("a corrupt store must not be planned")
    assert store.read_bytes() == b'{"agent:main:main": {"sessionId": "x"'


# ------------------------------------------------------------------------------- properties

KEY_FAMILIES = [
    "agent:main:direct:{n}",
    "agent:main:telegram:direct:{n}",
    "agent:main:telegram:group:{n}",
    "agent:main:cron:job:{n}",
    "agent:main:explicit:{n}",
    "agent:main:main:thread:{n}",
    "agent:work:direct:{n}",
    "agent:main:hook:{n}",
]

rows_strategy = st.lists(
    st.tuples(
        st.sampled_from(KEY_FAMILIES),
        st.integers(0, 40),  # row number
        st.one_of(st.none(), st.integers(0, 60)),  # age in days, None: no updatedAt
        st.integers(0, 8),  # sessionId number (shared ids happen)
        st.booleans(),  # transcript present
        st.booleans(),  # carries an unknown field
    ),
    max_size=14,
)


def _build(root: Path, spec: list[tuple[str, int, int | None, int, bool, bool]]) -> Path:
    rows: dict[str, Any] = {}
    files: dict[str, int] = {}
    for family, n, age, sid, present, extra in spec:
        row: dict[str, Any] = {"sessionId": _uuid(sid + 1)}
        if age is not None:
            row["updatedAt"] = NOW - age * DAY - 600_000
        if extra:
            row["x-future-field"] = {"kept": [n, "✓"]}
        rows[family.format(n=n)] = row
        if present:
            files[f"{_uuid(sid + 1)}.jsonl"] = age or 0
    files["orphan.checkpoint.00000000-0000-4000-8000-000000000000.jsonl"] = 45
    return make_state(root, rows, files)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    spec=rows_strategy,
    max_entries=st.integers(1, 12),
    budget=st.one_of(st.none(), st.integers(200, 3000)),
    fix_missing=st.booleans(),
    fix_dm=st.booleans(),
)
def test_apply_does_what_the_dry_run_said(
    spec: list[Any], max_entries: int, budget: int | None, fix_missing: bool, fix_dm: bool
) -> None:
    root = Path(tempfile.mkdtemp())
    try:
        store = _build(root, spec)
        maintenance: dict[str, Any] = {"maxEntries": max_entries}
        if budget is not None:
            maintenance["maxDiskBytes"] = budget
        config = {"session": {"maintenance": maintenance}}
        options = CleanupOptions(fix_missing=fix_missing, fix_dm_scope=fix_dm)
        original = read_store(str(store))
        planned = plan_for(store, config, options)
        preview = preview_summary(planned.plan)
        result = apply_locally(planned)
        applied = result.summary

        assert not result.files.failed
        for name in ("after_count", "missing", "dm_scope_retired", "pruned", "capped"):
            assert getattr(applied, name) == getattr(preview, name), name
        assert applied.disk_budget == preview.disk_budget
        assert applied.unreferenced_artifacts == preview.unreferenced_artifacts
        assert applied.applied_count == preview.after_count

        left = read_store(str(store))
        expected_keys = [k for k in original if k not in planned.plan.removed_keys]
        assert left.keys() == expected_keys
        for key in left:  # untouched rows, unknown fields included, survive exactly
            assert msgspec.json.decode(left.rows[key]) == msgspec.json.decode(original.rows[key])
        for source, archive in planned.plan.file_ops.archives:
            assert os.path.exists(archive) and not os.path.exists(source)
        for removal in planned.plan.file_ops.removals:
            assert not os.path.exists(removal.path)

        second = plan_for(store, config, options).plan
        assert not second.removed_keys
        assert not second.file_ops.archives and not second.file_ops.removals
    finally:
        shutil.rmtree(root)


def test_an_archive_name_is_an_archive_and_never_swept() -> None:
    from sessiond.engine.transcripts import archive_name, is_archive, is_sweepable

    for now in (0, 1_790_000_000_123, 4_102_444_800_000):
        for name in ("a.jsonl", "x.trajectory.jsonl", "s.trajectory-path.json", "notes"):
            archived = archive_name(f"/d/{name}", "deleted", now).rsplit("/", 1)[1]
            assert is_archive(archived) and not is_sweepable(archived)


_NAME_PARTS = st.sampled_from(
    [
        "s-1", "sessions", ".json", ".jsonl", ".bak", ".deleted", ".reset", ".", "-topic-2",
        ".checkpoint.", "0d9b3c7e-1b2a-4c3d-8e4f-5a6b7c8d9e0f", ".trajectory", "-path.json",
        "2026-11-24T12-31-23.441Z", "2026-11-24T12-31-23Z", ".bak.17", "Z", "notes.txt",
    ]
)  # fmt: skip


@given(st.lists(_NAME_PARTS, min_size=1, max_size=6).map("".join))
def test_a_files_kind_is_the_two_rules_it_stands_for(name: str) -> None:
    """`file_kind` answers `.jsonl` names with one test; every name gets what the two rules
    say (the plan oracle uses `file_kind` itself, so this is what holds it)."""
    assert file_kind(name) == (is_archive(name), is_sweepable(name))
