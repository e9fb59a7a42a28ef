"""Beside the real OpenClaw gateway: does any writer take back a write another one acknowledged?

Issue 18's live proof. One state dir with a store of several MB (`session.maintenance.mode:
warn`, so the gateway's own maintenance prunes nothing) is served at once by OpenClaw
2026.5.12's `openclaw gateway run` and by `sessiond serve`. For comparison, the scenario
`two-gateways` puts two reference gateways on it (`OPENCLAW_ALLOW_MULTI_GATEWAY=1`), and
`one-gateway` sends both clients through one gateway (the control: with one writer per file
nothing may be lost, so a loss elsewhere is not the check's doing). One client per
server writes the row field `label`, which both servers persist: through the gateway's
`sessions.patch` over its protocol v4 (`harness.gateway_client`, ed25519 device auth; a probe
patch checks first that an acknowledged one is in sessions.json) and through sessiond's
JSON-RPC `sessions.patch` (with `updatedAt`, and a `sessionId` for a new row). Each round
both clients send one write at once (and the next round starts when both are answered); by
turns the round's key is

- `new`: a row of the writer's own that does not exist yet (lost, it is usually a *missing* row);
- `own`: one of 16 existing rows only this side writes (lost, it is a *reverted* value);
- `shared`: one of 8 existing rows both sides write (every other shared round both write the
  same row at once; in between, the second side writes the next row).

Every label is unique (the gateway refuses a label another row already has). Each write records
its side, key, value, send time and ack time (sessiond's ack counts only with `durable: true`).
When both servers have settled (sessiond not dirty, the file unchanged for 2 s), the file is read
once. An acknowledged write W is **lost** unless the key's label on disk is W's value or the
value of another write to that key that may have come after W: one acknowledged no earlier
than W was sent, or one never answered. Lost writes are counted per side as missing (the row is
gone) or reverted (the row holds an older value). sessiond's memory is compared with the file.

`run` does it all and returns the `Figures`; `stress/beside_gateway.py` prints them and
tests/reference/test_beside_real_gateway.py asserts on them.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import msgspec
from differential.harness import reference_bin

from harness.daemon_process import DaemonProcess
from harness.gateway_client import GatewayClient, GatewayError
from harness.raw_frames import RpcCallError, RpcClient
from harness.reference_gateway import ReferenceGateway

TOKEN = "beside-token-18"
AGENT = "main"
OWN_KEYS = 16
SHARED_KEYS = 8
ROW_BYTES = 4000
CALL_TIMEOUT_S = 60.0
Kind = Literal["new", "own", "shared"]
KINDS: tuple[Kind, ...] = ("new", "own", "shared")
Status = Literal["acked", "refused", "unknown"]


def store_file(state_dir: Path) -> Path:
    return state_dir / "agents" / AGENT / "sessions" / "sessions.json"


def new_key(tag: str, i: int) -> str:
    return f"agent:{AGENT}:explicit:beside-{tag}-new-{i}"


def own_key(tag: str, i: int) -> str:
    return f"agent:{AGENT}:explicit:beside-{tag}-own-{i % OWN_KEYS}"


def shared_key(i: int) -> str:
    return f"agent:{AGENT}:explicit:beside-shared-{i % SHARED_KEYS}"


def round_key(kind: Kind, tag: str, side_index: int, i: int) -> str:
    """Round i's key for a side: shared rounds alternate between both sides on one key (they
    race) and the second side one key ahead (each row then passes from side to side)."""
    if kind == "new":
        return new_key(tag, i)
    if kind == "own":
        return own_key(tag, i)
    j = i // len(KINDS)
    return shared_key(j + side_index * (j % 2))


# ----------------------------------------------------------------------------------- fixture


def filler_row(rng: random.Random, n: int, updated_at: int) -> dict[str, Any]:
    """A row of about ROW_BYTES shaped like the gateway's: delivery fields, token counts, and a
    skills snapshot that makes up most of the bytes."""
    row: dict[str, Any] = {
        "sessionId": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
        "updatedAt": updated_at,
        "systemSent": True,
        "chatType": "direct",
        "lastChannel": "telegram",
        "lastTo": f"telegram:{n}",
        "deliveryContext": {"channel": "telegram", "to": f"telegram:{n}"},
        "model": "anthropic/claude-sonnet-4-6",
        "inputTokens": rng.randint(100, 90_000),
        "outputTokens": rng.randint(100, 9_000),
    }
    skills = [
        {"name": f"skill-{k}", "description": "x" * 180, "enabled": True}
        for k in range(ROW_BYTES // 240)
    ]
    row["skillsSnapshot"] = {"prompt": "p" * 200, "skills": skills}
    return row


def build_state(root: Path, tags: tuple[str, ...], store_mb: float, now_ms: int) -> int:
    """openclaw.json (maintenance `warn`) and a store of ~`store_mb` MB: filler rows shaped like
    OpenClaw's, plus the `own` rows of both sides and the `shared` rows. Only canonical keys,
    each with a sessionId, so the gateway's start-up migration has nothing to rewrite."""
    rng = random.Random(18)
    root.mkdir(parents=True, exist_ok=True)
    config = {
        "agents": {"list": [{"id": AGENT, "default": True}]},
        "session": {"maintenance": {"mode": "warn"}},
    }
    (root / "openclaw.json").write_text(json.dumps(config, indent=2))
    rows: dict[str, Any] = {}
    n = 0
    size = 0  # of the file as written (indented), row by row
    while size < store_mb * 1_000_000:
        row = filler_row(rng, n, now_ms - 3_600_000 - n)  # recent: nothing near any cutoff
        key = f"agent:{AGENT}:explicit:fill-{n}"
        rows[key] = row
        size += len(json.dumps({key: row}, indent=2))
        n += 1
    seeded = [own_key(tag, i) for tag in tags for i in range(OWN_KEYS)]
    seeded += [shared_key(i) for i in range(SHARED_KEYS)]
    for key in seeded:
        rows[key] = {"sessionId": str(uuid.uuid4()), "updatedAt": now_ms - 3_600_000}
    path = store_file(root)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(rows, indent=2))
    return path.stat().st_size


