"""What JavaScript does that Python does not, where the reference's output depends on it.

OpenClaw is written in TypeScript; its figures and tables come from JS number coercion, UTF-16
string lengths, `Math.round` and the object key order of V8. Matching it byte for byte means
reproducing exactly these rules and no more.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from typing import Any

_ARRAY_INDEX_MAX = 4294967294
_JS_NUMERIC = re.compile(r"^[+-]?(?:\d+\.?\d*(?:[eE][+-]?\d+)?|\.\d+(?:[eE][+-]?\d+)?|Infinity)$")
# Characters JS `String.prototype.trim` strips besides ASCII white space.
_JS_SPACE = (
    " \t\n\v\f\r\u00a0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008"
    "\u2009\u200a\u2028\u2029\u202f\u205f\u3000\ufeff"
)


def js_trim(text: str) -> str:
    return text.strip(_JS_SPACE)


def js_trim_start(text: str) -> str:
    return text.lstrip(_JS_SPACE)


def js_trim_end(text: str) -> str:
    return text.rstrip(_JS_SPACE)


def is_array_index(key: str) -> bool:
    """True for keys V8 enumerates first, in ascending numeric order."""
    if not key or not key.isascii() or not key.isdigit():
        return False
    if len(key) > 1 and key[0] == "0":
        return False
    return int(key) <= _ARRAY_INDEX_MAX


def js_key_order(keys: Iterable[str]) -> list[str]:
    """Keys in the order `Object.keys` would list them after `JSON.parse`."""
    listed = list(keys)
    indexes = [k for k in listed if is_array_index(k)]
    if not indexes:
        return listed
    indexes.sort(key=int)
    return indexes + [k for k in listed if not is_array_index(k)]


def to_number(value: Any) -> float:
    """JS `Number(value)` for JSON values; NaN where JS gives NaN."""
    if value is None:
        return 0.0
    if isinstance(value, bool):
        return 1.0 if value else 0.0
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        text = js_trim(value)
        if text == "":
            return 0.0
        lowered = text.lower()
        if lowered.startswith(("0x", "0o", "0b")) and len(text) > 2:
            base = {"x": 16, "o": 8, "b": 2}[lowered[1]]
            try:
                return float(int(text[2:], base))
            except ValueError:
                return math.nan
        if _JS_NUMERIC.match(text):
            return float(text.replace("Infinity", "inf"))
        return math.nan
    if isinstance(value, list):
        if not value:
            return 0.0
        if len(value) == 1:
            return to_number(value[0]) if not isinstance(value[0], list | dict) else math.nan
        return math.nan
    return math.nan


def is_finite_number(value: Any) -> bool:
    """JS `Number.isFinite`: no coercion, so strings are never finite."""
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def js_truthy(value: Any) -> bool:
    if value is None or value is False:
        return False
    if isinstance(value, int | float) and not isinstance(value, bool):
        return value != 0 and not math.isnan(value)
    if isinstance(value, str):
        return value != ""
    return True


def js_round(value: float) -> int:
    """`Math.round`: halves go up, unlike Python's banker's rounding."""
    return math.floor(value + 0.5)


def utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def printable(text: str) -> str:
    """Lone surrogates become U+FFFD, as Node writes them to a UTF-8 stream."""
    return _LONE_SURROGATE.sub("\ufffd", text)


def utf16_slice(text: str, start: int, end: int | None = None) -> str:
    units = text.encode("utf-16-le", "surrogatepass")
    count = len(units) // 2
    s = start if start >= 0 else max(0, count + start)
    e = count if end is None else (end if end >= 0 else max(0, count + end))
    return units[2 * s : 2 * max(s, e)].decode("utf-16-le", "surrogatepass")


def pad_end(text: str, width: int) -> str:
    """`String.prototype.padEnd` with spaces; widths count UTF-16 units and never truncate."""
    missing = width - utf16_len(text)
    return text + " " * missing if missing > 0 else text


def js_string(value: Any) -> str:
    """`String(value)` inside template literals, for the JSON value kinds a row can hold."""
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, float):
        if math.isnan(value):
            return "NaN"
        if value.is_integer() and abs(value) < 1e21:
            return str(int(value))
        return repr(value)
    if isinstance(value, list):
        return ",".join("" if v is None else js_string(v) for v in value)
    if isinstance(value, dict):
        return "[object Object]"
    return str(value)
