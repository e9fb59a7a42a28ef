"""Edit races: external edits of sessions.json, some from old reads, against RPC writes.

Keys come in three families, 16 each: `d*` written only over RPC, `e*` only by the external
editor, `s*` by both. Every write sets `{"n": c, "by": ..., "updatedAt": c}` with `c` from one
counter shared by both sides. Four RPC writers patch `d*` and `s*` keys; one editor thread
reads the file, changes two `e*` keys and often one `s*` key, and writes it back, by turns with
rename-over, in place truncating first, or in place overwriting then truncating. About one
edit in three is built not on a fresh read but on one the editor kept from up to `--stale-age`
seconds earlier (45 s by default; the run is paced to last that long), as a gateway with a slow
read-to-rename would. The daemon pauses 2 ms before its check and 2 ms between its check and
its rename (fault hooks), so edits land in its write window too, and some after its check.

The editor notes for each edit how old its read was, whether the file changed between that
read and its write (a *stale* edit) and whether its write overlapped the daemon's write (read
from the fault hook's phase file). At the end, with both sides stopped and the daemon settled:

- the file and the daemon's memory agree, and the file parses;
- `e*`: the row as the editor's last file had it (the editor's rows are its own to take back,
  even by a stale file), unless that file was written in place while the daemon renamed (an
  in-place write into a file being replaced is a race no reader can close);
- `d*` and `s*`: at least the last value acknowledged `durable: true`: 0 lost acknowledged
  writes, however old the read an edit was built on;
- `s*`: an editor's change is lost only to an RPC write sent after it, or to the editor's own
  later file built on a read from before that change;
- conflicts: `daemon.status` counts exactly the conflicts logged, each logged winner follows the
  rule (the daemon wins only with a strictly greater numeric `updatedAt`), and none is on an
  `e*` key (the daemon never changes those); repaired stale writes: counted = logged, none on
  an `e*` key (only sessiond's own rows are protected).

    .venv/bin/python stress/races.py [--edits 1000] [--writes 1000] [--stale-age 45] [--seed 1]
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
from collections import Counter, defaultdict, deque
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
    keys: dict[str, int]  # the rows this edit changed
    body: dict[str, int]  # every row's n in the file it wrote
    started: float  # before reading the file
    written: float  # after the write returned
    age: float  # how old the read it was built on was, at its write
    stale: bool  # the file changed between that read and the write
    window: bool


def read_phase(path: Path) -> tuple[int, str]:
    try:
        parts = path.read_text().split()
        return int(parts[0]), parts[1]
    except (OSError, ValueError, IndexError):
        return 0, "none"


class Editor(threading.Thread):
    def __init__(
        self,
        path: Path,
        phase: Path,
        edits: int,
        counter: Any,
        seed: int,
        stale_age: float,
        pace: float,
    ) -> None:
        super().__init__(daemon=True)
        self.path = path
        self.phase = phase
        self.count = edits
        self.counter = counter
        self.rng = random.Random(seed)
        self.stale_age = stale_age
        self.pace = pace
        self.reads: deque[tuple[float, bytes, os.stat_result]] = deque()  # kept old reads
        self.edits: list[Edit] = []
        self.skipped = 0
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            for i in range(self.count):
                self.edit(i)
                time.sleep(self.rng.uniform(0, 2 * self.pace))
        except BaseException as exc:
            self.error = exc

    def read(self) -> tuple[float, bytes, os.stat_result]:
        """A fresh read, kept for later edits; or, one time in three, a kept older one."""
        with open(self.path, "rb") as handle:
            st = os.fstat(handle.fileno())
            data = handle.read()
        now = time.monotonic()
        self.reads.append((now, data, st))
        while self.reads and self.reads[0][0] < now - self.stale_age:
            self.reads.popleft()
        if self.rng.random() < 0.33 and len(self.reads) > 1:
            return self.reads[self.rng.randrange(len(self.reads) - 1)]
        return now, data, st

    def edit(self, i: int) -> None:
        started = time.monotonic()
        read_at, data, st = self.read()
        try:
            rows = json.loads(data)
        except ValueError:
            self.skipped += 1  # read while an in-place edit of ours was half written
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
        written = time.monotonic()
        stale = (now.st_ino, now.st_size, now.st_mtime_ns) != (
            st.st_ino,
            st.st_size,
            st.st_mtime_ns,
        )
        # In the window if the daemon had passed its check and not yet renamed, or a write of
        # the daemon began or ended while ours ran.
        window = before[1] == "after-precheck" or before[0] != after[0] or after[1] != before[1]
        values = {k: int(v["n"]) for k, v in rows.items()}
        age = written - read_at
        self.edits.append(Edit(i, mode, changed, values, started, written, age, stale, window))


class Writers:
    def __init__(self, counter: Any, seed: int, total: int, pace: float) -> None:
        self.counter = counter
        self.pace = pace
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
                await asyncio.sleep(self.rng.uniform(0, 2 * self.pace))


def run(edits: int, writes: int, seed: int, workdir: Path, stale_age: float = 2.0) -> Report:
    """`stale_age`: how old a kept read may get; the run is paced to last about that long."""
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
        "SESSIOND_TEST_FAULT_HOOK": "after-temp-write:pause,after-precheck:pause",
        "SESSIOND_TEST_FAULT_PAUSE": "0.002",
        "SESSIOND_TEST_FAULT_PHASE": str(phase),
    }
    counter = itertools.count(1)
    span = max(stale_age + 3.0, 0.002 * edits)  # the old pace (0-4 ms a step) at the fastest
    editor = Editor(path, phase, edits, counter, seed, stale_age, span / edits)
    writers = Writers(counter, seed + 1, writes, span * WRITERS / writes)
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

    last_edit = editor.edits[-1] if editor.edits else None
    ext_last: dict[str, Edit] = {}  # the last edit that changed each row
    for edit in editor.edits:
        for key in edit.keys:
            ext_last[key] = edit
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
            if last_edit is not None and n != last_edit.body.get(key):
                if last_edit.window and last_edit.mode != "rename":
                    stats["e: the last edit, in place, lost to a daemon rename"] += 1
                else:
                    stats["e lost"] += 1
                    report.fail(
                        f"{key}: the editor's last file ({last_edit.mode}) had "
                        f"{last_edit.body.get(key)}, the store has {n}"
                    )
            continue
        acked = writers.acked.get(key, [])
        last_ack = max(acked) if acked else None
        if last_ack and n < last_ack[0]:
            stats[f"{family} lost"] += 1
            report.fail(
                f"{key}: durable n={last_ack[0]} lost (file has {final['by']} {n}); "
                + trail(key, n, last_ack[1], editor.edits, logs)
            )
            continue
        if family == "s":
            edit = ext_last.get(key)
            ext_n = edit.keys[key] if edit else None
            if edit and final["by"] == "rpc" and ext_n is not None and n < ext_n:
                sent_at = [t for m, t in writers.sent.get(key, []) if m == n]
                # The editor's own later file, built on a read from before this edit, may take
                # its change back (its rows, its race): the row then holds what that file had.
                undone = [
                    e
                    for e in editor.edits
                    if e.index > edit.index
                    and e.written - e.age < edit.written
                    and e.body.get(key) == n
                ]
                if undone:
                    stats["s: an edit's change taken back by a later stale edit"] += 1
                elif edit.window and edit.mode != "rename":
                    stats["s: an in-place edit lost to a daemon rename"] += 1
                elif not sent_at or sent_at[0] < edit.started - 0.5:
                    report.fail(
                        f"{key}: edit #{edit.index} ({edit.mode}, read {edit.age:.2f} s old, "
                        f"stale {edit.stale}, window {edit.window}) value {ext_n} lost to "
                        f"older rpc {n}"
                    )
            stats[f"s final by {final['by']}"] += 1

    # Repaired stale writes: counted as logged, only on rows the daemon wrote.
    repairs = [e for e in logs if e.get("event") == "stale write repaired"]
    repaired_by_family = Counter(str(e.get("key", "")).split(":")[-1][:1] for e in repairs)
    report.check(
        status.stale_writes_repaired == len(repairs) == status.stores[0].stale_writes_repaired,
        f"stale writes repaired: status {status.stale_writes_repaired}, logged {len(repairs)}",
    )
    report.check(repaired_by_family["e"] == 0, "a stale write 'repaired' on an editor-only row")
    handed_back = [
        e
        for e in logs
        if e.get("event") == "another writer's file landed after the check; merging it"
    ]

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
    ages = [e.age for e in editor.edits]
    age_buckets = Counter(
        "<0.1 s"
        if a < 0.1
        else "0.1-1 s"
        if a < 1
        else "1-10 s"
        if a < 10
        else "10-30 s"
        if a < 30
        else ">=30 s"
        for a in ages
    )
    report.figures.update(
        external_edits=len(editor.edits),
        edits_by_mode=dict(Counter(e.mode for e in editor.edits)),
        edits_by_read_age=dict(sorted(age_buckets.items())),
        oldest_read_s=round(max(ages, default=0.0), 1),
        stale_edits=sum(e.stale for e in editor.edits),
        edits_in_the_daemons_write_window=sum(e.window for e in editor.edits),
        rpc_writes=sum(len(v) for v in writers.sent.values()),
        rpc_durable_acks=sum(len(v) for v in writers.acked.values()),
        rpc_not_durable=writers.not_durable,
        rpc_refused=dict(writers.refused),
        external_reloads=reloads,
        flushes=status.stores[0].flushes,
        handed_back_by_the_exchange=len(handed_back),
        stale_writes_repaired=status.stale_writes_repaired,
        stale_writes_repaired_by_family=dict(repaired_by_family),
        conflicts=status.conflicts,
        conflicts_logged=len(conflict_logs),
        conflicts_by_family=dict(by_family),
        conflict_winners=dict(winners),
        conflicts_with_row_absent_in_file=phantom,
        reader_lists=stats.pop("reader lists", 0),
        reader_lists_missing_rows=stats.pop("reader lists missing rows", 0),
        outcomes=dict(sorted(stats.items())),
        lost_acknowledged_writes=stats["d lost"] + stats["s lost"],
        violations_lost=stats["e lost"] + stats["d lost"] + stats["s lost"],
    )
    return report


def trail(key: str, n: int, acked_at: float, edits: list[Edit], logs: list[Any]) -> str:
    """Where a lost row went, for the violation: what the daemon logged about it (conflicts,
    repairs) and the editor's files that wrote its final value back after the ack."""
    notes = []
    for e in logs:
        if e.get("key") != key:
            continue
        if str(e.get("event", "")).startswith("conflict"):
            at = (e.get("daemon_updated_at"), e.get("external_updated_at"))
            notes.append(f"conflict won by {e.get('winner')} (daemon, file updatedAt: {at})")
        elif e.get("event") == "stale write repaired":
            notes.append(f"repaired ({e.get('why')})")
    back = [
        f"#{e.index} {e.mode} read {e.age:.2f} s old, before the ack "
        f"{e.written - e.age < acked_at}, stale {e.stale}, window {e.window}"
        for e in edits
        if e.written > acked_at and e.body.get(key) == n
    ][:3]
    return (
        f"daemon logged: {notes[-4:] or 'nothing'}; first files writing {n} after the ack: {back}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--edits", type=int, default=1000)
    parser.add_argument("--writes", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--stale-age", type=float, default=45.0, help="oldest kept read (s)")
    parser.add_argument("--workdir", help="keep the state dir and daemon log here")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="sessiond-races-") as temp:
        workdir = Path(args.workdir) if args.workdir else Path(temp)
        return run(args.edits, args.writes, args.seed, workdir, args.stale_age).finish()


if __name__ == "__main__":
    raise SystemExit(main())
