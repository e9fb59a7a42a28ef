"""Run, normalise and compare `sessions cleanup` runs (reference and sessiond alike).

One observation of a run is a JSON-ready dict:

    flags            the cleanup flags of the combination
    exitCode         process exit status
    stdoutFormat     "json" when --json was given and stdout parsed, else "lines"
    stdout           parsed JSON, or the list of output lines
    stderrFirstLine  first non-empty stderr line when the exit status is not 0, else null
    stderrLines      every stderr line (informational: log lines; never compared)
    after            for non-dry runs: a snapshot of every directory under the state dir
                     (except logs/ and identity/) and of every store file in them

All text is stripped of ANSI escapes, and the temporary state dir is replaced by `<STATE>`.
Archive names created by the run (`.deleted.<ts>` within a day of the run) become
`.deleted.<TS>`.
"""

from __future__ import annotations

import difflib
import fnmatch
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .fixtures import CASES, DAY, build_state_dir

Json = Any

GOLDEN_DIR = Path(__file__).resolve().parent / "golden"
STATE_PLACEHOLDER = "<STATE>"
TS_PLACEHOLDER = "<TS>"
IGNORED_TOP_DIRS = frozenset({"logs", "identity"})
COMPARED_FIELDS = ("exitCode", "stdoutFormat", "stdout", "stderrFirstLine", "after")
RUN_TIMEOUT_S = 120.0
ABSENT = "<absent>"

