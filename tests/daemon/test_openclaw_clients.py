"""What OpenClaw's clients call, against a real `sessiond serve` (fast; the live comparison with
the reference is tests/differential/test_openclaw_clients.py).

Covers what a side-by-side run cannot show: that every write is durable when answered and goes
through the live store (so it is announced and merge-safe), that `sessions.changed` reaches
subscribers for external edits of sessions.json too, and that transcript reads stay bounded
(measured with the daemon's own read counters in /proc, not mocked).
"""

from __future__ import annotations

import asyncio
import json
import os
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from differential import client_fixtures
from harness.async_run import until
from harness.daemon_process import DaemonProcess
from harness.gateway_client import GatewayClient
from harness.state_dirs import read_rows, store_path
from prometheus_client.parser import text_string_to_metric_families
from sessiond.client import SessiondClient
from sessiond.protocol.undo import RestoreResult

TOKEN = "clients-fast-1"
NOW = 1_795_000_000_000
Json = Any


class Session:
    """One gateway connection that records `sessions.changed` events as they arrive."""

    def __init__(self, client: GatewayClient) -> None:
        self.client = client
        self.events: list[Json] = []
        self.ids = iter(range(1, 1_000_000))

    @classmethod
    async def open(cls, url: str) -> Session:
        return cls(await GatewayClient.connect(url, TOKEN))

    async def call(self, method: str, params: Json = None) -> Json:
        """The whole `res` frame (ok or not)."""
        ident = f"t{next(self.ids)}"
        frame = {"type": "req", "id": ident, "method": method, "params": params or {}}
        await self.client.ws.send(json.dumps(frame))
        while True:
            message = json.loads(await asyncio.wait_for(self.client.ws.recv(), 30))
            if message.get("type") == "res" and message.get("id") == ident:
                return message
            if message.get("event") == "sessions.changed":
                self.events.append(message)

    async def ok(self, method: str, params: Json = None) -> Json:
        answer = await self.call(method, params)
        assert answer["ok"] is True, answer
        return answer["payload"]

    async def drain(self, seconds: float = 0.3) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        while loop.time() < deadline:
            try:
                raw = await asyncio.wait_for(self.client.ws.recv(), deadline - loop.time())
            except TimeoutError:
                return
            message = json.loads(raw)
            if message.get("event") == "sessions.changed":
                self.events.append(message)

    async def close(self) -> None:
        await self.client.close()


@pytest.fixture
def daemon(tmp_path: Path) -> Iterator[DaemonProcess]:
    state = tmp_path / "state"
    client_fixtures.build("agents", state, NOW)
    with DaemonProcess(state, "--token", TOKEN, env={"HOME": str(state)}) as proc:
        yield proc


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def test_writes_are_durable_when_answered_and_announced(daemon: DaemonProcess) -> None:
    state = daemon.state_dir

    async def go() -> Session:
        s = await Session.open(daemon.url)
        assert await s.ok("sessions.subscribe") == {"subscribed": True}
        patched = await s.ok("sessions.patch", {"key": "agent:work:main", "label": "renamed"})
        assert read_rows(state, "work")["agent:work:main"]["label"] == "renamed"
        assert patched["entry"]["label"] == "renamed" and patched["key"] == "agent:work:main"
        reset = await s.ok("sessions.reset", {"key": "agent:work:main"})
        on_disk = read_rows(state, "work")["agent:work:main"]
        assert on_disk["sessionId"] == reset["entry"]["sessionId"] != patched["entry"]["sessionId"]
        assert on_disk["label"] == "renamed" and on_disk["totalTokens"] == 0
        old = patched["entry"]["sessionId"]
        sessions = state / "agents" / "work" / "sessions"
        assert [p.name for p in sessions.glob(f"{old}.jsonl.reset.*")]  # archived, not removed
        assert (sessions / f"{reset['entry']['sessionId']}.jsonl").exists()
        gone = await s.ok("sessions.delete", {"key": "agent:work:discord:direct:u7"})
        assert gone["deleted"] is True and len(gone["archived"]) == 1
        assert ".deleted." in gone["archived"][0]
        assert "agent:work:discord:direct:u7" not in read_rows(state, "work")
        refused = await s.call("sessions.delete", {"key": "main"})
        assert refused["error"] == {
            "code": "INVALID_REQUEST",
            "message": "Cannot delete the main session (agent:main:main).",
        }
        await s.drain()
        await s.close()
        return s

    s = run(go())
    reasons = [(e["payload"].get("sessionKey"), e["payload"]["reason"]) for e in s.events]
    assert reasons == [
        ("agent:work:main", "patch"),
        ("agent:work:main", "reset"),
        ("agent:work:discord:direct:u7", "delete"),
    ]
    assert all("seq" not in e for e in s.events)  # targeted events carry no seq, as the reference's
    patch_event = s.events[0]["payload"]
    assert patch_event["label"] == "renamed" and patch_event["hasActiveRun"] is False
    assert set(s.events[2]["payload"]) == {"sessionKey", "reason", "ts"}


