"""What OpenClaw's clients call, sessiond vs the real 2026.5.12 gateway (live; `reference`).

Each fixture state dir (`client_fixtures.CASES`) is built once and copied with `cp -a`; the
reference gateway serves one copy, `sessiond serve` the other, both with HOME at the copy. The
same gateway-protocol client (device-signed connect, `tests/harness/gateway_client.py`) sends
the same calls in the same order to each: reads first, then writes, then reads again, with a
`sessions.subscribe` before the writes so the `sessions.changed` events are compared too. One
test per served method compares that method's answers; the stores and sessions dirs left
behind are compared after the writes.

What may differ is normalised away, and only that (docs/compat.md, "OpenClaw's clients"):
`ts`; the fields the reference computes from its model catalog and plugins (`thinkingLevels`,
`thinkingOptions`, `thinkingDefault`, `agentRuntime`); the values a write makes up (new session
ids, `updatedAt` stamps, archive time stamps); the state dir's path; the runtime parts of
`health` and `status` (event loop, heartbeats, channels, tasks, plugins, runtime labels, ages);
the wording of params-validation errors (ajv vs msgspec, G6: the code is compared).
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from harness.daemon_process import DaemonProcess
from harness.gateway_client import GatewayClient
from harness.reference_gateway import ReferenceGateway

from differential import client_fixtures, harness

pytestmark = pytest.mark.reference

TOKEN = "clients-token-7"
Json = Any
Call = tuple[str, Json]

_LIST_ALL = {"includeGlobal": True, "includeUnknown": True, "limit": 1000}
_TUI_PICKER = {
    "limit": 50,
    "activeMinutes": 10080,
    "includeGlobal": False,
    "includeUnknown": False,
    "includeDerivedTitles": True,
    "includeLastMessage": True,
    "agentId": "main",
}

READS: dict[str, list[Call]] = {
    "agents": [
        ("sessions.list", {}),
        ("sessions.list", {"limit": 5}),
        ("sessions.list", _LIST_ALL),
        ("sessions.list", {"agentId": "work"}),
        ("sessions.list", {"agentId": "WORK", "includeGlobal": True}),
        ("sessions.list", {"agentId": "nobody"}),
        ("sessions.list", {"search": "family"}),
        ("sessions.list", {"search": "  ALICE "}),
        ("sessions.list", {"search": "ops home"}),
        ("sessions.list", {"search": "g-family-chat"}),
        ("sessions.list", {"label": "main home"}),
        ("sessions.list", {"label": " work home "}),
        ("sessions.list", {"spawnedBy": "agent:main:main"}),
        ("sessions.list", {"spawnedBy": "agent:work:main", "includeGlobal": True}),
        ("sessions.list", {"activeMinutes": 150}),
        ("sessions.list", {"configuredAgentsOnly": True, "includeGlobal": True}),
        ("sessions.list", {"includeDerivedTitles": True, "includeLastMessage": True, "limit": 25}),
        ("sessions.list", _TUI_PICKER),
        (
            "sessions.list",
            {
                "limit": 5,
                "search": "agent:main:main",
                "includeGlobal": False,
                "includeUnknown": False,
                "agentId": "main",
            },
        ),
        ("sessions.list", {"includeGlobal": True, "includeUnknown": True, "limit": 32}),
        (
            "sessions.list",
            {"includeGlobal": True, "includeUnknown": True, "configuredAgentsOnly": True},
        ),
        ("sessions.list", {"limit": 0}),
        ("sessions.list", {"bogus": True}),
        ("sessions.list", {"limit": "ten"}),
        (
            "sessions.preview",
            {
                "keys": [
                    "agent:main:main",
                    "agent:work:main",
                    "nope",
                    "global",
                    "agent:ops:slack:channel:c0ffee",
                ],
                "limit": 3,
                "maxChars": 40,
            },
        ),
        ("sessions.preview", {"keys": []}),
        ("sessions.preview", {"keys": ["main", "  "], "limit": 10, "maxChars": 240}),
        ("sessions.preview", {"keys": ["agent:main:main"], "limit": 0, "maxChars": 5}),
        ("sessions.describe", {"key": "agent:work:main"}),
        (
            "sessions.describe",
            {"key": "main", "includeDerivedTitles": True, "includeLastMessage": True},
        ),
        ("sessions.describe", {"key": "AGENT:WORK:MAIN"}),
        ("sessions.describe", {"key": "global"}),
        ("sessions.describe", {"key": "agent:ops:discord:direct:u7"}),
        (
            "sessions.describe",
            {"key": "agent:main:explicit:archive-me", "includeDerivedTitles": True},
        ),
        ("sessions.describe", {"key": "nope:x"}),
        ("agents.list", {}),
        ("chat.history", {"sessionKey": "agent:main:main", "limit": 200}),
        ("chat.history", {"sessionKey": "main"}),
        ("chat.history", {"sessionKey": "agent:research:telegram:group:-1001"}),
        ("chat.history", {"sessionKey": "agent:nobody:main"}),
        ("health", {}),
        ("status", {}),
    ],
    "transcripts": [
        ("sessions.list", {"includeDerivedTitles": True, "includeLastMessage": True}),
        ("sessions.list", _TUI_PICKER),
        ("sessions.list", {"search": "big"}),
        (
            "sessions.preview",
            {
                "keys": [
                    "agent:main:main",
                    "agent:main:telegram:direct:ann",
                    "agent:main:explicit:oversized",
                    "agent:main:explicit:big",
                    "agent:side:main",
                    "agent:side:empty",
                    "agent:side:no-transcript",
                ],
                "limit": 12,
                "maxChars": 2000,
            },
        ),
        ("sessions.preview", {"keys": ["agent:main:main"], "limit": 50, "maxChars": 60}),
        (
            "sessions.describe",
            {
                "key": "agent:main:explicit:big",
                "includeDerivedTitles": True,
                "includeLastMessage": True,
            },
        ),
        ("sessions.describe", {"key": "agent:side:main", "includeDerivedTitles": True}),
        ("sessions.describe", {"key": "agent:side:no-transcript", "includeDerivedTitles": True}),
        ("chat.history", {"sessionKey": "agent:main:main"}),
        ("chat.history", {"sessionKey": "agent:main:main", "limit": 3}),
        ("chat.history", {"sessionKey": "agent:main:main", "limit": 8, "maxChars": 100}),
        ("chat.history", {"sessionKey": "agent:main:telegram:direct:ann", "limit": 50}),
        ("chat.history", {"sessionKey": "agent:main:explicit:oversized"}),
        ("chat.history", {"sessionKey": "agent:main:explicit:big", "limit": 1000}),
        ("chat.history", {"sessionKey": "agent:main:explicit:big", "limit": 7}),
        ("chat.history", {"sessionKey": "agent:side:main"}),
        ("chat.history", {"sessionKey": "agent:side:empty"}),
        ("agents.list", {}),
    ],
}

READS["settings"] = [
    ("sessions.list", {}),
    ("sessions.list", {"includeDerivedTitles": True, "includeLastMessage": True}),
    ("sessions.list", {"search": "desk"}),
    ("sessions.describe", {"key": "main"}),
    ("sessions.describe", {"key": "desk"}),
    ("sessions.describe", {"key": "agent:home:explicit:pinned"}),
    ("sessions.describe", {"key": "agent:ops:desk"}),
    ("sessions.preview", {"keys": ["main", "desk", "agent:home:main"]}),
    ("chat.history", {"sessionKey": "main"}),
    ("chat.history", {"sessionKey": "desk", "limit": 1}),
    ("agents.list", {}),
    ("health", {}),
    ("status", {}),
]

WRITES: dict[str, list[Call]] = {
    "settings": [
        ("sessions.subscribe", {}),
        ("sessions.delete", {"key": "main"}),
        ("sessions.delete", {"key": "agent:home:desk"}),
        ("sessions.patch", {"key": "agent:home:explicit:pinned", "model": None}),
        ("sessions.patch", {"key": "agent:ops:desk", "model": None, "label": "ops desk"}),
        ("sessions.reset", {"key": "agent:home:explicit:pinned"}),
        ("sessions.reset", {"key": "desk", "reason": "new"}),
        ("sessions.list", {"includeGlobal": True}),
        ("nope.method", {}),
    ],
    "agents": [
        ("sessions.subscribe", {}),
        ("sessions.patch", {"key": "agent:main:main", "label": "renamed home"}),
        ("sessions.patch", {"key": "agent:work:main", "label": "renamed home"}),
        ("sessions.patch", {"key": "agent:work:main", "label": "   "}),
        (
            "sessions.patch",
            {
                "key": "agent:work:main",
                "thinkingLevel": "think hard",
                "fastMode": False,
                "verboseLevel": "full",
                "responseUsage": "off",
                "reasoningLevel": "on",
                "elevatedLevel": "yes",
                "sendPolicy": "ALLOW",
                "groupActivation": "mention",
            },
        ),
        ("sessions.patch", {"key": "agent:work:main", "thinkingLevel": "sideways"}),
        ("sessions.patch", {"key": "agent:work:main", "spawnedBy": "agent:work:x"}),
        ("sessions.patch", {"key": "agent:ops:subagent:fresh", "spawnedBy": "agent:ops:other"}),
        (
            "sessions.patch",
            {
                "key": "agent:ops:discord:direct:u7",
                "label": None,
                "thinkingLevel": None,
                "verboseLevel": None,
            },
        ),
        ("sessions.patch", {"key": "agent:main:explicit:archive-me", "model": None}),
        ("sessions.patch", {"key": "agent:research:brand:new", "label": "brand new"}),
        ("sessions.patch", {"key": "agent:research:main", "execHost": "teleport"}),
        ("sessions.reset", {"key": "agent:work:main"}),
        ("sessions.reset", {"key": "agent:ops:telegram:group:-1001", "reason": "new"}),
        ("sessions.reset", {"key": "agent:support:explicit:archive-me"}),
        ("sessions.delete", {"key": "agent:support:discord:direct:u7"}),
        ("sessions.delete", {"key": "agent:support:cron:nightly", "deleteTranscript": False}),
        ("sessions.delete", {"key": "agent:main:main"}),
        ("sessions.delete", {"key": "agent:support:never:was"}),
        ("sessions.list", _LIST_ALL),
        ("sessions.unsubscribe", {}),
        ("sessions.patch", {"key": "agent:main:main", "label": "after unsubscribe"}),
        ("nope.method", {}),
    ],
    "transcripts": [
        ("sessions.subscribe", {}),
        ("sessions.reset", {"key": "agent:main:telegram:direct:ann"}),
        ("chat.history", {"sessionKey": "agent:main:telegram:direct:ann"}),
        ("sessions.delete", {"key": "agent:side:main", "deleteTranscript": True}),
        ("sessions.preview", {"keys": ["agent:side:main", "agent:main:telegram:direct:ann"]}),
        ("nope.method", {}),
    ],
}

MODEL_METHODS: list[Call] = [
    ("chat.send", {"sessionKey": "agent:main:main", "message": "hi", "idempotencyKey": "k"}),
    ("chat.abort", {"sessionKey": "agent:main:main"}),
    ("models.list", {}),
    ("sessions.compact", {"key": "agent:main:main"}),
    ("sessions.usage", {}),
    ("sessions.create", {"key": "agent:main:x"}),
    ("sessions.send", {"key": "agent:main:main", "message": "hi"}),
]
"""Methods that need a model: sent to sessiond only (the reference would start a run). sessiond
must answer each as the reference answers a method it does not know (`nope.method`)."""

RUNTIME_FIELDS = {"ts", "thinkingLevels", "thinkingOptions", "thinkingDefault", "agentRuntime"}
CATALOG_FIELDS = {"estimatedCostUsd", "contextTokens"}
"""Priced and looked up from the reference's model catalog in full rows (describe, events);
list rows carry only the stored figures, and there they are compared."""
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_STAMP = re.compile(r"\.(deleted|reset)\.\d{4}-\d{2}-\d{2}T\d{2}-\d{2}-\d{2}\.\d{3}Z")


# ------------------------------------------------------------------------------- recording


async def _record(url: str, calls: list[Call]) -> list[Json]:
    """Each call's `res` frame, and the `sessions.changed` events that arrived meanwhile."""
    client = await GatewayClient.connect(url, TOKEN, timeout=60)
    out: list[Json] = [{"method": "connect", "params": None, "hello": client.hello}]
    events: list[Json] = []
    try:
        for index, (method, params) in enumerate(calls):
            ident = f"c{index}"
            frame = {"type": "req", "id": ident, "method": method, "params": params}
            await client.ws.send(json.dumps(frame))
            while True:
                message = json.loads(await asyncio.wait_for(client.ws.recv(), 120))
                if message.get("type") == "res" and message.get("id") == ident:
                    out.append({"method": method, "params": params, "res": message})
                    break
                if message.get("event") == "sessions.changed":
                    events.append(message)
        deadline = time.monotonic() + 1.5
        while time.monotonic() < deadline:
            try:
                message = json.loads(await asyncio.wait_for(client.ws.recv(), 0.3))
            except TimeoutError:
                continue
            if message.get("event") == "sessions.changed":
                events.append(message)
    finally:
        await client.close()
    out.insert(
        len(out) - _extra(calls), {"method": "sessions.changed", "params": None, "events": events}
    )
    return out


