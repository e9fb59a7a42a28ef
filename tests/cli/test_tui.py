"""`sessiond tui` under Textual's headless driver, against a real daemon on a real state dir."""

from __future__ import annotations

import fcntl
import json
import logging
import os
import pty
import select
import socket
import struct
import subprocess
import sys
import termios
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from harness.async_run import run
from harness.daemon_process import DaemonProcess
from harness.state_dirs import read_rows, store_path, write_state_dir
from sessiond.cli.demo import build_demo_state, claim_demo_dir
from sessiond.cli.tui.app import SessiondTui
from sessiond.cli.tui.cleanup_screens import PlanScreen
from sessiond.cli.tui.command import quiet_logs
from sessiond.cli.tui.link import FIRST_PAGE
from sessiond.cli.tui.undo_screens import RestoreScreen, UndoScreen
from sessiond.cli.tui.widgets import VirtualTable
from sessiond.client import SessiondClient
from textual.pilot import Pilot
from textual.widgets import DataTable, Static

Body = Callable[[SessiondTui, Pilot[int]], Awaitable[None]]


def _demo(tmp_path: Path) -> Path:
    root = tmp_path / "state"
    claim_demo_dir(root)
    build_demo_state(root, time.time_ns() // 1_000_000)
    return root


def _drive(url: str, body: Body, size: tuple[int, int] = (80, 24)) -> None:
    async def main() -> None:
        app = SessiondTui(url, None)
        async with app.run_test(size=size) as pilot:
            await body(app, pilot)

    run(main)


async def _wait(pilot: Pilot[int], check: Callable[[], bool], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await pilot.pause(0.02)


def _drawn(app: SessiondTui, selector: str = "#rows") -> list[str]:
    """The table's lines as they are drawn now (header first)."""
    table = app.screen.query_one(selector, VirtualTable)
    return [table.render_line(y).text.rstrip() for y in range(table.size.height)]


def _loaded(app: SessiondTui) -> bool:
    return app.load.done and app.link_state == "live"


def _cli_json(root: Path, url: str, *flags: str) -> Any:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENCLAW_", "SESSIOND_"))}
    env.update(OPENCLAW_STATE_DIR=str(root), HOME=str(root), SESSIOND_URL=url)
    exe = str(Path(sys.executable).with_name("sessiond"))
    done = subprocess.run(
        [exe, "sessions", "cleanup", *flags, "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_the_table_shows_every_row_of_every_store(tmp_path: Path) -> None:
    root = _demo(tmp_path)
    expected = {
        (agent, key)
        for agent in ("main", "work")
        for key in json.loads(store_path(root, agent).read_text())
    }

    async def body(app: SessiondTui, pilot: Pilot[int]) -> None:
        await _wait(pilot, lambda: _loaded(app) and app.status is not None)
        await pilot.pause()
        lines = _drawn(app)
        assert lines[0].split()[:4] == ["Agent", "Key", "Kind", "Age"]
        shown = {(line.split()[0], line.split()[1]) for line in lines[1:] if line}
        assert shown == expected
        assert "2 stores 18 rows" in str(app.screen.query_one("StatusLine", Static).render())

    with DaemonProcess(root) as daemon:
        _drive(daemon.url, body, size=(120, 30))


def test_search_sort_agent_filter_and_the_entry_panel(tmp_path: Path) -> None:
    root = _demo(tmp_path)

    async def body(app: SessiondTui, pilot: Pilot[int]) -> None:
        await _wait(pilot, lambda: _loaded(app))
        await pilot.press("slash", *"cron", "enter")
        await _wait(pilot, lambda: len(app.rows) == 2)
        assert all(":cron:" in line for line in _drawn(app)[1:3])
        await pilot.press("escape")
        await _wait(pilot, lambda: len(app.rows) == 18)
        await pilot.press("a")  # main only
        await _wait(pilot, lambda: len(app.rows) == 9)
        assert {line.split()[0] for line in _drawn(app)[1:10]} == {"main"}
        await pilot.press("s")  # by key
        keys = [line.split()[1] for line in _drawn(app)[1:10]]
        assert keys == sorted(keys, key=str.lower)
        await pilot.press("enter")  # the highlighted row's whole entry, via sessions.get
        body_widget = app.screen.query_one("#detail-body", Static)
        await _wait(pilot, lambda: '"sessionId"' in str(body_widget.render()))
        assert keys[0] in str(body_widget.render())

    with DaemonProcess(root) as daemon:
        _drive(daemon.url, body)


def test_paging_reaches_the_last_row_of_a_10k_row_store(tmp_path: Path) -> None:
    now = time.time_ns() // 1_000_000
    rows = {
        f"agent:main:explicit:row-{n:05d}": {"sessionId": f"s-{n}", "updatedAt": now - n * 1000}
        for n in range(10_000)
    }
    root = write_state_dir(tmp_path / "state", {"main": rows})

    async def body(app: SessiondTui, pilot: Pilot[int]) -> None:
        await _wait(pilot, lambda: app.load.loaded >= FIRST_PAGE)
        assert app.load.total == 10_000
        await _wait(pilot, lambda: app.load.done)
        assert len(app.rows) == 10_000
        await pilot.press("end")
        lines = _drawn(app)
        assert "agent:main:explicit:row-09999" in lines[-1]
        await pilot.press("home")
        assert "agent:main:explicit:row-00000" in _drawn(app)[1]

    with DaemonProcess(root) as daemon:
        _drive(daemon.url, body)


def test_another_clients_changes_appear_without_a_key_press(tmp_path: Path) -> None:
    root = _demo(tmp_path)

    async def body(app: SessiondTui, pilot: Pilot[int]) -> None:
        await _wait(pilot, lambda: _loaded(app))
        async with SessiondClient(app.url) as other:
            await other.sessions_patch(key="agent:main:main", fields={"model": "other/m-live"})
            await _wait(pilot, lambda: any("other/m-live" in line for line in _drawn(app)))
            await other.sessions_patch(
                key="agent:main:explicit:brand-new",
                fields={"sessionId": "s-new", "updatedAt": time.time() * 1000},
            )
            await _wait(pilot, lambda: "agent:main:explicit:brand-new" in _drawn(app)[1])
            await other.sessions_delete(key="agent:main:direct:alice")
            await _wait(pilot, lambda: not any("main:direct:alice" in x for x in _drawn(app)))
        assert len(app.rows) == 18
        await pilot.press("2")
        feed = "\n".join(str(line.text) for line in app.screen.query_one("#feed").lines)
        assert "patch" in feed and "delete" in feed

    with DaemonProcess(root) as daemon:
        _drive(daemon.url, body, size=(120, 30))


def test_a_daemon_that_goes_keeps_the_view_and_a_restart_is_read_again(tmp_path: Path) -> None:
    root = _demo(tmp_path)
    daemon = DaemonProcess(root)
    port = daemon.port

    async def body(app: SessiondTui, pilot: Pilot[int]) -> None:
        nonlocal daemon
        await _wait(pilot, lambda: _loaded(app) and app.status is not None)
        before = _drawn(app)
        daemon.stop()
        await _wait(pilot, lambda: app.link_state == "gone")
        status = str(app.screen.query_one("StatusLine", Static).render())
        assert "daemon gone" in status
        assert _drawn(app) == before, "the last view stays"
        # While it is away, a row goes from disk; the daemon that comes back has one row fewer.
        rows = read_rows(root, "main")
        del rows["agent:main:direct:alice"]
        store_path(root, "main").write_text(json.dumps(rows))
        daemon = DaemonProcess(root, "--port", str(port))
        await _wait(pilot, lambda: app.link_state == "live")
        await _wait(pilot, lambda: ("main", "agent:main:direct:alice") not in app.rows.rows)
        assert len(app.rows) == 17
        gaps = [e.item for e in app.feed if getattr(e.item, "reason", "") == "reconnected"]
        assert {g.agent_id for g in gaps} == {"main", "work"}

    try:
        _drive(daemon.url, body)
    finally:
        daemon.stop()


def test_no_daemon_yet_says_so_and_connects_once_one_listens(tmp_path: Path) -> None:
    root = _demo(tmp_path)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    daemons: list[DaemonProcess] = []

    async def body(app: SessiondTui, pilot: Pilot[int]) -> None:
        await _wait(pilot, lambda: app.link_state == "gone")
        status = str(app.screen.query_one("StatusLine", Static).render())
        assert f"no daemon at ws://127.0.0.1:{port} yet" in status
        assert _drawn(app)[1].strip() == "no sessions yet"
        daemons.append(DaemonProcess(root, "--port", str(port)))
        await _wait(pilot, lambda: _loaded(app) and len(app.rows) == 18)

    try:
        _drive(f"ws://127.0.0.1:{port}", body)
    finally:
        for daemon in daemons:
            daemon.stop()


def _counts(app: SessiondTui) -> dict[str, list[str]]:
    table = app.screen.query_one("#counts", DataTable)
    return {
        str(table.get_row_at(i)[0]): [str(c) for c in table.get_row_at(i)[1:]]
        for i in range(table.row_count)
    }


async def _plan(app: SessiondTui, pilot: Pilot[int], *switches: str) -> PlanScreen:
    await _wait(pilot, lambda: _loaded(app))
    await pilot.press("3", *switches, "p")
    await _wait(pilot, lambda: isinstance(app.screen, PlanScreen))
    assert isinstance(app.screen, PlanScreen)
    return app.screen


def test_a_dry_run_shows_the_counts_the_cli_prints(tmp_path: Path) -> None:
    root = _demo(tmp_path)

    async def body(app: SessiondTui, pilot: Pilot[int]) -> None:
        screen = await _plan(app, pilot, "m", "d")
        counts = _counts(app)
        assert screen.plan.flags.argv() == ["--all-agents", "--fix-missing", "--fix-dm-scope"]
        flags = ("--all-agents", "--fix-missing", "--fix-dm-scope", "--dry-run")
        cli = _cli_json(root, app.url, *flags)
        for store in cli["stores"]:
            budget = store["diskBudget"]
            assert counts[store["agentId"]] == [
                str(store["beforeCount"]),
                str(store["afterCount"]),
                str(store["missing"]),
                str(store["dmScopeRetired"]),
                str(store["pruned"]),
                str(store["capped"]),
                str(store["unreferencedArtifacts"]["removedFiles"]),
                "-" if budget is None else f"{budget['removedFiles']}/{budget['removedEntries']}",
                str(len(store.get("deletions", []))),
            ]
        goes = sum(s["beforeCount"] - s["afterCount"] for s in cli["stores"])
        assert len(screen.source) == goes, "one action row per row that goes"
        legend = str(app.screen.query_one("#legend", Static).render())
        assert "retire-dm-scope 6" in legend and "prune-missing 2" in legend

    with DaemonProcess(root) as daemon:
        _drive(daemon.url, body, size=(100, 30))


def test_apply_removes_what_the_plan_showed(tmp_path: Path) -> None:
    root = _demo(tmp_path)

    async def body(app: SessiondTui, pilot: Pilot[int]) -> None:
        screen = await _plan(app, pilot, "d")
        after = {s.agent_id: s.after_count for s in screen.plan.stores}
        await pilot.press("a")
        await pilot.press("y")
        await _wait(pilot, lambda: screen.applied)
        assert {a: len(read_rows(root, a)) for a in after} == after
        await _wait(pilot, lambda: len(app.rows.rows) == sum(after.values()))

    with DaemonProcess(root) as daemon:
        _drive(daemon.url, body)


def test_an_apply_after_the_store_changed_applies_nothing(tmp_path: Path) -> None:
    root = _demo(tmp_path)

    async def body(app: SessiondTui, pilot: Pilot[int]) -> None:
        screen = await _plan(app, pilot, "d")
        async with SessiondClient(app.url) as other:  # one more stale DM row: the plan moves
            await other.sessions_patch(key="agent:main:direct:bob", fields={"sessionId": "s-bob"})
        before = store_path(root, "main").read_bytes()
        await pilot.press("a", "y")
        message = screen.query_one("#message", Static)
        await _wait(pilot, lambda: "store changed" in str(message.render()))
        assert "retire-dm-scope 6→7" in str(message.render())
        assert store_path(root, "main").read_bytes() == before
        assert not screen.applied
        await pilot.press("r")
        await _wait(pilot, lambda: screen.plan.by_action["retire-dm-scope"] == 7)

    with DaemonProcess(root) as daemon:
        _drive(daemon.url, body, size=(120, 30))


def _sessions_dir(root: Path, agent: str) -> set[str]:
    return {p.name for p in store_path(root, agent).parent.iterdir()}


async def _restore_a_cleanup(app: SessiondTui, pilot: Pilot[int], undo: UndoScreen) -> None:
    """On the Undo screen: move to a restorable cleanup entry, preview it, restore it."""
    await _wait(pilot, lambda: any(r.entry.kind == "cleanup" for r in undo.source.rows))
    at = next(
        i
        for i, r in enumerate(undo.source.rows)
        if r.entry.kind == "cleanup" and r.entry.restorable
    )
    await pilot.press("home", *["down"] * at, "enter")
    await _wait(pilot, lambda: isinstance(app.screen, RestoreScreen))
    restore = app.screen
    assert isinstance(restore, RestoreScreen)
    assert restore.preview.dry_run and restore.preview.restored_rows > 0
    await pilot.press("a", "y")
    await _wait(pilot, lambda: restore.done is not None)
    await pilot.press("escape")
    await _wait(pilot, lambda: app.screen is undo)
    entry = restore.row.entry.id
    await _wait(
        pilot, lambda: all(r.entry.id != entry or not r.entry.restorable for r in undo.source.rows)
    )


def test_apply_then_undo_leaves_the_store_as_it_was(tmp_path: Path) -> None:
    root = _demo(tmp_path)
    agents = ("main", "work")
    stores = {a: store_path(root, a).read_bytes() for a in agents}
    files = {a: _sessions_dir(root, a) for a in agents}

    async def body(app: SessiondTui, pilot: Pilot[int]) -> None:
        plan = await _plan(app, pilot, "m", "d")
        assert plan.plan.plan_id is not None
        lost = {os.path.basename(d.file.path) for d in plan.plan.deletions}
        assert lost, "the demo's orphan transcripts are swept: deletions the preview names"
        await pilot.press("a", "y")
        await _wait(pilot, lambda: plan.applied)
        assert all(store_path(root, a).read_bytes() != stores[a] for a in agents)
        await pilot.press("escape", "4")
        undo = app.screen
        assert isinstance(undo, UndoScreen)
        for _agent in agents:
            await _restore_a_cleanup(app, pilot, undo)
        for agent in agents:
            assert store_path(root, agent).read_bytes() == stores[agent]
            now = _sessions_dir(root, agent)
            daemons_own = {n for n in now if n.endswith((".journal", ".sessiond.lock"))}
            assert now - daemons_own == files[agent] - lost
        await _wait(pilot, lambda: len(app.rows.rows) == 18)

    with DaemonProcess(root) as daemon:
        _drive(daemon.url, body)


def test_logs_go_to_the_file_and_never_to_the_terminal(tmp_path: Path, capfd: Any) -> None:
    log_file = tmp_path / "tui.log"
    root = logging.getLogger()
    saved = list(root.handlers), root.level
    try:
        quiet_logs(str(log_file))
        logging.getLogger("sessiond.client").warning("connection to x closed; reconnecting")
        for handler in root.handlers:
            handler.flush()
    finally:
        for handler in list(root.handlers):
            root.removeHandler(handler)
            handler.close()
        for handler in saved[0]:
            root.addHandler(handler)
        root.setLevel(saved[1])
    out, err = capfd.readouterr()
    assert out == err == ""
    assert "reconnecting" in log_file.read_text()


def test_demo_opens_the_tui_on_a_terminal_and_q_ends_both(tmp_path: Path) -> None:
    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
    exe = str(Path(sys.executable).with_name("sessiond"))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENCLAW_", "SESSIOND_"))}
    env["TERM"] = "xterm-256color"
    demo = tmp_path / "demo"
    child = subprocess.Popen(
        [exe, "demo", "--tui", "--dir", str(demo)],
        stdin=follower,
        stdout=follower,
        stderr=follower,
        env=env,
        start_new_session=True,
    )
    os.close(follower)
    seen = b""
    try:
        deadline = time.monotonic() + 60
        while b"Sessions 18" not in seen and time.monotonic() < deadline:
            if select.select([leader], [], [], 0.1)[0]:
                seen += os.read(leader, 65536)
        assert b"Sessions 18" in seen, seen[-2000:]
        os.write(leader, b"q")
        while child.poll() is None and time.monotonic() < deadline:
            if select.select([leader], [], [], 0.1)[0]:
                try:
                    os.read(leader, 65536)  # drained, or the app blocks on a full terminal
                except OSError:
                    break
        assert child.wait(timeout=30) == 0
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
        os.close(leader)
    assert b"demo state dir" not in seen, "nothing but the TUI while it runs"
    assert '"event":"stopped"' in (demo / "sessiond.log").read_text(), "the demo's daemon ended"


def test_tui_without_a_terminal_says_so(tmp_path: Path) -> None:
    exe = str(Path(sys.executable).with_name("sessiond"))
    done = subprocess.run(
        [exe, "tui", "--url", "ws://127.0.0.1:9"],
        capture_output=True,
        text=True,
        timeout=30,
        stdin=subprocess.DEVNULL,
    )
    assert done.returncode == 2
    assert done.stdout == "" and "needs a terminal" in done.stderr