def _scrape(port: int) -> dict[tuple[str, tuple[Any, ...]], float]:
    request = urllib.request.Request(f"http://127.0.0.1:{port}/metrics")
    request.add_header("Authorization", f"Bearer {TOKEN}")
    with urllib.request.urlopen(request, timeout=5) as resp:
        text = resp.read().decode()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def test_deletes_and_resets_are_journaled_and_restorable(daemon: DaemonProcess) -> None:
    """The gateway's delete and reset, and JSON-RPC's reset, each write one journal entry
    (issue 15), so `sessions.restore` puts the old row and its transcript back; the gateway's
    calls are counted in /metrics like JSON-RPC's."""
    state = daemon.state_dir
    sessions = state / "agents" / "work" / "sessions"
    before = read_rows(state, "work")
    main_id = before["agent:work:main"]["sessionId"]
    direct = "agent:work:discord:direct:u7"
    direct_id = before[direct]["sessionId"]

    async def gateway() -> None:
        s = await Session.open(daemon.url)
        await s.ok("sessions.reset", {"key": "agent:work:main", "reason": "new"})
        gone = await s.ok("sessions.delete", {"key": direct})
        assert gone["deleted"] is True and len(gone["archived"]) == 1
        await s.ok("health")
        await s.close()

    run(gateway())
    assert read_rows(state, "work")["agent:work:main"]["sessionId"] != main_id
    assert not (sessions / f"{main_id}.jsonl").exists()
    assert not (sessions / f"{direct_id}.jsonl").exists()

    async def jsonrpc() -> list[RestoreResult]:
        async with SessiondClient(daemon.url, token=TOKEN) as c:
            journal = await c.sessions_cleanups(agent="work")
            assert [e.kind for e in journal.entries] == ["delete", "reset"]
            assert [e.restorable for e in journal.entries] == [True, True]
            undone = [await c.sessions_restore(agent="work", id=e.id) for e in journal.entries]
            assert read_rows(state, "work")["agent:work:main"]["sessionId"] == main_id
            fresh = await c.sessions_reset(key="agent:work:main", agent="work")
            assert fresh.durable and len(fresh.archived) == 1
            assert fresh.archived[0].startswith(str(sessions / f"{main_id}.jsonl.reset."))
            (newest, *_) = (await c.sessions_cleanups(agent="work")).entries
            assert newest.kind == "reset" and newest.restorable
            undone.append(await c.sessions_restore(agent="work", id=newest.id))
            return undone

    undone = run(jsonrpc())
    assert [r.restored_rows for r in undone] == [1, 1, 1]
    assert [r.renamed_files for r in undone] == [1, 1, 1]
    after = read_rows(state, "work")
    assert after["agent:work:main"] == before["agent:work:main"]
    assert after[direct] == before[direct]
    assert (sessions / f"{main_id}.jsonl").exists()
    assert (sessions / f"{direct_id}.jsonl").exists()
    counted = _scrape(daemon.port)
    for method in ("sessions.reset", "sessions.delete", "health"):
        assert counted[("sessiond_requests_total", (("method", method), ("outcome", "ok")))] >= 1