def _extra(calls: list[Call]) -> int:
    """How many trailing calls only sessiond gets."""
    tail = calls[-len(MODEL_METHODS) :]
    return len(MODEL_METHODS) if tail == MODEL_METHODS else 0


def _snapshot(state: Path) -> Json:
    """Every store's rows and every sessions dir's file names, after the writes."""
    found: dict[str, Json] = {}
    agents = state / "agents"
    for directory in sorted(agents.glob("*/sessions")):
        rel = str(directory.relative_to(state))
        store = directory / "sessions.json"
        rows = json.loads(store.read_text()) if store.exists() else None
        found[rel] = {"rows": rows, "files": sorted(p.name for p in directory.iterdir())}
    return found


def _run_side(kind: str, case: str, state: Path, base: Path, ref_bin: Path | None) -> Json:
    calls = READS[case] + WRITES[case]
    if kind == "sessiond":
        calls = calls + MODEL_METHODS
    if kind == "reference":
        assert ref_bin is not None
        gateway = ReferenceGateway(ref_bin, state, base / f"{case}-gateway.log", TOKEN)
        try:
            gateway.wait_ready()
            recorded = asyncio.run(_record(gateway.url, calls))
        finally:
            gateway.stop()
    else:
        env = {"HOME": str(state)}
        with DaemonProcess(state, "--token", TOKEN, env=env) as daemon:
            recorded = asyncio.run(_record(daemon.url, calls))
    return {"calls": recorded, "after": _snapshot(state)}


