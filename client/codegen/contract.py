"""protocol/schema.json read into the few shapes the renderers need.

The renderers never walk raw JSON Schema for methods or errors: they get `Method`, `Struct`,
`Field` and `ErrorCode`, in a fixed order, so both outputs list things the same way. Only the
schema keywords msgspec emits are understood; anything else fails loudly here rather than
turning into a silently wrong type in a generated file.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

Schema = dict[str, Any]

_REF = "#/$defs/"
_NO_DEFAULT: Any = object()
KNOWN_KEYWORDS = frozenset(
    {
        "$ref",
        "additionalProperties",
        "anyOf",
        "default",
        "description",
        "enum",
        "items",
        "maximum",
        "minimum",
        "properties",
        "required",
        "title",
        "type",
    }
)


@dataclass(frozen=True, slots=True)
class Field:
    wire: str
    schema: Schema
    required: bool
    default: Any

    @property
    def has_default(self) -> bool:
        return self.default is not _NO_DEFAULT

    @property
    def snake(self) -> str:
        """The Struct attribute: the inverse of msgspec's `rename="camel"`."""
        return _snake(self.wire)


@dataclass(frozen=True, slots=True)
class Struct:
    name: str
    description: str
    fields: list[Field]
    """Required fields first (in wire order), then optional ones by name."""


@dataclass(frozen=True, slots=True)
class Method:
    name: str
    description: str
    mutates: bool
    params: str
    results: list[str]
    """The result's Struct names: one, or the members of an untagged union."""
    errors: list[str]
    """The names (`ErrorCode.name`) of the errors the method itself may answer with."""

    @property
    def snake(self) -> str:
        return "_".join(_snake(part) for part in self.name.split("."))

    @property
    def camel(self) -> str:
        first, *rest = self.name.split(".")
        return first + "".join(part[:1].upper() + part[1:] for part in rest)


@dataclass(frozen=True, slots=True)
class Notification:
    name: str
    description: str
    params: str


@dataclass(frozen=True, slots=True)
class ErrorCode:
    name: str
    code: int
    description: str

    @property
    def class_name(self) -> str:
        """`APP_KEY_NOT_FOUND` -> `KeyNotFoundError`, `PARSE_ERROR` -> `ParseError`."""
        words = self.name.removeprefix("APP_").split("_")
        base = "".join(word.capitalize() for word in words)
        return base if base.endswith("Error") else base + "Error"


@dataclass(frozen=True, slots=True)
class Contract:
    structs: dict[str, Struct]
    defs: dict[str, Schema]
    methods: list[Method]
    notifications: list[Notification]
    errors: list[ErrorCode]
    """By code, standard JSON-RPC codes (most negative) first."""

    def error_classes(self, method: Method) -> list[str]:
        """The generated error classes `method` may raise, in the method table's order."""
        by_name = {error.name: error.class_name for error in self.errors}
        return [by_name[name] for name in method.errors]


def _snake(name: str) -> str:
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name).lower()


def ref_name(schema: Schema) -> str:
    ref = schema["$ref"]
    if not ref.startswith(_REF):
        raise ValueError(f"only local $defs refs are supported, not {ref}")
    return str(ref.removeprefix(_REF))


def _check_keywords(schema: Any, where: str) -> None:
    if isinstance(schema, dict):
        unknown = set(schema) - KNOWN_KEYWORDS
        if unknown:
            raise ValueError(f"{where}: the generator does not understand {sorted(unknown)}")
        for key, value in schema.items():
            if key == "properties":
                for name, sub in value.items():
                    _check_keywords(sub, f"{where}.{name}")
            elif key in ("items", "additionalProperties"):
                _check_keywords(value, f"{where}.{key}")
            elif key == "anyOf":
                for sub in value:
                    _check_keywords(sub, where)


def _struct(name: str, schema: Schema) -> Struct:
    if schema.get("type") != "object" or "properties" not in schema:
        raise ValueError(f"$defs/{name} is not an object with properties")
    properties: dict[str, Schema] = schema["properties"]
    required: list[str] = schema.get("required", [])
    order = required + sorted(set(properties) - set(required))
    fields = [
        Field(
            wire, properties[wire], wire in required, properties[wire].get("default", _NO_DEFAULT)
        )
        for wire in order
    ]
    return Struct(name, schema.get("description", ""), fields)


def _result_names(schema: Schema) -> list[str]:
    members = schema.get("anyOf", [schema])
    return [ref_name(member) for member in members]


def load(path: Path) -> Contract:
    document: Schema = json.loads(path.read_text(encoding="utf-8"))
    return parse(document)


def parse(document: Schema) -> Contract:
    """The contract in one schema document (as protocol/schema_export.build_schema returns)."""
    defs: dict[str, Schema] = document["$defs"]
    for name, schema in defs.items():
        _check_keywords(schema, f"$defs/{name}")
    methods = [
        Method(
            name,
            spec["description"],
            spec["mutates"],
            ref_name(spec["params"]),
            _result_names(spec["result"]),
            spec["errors"],
        )
        for name, spec in sorted(document["x-methods"].items())
    ]
    notifications = [
        Notification(name, spec["description"], ref_name(spec["params"]))
        for name, spec in sorted(document["x-notifications"].items())
    ]
    errors = sorted(
        (
            ErrorCode(name, spec["code"], spec["description"])
            for name, spec in document["x-errors"].items()
        ),
        key=lambda error: error.code,
    )
    known = {error.name for error in errors}
    for method in methods:
        unknown = [name for name in method.errors if name not in known]
        if unknown:
            raise ValueError(f"x-methods/{method.name}: errors not in x-errors: {unknown}")
    structs = {name: _struct(name, schema) for name, schema in sorted(defs.items())}
    return Contract(structs, defs, methods, notifications, errors)
