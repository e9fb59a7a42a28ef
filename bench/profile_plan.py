"""Profile the daemon's warm `sessions.cleanup` dry run in one process, on a state dir made by
bench/bigstore.py: the store is loaded as the daemon loads it (`LiveStore.load_initial`), and
the plan keeps its index and dir listing across runs as the daemon does; then the dry run's
work (plan, summary, JSON) is timed, and with --profile profiled (cProfile, top entries by
cumulative and by own time).

    .venv/bin/python bench/profile_plan.py STATE_DIR [--runs 3] [--profile] [--first] [--top 25]
        [--churn ROWS]

--churn: before each timed run, patch that many random rows (a new `updatedAt`) and add and
remove a file in each sessions dir, as a daemon under stress/load.py sees between two dry runs.
"""

from __future__ import annotations

import argparse
import cProfile
import itertools
import os
import pstats
import random
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import msgspec
from sessiond.daemon.config_file import load_config_file
from sessiond.daemon.live_store import LiveStore
from sessiond.daemon.os_disk_view import ListingCache, OsDiskView
from sessiond.engine.cleanup.plan import CleanupOptions
from sessiond.engine.cleanup.plan_id import plan_id
from sessiond.engine.cleanup.report import combine, preview_summary
from sessiond.engine.cleanup.row_index import PlanIndex
from sessiond.engine.cleanup.targets import plan_targets
from sessiond.engine.config import Locations, StoreTarget, resolve_config_path, resolve_targets


def dry_run_of(
    root: Path, options: CleanupOptions | None = None, churn: int = 0
) -> tuple[Callable[[], bytes], Callable[[], None]]:
    """Load every store of `root` as the daemon does; return one warm dry run, and what comes
    between two of them (`churn` rows patched and each sessions dir touched: see --churn)."""
    env = dict(os.environ, OPENCLAW_STATE_DIR=str(root), HOME=str(root))
    where = Locations.from_env(env, os.getcwd())
    config = load_config_file(resolve_config_path(env, where.state_dir, os.getcwd()))
    targets = resolve_targets(config, where, all_agents=True)
    started = time.perf_counter()
    lives = {t.store_path: LiveStore(t) for t in targets}
    for live in lives.values():
        live.load_initial()
    rows = sum(len(v.store) for v in lives.values())
    print(f"load {time.perf_counter() - started:.2f} s, rows {rows}")
    listings = ListingCache(exact_changes=True)  # as the daemon's

    def index_for(target: StoreTarget) -> PlanIndex:
        return lives[target.store_path].plan_index  # as the daemon's: warmed by the load

    rng = random.Random(17)
    bump = itertools.count(1)

    def changes() -> None:
        for live in lives.values():
            keys = list(live.store.rows)
            for key in rng.sample(keys, min(churn, len(keys))):
                row = msgspec.json.decode(live.store.rows[key])
                row["updatedAt"] = row.get("updatedAt", 0) + next(bump)
                live.apply({key: msgspec.Raw(msgspec.json.encode(row))}, "patch")
            touched = Path(live.path).parent / ".profile-plan-touch"
            touched.write_bytes(b"")
            touched.unlink()

    def dry_run() -> bytes:
        snapshots = {p: live.store.copy() for p, live in lives.items()}
        planned = plan_targets(
            targets,
            lambda t: snapshots[t.store_path],
            config,
            options or CleanupOptions(),
            OsDiskView(listings),
            int(time.time() * 1000),
            where,
            index_for,
        )
        result = combine(
            [preview_summary(p.plan, config, False) for p in planned],
            planned[0].plan.mode,
            dry_run=True,
            plan_id=str(plan_id([p.plan for p in planned], 0)),
        )
        return msgspec.json.encode(result)

    return dry_run, changes


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("root", type=Path)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--first", action="store_true", help="profile the first dry run too")
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--churn", type=int, default=0, help="rows patched before each run")
    args = parser.parse_args()
    dry_run, changes = dry_run_of(args.root, churn=args.churn)
    if args.first:  # the first plan of a freshly started daemon, not a warm one
        prof = cProfile.Profile()
        t = time.perf_counter()
        prof.enable()
        dry_run()
        prof.disable()
        print(f"first dry run {(time.perf_counter() - t) * 1000:.0f} ms (profiled)")
        pstats.Stats(prof).sort_stats("tottime").print_stats(args.top)
    times = []
    for _ in range(args.runs):
        changes()
        t = time.perf_counter()
        out = dry_run()
        times.append(time.perf_counter() - t)
    print(
        f"dry run median {statistics.median(times) * 1000:.1f} ms of "
        f"{[round(x * 1000) for x in times]} ms, {len(out)} B, load {os.getloadavg()[0]:.1f}"
    )
    if args.profile:
        changes()
        prof = cProfile.Profile()
        prof.enable()
        dry_run()
        prof.disable()
        pstats.Stats(prof).sort_stats("cumulative").print_stats(args.top)
        pstats.Stats(prof).sort_stats("tottime").print_stats(args.top)


if __name__ == "__main__":
    main()
