"""Cleanup: the plan, its targets, its report, and the one apply flow both drivers run."""