def test_external_edits_reach_subscribers_and_unsubscribe_stops_them(
    daemon: DaemonProcess,
) -> None:
    path = store_path(daemon.state_dir, "ops")

    def edit(change: Any) -> None:
        rows = json.loads(path.read_text())
        change(rows)
        temp = path.with_name("sessions.json.tmp-editor")
        temp.write_text(json.dumps(rows, indent=2))
        os.replace(temp, path)

    async def go() -> tuple[list[Json], list[Json]]:
        s = await Session.open(daemon.url)
        other = await Session.open(daemon.url)  # never subscribes: hears nothing
        await s.ok("sessions.subscribe")
        edit(lambda rows: rows["agent:ops:main"].update(label="from an editor"))

        async def heard() -> bool:
            await s.drain(0.1)
            return any(e["payload"].get("label") == "from an editor" for e in s.events)

        await until(heard, timeout=10)
        edit(lambda rows: rows.pop("agent:ops:cron:nightly"))

        async def removed() -> bool:
            await s.drain(0.1)
            return any(e["payload"]["reason"] == "delete" for e in s.events)

        await until(removed, timeout=10)
        assert await s.ok("sessions.unsubscribe") == {"subscribed": False}
        before = len(s.events)
        edit(lambda rows: rows["agent:ops:main"].update(label="unheard"))
        await until(lambda: _listed_label(s, "agent:ops:main", "unheard"), timeout=10)
        await s.drain(0.5)
        await other.drain(0.2)
        heard_after = s.events[before:]
        await s.close()
        await other.close()
        return s.events[:before] + heard_after, other.events

    events, others = run(go())
    payloads = [e["payload"] for e in events]
    assert payloads[0]["sessionKey"] == "agent:ops:main" and payloads[0]["reason"] == "external"
    assert payloads[0]["sessionId"] and payloads[0]["kind"] == "direct"
    assert {"sessionKey": payloads[1]["sessionKey"], "reason": payloads[1]["reason"]} == {
        "sessionKey": "agent:ops:cron:nightly",
        "reason": "delete",
    }
    assert len(payloads) == 2, payloads  # nothing after unsubscribing
    assert others == []


def test_a_list_after_a_cleanup_apply_holds_the_rows_it_left(daemon: DaemonProcess) -> None:
    """A cleanup apply drops the gateway's kept rows and facts of its store when it begins
    (`Registry.before_apply`): the next list, built again, holds exactly the rows the apply
    left, each as it was listed before, and the other agents' rows as they were."""

    async def rows(s: Session) -> dict[str, Any]:
        listed = await s.ok("sessions.list", {"limit": 1000})
        return {r["key"]: r for r in listed["sessions"]}

    async def go() -> tuple[dict[str, Any], dict[str, Any]]:
        s = await Session.open(daemon.url)
        before = await rows(s)
        assert await rows(s) == before  # kept
        await s.ok("sessions.cleanup", {"agent": "support", "enforce": True, "fixMissing": True})
        after = await rows(s)
        await s.close()
        return before, after

    before, after = run(go())
    left = read_rows(daemon.state_dir, "support")
    support = {k for k in before if k.startswith("agent:support:")}
    assert support - left.keys(), "the apply removed no listed row: nothing tested"
    assert {k for k in after if k.startswith("agent:support:")} == support & left.keys()
    assert after == {k: v for k, v in before.items() if k in after}
    assert {k for k in after if not k.startswith("agent:support:")} == {
        k for k in before if not k.startswith("agent:support:")
    }


async def _listed_label(s: Session, key: str, label: str) -> bool:
    listed = await s.ok("sessions.list", {"agentId": "ops", "limit": 1000})
    return any(r["key"] == key and r.get("label") == label for r in listed["sessions"])


def test_a_cleanup_is_announced_once_without_a_key(daemon: DaemonProcess) -> None:
    async def go() -> list[Json]:
        s = await Session.open(daemon.url)
        await s.ok("sessions.subscribe")
        await s.ok("sessions.cleanup", {"agent": "support", "enforce": True, "fixMissing": True})
        await s.drain(0.5)
        await s.close()
        return s.events

    events = run(go())
    assert [e["payload"]["reason"] for e in events] == ["cleanup"]
    assert "sessionKey" not in events[0]["payload"]


def _read_bytes(pid: int) -> int:
    """Bytes the process has read through read(2) and friends, sockets included."""
    for line in Path(f"/proc/{pid}/io").read_text().splitlines():
        if line.startswith("rchar:"):
            return int(line.split()[1])
    raise AssertionError("no rchar in /proc/<pid>/io")