# ------------------------------------------------------------------------------------ writers


@dataclass
class Write:
    side: str
    kind: Kind
    key: str
    value: str
    sent: float
    acked: float | None = None  # monotonic time of the acknowledgement
    status: Status = "unknown"
    detail: str = ""


class Side:
    """One server and one client writing `label` through it; `patch` raises on a refusal."""

    name: str
    tag: str

    async def patch(self, key: str, value: str, create: bool) -> bool:
        """True when acknowledged (durably, where the server says)."""
        raise NotImplementedError

    async def close(self) -> None:
        raise NotImplementedError


class GatewaySide(Side):
    def __init__(self, name: str, tag: str, client: GatewayClient) -> None:
        self.name, self.tag, self.client = name, tag, client

    async def patch(self, key: str, value: str, create: bool) -> bool:
        payload = await self.client.call(
            "sessions.patch", {"key": key, "label": value}, CALL_TIMEOUT_S
        )
        return bool(payload.get("ok"))

    async def close(self) -> None:
        await self.client.close()


class SessiondSide(Side):
    def __init__(self, name: str, tag: str, client: RpcClient) -> None:
        self.name, self.tag, self.client = name, tag, client

    async def patch(self, key: str, value: str, create: bool) -> bool:
        fields: dict[str, Any] = {"label": value, "updatedAt": int(time.time() * 1000)}
        if create:
            fields["sessionId"] = str(uuid.uuid4())
        result = await self.client.call(
            "sessions.patch", {"key": key, "fields": fields}, timeout=CALL_TIMEOUT_S
        )
        return bool(result.durable)

    async def close(self) -> None:
        await self.client.close()