# Deliberate deviations of sessiond from the reference, one entry per observable effect of an
# item of docs/compat.md ("compat #N"). A key is "<case globs>|<combo selectors>|<path glob>",
# where the first two parts may list several items separated by commas; a selector is "*",
# "applied", "dry-run", "applied-json", "dry-run-json" or a combo index;
# the path is a difference path as rendered by `diff_values` (text lines read
# "stdout.<index>(<text before the first colon>)"). Matching differences are listed by the
# tests instead of failing them. Keep the scopes narrow: a glob that is too wide hides bugs.
KNOWN_DIFFERENCES: dict[str, str] = {
    "*|dry-run-json|stdout.deletions": (
        "compat #32: sessiond's dry run lists the files the apply would delete outright."
    ),
    "*|dry-run-json|stdout.stores.*.deletions": (
        "compat #32: the files the apply would delete outright (per store)."
    ),
    "*|dry-run-json|stdout.planId": (
        "compat #33: sessiond's dry run names its plan, for `sessions cleanup --plan`."
    ),
    "*|applied-json|stdout.beforeCount": (
        "compat #1: sessiond's applied beforeCount counts the rows before the --fix-missing and "
        "--fix-dm-scope stages, like the dry run; the reference counts them afterwards."
    ),
    "*|applied-json|stdout.stores.*.beforeCount": (
        "compat #1: applied beforeCount counts the rows before the fix stages (per store)."
    ),
    "*|applied-json|stdout.unreferencedArtifacts.scannedFiles": (
        "compat #9: applied scannedFiles is the count the plan scanned (as in the dry run); "
        "the reference rescans after archiving and budget removals."
    ),
    "*|applied-json|stdout.stores.*.unreferencedArtifacts.scannedFiles": (
        "compat #9: applied scannedFiles is the count the plan scanned (per store)."
    ),
    "corrupt_store|dry-run|*": (
        "compat #3: sessiond's dry run of a store that does not parse is an error naming the file, "
        "line and column (exit 1); the reference previews it as an empty store."
    ),
    "store_template_flat|applied|*": (
        "compat #22: stores sharing one directory: sessiond never sweeps a transcript another "
        "store's live row references; the reference's first store deletes them as orphans."
    ),
    "corrupt_store|applied|*": (
        "compat #3: sessiond refuses to apply over an unreadable store (error naming file, line "
        "and column; nothing written); the reference reads {} and writes {} over it."
    ),
    "bom_store|*|*": (
        "compat #4: sessiond skips a UTF-8 BOM and reads the rows; the reference reads {} "
        "(and writes {} over the store on apply)."
    ),
    "compact_store|applied|after.stores.*": (
        "compat #5/#6: with nothing to remove sessiond writes nothing, so the compact file keeps "
        "its mode, key order and legacy fields; the reference rewrites it canonically, migrated."
    ),
    "integer_keys_rewrite|applied|after.stores.*.json.agent:main:legacy.*": (
        "compat #6: sessiond keeps a row's legacy fields (provider, room) byte for byte; the "
        "reference migrates them when it rewrites the store."
    ),
    "topic_rows|dry-run|stdout.unreferencedArtifacts.removedFiles": (
        "compat #7: the reference's dry run counts a pruned topic row's <sessionId>.jsonl as an "
        "orphan to sweep, though the apply archives it; sessiond's plan archives it in both."
    ),
    "topic_rows|dry-run|stdout.unreferencedArtifacts.freedBytes": (
        "compat #7: see removedFiles; the over-counted orphan's bytes."
    ),
    "disk_budget_old_archive,disk_budget_warn|dry-run|stdout.diskBudget.totalBytesBefore": (
        "compat #8: sessiond's plan expires old archives before measuring the disk budget, in dry "
        "run and apply alike; the reference's dry run still counts them."
    ),
    "disk_budget_old_archive,disk_budget_warn|dry-run|stdout.diskBudget.removedFiles": (
        "compat #8: the expired archive is not a budget removal in sessiond's plan."
    ),
    "disk_budget_old_archive,disk_budget_warn|dry-run|stdout.diskBudget.freedBytes": (
        "compat #8: the expired archive's bytes are not budget-freed bytes in sessiond's plan."
    ),
    "disk_budget_old_archive,disk_budget_warn|dry-run|stdout.*(Would enforce disk budget).n0": (
        "compat #8: the text form of totalBytesBefore."
    ),
    "disk_budget_old_archive,disk_budget_warn|dry-run|stdout.*(Would enforce disk budget).n2": (
        "compat #8: the text form of removedFiles."
    ),
    "disk_budget_zero|*|*": (
        "compat #13: maxDiskBytes 0 means no disk budget in sessiond (diskBudget null); the "
        "reference evicts every unprotected row."
    ),
    "disk_budget_foreign_files|*|*": (
        "compat #17: only bytes maintenance manages count towards sessiond's disk budget; the "
        "reference also counts notes.txt and *.migrated, so it evicts one more live row."
    ),
    "fix_missing_stale_file|*|stdout.*": (
        "compat #18: --fix-missing repairs a row whose sessionFile is gone but whose "
        "<sessionId>.jsonl exists; the reference prunes it as missing."
    ),
    "fix_missing_stale_file|applied|after.stores.*": (
        "compat #18: the repaired rows stay in the store, with sessionFile pointing at the file."
    ),
    "invalid_session_id|1,2|*": (
        "compat #19: a row whose sessionId cannot name a file is left alone by --fix-missing; the "
        "reference aborts the whole command (Error: Invalid session ID, exit 1)."
    ),
    "missing_store|applied|after.*": (
        "compat #21: an apply on a missing store writes nothing; the reference creates the dirs "
        "and writes {}."
    ),
    "multi_agent|applied|after.*agents/ops*": (
        "compat #21: the ops agent has no store; sessiond writes nothing for it."
    ),
    "null_row|*|*": (
        "compat #10: sessiond treats a null row as a row without fields; the reference crashes "
        "with a TypeError in dry run and apply."
    ),
}

_ANSI_RE = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07]*\x07")
_ARCHIVE_RE = re.compile(
    r"\.(deleted|reset|bak)\.(\d{4}-\d{2}-\d{2}T\d{2}-\d{2}-\d{2}(?:\.\d{1,3})?Z)$"
)


# =========================================================================================
# Normalisation
# =========================================================================================


def strip_ansi(text: str) -> str:
    return _ANSI_RE.sub("", text)


def state_spellings(state_dir: Path) -> list[str]:
    """Every spelling of the state dir a program may print, longest first."""
    spellings = {str(state_dir), os.path.realpath(state_dir), str(state_dir.resolve())}
    return sorted(spellings, key=len, reverse=True)


