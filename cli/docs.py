"""docs/cli.md, written from the argument parser so that it cannot drift from it.

`python -m sessiond.cli.docs` prints it, `--write PATH` writes it, `--check PATH` fails with a
diff when PATH is not what would be written now (`make gen` and `make check-gen` do both).
Every command and flag comes from `build_parser()`; where a setting comes from when its flag is
absent from `SOURCES`; exit statuses from `EXIT_CODES`.
"""

from __future__ import annotations

import argparse
import difflib
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

from sessiond.cli.main import ENVIRONMENT, EXIT_CODES, SOURCES, Source, build_parser

HEADER = """\
# The `sessiond` command

Generated from the argument parser by `python -m sessiond.cli.docs` (`make gen`); do not edit
by hand. `make check-gen` and `tests/cli/test_cli_docs.py` fail when it is stale.

A setting given as a flag always wins. Otherwise the sources in the "when not given" column
are tried in order: another flag, environment variables, the config file (`openclaw.json` in
the state dir, JSON5, or `OPENCLAW_CONFIG_PATH`), then the default.
"""


def _subcommands(
    parser: argparse.ArgumentParser, path: tuple[str, ...] = ()
) -> Iterator[tuple[tuple[str, ...], argparse.ArgumentParser]]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield (*path, name), sub
                yield from _subcommands(sub, (*path, name))


def _is_leaf(parser: argparse.ArgumentParser) -> bool:
    return not any(isinstance(a, argparse._SubParsersAction) for a in parser._actions)


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def _flags(action: argparse.Action) -> str:
    if not action.option_strings:  # a positional argument
        return f"`{action.metavar or action.dest.upper()}` (argument)"
    names = ", ".join(f"`{name}`" for name in action.option_strings)
    if action.nargs == 0:
        return names
    meta = action.metavar or action.dest.upper()
    return f"{names} `{meta}`"


def _when_absent(action: argparse.Action, source: Source | None) -> str:
    parts: list[str] = []
    if source is not None:
        parts += [f"`{name}`" for name in source.flags]
        parts += [f"env `{name}`" for name in source.env]
        if source.config:
            parts.append(f"config `{source.config}`")
        if source.default:
            parts.append(f"default: {source.default}")
    elif action.nargs == 0:
        parts.append("off")
    elif action.default not in (None, argparse.SUPPRESS, []):
        parts.append(f"default: `{action.default}`")
    else:
        parts.append("not set")
    return "; then ".join(parts)


def _help(action: argparse.Action) -> str:
    text = action.help or ""
    if "%(default)" in text:
        text = text % {"default": action.default}
    return text


def render() -> str:
    parser = build_parser()
    out = [HEADER]
    top = [a for a in parser._actions if a.option_strings and a.help != argparse.SUPPRESS]
    out += ["## `sessiond`", "", _cell(parser.description or ""), ""]
    out += ["| flag | meaning |", "| --- | --- |"]
    out += [f"| {_flags(a)} | {_cell(_help(a))} |" for a in top]
    out.append("")
    for path, sub in _subcommands(parser):
        if not _is_leaf(sub):
            continue
        name = " ".join(path)
        out += [f"## `sessiond {name}`", ""]
        for paragraph in (sub.description or "").split("\n\n"):
            out += [_cell(paragraph), ""]
        out += ["| flag | meaning | when not given |", "| --- | --- | --- |"]
        for action in sub._actions:
            if action.dest == "help" or isinstance(action, argparse._SubParsersAction):
                continue
            key = action.option_strings[0] if action.option_strings else action.dest
            source = SOURCES.get((name, key))
            out.append(
                f"| {_flags(action)} | {_cell(_help(action))} | "
                f"{_cell(_when_absent(action, source))} |"
            )
        out += ["", "Exit status:", ""]
        out += [f"- `{code}`: {meaning}" for code, meaning in EXIT_CODES.get(name, [])]
        out.append("")
    out += ["## Environment", "", "| variable | meaning |", "| --- | --- |"]
    out += [f"| `{name}` | {_cell(meaning)} |" for name, meaning in ENVIRONMENT]
    return "\n".join(out).rstrip("\n") + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    args = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    group = args.add_mutually_exclusive_group()
    group.add_argument("--write", metavar="PATH", help="write the document to PATH")
    group.add_argument("--check", metavar="PATH", help="fail when PATH is not up to date")
    options = args.parse_args(argv)
    text = render()
    if options.write:
        Path(options.write).write_text(text, encoding="utf-8")
        return 0
    if options.check:
        path = Path(options.check)
        current = path.read_text(encoding="utf-8") if path.exists() else ""
        if current == text:
            return 0
        sys.stderr.writelines(
            difflib.unified_diff(
                current.splitlines(keepends=True),
                text.splitlines(keepends=True),
                str(path),
                "generated",
            )
        )
        print(f"{path} is stale: run `make gen`", file=sys.stderr)
        return 1
    sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
