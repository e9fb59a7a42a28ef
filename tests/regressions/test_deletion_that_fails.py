"""Deletion that fails (OpenClaw #133668): a transcript the disk refuses to unlink.

Guarantee: a removal that fails is not counted as removed, its bytes are not credited, and the
row the disk budget evicted for it stays in the index.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from sessiond.cli.local_cleanup import apply_locally
from sessiond.daemon.durable_file import read_store
from sessiond.daemon.os_disk_view import OsDiskView
from sessiond.engine.cleanup.plan import CleanupOptions
from sessiond.engine.cleanup.report import preview_summary
from sessiond.engine.cleanup.targets import plan_targets
from sessiond.engine.config import Locations, StoreTarget, parse_config

NOW = 1_795_000_000_000
DAY = 86_400_000


@pytest.fixture
def immutable(tmp_path: Path) -> Iterator[list[Path]]:
    """Files made immutable with chattr +i (unlink then fails even for root); undone afterwards."""
    if shutil.which("chattr") is None:
        pytest.skip("chattr is not installed")
    probe = tmp_path / "probe"
    probe.write_text("x")
    if subprocess.run(["chattr", "+i", str(probe)], capture_output=True).returncode != 0:
        pytest.skip("this file system does not support immutable files")
    subprocess.run(["chattr", "-i", str(probe)], check=True)
    marked: list[Path] = []
    yield marked
    for path in marked:
        subprocess.run(["chattr", "-i", str(path)], check=False)


def test_refused_unlink_is_not_counted_and_the_row_stays(
    tmp_path: Path, immutable: list[Path]
) -> None:
    sessions = tmp_path / "agents" / "main" / "sessions"
    sessions.mkdir(parents=True)
    rows = {}
    for n in range(4):
        sid = f"0000000{n}-0000-4000-8000-00000000000{n}"
        rows[f"agent:main:explicit:{n}"] = {"sessionId": sid, "updatedAt": NOW - (n + 1) * 3600_000}
        (sessions / f"{sid}.jsonl").write_text("y" * 2000)
    store_path = sessions / "sessions.json"
    store_path.write_text(json.dumps(rows, indent=2))
    oldest = sessions / "00000003-0000-4000-8000-000000000003.jsonl"
    subprocess.run(["chattr", "+i", str(oldest)], check=True)
    immutable.append(oldest)

    config = parse_config({"session": {"maintenance": {"maxDiskBytes": 5000}}}, "cfg")
    where = Locations(str(tmp_path), "/nonexistent", "/")
    [planned] = plan_targets(
        [StoreTarget("main", str(store_path))],
        lambda t: read_store(t.store_path),
        config,
        CleanupOptions(),
        OsDiskView(),
        NOW,
        where,
    )
    promised = preview_summary(planned.plan)
    assert promised.disk_budget is not None and promised.disk_budget.removed_entries >= 2

    result = apply_locally(planned)

    assert [path for path, _ in result.files.failed] == [str(oldest)]
    assert oldest.exists()
    left = json.loads(store_path.read_text())
    assert "agent:main:explicit:3" in left, "the row whose transcript could not go must stay"
    budget = result.summary.disk_budget
    assert budget is not None
    assert budget.removed_entries == promised.disk_budget.removed_entries - 1
    assert budget.removed_files == promised.disk_budget.removed_files - 1
    assert budget.freed_bytes == promised.disk_budget.freed_bytes - 2000
    for key in left:  # every row left points at a transcript that exists
        assert (sessions / f"{left[key]['sessionId']}.jsonl").exists()
    assert os.stat(store_path).st_mode & 0o777 == 0o600