def normalise_text(text: str, spellings: Sequence[str]) -> str:
    text = strip_ansi(text)
    for spelling in spellings:
        text = text.replace(spelling, STATE_PLACEHOLDER)
    return text


def normalise_json(value: Json, spellings: Sequence[str]) -> Json:
    if isinstance(value, str):
        return normalise_text(value, spellings)
    if isinstance(value, list):
        return [normalise_json(item, spellings) for item in value]
    if isinstance(value, dict):
        return {
            normalise_text(key, spellings): normalise_json(item, spellings)
            for key, item in value.items()
        }
    return value


def normalise_file_name(name: str, now_ms: int) -> str:
    """Replace the timestamp of an archive made by the run (within a day of now) by <TS>."""
    match = _ARCHIVE_RE.search(name)
    if match is None:
        return name
    stamp = match.group(2)
    fmt = "%Y-%m-%dT%H-%M-%S.%fZ" if "." in stamp else "%Y-%m-%dT%H-%M-%SZ"
    try:
        moment = datetime.strptime(stamp, fmt).replace(tzinfo=UTC)
    except ValueError:
        return name
    if abs(moment.timestamp() * 1000 - now_ms) >= DAY:
        return name
    return f"{name[: match.start()]}.{match.group(1)}.{TS_PLACEHOLDER}"


def _is_store_file(rel: Path) -> bool:
    name = rel.name
    return (
        len(rel.parts) > 1 and name.endswith(".json") and not name.endswith(".trajectory-path.json")
    )


def js_canonical(value: Json) -> str:
    """`JSON.stringify(value, null, 2)` for the values our stores hold."""
    return json.dumps(value, indent=2, ensure_ascii=False)


def snapshot_state(state_dir: Path, now_ms: int) -> dict[str, Json]:
    """Every directory's file names and every store file's content, normalised."""
    spellings = state_spellings(state_dir)
    dirs: dict[str, list[str]] = {}
    stores: dict[str, Json] = {}
    for current, subdirs, files in os.walk(state_dir):
        here = Path(current)
        rel_dir = here.relative_to(state_dir)
        if rel_dir.parts and rel_dir.parts[0] in IGNORED_TOP_DIRS:
            continue
        if not rel_dir.parts:
            subdirs[:] = [d for d in subdirs if d not in IGNORED_TOP_DIRS]
        subdirs.sort()
        dirs[rel_dir.as_posix() or "."] = sorted(normalise_file_name(f, now_ms) for f in files)
        for name in sorted(files):
            rel = rel_dir / name
            if not _is_store_file(rel):
                continue
            path = here / name
            raw = path.read_bytes()
            text = raw.decode("utf-8", errors="replace")
            entry: dict[str, Json] = {"mode": oct(path.stat().st_mode & 0o777)}
            try:
                parsed = json.loads(text)
            except ValueError:
                entry["json"] = None
                entry["raw"] = normalise_text(text[:200], spellings)
            else:
                entry["json"] = normalise_json(parsed, spellings)
                entry["canonical"] = text == js_canonical(parsed)
            stores[rel.as_posix()] = entry
    return {"dirs": dirs, "stores": stores}


# =========================================================================================
# Running
# =========================================================================================


@dataclass(frozen=True)
class RawRun:
    argv: tuple[str, ...]
    exit_code: int
    stdout: str
    stderr: str
    started_ms: int
    elapsed_s: float


