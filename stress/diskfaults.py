"""Disk faults: flushes under a full disk, a read-only filesystem and RLIMIT_FSIZE.

The agent's sessions directory is a 1 MiB tmpfs (needs root and `mount`; otherwise those two
scenarios are skipped and said so) holding a ~300 KB store:

- full disk: a filler file takes every free byte, then a patch arrives;
- read-only: the tmpfs is remounted read-only, then a patch arrives;
- RLIMIT_FSIZE (no root needed): the daemon runs with a file-size limit below the store's size.

In each: the patch is answered `durable: false` (not left hanging); `sessions.get` serves the
change from memory; `/readyz` answers 503 naming the reason and `daemon.status` shows
`flushError`; sessions.json is byte-for-byte what it was (no partial file) and no temp file is
left. Then the fault is removed (filler deleted, remounted read-write, limit raised) and within
the retry backoff the change reaches the file, `/readyz` is 200 again and nothing is dirty.

    PYTHONPATH=tests .venv/bin/python stress/diskfaults.py
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import resource
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from harness.daemon_process import DaemonProcess, http_reply, http_status
from harness.raw_frames import RpcClient
from harness.state_dirs import store_path, write_state_dir
from harness.stress_report import Report, machine

ROWS = {
    f"agent:main:r{i}": {"sessionId": f"s{i}", "updatedAt": i, "pad": "x" * 2000}
    for i in range(150)
}


def can_mount() -> bool:
    if os.geteuid() != 0:
        return False
    with tempfile.TemporaryDirectory() as probe:
        ok = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", probe], capture_output=True
        )
        if ok.returncode != 0:
            return False
        subprocess.run(["umount", probe], check=False)
    return True


@contextlib.contextmanager
def tmpfs(directory: Path, size: str = "1m") -> Iterator[None]:
    directory.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(directory)], check=True
    )
    try:
        yield
    finally:
        subprocess.run(["umount", "-l", str(directory)], check=False)


def fill(directory: Path) -> Path:
    """A file that takes every free byte of the filesystem."""
    filler = directory / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        for size in (65536, 4096, 1):
            with contextlib.suppress(OSError):
                while True:
                    os.write(fd, b"\0" * size)
    finally:
        os.close(fd)
    return filler


async def scenario(
    report: Report,
    name: str,
    daemon: DaemonProcess,
    path: Path,
    inject: Callable[[], None],
    repair: Callable[[], None],
    figures: dict[str, Any],
    fields: dict[str, Any] | None = None,
) -> None:
    fields = fields or {"n": 1}
    before = path.read_bytes()
    async with await RpcClient.connect(daemon.url) as client:
        inject()
        key = f"agent:main:{name}"
        started = time.monotonic()
        result = await client.call("sessions.patch", {"key": key, "fields": fields}, timeout=30)
        answered_s = time.monotonic() - started
        report.check(not result.durable, f"{name}: answered durable: true under the fault")
        got = await client.call("sessions.get", {"key": key})
        report.check(json.loads(bytes(got.entry)) == fields, f"{name}: change not in memory")
        ready, text = http_reply(daemon.port, "/readyz")
        report.check(ready == 503, f"{name}: /readyz {ready} while failing")
        status = (await client.call("daemon.status")).stores[0]
        report.check(bool(status.flush_error), f"{name}: no flushError in daemon.status")
        report.check(status.dirty, f"{name}: not dirty while failing")
        await asyncio.sleep(0.5)  # a retry or two under the fault
        report.check(path.read_bytes() == before, f"{name}: sessions.json changed under the fault")
        temps = [p.name for p in path.parent.iterdir() if p.name.endswith(".tmp")]
        report.check(not temps, f"{name}: temp files left under the fault: {temps}")
        repair()
        repaired = time.monotonic()
        recovered = None
        while time.monotonic() - repaired < 15:
            status = (await client.call("daemon.status")).stores[0]
            if not status.dirty and http_status(daemon.port, "/readyz") == 200:
                recovered = time.monotonic() - repaired
                break
            await asyncio.sleep(0.05)
        report.check(recovered is not None, f"{name}: no recovery within 15 s")
        on_disk = json.loads(path.read_text())
        report.check(on_disk.get(key) == fields, f"{name}: change not on disk after recovery")
        report.check(
            all(on_disk.get(k) == v for k, v in ROWS.items()), f"{name}: rows lost after recovery"
        )
        figures[name] = {
            "answered_durable_false_after_s": round(answered_s, 2),
            "readyz_while_failing": f"{ready} {text.strip().split('flush failing: ')[-1][:60]}",
            "flush_failures": status.flush_failures,
            "recovered_after_s": None if recovered is None else round(recovered, 2),
        }


def run(workdir: Path) -> Report:
    report = Report("disk faults (full disk, read-only, RLIMIT_FSIZE)")
    report.figures["machine"] = machine()
    figures: dict[str, Any] = {}
    mountable = can_mount()
    if mountable:
        root = write_state_dir(workdir / "tmpfs", {"main": None})
        sessions = store_path(root).parent
        with tmpfs(sessions):
            store_path(root).write_text(json.dumps(ROWS))
            with DaemonProcess(root) as daemon:
                filler: list[Path] = []

                def inject_full() -> None:
                    filler.append(fill(sessions))

                def repair_full() -> None:
                    filler.pop().unlink()

                def inject_ro() -> None:
                    subprocess.run(["mount", "-o", "remount,ro", str(sessions)], check=True)

                def repair_ro() -> None:
                    subprocess.run(["mount", "-o", "remount,rw", str(sessions)], check=True)

                asyncio.run(
                    scenario(
                        report,
                        "full_disk",
                        daemon,
                        store_path(root),
                        inject_full,
                        repair_full,
                        figures,
                    )
                )
                asyncio.run(
                    scenario(
                        report, "read_only", daemon, store_path(root), inject_ro, repair_ro, figures
                    )
                )
                report.check(daemon.proc.poll() is None, "daemon died")
    else:
        figures["full_disk"] = figures["read_only"] = "skipped: needs root and mount"
    # RLIMIT_FSIZE: the daemon cannot write a file larger than the limit (EFBIG).
    root = write_state_dir(workdir / "fsize", {"main": ROWS})
    limit = store_path(root).stat().st_size + 512
    daemon = DaemonProcess(root, preexec=lambda: _limit_fsize(limit))
    with daemon:

        def inject_fsize() -> None:
            pass  # the limit is there from the start; the patch makes the store outgrow it

        def repair_fsize() -> None:
            resource.prlimit(daemon.pid, resource.RLIMIT_FSIZE, (resource.RLIM_INFINITY,) * 2)

        big = {"n": 1, "pad": "y" * 2048}  # the store outgrows the limit
        asyncio.run(
            scenario(
                report,
                "rlimit_fsize",
                daemon,
                store_path(root),
                inject_fsize,
                repair_fsize,
                figures,
                big,
            )
        )
    report.figures.update(figures)
    return report


def _limit_fsize(limit: int) -> None:
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, resource.RLIM_INFINITY))


def main(argv: list[str] | None = None) -> int:
    with tempfile.TemporaryDirectory(prefix="sessiond-disk-") as temp:
        return run(Path(temp)).finish()


if __name__ == "__main__":
    raise SystemExit(main())
