"""State dir, `openclaw.json` and store targets, resolved the way OpenClaw 2026.5.12 resolves them.

Everything here is a pure function of an environment mapping, a config value and a cwd, so the
daemon, the CLI and the tests resolve the same stores from the same inputs. Reading the file is
left to the callers (`sessiond.daemon.config_file.load_config_file`).
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Literal

import json5
import msgspec
from sessiond.engine.errors import DomainError
from sessiond.engine.js_semantics import js_trim
from sessiond.engine.keys import DEFAULT_AGENT_ID, normalize_agent_id
from sessiond.engine.units import UnitParseError, parse_byte_size, parse_duration_ms

if TYPE_CHECKING:  # engine/config_position.py loads only for a config with a problem
    from sessiond.engine.config_position import Position

MaintenanceMode = Literal["enforce", "warn"]
DEFAULT_PRUNE_AFTER_MS = 30 * 86_400_000
DEFAULT_MAX_ENTRIES = 500
DEFAULT_DM_SCOPE = "main"
DM_SCOPES = ("main", "per-peer", "per-channel-peer", "per-account-channel-peer")


class ConfigError(DomainError):
    """The config file is present but unusable; carries the reference's problem lines.

    `details` says the same in sessiond's words, each with where it is in the file when that is
    known (`parse_config_text` fills it in): what `sessiond serve` and a SIGHUP reload print.
    """

    kind = "config_invalid"

    def __init__(
        self,
        path: str,
        problems: list[str],
        details: list[tuple[str, Position | None]] | None = None,
    ) -> None:
        super().__init__("; ".join(problems))
        self.path = path
        self.problems = problems
        self.details = details if details is not None else [(p, None) for p in problems]

    def render(self, home: str | None = None) -> str:
        """The reference's block; like it, the file under the home dir is shown as `~/...`."""
        shown = self.path
        if home and (shown == home or shown.startswith(home.rstrip("/") + "/")):
            shown = "~" + shown[len(home.rstrip("/")) :]
        lines = ["OpenClaw config is invalid", f"File: {shown}", "Problem:"]
        lines += [f"  - {p}" for p in self.problems]
        lines += [
            "",
            "Fix: openclaw doctor --fix",
            "Inspect: openclaw config validate",
            "Status, health, logs, and doctor commands still run with invalid config.",
        ]
        return "\n".join(lines)

    def located(self) -> list[str]:
        """One line per problem, `file:line:column: problem` (compiler style), for sessiond."""
        out = []
        for problem, where in self.details:
            at = f"{self.path}:{where[0]}:{where[1]}" if where else self.path
            out.append(f"{at}: {problem}")
        return out


class TargetError(DomainError):
    """A bad combination of --store/--agent/--all-agents, worded as the reference words it."""

    kind = "store_not_found"


class Maintenance(msgspec.Struct, frozen=True):
    """Resolved `session.maintenance`. A zero setting switches its rule off (None here).

    OpenClaw 2026.5.12 reads `pruneAfter: 0` as "everything is stale" and `maxDiskBytes: 0` as
    "evict every row"; both delete all history. sessiond reads a zero as "rule off", and a zero
    `highWaterBytes` as "use the default 80 %" (docs/compat.md).
    """

    mode: MaintenanceMode = "enforce"
    prune_after_ms: int | None = DEFAULT_PRUNE_AFTER_MS
    max_entries: int = DEFAULT_MAX_ENTRIES
    reset_archive_retention_ms: int | None = DEFAULT_PRUNE_AFTER_MS
    max_disk_bytes: int | None = None
    high_water_bytes: int | None = None


class AgentConfig(msgspec.Struct, frozen=True):
    id: str
    default: bool = False
    model: Any = None


class SessionsConfig(msgspec.Struct, frozen=True):
    """The part of `openclaw.json` that session maintenance reads."""

    path: str
    dm_scope: str = DEFAULT_DM_SCOPE
    store: str | None = None
    maintenance: Maintenance = msgspec.field(default_factory=Maintenance)
    agents: tuple[AgentConfig, ...] = ()
    default_model: Any = None
    gateway_token: str | None = None
    raw: Mapping[str, Any] = msgspec.field(default_factory=dict)