@pytest.fixture(scope="module")
def observed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Json]]:
    ref_dir = os.environ.get("OPENCLAW_REF_DIR")
    if not ref_dir:
        pytest.skip("set OPENCLAW_REF_DIR to an installed OpenClaw 2026.5.12 to run live")
    ref_bin = harness.reference_bin(Path(ref_dir))
    base = tmp_path_factory.mktemp("clients")
    now = int(time.time() * 1000)
    results: dict[str, Json] = {}
    for case in client_fixtures.CASES:
        original = base / f"{case}-original"
        client_fixtures.build(case, original, now)
        sides: dict[str, Json] = {}
        for kind in ("reference", "sessiond"):
            state = base / f"{case}-{kind}"
            subprocess.run(["cp", "-a", str(original), str(state)], check=True)
            sides[kind] = _run_side(kind, case, state, base, ref_bin)
            sides[kind]["state"] = str(state)
        sides["since"] = now
        results[case] = sides
    yield results


# ---------------------------------------------------------------------------- normalising


def _norm(value: Json, ctx: dict[str, Any]) -> Json:
    if isinstance(value, dict):
        return {k: _norm(v, ctx) for k, v in value.items() if k not in RUNTIME_FIELDS}
    if isinstance(value, list):
        return [_norm(v, ctx) for v in value]
    if isinstance(value, str):
        text = value.replace(ctx["state"], "<STATE>")
        text = _STAMP.sub(lambda m: f".{m.group(1)}.<stamp>", text)
        return _UUID.sub(lambda m: m.group(0) if m.group(0) in ctx["ids"] else "<new-id>", text)
    if isinstance(value, int | float) and not isinstance(value, bool) and value >= ctx["since"]:
        return "<now>"
    return value