async def write_one(side: Side, kind: Kind, key: str, value: str, log: list[Write]) -> None:
    write = Write(side.name, kind, key, value, time.monotonic())
    log.append(write)
    try:
        durable = await side.patch(key, value, create=kind == "new")
    except (GatewayError, RpcCallError) as exc:
        write.status, write.detail = "refused", str(exc)[:200]
        return
    except (TimeoutError, ConnectionError, OSError) as exc:
        write.detail = f"{type(exc).__name__}: {exc}"[:200]
        return
    if durable:
        write.status, write.acked = "acked", time.monotonic()
    else:
        write.detail = "answered, not durable"


async def side_round(side: Side, side_index: int, i: int, log: list[Write]) -> None:
    """Round i's one write of this side: a new row, its own row or a shared row, by turns."""
    kind = KINDS[i % len(KINDS)]
    key = round_key(kind, side.tag, side_index, i)
    await write_one(side, kind, key, f"{side.tag}-{kind}-{i}", log)


# ------------------------------------------------------------------------------------- oracle


@dataclass
class SideFigures:
    name: str
    sent: int = 0
    acked: int = 0
    refused: int = 0
    unknown: int = 0
    lost_missing: int = 0
    lost_reverted: int = 0
    lost_by_kind: dict[str, int] = field(default_factory=lambda: dict.fromkeys(KINDS, 0))
    latency_p50_ms: float = 0.0
    latency_max_ms: float = 0.0
    lost_writes: list[str] = field(default_factory=list)  # every one (5 are printed)

    @property
    def lost(self) -> int:
        return self.lost_missing + self.lost_reverted


def judge(writes: list[Write], disk: dict[str, Any]) -> dict[str, SideFigures]:
    """Per side: acknowledged writes the file no longer reflects and no later write explains."""
    by_key: dict[str, list[Write]] = {}
    figures: dict[str, SideFigures] = {}
    for w in writes:
        by_key.setdefault(w.key, []).append(w)
        fig = figures.setdefault(w.side, SideFigures(w.side))
        fig.sent += 1
        setattr(fig, w.status, getattr(fig, w.status) + 1)
    for side, fig in figures.items():
        took = [1000 * (w.acked - w.sent) for w in writes if w.side == side and w.acked]
        if took:
            fig.latency_p50_ms = round(statistics.median(took), 1)
            fig.latency_max_ms = round(max(took), 1)
    for key, key_writes in by_key.items():
        row = disk.get(key)
        found = row.get("label") if isinstance(row, dict) else None
        for w in key_writes:
            if w.status != "acked" or found == w.value:
                continue
            assert w.acked is not None
            explained = any(
                other is not w
                and other.value == found
                and other.status != "refused"
                and (other.acked is None or other.acked >= w.sent)
                for other in key_writes
            )
            if explained:
                continue
            fig = figures[w.side]
            if row is None:
                fig.lost_missing += 1
            else:
                fig.lost_reverted += 1
            fig.lost_by_kind[w.kind] += 1
            has = "no row" if row is None else f"label {found!r}"
            fig.lost_writes.append(f"{key}: acked {w.value!r}, the file has {has}")
    return figures


# ------------------------------------------------------------------------------------ the run