class StoreTarget(msgspec.Struct, frozen=True):
    agent_id: str
    store_path: str


# ---------------------------------------------------------------------------------- locations


def _env(env: Mapping[str, str], name: str) -> str | None:
    value = env.get(name)
    if value is None:
        return None
    value = value.strip()
    return None if value in ("", "undefined", "null") else value


def resolve_home(env: Mapping[str, str], cwd: str) -> str:
    os_home = os.path.expanduser("~")
    explicit = _env(env, "OPENCLAW_HOME")
    if explicit:
        if explicit == "~" or explicit.startswith(("~/", "~\\")):
            explicit = os_home + explicit[1:]
        return os.path.normpath(os.path.join(cwd, explicit))
    for candidate in (_env(env, "HOME"), _env(env, "USERPROFILE"), os_home, cwd):
        if candidate:
            return os.path.normpath(os.path.join(cwd, candidate))
    return cwd


def expand_user(path: str, home: str) -> str:
    if path == "~":
        return home
    if path.startswith(("~/", "~\\")):
        return home + path[1:]
    return path


def resolve_path(path: str, home: str, cwd: str) -> str:
    """Node's `path.resolve` after `~` expansion: absolute, normalised, not symlink-resolved."""
    return os.path.normpath(os.path.join(cwd, expand_user(path, home)))


def resolve_state_dir(env: Mapping[str, str], cwd: str) -> str:
    home = resolve_home(env, cwd)
    explicit = _env(env, "OPENCLAW_STATE_DIR")
    if explicit:
        return resolve_path(explicit, home, cwd)
    for name in (".openclaw", ".clawdbot"):
        candidate = os.path.join(home, name)
        if os.path.exists(candidate):
            return candidate
    return os.path.join(home, ".openclaw")


def state_dir_problem(state_dir: str, flag_given: bool, env: Mapping[str, str]) -> str | None:
    """Why `state_dir` cannot be used (it does not exist, or is not a directory), naming where
    it came from; None when it is a directory. A missing state dir is a typo until proven
    otherwise: nothing creates one."""
    if os.path.isdir(state_dir):
        return None
    source = (
        "--state-dir"
        if flag_given
        else "OPENCLAW_STATE_DIR"
        if _env(env, "OPENCLAW_STATE_DIR")
        else "the default"
    )
    what = "is not a directory" if os.path.exists(state_dir) else "does not exist"
    return f"state dir {state_dir} (from {source}) {what}"


def resolve_config_path(env: Mapping[str, str], state_dir: str, cwd: str) -> str:
    explicit = _env(env, "OPENCLAW_CONFIG_PATH")
    if explicit:
        return resolve_path(explicit, resolve_home(env, cwd), cwd)
    primary = os.path.join(state_dir, "openclaw.json")
    legacy = os.path.join(state_dir, "clawdbot.json")
    if not os.path.exists(primary) and os.path.exists(legacy):
        return legacy
    return primary


def resolve_store_path(
    store: str | None, agent_id: str, state_dir: str, home: str, cwd: str
) -> str:
    agent = normalize_agent_id(agent_id)
    if not store:
        return os.path.join(state_dir, "agents", agent, "sessions", "sessions.json")
    return resolve_path(store.replace("{agentId}", agent), home, cwd)


# ------------------------------------------------------------------------------------ parsing


def _scalar_text(value: Any) -> str | None:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        if isinstance(value, float) and value.is_integer():
            return str(int(value))
        return str(value)
    if isinstance(value, str):
        return value.strip()
    return None


