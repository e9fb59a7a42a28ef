"""No surprises for an operator (issue 13): each command refuses what would hurt, says why in
one line, and exits non-zero. Every test runs the real `sessiond` command; the ones that need a
daemon run a real one (tests/harness)."""

from __future__ import annotations

import json
import re
import shlex
import signal
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path

from harness.daemon_process import DaemonProcess, clean_env
from harness.state_dirs import read_rows, store_path, write_state_dir
from sessiond.cli.demo import MARK

EXE = str(Path(sys.executable).with_name("sessiond"))
DAY = 86_400_000


def sessiond(
    *args: str, env: dict[str, str] | None = None, cwd: Path | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """The command with a clean environment: no daemon at the default address (port 1)."""
    clean = clean_env()
    clean.update(OPENCLAW_GATEWAY_PORT="1")
    clean.update(env or {})
    return subprocess.run(
        [EXE, *args],
        env=clean,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


def _state(root: Path, agents: tuple[str, ...] = ("main",)) -> Path:
    now = time.time_ns() // 1_000_000
    stores = {
        agent: {
            f"agent:{agent}:main": {"sessionId": f"{agent}-m", "updatedAt": now - 60_000},
            f"agent:{agent}:telegram:direct:42": {"sessionId": f"{agent}-d", "updatedAt": now},
            f"agent:{agent}:hook:old": {"sessionId": f"{agent}-o", "updatedAt": now - 40 * DAY},
        }
        for agent in agents
    }
    write_state_dir(root, stores)
    for agent in agents:
        for sid in ("m", "d", "o"):
            (store_path(root, agent).parent / f"{agent}-{sid}.jsonl").write_text("{}\n")
    return root


def _one_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, stderr
    return lines[0]


# ------------------------------------------------------------------------- 1. demo's directory


def test_demo_refuses_a_directory_it_did_not_make(tmp_path: Path) -> None:
    """`--dir X` with someone's notes in X, or `--dir .`: refused, nothing touched or added."""
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me")
    for args, cwd in ((["--dir", str(mine)], None), (["--dir", "."], mine)):
        done = sessiond("demo", *args, "--serve-seconds", "0", cwd=cwd)
        assert done.returncode == 1
        assert "was not made by `sessiond demo`; refusing to touch it" in _one_line(done.stderr)
        assert sorted(p.name for p in mine.iterdir()) == ["notes.txt"]
        assert (mine / "notes.txt").read_text() == "keep me"
    a_file = tmp_path / "a-file"
    a_file.write_text("x")
    done = sessiond("demo", "--dir", str(a_file), "--serve-seconds", "0")
    assert done.returncode == 1 and "is not a directory" in done.stderr
    assert a_file.read_text() == "x"


def test_demo_reuses_only_what_it_made_in_its_own_directory(tmp_path: Path) -> None:
    demo = tmp_path / "demo"
    (demo / "agents" / "stale").mkdir(parents=True)
    (demo / MARK).write_text("made by sessiond demo\n")
    (demo / "mine.txt").write_text("not the demo's")
    done = sessiond("demo", "--dir", str(demo), "--serve-seconds", "0", timeout=120)
    assert done.returncode == 0, done.stderr
    assert (demo / "mine.txt").read_text() == "not the demo's"
    assert not (demo / "agents" / "stale").exists(), "what the demo made is rebuilt"
    assert len(read_rows(demo, "main")) == 9


# -------------------------------------------------------- 2. a named daemon that is not there


def test_an_unreachable_url_is_an_error_never_a_local_run(tmp_path: Path) -> None:
    root = _state(tmp_path / "state")
    before = store_path(root, "main").read_bytes()
    env = {"OPENCLAW_STATE_DIR": str(root), "HOME": str(tmp_path)}
    cases = [
        (["--url", "ws://127.0.0.1:1"], {}, "ws://127.0.0.1:1 (from --url): connection refused"),
        (["--url", "notaurl"], {}, "notaurl (from --url): not a ws:// or wss:// URL"),
        ([], {"SESSIOND_URL": "ws://127.0.0.1:1"}, "(from SESSIOND_URL): connection refused"),
    ]
    for flags, extra, reason in cases:
        for mode in ([], ["--dry-run"]):
            done = sessiond("sessions", "cleanup", *flags, *mode, env={**env, **extra})
            assert done.returncode == 1, done.stdout
            assert done.stdout == ""
            line = _one_line(done.stderr)
            assert line.startswith("sessiond: cannot reach sessiond at ") and reason in line
    assert store_path(root, "main").read_bytes() == before


def test_the_default_address_falls_back_and_says_it_ran_locally(tmp_path: Path) -> None:
    root = _state(tmp_path / "state")
    done = sessiond(
        "sessions", "cleanup", "--dry-run", env={"OPENCLAW_STATE_DIR": str(root), "HOME": "/"}
    )
    assert done.returncode == 0, done.stderr
    assert "Entries: 3 -> 2" in done.stdout
    assert done.stderr.strip().splitlines()[-1] == (
        "sessiond: no sessiond at ws://127.0.0.1:1 (connection refused); ran locally on the files"
    )


# ---------------------------------------------------------- 3. the daemon decides the agents


def test_gateway_mode_asks_the_daemon_which_agents_exist(tmp_path: Path) -> None:
    served = _state(tmp_path / "served", agents=("main", "work"))
    empty = tmp_path / "empty"
    empty.mkdir()
    with DaemonProcess(served) as daemon:
        env = {"OPENCLAW_STATE_DIR": str(empty), "HOME": str(tmp_path), "SESSIOND_URL": daemon.url}
        done = sessiond("sessions", "cleanup", "--agent", "work", "--dry-run", "--json", env=env)
        assert done.returncode == 0, done.stderr
        result = json.loads(done.stdout)
        assert result["agentId"] == "work" and result["beforeCount"] == 3
        unknown = sessiond("sessions", "cleanup", "--agent", "nope", "--dry-run", env=env)
    assert unknown.returncode == 1
    assert daemon.url in unknown.stderr and "nope" in unknown.stderr


# ---------------------------------------------------------------------- 5. paths that are not


def test_a_store_or_state_dir_that_does_not_exist_is_named(tmp_path: Path) -> None:
    missing_store = tmp_path / "nowhere" / "sessions.json"
    done = sessiond("sessions", "cleanup", "--store", str(missing_store), env={"HOME": "/"})
    assert done.returncode == 1
    assert _one_line(done.stderr) == f"sessiond: --store {missing_store} does not exist"
    assert not missing_store.parent.exists()

    missing_dir = tmp_path / "no-state"
    done = sessiond("sessions", "cleanup", "--state-dir", str(missing_dir), env={"HOME": "/"})
    assert done.returncode == 1
    line = _one_line(done.stderr)
    assert line == f"sessiond: state dir {missing_dir} (from --state-dir) does not exist"
    done = sessiond("sessions", "cleanup", env={"OPENCLAW_STATE_DIR": str(missing_dir)})
    assert done.returncode == 1 and "(from OPENCLAW_STATE_DIR) does not exist" in done.stderr
    assert not missing_dir.exists()


def test_an_agent_without_a_sessions_dir_yet_is_an_empty_store(tmp_path: Path) -> None:
    root = tmp_path / "state"
    root.mkdir()
    (root / "openclaw.json").write_text('{agents: {list: [{id: "fresh"}]}}')
    done = sessiond("sessions", "cleanup", "--dry-run", "--state-dir", str(root))
    assert done.returncode == 0, done.stderr
    assert "Entries: 0 -> 0" in done.stdout
    for command in (["serve"], ["sessions", "cleanup"]):
        helped = sessiond(*command, "--help", env={"COLUMNS": "200"})
        assert "sessions dir does not exist yet" in helped.stdout, command


# ------------------------------------------------------------------- 9. --version and --help


def test_version_and_cleanup_help_say_what_an_operator_needs(tmp_path: Path) -> None:
    done = sessiond("--version")
    assert done.returncode == 0 and done.stdout == f"sessiond {metadata.version('sessiond')}\n"
    helped = sessiond("sessions", "cleanup", "--help", env={"COLUMNS": "200"}).stdout
    assert "Without --dry-run it APPLIES" in helped
    assert "--state-dir, else OPENCLAW_STATE_DIR, else ~/.openclaw" in helped
    assert "--state-dir STATE_DIR" in helped


def test_state_dir_flag_wins_over_the_environment(tmp_path: Path) -> None:
    chosen = _state(tmp_path / "chosen")
    other = tmp_path / "other"
    write_state_dir(other, {"main": {}})
    done = sessiond(
        "sessions",
        "cleanup",
        "--dry-run",
        "--json",
        "--state-dir",
        str(chosen),
        env={"OPENCLAW_STATE_DIR": str(other), "HOME": "/"},
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["storePath"] == str(store_path(chosen, "main"))


# --------------------------------------------------------------- 10. the demo's next commands


def test_demo_prints_next_commands_that_work_as_printed(tmp_path: Path) -> None:
    demo = tmp_path / "demo"
    clean = clean_env()
    proc = subprocess.Popen(
        [EXE, "demo", "--dir", str(demo), "--serve-seconds", "120"],
        env=clean,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert proc.stdout is not None
        lines: list[str] = []
        for line in proc.stdout:
            lines.append(line.rstrip("\n"))
            if line.startswith("serving 120 s"):
                break
        text = "\n".join(lines)
        assert "Next, in another terminal while this demo serves:" in text, text
        export = r"^  export (SESSIOND_URL=\S+) (OPENCLAW_GATEWAY_TOKEN=\S+)$"
        exported = re.search(export, text, re.M)
        assert exported, text
        env = dict(pair.split("=", 1) for pair in exported.groups())
        assert env["SESSIOND_URL"].startswith("ws://127.0.0.1:")
        commands = [
            shlex.split(line, comments=True)
            for line in lines
            if line.startswith("  sessiond sessions ")
        ]
        assert len(commands) == 3
        assert re.search(r"^  sessiond tui ", text, re.M), "the TUI is named"
        before = read_rows(demo, "main")
        preview, apply = (sessiond(*argv[1:], env=env) for argv in commands[:2])
        assert preview.returncode == 0, preview.stderr
        assert "Would retire stale direct DM sessions: 3" in preview.stdout
        assert apply.returncode == 0, apply.stderr
        assert len(read_rows(demo, "main")) == 3, "the apply ran, through the demo's daemon"
        archived = [p.name for p in store_path(demo, "main").parent.glob("*.jsonl.deleted.*")]
        assert archived, "the archive hint names files that exist after an apply"
        restore = sessiond(*commands[2][1:], env=env)
        assert restore.returncode == 0, restore.stderr
        assert read_rows(demo, "main") == before, "the restore put the main store back"
    finally:
        proc.send_signal(signal.SIGINT)
        assert proc.wait(30) == 0
        if proc.stdout:
            proc.stdout.close()
        if proc.stderr:
            proc.stderr.close()