@dataclass
class Figures:
    scenario: str
    rounds: int
    store_bytes_start: int
    store_bytes_end: int
    rows_end: int
    gateway_ready_s: list[float]
    write_phase_s: float
    settle_s: float
    sides: dict[str, SideFigures]
    memory_differs: int | None = None  # keys where sessiond's memory and the file disagree
    sessiond_status: dict[str, Any] | None = None

    @property
    def lost(self) -> dict[str, int]:
        return {name: fig.lost for name, fig in self.sides.items()}

    def lines(self) -> list[str]:
        mb = self.store_bytes_start / 1e6
        out = [
            f"scenario: {self.scenario}",
            f"store: {mb:.1f} MB at start, {self.store_bytes_end / 1e6:.1f} MB and "
            f"{self.rows_end} rows at the end",
            f"gateway ready after: {', '.join(f'{s:.1f} s' for s in self.gateway_ready_s)}",
            f"rounds: {self.rounds} (each side one write a round: new, own, shared row by turns)",
            f"writing: {self.write_phase_s:.1f} s; settling: {self.settle_s:.1f} s",
        ]
        for fig in self.sides.values():
            out.append(
                f"{fig.name}: {fig.acked} of {fig.sent} acknowledged ({fig.refused} refused, "
                f"{fig.unknown} unanswered), latency p50 {fig.latency_p50_ms} ms max "
                f"{fig.latency_max_ms} ms; LOST {fig.lost} ({fig.lost_missing} rows missing, "
                f"{fig.lost_reverted} values reverted; by kind {fig.lost_by_kind})"
            )
            out += [f"    e.g. {lost}" for lost in fig.lost_writes[:5]]
        if self.memory_differs is not None:
            out.append(f"sessiond memory differs from the file on {self.memory_differs} keys")
        if self.sessiond_status is not None:
            out.append(f"sessiond status: {self.sessiond_status}")
        return out

    def as_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["lost"] = self.lost
        return data


async def _connect_gateway(url: str) -> GatewayClient:
    return await GatewayClient.connect(url, TOKEN, timeout=60.0)


async def _settle(file: Path, daemon: RpcClient | None, timeout: float = 120.0) -> float:
    """Until sessiond (if any) has nothing unflushed and the file stayed unchanged for 2 s."""
    started = time.monotonic()
    last: tuple[int, int, int] | None = None
    quiet_since = time.monotonic()
    while time.monotonic() - started < timeout:
        st = file.stat()
        sig = (st.st_ino, st.st_size, st.st_mtime_ns)
        if sig != last:
            last, quiet_since = sig, time.monotonic()
        dirty = False
        if daemon is not None:
            status = await daemon.call("daemon.status")
            dirty = any(s.dirty for s in status.stores)
        if not dirty and time.monotonic() - quiet_since >= 2.0:
            return time.monotonic() - started
        await asyncio.sleep(0.2)
    raise TimeoutError("the store did not settle")


async def _memory_differs(client: RpcClient, keys: set[str], disk: dict[str, Any]) -> int:
    differs = 0
    for key in sorted(keys):
        try:
            result = await client.call("sessions.get", {"key": key})
            row = msgspec.json.decode(result.entry)
        except RpcCallError:
            row = None
        disk_label = disk[key].get("label") if isinstance(disk.get(key), dict) else None
        mem_label = row.get("label") if isinstance(row, dict) else None
        if (key in disk) != (row is not None) or disk_label != mem_label:
            differs += 1
    return differs


async def _probe_gateway(side: GatewaySide, file: Path) -> None:
    """An acknowledged gateway patch of `label` must be in sessions.json, or nothing is proven."""
    key, value = f"agent:{AGENT}:explicit:beside-probe", f"probe-{uuid.uuid4().hex[:8]}"
    if not await side.patch(key, value, create=True):
        raise RuntimeError("the gateway did not acknowledge the probe patch")
    row = json.loads(file.read_text()).get(key)
    if not isinstance(row, dict) or row.get("label") != value:
        raise RuntimeError(f"an acknowledged gateway sessions.patch is not on disk: {row!r}")


@dataclass(frozen=True)
class Scenario:
    """How many reference gateways serve the store, and each writing side's (name, key tag,
    the gateway it writes through, or None for sessiond)."""

    title: str
    gateways: int
    sides: tuple[tuple[str, str, int | None], ...]


SCENARIOS: dict[str, Scenario] = {
    "sessiond": Scenario(
        "the reference gateway beside sessiond", 1, (("gateway", "gw", 0), ("sessiond", "sd", None))
    ),
    "two-gateways": Scenario(
        "two reference gateways on one store",
        2,
        (("gateway 1", "gw1", 0), ("gateway 2", "gw2", 1)),
    ),
    "one-gateway": Scenario(
        "one reference gateway, both clients through it",
        1,
        (("client 1", "c1", 0), ("client 2", "c2", 0)),
    ),
}