def _maintenance(raw: Any, problems: list[str]) -> Maintenance:
    if raw is None:
        return Maintenance()
    if not isinstance(raw, dict):
        problems.append("session.maintenance: Invalid input: expected object")
        return Maintenance()
    prefix = "session.maintenance"
    mode = raw.get("mode", "enforce")
    if mode not in ("enforce", "warn"):
        problems.append(f'{prefix}.mode: Invalid option: expected one of "enforce"|"warn"')
        mode = "enforce"

    prune_raw = raw.get("pruneAfter")
    prune_days = raw.get("pruneDays")
    if prune_days is not None and (
        not isinstance(prune_days, int) or isinstance(prune_days, bool) or prune_days <= 0
    ):
        problems.append(f"{prefix}.pruneDays: Too small: expected number to be >0")
        prune_days = None
    prune_after_ms = DEFAULT_PRUNE_AFTER_MS
    prune_text = _scalar_text(prune_raw if prune_raw is not None else prune_days)
    if prune_text is not None:
        try:
            prune_after_ms = parse_duration_ms(prune_text, default_unit="d")
        except UnitParseError:
            if prune_raw is not None:
                problems.append(f"{prefix}.pruneAfter: invalid duration (use ms, s, m, h, d)")

    max_entries = raw.get("maxEntries", DEFAULT_MAX_ENTRIES)
    if not isinstance(max_entries, int | float) or isinstance(max_entries, bool):
        problems.append(f"{prefix}.maxEntries: Invalid input: expected number")
        max_entries = DEFAULT_MAX_ENTRIES
    elif max_entries <= 0:
        problems.append(f"{prefix}.maxEntries: Too small: expected number to be >0")
        max_entries = DEFAULT_MAX_ENTRIES
    elif not float(max_entries).is_integer():
        problems.append(f"{prefix}.maxEntries: Invalid input: expected int, received number")
        max_entries = DEFAULT_MAX_ENTRIES

    retention_raw = raw.get("resetArchiveRetention")
    retention: int | None = prune_after_ms
    if retention_raw is False:
        retention = None
    elif retention_raw is not None:
        text = _scalar_text(retention_raw)
        try:
            retention = parse_duration_ms(text or "", default_unit="d")
        except UnitParseError:
            problems.append(
                f"{prefix}.resetArchiveRetention: invalid duration (use ms, s, m, h, d)"
            )
    retention = retention or None

    max_disk: int | None = None
    disk_raw = raw.get("maxDiskBytes")
    if disk_raw is not None:
        try:
            max_disk = parse_byte_size(_scalar_text(disk_raw) or "", default_unit="b")
        except UnitParseError:
            problems.append(f"{prefix}.maxDiskBytes: invalid size (use b, kb, mb, gb, tb)")
    high_water: int | None = None
    if max_disk is not None:
        high_raw = raw.get("highWaterBytes")
        if high_raw is not None:
            try:
                high_water = min(
                    parse_byte_size(_scalar_text(high_raw) or "", default_unit="b"), max_disk
                )
            except UnitParseError:
                problems.append(f"{prefix}.highWaterBytes: invalid size (use b, kb, mb, gb, tb)")
        if not high_water:
            high_water = max(1, min(max_disk, math.floor(max_disk * 0.8)))
        if max_disk <= 0:
            max_disk = high_water = None
    return Maintenance(
        mode=mode,
        prune_after_ms=prune_after_ms or None,
        max_entries=int(max_entries),
        reset_archive_retention_ms=retention,
        max_disk_bytes=max_disk,
        high_water_bytes=high_water,
    )


def parse_config(raw: Any, path: str) -> SessionsConfig:
    """Validate the parts of the config sessiond reads; anything else is carried along untouched."""
    problems: list[str] = []
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(path, ["<root>: Invalid input: expected object"])
    session = raw.get("session") or {}
    if not isinstance(session, dict):
        problems.append("session: Invalid input: expected object")
        session = {}
    dm_scope = session.get("dmScope", DEFAULT_DM_SCOPE)
    if dm_scope not in DM_SCOPES:
        problems.append(
            "session.dmScope: Invalid option: expected one of "
            + "|".join(f'"{s}"' for s in DM_SCOPES)
        )
        dm_scope = DEFAULT_DM_SCOPE
    store = session.get("store")
    if store is not None and not isinstance(store, str):
        problems.append("session.store: Invalid input: expected string")
        store = None
    maintenance = _maintenance(session.get("maintenance"), problems)

    agents_raw = raw.get("agents") or {}
    agents: list[AgentConfig] = []
    default_model: Any = None
    if isinstance(agents_raw, dict):
        defaults = agents_raw.get("defaults")
        if isinstance(defaults, dict):
            default_model = defaults.get("model")
        listed = agents_raw.get("list") or []
        if isinstance(listed, list):
            for item in listed:
                if isinstance(item, dict) and isinstance(item.get("id"), str):
                    agents.append(
                        AgentConfig(
                            id=item["id"],
                            default=item.get("default") is True,
                            model=item.get("model"),
                        )
                    )
    gateway = raw.get("gateway")
    token: str | None = None
    if isinstance(gateway, dict):
        auth = gateway.get("auth")
        if isinstance(auth, dict) and isinstance(auth.get("token"), str):
            token = auth["token"]
    if problems:
        raise ConfigError(path, problems)
    return SessionsConfig(
        path=path,
        dm_scope=dm_scope,
        store=js_trim(store) or None if isinstance(store, str) else None,
        maintenance=maintenance,
        agents=tuple(agents),
        default_model=default_model,
        gateway_token=token,
        raw=raw,
    )


