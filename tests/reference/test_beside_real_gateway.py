"""Issue 18, with the real gateway: OpenClaw 2026.5.12's `openclaw gateway run` and `sessiond
serve` on one state dir, one client writing through each at once, 200 rounds on an 8 MB store;
no write either side acknowledged may be missing from the file at the end unless a write to the
same key that may have come after it explains it (`harness.beside_gateway` runs it; the script
`stress/beside_gateway.py` prints the figures; docs/reliability.md has them). The check itself
is tested first, without a gateway, on writes whose outcome is known.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from harness.beside_gateway import Write, judge, run

ROUNDS = 200
STORE_MB = 8.0


@pytest.mark.reference
def test_no_acknowledged_write_is_lost_beside_the_real_gateway(tmp_path: Path) -> None:
    ref_dir = os.environ.get("OPENCLAW_REF_DIR")
    if not ref_dir or not (Path(ref_dir) / "bin" / "openclaw").exists():
        pytest.skip("set OPENCLAW_REF_DIR to an installed OpenClaw 2026.5.12 to run live")
    figures = run(Path(ref_dir), rounds=ROUNDS, store_mb=STORE_MB, work_dir=tmp_path)
    report = "\n".join(figures.lines())
    print(report)
    assert figures.store_bytes_start > 5_000_000, report
    assert set(figures.sides) == {"gateway", "sessiond"}, report
    for side in figures.sides.values():
        assert side.sent == ROUNDS and side.acked == ROUNDS, report
    assert figures.lost == {"gateway": 0, "sessiond": 0}, report
    assert figures.memory_differs == 0, report


# ------------------------------------------------------------------------- the oracle itself


def w(side: str, key: str, value: str, sent: float, acked: float | None) -> Write:
    status = "acked" if acked is not None else "unknown"
    return Write(side, "own", key, value, sent, acked, status)


def test_a_write_on_disk_or_replaced_by_a_later_one_is_not_lost() -> None:
    writes = [
        w("a", "k1", "a1", 0.0, 1.0),
        w("a", "k1", "a2", 1.5, 2.0),  # replaces a1: a1 is not lost
        w("b", "k2", "b1", 0.0, 1.0),
    ]
    figures = judge(writes, {"k1": {"label": "a2"}, "k2": {"label": "b1"}})
    assert figures["a"].lost == 0 and figures["b"].lost == 0
    assert figures["a"].acked == 2 and figures["b"].sent == 1


def test_a_missing_row_and_a_reverted_value_are_lost_writes() -> None:
    writes = [
        w("a", "new", "a1", 0.0, 1.0),
        w("b", "own", "b1", 0.0, 1.0),
        w("b", "own", "b2", 2.0, 3.0),
        w("b", "own", "b3", 4.0, 5.0),
    ]
    figures = judge(writes, {"own": {"label": "b1"}})
    assert (figures["a"].lost_missing, figures["a"].lost_reverted) == (1, 0)
    # b1 is on disk; b2 and b3 were taken back by a writer that had not seen them.
    assert (figures["b"].lost_missing, figures["b"].lost_reverted) == (0, 2)
    assert figures["b"].lost_by_kind["own"] == 2


def test_concurrent_and_unanswered_writes_may_explain_a_value() -> None:
    writes = [
        w("a", "k", "a1", 0.0, 2.0),
        w("b", "k", "b1", 1.0, 1.5),  # overlaps a1: either may have been last
        w("a", "j", "a2", 0.0, 1.0),
        w("b", "j", "b2", 3.0, None),  # never answered: may have landed after a2
    ]
    figures = judge(writes, {"k": {"label": "b1"}, "j": {"label": "b2"}})
    assert figures["a"].lost == 0 and figures["b"].lost == 0
    assert figures["b"].unknown == 1


def test_a_refused_write_explains_nothing() -> None:
    refused = Write("b", "own", "k", "b1", 3.0, None, "refused")
    figures = judge([w("a", "k", "a1", 0.0, 1.0), refused], {"k": {"label": "b1"}})
    assert figures["a"].lost_reverted == 1 and figures["b"].refused == 1
