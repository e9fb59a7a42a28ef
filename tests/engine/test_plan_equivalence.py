"""The planner on kept inputs decides what the planner without them decided.

tests/engine/plan_oracle.py is the planner as it stood before issue 17: every row and every
file asked anew on every plan. On random stores and sessions dirs (real files in tmp dirs:
shared and invalid session ids, every sessionFile shape, ties and non-numbers in updatedAt,
protected keys, checkpoints, trajectory sidecars, archives old and new, symlinks, a dir named
like a transcript) and random settings and options, today's planner must return the same
decisions and figures, whether its `PlanIndex` is built for the plan or was kept from an
earlier version of the store and brought up to date.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

import msgspec
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sessiond.daemon.os_disk_view import ListingCache, OsDiskView
from sessiond.engine.cleanup.plan import CleanupOptions, plan_cleanup
from sessiond.engine.cleanup.plan_id import plan_id
from sessiond.engine.cleanup.row_index import PlanIndex
from sessiond.engine.config import StoreTarget, parse_config
from sessiond.engine.store import Store, encode_row, load_store_bytes, serialize_store
from sessiond.engine.transcripts import iso_stamp

# The oracle sits beside this file (tests/engine is no package; `engine` is sessiond's).
_SPEC = importlib.util.spec_from_file_location(
    "plan_oracle", Path(__file__).with_name("plan_oracle.py")
)
assert _SPEC is not None and _SPEC.loader is not None
plan_oracle = importlib.util.module_from_spec(_SPEC)
sys.modules["plan_oracle"] = plan_oracle  # its dataclasses look their module up
_SPEC.loader.exec_module(plan_oracle)

NOW = 1_795_000_000_000
DAY = 86_400_000

FAMILIES = [
    "agent:main:direct:{n}",
    "agent:main:telegram:direct:{n}",
    "agent:main:telegram:group:-100{n}",
    "agent:main:slack:channel:c{n}:thread:{n}",
    "agent:main:cron:job:{n}:run:{n}",
    "agent:main:explicit:{n}",
    "agent:main:hook:gmail:{n}",
    "agent:main:subagent:{n}",
    "agent:main:main",
    "agent:work:direct:{n}",
    "{n}",  # an array-index key: JS puts these first
]


def _sid(n: int) -> str:
    return f"{n:08x}-0000-4000-8000-{n:012x}"


SIDS = st.one_of(
    st.integers(0, 9).map(_sid),
    st.sampled_from(["bad id", "../up", "", " padded ", "plain-name", 5]),
)
UPDATED = st.one_of(
    st.none(),
    st.sampled_from([0, 1, 2, 5, 20, 31, 45, 90]).map(lambda d: NOW - d * DAY - 600_000),
    st.sampled_from(["abc", "-Infinity", "123", True, 1.5e300, [], {"n": 1}]),
)


@st.composite
def rows_and_files(draw: st.DrawFn) -> tuple[dict[str, Any], dict[str, Any]]:
    rows: dict[str, Any] = {}
    for _ in range(draw(st.integers(0, 16))):
        key = draw(st.sampled_from(FAMILIES)).format(n=draw(st.integers(0, 30)))
        row: dict[str, Any] = {}
        sid = draw(st.one_of(st.none(), SIDS))
        if sid is not None:
            row["sessionId"] = sid
        updated = draw(UPDATED)
        if updated is not None or draw(st.booleans()):
            row["updatedAt"] = updated
        shape = draw(st.integers(0, 9))
        name = f"{sid}.jsonl" if isinstance(sid, str) else "x.jsonl"
        if shape == 1:
            row["sessionFile"] = name
        elif shape == 2:
            row["sessionFile"] = "{dir}/" + name
        elif shape == 3:
            row["sessionFile"] = f"{_sid(draw(st.integers(0, 9)))}.jsonl"
        elif shape == 4:
            row["sessionFile"] = "/elsewhere/" + name
        elif shape == 5:
            row["sessionFile"] = draw(st.sampled_from(["", "   ", 5, None]))
        elif shape == 6:
            row["sessionFile"] = "sub/" + name
        if draw(st.integers(0, 5)) == 0:
            row["chatType"] = draw(st.sampled_from(["group", "direct", "channel"]))
        if draw(st.integers(0, 7)) == 0:
            pre = {"sessionFile": "{dir}/" + f"{_sid(draw(st.integers(0, 9)))}.jsonl"}
            row["compactionCheckpoints"] = [{"preCompaction": pre}]
        rows[key] = row if draw(st.integers(0, 20)) else draw(st.sampled_from([1, "s", None]))
    files: dict[str, Any] = {}
    for n in draw(st.lists(st.integers(0, 9), max_size=10, unique=True)):
        files[f"{_sid(n)}.jsonl"] = draw(st.integers(0, 60))  # age in days
    for n in draw(st.lists(st.integers(0, 9), max_size=3, unique=True)):
        suffix = draw(st.sampled_from([".trajectory.jsonl", ".trajectory-path.json"]))
        files[f"{_sid(n)}{suffix}"] = draw(st.integers(0, 60))
    for age in draw(st.lists(st.integers(0, 60), max_size=3)):
        reason = draw(st.sampled_from(["deleted", "reset"]))
        stamp = iso_stamp(NOW - age * DAY)
        files[f"{_sid(draw(st.integers(0, 9)))}.jsonl.{reason}.{stamp}"] = age
    extras = [
        "orphan.checkpoint.00000000-0000-4000-8000-000000000000.jsonl",
        "notes.txt",
        "sessions.json.bak.1700000000000",
        "plain-name.jsonl",
        "padded.jsonl",
    ]
    for name in draw(st.lists(st.sampled_from(extras), max_size=3, unique=True)):
        files[name] = draw(st.integers(0, 60))
    special = draw(st.sampled_from(["none", "none", "none", "symlink", "dir"]))
    if special == "symlink":
        files[f"{_sid(draw(st.integers(0, 9)))}.jsonl"] = ("link", "notes-target.txt")
    elif special == "dir":
        files[f"{_sid(draw(st.integers(0, 9)))}.jsonl"] = ("dir", None)
    return rows, files


def _lay_out(sessions: Path, rows: dict[str, Any], files: dict[str, Any]) -> Path:
    sessions.mkdir(parents=True, exist_ok=True)
    text = msgspec.json.encode(rows).decode().replace("{dir}", str(sessions))
    store = sessions / "sessions.json"
    store.write_bytes(serialize_store(load_store_bytes(text.encode(), str(store))))
    for name, spec in files.items():
        path = sessions / name
        if isinstance(spec, tuple) and spec[0] == "link":
            (sessions / spec[1]).write_text("target")
            os.symlink(spec[1], path)
            continue
        if isinstance(spec, tuple):
            path.mkdir()
            continue
        path.write_text("x" * (10 + spec))
        stamp = (NOW - spec * DAY) / 1000
        os.utime(path, (stamp, stamp))
    return store


SETTINGS = st.fixed_dictionaries(
    {
        "maxEntries": st.integers(1, 12),
        "pruneAfter": st.sampled_from(["30d", "10d", "1d", "0"]),
    },
    optional={
        "mode": st.sampled_from(["warn", "enforce"]),
        "maxDiskBytes": st.integers(50, 600),
        "resetArchiveRetention": st.sampled_from(["5d", "60d", False]),
    },
)
OPTIONS = st.builds(
    CleanupOptions,
    fix_missing=st.booleans(),
    fix_dm_scope=st.booleans(),
    active_key=st.one_of(st.none(), st.sampled_from(["agent:main:main", "agent:main:direct:3"])),
    enforce=st.booleans(),
)


def _decisions(plan: Any) -> dict[str, Any]:
    """Everything a plan decides, in plain values (the oracle has its own classes)."""
    return {
        "mode": plan.mode,
        "before": plan.before_keys,
        "actions": {k: str(v.value) for k, v in plan.actions.items()},
        "removed": sorted(plan.removed_keys),
        "counts": (plan.missing, plan.dm_scope_retired, plan.pruned, plan.capped),
        "after": plan.after_count,
        "sweep": plan.unreferenced,
        "budget": plan.disk_budget,
        "applied": (
            plan.applied.after_count,
            plan.applied.pruned,
            plan.applied.capped,
            plan.applied.disk_budget,
            plan.applied.unreferenced,
            plan.applied.log,
        ),
        "archives": plan.file_ops.archives,
        "removals": [
            (r.path, r.size, r.stage, r.owner_key, r.owner_chunk_bytes)
            for r in plan.file_ops.removals
        ],
        "repairs": plan.repairs,
        "views": {k: plan.views[k] for k in plan.before_keys},
    }


def _earlier(store: Store, drop: int, touch: int) -> Store:
    """Another version of the store: some rows gone, some with other bytes, order kept."""
    rows = dict(store.rows)
    for key in list(rows)[:drop]:
        del rows[key]
    for key in list(rows)[: max(0, touch)]:
        rows[key] = encode_row({"sessionId": "earlier", "updatedAt": 1})
    rows["agent:main:explicit:earlier-only"] = encode_row({"updatedAt": 2})
    return Store(rows)


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    layout=rows_and_files(),
    config=SETTINGS,
    options=OPTIONS,
    kept=st.one_of(st.none(), st.tuples(st.integers(0, 5), st.integers(0, 5))),
)
def test_kept_inputs_decide_what_the_planner_without_them_decided(
    layout: tuple[dict[str, Any], dict[str, Any]],
    config: dict[str, Any],
    options: CleanupOptions,
    kept: tuple[int, int] | None,
) -> None:
    root = Path(tempfile.mkdtemp())
    try:
        sessions = root / "agents" / "main" / "sessions"
        path = _lay_out(sessions, *layout)
        store = load_store_bytes(path.read_bytes(), str(path))
        cfg = parse_config({"session": {"maintenance": config}}, "cfg")
        target = StoreTarget("main", str(path))
        home = str(root / "home")
        expected = plan_oracle.plan_cleanup(
            store, target, cfg, options, OsDiskView(), NOW, home, str(root)
        )
        index = None
        if kept is not None:
            index = PlanIndex(str(sessions) + "/", "main")
            earlier = _earlier(store, *kept)
            # A plan of the earlier version first: what it keeps must not answer for this one.
            plan_cleanup(
                earlier, target, cfg, options, OsDiskView(), NOW, home, str(root), None, index
            )
        cache = ListingCache()
        fresh = plan_cleanup(store, target, cfg, options, OsDiskView(), NOW, home, str(root))
        for view in (OsDiskView(), OsDiskView(cache), OsDiskView(cache)):
            got = plan_cleanup(store, target, cfg, options, view, NOW, home, str(root), None, index)
            assert _decisions(got) == _decisions(expected)
            # Named the same whether its parts were kept from the plan before or made anew.
            assert plan_id([got], 0) == plan_id([fresh], 0)
        # The same rows in another order (nothing the index counts as a change): what the
        # planner kept from the plans above must not answer for this one.
        turned = Store(dict(reversed(list(store.rows.items()))))
        expected = plan_oracle.plan_cleanup(
            turned, target, cfg, options, OsDiskView(), NOW, home, str(root)
        )
        got = plan_cleanup(
            turned, target, cfg, options, OsDiskView(cache), NOW, home, str(root), None, index
        )
        assert _decisions(got) == _decisions(expected)
    finally:
        shutil.rmtree(root)