def parse_config_text(text: str, path: str) -> SessionsConfig:
    try:
        raw = json5.loads(text) if text.strip() else {}
    except ValueError as exc:
        from sessiond.engine.config_position import json5_error_position

        found = json5_error_position(str(exc))
        detail = f"JSON5 parse failed: {found[0] if found else exc}"
        raise ConfigError(
            path,
            [f"<root>: JSON5 parse failed: {exc}"],
            [(detail, found[1] if found else None)],
        ) from exc
    try:
        return parse_config(raw, path)
    except ConfigError as exc:
        from sessiond.engine.config_position import locate_setting

        exc.details = [
            (problem, locate_setting(text, problem.partition(":")[0])) for problem in exc.problems
        ]
        raise


# ------------------------------------------------------------------------------------ targets


def list_agent_ids(cfg: SessionsConfig) -> list[str]:
    seen: list[str] = []
    for agent in cfg.agents:
        normalized = normalize_agent_id(agent.id)
        if normalized not in seen:
            seen.append(normalized)
    return seen or [DEFAULT_AGENT_ID]


def default_agent_id(cfg: SessionsConfig) -> str:
    if not cfg.agents:
        return DEFAULT_AGENT_ID
    chosen = next((a for a in cfg.agents if a.default), cfg.agents[0])
    return normalize_agent_id(chosen.id)


class Locations(msgspec.Struct, frozen=True):
    """Where things live for one invocation: resolved once, passed everywhere."""

    state_dir: str
    home: str
    cwd: str

    @classmethod
    def from_env(cls, env: Mapping[str, str], cwd: str) -> Locations:
        return cls(state_dir=resolve_state_dir(env, cwd), home=resolve_home(env, cwd), cwd=cwd)


def resolve_targets(
    cfg: SessionsConfig,
    where: Locations,
    *,
    store: str | None = None,
    agent: str | None = None,
    all_agents: bool = False,
) -> list[StoreTarget]:
    has_agent = bool(js_trim(agent or ""))
    if has_agent and all_agents:
        raise TargetError("--agent and --all-agents cannot be used together")
    if store and (has_agent or all_agents):
        raise TargetError("--store cannot be combined with --agent or --all-agents")
    default_id = default_agent_id(cfg)

    def path_for(agent_id: str, template: str | None) -> str:
        return resolve_store_path(template, agent_id, where.state_dir, where.home, where.cwd)

    if store:
        return [StoreTarget(default_id, path_for(default_id, store))]
    if all_agents:
        targets: list[StoreTarget] = []
        for agent_id in list_agent_ids(cfg):
            path = path_for(agent_id, cfg.store)
            if all(t.store_path != path for t in targets):
                targets.append(StoreTarget(agent_id, path))
        return targets
    if has_agent:
        requested = normalize_agent_id(agent)
        if requested not in list_agent_ids(cfg):
            raise TargetError(
                f'Unknown agent id "{agent}". Use "openclaw agents list" to see configured agents.'
            )
        return [StoreTarget(requested, path_for(requested, cfg.store))]
    return [StoreTarget(default_id, path_for(default_id, cfg.store))]