@pytest.mark.skipif(not Path("/proc/self/io").exists(), reason="needs Linux /proc/<pid>/io")
def test_transcript_reads_are_bounded_and_off_the_list_path(tmp_path: Path) -> None:
    """Ten transcripts of 4 MiB, one of 20 MiB: a plain list reads none of them; titles and
    previews read at most 24 KiB of each; a history reads at most its 12 MiB tail bound."""
    state = tmp_path / "state"
    b = client_fixtures.ClientState(state, NOW, "bounded")
    b.config({"agents": {"list": [{"id": "main", "default": True}]}})
    filler = json.dumps({"type": "note", "text": "z" * 4000})
    for n in range(10):
        chat = client_fixtures.Chat(NOW, f"c{n}-")
        chat.user(f"first question {n}")
        for _ in range(5000 if n == 0 else 1000):
            chat.raw(filler)
        chat.assistant(f"last answer {n}")
        b.row("main", f"agent:main:explicit:big{n}", (n + 1) * 3_600_000, chat.lines)
    b.write()
    with DaemonProcess(state, "--token", TOKEN, env={"HOME": str(state)}) as daemon:
        pid = daemon.proc.pid

        async def go() -> dict[str, int]:
            s = await Session.open(daemon.url)
            spent: dict[str, int] = {}
            for name, method, params in (
                ("list", "sessions.list", {}),
                ("titles", "sessions.list", {"includeDerivedTitles": True,
                                             "includeLastMessage": True}),
                ("history", "chat.history", {"sessionKey": "agent:main:explicit:big0",
                                             "limit": 3}),
            ):  # fmt: skip
                before = _read_bytes(pid)
                answer = await s.ok(method, params)
                spent[name] = _read_bytes(pid) - before
                if name == "titles":
                    titles = [r["derivedTitle"] for r in answer["sessions"]]
                    assert titles == [f"first question {n}" for n in range(10)]
                    assert answer["sessions"][0]["lastMessagePreview"] == "last answer 0"
            await s.close()
            return spent

        spent = run(go())
    print(f"bytes read by the daemon: {spent}")
    assert spent["list"] < 16 * 1024, spent
    assert spent["titles"] < 10 * (8 + 16) * 1024 + 16 * 1024, spent
    assert spent["history"] > 8 * 1024 * 1024, spent  # it did read a tail (big0 is 20 MiB)
    assert spent["history"] < 12 * 1024 * 1024 + 16 * 1024, spent


def test_a_list_kept_between_calls_follows_every_change(daemon: DaemonProcess) -> None:
    """`sessions.list` keeps the combined rows while no store changed (GatewaySessions.listing):
    a patch, a delete and an external edit each show in the very next list, with and without
    an agent filter, and a filtered list is the unfiltered one's rows of that agent."""
    path = store_path(daemon.state_dir, "ops")

    async def rows(s: Session, **params: Any) -> dict[str, Any]:
        listed = await s.ok("sessions.list", {"limit": 1000, **params})
        return {r["key"]: r for r in listed["sessions"]}

    async def go() -> None:
        s = await Session.open(daemon.url)
        everything = await rows(s)
        ops = await rows(s, agentId="ops")
        assert ops and ops == {k: v for k, v in everything.items() if k.startswith("agent:ops:")}
        assert await rows(s) == everything  # kept: the same answer
        await s.ok("sessions.patch", {"key": "agent:ops:main", "label": "patched"})
        assert (await rows(s, agentId="ops"))["agent:ops:main"]["label"] == "patched"
        assert (await rows(s))["agent:ops:main"]["label"] == "patched"
        await s.ok("sessions.delete", {"key": "agent:work:discord:direct:u7"})
        assert "agent:work:discord:direct:u7" not in await rows(s)
        on_disk = json.loads(path.read_text())
        on_disk["agent:ops:main"]["label"] = "edited outside"
        temp = path.with_name("sessions.json.tmp-editor")
        temp.write_text(json.dumps(on_disk, indent=2))
        os.replace(temp, path)
        await until(lambda: _listed_label(s, "agent:ops:main", "edited outside"), timeout=10)
        assert (await rows(s))["agent:ops:main"]["label"] == "edited outside"
        await s.close()

    run(go())
