"""`python -m sessiond.protocol.schema_export`: write protocol/schema.json from the Structs.

The schema is the contract the clients are generated from, so it is written in one stable form
(sorted keys, two-space indent, a final newline) and a change to a Struct shows up as a small
diff. It is JSON Schema 2020-12: every params, result and notification type under `$defs`, plus
three tables as `x-` keywords (JSON Schema reserves that prefix for extensions):

- `x-methods`: name -> params `$ref`, result schema, `mutates`, `errors` (the `x-errors` names
  of the error kinds it may raise, from the method table and protocol/errors.py),
  `description`;
- `x-notifications`: name -> params `$ref`, `description`;
- `x-errors`: constant name in protocol/jsonrpc.py -> `code`, `description`.

A result that is a union of Structs (`sessions.cleanup`) is an `anyOf` of refs: its members have
no tag field on the wire, so a client tells them apart by their required fields.
"""

from __future__ import annotations

import argparse
import ast
import inspect
import itertools
import json
import sys
import types
import typing
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import msgspec
from sessiond.protocol import jsonrpc
from sessiond.protocol.errors import ERRORS
from sessiond.protocol.methods import NOTIFICATIONS, served_by

SCHEMA_PATH = Path(__file__).with_name("schema.json")
DIALECT = "https://json-schema.org/draft/2020-12/schema"
_REF = "#/$defs/{name}"

_STANDARD_ERRORS = {
    jsonrpc.PARSE_ERROR: "The frame is not valid JSON.",
    jsonrpc.INVALID_REQUEST: "The frame is not a valid JSON-RPC 2.0 request.",
    jsonrpc.METHOD_NOT_FOUND: "No method by that name.",
    jsonrpc.INVALID_PARAMS: "The params do not validate; `data.path` says where.",
    jsonrpc.INTERNAL_ERROR: "A bug in the daemon; `data` names the exception type.",
}
"""JSON-RPC 2.0's own codes, which jsonrpc.py names without a docstring."""


def _members(annotation: Any) -> list[Any]:
    """A union's member types (msgspec exports untagged Struct unions only member by member)."""
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        return list(typing.get_args(annotation))
    return [annotation]


def _ref(kind: Any) -> dict[str, str]:
    return {"$ref": _REF.format(name=kind.__name__)}


def _result_schema(annotation: Any) -> dict[str, Any]:
    members = _members(annotation)
    if len(members) == 1:
        return _ref(members[0])
    return {"anyOf": [_ref(member) for member in members]}


def _clean_descriptions(node: Any) -> Any:
    """Docstrings arrive with their source indentation; strip it so the text reads the same."""
    if isinstance(node, dict):
        return {
            key: inspect.cleandoc(value)
            if key == "description" and isinstance(value, str)
            else _clean_descriptions(value)
            for key, value in node.items()
        }
    if isinstance(node, list):
        return [_clean_descriptions(item) for item in node]
    return node


def error_codes() -> dict[str, dict[str, Any]]:
    """The error constants of protocol/jsonrpc.py with the docstring under each, if any.

    Attribute docstrings exist only in the source, so they are read with `ast`; that keeps
    jsonrpc.py the one place where a code is named and explained.
    """
    codes = {
        name: getattr(jsonrpc, name)
        for name in jsonrpc.__all__
        if name.isupper() and isinstance(getattr(jsonrpc, name), int)
    }
    docs: dict[str, str] = {}
    body = ast.parse(inspect.getsource(jsonrpc)).body
    for statement, following in itertools.pairwise(body):
        if (
            isinstance(statement, ast.AnnAssign)
            and isinstance(statement.target, ast.Name)
            and isinstance(following, ast.Expr)
            and isinstance(following.value, ast.Constant)
            and isinstance(following.value.value, str)
        ):
            docs[statement.target.id] = inspect.cleandoc(following.value.value)
    return {
        name: {"code": code, "description": docs.get(name) or _STANDARD_ERRORS.get(code, "")}
        for name, code in codes.items()
    }


def build_schema() -> dict[str, Any]:
    """The whole contract as one JSON-ready dict."""
    served = served_by("jsonrpc")  # the gateway-only rows are OpenClaw's shapes, not ours
    kinds: list[Any] = []
    for spec in served.values():
        kinds += [spec.params, *_members(spec.result)]
    kinds += NOTIFICATIONS.values()
    _, components = msgspec.json.schema_components(kinds, ref_template=_REF)
    errors = error_codes()
    error_name = {entry["code"]: name for name, entry in errors.items()}
    methods = {
        name: {
            "description": spec.doc,
            "errors": list(dict.fromkeys(error_name[ERRORS[k].jsonrpc] for k in spec.errors)),
            "mutates": spec.mutates,
            "params": _ref(spec.params),
            "result": _result_schema(spec.result),
        }
        for name, spec in served.items()
    }
    notifications = {
        name: {"description": kind.__doc__ or "", "params": _ref(kind)}
        for name, kind in NOTIFICATIONS.items()
    }
    schema: dict[str, Any] = _clean_descriptions(
        {
            "$schema": DIALECT,
            "title": "sessiond protocol",
            "description": "JSON-RPC 2.0 over WebSocket; params are by name, fields camelCase.",
            "$defs": components,
            "x-methods": methods,
            "x-notifications": notifications,
            "x-errors": errors,
        }
    )
    return schema


def render(schema: dict[str, Any]) -> str:
    """The one textual form of the schema: diffs stay small and `make check-gen` exact."""
    return json.dumps(schema, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=SCHEMA_PATH, help="where to write")
    parser.add_argument("--check", action="store_true", help="fail if --out is not current")
    args = parser.parse_args(argv)
    text = render(build_schema())
    if args.check:
        current = args.out.read_text(encoding="utf-8") if args.out.exists() else ""
        if current != text:
            print(f"{args.out} is stale: run `make gen` and commit", file=sys.stderr)
            return 1
        return 0
    args.out.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
