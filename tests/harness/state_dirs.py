"""Throwaway OpenClaw state dirs: an `openclaw.json` listing agents, and each agent's store."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

STORE = "sessions.json"


def write_state_dir(
    root: Path,
    stores: dict[str, dict[str, Any] | None],
    config: dict[str, Any] | None = None,
) -> Path:
    """openclaw.json listing `stores`' agents (the first is the default) and each agent's store;
    an agent mapped to None gets its sessions folder but no store file."""
    agents = [{"id": a, "default": i == 0} for i, a in enumerate(stores)]
    cfg: dict[str, Any] = {"agents": {"list": agents}}
    cfg.update(config or {})
    root.mkdir(parents=True, exist_ok=True)
    (root / "openclaw.json").write_text(json.dumps(cfg, indent=2))
    for agent, rows in stores.items():
        path = store_path(root, agent)
        path.parent.mkdir(parents=True, exist_ok=True)
        if rows is not None:
            path.write_text(json.dumps(rows, indent=2))
    return root


def store_path(root: Path, agent: str = "main") -> Path:
    return root / "agents" / agent / "sessions" / STORE


def read_rows(root: Path, agent: str = "main") -> dict[str, Any]:
    data: dict[str, Any] = json.loads(store_path(root, agent).read_text())
    return data