def run(
    ref_dir: Path,
    scenario: str = "sessiond",
    rounds: int = 200,
    store_mb: float = 8.0,
    work_dir: Path | None = None,
    progress: Callable[[str], None] | None = None,
) -> Figures:
    """Build the state dir, start the servers, write, settle, judge; everything is stopped after."""
    say = progress or (lambda _line: None)
    plan = SCENARIOS[scenario]
    ref = reference_bin(ref_dir)
    with contextlib.ExitStack() as stack:
        base = work_dir or Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="beside-")))
        state = base / "state"
        tags = tuple(tag for _name, tag, _via in plan.sides)
        start_bytes = build_state(state, tags, store_mb, int(time.time() * 1000))
        say(f"store of {start_bytes / 1e6:.1f} MB at {store_file(state)}")
        # Several gateways on one state dir need this; with one it changes nothing.
        env = {"OPENCLAW_ALLOW_MULTI_GATEWAY": "1"} if plan.gateways > 1 else {}
        gateways: list[ReferenceGateway] = []
        for n in range(plan.gateways):
            gateway = ReferenceGateway(ref, state, base / f"gateway-{n}.log", TOKEN, env)
            gateways.append(gateway)
            stack.callback(gateway.stop)
        ready = [round(g.wait_ready(), 1) for g in gateways]
        say(f"gateway ready after {ready} s")
        daemon: DaemonProcess | None = None
        if any(via is None for _name, _tag, via in plan.sides):
            daemon = stack.enter_context(DaemonProcess(state, "--token", TOKEN))
            say(f"sessiond serving on port {daemon.port}")
        figures = asyncio.run(_drive(plan, gateways, daemon, state, rounds, say))
        figures.store_bytes_start = start_bytes
        figures.gateway_ready_s = ready
        return figures


async def _drive(
    plan: Scenario,
    gateways: list[ReferenceGateway],
    daemon: DaemonProcess | None,
    state: Path,
    rounds: int,
    say: Callable[[str], None],
) -> Figures:
    file = store_file(state)
    sides: list[Side] = []
    rpc: RpcClient | None = None
    try:
        probe = GatewaySide("probe", "probe", await _connect_gateway(gateways[0].url))
        sides.append(probe)
        await _probe_gateway(probe, file)
        for name, tag, via in plan.sides:
            if via is not None:
                sides.append(GatewaySide(name, tag, await _connect_gateway(gateways[via].url)))
            else:
                assert daemon is not None
                sides.append(SessiondSide(name, tag, await RpcClient.connect(daemon.url, TOKEN)))
        if daemon is not None:
            rpc = await RpcClient.connect(daemon.url, TOKEN)
        writers = sides[1:]
        log: list[Write] = []
        started = time.monotonic()
        for i in range(rounds):
            await asyncio.gather(*(side_round(side, n, i, log) for n, side in enumerate(writers)))
            if (i + 1) % 50 == 0:
                say(f"round {i + 1}/{rounds}, {time.monotonic() - started:.0f} s")
        write_phase = time.monotonic() - started
        settle = await _settle(file, rpc)
        disk = json.loads(file.read_text())
        figures = Figures(
            scenario=plan.title,
            rounds=rounds,
            store_bytes_start=0,
            store_bytes_end=file.stat().st_size,
            rows_end=len(disk),
            gateway_ready_s=[],
            write_phase_s=round(write_phase, 1),
            settle_s=round(settle, 1),
            sides=judge(log, disk),
        )
        if rpc is not None:
            figures.memory_differs = await _memory_differs(rpc, {w.key for w in log}, disk)
            status = await rpc.call("daemon.status")
            store = status.stores[0]
            figures.sessiond_status = {
                "flushes": store.flushes,
                "externalReloads": store.external_reloads,
                "conflicts": store.conflicts,
                "staleWritesRepaired": store.stale_writes_repaired,
                "flushFailures": store.flush_failures,
            }
        return figures
    finally:
        for side in sides:
            with contextlib.suppress(Exception):
                await side.close()
        if rpc is not None:
            await rpc.close()
