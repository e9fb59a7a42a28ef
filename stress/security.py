"""Security: tokens, token-compare timing, Origins, non-loopback binds, path traversal.

- Tokens (daemon with a token): a wrong, empty or non-Bearer `Authorization` is refused 401 at
  upgrade; without one, any first request but `auth` is answered -32000 and closed 1008; `auth`
  with a wrong token is -32000; 200 wrong tokens in a row never get in; the right one does, as
  Bearer and through `auth`.
- Timing: `token_matches` (the daemon's comparison) is timed against a 4 KiB token with wrong
  candidates that share 0, half or all but the last byte with it. Its spread must stay within
  25% (loose: a shared machine), while a naive `==` on the same candidates, measured the same
  way, shows the prefix dependence the check is meant to catch (reported, so the power of the
  check is visible). Over the network the same candidates are sent at upgrade; medians are
  reported and must stay within 30% of each other.
- Origins: a browser Origin not in `--allow-origin` is refused 403 (also `null`, a different
  scheme, a trailing slash, different case); an allowed one is served; no Origin (not a
  browser) is served.
- Binds: `--bind 0.0.0.0` and `--bind ::` without a token exit 2 and say why; `localhost` is
  fine; `0.0.0.0` with a token starts (and is only ever contacted on 127.0.0.1).
- Path traversal: rows whose `sessionFile` or `sessionId` point outside the sessions dir
  (`../` paths, absolute paths, a symlink inside the dir pointing out, the agent dir) are
  deleted over RPC and cleaned up (apply) over RPC and by the CLI with `--store`; every file
  outside the store's directory must be untouched and every archive inside it; `store` is not a
  param a remote caller can pass.

    PYTHONPATH=tests .venv/bin/python stress/security.py
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from harness.daemon_process import DaemonProcess, clean_env
from harness.raw_frames import RpcCallError, RpcClient
from harness.state_dirs import store_path, write_state_dir
from harness.stress_report import Report, machine, percentile
from sessiond.daemon.server import token_matches
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

TOKEN = "s3cret-" + "k" * 57
NOW_MS = 1_800_000_000_000
DAY = 86_400_000


# ------------------------------------------------------------------------------------ tokens


async def upgrade_status(url: str, headers: dict[str, str] | None) -> int:
    try:
        async with connect(url, additional_headers=headers, compression=None) as ws:
            await ws.send('{"jsonrpc":"2.0","method":"daemon.status","id":1}')
            reply = json.loads(await asyncio.wait_for(ws.recv(), 5))
            return 101 if "result" in reply else reply["error"]["code"]
    except InvalidStatus as exc:
        return exc.response.status_code


async def tokens(
    report: Report, daemon: DaemonProcess, figures: dict[str, Any], wrong: int
) -> None:
    url = daemon.url
    cases = {
        "wrong bearer": {"Authorization": "Bearer nope"},
        "empty bearer": {"Authorization": "Bearer "},
        "basic scheme": {"Authorization": f"Basic {TOKEN}"},
        "token as scheme": {"Authorization": TOKEN},
        "bearer + one char": {"Authorization": f"Bearer {TOKEN}x"},
        "bearer prefix": {"Authorization": f"Bearer {TOKEN[:-1]}"},
    }
    seen = {}
    for name, headers in cases.items():
        seen[name] = await upgrade_status(url, headers)
        report.check(seen[name] == 401, f"{name}: upgrade answered {seen[name]}, wanted 401")
    ok = await upgrade_status(url, {"Authorization": f"Bearer {TOKEN}"})
    report.check(ok == 101, f"right bearer token: {ok}")
    # No token at upgrade: only `auth` may come first.
    async with connect(url, compression=None) as ws:
        await ws.send('{"jsonrpc":"2.0","method":"sessions.list","id":1}')
        reply = json.loads(await ws.recv())
        report.check(reply.get("error", {}).get("code") == -32000, f"no token: {reply}")
        try:
            await asyncio.wait_for(ws.recv(), 5)
            report.fail("no token: connection not closed")
        except ConnectionClosed as exc:
            code = exc.rcvd.code if exc.rcvd else None
            report.check(code == 1008, f"no token: closed {code}, wanted 1008")
    refused = 0
    for i in range(wrong):
        async with connect(url, compression=None) as ws:
            await ws.send(
                json.dumps(
                    {
                        "jsonrpc": "2.0",
                        "method": "auth",
                        "id": 1,
                        "params": {"token": f"{TOKEN[: i % len(TOKEN)]}?"},
                    }
                )
            )
            reply = json.loads(await ws.recv())
            refused += reply.get("error", {}).get("code") == -32000
    report.check(refused == wrong, f"wrong auth tokens: {wrong - refused} got in")
    client = await RpcClient.connect(url, TOKEN, bearer=False)
    status = await client.call("daemon.status")
    await client.close()
    report.check(status.ready, "right token through auth")
    figures["tokens"] = {
        **{k: v for k, v in seen.items()},
        "right bearer": ok,
        "wrong auth tokens refused": f"{refused}/{wrong}",
    }


def compare_timing(report: Report, figures: dict[str, Any], rounds: int) -> None:
    secret = os.urandom(2048).hex()  # 4 KiB
    last = "0" if secret[-1] != "0" else "1"
    candidates = {
        "prefix 0": ("x" if secret[0] != "x" else "y") + secret[1:],
        "prefix half": secret[: len(secret) // 2] + "#" + secret[len(secret) // 2 + 1 :],
        "prefix all-but-1": secret[:-1] + last,
    }

    def measure(fn: Any) -> dict[str, float]:
        batches: dict[str, list[float]] = {name: [] for name in candidates}
        for _ in range(rounds):
            for name, candidate in candidates.items():
                started = time.perf_counter_ns()
                for _ in range(300):
                    fn(secret, candidate)
                batches[name].append((time.perf_counter_ns() - started) / 300)
        return {name: statistics.median(values) for name, values in batches.items()}

    ours = measure(token_matches)
    naive = measure(lambda a, b: a.encode() == b.encode())
    spread = (max(ours.values()) - min(ours.values())) / min(ours.values())
    naive_spread = (max(naive.values()) - min(naive.values())) / min(naive.values())
    report.check(spread < 0.25, f"token_matches time depends on the prefix: {ours}")
    figures["compare_timing_ns"] = {
        "token_matches": {k: round(v) for k, v in ours.items()},
        "token_matches_spread": f"{spread:.1%}",
        "naive == (control)": {k: round(v) for k, v in naive.items()},
        "naive_spread": f"{naive_spread:.1%}",
    }


async def network_timing(report: Report, url: str, figures: dict[str, Any], rounds: int) -> None:
    candidates = {
        "prefix 0": "X" + TOKEN[1:],
        "prefix all-but-1": TOKEN[:-1] + "X",
    }
    times: dict[str, list[float]] = {k: [] for k in candidates}
    for _ in range(rounds):
        for name, candidate in candidates.items():
            started = time.perf_counter()
            status = await upgrade_status(url, {"Authorization": f"Bearer {candidate}"})
            times[name].append(time.perf_counter() - started)
            report.check(status == 401, f"timing candidate {name} got {status}")
    medians = {k: statistics.median(v) * 1000 for k, v in times.items()}
    spread = (max(medians.values()) - min(medians.values())) / min(medians.values())
    report.check(spread < 0.3, f"upgrade refusal time depends on the prefix: {medians}")
    figures["network_refusal_ms"] = {
        **{
            k: f"p50 {v:.2f}, p90 {percentile(times[k], 90) * 1000:.2f}" for k, v in medians.items()
        },
        "spread": f"{spread:.1%}",
    }


# ----------------------------------------------------------------------------------- origins


async def origins(report: Report, daemon: DaemonProcess, figures: dict[str, Any]) -> None:
    allowed = "https://app.example"
    refused = [
        "https://evil.example",
        "null",
        "http://app.example",
        "https://app.example/",
        "https://APP.example",
        "https://app.example.evil.example",
    ]
    results = {}
    for origin in [*refused, allowed, None]:
        headers = {"Origin": origin} if origin is not None else None
        results[str(origin)] = await upgrade_status(daemon.url, headers)
    for origin in refused:
        report.check(results[origin] == 403, f"Origin {origin}: {results[origin]}, wanted 403")
    report.check(results[allowed] == 101, f"allowed Origin: {results[allowed]}")
    report.check(results["None"] == 101, f"no Origin: {results['None']}")
    figures["origins"] = results


# ------------------------------------------------------------------------------------- binds


def binds(report: Report, workdir: Path, figures: dict[str, Any]) -> None:
    root = write_state_dir(workdir / "binds", {"main": {}})
    results = {}
    for bind in ("0.0.0.0", "::"):
        d = DaemonProcess(root, "--bind", bind, wait=False)
        try:
            code = d.proc.wait(20)
        except subprocess.TimeoutExpired:
            code = -1
        said = "without a token" in d.logs()
        d.stop()
        results[f"{bind} no token"] = f"exit {code}" + (", says why" if said else "")
        report.check(code == 2 and said, f"--bind {bind} without a token: exit {code}")
    with DaemonProcess(root, "--bind", "localhost") as d:
        results["localhost no token"] = "serving" if d.proc.poll() is None else "exited"
    with DaemonProcess(root, "--bind", "0.0.0.0", "--token", TOKEN) as d:
        alive = d.proc.poll() is None
        results["0.0.0.0 with token"] = "serving" if alive else "exited"
        report.check(alive, "--bind 0.0.0.0 with a token did not start")
    figures["binds"] = results


# --------------------------------------------------------------------------------- traversal


def tree_digest(root: Path, skip: Path) -> dict[str, str]:
    """Every file under root except those inside `skip`, with a hash of its bytes."""
    out = {}
    for path in sorted(root.rglob("*")):
        if path.is_symlink() or not path.is_file():
            continue
        if skip in path.parents or path.name.startswith(".log") or path.name.startswith(".port"):
            continue
        out[str(path.relative_to(root))] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out


def traversal_rows(root: Path, sessions: Path) -> dict[str, Any]:
    outside = root / "outside"
    outside.mkdir(parents=True, exist_ok=True)
    agent_dir = sessions.parent
    for name in ("v1.jsonl", "v2.jsonl", "v3.jsonl", "v4.jsonl", "v6.jsonl"):
        (outside / name).write_text('{"victim": true}\n')
    (agent_dir / "v5.jsonl").write_text('{"victim": true}\n')
    link = sessions / "link.jsonl"
    if not link.exists():
        link.symlink_to(outside / "v4.jsonl")
    rel = os.path.relpath(outside, sessions)
    old = NOW_MS - 90 * DAY
    (sessions / "t0.jsonl").write_text('{"type":"session"}\n')  # a legit one: archived inside
    return {
        "agent:main:t0": {"sessionId": "t0", "updatedAt": old},
        "agent:main:t1": {"sessionId": "t1", "sessionFile": f"{rel}/v1.jsonl", "updatedAt": old},
        "agent:main:t2": {
            "sessionId": "t2",
            "sessionFile": str(outside / "v2.jsonl"),
            "updatedAt": old,
        },
        "agent:main:t3": {"sessionId": f"{rel}/v3", "updatedAt": old},
        "agent:main:t4": {"sessionId": "t4", "sessionFile": "link.jsonl", "updatedAt": old},
        "agent:main:t5": {"sessionId": "t5", "sessionFile": "../v5.jsonl", "updatedAt": old},
        "agent:main:t6": {
            "sessionId": "t6",
            "sessionFile": f"./{rel}/./v6.jsonl",
            "updatedAt": old,
        },
        "agent:main:keep": {"sessionId": "keep", "updatedAt": NOW_MS},
    }


async def traversal(report: Report, workdir: Path, figures: dict[str, Any]) -> None:
    root = workdir / "traversal"
    config = {"session": {"maintenance": {"mode": "enforce", "pruneAfter": "30d"}}}
    write_state_dir(root, {"main": {}}, config)
    sessions = store_path(root).parent
    rows = traversal_rows(root, sessions)
    store_path(root).write_text(json.dumps(rows))
    before = tree_digest(root, sessions)
    archived: list[str] = []
    env = {"SESSIOND_NOW_MS": str(NOW_MS), "HOME": str(root)}
    with DaemonProcess(root, env=env) as daemon:
        async with await RpcClient.connect(daemon.url) as client:
            for key in [k for k in rows if k != "agent:main:keep"][:4]:
                result = await client.call("sessions.delete", {"key": key})
                archived += result.archived
            for key, row in rows.items():  # put them back for the cleanup
                await client.call("sessions.patch", {"key": key, "fields": row})
            result = await client.call("sessions.cleanup", {"enforce": True})
            try:
                await client.call("sessions.cleanup", {"store": "/etc/x", "dryRun": True})
                report.fail("cleanup accepted a `store` param over RPC")
            except RpcCallError as exc:
                report.check(exc.code == -32602, f"`store` over RPC: {exc.code}")
    after = tree_digest(root, sessions)
    report.check(
        before == after,
        f"files outside the sessions dir changed: "
        f"{sorted(set(before.items()) ^ set(after.items()))[:4]}",
    )
    inside = [p for p in archived if Path(p).resolve().parent == sessions.resolve()]
    report.check(len(inside) == len(archived), f"archives outside the dir: {archived}")
    report.check(len(archived) == 1, f"the legit transcript was not archived: {archived}")
    # The CLI with --store: a store in its own directory, rows pointing elsewhere.
    other = root / "elsewhere"
    other.mkdir(exist_ok=True)
    cli_rows = traversal_rows(root, other)
    (other / "sessions.json").write_text(json.dumps(cli_rows))
    before_cli = tree_digest(root, other)
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "sessiond.cli.main",
            "sessions",
            "cleanup",
            "--enforce",
            "--store",
            str(other / "sessions.json"),
            "--json",
        ],
        capture_output=True,
        env=clean_env(
            {"OPENCLAW_STATE_DIR": str(root), "HOME": str(root), "SESSIOND_NOW_MS": str(NOW_MS)}
        ),
        check=False,
    )
    report.check(out.returncode == 0, f"CLI cleanup --store failed: {out.stderr[-300:]!r}")
    after_cli = tree_digest(root, other)
    report.check(before_cli == after_cli, "files outside the --store directory changed")
    left = json.loads((other / "sessions.json").read_text())
    figures["traversal"] = {
        "rpc_deletes_archived": [os.path.basename(p) for p in archived],
        "rpc_cleanup_pruned": getattr(result, "pruned", None),
        "files_outside_unchanged": before == after and before_cli == after_cli,
        "cli_store_rows_left": sorted(left),
    }


def run(workdir: Path, quick: bool = False) -> Report:
    """`quick`: fewer timing rounds and wrong tokens (the normal test suite's variant)."""
    rounds = 15 if quick else 60
    report = Report("security (tokens, timing, origins, binds, traversal)")
    report.figures["machine"] = machine()
    figures: dict[str, Any] = {}
    compare_timing(report, figures, rounds)
    root = write_state_dir(workdir / "auth", {"main": {}})
    with DaemonProcess(root, "--token", TOKEN) as daemon:
        asyncio.run(tokens(report, daemon, figures, 20 if quick else 200))
        asyncio.run(network_timing(report, daemon.url, figures, rounds))
    root = write_state_dir(workdir / "origin", {"main": {}})
    with DaemonProcess(root, "--allow-origin", "https://app.example") as daemon:
        asyncio.run(origins(report, daemon, figures))
    binds(report, workdir, figures)
    asyncio.run(traversal(report, workdir, figures))
    report.figures.update(figures)
    return report


def main(argv: list[str] | None = None) -> int:
    with tempfile.TemporaryDirectory(prefix="sessiond-security-") as temp:
        return run(Path(temp)).finish()


if __name__ == "__main__":
    raise SystemExit(main())
