"""Where a setting sits in a JSON5 config text: the line and column an operator should look at.

The json5 parser gives values, not positions, so a problem found while validating
(`session.maintenance.mode: Invalid option`) would otherwise name only the setting. This scans
the text just far enough to follow object keys: strings (both quotes), comments, punctuation and
bare words. It never decides whether the text is valid; json5 already has.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

Position = tuple[int, int]
"""(line, column), both counted from 1; columns count characters."""

_SPACE = frozenset(" \t\r\n\ufeff\u00a0\u2028\u2029")
_PUNCT = frozenset("{}[]:,")
_WORD_END = _SPACE | _PUNCT | frozenset("\"'/")
_JSON5_ERROR = re.compile(r"^<string>:(\d+) (.*) at column (\d+)$", re.DOTALL)


def position_of(text: str, offset: int) -> Position:
    line_start = text.rfind("\n", 0, offset) + 1
    return text.count("\n", 0, offset) + 1, offset - line_start + 1


def json5_error_position(message: str) -> tuple[str, Position] | None:
    """json5's `<string>:2 Unexpected "," at column 9` as ('Unexpected ","', (2, 9))."""
    found = _JSON5_ERROR.match(message)
    if found is None:
        return None
    what = found.group(2).replace("\r", "\\r").replace("\n", "\\n")  # one line, always
    return what, (int(found.group(1)), int(found.group(3)))


def _tokens(text: str) -> Iterator[tuple[str, str, int]]:
    """(kind, value, offset) with kind 'punct', 'string' or 'word'; comments are skipped."""
    i, end = 0, len(text)
    while i < end:
        char = text[i]
        if char in _SPACE:
            i += 1
        elif text.startswith("//", i):
            newline = text.find("\n", i)
            i = end if newline < 0 else newline
        elif text.startswith("/*", i):
            close = text.find("*/", i + 2)
            i = end if close < 0 else close + 2
        elif char in _PUNCT:
            yield "punct", char, i
            i += 1
        elif char in "\"'":
            j, chars = i + 1, []
            while j < end and text[j] != char:
                if text[j] == "\\" and j + 1 < end:
                    j += 1
                chars.append(text[j])
                j += 1
            yield "string", "".join(chars), i
            i = j + 1
        else:
            j = i + 1
            while j < end and text[j] not in _WORD_END:
                j += 1
            yield "word", text[i:j], i
            i = j


@dataclass(slots=True)
class _Container:
    path: list[str]
    is_object: bool
    key: str | None = None
    index: int = 0
    expect_key: bool = True


def locate_setting(text: str, dotted: str) -> Position | None:
    """Where the deepest key along `dotted` (`session.maintenance.mode`) is written; the last
    occurrence wins, as it does when the file is read. None when not even the first key is."""
    target = dotted.split(".")
    best: tuple[int, int] | None = None  # (depth, offset)
    stack: list[_Container] = []
    for kind, value, offset in _tokens(text):
        top = stack[-1] if stack else None
        if kind == "punct":
            if value in "{[":
                path: list[str] = []
                if top is not None:
                    path = [*top.path, (top.key or "") if top.is_object else str(top.index)]
                stack.append(_Container(path, value == "{"))
            elif value in "}]":
                if stack:
                    stack.pop()
            elif top is not None and value == ":":
                top.expect_key = False
            elif top is not None and value == ",":
                top.expect_key, top.key = True, None
                top.index += 1
            continue
        if top is not None and top.is_object and top.expect_key:
            top.key = value
            path = [*top.path, value]
            if path == target[: len(path)] and (best is None or len(path) >= best[0]):
                best = (len(path), offset)
    return None if best is None else position_of(text, best[1])
