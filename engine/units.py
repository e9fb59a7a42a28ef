"""Duration and byte-size grammars of `session.maintenance` (the reference's, exactly)."""

from __future__ import annotations

import math
import re

from sessiond.engine.js_semantics import js_round

_DURATION_UNITS = {"ms": 1, "s": 1_000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}
_DURATION_SINGLE = re.compile(r"^(\d+(?:\.\d+)?)(ms|s|m|h|d)?$")
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)")
_BYTE_UNITS = {
    "b": 1,
    "k": 1024,
    "kb": 1024,
    "m": 1024**2,
    "mb": 1024**2,
    "g": 1024**3,
    "gb": 1024**3,
    "t": 1024**4,
    "tb": 1024**4,
}
_BYTE_SIZE = re.compile(r"^(\d+(?:\.\d+)?)([a-z]+)?$")


class UnitParseError(ValueError):
    """A duration or byte size that the grammar rejects."""


def parse_duration_ms(raw: str, default_unit: str = "ms") -> int:
    """`1h30m`, `1.5d`, `7` (in `default_unit`); rejects `1w`, spaces and negatives."""
    text = raw.strip().lower()
    if not text:
        raise UnitParseError("invalid duration (empty)")
    single = _DURATION_SINGLE.match(text)
    if single:
        value = float(single.group(1)) * _DURATION_UNITS[single.group(2) or default_unit]
    else:
        total = 0.0
        position = 0
        for part in _DURATION_PART.finditer(text):
            if part.start() != position:
                raise UnitParseError(f"invalid duration: {raw}")
            total += float(part.group(1)) * _DURATION_UNITS[part.group(2)]
            position = part.end()
        if position != len(text) or position == 0:
            raise UnitParseError(f"invalid duration: {raw}")
        value = total
    if not math.isfinite(value):
        raise UnitParseError(f"invalid duration: {raw}")
    return js_round(value)


def parse_byte_size(raw: str, default_unit: str = "b") -> int:
    """`1.5KB`, `2m`, `900` (in `default_unit`); units are powers of 1024."""
    text = raw.strip().lower()
    match = _BYTE_SIZE.match(text)
    if not match:
        raise UnitParseError(f"invalid byte size: {raw}")
    unit = match.group(2) or default_unit
    if unit not in _BYTE_UNITS:
        raise UnitParseError(f"invalid byte size unit: {unit}")
    value = float(match.group(1)) * _BYTE_UNITS[unit]
    if not math.isfinite(value):
        raise UnitParseError(f"invalid byte size: {raw}")
    return js_round(value)
