"""The daemon's glibc malloc settings (daemon/glibc_malloc.py), each case in a fresh process:
they must be set before any thread, and an operator's own environment wins."""

from __future__ import annotations

import os
import platform
import subprocess
import sys

import pytest

glibc_only = pytest.mark.skipif(
    sys.platform != "linux" or platform.libc_ver()[0] != "glibc", reason="glibc only"
)


def _run(call: str, env: dict[str, str]) -> str:
    code = f"from sessiond.daemon.glibc_malloc import {call}; print({call}())"
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    return done.stdout.strip()


def _clean_env() -> dict[str, str]:
    own = ("MALLOC_ARENA_MAX", "MALLOC_MMAP_THRESHOLD_", "GLIBC_TUNABLES")
    return {k: v for k, v in os.environ.items() if k not in own}


@glibc_only
def test_glibc_takes_the_arena_limit_unless_the_operator_set_one() -> None:
    env = _clean_env()
    assert _run("limit_malloc_arenas", env) == "True"
    assert _run("limit_malloc_arenas", {**env, "MALLOC_ARENA_MAX": "8"}) == "False"


@glibc_only
def test_glibc_takes_the_mmap_threshold_unless_the_operator_set_one() -> None:
    env = _clean_env()
    assert _run("fix_mmap_threshold", env) == "True"
    assert _run("fix_mmap_threshold", {**env, "MALLOC_MMAP_THRESHOLD_": "65536"}) == "False"
    tunables = {**env, "GLIBC_TUNABLES": "glibc.malloc.mmap_threshold=65536"}
    assert _run("fix_mmap_threshold", tunables) == "False"