def _health(payload: Json) -> Json:
    def sessions(s: Json) -> Json:
        return {
            "path": s["path"],
            "count": s["count"],
            "recent": [{"key": r["key"], "updatedAt": r["updatedAt"]} for r in s["recent"]],
        }

    return {
        "ok": payload["ok"],
        "defaultAgentId": payload["defaultAgentId"],
        "agents": [
            {
                "agentId": a["agentId"],
                "name": a.get("name"),
                "isDefault": a["isDefault"],
                "sessions": sessions(a["sessions"]),
            }
            for a in payload["agents"]
        ],
        "sessions": sessions(payload["sessions"]),
    }


def _status(payload: Json) -> Json:
    def rows(items: Json) -> Json:
        return [{k: v for k, v in r.items() if k not in ("age", "runtime")} for r in items]

    sessions = payload["sessions"]
    return {
        "paths": sessions["paths"],
        "count": sessions["count"],
        "defaults": sessions["defaults"],
        "recent": rows(sessions["recent"]),
        "byAgent": [{**a, "recent": rows(a["recent"])} for a in sessions["byAgent"]],
    }


def _comparable(entry: Json) -> Json:
    """One call's answer as compared: validation wording (G6) and runtime reports left out."""
    if "hello" in entry:
        return entry["hello"]["snapshot"].get("sessionDefaults")
    if "events" in entry:
        return [_without(e["payload"], CATALOG_FIELDS) for e in entry["events"]]
    res = dict(entry["res"])
    res.pop("id", None)
    error = res.get("error")
    if error and error.get("message", "").startswith(f"invalid {entry['method']} params"):
        res["error"] = {"code": error["code"], "message": "invalid params"}
    if res.get("ok") and entry["method"] == "health":
        res["payload"] = _health(res["payload"])
    if res.get("ok") and entry["method"] == "status":
        res["payload"] = _status(res["payload"])
    if res.get("ok") and entry["method"] == "sessions.describe" and res["payload"]["session"]:
        res["payload"] = {"session": _without(res["payload"]["session"], CATALOG_FIELDS)}
    return res


