"""Reading `openclaw.json`: the one place the config file is opened."""

from __future__ import annotations

from pathlib import Path

from sessiond.engine.config import ConfigError, SessionsConfig, parse_config, parse_config_text


def load_config_file(path: str) -> SessionsConfig:
    """Read and validate a config file; a missing file is the empty config."""
    try:
        text = Path(path).read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return parse_config({}, path)
    except IsADirectoryError as exc:
        raise ConfigError(path, [f"<root>: not a file: {exc}"]) from exc
    return parse_config_text(text.removeprefix("\ufeff"), path)
