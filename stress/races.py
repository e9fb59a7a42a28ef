"""Edit races: external edits of sessions.json interleaved with RPC writes, nothing lost.

Keys come in three families, 16 each: `d*` written only over RPC, `e*` only by the external
editor, `s*` by both. Every write sets `{"n": c, "by": ..., "updatedAt": c}` with `c` from one
counter shared by both sides. Four RPC writers patch `d*` and `s*` keys; one editor thread
reads the file, changes two `e*` keys and often one `s*` key, and writes it back, by turns with
rename-over, in place truncating first, or in place overwriting then truncating. The daemon
pauses 2 ms between its temp file and its rename (fault hook) so edits land in that window too.

The editor notes for each edit whether the file changed between its read and its write (a
*stale* edit: by the conflict rule the file wins for keys without an unflushed daemon change, so
it may revert a daemon value that was already durable) and whether its write may have landed
between the daemon's last check and its rename (the documented microsecond window, read from
the fault hook's phase file). At the end, with both sides stopped and the daemon settled:

- the file and the daemon's memory agree, and the file parses;
- `e*`: the editor's last value, unless that edit was in the check-rename window;
- `d*`: at least the last value acknowledged `durable: true`, unless a stale edit came after
  that acknowledgement (counted as "reverted by a stale external write");
- `s*`: a value someone wrote; the last durable RPC value unless a later edit or stale edit
  explains it; the editor's last value unless a later RPC write explains it;
- conflicts: `daemon.status` counts exactly the conflicts logged, each logged winner follows the
  rule (the daemon wins only with a strictly greater numeric `updatedAt`), and none is on an
  `e*` key (the daemon never changes those).

    .venv/bin/python stress/races.py [--edits 1000] [--writes 1000] [--seed 1]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import random
import tempfile
import threading
import time
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.daemon_process import DaemonProcess as Daemon
from harness.raw_frames import RpcClient
from harness.state_dirs import store_path, write_state_dir
from harness.stress_report import Report, machine

FAMILY = 16
WRITERS = 4


@dataclass
class Edit:
    index: int
    mode: str
    keys: dict[str, int]
    started: float  # before reading the file
    written: float  # after the write returned
    stale: bool
    window: bool


def read_phase(path: Path) -> tuple[int, str]:
    try:
        parts = path.read_text().split()
        return int(parts[0]), parts[1]
    except (OSError, ValueError, IndexError):
        return 0, "none"


class Editor(threading.Thread):
    def __init__(self, path: Path, phase: Path, edits: int, counter: Any, seed: int) -> None:
        super().__init__(daemon=True)
        self.path = path
        self.phase = phase
        self.count = edits
        self.counter = counter
        self.rng = random.Random(seed)
        self.edits: list[Edit] = []
        self.skipped = 0
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            for i in range(self.count):
                self.edit(i)
                time.sleep(self.rng.uniform(0, 0.004))
        except BaseException as exc:
            self.error = exc

    def edit(self, i: int) -> None:
        started = time.monotonic()
        with open(self.path, "rb") as handle:
            st = os.fstat(handle.fileno())
            data = handle.read()
        try:
            rows = json.loads(data)
        except ValueError:
            self.skipped += 1  # cannot happen: the daemon writes by rename; counted anyway
            return
        keys = self.rng.sample([f"agent:main:e{k}" for k in range(FAMILY)], 2)
        if self.rng.random() < 0.7:
            keys.append(f"agent:main:s{self.rng.randrange(FAMILY)}")
        changed: dict[str, int] = {}
        for key in keys:
            n = next(self.counter)
            rows[key] = {"n": n, "by": "ext", "updatedAt": n}
            changed[key] = n
        body = json.dumps(rows, indent=2).encode()
        mode = ("rename", "in-place-truncate", "in-place-overwrite")[i % 3]
        before = read_phase(self.phase)
        if mode == "rename":
            temp = self.path.with_name(f"editor.{i}.tmp")
            temp.write_bytes(body)
            now = os.stat(self.path)
            os.replace(temp, self.path)
        else:
            now = os.stat(self.path)
            with open(self.path, "r+b") as handle:
                if mode == "in-place-truncate":
                    handle.truncate(0)
                    handle.write(body)
                else:
                    handle.write(body)
                    handle.truncate()
        after = read_phase(self.phase)
        stale = (now.st_ino, now.st_size, now.st_mtime_ns) != (
            st.st_ino,
            st.st_size,
            st.st_mtime_ns,
        )
        # In the window if the daemon had passed its check and not yet renamed, or a write of
        # the daemon began or ended while ours ran.
        window = before[1] == "after-precheck" or before[0] != after[0] or after[1] != before[1]
        self.edits.append(Edit(i, mode, changed, started, time.monotonic(), stale, window))


class Writers:
    def __init__(self, counter: Any, seed: int, total: int) -> None:
        self.counter = counter
        self.rng = random.Random(seed)
        self.total = total
        self.sent: dict[str, list[tuple[int, float]]] = defaultdict(list)  # n, send time
        self.acked: dict[str, list[tuple[int, float]]] = defaultdict(list)  # n, ack time
        self.not_durable = 0
        self.refused: Counter[str] = Counter()
        self.done = 0

    async def run(self, url: str) -> None:
        async with await RpcClient.connect(url) as client:
            while self.done < self.total:
                self.done += 1
                family = "d" if self.rng.random() < 0.5 else "s"
                key = f"agent:main:{family}{self.rng.randrange(FAMILY)}"
                n = next(self.counter)
                self.sent[key].append((n, time.monotonic()))
                fields = {"n": n, "by": "rpc", "updatedAt": n}
                try:
                    result = await client.call("sessions.patch", {"key": key, "fields": fields})
                except Exception as exc:  # -32002 while an in-place edit is half written
                    self.refused[str(getattr(exc, "code", type(exc).__name__))] += 1
                    continue
                if result.durable:
                    self.acked[key].append((n, time.monotonic()))
                else:
                    self.not_durable += 1
                await asyncio.sleep(self.rng.uniform(0, 0.003))


def run(edits: int, writes: int, seed: int, workdir: Path) -> Report:
    report = Report("edit races (external edits vs RPC writes)")
    report.figures["machine"] = machine()
    initial = {
        f"agent:main:{f}{k}": {"n": 0, "by": "init", "updatedAt": 0}
        for f in "des"
        for k in range(FAMILY)
    }
    root = write_state_dir(workdir / "races", {"main": initial})
    path = store_path(root)
    phase = root / "phase"
    env = {
        "SESSIOND_TEST_FAULT_HOOK": "after-temp-write:pause",
        "SESSIOND_TEST_FAULT_PAUSE": "0.002",
        "SESSIOND_TEST_FAULT_PHASE": str(phase),
    }
    counter = itertools.count(1)
    editor = Editor(path, phase, edits, counter, seed)
    writers = Writers(counter, seed + 1, writes)
    stats: Counter[str] = Counter()
    with Daemon(root, env=env) as daemon:

        async def reader(stop: asyncio.Event) -> None:
            """Every row exists throughout; count the lists that miss some (phantom deletions)."""
            async with await RpcClient.connect(daemon.url) as client:
                while not stop.is_set():
                    page = await client.call("sessions.list", {"limit": 1000})
                    stats["reader lists"] += 1
                    if page.total_count < len(initial):
                        stats["reader lists missing rows"] += 1
                    await asyncio.sleep(0.005)

        async def go() -> Any:
            editor.start()
            stop = asyncio.Event()
            watching = asyncio.create_task(reader(stop))
            await asyncio.gather(*(writers.run(daemon.url) for _ in range(WRITERS)))
            stop.set()
            await watching
            while editor.is_alive():
                await asyncio.sleep(0.05)
            # Settle: the watcher sees the last edit, the daemon flushes what it holds.
            async with await RpcClient.connect(daemon.url) as client:
                deadline = time.monotonic() + 20
                status = None
                stable = 0
                while time.monotonic() < deadline:
                    await asyncio.sleep(0.2)
                    status = await client.call("daemon.status")
                    stable = stable + 1 if not status.stores[0].dirty else 0
                    if stable >= 3:
                        break
                rows = {}
                for key in initial:
                    got = await client.call("sessions.get", {"key": key})
                    rows[key] = json.loads(bytes(got.entry))
                return status, rows

        status, memory = asyncio.run(go())
        logs = daemon.log_events()
    if editor.error is not None:
        report.fail(f"editor failed: {editor.error!r}")
    on_disk = json.loads(path.read_text())
    report.check(on_disk == memory, "the daemon's memory and the file differ after settling")

    ext_last: dict[str, Edit] = {}
    for edit in editor.edits:
        for key in edit.keys:
            ext_last[key] = edit
    stale_times = [e.written for e in editor.edits if e.stale or e.window]

    def stale_after(t: float) -> bool:
        return any(w > t for w in stale_times)

    truncating = [e.written for e in editor.edits if e.mode == "in-place-truncate"]

    def truncated_after(t: float) -> bool:
        return any(w > t for w in truncating)

    written: dict[str, set[int]] = defaultdict(lambda: {0})
    for key, sent in writers.sent.items():
        written[key].update(n for n, _ in sent)
    for edit in editor.edits:
        for key, n in edit.keys.items():
            written[key].add(n)

    for key in initial:
        final = on_disk.get(key)
        family = key.split(":")[-1][0]
        if final is None:
            report.fail(f"{key}: row missing")
            continue
        n = final["n"]
        if n not in written[key]:
            report.fail(f"{key}: holds n={n}, which nobody wrote")
            continue
        if family == "e":
            edit = ext_last.get(key)
            if edit is None:
                continue
            if n != edit.keys[key]:
                if edit.window:
                    stats[f"e lost in the check-rename window ({edit.mode})"] += 1
                else:
                    stats["e lost"] += 1
                    report.fail(f"{key}: external edit #{edit.index} ({edit.mode}) lost: {n}")
            continue
        acked = writers.acked.get(key, [])
        last_ack = max(acked) if acked else None
        if family == "d":
            if last_ack and n < last_ack[0]:
                if stale_after(last_ack[1]):
                    stats["d reverted by a stale external write"] += 1
                elif truncated_after(last_ack[1]):
                    stats["d lost to a half-written in-place edit read as empty"] += 1
                else:
                    stats["d lost"] += 1
                    report.fail(f"{key}: durable n={last_ack[0]} lost (file has {n})")
            continue
        # s keys
        edit = ext_last.get(key)
        ext_n = edit.keys[key] if edit else None
        if last_ack and n < last_ack[0] and final["by"] == "rpc":
            if stale_after(last_ack[1]):
                stats["s reverted by a stale external write"] += 1
            else:
                report.fail(f"{key}: durable n={last_ack[0]} lost (file has rpc {n})")
        elif last_ack and final["by"] == "ext" and edit and edit.written < last_ack[1] - 0.5:
            # The editor's value although an RPC write was acknowledged well after it.
            if stale_after(last_ack[1]):
                stats["s reverted by a stale external write"] += 1
            else:
                report.fail(f"{key}: durable n={last_ack[0]} lost to older edit {ext_n}")
        elif edit and final["by"] == "rpc" and ext_n is not None and n < ext_n:
            sent_after = [t for m, t in writers.sent.get(key, []) if m == n]
            if edit.window:
                stats["s lost in the check-rename window"] += 1
            elif not sent_after or sent_after[0] < edit.started - 0.5:
                report.fail(f"{key}: edit #{edit.index} value {ext_n} lost to older rpc {n}")
        stats[f"s final by {final['by']}"] += 1

    # Conflicts: the counter, the log lines and the rule.
    conflict_logs = [e for e in logs if str(e.get("event", "")).startswith("conflict")]
    report.check(
        status.conflicts == len(conflict_logs) == status.stores[0].conflicts,
        f"conflicts: status {status.conflicts}, store {status.stores[0].conflicts}, "
        f"logged {len(conflict_logs)}",
    )
    by_family: Counter[str] = Counter()
    winners: Counter[str] = Counter()
    phantom = 0
    for event in conflict_logs:
        key = str(event.get("key", ""))
        by_family[key.split(":")[-1][:1]] += 1
        winners[str(event.get("winner"))] += 1
        ours, theirs = event.get("daemon_updated_at"), event.get("external_updated_at")
        # Every row here has a numeric updatedAt, so None means the row was absent on that
        # side: an external deletion wins, a daemon deletion (none here) loses.
        daemon_should_win = ours is not None and theirs is not None and ours > theirs
        if theirs is None:
            phantom += 1
        if (event.get("winner") == "daemon") != daemon_should_win:
            report.fail(f"conflict on {key}: winner {event.get('winner')} breaks the rule")
    report.check(by_family["e"] == 0, f"{by_family['e']} conflicts on external-only keys")
    reloads = status.stores[0].external_reloads
    report.figures.update(
        external_edits=len(editor.edits),
        edits_by_mode=dict(Counter(e.mode for e in editor.edits)),
        stale_edits=sum(e.stale for e in editor.edits),
        edits_in_check_rename_window=sum(e.window for e in editor.edits),
        rpc_writes=sum(len(v) for v in writers.sent.values()),
        rpc_durable_acks=sum(len(v) for v in writers.acked.values()),
        rpc_not_durable=writers.not_durable,
        rpc_refused=dict(writers.refused),
        external_reloads=reloads,
        flushes=status.stores[0].flushes,
        conflicts=status.conflicts,
        conflicts_logged=len(conflict_logs),
        conflicts_by_family=dict(by_family),
        conflict_winners=dict(winners),
        conflicts_with_row_absent_in_file=phantom,
        reader_lists=stats.pop("reader lists", 0),
        reader_lists_missing_rows=stats.pop("reader lists missing rows", 0),
        outcomes=dict(sorted(stats.items())),
        violations_lost=stats["e lost"] + stats["d lost"],
    )
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--edits", type=int, default=1000)
    parser.add_argument("--writes", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--workdir", help="keep the state dir and daemon log here")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="sessiond-races-") as temp:
        workdir = Path(args.workdir) if args.workdir else Path(temp)
        return run(args.edits, args.writes, args.seed, workdir).finish()


if __name__ == "__main__":
    raise SystemExit(main())