def _without(row: Json, names: set[str]) -> Json:
    return {k: v for k, v in row.items() if k not in names}


def _pairs(observed: dict[str, Json], method: str) -> Iterator[tuple[str, int, Json, Json]]:
    for case, sides in observed.items():
        ref, ours = sides["reference"], sides["sessiond"]
        ctx_ref = _ctx(sides, "reference")
        ctx_ours = _ctx(sides, "sessiond")
        for index, (a, b) in enumerate(zip(ref["calls"], ours["calls"], strict=False)):
            if a["method"] != method:
                continue
            yield (
                f"{case}#{index} {method} {json.dumps(a['params'])[:120]}",
                index,
                _norm(_comparable(a), ctx_ref),
                _norm(_comparable(b), ctx_ours),
            )


def _ctx(sides: Json, kind: str) -> dict[str, Any]:
    state = Path(sides[kind]["state"])
    original = state.parent / state.name.replace(kind, "original")
    return {"state": str(state), "ids": _ids(original), "since": sides["since"]}


def _ids(original: Path) -> set[str]:
    found: set[str] = set()
    for path in original.glob("agents/*/sessions/*"):
        found.update(_UUID.findall(path.name))
        if path.name == "sessions.json":
            found.update(_UUID.findall(path.read_text()))
    return found


def _diff(a: Json, b: Json, path: str = "") -> list[str]:
    if isinstance(a, dict) and isinstance(b, dict):
        out = []
        for key in sorted(set(a) | set(b)):
            if key not in b:
                out.append(f"{path}.{key}: only the reference has {json.dumps(a[key])[:200]}")
            elif key not in a:
                out.append(f"{path}.{key}: only sessiond has {json.dumps(b[key])[:200]}")
            else:
                out += _diff(a[key], b[key], f"{path}.{key}")
        return out
    if isinstance(a, list) and isinstance(b, list):
        out = [f"{path}: {len(a)} items vs {len(b)}"] if len(a) != len(b) else []
        for index, (x, y) in enumerate(zip(a, b, strict=False)):
            out += _diff(x, y, f"{path}[{index}]")
        return out
    if a != b:
        return [f"{path}: reference {json.dumps(a)[:200]} sessiond {json.dumps(b)[:200]}"]
    return []


METHODS = [
    "sessions.list",
    "sessions.preview",
    "sessions.describe",
    "sessions.subscribe",
    "sessions.unsubscribe",
    "sessions.patch",
    "sessions.reset",
    "sessions.delete",
    "agents.list",
    "chat.history",
    "health",
    "status",
    "sessions.changed",
    "nope.method",
    "connect",
]