def free_port() -> int:
    """A TCP port nothing listens on right now, so a gateway probe fails at once."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def base_env(state_dir: Path) -> dict[str, str]:
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(state_dir),
        "OPENCLAW_STATE_DIR": str(state_dir),
        "OPENCLAW_GATEWAY_PORT": str(free_port()),
        "LANG": "C.UTF-8",
        "TZ": "UTC",
    }


def run_command(
    argv: Sequence[str], state_dir: Path, extra_env: Mapping[str, str] | None = None
) -> RawRun:
    env = base_env(state_dir)
    if extra_env:
        env.update(extra_env)
    started = time.time()
    try:
        proc = subprocess.run(
            list(argv),
            cwd=state_dir,
            env=env,
            capture_output=True,
            timeout=RUN_TIMEOUT_S,
            check=False,
        )
        code, out, err = proc.returncode, proc.stdout, proc.stderr
    except subprocess.TimeoutExpired as exc:
        code = -1
        out = exc.stdout or b""
        err = (exc.stderr or b"") + f"\ntimed out after {RUN_TIMEOUT_S} s".encode()
    return RawRun(
        argv=tuple(argv),
        exit_code=code,
        stdout=out.decode("utf-8", errors="replace"),
        stderr=err.decode("utf-8", errors="replace"),
        started_ms=int(started * 1000),
        elapsed_s=round(time.time() - started, 2),
    )


def reference_bin(ref_dir: Path) -> Path:
    for candidate in (
        ref_dir / "bin" / "openclaw",
        ref_dir / "node_modules" / ".bin" / "openclaw",
    ):
        if candidate.exists():
            return candidate
    raise FileNotFoundError(f"no openclaw executable under {ref_dir}")


def reference_version(ref_dir: Path) -> str:
    package = ref_dir / "node_modules" / "openclaw" / "package.json"
    try:
        return str(json.loads(package.read_text(encoding="utf-8"))["version"])
    except (OSError, ValueError, KeyError):
        return "unknown"


def sessiond_bin() -> Path:
    """The `sessiond` console script of the interpreter running the tests."""
    return Path(sys.executable).parent / "sessiond"


def is_dry_run(flags: Sequence[str]) -> bool:
    return "--dry-run" in flags


def observe(raw: RawRun, flags: Sequence[str], state_dir: Path, now_ms: int) -> dict[str, Json]:
    """Turn one finished run (and, for applies, the state dir it left) into an observation."""
    spellings = state_spellings(state_dir)
    stdout = normalise_text(raw.stdout, spellings)
    stderr_lines = normalise_text(raw.stderr, spellings).splitlines()
    parsed: Json = None
    fmt = "lines"
    if "--json" in flags:
        try:
            parsed = json.loads(stdout)
            fmt = "json"
        except ValueError:
            parsed = None
    first_err = next((line for line in stderr_lines if line.strip()), None)
    return {
        "flags": list(flags),
        "exitCode": raw.exit_code,
        "stdoutFormat": fmt,
        "stdout": parsed if fmt == "json" else stdout.splitlines(),
        "stderrFirstLine": first_err if raw.exit_code != 0 else None,
        "stderrLines": stderr_lines,
        "after": None if is_dry_run(flags) else snapshot_state(state_dir, now_ms),
    }


@contextmanager
def temp_state_dir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="sdiff-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def cleanup_argv(program: Path, flags: Sequence[str]) -> list[str]:
    return [str(program), "sessions", "cleanup", *flags]


@dataclass(frozen=True)
class ReferenceRun:
    observation: dict[str, Json]
    now_ms: int  # the time the fixture was built against
    started_ms: int  # the time the reference process was started


def run_reference_case(
    ref: Path, case: str, flags: Sequence[str], now_ms: int | None = None
) -> ReferenceRun:
    """Build a fresh state dir at `now_ms` (default: now) and run the reference on it."""
    with temp_state_dir() as state:
        now = now_ms if now_ms is not None else int(time.time() * 1000)
        build_state_dir(case, state, now)
        raw = run_command(cleanup_argv(ref, flags), state)
        obs = observe(raw, flags, state, now)
        obs["elapsedSec"] = raw.elapsed_s
        return ReferenceRun(obs, now, raw.started_ms)


def run_sessiond_case(
    case: str, flags: Sequence[str], now_ms: int, clock_ms: int | None = None
) -> dict[str, Json]:
    """Build the state dir at `now_ms` and run sessiond on it with its clock pinned."""
    with temp_state_dir() as state:
        build_state_dir(case, state, now_ms)
        pinned = clock_ms if clock_ms is not None else now_ms
        raw = run_command(
            cleanup_argv(sessiond_bin(), flags), state, {"SESSIOND_NOW_MS": str(pinned)}
        )
        return observe(raw, flags, state, now_ms)


# =========================================================================================
# Comparison
# =========================================================================================


@dataclass(frozen=True)
class Difference:
    path: str
    expected: Json
    actual: Json
    known_reason: str | None = None

    def render(self) -> str:
        exp = json.dumps(self.expected, ensure_ascii=False)
        act = json.dumps(self.actual, ensure_ascii=False)
        line = f"{self.path}: reference {exp} != sessiond {act}"
        if self.known_reason:
            line += f"  [known: {self.known_reason}]"
        return line


def _same_scalar(a: Json, b: Json) -> bool:
    # JSON-level equality: 1 vs 1.0 vs true are all different things on the wire.
    return type(a) is type(b) and a == b


def diff_values(expected: Json, actual: Json, path: str) -> list[Difference]:
    if isinstance(expected, dict) and isinstance(actual, dict):
        out: list[Difference] = []
        shared = [k for k in expected if k in actual]
        if [k for k in actual if k in expected] != shared:
            out.append(
                Difference(f"{path}.<key order>", [k for k in expected], [k for k in actual])
            )
        for key, value in expected.items():
            sub = f"{path}.{key}"
            if key not in actual:
                out.append(Difference(sub, value, ABSENT))
            else:
                out.extend(diff_values(value, actual[key], sub))
        out.extend(
            Difference(f"{path}.{k}", ABSENT, v) for k, v in actual.items() if k not in expected
        )
        return out
    if isinstance(expected, list) and isinstance(actual, list):
        if path.startswith("after.dirs."):
            missing = list((Counter(expected) - Counter(actual)).elements())
            extra = list((Counter(actual) - Counter(expected)).elements())
            if missing or extra:
                return [
                    Difference(path, {"only in reference": missing}, {"only in sessiond": extra})
                ]
            return []
        out = []
        for index in range(max(len(expected), len(actual))):
            exp = expected[index] if index < len(expected) else ABSENT
            act = actual[index] if index < len(actual) else ABSENT
            sub = f"{path}.{index}"
            if path == "stdout" and isinstance(exp, str):
                if ":" in exp:
                    sub += f"({exp.split(':', 1)[0]})"  # text lines carry their label
                if isinstance(act, str):
                    out.extend(_diff_line(exp, act, sub))
                    continue
            out.extend(diff_values(exp, act, sub))
        return out
    if _same_scalar(expected, actual):
        return []
    return [Difference(path, expected, actual)]


_NUMBER_RE = re.compile(r"-?\d+")


def _diff_line(expected: str, actual: str, path: str) -> list[Difference]:
    """Two text lines; when only their numbers differ, one difference per number (.n0, .n1...)."""
    if expected == actual:
        return []
    if _NUMBER_RE.split(expected) != _NUMBER_RE.split(actual):
        return [Difference(path, expected, actual)]
    pairs = zip(_NUMBER_RE.findall(expected), _NUMBER_RE.findall(actual), strict=True)
    return [
        Difference(f"{path}.n{i}", int(exp), int(act))
        for i, (exp, act) in enumerate(pairs)
        if exp != act
    ]


def _combo_selected(selector: str, index: int, flags: Sequence[str]) -> bool:
    if selector == "*":
        return True
    if selector.isdigit():
        return int(selector) == index
    applied = not is_dry_run(flags)
    json_mode = "--json" in flags
    return {
        "applied": applied,
        "dry-run": not applied,
        "applied-json": applied and json_mode,
        "dry-run-json": not applied and json_mode,
    }.get(selector, False)


def known_reason(case: str, index: int, flags: Sequence[str], path: str) -> str | None:
    for key, reason in KNOWN_DIFFERENCES.items():
        case_globs, selectors, path_glob = key.split("|", 2)
        if (
            any(fnmatch.fnmatchcase(case, g) for g in case_globs.split(","))
            and any(_combo_selected(sel, index, flags) for sel in selectors.split(","))
            and fnmatch.fnmatchcase(path, path_glob)
        ):
            return reason
    return None


SESSIOND_SECTIONS: dict[str, str] = {
    "Files deleted outright (no archive is kept; a restore cannot bring them back):": (
        "compat #32: sessiond's dry-run table lists the files the apply would delete outright."
    ),
}
"""Sections only sessiond prints (a header line, to the next blank line or the end): set
aside before the text comparison and reported as known."""

SESSIOND_FILES: dict[str, str] = {
    ".json.journal": "compat #33: sessiond keeps a cleanup journal beside each store it cleans.",
    ".sessiond.lock": "compat #30: a running sessiond locks each store it serves (a lock file).",
}
"""Files only sessiond leaves (by name suffix): set aside before the listing comparison."""


def _set_aside(actual: Mapping[str, Json]) -> tuple[dict[str, Json], list[Difference]]:
    """`actual` without sessiond-only sections and files; each one a known difference."""
    out = dict(actual)
    known: list[Difference] = []
    lines = out.get("stdout")
    if out.get("stdoutFormat") == "lines" and isinstance(lines, list):
        kept: list[str] = []
        index = 0
        while index < len(lines):
            reason = SESSIOND_SECTIONS.get(lines[index])
            if reason is None:
                kept.append(lines[index])
                index += 1
                continue
            end = index
            while end < len(lines) and lines[end] != "":
                end += 1
            if kept and kept[-1] == "":
                kept.pop()  # the blank line that opened the section
            known.append(Difference(f"stdout.<{lines[index]}>", ABSENT, lines[index:end], reason))
            index = end
        out["stdout"] = kept
    after = out.get("after")
    if isinstance(after, dict) and isinstance(after.get("dirs"), dict):
        dirs: dict[str, list[str]] = {}
        for folder, names in after["dirs"].items():
            dirs[folder] = []
            for name in names:
                reason = next(
                    (r for suffix, r in SESSIOND_FILES.items() if name.endswith(suffix)), None
                )
                if reason is None:
                    dirs[folder].append(name)
                else:
                    known.append(Difference(f"after.dirs.{folder}.<{name}>", ABSENT, name, reason))
        out["after"] = {**after, "dirs": dirs}
    return out, known


def compare_observations(
    case: str, index: int, expected: Mapping[str, Json], actual: Mapping[str, Json]
) -> list[Difference]:
    """Every difference between two observations, each tagged with a known reason if any."""
    flags = list(expected.get("flags", []))
    actual, diffs = _set_aside(actual)
    for field in COMPARED_FIELDS:
        diffs.extend(diff_values(expected.get(field), actual.get(field), field))
    return [
        Difference(
            d.path, d.expected, d.actual, d.known_reason or known_reason(case, index, flags, d.path)
        )
        for d in diffs
    ]


def render_report(
    case: str,
    index: int,
    expected: Mapping[str, Json],
    actual: Mapping[str, Json],
    diffs: Sequence[Difference],
) -> str:
    """A readable failure message: the differences, then both stdouts side by side."""
    lines = [f"case {case} combo {index}: sessions cleanup {' '.join(expected.get('flags', []))}"]
    lines += ["  " + d.render() for d in diffs]
    if expected.get("stdoutFormat") == "lines" or actual.get("stdoutFormat") == "lines":
        exp_text = _as_lines(expected.get("stdout"))
        act_text = _as_lines(actual.get("stdout"))
        lines.append("  stdout diff (reference -> sessiond):")
        lines += [
            "    " + d
            for d in difflib.unified_diff(exp_text, act_text, "reference", "sessiond", lineterm="")
        ]
    if actual.get("stderrLines"):
        lines.append("  sessiond stderr:")
        lines += ["    " + s for s in actual["stderrLines"][:20]]
    return "\n".join(lines)


def _as_lines(value: Json) -> list[str]:
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return list(value)
    return json.dumps(value, indent=2, ensure_ascii=False).splitlines()


# =========================================================================================
# Golden files
# =========================================================================================


def golden_path(case: str) -> Path:
    return GOLDEN_DIR / f"{case}.json"


def load_golden(case: str) -> dict[str, Json]:
    data: dict[str, Json] = json.loads(golden_path(case).read_text(encoding="utf-8"))
    return data


def golden_cases() -> list[str]:
    return sorted(p.stem for p in GOLDEN_DIR.glob("*.json") if p.stem in CASES)
