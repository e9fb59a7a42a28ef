"""Differential tests: `sessiond sessions cleanup` against OpenClaw 2026.5.12, field for field.

The golden files in tests/differential/golden/ hold what the reference did on each fixture
(see tests/differential/record_golden.py). Each test rebuilds the fixture with the recorded
clock, runs our CLI with `SESSIOND_NOW_MS` pinned to that clock, and compares exit status,
stdout (JSON or lines), the first stderr line of a failure, and for applies every directory
listing and store file left behind. Differences listed in `harness.KNOWN_DIFFERENCES` are
reported, not failed.
"""

from __future__ import annotations

import fnmatch
import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from differential import harness
from differential.fixtures import CASES, check_margins, make_builder

Json = Any


def _golden_params() -> list[Any]:
    params: list[Any] = []
    for case in harness.golden_cases():
        for run in harness.load_golden(case)["runs"]:
            params.append(pytest.param(case, run, id=f"{case}-{run['index']}"))
    return params


def _assert_same(case: str, index: int, expected: dict[str, Json], actual: dict[str, Json]) -> None:
    diffs = harness.compare_observations(case, index, expected, actual)
    for diff in diffs:
        if diff.known_reason is not None:
            print(f"known difference in {case}-{index}: {diff.render()}")
    unexpected = [d for d in diffs if d.known_reason is None]
    assert not unexpected, harness.render_report(case, index, expected, actual, diffs)


@pytest.mark.parametrize(("case", "golden_run"), _golden_params())
def test_matches_reference(case: str, golden_run: dict[str, Json]) -> None:
    if not harness.sessiond_bin().exists():
        pytest.skip(f"no sessiond executable at {harness.sessiond_bin()}")
    actual = harness.run_sessiond_case(case, golden_run["flags"], golden_run["nowMs"])
    _assert_same(case, golden_run["index"], golden_run, actual)


def test_goldens_match_case_table() -> None:
    """Every case has a golden file recorded with exactly its current flag combinations."""
    stale = []
    for case, spec in CASES.items():
        if not harness.golden_path(case).exists():
            stale.append(f"{case}: no golden file")
            continue
        recorded = [tuple(run["flags"]) for run in harness.load_golden(case)["runs"]]
        if recorded != list(spec.combos):
            stale.append(f"{case}: golden combos {recorded} != case combos {list(spec.combos)}")
    assert not stale, "re-record with tests/differential/record_golden.py:\n" + "\n".join(stale)


@pytest.mark.parametrize("case", sorted(CASES))
def test_fixture_keeps_clear_of_cutoffs(case: str, tmp_path: Path) -> None:
    builder = make_builder(case, tmp_path / "state", 1_795_000_000_000)
    assert check_margins(case, builder) == []


@pytest.mark.parametrize("case", sorted(CASES))
def test_fixture_is_deterministic(case: str, tmp_path: Path) -> None:
    now = 1_795_000_000_123

    def tree(root: Path) -> list[tuple[str, bytes, int]]:
        make_builder(case, root, now)
        spellings = harness.state_spellings(root)
        out = []
        for path in sorted(root.rglob("*")):
            data, mtime = b"", 0
            if path.is_file():
                mtime = path.stat().st_mtime_ns
                text = path.read_bytes().decode("utf-8", errors="surrogateescape")
                data = harness.normalise_text(text, spellings).encode(
                    "utf-8", errors="surrogateescape"
                )
            out.append((path.relative_to(root).as_posix(), data, mtime))
        return out

    assert tree(tmp_path / "a") == tree(tmp_path / "bb")


def _live_cases() -> list[str]:
    chosen = os.environ.get("OPENCLAW_LIVE_CASES")
    if chosen:
        return [c for c in chosen.split(",") if c in CASES]
    return [name for name, spec in CASES.items() if spec.live]


@pytest.mark.reference
@pytest.mark.parametrize("case", _live_cases())
def test_live_reference(case: str) -> None:
    """Run reference and sessiond side by side now (needs OPENCLAW_REF_DIR)."""
    ref_dir = os.environ.get("OPENCLAW_REF_DIR")
    if not ref_dir:
        pytest.skip("set OPENCLAW_REF_DIR to an installed OpenClaw 2026.5.12 to run live")
    try:
        ref = harness.reference_bin(Path(ref_dir))
    except FileNotFoundError as exc:
        pytest.skip(str(exc))
    if not harness.sessiond_bin().exists():
        pytest.skip(f"no sessiond executable at {harness.sessiond_bin()}")

    def compare(index: int, flags: Sequence[str]) -> str | None:
        reference = harness.run_reference_case(ref, case, flags)
        ours = harness.run_sessiond_case(
            case, flags, reference.now_ms, clock_ms=reference.started_ms
        )
        diffs = harness.compare_observations(case, index, reference.observation, ours)
        if any(d.known_reason is None for d in diffs):
            return harness.render_report(case, index, reference.observation, ours, diffs)
        return None

    # Each combination runs on its own state dir; two at a time keep both cores busy with the
    # reference's Node start-up, which is most of this test's time.
    with ThreadPoolExecutor(max_workers=2) as pool:
        found = pool.map(lambda pair: compare(*pair), enumerate(CASES[case].combos))
        reports = [report for report in found if report is not None]
    assert not reports, "\n\n".join(reports)


def test_known_differences_are_well_formed() -> None:
    selectors = {"*", "applied", "dry-run", "applied-json", "dry-run-json"}
    for key, reason in harness.KNOWN_DIFFERENCES.items():
        parts = key.split("|", 2)
        assert len(parts) == 3, key
        cases, combos, path = parts
        for glob in cases.split(","):
            assert glob == "*" or any(fnmatch.fnmatchcase(c, glob) for c in CASES), key
        for combo in combos.split(","):
            assert combo in selectors or combo.isdigit(), key
        assert path and reason.startswith("compat #"), key


def test_comparison_is_strict() -> None:
    """The comparison sees key order, JSON types, archive stamps and per-number line diffs."""
    paths = [d.path for d in harness.diff_values({"a": 1, "b": 2}, {"b": 2, "a": 1}, "x")]
    assert paths == ["x.<key order>"]
    assert harness.diff_values({"n": 1}, {"n": 1.0}, "x") != []
    assert harness.diff_values({"n": 1}, {"n": True}, "x") != []
    lines = harness.diff_values(
        ["Entries: 8 -> 6 (remove 2)"], ["Entries: 8 -> 5 (remove 3)"], "stdout"
    )
    assert [d.path for d in lines] == ["stdout.0(Entries).n1", "stdout.0(Entries).n2"]
    now = 1_795_000_000_000
    fresh = "x.jsonl.deleted.2026-11-18T11-06-41.250Z"
    assert harness.normalise_file_name(fresh, now) == "x.jsonl.deleted.<TS>"
    old = "x.jsonl.deleted.2020-01-01T00-00-00.000Z"
    assert harness.normalise_file_name(old, now) == old