@pytest.mark.parametrize("method", METHODS)
def test_answers_match_the_reference(observed: dict[str, Json], method: str) -> None:
    report = []
    compared = 0
    for label, _index, ref, ours in _pairs(observed, method):
        compared += 1
        found = _diff(ref, ours)
        if found:
            report.append(label + "\n  " + "\n  ".join(found[:30]))
    print(f"{method}: {compared} answers compared")
    assert compared > 0, f"no call of {method} in the fixtures"
    assert not report, "\n".join(report)


def test_hello_ok_announces_only_what_sessiond_serves(observed: dict[str, Json]) -> None:
    """Every method and event sessiond announces is one the reference has (same names), and
    every served method answers: the list is the truth a client's `requiredMethods` checks."""
    answered: set[str] = set()
    announced: set[str] = set()
    for sides in observed.values():
        ref = sides["reference"]["calls"][0]["hello"]["features"]
        ours = sides["sessiond"]["calls"][0]["hello"]["features"]
        assert set(ours["methods"]) <= set(ref["methods"]), set(ours["methods"]) - set(
            ref["methods"]
        )
        assert set(ours["events"]) <= set(ref["events"])
        announced |= set(ours["methods"])
        answered |= {c["method"] for c in sides["sessiond"]["calls"] if c.get("res", {}).get("ok")}
    # sessions.cleanup has its own live comparison (tests/daemon/test_openclaw_gateway.py).
    assert announced - {"sessions.cleanup"} <= answered, announced - answered


def test_methods_that_need_a_model_are_unknown_as_the_reference_words_it(
    observed: dict[str, Json],
) -> None:
    """chat.send, compaction, usage...: exactly the reference's answer to an unknown method."""
    for case, sides in observed.items():
        ref = next(c for c in sides["reference"]["calls"] if c["method"] == "nope.method")
        ours = sides["sessiond"]["calls"][-len(MODEL_METHODS) :]
        for call in ours:
            expected = json.loads(
                json.dumps(ref["res"]["error"]).replace("nope.method", call["method"])
            )
            assert call["res"]["ok"] is False, (case, call)
            assert call["res"]["error"] == expected, (case, call)


SESSIOND_FILES = (".sessiond.lock", ".json.journal")
"""Files only sessiond leaves beside a store: its lock while it runs (compat #30) and the journal
of its deletes and resets (compat #33, G19)."""


def _touched(case: str) -> set[str]:
    return {p["key"] for m, p in WRITES[case] if isinstance(p, dict) and "key" in p}


def test_stores_and_sessions_dirs_after_the_writes_match(observed: dict[str, Json]) -> None:
    """Rows the writes touched are stored as the reference stores them; the rest are left
    exactly as they were (the reference rewrites every row of a store it saves: compat G8)."""
    report = []
    for case, sides in observed.items():
        ref = _norm(sides["reference"]["after"], _ctx(sides, "reference"))
        ours = _norm(sides["sessiond"]["after"], _ctx(sides, "sessiond"))
        state = Path(sides["sessiond"]["state"])
        original = _snapshot(state.parent / f"{case}-original")
        touched = _touched(case)
        for rel in sorted(set(ref) | set(ours)):
            a, b = ref.get(rel), ours.get(rel)
            if a is None or b is None:
                report.append(f"{case} {rel}: present on one side only")
                continue
            files = lambda d: sorted(  # noqa: E731
                n for n in d["files"] if not n.startswith(".") and not n.endswith(SESSIOND_FILES)
            )
            report += [f"{case} {rel} files{x}" for x in _diff(files(a), files(b))]
            rows_a, rows_b = a["rows"] or {}, b["rows"] or {}
            for key in sorted(set(rows_a) | set(rows_b)):
                if key in touched:
                    report += [
                        f"{case} {rel} {key}{x}" for x in _diff(rows_a.get(key), rows_b.get(key))
                    ]
                else:
                    kept = (original.get(rel) or {}).get("rows") or {}
                    if raw_rows(sides, rel).get(key) != kept.get(key):
                        report.append(f"{case} {rel} {key}: sessiond changed an untouched row")
    assert not report, "\n".join(report)


def raw_rows(sides: Json, rel: str) -> Json:
    found = sides["sessiond"]["after"].get(rel) or {}
    return found.get("rows") or {}
