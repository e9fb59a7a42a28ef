"""Fuzzing: >= 100,000 generated frames against a live daemon, each checked against its class.

A seeded generator builds every frame together with what the daemon must do with it:

- a request (any method of the table, params valid by construction or broken on purpose: wrong
  types, unknown fields, out-of-range and huge numbers, deep nesting, long and odd strings) must
  be answered with its id, and with the error class its breakage calls for (-32600 invalid
  request, -32601 unknown method, -32602 bad params) or, when valid, a result or an application
  error (-32000..-32099);
- a notification (no id) must get no answer, unless it is not even a valid request object;
- malformed JSON (truncated, corrupted, garbage, NaN, deep nesting past the decoder's limit,
  invalid UTF-8 in a binary frame) must be answered -32700 with id null;
- batches: one answer per member that is a request, in one array; a batch of only
  notifications gets nothing; an empty batch gets -32600;
- binary frames are handled like text frames;
- an oversize frame must close the connection 1009; a text frame that is not UTF-8, 1007.

Frames are pipelined: each of several connections sends a chunk of frames without waiting, then
collects the answers (matched by id; id-null answers as a multiset of codes) with a deadline; a
missing answer is a hang. Never allowed: -32603 (an internal error is a bug), close 1011, a
dead daemon, an answer to a notification. The daemon's RSS is sampled after the first half and
at the end; the second half must not grow it by more than 10 MB.

The OpenClaw gateway dialect (daemon/gateway_dialect.py) is fuzzed too, on its own connections
(see `gateway_round`).

    PYTHONPATH=tests .venv/bin/python stress/fuzz.py [--frames 100000] [--connections 8] [--seed 1]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec
from harness.daemon_process import DaemonProcess, http_status
from harness.state_dirs import write_state_dir
from harness.stress_report import Report, machine
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

MAX_FRAME = 65536
METHODS = [
    "auth",
    "sessions.list",
    "sessions.get",
    "sessions.patch",
    "sessions.delete",
    "sessions.cleanup",
    "sessions.subscribe",
    "sessions.unsubscribe",
    "daemon.status",
]
OK = "ok"  # a result or an application error (-32000..-32099)
CHUNK = 400
PATCH_KEYS = 64
_DECODE = msgspec.json.Decoder()


def is_json(data: bytes) -> bool:
    try:
        _DECODE.decode(data)
        data.decode()
    except (msgspec.DecodeError, UnicodeDecodeError, RecursionError):
        return False
    return True


@dataclass
class Expect:
    """What one frame must produce: answers by id, id-null answers, or a close code."""

    by_id: dict[str, set[Any]] = field(default_factory=dict)  # json(id) -> allowed codes
    null: list[set[Any]] = field(default_factory=list)  # allowed codes of id-null answers
    close: int | None = None
    batch: bool = False


@dataclass
class Frame:
    data: bytes
    text: bool
    expect: Expect
    kind: str


class Gen:
    """Seeded frame generator (see module doc for the classes)."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.ids = 0

    # ---------------------------------------------------------------------------- values

    def scalar(self) -> Any:
        r = self.rng
        return r.choice(
            [
                lambda: r.randint(-(10**6), 10**6),
                lambda: r.choice([0, -1, 2**53, -(2**63), 2**64 - 1, 10**30, -(10**40)]),
                lambda: r.choice([0.5, -1e-300, 1.7976931348623157e308, 1e-320, -0.0]),
                lambda: r.choice([True, False, None]),
                lambda: self.string(),
            ]
        )()

    def string(self, short: bool = False) -> str:
        r = self.rng
        n = r.choice([0, 1, 5, 20] if short else [0, 1, 5, 20, 200, 3000])
        alphabet = r.choice(
            [
                "abcxyz:._-",
                'é日本語🙂\u0000\u001f"\\/\u2028\ufeff',
                "agent:main:" + "0123456789",
                "\U0010ffff\u00ff\u0100\u07ff\u0800",
            ]
        )
        unit = "".join(r.choices(alphabet, k=min(n, 40)))
        return (unit * (n // 40 + 1))[:n]

    def value(self, depth: int = 0) -> Any:
        r = self.rng
        if depth > 3 or r.random() < 0.55:
            return self.scalar()
        if r.random() < 0.5:
            return [self.value(depth + 1) for _ in range(r.randint(0, 4))]
        return {self.string(short=True): self.value(depth + 1) for _ in range(r.randint(0, 4))}

    def wrong(self, kind: type) -> Any:
        """A value of a JSON type other than `kind`."""
        pool: list[Any] = [1, "x", [1], {"a": 1}, True, 1.5]
        if kind is str:
            pool = [1, [1], {"a": 1}, True, 1.5]
        elif kind is int:
            pool = ["x", [1], {"a": 1}, True, 1.5]
        elif kind is bool:
            pool = [1, "x", [1], {"a": 1}, 0]
        elif kind is dict:
            pool = [1, "x", [1], True]
        return self.rng.choice(pool)

    def new_id(self) -> Any:
        self.ids += 1
        r = self.rng.random()
        if r < 0.5:
            return self.ids
        if r < 0.8:
            return f"f{self.ids}"
        if r < 0.9:
            return self.ids + 0.5
        return 10**25 + self.ids

    # ---------------------------------------------------------------------------- params

    def key(self, any_key: bool = True) -> str:
        """A key; patches stay within a bounded set so the store (and RSS) stays bounded."""
        r = self.rng
        if r.random() < 0.8 or not any_key:
            return f"agent:main:fz{r.randrange(PATCH_KEYS)}"
        return r.choice(["agent:main:a", "agent:main:b", self.string(short=True)])

    def agent(self) -> Any:
        return self.rng.choice([None, "main", "main", "ghost", "MAIN", "../../etc"])

    def valid_params(self, method: str) -> dict[str, Any] | None:
        r = self.rng
        p: dict[str, Any] = {}
        if method == "auth":
            p["token"] = self.string(short=True)
        elif method == "sessions.list":
            if r.random() < 0.7:
                p["limit"] = r.randint(1, 1000)
            if r.random() < 0.2:
                p["cursor"] = r.choice([None, "", "eyJ4IjoxfQ==", self.string(short=True)])
            if r.random() < 0.3:
                p["agent"] = self.agent()
            if r.random() < 0.3:
                p["allAgents"] = r.random() < 0.5
            if r.random() < 0.3:
                p["activeMinutes"] = r.choice([1, 60, 10**12, None])
        elif method in ("sessions.get", "sessions.delete"):
            p["key"] = self.key()
            if r.random() < 0.2:
                p["agent"] = self.agent()
        elif method == "sessions.patch":
            p["key"] = self.key(any_key=False)
            p["fields"] = {
                r.choice(["n", "updatedAt", "model", "label", "x"]): self.value(2)
                for _ in range(r.randint(0, 4))
            }
            if r.random() < 0.2:
                p["ifUpdatedAt"] = r.choice([None, 1, 2.5, 10**15])
            if r.random() < 0.1:
                p["agent"] = self.agent()
        elif method == "sessions.cleanup":
            p["dryRun"] = r.random() < 0.9
            for name in ("allAgents", "enforce", "fixMissing", "fixDmScope"):
                if r.random() < 0.2:
                    p[name] = r.random() < 0.5
            if r.random() < 0.2:
                p["activeKey"] = self.key()
            if r.random() < 0.2:
                p["agent"] = self.agent()
        elif method == "sessions.subscribe":
            if r.random() < 0.5:
                p["agent"] = self.agent()
            if r.random() < 0.3:
                p["allAgents"] = r.random() < 0.5
        if not p and r.random() < 0.3:
            return None  # params omitted
        return p

    def broken_params(self, method: str) -> dict[str, Any]:
        """Params that must fail validation (-32602)."""
        r = self.rng
        p = self.valid_params(method) or {}
        choice = r.random()
        typed: dict[str, list[tuple[str, type]]] = {
            "auth": [("token", str)],
            "sessions.list": [("limit", int), ("allAgents", bool), ("activeMinutes", int)],
            "sessions.get": [("key", str)],
            "sessions.delete": [("key", str)],
            "sessions.patch": [("key", str), ("fields", dict)],
            "sessions.cleanup": [("dryRun", bool), ("enforce", bool), ("activeKey", str)],
            "sessions.subscribe": [("allAgents", bool)],
        }
        fields = typed.get(method, [])
        if choice < 0.4 or not fields:
            p[r.choice(["bogus", "Key", "dry_run", "store", "__proto__", ""])] = self.value(1)
        elif choice < 0.8:
            name, kind = r.choice(fields)
            p[name] = self.wrong(kind)
        elif method == "sessions.list":
            p["limit"] = r.choice([0, 1001, -1, 10**30, 1e300, 2.5])
        else:
            name, kind = r.choice(fields)
            p[name] = self.wrong(kind)
        # required fields: a missing one is bad params too
        if method in ("sessions.get", "sessions.delete") and r.random() < 0.1:
            p.pop("key", None)
        return p

    # ---------------------------------------------------------------------------- members

    def member(self) -> tuple[Any, Expect]:
        """One request object (or something standing where one should) and its expectation."""
        r = self.rng
        method = r.choice(METHODS)
        notification = r.random() < 0.1
        obj: dict[str, Any] = {"jsonrpc": "2.0", "method": method}
        params: Any = None
        # `code`: what a request must get; `structural`: not even a valid Request object,
        # which is answered (id null) even when it carries no id.
        structural = False
        kind = r.random()
        if kind < 0.55:
            params = self.valid_params(method)
            code: set[Any] = {OK, -32602}  # semantic checks (a cursor) may still say -32602
            if method in ("daemon.status", "sessions.unsubscribe", "sessions.subscribe"):
                code = {OK}
        elif kind < 0.75:
            params = self.broken_params(method)
            code = {-32602}
        elif kind < 0.8:
            params = r.choice([[1, 2], []])
            code = {-32602}
        elif kind < 0.85:
            obj["method"] = r.choice(["nope", "sessions.", "SESSIONS.LIST", "", "rpc.x", "\u00e9"])
            code = {-32601}
        elif kind < 0.9:
            params = r.choice([1, "x", True, None])
            obj["params"] = params
            code, structural = {-32600}, True
        else:
            code, structural = {-32600}, True
            breakage = r.randrange(4)
            if breakage == 0:
                obj["jsonrpc"] = r.choice(["1.0", 2, None, "2.00"])
            elif breakage == 1:
                obj.pop("jsonrpc")
            elif breakage == 2:
                obj["method"] = r.choice([1, None, ["x"], {"a": 1}])
            else:
                obj.pop("method")
        if params is not None:
            obj["params"] = params
        if r.random() < 0.1:
            obj["extra"] = self.scalar()  # unknown members of a Request are tolerated
        expect = Expect()
        if notification:
            if structural:
                expect.null.append(code)
            return obj, expect
        if r.random() < 0.03:
            obj["id"] = r.choice([[1], {"a": 1}, True])  # an illegal id: answered with null
            expect.null.append({-32600})
            return obj, expect
        ident = None if r.random() < 0.03 else self.new_id()
        obj["id"] = ident
        if ident is None:
            expect.null.append(code)
        else:
            expect.by_id[json.dumps(ident)] = code
        return obj, expect

    # ----------------------------------------------------------------------------- frames

    def frame(self) -> Frame:
        """One frame that fits the daemon's frame limit (oversize ones are `closing`)."""
        while True:
            frame = self._frame()
            if len(frame.data) < MAX_FRAME - 64:
                return frame

    def _frame(self) -> Frame:
        r = self.rng
        text = r.random() < 0.85
        roll = r.random()
        if roll < 0.55:
            obj, expect = self.member()
            return Frame(self.encode(obj), text, expect, "request")
        if roll < 0.72:
            return self.batch(text)
        if roll < 0.92:
            return self.malformed(text)
        if roll < 0.96:
            return self.deep(text)
        return self.huge(text)

    def encode(self, obj: Any) -> bytes:
        return json.dumps(obj, ensure_ascii=self.rng.random() < 0.5, allow_nan=False).encode()

    def batch(self, text: bool) -> Frame:
        r = self.rng
        n = r.choice([0, 1, 2, 3, 5, 10, 40])
        if n == 0:
            return Frame(b"[]", text, Expect(null=[{-32600}]), "batch")
        expect = Expect(batch=True)
        members: list[Any] = []
        for _ in range(n):
            if r.random() < 0.1:
                members.append(r.choice([1, "x", None, [], True]))
                expect.null.append({-32600})
                continue
            obj, one = self.member()
            members.append(obj)
            expect.by_id.update(one.by_id)
            expect.null.extend(one.null)
        return Frame(self.encode(members), text, expect, "batch")

    def malformed(self, text: bool) -> Frame:
        r = self.rng
        for _ in range(20):
            obj, _ = self.member()
            data = self.encode(obj)
            how = r.randrange(6)
            if how == 0:
                data = data[: r.randrange(max(1, len(data)))]
            elif how == 1:
                i = r.randrange(len(data))
                data = data[:i] + bytes([r.choice(b'{}[],:"\\xtn0')]) + data[i + 1 :]
            elif how == 2:
                data = r.choice([b"NaN", b"Infinity", b"{'a': 1}", b"{,}", b"[1,]", b"\x00"])
            elif how == 3:
                data = data + r.choice([b"}", b" x", b",", b"]"])
            elif how == 4:
                data = bytes(r.randrange(32, 127) for _ in range(r.randrange(1, 200)))
            else:
                data = data.replace(b":", b"=", 1)
            if not is_json(data) and (not text or _utf8(data)):
                return Frame(data, text, Expect(null=[{-32700}]), "malformed")
        return Frame(b"{", text, Expect(null=[{-32700}]), "malformed")

    def deep(self, text: bool) -> Frame:
        r = self.rng
        depth = r.choice([50, 500, 1500, 20000])  # not near the decoder's limit (~1000)
        inner = "[" * depth + "]" * depth
        if r.random() < 0.5:
            ident = self.new_id()
            data = (
                '{"jsonrpc":"2.0","method":"sessions.patch","params":{"key":"agent:main:deep",'
                f'"fields":{{"x":{inner}}}}},"id":{json.dumps(ident)}}}'
            ).encode()
        else:
            ident = None
            data = inner.encode()
        if is_json(data):
            if ident is None:
                # A bare nested array is a batch of non-objects: one -32600 per... member.
                expect = Expect(null=[{-32600}])
                return Frame(data, text, expect, "deep")
            return Frame(data, text, Expect(by_id={json.dumps(ident): {OK}}), "deep")
        return Frame(data, text, Expect(null=[{-32700}]), "deep")

    def huge(self, text: bool) -> Frame:
        r = self.rng
        ident = self.new_id()
        digits = "9" * r.choice([20, 400, 4000])
        variant = r.randrange(4)
        if variant == 0:
            params = f'{{"limit":{digits}}}'
            code = {-32602}
            method = "sessions.list"
        elif variant == 1:
            params = f'{{"limit":1e{digits[:3]}}}'
            code = {-32602}
            method = "sessions.list"
        elif variant == 2:
            k = r.randrange(PATCH_KEYS)
            params = f'{{"key":"agent:main:fz{k}","fields":{{"n":{digits}}}}}'
            code = {OK}
            method = "sessions.patch"
        else:
            params = f'{{"key":"{"k" * r.choice([10, 30000])}"}}'
            code = {OK}
            method = "sessions.get"
        data = (
            f'{{"jsonrpc":"2.0","method":"{method}","params":{params},"id":{json.dumps(ident)}}}'
        ).encode()
        return Frame(data, text, Expect(by_id={json.dumps(ident): code}), "huge")

    def closing(self) -> Frame:
        """A frame after which the connection must be closed, and its code."""
        r = self.rng
        if r.random() < 0.5:
            size = r.choice([MAX_FRAME + 1, MAX_FRAME * 2, MAX_FRAME * 30])
            body = b'{"jsonrpc":"2.0","method":"sessions.get","params":{"key":"'
            data = body + b"x" * (size - len(body))
            return Frame(data, r.random() < 0.5, Expect(close=1009), "oversize")
        obj, _ = self.member()
        data = self.encode(obj)
        i = r.randrange(len(data))
        data = data[:i] + r.choice([b"\xff", b"\xc0\xaf", b"\xed\xa0\x80", b"\xe2\x82"]) + data[i:]
        return Frame(data, True, Expect(close=1007), "bad-utf8-text")


def _utf8(data: bytes) -> bool:
    try:
        data.decode()
    except UnicodeDecodeError:
        return False
    return True


# ------------------------------------------------------------------------------- exchange


def _code(answer: dict[str, Any]) -> Any:
    if "result" in answer:
        return OK
    code = answer.get("error", {}).get("code")
    if isinstance(code, int) and -32099 <= code <= -32000:
        return OK
    return code


class Tally:
    def __init__(self, report: Report) -> None:
        self.report = report
        self.stats: Counter[str] = Counter()

    def answers(self, frames: list[Frame], replies: list[Any]) -> None:
        """Match every answer of a chunk against the chunk's expectations."""
        by_id: dict[str, set[Any]] = {}
        null: list[set[Any]] = []
        source: dict[str, bytes] = {}
        for frame in frames:
            by_id.update(frame.expect.by_id)
            null.extend(frame.expect.null)
            for key in frame.expect.by_id:
                source[key] = frame.data
        got_null: list[Any] = []
        for reply in replies:
            members = reply if isinstance(reply, list) else [reply]
            for answer in members:
                if not isinstance(answer, dict) or answer.get("jsonrpc") != "2.0":
                    self.report.fail(f"not a JSON-RPC answer: {str(answer)[:200]}")
                    continue
                code = _code(answer)
                self.stats[f"answer {code}"] += 1
                if code == -32603:
                    self.report.fail(f"internal error: {str(answer)[:300]}")
                if answer.get("id") is None:
                    got_null.append(code)
                    continue
                key = json.dumps(answer["id"])
                allowed = by_id.pop(key, None)
                if allowed is None:
                    self.report.fail(f"unexpected answer id {key[:60]}: {str(answer)[:200]}")
                elif code not in allowed:
                    self.report.fail(
                        f"id {key[:40]}: got {code}, wanted {allowed}: {str(answer)[:300]}; "
                        f"frame {source[key]!r}"
                    )
        for key in by_id:
            self.stats["hangs"] += 1
            self.report.fail(f"no answer for id {key[:60]} (hang); frame {source[key][:300]!r}")
        # id-null answers: a multiset match, most constrained expectations first.
        remaining = Counter(got_null)
        for allowed in sorted(null, key=len):
            pick = next((c for c in allowed if remaining[c] > 0), None)
            if pick is None:
                self.stats["hangs"] += 1
                self.report.fail(f"missing id-null answer with code in {allowed}")
            else:
                remaining[pick] -= 1
        extra = +remaining
        if extra:
            self.report.fail(f"unexpected id-null answers: {dict(extra)}")


def expected_count(frames: list[Frame]) -> int:
    total = 0
    for f in frames:
        total += len(f.expect.by_id) + len(f.expect.null)
    return total


async def pipeline(url: str, gen: Gen, n: int, tally: Tally, rss: Callable[[], None]) -> None:
    """One connection: chunks of frames sent back to back, then their answers collected."""
    try:
        await _pipeline(url, gen, n, tally, rss)
    except ConnectionClosed as exc:
        code = exc.rcvd.code if exc.rcvd else None
        tally.report.fail(f"pipelined connection closed {code} ({exc.rcvd and exc.rcvd.reason})")


async def _pipeline(url: str, gen: Gen, n: int, tally: Tally, rss: Callable[[], None]) -> None:
    async with connect(url, compression=None, max_size=None) as ws:
        # Speak first, at once: a client silent for 0.25 s is taken for an OpenClaw gateway
        # client (it gets the challenge, and its first frame the gateway's rules).
        await ws.send('{"jsonrpc":"2.0","method":"daemon.status","id":"hello"}')
        await reply_frame(ws)
        sent = 0
        while sent < n:
            frames = [gen.frame() for _ in range(min(CHUNK, n - sent))]
            sent += len(frames)
            for frame in frames:
                await ws.send(frame.data, text=frame.text)
                tally.stats[f"frames {frame.kind}"] += 1
                tally.stats["frames binary" if not frame.text else "frames text"] += 1
            replies = await collect(ws, frames, tally)
            tally.answers(frames, replies)
            rss()


async def collect(ws: ClientConnection, frames: list[Frame], tally: Tally) -> list[Any]:
    """Answers to a chunk: every expected one, or whatever came before a 10 s deadline."""
    wanted = 0
    for frame in frames:
        wanted += len(frame.expect.by_id) + len(frame.expect.null)
    got: list[Any] = []
    count = 0
    deadline = time.monotonic() + 30
    while count < wanted:
        try:
            data = await asyncio.wait_for(ws.recv(), max(0.01, deadline - time.monotonic()))
        except TimeoutError:
            break
        reply = json.loads(data)
        if isinstance(reply, dict) and ("method" in reply or reply.get("type") == "event"):
            continue  # sessions.changed (a fuzzed subscribe) or a gateway event
        got.append(reply)
        count += len(reply) if isinstance(reply, list) else 1
    # Nothing more may come: answers to notifications would show up here.
    fence = {"jsonrpc": "2.0", "method": "daemon.status", "id": "fence"}
    await ws.send(json.dumps(fence))
    while True:
        try:
            data = await asyncio.wait_for(ws.recv(), 10)
        except TimeoutError:
            tally.report.fail("fence request not answered (hang)")
            break
        reply = json.loads(data)
        if isinstance(reply, dict) and ("method" in reply or reply.get("type") == "event"):
            continue
        if isinstance(reply, dict) and reply.get("id") == "fence":
            break
        got.append(reply)
    return got


async def reply_frame(ws: ClientConnection) -> Any:
    """The next frame that is not an event or notification (a gateway challenge comes first
    to a client that stayed silent past the grace period, as on a busy machine)."""
    while True:
        data = await asyncio.wait_for(ws.recv(), 10)
        try:
            reply = json.loads(data)
        except ValueError:
            return data
        if not (isinstance(reply, dict) and ("method" in reply or reply.get("type") == "event")):
            return data


async def closing_round(url: str, gen: Gen, n: int, tally: Tally) -> None:
    for _ in range(n):
        frame = gen.closing()
        tally.stats[f"frames {frame.kind}"] += 1
        async with connect(url, compression=None, max_size=None) as ws:
            await ws.send(b'{"jsonrpc":"2.0","method":"daemon.status","id":1}', text=True)
            await reply_frame(ws)
            try:
                await ws.send(frame.data, text=frame.text)
                answer = await reply_frame(ws)
                tally.report.fail(f"{frame.kind}: answered instead of closed: {answer[:100]!r}")
            except ConnectionClosed as exc:
                code = exc.rcvd.code if exc.rcvd else None
                tally.stats[f"closed {code}"] += 1
                if code != frame.expect.close:
                    tally.report.fail(f"{frame.kind}: closed {code}, wanted {frame.expect.close}")
            except TimeoutError:
                tally.report.fail(f"{frame.kind}: neither answered nor closed (hang)")


# ------------------------------------------------------------------------------ gateway


def _connect_params(token: str) -> dict[str, Any]:
    return {
        "minProtocol": 4,
        "maxProtocol": 4,
        "client": {"id": "gateway-client", "version": "1", "platform": "linux", "mode": "backend"},
        "role": "operator",
        "scopes": ["operator.admin"],
        "auth": {"token": token},
    }


async def gateway_preconnect(url: str, token: str, gen: Gen, n: int, tally: Tally) -> None:
    """First frames of the gateway dialect that must end the handshake, each with its code:
    not a request 1008; a request other than connect, or connect with bad params, an error
    `res` then 1008; no protocol 4 in range 1002; over 64 KiB 1009."""
    r = gen.rng
    for _ in range(n):
        roll = r.randrange(5)
        want_res = False
        if roll == 0:
            frame: Any = {"type": r.choice(["event", "res", "", 1, None]), "id": "1"}
            code = 1008
        elif roll == 1:
            method = r.choice(["sessions.list", "health", "auth", "CONNECT"])
            frame = {"type": "req", "id": "p", "method": method, "params": {}}
            code, want_res = 1008, True
        elif roll == 2:
            params = gen.value(1)
            frame = {"type": "req", "id": "p", "method": "connect", "params": params}
            code, want_res = 1008, True
        elif roll == 3:
            params = _connect_params(token)
            params["minProtocol"], params["maxProtocol"] = r.choice([(1, 3), (5, 9)])
            frame = {"type": "req", "id": "p", "method": "connect", "params": params}
            code = 1002
        else:
            frame = {"type": "req", "id": "p", "method": "connect", "pad": "x" * 70_000}
            code = 1009
        tally.stats["gateway frames"] += 1
        got_res = False
        async with connect(url, compression=None, max_size=None) as ws:
            await ws.send(json.dumps(frame))
            try:
                while True:
                    reply = json.loads(await asyncio.wait_for(ws.recv(), 10))
                    got_res = got_res or reply.get("type") == "res"
            except ConnectionClosed as exc:
                closed = exc.rcvd.code if exc.rcvd else None
                tally.stats[f"gateway pre-connect closed {closed}"] += 1
                if closed != code:
                    tally.report.fail(
                        f"gateway pre-connect {str(frame)[:80]}: closed {closed}, wanted {code}"
                    )
            except TimeoutError:
                tally.report.fail(f"gateway pre-connect {str(frame)[:80]}: not closed (hang)")
        if want_res and not got_res:
            tally.report.fail(f"gateway pre-connect {str(frame)[:80]}: no error res before close")


async def gateway_round(url: str, token: str, gen: Gen, n: int, tally: Tally) -> None:
    """Gateway dialect: a connect (right or wrong), then fuzzed `req` frames; never 1011."""
    try:
        await _gateway_round(url, token, gen, n, tally)
    except (ConnectionClosed, TimeoutError, ValueError) as exc:
        tally.report.fail(f"gateway round failed: {type(exc).__name__}: {exc}")


async def _gateway_round(url: str, token: str, gen: Gen, n: int, tally: Tally) -> None:
    r = gen.rng
    sent = 0
    while sent < n:
        async with connect(url, compression=None, max_size=None) as ws:
            challenge = json.loads(await asyncio.wait_for(ws.recv(), 10))
            if challenge.get("event") != "connect.challenge":
                tally.report.fail(f"gateway: first frame {str(challenge)[:100]}")
                return
            good = r.random() < 0.8
            connect_frame = {
                "type": "req",
                "id": "c1",
                "method": "connect",
                "params": {
                    "minProtocol": 4,
                    "maxProtocol": 4,
                    "client": {
                        "id": "gateway-client",
                        "version": "1",
                        "platform": "linux",
                        "mode": "backend",
                    },
                    "role": "operator",
                    "scopes": ["operator.admin"],
                    "auth": {"token": token if good else gen.string(short=True)},
                },
            }
            await ws.send(json.dumps(connect_frame))
            sent += 1
            tally.stats["gateway frames"] += 1
            try:
                hello = json.loads(await asyncio.wait_for(ws.recv(), 10))
            except ConnectionClosed as exc:
                tally.stats[f"gateway closed {exc.rcvd.code if exc.rcvd else None}"] += 1
                continue
            if not hello.get("ok"):
                try:
                    await asyncio.wait_for(ws.recv(), 10)
                except ConnectionClosed as exc:
                    code = exc.rcvd.code if exc.rcvd else None
                    tally.stats[f"gateway refused, closed {code}"] += 1
                    tally.report.check(code == 1008, f"gateway: bad connect closed {code}")
                continue
            pending: set[str] = set()
            for i in range(min(200, n - sent)):
                sent += 1
                tally.stats["gateway frames"] += 1
                roll = r.random()
                if roll < 0.6:
                    rid = f"g{i}"
                    method = r.choice(
                        ["sessions.list", "sessions.cleanup", "health", "nope", "sessions.patch"]
                    )
                    params = gen.value(1) if r.random() < 0.5 else {}
                    frame = {"type": "req", "id": rid, "method": method, "params": params}
                    pending.add(rid)
                    await ws.send(json.dumps(frame))
                elif roll < 0.8:
                    await ws.send(gen.malformed(True).data)  # ignored after hello
                else:
                    obj, _ = gen.member()
                    await ws.send(json.dumps(obj))  # JSON-RPC shape: not a gateway req
            deadline = time.monotonic() + 20
            try:
                while pending and time.monotonic() < deadline:
                    data = await asyncio.wait_for(ws.recv(), deadline - time.monotonic())
                    reply = json.loads(data)
                    if reply.get("type") == "res":
                        pending.discard(reply.get("id"))
                        tally.stats[f"gateway res ok={reply.get('ok')}"] += 1
            except ConnectionClosed as exc:
                code = exc.rcvd.code if exc.rcvd else None
                tally.stats[f"gateway closed {code} after hello"] += 1
                tally.report.check(code not in (1011, None), f"gateway: closed {code}")
            except TimeoutError:
                pass
            if pending:
                tally.report.fail(f"gateway: {len(pending)} requests never answered (hang)")


# ---------------------------------------------------------------------------------- main


def run(frames: int, connections: int, seed: int, workdir: Path) -> Report:
    report = Report("fuzzing (JSON-RPC frames; gateway dialect when present)")
    report.figures["machine"] = machine()
    rows = {
        "agent:main:a": {"sessionId": "sa", "updatedAt": 1000},
        "agent:main:b": {"sessionId": "sb", "updatedAt": 2000, "model": "m"},
    }
    token = "fuzz-token-0123456789"
    root = write_state_dir(workdir / "fuzz", {"main": rows, "work": {}})
    tally = Tally(report)
    samples: dict[str, int] = {}
    closing = max(20, frames // 200)
    main_frames = frames - closing
    gateway_frames = main_frames // 10
    rpc_frames = main_frames - gateway_frames
    with DaemonProcess(root, "--max-frame-bytes", str(MAX_FRAME)) as daemon:
        started = time.monotonic()
        samples["rss_start_kb"] = daemon.rss_kb()[0]

        def sample_rss() -> None:
            samples["rss_last_kb"] = daemon.rss_kb()[0]

        async def half(offset: int) -> None:
            per = -(-rpc_frames // 2 // connections)  # rounded up: never fewer frames
            gens = [Gen(seed * 7919 + offset + i) for i in range(connections)]
            await asyncio.gather(
                *(pipeline(daemon.url, g, per, tally, sample_rss) for g in gens),
                closing_round(daemon.url, Gen(seed + offset + 99), closing // 2, tally),
            )

        async def go() -> None:
            await half(0)
            samples["rss_after_half_kb"] = daemon.rss_kb()[0]
            await half(1000)
            samples["rss_end_kb"] = daemon.rss_kb()[0]

        asyncio.run(go())
        elapsed = time.monotonic() - started
        alive = daemon.proc.poll() is None
        report.check(alive, "daemon died")
        health = http_status(daemon.port, "/healthz") if alive else 0
        report.check(health == 200, f"/healthz {health} after fuzzing")
        gd = DaemonProcess(write_state_dir(workdir / "gw", {"main": rows}), "--token", token)
        with gd:
            pre = gateway_frames // 5
            asyncio.run(gateway_preconnect(gd.url, token, Gen(seed + 6), pre, tally))
            asyncio.run(gateway_round(gd.url, token, Gen(seed + 5), gateway_frames - pre, tally))
            report.check(gd.proc.poll() is None, "gateway daemon died")
    logs = daemon.logs()
    crashes = logs.count("connection handler failed") + logs.count("internal error")
    report.check(crashes == 0, f"{crashes} handler failures / internal errors in the daemon log")
    total = sum(v for k, v in tally.stats.items() if k.startswith("frames ") and "binary" not in k)
    total -= tally.stats["frames text"]
    growth_mb = (samples["rss_end_kb"] - samples["rss_after_half_kb"]) / 1024
    report.check(growth_mb < 10, f"RSS grew {growth_mb:.1f} MB over the second half")
    report.figures.update(
        frames=total + tally.stats["gateway frames"],
        frames_by_kind={
            k.removeprefix("frames "): v
            for k, v in sorted(tally.stats.items())
            if k.startswith("frames ")
        },
        answers_by_code={
            k.removeprefix("answer "): v
            for k, v in sorted(tally.stats.items())
            if k.startswith("answer ")
        },
        closes={k: v for k, v in sorted(tally.stats.items()) if k.startswith("closed ")},
        gateway_dialect="fuzzed",
        gateway={k: v for k, v in sorted(tally.stats.items()) if k.startswith("gateway ")},
        crashes=int(not alive) + crashes,
        hangs=tally.stats["hangs"],
        frames_per_s=round(total / elapsed),
        rss_mb={k: round(v / 1024, 1) for k, v in samples.items()},
        rss_growth_second_half_mb=round(growth_mb, 1),
    )
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--frames", type=int, default=100_000)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--workdir", help="keep the state dirs and daemon logs here")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="sessiond-fuzz-") as temp:
        workdir = Path(args.workdir) if args.workdir else Path(temp)
        return run(args.frames, args.connections, args.seed, workdir).finish()


if __name__ == "__main__":
    raise SystemExit(main())
