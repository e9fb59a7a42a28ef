"""Seeded, deterministic OpenClaw state directories for the differential tests.

`build_state_dir(case, root, now_ms)` writes one state directory (config, per-agent stores,
transcripts, archives, sidecars, stray files) and pins every timestamp relative to `now_ms`:
row `updatedAt` values, file mtimes (via `os.utime`) and the timestamps inside archive names.
The same `(case, now_ms)` always yields byte-identical files with identical mtimes, so a state
dir built for the reference can be rebuilt later for sessiond.

Timing rules every case follows (checked by `check_margins`): every row age and file age is at
least ten minutes away from each cutoff the case configures, and row ages are whole hours (at
least one hour) or more, which keeps them at least ten minutes away from the rounding edges of
the dry-run table's Age column. A few seconds between building the dir and the reference
reading its clock therefore never changes a result.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

MIN = 60_000
HOUR = 60 * MIN
DAY = 24 * HOUR
DEFAULT_PRUNE_MS = 30 * DAY
MARGIN_MS = 10 * MIN
# The youngest row age used: "1h ago", 10.5 min past the 59.5 min edge of the Age cell.
FRESH = 70 * MIN

Json = Any
Combo = tuple[str, ...]


@dataclass(frozen=True)
class CaseSpec:
    """One fixture plus the flag combinations to run against it."""

    description: str
    builder: Callable[[StateBuilder], None]
    combos: tuple[Combo, ...]
    # Every cutoff (ms before now) the config implies: pruneAfter, reset-archive retention.
    cutoffs_ms: tuple[int, ...] = (DEFAULT_PRUNE_MS,)
    # Run this case in the live side-by-side test as well.
    live: bool = False


@dataclass
class StateBuilder:
    """Writes files into one state dir; every timestamp is relative to `now_ms`."""

    case_name: str
    root: Path
    now_ms: int
    rng: random.Random = field(init=False)
    row_ages_ms: list[int] = field(default_factory=list)
    file_ages_ms: list[int] = field(default_factory=list)

    def __post_init__(self) -> None:
        seed = int.from_bytes(hashlib.sha256(self.case_name.encode()).digest()[:8], "big")
        self.rng = random.Random(seed)

    # ---- identifiers -------------------------------------------------------------------
    def uuid4(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def uuid7(self) -> str:
        raw = self.rng.getrandbits(128)
        raw &= ~(0xF << 76)
        raw |= 0x7 << 76
        raw &= ~(0x3 << 62)
        raw |= 0x2 << 62
        return str(uuid.UUID(int=raw))

    # ---- time --------------------------------------------------------------------------
    def ts(self, age_ms: int) -> int:
        """An epoch-ms timestamp `age_ms` before now (negative ages are in the future)."""
        self.row_ages_ms.append(age_ms)
        return self.now_ms - age_ms

    def archive_stamp(self, age_ms: int) -> str:
        self.file_ages_ms.append(age_ms)
        moment = datetime.fromtimestamp((self.now_ms - age_ms) / 1000, tz=UTC)
        return moment.strftime("%Y-%m-%dT%H-%M-%S.") + f"{moment.microsecond // 1000:03d}Z"

    # ---- paths -------------------------------------------------------------------------
    def sessions_dir(self, agent: str = "main") -> Path:
        return self.root / "agents" / agent / "sessions"

    # ---- files -------------------------------------------------------------------------
    def write_file(self, path: Path, data: str | bytes, age_ms: int) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(data, str):
            path.write_text(data, encoding="utf-8")
        else:
            path.write_bytes(data)
        self.set_age(path, age_ms)
        return path

    def set_age(self, path: Path, age_ms: int) -> None:
        self.file_ages_ms.append(age_ms)
        when = (self.now_ms - age_ms) / 1000
        os.utime(path, (when, when))

    def config(self, cfg: Mapping[str, Json]) -> None:
        self.write_file(self.root / "openclaw.json", json.dumps(cfg, indent=2) + "\n", 5 * HOUR)

    def config_text(self, text: str) -> None:
        self.write_file(self.root / "openclaw.json", text, 5 * HOUR)

    def store(
        self,
        rows: Mapping[str, Json],
        *,
        agent: str = "main",
        path: Path | None = None,
        compact: bool = False,
    ) -> Path:
        target = path if path is not None else self.sessions_dir(agent) / "sessions.json"
        if compact:
            text = json.dumps(rows, separators=(",", ":"), ensure_ascii=False)
        else:
            text = json.dumps(rows, indent=2, ensure_ascii=False)
        return self.write_file(target, text, HOUR)

    def transcript_text(self, session_id: str, lines: int | None = None) -> str:
        count = lines if lines is not None else self.rng.randint(1, 4)
        out = [json.dumps({"type": "session", "id": session_id})]
        for index in range(count):
            words = " ".join(
                self.rng.choice(("alpha", "beta", "gamma", "delta", "omega", "kappa"))
                for _ in range(self.rng.randint(2, 8))
            )
            out.append(json.dumps({"type": "message", "n": index, "text": words}))
        return "\n".join(out) + "\n"

    def transcript(
        self, directory: Path, name: str, age_ms: int, *, lines: int | None = None
    ) -> Path:
        session_id = name.split(".")[0]
        return self.write_file(directory / name, self.transcript_text(session_id, lines), age_ms)

    def sidecars(self, directory: Path, base: str, age_ms: int) -> None:
        """The trajectory pointer and runtime sidecar of transcript `<base>.jsonl`."""
        pointer = json.dumps({"path": f"{base}.trajectory.jsonl"})
        self.write_file(directory / f"{base}.trajectory-path.json", pointer, age_ms)
        runtime = json.dumps({"type": "openclaw-trajectory", "session": base}) + "\n"
        self.write_file(directory / f"{base}.trajectory.jsonl", runtime, age_ms)

    def archive(self, directory: Path, base: str, reason: str, age_ms: int) -> Path:
        name = f"{base}.{reason}.{self.archive_stamp(age_ms)}"
        path = self.write_file(directory / name, self.transcript_text(base.split(".")[0], 1), 0)
        self.file_ages_ms.pop()  # the mtime of an archive plays no role; its name does
        self.set_age(path, age_ms)
        return path

    # ---- rows --------------------------------------------------------------------------
    def session(
        self,
        rows: dict[str, Json],
        key: str,
        age_ms: int | None,
        *,
        directory: Path | None = None,
        sid: str | None = None,
        transcript: bool = True,
        sidecars: bool = False,
        file_age_ms: int | None = None,
        **extra: Json,
    ) -> str:
        """Add row `key` (and by default its transcript, aged like the row); return its id."""
        session_id = sid if sid is not None else self.uuid4()
        row: dict[str, Json] = {"sessionId": session_id}
        if age_ms is not None:
            row["updatedAt"] = self.ts(age_ms)
        row.update(extra)
        rows[key] = row
        where = directory if directory is not None else self.sessions_dir()
        fage = file_age_ms if file_age_ms is not None else max(age_ms or HOUR, HOUR)
        if transcript and not (where / f"{session_id}.jsonl").exists():
            self.transcript(where, f"{session_id}.jsonl", fage)
        if sidecars:
            self.sidecars(where, session_id, fage)
        return session_id

    def notes(self, directory: Path, age_ms: int = 40 * DAY) -> None:
        self.write_file(directory / "notes.txt", "operator notes; not a session file\n", age_ms)


# =========================================================================================
# Case builders
# =========================================================================================


def _default_mixed(b: StateBuilder) -> None:
    sd = b.sessions_dir()
    rows: dict[str, Json] = {}
    shared = b.uuid4()
    b.session(rows, "agent:main:main", 2 * HOUR, systemSent=True)
    b.session(rows, "agent:main:shared2", FRESH, sid=shared)
    b.session(rows, "agent:main:telegram:direct:61", 3 * DAY)
    b.session(rows, "agent:main:explicit:notes", 5 * DAY, transcript=False)
    b.session(rows, "agent:main:hook:gmail:1", 31 * DAY, sidecars=True)
    b.session(rows, "agent:main:cron:job:run:r1", 40 * DAY)
    b.session(rows, "agent:main:telegram:group:-100", 45 * DAY)
    b.session(rows, "agent:main:shared1", 50 * DAY, sid=shared)
    b.session(rows, "agent:main:direct:peer-a", 6 * DAY, model="anthropic/claude-x")
    b.store(rows)
    b.transcript(sd, f"{b.uuid4()}.jsonl", 40 * DAY)  # old orphan: swept
    b.transcript(sd, f"{b.uuid4()}.jsonl", 2 * DAY)  # young orphan: kept
    b.notes(sd)
    gone = b.uuid4()
    b.archive(sd, f"{gone}.jsonl", "deleted", 40 * DAY)
    b.archive(sd, f"{b.uuid4()}.jsonl", "reset", 15 * DAY)
    b.archive(sd, f"{b.uuid4()}.jsonl", "bak", 40 * DAY)
    b.write_file(sd / "sessions.json.bak.123", "{}", 40 * DAY)


DM_ACTIVE = "agent:main:slack:direct:keepme"


def _dm_rows(b: StateBuilder) -> None:
    rows: dict[str, Json] = {}
    b.session(rows, "agent:main:main", FRESH)
    b.session(rows, "agent:main:direct:6101", 2 * HOUR)
    b.session(rows, "agent:main:telegram:direct:6101", 3 * HOUR, sidecars=True)
    b.session(rows, "agent:main:telegram:default:direct:6101", 4 * HOUR)
    b.session(rows, "agent:main:telegram::direct:malformed", 5 * HOUR)
    b.session(rows, "AGENT:Main:Telegram:Direct:X", 6 * HOUR)
    rows["agent:main:direct:nosid"] = {"updatedAt": b.ts(7 * HOUR)}
    b.session(rows, "agent:main:direct:123:thread:9", 8 * HOUR)
    b.session(rows, "agent:main:telegram:direct:123:topic:4", 9 * HOUR)
    b.session(rows, "agent:work:telegram:direct:123", 10 * HOUR)
    b.session(rows, DM_ACTIVE, 11 * HOUR)
    b.session(rows, "agent:main:telegram:group:1", 12 * HOUR)
    b.session(rows, "agent:main:whatsapp:biz:direct:+15551234", 13 * HOUR)
    b.session(rows, "agent:main:a:b:c:direct:x", 14 * HOUR)
    b.session(rows, "agent:main:dm:77", 15 * HOUR)
    b.session(rows, "telegram:direct:5", 16 * HOUR)
    b.session(rows, "agent:main:direct:old", 40 * DAY, chatType="direct")
    b.session(rows, "agent:main:direct:nofile", 20 * HOUR, transcript=False)
    b.store(rows)


def _dm_case(scope: str | None) -> Callable[[StateBuilder], None]:
    def build(b: StateBuilder) -> None:
        if scope is not None:
            b.config({"session": {"dmScope": scope}})
        _dm_rows(b)

    return build


def _multi_agent(b: StateBuilder) -> None:
    b.config(
        {
            "agents": {
                "defaults": {"model": {"primary": "openai/def-model"}},
                "list": [
                    {"id": "work", "model": {"primary": "anthropic/work-model"}},
                    {"id": "Main", "default": True},
                    {"id": "ops", "model": "openai/ops-model"},
                ],
            }
        }
    )
    work: dict[str, Json] = {}
    wd = b.sessions_dir("work")
    b.session(work, "agent:work:main", 2 * HOUR, directory=wd)
    b.session(work, "agent:work:direct:42", 3 * HOUR, directory=wd)
    b.session(work, "agent:work:slack:direct:U1", 4 * HOUR, directory=wd)
    b.session(work, "agent:work:explicit:gone", 5 * HOUR, directory=wd, transcript=False)
    b.session(work, "agent:work:cron:nightly", 35 * DAY, directory=wd, sidecars=True)
    b.session(work, "agent:main:direct:crosstalk", 6 * HOUR, directory=wd)
    b.store(work, agent="work")
    b.transcript(wd, f"{b.uuid4()}.jsonl", 45 * DAY)
    main: dict[str, Json] = {}
    md = b.sessions_dir("main")
    b.session(main, "agent:main:main", FRESH)
    b.session(main, "agent:main:direct:7", 9 * HOUR)
    b.session(main, "agent:main:discord:channel:55", 60 * DAY)
    b.session(main, "agent:main:hook:stale", 32 * DAY)
    b.store(main)
    b.notes(md)
    ghost: dict[str, Json] = {}
    gd = b.sessions_dir("ghost")
    b.session(ghost, "agent:ghost:main", 90 * DAY, directory=gd)
    b.store(ghost, agent="ghost")
    b.transcript(gd, f"{b.uuid4()}.jsonl", 90 * DAY)


def _uppercase_ids(b: StateBuilder) -> None:
    b.config({"agents": {"list": [{"id": "Sales", "default": True}, {"id": "SUPPORT"}]}})
    sales: dict[str, Json] = {}
    sd = b.sessions_dir("sales")
    b.session(sales, "agent:sales:main", FRESH, directory=sd)
    b.session(sales, "AGENT:SALES:DIRECT:1", 2 * HOUR, directory=sd)
    b.session(sales, "agent:SALES:slack:direct:U1", 3 * HOUR, directory=sd)
    b.session(sales, "Agent:Sales:Telegram:Group:9", 40 * DAY, directory=sd)
    b.session(sales, "AGENT:SUPPORT:DIRECT:2", 4 * HOUR, directory=sd)
    b.session(sales, "AGENT:SALES:EXPLICIT:FOO", 40 * DAY, directory=sd)
    b.session(sales, "agent:sales:Explicit:Up", 41 * DAY, directory=sd)
    b.session(sales, "agent:sales:explicit:foo", 42 * DAY, directory=sd)
    b.store(sales, agent="sales")
    support: dict[str, Json] = {}
    pd = b.sessions_dir("support")
    b.session(support, "agent:support:main", 5 * HOUR, directory=pd)
    b.session(support, "Agent:Support:Direct:9", 6 * HOUR, directory=pd)
    b.session(support, "agent:support:CRON:daily", 33 * DAY, directory=pd)
    b.store(support, agent="support")


def _key_families(b: StateBuilder) -> None:
    b.config({"session": {"maintenance": {"pruneAfter": "1d"}}})
    rows: dict[str, Json] = {}
    old = 10 * DAY
    b.session(rows, "agent:main:main", old)
    b.session(rows, "global", old)
    b.session(rows, "agent:main:direct:x", old)
    b.session(rows, "agent:main:explicit:foo", old)
    b.session(rows, "agent:main:dashboard:abc", old)
    b.session(rows, "agent:main:subagent:w", old, chatType="group")
    b.session(rows, "agent:main:cron:job:run:1", old, origin={"chatType": "group"})
    b.session(rows, "agent:main:main:heartbeat", old, chatType="group")
    b.session(rows, "agent:main:hook:x", old, chatType="group")
    b.session(rows, "agent:main:node:x", old, chatType="channel")
    b.session(rows, "agent:main:acp:abc", old, chatType="group")
    b.session(rows, "acp:bare", old, chatType="group")
    b.session(rows, "subagent:bare", old, chatType="group")
    b.session(rows, "heartbeat", old, chatType="group")
    b.session(rows, "cron:bare", old, chatType="group")
    b.session(rows, "cron:plain", old)
    b.session(rows, "agent:main:telegram:group:-100", old)
    b.session(rows, "AGENT:MAIN:TELEGRAM:GROUP:X", old)
    b.session(rows, "telegram:group:123", old)
    b.session(rows, "telegram:direct:5", old)
    b.session(rows, "agent:main:custom:channel:room-one:with:colon", old)
    b.session(rows, "agent:main:main:thread:5", old)
    b.session(rows, "agent:main:x:THREAD:  ", old)
    b.session(rows, "agent:main:discord:channel:123:thread:456", old)
    b.session(rows, "agent:main:telegram:direct:1:topic:7", old)
    b.session(rows, "agent:main:telegram:dm:5:topic:3", old)
    b.session(rows, "agent:main:opaque:topic:om:sender:ou", old)
    b.session(rows, "agent:main:opaque", old, chatType="channel")
    b.session(rows, "agent:main:slackish", old, chatType="Thread")
    b.session(rows, "agent:main:dm-ish", old, origin={"chatType": "direct"})
    b.session(rows, "agent:main:noupdated", None)
    b.session(rows, "agent:main:future", -DAY)
    b.session(rows, "agent:main:fresh", 2 * HOUR)
    b.session(rows, "Agent:Main:Mixed:Case", 3 * HOUR)
    b.store(rows)


def _fix_missing(b: StateBuilder) -> None:
    sd = b.sessions_dir()
    rows: dict[str, Json] = {}
    b.session(rows, "agent:main:present", FRESH)
    b.session(rows, "agent:main:missing", 2 * HOUR, transcript=False)
    rows["agent:main:nosid"] = {"updatedAt": b.ts(3 * HOUR)}
    topic_ok = b.uuid4()
    b.session(
        rows,
        "agent:main:telegram:group:5:topic:7",
        4 * HOUR,
        sid=topic_ok,
        transcript=False,
        sessionFile=f"{topic_ok}-topic-7.jsonl",
    )
    b.transcript(sd, f"{topic_ok}-topic-7.jsonl", 4 * HOUR)
    topic_gone = b.uuid4()
    b.session(
        rows,
        "agent:main:telegram:group:6:topic:8",
        5 * HOUR,
        sid=topic_gone,
        transcript=False,
        sessionFile=f"{topic_gone}-topic-8.jsonl",
    )
    dir_sid = b.session(rows, "agent:main:dir-transcript", 6 * HOUR, transcript=False)
    (sd / f"{dir_sid}.jsonl").mkdir(parents=True)
    empty_sid = b.session(rows, "agent:main:empty-transcript", 7 * HOUR, transcript=False)
    b.write_file(sd / f"{empty_sid}.jsonl", "", 7 * HOUR)
    abs_sid = b.uuid4()
    b.session(
        rows,
        "agent:main:absolute",
        8 * HOUR,
        sid=abs_sid,
        transcript=False,
        sessionFile=str(sd / f"custom-{abs_sid}.jsonl"),
    )
    b.transcript(sd, f"custom-{abs_sid}.jsonl", 8 * HOUR)
    b.session(rows, "agent:main:outside-kept", 9 * HOUR, sessionFile="/nonexistent/elsewhere.jsonl")
    b.session(
        rows,
        "agent:main:outside-gone",
        10 * HOUR,
        transcript=False,
        sessionFile="/nonexistent/elsewhere2.jsonl",
    )
    b.session(rows, "agent:main:escape", 11 * HOUR, sessionFile="sub/../../escape.jsonl")
    b.write_file(b.root / "agents" / "main" / "escape.jsonl", "{}\n", 11 * HOUR)
    b.session(rows, "agent:main:old-missing", 40 * DAY, transcript=False)
    b.session(rows, "agent:main:direct:missing", 12 * HOUR, transcript=False)
    b.session(rows, "agent:main:direct:present", 13 * HOUR)
    b.session(rows, "agent:main:old-present", 41 * DAY)
    b.store(rows)


def _fix_missing_stale_file(b: StateBuilder) -> None:
    """Rows whose sessionFile is gone while <sessionId>.jsonl exists (compat #18)."""
    sd = b.sessions_dir()
    rows: dict[str, Json] = {}
    b.session(rows, "agent:main:main", FRESH)
    topic = b.uuid4()
    b.session(
        rows, "agent:main:opaque:topic:3", 2 * HOUR, sid=topic, sessionFile=f"{topic}-topic-3.jsonl"
    )
    custom = b.uuid4()
    b.session(rows, "agent:main:custom", 3 * HOUR, sid=custom, sessionFile="renamed-away.jsonl")
    both = b.uuid4()
    b.session(
        rows,
        "agent:main:both-gone",
        4 * HOUR,
        sid=both,
        transcript=False,
        sessionFile=f"{both}-topic-1.jsonl",
    )
    b.session(rows, "agent:main:old", 40 * DAY)
    b.store(rows)
    b.notes(sd)


def _invalid_session_id(b: StateBuilder) -> None:
    rows: dict[str, Json] = {}
    b.session(rows, "agent:main:main", 2 * HOUR, sid="agent:main:main", transcript=False)
    b.session(rows, "agent:main:ok", 3 * HOUR)
    b.session(rows, "agent:main:old", 40 * DAY)
    b.store(rows)


def _shared_session_id(b: StateBuilder) -> None:
    rows: dict[str, Json] = {}
    s1, s2, s3, s4 = b.uuid4(), b.uuid4(), b.uuid4(), b.uuid4()
    b.session(rows, "agent:main:a-old", 40 * DAY, sid=s1, sidecars=True)
    b.session(rows, "agent:main:b-new", 2 * HOUR, sid=s1)
    b.session(rows, "agent:main:c-old", 41 * DAY, sid=s2, sidecars=True)
    b.session(rows, "agent:main:d-old", 45 * DAY, sid=s2)
    b.session(rows, "agent:main:direct:e", 3 * HOUR, sid=s3, sidecars=True)
    b.session(rows, "agent:main:f-keep", 4 * HOUR, sid=s3)
    b.session(rows, "agent:main:direct:g", 5 * HOUR, sid=s4)
    b.session(rows, "agent:main:h-old", 50 * DAY, sid=s4, sidecars=True)
    b.session(rows, "agent:main:main", FRESH)
    b.store(rows)


def _active_key(b: StateBuilder) -> None:
    b.config({"session": {"maintenance": {"pruneAfter": "7d", "maxEntries": 3}}})
    rows: dict[str, Json] = {}
    b.session(rows, "agent:main:explicit:foo", 40 * DAY)
    b.session(rows, "agent:main:Explicit:Up", 41 * DAY)
    for hours in (1, 2, 3, 4):
        b.session(rows, f"agent:main:recent{hours}", hours * HOUR + 10 * MIN)
    b.session(rows, "agent:main:old", 20 * DAY, sidecars=True)
    b.session(rows, "agent:main:telegram:group:77", 5 * HOUR)
    b.store(rows)


def _cap_tight(b: StateBuilder) -> None:
    b.config({"session": {"maintenance": {"maxEntries": 4}}})
    rows: dict[str, Json] = {}
    b.session(rows, "agent:main:telegram:group:1", 2 * HOUR)
    b.session(rows, "agent:main:n1", FRESH)
    b.session(rows, "agent:main:n3", 3 * HOUR)
    b.session(rows, "agent:main:n4", 4 * HOUR)
    tie = 5 * HOUR
    b.session(rows, "agent:main:tie-a", tie)
    b.session(rows, "agent:main:tie-b", tie)
    b.session(rows, "agent:main:noupdated", None)
    b.session(rows, "agent:work:other-agent", 6 * HOUR)
    b.session(rows, "agent:main:str-updated", None, updatedAt=str(b.ts(7 * HOUR)))
    b.session(rows, "agent:main:older", 20 * DAY, sidecars=True)
    b.store(rows)


def _budget_rows(
    b: StateBuilder, *, group: bool = True, old_archive: bool = False, foreign: bool = False
) -> None:
    sd = b.sessions_dir()
    rows: dict[str, Json] = {}
    b.session(rows, "agent:main:oldest", 9 * DAY)
    b.session(rows, "agent:main:older", 8 * DAY, sidecars=True)
    b.session(rows, "agent:main:old", 7 * DAY)
    b.session(rows, "agent:main:mid", 6 * DAY)
    if group:
        b.session(rows, "agent:main:telegram:group:9", 10 * DAY)
    b.session(rows, "agent:main:newer", 2 * DAY)
    b.session(rows, "agent:main:newest", FRESH)
    rows["agent:main:nosid"] = {"updatedAt": b.ts(3 * HOUR)}
    b.store(rows)
    if old_archive:  # expired by an apply before the budget runs (compat #8)
        b.archive(sd, f"{b.uuid4()}.jsonl", "deleted", 3 * 365 * DAY)
    b.archive(sd, f"{b.uuid4()}.jsonl", "deleted", 2 * DAY)
    b.transcript(sd, f"{b.uuid4()}.checkpoint.{b.uuid4()}.jsonl", 3 * DAY)
    b.transcript(sd, f"{b.uuid4()}.jsonl", 4 * DAY)
    if foreign:  # files no maintenance rule may delete (compat #17)
        b.notes(sd, 100 * HOUR)
        b.write_file(sd / f"{b.uuid4()}.jsonl.migrated", "x" * 300 + "\n", 5 * DAY)


BUDGET_2600 = {"maxDiskBytes": 2600, "highWaterBytes": "2kb"}


def _disk_budget(b: StateBuilder) -> None:
    b.config({"session": {"maintenance": BUDGET_2600}})
    _budget_rows(b)


def _disk_budget_old_archive(b: StateBuilder) -> None:
    b.config({"session": {"maintenance": BUDGET_2600}})
    _budget_rows(b, old_archive=True)


def _disk_budget_foreign_files(b: StateBuilder) -> None:
    b.config({"session": {"maintenance": BUDGET_2600}})
    _budget_rows(b, foreign=True)


def _disk_budget_units(b: StateBuilder) -> None:
    b.config({"session": {"maintenance": {"maxDiskBytes": "1.5KB"}}})
    _budget_rows(b)


def _disk_budget_zero(b: StateBuilder) -> None:
    b.config({"session": {"maintenance": {"maxDiskBytes": "0"}}})
    _budget_rows(b)


def _disk_budget_warn(b: StateBuilder) -> None:
    b.config(
        {"session": {"maintenance": {"mode": "warn", "maxDiskBytes": "900", "pruneAfter": "5d"}}}
    )
    _budget_rows(b, group=False, old_archive=True)


def _prune_case(setting: Mapping[str, Json], ages: Sequence[int]) -> Callable[[StateBuilder], None]:
    def build(b: StateBuilder) -> None:
        b.config({"session": {"maintenance": dict(setting)}})
        sd = b.sessions_dir()
        rows: dict[str, Json] = {}
        for index, age in enumerate(ages):
            b.session(rows, f"agent:main:row{index}", age, sidecars=index % 2 == 1)
        b.store(rows)
        for age in ages:
            b.transcript(sd, f"{b.uuid4()}.jsonl", age)
            b.transcript(sd, f"{b.uuid4()}.checkpoint.{b.uuid4()}.jsonl", age)

    return build


def _warn_mode(b: StateBuilder) -> None:
    b.config({"session": {"maintenance": {"mode": "warn", "pruneAfter": "1d", "maxEntries": 3}}})
    sd = b.sessions_dir()
    rows: dict[str, Json] = {}
    b.session(rows, "agent:main:main", FRESH)
    b.session(rows, "agent:main:recent", 2 * HOUR)
    b.session(rows, "agent:main:direct:9", 3 * HOUR, sidecars=True)
    b.session(rows, "agent:main:missing", 4 * HOUR, transcript=False)
    b.session(rows, "agent:main:old1", 3 * DAY, sidecars=True)
    b.session(rows, "agent:main:old2", 4 * DAY)
    b.session(rows, "agent:main:middle", 5 * HOUR)
    b.store(rows)
    b.transcript(sd, f"{b.uuid4()}.jsonl", 40 * DAY)
    b.archive(sd, f"{b.uuid4()}.jsonl", "deleted", 40 * DAY)


def _shared_store(b: StateBuilder) -> None:
    b.config(
        {
            "session": {"store": "~/shared/sessions.json"},
            "agents": {"list": [{"id": "work"}, {"id": "main", "default": True}]},
        }
    )
    sd = b.root / "shared"
    rows: dict[str, Json] = {}
    b.session(rows, "agent:main:main", FRESH, directory=sd)
    b.session(rows, "agent:work:main", 2 * HOUR, directory=sd)
    b.session(rows, "agent:main:direct:1", 3 * HOUR, directory=sd)
    b.session(rows, "agent:work:direct:2", 4 * HOUR, directory=sd, sidecars=True)
    b.session(rows, "agent:work:telegram:direct:3", 5 * HOUR, directory=sd)
    b.session(rows, "agent:main:old", 40 * DAY, directory=sd)
    b.session(rows, "agent:work:old", 41 * DAY, directory=sd)
    b.store(rows, path=sd / "sessions.json")
    b.transcript(sd, f"{b.uuid4()}.jsonl", 50 * DAY)
    # The per-agent default dirs exist too, and cleanup must leave them alone.
    stray: dict[str, Json] = {}
    b.session(stray, "agent:main:old", 60 * DAY)
    b.store(stray)


def _store_template(b: StateBuilder) -> None:
    b.config(
        {
            "session": {"store": "~/stores/{agentId}/store.json"},
            "agents": {"list": [{"id": "alpha", "default": True}, {"id": "beta"}]},
        }
    )
    for agent in ("alpha", "beta"):
        sd = b.root / "stores" / agent
        rows: dict[str, Json] = {}
        b.session(rows, f"agent:{agent}:main", FRESH, directory=sd)
        b.session(rows, f"agent:{agent}:direct:1", 2 * HOUR, directory=sd)
        b.session(rows, f"agent:{agent}:old", 40 * DAY, directory=sd, sidecars=True)
        b.store(rows, path=sd / "store.json")
        b.transcript(sd, f"{b.uuid4()}.jsonl", 50 * DAY)


def _store_template_flat(b: StateBuilder) -> None:
    b.config(
        {
            "session": {"store": "~/flat/{agentId}.json"},
            "agents": {"list": [{"id": "alpha", "default": True}, {"id": "beta"}]},
        }
    )
    sd = b.root / "flat"
    for agent in ("alpha", "beta"):
        rows: dict[str, Json] = {}
        b.session(rows, f"agent:{agent}:main", FRESH, directory=sd)
        b.session(rows, f"agent:{agent}:quiet", 3 * DAY, directory=sd, file_age_ms=35 * DAY)
        b.session(rows, f"agent:{agent}:old", 40 * DAY, directory=sd)
        b.store(rows, path=sd / f"{agent}.json")


def _compact_store(b: StateBuilder) -> None:
    rows: dict[str, Json] = {}
    b.session(rows, "agent:main:main", FRESH, provider="Telegram", lastProvider="telegram")
    b.session(rows, "agent:main:room", 2 * HOUR, room="#general", channel="slack")
    b.session(rows, "agent:main:dup-room", 3 * HOUR, room="#x", groupChannel="#y")
    b.session(rows, "agent:main:model", 4 * HOUR, model="  ", modelProvider=" openai ")
    b.session(
        rows,
        "agent:main:skills",
        5 * HOUR,
        skillsSnapshot={"prompt": "p", "resolvedSkills": [{"name": "a"}]},
        label="héllo ✓ \u00e9",
    )
    b.session(
        rows,
        "agent:main:delivery",
        6 * HOUR,
        lastChannel="telegram",
        lastTo="123",
        lastThreadId=7,
        deliveryContext={"channel": "telegram", "to": "123"},
    )
    tie = 7 * HOUR
    b.session(rows, "zeta", tie)
    b.session(rows, "42", tie)
    b.session(rows, "7", tie)
    b.session(rows, "agent:main:floaty", 8 * HOUR, cost=1.5, tokens=1e3, ratio=0.1)
    b.store(rows, compact=True)


def _integer_keys_rewrite(b: StateBuilder) -> None:
    rows: dict[str, Json] = {}
    b.session(rows, "zeta", 2 * HOUR)
    b.session(rows, "10", 3 * HOUR)
    b.session(rows, "agent:main:legacy", 4 * HOUR, provider="Slack", room="#ops")
    b.session(rows, "2", 5 * HOUR)
    b.session(rows, "agent:main:old", 40 * DAY)
    b.session(rows, "4294967295", 6 * HOUR)  # one past the array-index range: a string key
    b.session(rows, "01", 7 * HOUR)  # not canonical: a string key
    b.session(rows, "agent:main:main", FRESH)
    b.store(rows)


def _null_row(b: StateBuilder) -> None:
    rows: dict[str, Json] = {}
    b.session(rows, "agent:main:main", FRESH)
    rows["agent:main:nullrow"] = None
    b.session(rows, "agent:main:old", 40 * DAY)
    b.store(rows)


def _empty_store(b: StateBuilder) -> None:
    sd = b.sessions_dir()
    b.write_file(sd / "sessions.json", "{}", HOUR)
    b.transcript(sd, f"{b.uuid4()}.jsonl", 40 * DAY)


def _missing_store(b: StateBuilder) -> None:
    b.config({"session": {"maintenance": {"pruneAfter": "10d"}}})


def _corrupt_store(b: StateBuilder) -> None:
    sd = b.sessions_dir()
    sid = b.uuid4()
    b.write_file(sd / "sessions.json", '{"agent:main:main": {"sessionId": "' + sid, HOUR)
    b.transcript(sd, f"{sid}.jsonl", 2 * HOUR)
    b.transcript(sd, f"{b.uuid4()}.jsonl", 40 * DAY)


def _bom_store(b: StateBuilder) -> None:
    sd = b.sessions_dir()
    rows: dict[str, Json] = {}
    b.session(rows, "agent:main:main", FRESH)
    b.session(rows, "agent:main:old", 40 * DAY)
    text = "\ufeff" + json.dumps(rows, indent=2)
    b.write_file(sd / "sessions.json", text, HOUR)


def _string_row(b: StateBuilder) -> None:
    rows: dict[str, Json] = {}
    b.session(rows, "agent:main:main", FRESH)
    rows["agent:main:str"] = "str"
    b.session(rows, "agent:main:direct:5", 2 * HOUR)
    b.session(rows, "agent:main:old", 40 * DAY)
    rows["agent:main:number"] = 17
    b.store(rows)


def _artifact_sweep(b: StateBuilder) -> None:
    sd = b.sessions_dir()
    rows: dict[str, Json] = {}
    live = b.uuid4()
    rel_cp = f"{live}.checkpoint.{b.uuid4()}.jsonl"
    abs_cp = f"{live}.checkpoint.{b.uuid4()}.jsonl"
    b.session(
        rows,
        "agent:main:live",
        2 * HOUR,
        sid=live,
        sidecars=True,
        file_age_ms=40 * DAY,
        compactionCheckpoints=[
            {"preCompaction": {"sessionFile": rel_cp}},
            {"preCompaction": {"sessionFile": str(sd / abs_cp)}},
        ],
    )
    b.transcript(sd, rel_cp, 40 * DAY)
    b.transcript(sd, abs_cp, 40 * DAY)
    b.session(rows, "agent:main:old", 40 * DAY, sidecars=True)
    b.session(rows, "agent:main:quiet", 3 * HOUR, file_age_ms=45 * DAY)
    b.store(rows)
    orphan = b.uuid4()
    b.transcript(sd, f"{orphan}.checkpoint.{b.uuid4()}.jsonl", 40 * DAY)
    b.transcript(sd, f"{orphan}.checkpoint.{b.uuid7()}.jsonl", 40 * DAY)
    b.transcript(sd, f"{b.uuid4()}.checkpoint.{b.uuid4()}.jsonl", 5 * DAY)
    b.sidecars(sd, b.uuid4(), 40 * DAY)
    b.transcript(sd, f"{b.uuid4()}.jsonl", 40 * DAY)
    b.transcript(sd, f"{b.uuid4()}.jsonl", 10 * DAY)
    b.write_file(sd / "empty-orphan.jsonl", "", 40 * DAY)
    b.notes(sd)
    b.write_file(sd / "readme.md", "# notes\n", 40 * DAY)
    b.archive(sd, f"{b.uuid4()}.jsonl", "bak", 40 * DAY)
    b.write_file(sd / "sessions.json.bak.123", "{}", 40 * DAY)
    b.archive(sd, f"{b.uuid4()}.jsonl", "reset", 15 * DAY)
    b.archive(sd, f"{b.uuid4()}.jsonl", "reset", 40 * DAY)
    b.archive(sd, f"{b.uuid4()}.jsonl", "deleted", 40 * DAY)
    b.archive(sd, f"{b.uuid4()}.jsonl", "deleted", 10 * DAY)
    b.transcript(sd / "sub", f"{b.uuid4()}.jsonl", 40 * DAY)


JSON5_CONFIG = """// sessiond differential fixture: JSON5 syntax on purpose
{
  session: {
    dmScope: 'main', // single quotes
    maintenance: {
      pruneAfter: '2d',
      maxEntries: 4,
      mode: "enforce",
    },
  },
  /* block comment */
  agents: { list: [ { id: 'main', default: true, }, ], },
}
"""


def _json5_config(b: StateBuilder) -> None:
    b.config_text(JSON5_CONFIG)
    rows: dict[str, Json] = {}
    b.session(rows, "agent:main:main", FRESH)
    b.session(rows, "agent:main:direct:1", 2 * HOUR)
    for hours in (3, 4, 5, 6, 7):
        b.session(rows, f"agent:main:r{hours}", hours * HOUR)
    b.session(rows, "agent:main:stale", 3 * DAY)
    b.store(rows)


def _invalid_config(b: StateBuilder) -> None:
    b.config({"session": {"maintenance": {"pruneAfter": "1w"}}})
    rows: dict[str, Json] = {}
    b.session(rows, "agent:main:old", 40 * DAY)
    b.store(rows)


def _invalid_max_entries(b: StateBuilder) -> None:
    b.config({"session": {"maintenance": {"maxEntries": 0}}})
    rows: dict[str, Json] = {}
    b.session(rows, "agent:main:old", 40 * DAY)
    b.store(rows)


def _topic_rows(b: StateBuilder) -> None:
    sd = b.sessions_dir()
    rows: dict[str, Json] = {}
    t1 = b.uuid4()
    b.session(
        rows,
        "agent:main:opaque:topic:old",
        40 * DAY,
        sid=t1,
        sessionFile=f"{t1}-topic-7.jsonl",
        sidecars=True,
    )
    b.transcript(sd, f"{t1}-topic-7.jsonl", 40 * DAY)
    t2 = b.uuid4()
    b.session(
        rows, "agent:main:opaque:topic:new", 2 * HOUR, sid=t2, sessionFile=f"{t2}-topic-9.jsonl"
    )
    b.transcript(sd, f"{t2}-topic-9.jsonl", 2 * HOUR)
    t3 = b.uuid4()
    b.session(
        rows,
        "agent:main:telegram:group:-100:topic:7",
        40 * DAY,
        sid=t3,
        sessionFile=f"{t3}-topic-7.jsonl",
    )
    b.transcript(sd, f"{t3}-topic-7.jsonl", 40 * DAY)
    t4, other = b.uuid4(), b.uuid4()
    b.session(rows, "agent:main:stale-file", 42 * DAY, sid=t4, sessionFile=f"{other}-topic-2.jsonl")
    b.transcript(sd, f"{other}-topic-2.jsonl", 42 * DAY)
    t5 = b.uuid4()
    b.session(
        rows,
        "agent:main:topic-missing",
        3 * HOUR,
        sid=t5,
        transcript=False,
        sessionFile=f"{t5}-topic-{b.rng.randint(10, 99)}.jsonl",
    )
    t6 = b.uuid4()
    b.session(
        rows,
        "agent:main:encoded-topic",
        44 * DAY,
        sid=t6,
        transcript=False,
        sessionFile=f"{t6}-topic-a%2Fb%20c.jsonl",
    )
    b.transcript(sd, f"{t6}-topic-a%2Fb%20c.jsonl", 44 * DAY)
    b.store(rows)


def _display_cells(b: StateBuilder) -> None:
    b.config(
        {
            "agents": {
                "defaults": {"model": {"primary": "openai/def-model"}},
                "list": [
                    {"id": "main", "default": True},
                    {"id": "work", "model": {"primary": "anthropic/work-model"}},
                ],
            }
        }
    )
    rows: dict[str, Json] = {}
    b.session(
        rows,
        "agent:main:override",
        FRESH,
        modelOverride="openrouter/foo/bar",
        providerOverride="openrouter",
    )
    b.session(rows, "agent:main:model-ref", 5 * HOUR, model="anthropic/claude-x")
    b.session(rows, "agent:main:long-model", 47 * HOUR, model="claude-sonnet-4-6")
    b.session(
        rows,
        "agent:main:model-provider",
        25 * HOUR,
        model="gpt-4o",
        modelProvider="openai",
    )
    b.session(rows, "agent:work:uses-agent-model", 3 * DAY)
    b.session(rows, "agent:Work:raw-compare", 4 * DAY)
    b.session(
        rows,
        "agent:main:all-flags",
        6 * HOUR,
        thinkingLevel="high",
        verboseLevel="on",
        traceLevel="debug",
        reasoningLevel="stream",
        elevatedLevel="ask",
        responseUsage="tokens",
        groupActivation="mention",
        systemSent=True,
        abortedLastRun=True,
    )
    b.session(rows, "agent:main:some-flags", 7 * HOUR, thinkingLevel="low", abortedLastRun=False)
    b.session(rows, "agent:main:cron:job:run:r1", 8 * HOUR)
    b.session(rows, "agent:main:telegram:group:-1001234567890", 9 * HOUR)
    b.session(rows, "agent:main:emo:" + "\U0001f389" * 6 + "x", 10 * HOUR)
    b.session(rows, "agent:main:str-age", None, updatedAt=str(b.ts(2 * DAY)))
    b.session(rows, "agent:main:future", -2 * HOUR)
    b.session(rows, "agent:main:no-age", None)
    b.session(rows, "agent:main:ancient", 400 * DAY)
    rows["agent:main:no-sid"] = {"updatedAt": b.ts(11 * HOUR), "model": "x/y"}
    b.store(rows)


def _reset_retention(value: Json) -> Callable[[StateBuilder], None]:
    def build(b: StateBuilder) -> None:
        b.config({"session": {"maintenance": {"resetArchiveRetention": value}}})
        sd = b.sessions_dir()
        rows: dict[str, Json] = {}
        b.session(rows, "agent:main:main", FRESH)
        b.store(rows)
        for age in (5 * DAY, 15 * DAY, 40 * DAY):
            b.archive(sd, f"{b.uuid4()}.jsonl", "reset", age)
        for age in (20 * DAY, 40 * DAY):
            b.archive(sd, f"{b.uuid4()}.jsonl", "deleted", age)
        b.transcript(sd, f"{b.uuid4()}.jsonl", 12 * DAY)

    return build


def _reset_retention_prune(b: StateBuilder) -> None:
    _reset_retention(False)(b)
    rows = json.loads((b.sessions_dir() / "sessions.json").read_text(encoding="utf-8"))
    b.session(rows, "agent:main:old", 40 * DAY)
    b.store(rows)


# =========================================================================================
# The case table
# =========================================================================================

J = "--json"
DRY = "--dry-run"
FM = "--fix-missing"
FD = "--fix-dm-scope"
ALL = "--all-agents"


def _c(*flags: str) -> Combo:
    return tuple(flags)


_DM_COMBOS = (_c(DRY, FD, J), _c(FD, J), _c(DRY, FD))

CASES: dict[str, CaseSpec] = {
    "default_mixed": CaseSpec(
        "No config file; main agent with every stage represented (spec §6.2 example shape).",
        _default_mixed,
        (
            _c(DRY, J),
            _c(DRY),
            _c(J),
            _c(),
            _c(DRY, FM, FD, J),
            _c(FM, FD, J),
            _c(DRY, FM, FD),
            _c(FM, FD),
        ),
        live=True,
    ),
    "dm_scope_main": CaseSpec(
        "dmScope=main: every direct-key shape, malformed and uppercase keys, active key.",
        _dm_case("main"),
        (
            _c(DRY, FD, J),
            _c(FD, J),
            _c(FD, "--active-key", DM_ACTIVE, J),
            _c(DRY, FD, "--active-key", DM_ACTIVE),
            _c(FD),
            _c(DRY, J),
            _c(DRY, FD, "--active-key", "AGENT:MAIN:DIRECT:6101", J),
        ),
        live=True,
    ),
    "dm_scope_unset": CaseSpec(
        "dmScope unset (defaults to main) with the same rows.",
        _dm_case(None),
        (_c(DRY, FD, J), _c(FD, FM, J)),
    ),
    "dm_scope_per_peer": CaseSpec(
        "dmScope=per-peer: --fix-dm-scope retires nothing.",
        _dm_case("per-peer"),
        _DM_COMBOS,
    ),
    "dm_scope_per_channel_peer": CaseSpec(
        "dmScope=per-channel-peer: --fix-dm-scope retires nothing.",
        _dm_case("per-channel-peer"),
        _DM_COMBOS,
    ),
    "dm_scope_per_account_channel_peer": CaseSpec(
        "dmScope=per-account-channel-peer: --fix-dm-scope retires nothing.",
        _dm_case("per-account-channel-peer"),
        _DM_COMBOS,
    ),
    "multi_agent": CaseSpec(
        "agents.list [work, Main(default), ops]; ops has no store; an unconfigured ghost dir.",
        _multi_agent,
        (
            _c(ALL, DRY, J),
            _c(ALL, DRY),
            _c(ALL, FD, J),
            _c(ALL),
            _c("--agent", "WORK", DRY, FD, J),
            _c("--agent", "work", FD, FM),
            _c(DRY, J),
            _c("--agent", "nope", DRY, J),
            _c("--agent", "work", ALL, J),
        ),
        live=True,
    ),
    "uppercase_ids": CaseSpec(
        "Uppercase agent ids in agents.list and uppercase session keys.",
        _uppercase_ids,
        (
            _c(DRY, FD, J),
            _c("--agent", "SUPPORT", FD, J),
            _c(ALL, FD, "--active-key", "AGENT:SALES:EXPLICIT:FOO", J),
            _c(DRY, "--active-key", "agent:sales:Explicit:Up"),
        ),
    ),
    "key_families": CaseSpec(
        "pruneAfter 1d, every key family 10 days old: synthetic, protected, legacy, odd shapes.",
        _key_families,
        (_c(DRY, J), _c(DRY), _c(J), _c(DRY, FD, J)),
        cutoffs_ms=(DAY,),
    ),
    "fix_missing": CaseSpec(
        "--fix-missing: present, missing, topic, directory, empty, absolute and escaping files.",
        _fix_missing,
        (
            _c(DRY, FM, J),
            _c(FM, J),
            _c(FM),
            _c(DRY, J),
            _c(DRY, FM, FD),
            _c(FM, FD, J),
        ),
    ),
    "fix_missing_stale_file": CaseSpec(
        "--fix-missing where sessionFile is gone but <sessionId>.jsonl exists.",
        _fix_missing_stale_file,
        (_c(DRY, FM, J), _c(FM, J), _c(DRY, FM)),
    ),
    "invalid_session_id": CaseSpec(
        "A sessionId that fails validation: harmless unless --fix-missing (error, exit 1).",
        _invalid_session_id,
        (_c(DRY, J), _c(DRY, FM, J), _c(FM), _c(J), _c(DRY)),
    ),
    "shared_session_id": CaseSpec(
        "Rows sharing sessionIds: transcripts archived only when the last reference goes.",
        _shared_session_id,
        (_c(DRY, J), _c(J), _c(FD, J), _c(DRY, FD)),
    ),
    "active_key": CaseSpec(
        "maxEntries 3 / pruneAfter 7d with --active-key in several spellings.",
        _active_key,
        (
            _c(DRY, "--active-key", "AGENT:MAIN:EXPLICIT:FOO", J),
            _c("--active-key", "AGENT:MAIN:EXPLICIT:FOO", J),
            _c(DRY, "--active-key", "agent:main:Explicit:Up", J),
            _c(DRY, "--active-key", "agent:main:recent4"),
            _c("--active-key", "agent:main:recent4"),
        ),
        cutoffs_ms=(7 * DAY,),
    ),
    "cap_tight": CaseSpec(
        "maxEntries 4 with a protected row, ties, rows without updatedAt, string updatedAt.",
        _cap_tight,
        (_c(DRY, J), _c(DRY), _c(J), _c()),
    ),
    "disk_budget": CaseSpec(
        "maxDiskBytes 2600 with highWaterBytes '2kb'; archive, checkpoint, orphan transcript.",
        _disk_budget,
        (
            _c(DRY, J),
            _c(DRY),
            _c(J),
            _c("--active-key", "agent:main:oldest", J),
            _c(DRY, "--active-key", "agent:main:oldest", J),
        ),
        live=True,
    ),
    "disk_budget_old_archive": CaseSpec(
        "The disk_budget case plus a 3-year-old .deleted archive the apply expires first.",
        _disk_budget_old_archive,
        (_c(DRY, J), _c(J), _c(DRY)),
    ),
    "disk_budget_foreign_files": CaseSpec(
        "The disk_budget case plus files no rule may delete (notes.txt, *.migrated).",
        _disk_budget_foreign_files,
        (_c(DRY, J), _c(J)),
    ),
    "disk_budget_units": CaseSpec(
        "maxDiskBytes '1.5KB' with the default 80% high-water mark.",
        _disk_budget_units,
        (_c(DRY, J), _c(J), _c()),
    ),
    "disk_budget_zero": CaseSpec(
        "maxDiskBytes '0': evict everything evictable.",
        _disk_budget_zero,
        (_c(DRY, J), _c(J)),
    ),
    "disk_budget_warn": CaseSpec(
        "warn mode with a disk budget and pruneAfter 5d.",
        _disk_budget_warn,
        (_c(DRY, J), _c(J), _c("--enforce", J), _c(), _c(DRY, "--enforce")),
        cutoffs_ms=(5 * DAY,),
    ),
    "prune_after_number": CaseSpec(
        "pruneAfter 7 (a bare number: days).",
        _prune_case({"pruneAfter": 7}, (5 * DAY, 166 * HOUR, 170 * HOUR, 8 * DAY, 30 * DAY)),
        (_c(DRY, J), _c(J)),
        cutoffs_ms=(7 * DAY,),
    ),
    "prune_after_1h30m": CaseSpec(
        "pruneAfter '1h30m' (compound duration).",
        _prune_case({"pruneAfter": "1h30m"}, (FRESH, 2 * HOUR, 3 * HOUR, 1 * DAY)),
        (_c(DRY, J), _c(J), _c(DRY)),
        cutoffs_ms=(90 * MIN,),
    ),
    "prune_after_1_5d": CaseSpec(
        "pruneAfter '1.5D' (fraction, uppercase unit).",
        _prune_case({"pruneAfter": "1.5D"}, (1 * DAY, 35 * HOUR, 37 * HOUR, 3 * DAY)),
        (_c(DRY, J), _c(J), _c(DRY)),
        cutoffs_ms=(36 * HOUR,),
    ),
    "prune_days": CaseSpec(
        "Deprecated pruneDays 2.",
        _prune_case({"pruneDays": 2}, (1 * DAY, 47 * HOUR, 49 * HOUR, 3 * DAY)),
        (_c(DRY, J), _c(J)),
        cutoffs_ms=(2 * DAY,),
    ),
    "warn_mode": CaseSpec(
        "mode warn, pruneAfter 1d, maxEntries 3: prune/cap only reported; --enforce applies.",
        _warn_mode,
        (
            _c(DRY, J),
            _c(J),
            _c("--active-key", "agent:main:old1"),
            _c("--enforce", J),
            _c(FD, FM, J),
            _c(DRY),
            _c(),
        ),
        cutoffs_ms=(DAY,),
        live=True,
    ),
    "shared_store": CaseSpec(
        "session.store '~/shared/sessions.json' shared by agents [work, main(default)].",
        _shared_store,
        (
            _c(ALL, DRY, J),
            _c(ALL, FD, J),
            _c(FD, J),
            _c("--agent", "work", DRY, FD),
        ),
    ),
    "store_template": CaseSpec(
        "session.store '~/stores/{agentId}/store.json' with two agents.",
        _store_template,
        (_c(ALL, DRY, J), _c(ALL, J), _c("--agent", "beta", FD)),
    ),
    "store_template_flat": CaseSpec(
        "session.store '~/flat/{agentId}.json': two stores share one sessions dir.",
        _store_template_flat,
        (_c("--agent", "alpha", DRY, J), _c("--agent", "alpha", J), _c(ALL, J)),
    ),
    "compact_store": CaseSpec(
        "Compact JSON store with legacy fields, integer-like keys, floats and non-ASCII.",
        _compact_store,
        (_c(DRY, J), _c(J), _c(), _c(DRY)),
    ),
    "integer_keys_rewrite": CaseSpec(
        "Integer-like keys with a pruned row, so the store is rewritten: JS key order.",
        _integer_keys_rewrite,
        (_c(J), _c(DRY)),
    ),
    "null_row": CaseSpec(
        "A null row value: the reference crashes (TypeError), dry run included.",
        _null_row,
        (_c(DRY, J), _c(J)),
    ),
    "empty_store": CaseSpec(
        "sessions.json is '{}' beside an old orphan transcript.",
        _empty_store,
        (_c(DRY, J), _c(DRY), _c(J), _c()),
    ),
    "missing_store": CaseSpec(
        "No sessions dir at all (pruneAfter 10d config).",
        _missing_store,
        (_c(DRY, J), _c(DRY), _c(J), _c()),
        cutoffs_ms=(10 * DAY,),
    ),
    "corrupt_store": CaseSpec(
        "Truncated sessions.json: read as {}; the reference's apply overwrites it.",
        _corrupt_store,
        (_c(DRY, J), _c(J), _c(DRY)),
    ),
    "bom_store": CaseSpec(
        "sessions.json with a UTF-8 BOM: JSON.parse rejects it, so it reads as {}.",
        _bom_store,
        (_c(DRY, J), _c(J)),
    ),
    "string_row": CaseSpec(
        "A string row value and a number row value among normal rows.",
        _string_row,
        (_c(DRY, J), _c(DRY), _c(J), _c(FM, FD, J)),
    ),
    "artifact_sweep": CaseSpec(
        "Unreferenced-artifact sweep: checkpoints (v4/v7), sidecars, archives, stray files.",
        _artifact_sweep,
        (_c(DRY, J), _c(J), _c(), _c(DRY)),
    ),
    "json5_config": CaseSpec(
        "openclaw.json in JSON5 syntax (comments, unquoted keys, trailing commas).",
        _json5_config,
        (_c(DRY, J), _c(J), _c(DRY, FD)),
        cutoffs_ms=(2 * DAY,),
    ),
    "invalid_config": CaseSpec(
        "pruneAfter '1w' fails config validation: error block, exit 1.",
        _invalid_config,
        (_c(DRY, J), _c(J)),
    ),
    "invalid_max_entries": CaseSpec(
        "maxEntries 0 fails config validation: error block, exit 1.",
        _invalid_max_entries,
        (_c(DRY),),
    ),
    "topic_rows": CaseSpec(
        "Topic rows with sessionFile: both transcripts archived; stale and encoded names.",
        _topic_rows,
        (_c(DRY, J), _c(J), _c(DRY, FM, J), _c(FM, J)),
    ),
    "display_cells": CaseSpec(
        "Dry-run table cells: models, overrides, flags, long/emoji keys, odd ages.",
        _display_cells,
        (_c(DRY), _c(DRY, J), _c(DRY, FM, FD)),
    ),
    "reset_retention": CaseSpec(
        "resetArchiveRetention '10d': .reset archives expire on their own clock.",
        _reset_retention("10d"),
        (_c(J), _c(DRY, J)),
        cutoffs_ms=(DEFAULT_PRUNE_MS, 10 * DAY),
    ),
    "reset_retention_false": CaseSpec(
        "resetArchiveRetention false and nothing pruned: no archive expiry runs at all.",
        _reset_retention(False),
        (_c(J),),
    ),
    "reset_retention_false_prune": CaseSpec(
        "resetArchiveRetention false but a row is pruned: .deleted archives expire, .reset stay.",
        _reset_retention_prune,
        (_c(J),),
    ),
}


def build_state_dir(case_name: str, root: Path, now_ms: int) -> None:
    """Create the state dir of `case_name` under `root` (which may already exist, empty)."""
    make_builder(case_name, root, now_ms)


def make_builder(case_name: str, root: Path, now_ms: int) -> StateBuilder:
    """Build the case and return the builder (it remembers every age it used)."""
    spec = CASES[case_name]
    root.mkdir(parents=True, exist_ok=True)
    builder = StateBuilder(case_name, root, now_ms)
    spec.builder(builder)
    return builder


def _age_format_edges_ms(age_ms: int) -> list[int]:
    """Ages near `age_ms` where the table's Age cell changes its text."""
    edges = [30 * 1000, 59 * MIN + 30 * 1000, 47 * HOUR + 30 * MIN]
    if age_ms < 48 * HOUR:
        hour = age_ms // HOUR
        edges += [hour * HOUR + 30 * MIN, (hour - 1) * HOUR + 30 * MIN]
    else:
        day = age_ms // DAY
        edges += [d * DAY + 11 * HOUR + 30 * MIN for d in (day - 1, day, day + 1)]
    return edges


def check_margins(case_name: str, builder: StateBuilder) -> list[str]:
    """Every age the case used that sits too close to a cutoff or an Age-cell edge."""
    spec = CASES[case_name]
    problems: list[str] = []
    for age in builder.file_ages_ms:
        problems += [
            f"file age {age} ms is within {MARGIN_MS} ms of cutoff {cutoff}"
            for cutoff in spec.cutoffs_ms
            if abs(age - cutoff) < MARGIN_MS
        ]
    for age in builder.row_ages_ms:
        if age < 0:
            if age > -MARGIN_MS:
                problems.append(f"row age {age} ms is in the near future")
            continue
        if age < HOUR:
            problems.append(f"row age {age} ms is below one hour (minute rounding)")
        problems += [
            f"row age {age} ms is within {MARGIN_MS} ms of cutoff {cutoff}"
            for cutoff in spec.cutoffs_ms
            if abs(age - cutoff) < MARGIN_MS
        ]
        problems += [
            f"row age {age} ms is within {MARGIN_MS} ms of Age-cell edge {edge}"
            for edge in _age_format_edges_ms(age)
            if abs(age - edge) < MARGIN_MS
        ]
    return problems
