"""The report every stress script returns (stress/, and its fast variants in the test suite):
figures to print, and violations that fail the run."""

from __future__ import annotations

import os
import platform
import time
from dataclasses import dataclass, field
from typing import Any


def machine() -> str:
    model = ""
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as handle:
            for line in handle:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    load = os.getloadavg()[0]
    return (
        f"{platform.machine()} {os.cpu_count()} cores {model}, Linux {platform.release()}, "
        f"Python {platform.python_version()}, load avg {load:.1f} at start"
    )


@dataclass
class Report:
    """Figures and violations of one script; `finish` prints them and gives the exit code."""

    name: str
    figures: dict[str, Any] = field(default_factory=dict)
    violations: list[str] = field(default_factory=list)
    started: float = field(default_factory=time.monotonic)

    def fail(self, message: str) -> None:
        if len(self.violations) < 200:
            self.violations.append(message)
        elif len(self.violations) == 200:
            self.violations.append("... (more violations not listed)")

    def check(self, ok: bool, message: str) -> None:
        if not ok:
            self.fail(message)

    @property
    def ok(self) -> bool:
        return not self.violations

    def finish(self) -> int:
        self.figures["duration_s"] = round(time.monotonic() - self.started, 1)
        print(f"== {self.name}: {'OK' if self.ok else 'FAILED'}")
        for key, value in self.figures.items():
            print(f"   {key}: {value}")
        for violation in self.violations:
            print(f"   VIOLATION: {violation}")
        return 0 if self.ok else 1


def percentile(values: list[float], pct: float) -> float:
    """Nearest-rank percentile; NaN for no values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(pct / 100 * (len(ordered) - 1))))
    return ordered[index]
