"""A generated state dir with one large, realistic store, for benchmarks (never for tests).

Rows look like what OpenClaw writes: ~8 KB each, mostly a skills snapshot and delivery fields,
keys from every family, a quarter stale, transcripts for most rows. Run it as a script to build
one in a fresh process (whose memory is not the caller's):

    python bench/bigstore.py STATE_DIR ROWS NOW_MS [--row-bytes 2000]
"""

from __future__ import annotations

import argparse
import json
import os
import random
from pathlib import Path

DAY = 86_400_000
FAMILIES = [
    "agent:main:direct:{n}",
    "agent:main:telegram:direct:{n}",
    "agent:main:telegram:group:-100{n}",
    "agent:main:cron:job:{n}:run:{n}",
    "agent:main:explicit:{n}",
    "agent:main:slack:channel:c{n}:thread:{n}",
    "agent:main:hook:gmail:{n}",
    "agent:main:subagent:{n}",
]


def session_id(n: int) -> str:
    return f"{n:08x}-{n % 65536:04x}-4{n % 4096:03x}-8{n % 4096:03x}-{n:012x}"


def make_row(rng: random.Random, n: int, now_ms: int, row_bytes: int) -> dict[str, object]:
    age_days = rng.choice([0.01, 0.5, 2, 5, 12, 20, 45, 90])
    row: dict[str, object] = {
        "sessionId": session_id(n),
        "updatedAt": int(now_ms - age_days * DAY - rng.randint(600_000, 3_000_000)),
        "systemSent": True,
        "chatType": rng.choice(["direct", "group", "direct", "direct"]),
        "lastChannel": "telegram",
        "lastTo": f"telegram:{n}",
        "deliveryContext": {"channel": "telegram", "to": f"telegram:{n}"},
        "model": "anthropic/claude-sonnet-4-6",
        "inputTokens": rng.randint(100, 90_000),
        "outputTokens": rng.randint(100, 9_000),
    }
    skills = []
    while len(json.dumps(row)) + len(json.dumps(skills)) < row_bytes:
        skills.append({"name": f"skill-{len(skills)}", "description": "x" * 180, "enabled": True})
    row["skillsSnapshot"] = {"prompt": "p" * 200, "skills": skills}
    return row


def build(root: Path, rows: int, now_ms: int, row_bytes: int = 8000, seed: int = 7) -> Path:
    rng = random.Random(seed)
    sessions = root / "agents" / "main" / "sessions"
    sessions.mkdir(parents=True, exist_ok=True)
    store: dict[str, object] = {}
    for n in range(rows):
        key = rng.choice(FAMILIES).format(n=n)
        store[key] = make_row(rng, n, now_ms, row_bytes)
        if n % 10:
            path = sessions / f"{session_id(n)}.jsonl"
            path.write_text('{"type":"session"}\n')
            stamp = store[key]["updatedAt"] / 1000  # type: ignore[index, operator]
            os.utime(path, (stamp, stamp))
    path = sessions / "sessions.json"
    path.write_text(json.dumps(store, indent=2))
    (root / "openclaw.json").write_text("{session: {maintenance: {maxEntries: 5000}}}")
    return path


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Build a state dir with one large store.")
    parser.add_argument("root", type=Path)
    parser.add_argument("rows", type=int)
    parser.add_argument("now_ms", type=int)
    parser.add_argument("--row-bytes", type=int, default=8000)
    args = parser.parse_args(argv)
    build(args.root, args.rows, args.now_ms, row_bytes=args.row_bytes)


if __name__ == "__main__":
    main()
