"""The planner's window on the disk: one scan per plan, stats only when a rule needs them."""

from __future__ import annotations

import math
import os
from pathlib import Path

from sessiond.daemon.os_disk_view import OsDiskView
from sessiond.engine.disk_view import canonical


def test_listing_sizes_and_times_are_read_lazily(tmp_path: Path) -> None:
    (tmp_path / "a.jsonl").write_text("12345")
    os.utime(tmp_path / "a.jsonl", (1_000, 1_000))
    (tmp_path / "gone.jsonl").write_text("x")
    (tmp_path / "sub").mkdir()
    os.symlink(tmp_path / "a.jsonl", tmp_path / "link.jsonl")
    files = {f.name: f for f in OsDiskView().list_files(str(tmp_path))}
    assert sorted(files) == ["a.jsonl", "gone.jsonl"]  # no dirs, no symlinks
    assert (files["a.jsonl"].size, files["a.jsonl"].mtime_ms) == (5, 1_000_000.0)
    (tmp_path / "gone.jsonl").unlink()
    # Vanished between the scan and the first question: empty and new, never "old enough".
    assert (files["gone.jsonl"].size, files["gone.jsonl"].mtime_ms) == (0, math.inf)


def test_canonical_resolves_links_and_keeps_missing_paths(tmp_path: Path) -> None:
    real = tmp_path / "real"
    real.mkdir()
    (real / "t.jsonl").write_text("")
    os.symlink(real / "t.jsonl", real / "alias.jsonl")
    os.symlink(real, tmp_path / "dirlink")
    view = OsDiskView()
    assert canonical(view, str(real / "t.jsonl")) == str(real / "t.jsonl")
    assert canonical(view, str(real / "alias.jsonl")) == str(real / "t.jsonl")
    assert canonical(view, str(real / "missing.jsonl")) == str(real / "missing.jsonl")
    assert canonical(view, str(tmp_path / "dirlink" / "t.jsonl")) == str(real / "t.jsonl")
    assert canonical(view, str(real / ".." / "real" / "t.jsonl")) == str(real / "t.jsonl")
    assert view.exists(str(real / "t.jsonl")) and not view.exists(str(real / "missing.jsonl"))
