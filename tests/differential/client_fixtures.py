"""State dirs that exercise what OpenClaw's clients are shown: rows, titles, previews, history.

Each builder writes a state dir whose rows use canonical keys and carry a `sessionId`, so the
reference gateway's start-up migration leaves the stores alone (docs/compat.md G1). Ages are
whole hours (a fresh subagent child: 10 minutes), far from every cutoff a call uses, so the few
seconds between the two servers' runs never change a result. Transcripts are JSON lines in the
shape OpenClaw writes them (`{"type":"message","id","parentId","message":{role,content,...}}`).
"""

from __future__ import annotations

import json
import random
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

MIN = 60_000
HOUR = 60 * MIN

Json = Any


class ClientState:
    """Writes one state dir; ids come from a seeded generator, times from `now_ms`."""

    def __init__(self, root: Path, now_ms: int, seed: str) -> None:
        self.root = root
        self.now = now_ms
        self.rng = random.Random(seed)
        self.stores: dict[str, dict[str, Json]] = {}

    def uuid(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def config(self, cfg: Json) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        (self.root / "openclaw.json").write_text(json.dumps(cfg, indent=2) + "\n")

    def sessions_dir(self, agent: str) -> Path:
        path = self.root / "agents" / agent / "sessions"
        path.mkdir(parents=True, exist_ok=True)
        return path

    def row(
        self, agent: str, key: str, age_ms: int, lines: list[str] | None = None, **fields: Json
    ) -> str:
        """A row (and its transcript unless `lines` is None); returns its session id."""
        session_id = self.uuid()
        self.stores.setdefault(agent, {})[key] = {
            "sessionId": session_id,
            "updatedAt": self.now - age_ms,
            **fields,
        }
        if lines is not None:
            self.transcript(agent, session_id, lines)
        return session_id

    def transcript(self, agent: str, session_id: str, lines: list[str]) -> Path:
        path = self.sessions_dir(agent) / f"{session_id}.jsonl"
        header = json.dumps(
            {"type": "session", "version": 3, "id": session_id, "timestamp": stamp(self.now)}
        )
        path.write_text("\n".join([header, *lines]) + "\n", encoding="utf-8")
        return path

    def write(self) -> None:
        for agent, rows in self.stores.items():
            path = self.sessions_dir(agent) / "sessions.json"
            path.write_text(json.dumps(rows, indent=2, ensure_ascii=False), encoding="utf-8")


def stamp(ms: int) -> str:
    import datetime as dt

    moment = dt.datetime.fromtimestamp(ms / 1000, tz=dt.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"


class Chat:
    """Transcript lines of one conversation, linked as a tree (`id`, `parentId`)."""

    def __init__(self, now_ms: int, prefix: str = "m") -> None:
        self.now = now_ms
        self.prefix = prefix
        self.lines: list[str] = []
        self.count = 0
        self.parent: str | None = None

    def add(self, message: Json, *, parent: str | bool | None = True, **record: Json) -> str:
        self.count += 1
        ident = f"{self.prefix}{self.count}"
        link = self.parent if parent is True else (None if parent is False else parent)
        line = {
            "type": "message",
            "id": ident,
            "parentId": link,
            "timestamp": stamp(self.now - 5 * HOUR + self.count * 1000),
            "message": message,
            **record,
        }
        self.lines.append(json.dumps(line, ensure_ascii=False))
        self.parent = ident
        return ident

    def user(self, text: str | list[Json], **extra: Json) -> str:
        content = [{"type": "text", "text": text}] if isinstance(text, str) else text
        return self.add({"role": "user", "content": content, "timestamp": self._ts(), **extra})

    def assistant(self, text: str | list[Json], **extra: Json) -> str:
        content = [{"type": "text", "text": text}] if isinstance(text, str) else text
        message = {
            "role": "assistant",
            "content": content,
            "provider": "anthropic",
            "model": "claude-sonnet-4",
            "usage": {
                "input": 1200,
                "output": 80,
                "cacheRead": 300,
                "totalTokens": 1580,
                "cost": {"total": 0.0123, "input": 0.01},
            },
            "stopReason": "stop",
            "timestamp": self._ts(),
            **extra,
        }
        return self.add(message)

    def raw(self, line: str) -> None:
        self.lines.append(line)

    def _ts(self) -> int:
        return self.now - 5 * HOUR + (self.count + 1) * 1000


# ------------------------------------------------------------------------------------ cases


def _agents(b: ClientState) -> None:
    """Many agents; labels, spawnedBy children (one fresh), topics, global/unknown, cron runs,
    delivery fields, checkpoints, model overrides, token figures."""
    b.config(
        {
            "agents": {
                "list": [
                    {"id": "main", "default": True},
                    {"id": "work", "name": "Work Bot", "identity": {"name": "Worky", "emoji": "W"}},
                    {"id": "ops", "model": "anthropic/claude-opus-4"},
                    {"id": "research", "identity": {"avatar": "https://example.com/a.png"}},
                    {"id": "support", "name": "Support"},
                ],
                "defaults": {
                    "model": {"primary": "openai/gpt-5.5", "fallbacks": ["openai/gpt-5.2"]}
                },
            },
            "session": {"dmScope": "per-channel-peer"},
        }
    )
    for index, agent in enumerate(("main", "work", "ops", "research", "support")):
        base = index * 7 * MIN  # distinct updatedAt per agent: a stable order either way
        family = Chat(b.now, f"{agent}-f")
        family.user("[Telegram Ann 2026-05-01 10:00Z] Who is bringing dessert on Sunday?")
        family.assistant(f"Bob is bringing an apple pie ({agent}).")
        chat = Chat(b.now, f"{agent}-")
        chat.user(f"Plan the {agent} quarterly review, please")
        chat.assistant(f"Here is a plan for {agent}: step one, step two.")
        b.row(
            agent,
            f"agent:{agent}:main",
            HOUR + base,
            chat.lines,
            label=f"{agent} home",
            inputTokens=900,
            outputTokens=120,
            totalTokens=1500,
            contextTokens=200000,
            model="gpt-5.5",
            modelProvider="openai",
        )
        b.row(
            agent,
            f"agent:{agent}:telegram:group:-1001",
            2 * HOUR + base,
            family.lines,
            chatType="group",
            channel="telegram",
            subject="Family Chat",
            lastTo="-1001",
            lastAccountId="Default",
        )
        b.row(
            agent,
            f"agent:{agent}:telegram:group:-1001:topic:42",
            3 * HOUR + base,
            [],
            chatType="group",
            channel="telegram",
            subject="Family Chat",
            groupChannel="#trips",
        )
        b.row(
            agent,
            f"agent:{agent}:slack:channel:c0ffee",
            4 * HOUR + base,
            None,
            chatType="channel",
            channel="slack",
            groupChannel="general",
            space="acme",
            deliveryContext={"channel": "slack", "to": "C0FFEE", "threadId": 12.0},
        )
        b.row(
            agent,
            f"agent:{agent}:subagent:fresh",
            10 * MIN + base,
            [],
            spawnedBy=f"agent:{agent}:main",
            label=f"{agent} child",
            status="running",
        )
        b.row(
            agent,
            f"agent:{agent}:subagent:old",
            9 * HOUR + base,
            [],
            spawnedBy=f"agent:{agent}:main",
            parentSessionKey=f"agent:{agent}:main",
        )
        b.row(
            agent,
            f"agent:{agent}:discord:direct:u7",
            6 * HOUR + base,
            [],
            chatType="direct",
            origin={"label": "Alice (discord)", "provider": "discord"},
            thinkingLevel="high",
            verboseLevel="on",
            fastMode=True,
            reasoningLevel="stream",
            elevatedLevel="ask",
            sendPolicy="deny",
            responseUsage="tokens",
        )
        b.row(agent, f"agent:{agent}:cron:nightly:run:r1", 7 * HOUR + base, [])
        b.row(
            agent,
            f"agent:{agent}:cron:nightly",
            8 * HOUR + base,
            [],
            estimatedCostUsd=0.42,
            systemSent=True,
            abortedLastRun=True,
        )
        b.row(
            agent,
            f"agent:{agent}:explicit:archive-me",
            50 * HOUR + base,
            [],
            compactionCheckpoints=[
                {"checkpointId": "c1", "createdAt": b.now - 60 * HOUR, "reason": "manual"},
                {"checkpointId": "c2", "createdAt": b.now - 52 * HOUR, "reason": "overflow-retry"},
            ],
            modelOverride="anthropic/claude-opus-4",
            providerOverride="anthropic",
            displayName="Archive me",
        )
    b.row("main", "global", 90 * MIN, [], label="the global one")
    b.row("main", "unknown", 100 * MIN, [])
    b.write()


def _transcripts(b: ClientState) -> None:
    """Transcripts as channels write them: envelopes, metadata blocks, runtime context,
    directives, tools, images, heartbeats, silent replies, phases, a branch, a compaction, an
    oversized line, and one transcript of several MiB."""
    b.config({"agents": {"list": [{"id": "main", "default": True}, {"id": "side"}]}})
    chat = Chat(b.now)
    meta = (
        "Conversation info (untrusted metadata):\n```json\n"
        + json.dumps({"sender": "ann", "chat": "Family"})
        + "\n```\n\nSender (untrusted metadata):\n```json\n"
        + json.dumps({"label": "Ann Example", "id": "42"})
        + "\n```\n\n"
    )
    chat.user("[Telegram Ann 2026-05-01 10:00Z] " + meta + "What's the weather like today?")
    chat.assistant("[[reply_to_current]] It is sunny, 21°C.")
    chat.user(
        [
            {"type": "text", "text": "Show me a picture"},
            {"type": "image", "data": "iVBORw0KGgo" * 50, "mimeType": "image/png"},
        ]
    )
    chat.assistant([{"type": "toolCall", "id": "t1", "name": "camera", "arguments": {"x": 1}}])
    chat.add(
        {
            "role": "toolResult",
            "toolCallId": "t1",
            "toolName": "camera",
            "content": [{"type": "text", "text": "photo taken"}],
            "details": {"big": True},
        }
    )
    chat.assistant(
        [
            {"type": "thinking", "thinking": "let me look", "thinkingSignature": "sig"},
            {"type": "text", "text": "Here it is."},
        ]
    )
    chat.user(
        "Read HEARTBEAT.md if it exists (workspace context). Follow it strictly. Do not "
        "infer or repeat old tasks from prior chats. If nothing needs attention, reply "
        "HEARTBEAT_OK."
    )
    chat.assistant("HEARTBEAT_OK")
    chat.user("Are you there?\n[message_id: 991]")
    chat.assistant("NO_REPLY")
    chat.assistant(
        [
            {
                "type": "text",
                "text": "thinking aloud",
                "textSignature": '{"v":1,"phase":"commentary"}',
            },
            {
                "type": "text",
                "text": "Final answer: yes.",
                "textSignature": '{"v":1,"phase":"final_answer"}',
            },
        ]
    )
    chat.user("x" * 9000)
    chat.assistant("Long text noted. " + "y" * 8500)
    chat.add({"role": "user", "content": "", "timestamp": 1})
    main_id = b.row("main", "agent:main:main", HOUR, chat.lines, label="rich")
    del main_id

    branch = Chat(b.now, "b")
    root = branch.user("Start of a branching chat")
    branch.assistant("First reply")
    branch.user("Abandoned question")
    branch.assistant("Abandoned answer")
    branch.add(
        {"role": "user", "content": [{"type": "text", "text": "Edited question"}]}, parent=root
    )
    branch.assistant("Answer on the active branch")
    branch.raw(
        json.dumps(
            {
                "type": "compaction",
                "id": "cmp1",
                "parentId": branch.parent,
                "timestamp": stamp(b.now - 2 * HOUR),
                "summary": "earlier",
            }
        )
    )
    branch.parent = "cmp1"
    branch.user("After compaction")
    branch.raw("{not json at all")
    branch.assistant("Done")
    b.row("main", "agent:main:telegram:direct:ann", 2 * HOUR, branch.lines)

    oversized = Chat(b.now, "o")
    oversized.user("Before the big one")
    oversized.assistant("z" * (300 * 1024))
    oversized.user("After the big one")
    b.row("main", "agent:main:explicit:oversized", 3 * HOUR, oversized.lines)

    big = Chat(b.now, "g")
    big.user("The very first question of a long chat")
    for n in range(6000):
        if n % 2:
            big.assistant(f"answer {n} " + "lorem ipsum " * 40)
        else:
            big.user(f"question {n} " + "dolor sit amet " * 30)
    big.user("The very last question")
    b.row("main", "agent:main:explicit:big", 4 * HOUR, big.lines, label="big one")

    inter = Chat(b.now, "i")
    inter.user("routed from elsewhere", provenance={"kind": "inter_session"})
    inter.user("[Inter-session message] sourceTool=subagent_announce isUser=false")
    inter.user("Real first question")
    inter.assistant("Real answer")
    b.row("side", "agent:side:main", 5 * HOUR, inter.lines)
    b.row("side", "agent:side:empty", 6 * HOUR, [])
    b.row("side", "agent:side:no-transcript", 7 * HOUR, None, subject="Nothing on disk")
    b.write()


def _settings(b: ClientState) -> None:
    """Settings that move defaults: a default agent that is not first, its own model, a main
    key other than `main`, configured context tokens and default model, model overrides."""
    b.config(
        {
            "agents": {
                "list": [
                    {"id": "ops"},
                    {"id": "home", "default": True, "model": "anthropic/claude-sonnet-4"},
                ],
                "defaults": {"model": "openai/gpt-5.2", "contextTokens": 123456},
            },
            "session": {"mainKey": "Desk"},
        }
    )
    chat = Chat(b.now, "h")
    chat.user("Good morning, desk")
    chat.assistant("Good morning!")
    b.row("home", "agent:home:desk", HOUR, chat.lines, label="desk")
    b.row("home", "agent:home:explicit:pinned", 3 * HOUR, [],
          providerOverride="anthropic", modelOverride="claude-opus-4",
          modelOverrideSource="user", model="claude-opus-4", modelProvider="anthropic",
          contextTokens=999)  # fmt: skip
    b.row("ops", "agent:ops:desk", 4 * HOUR, [], modelOverride="gpt-5.2")
    b.row("ops", "agent:ops:telegram:group:7", 5 * HOUR, [], channel="telegram")
    b.write()


CASES: dict[str, Callable[[ClientState], None]] = {
    "agents": _agents,
    "transcripts": _transcripts,
    "settings": _settings,
}


def build(case: str, root: Path, now_ms: int) -> None:
    CASES[case](ClientState(root, now_ms, case))
