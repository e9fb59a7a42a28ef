"""The import arrows between the layers point down only (docs/architecture.md).

Every module of the five top-level folders is parsed with `ast` (nothing is imported), and each
import, wherever it sits (module top, function body, `if TYPE_CHECKING:`), is checked against
its layer's allowed set:

- protocol/ imports nothing of ours;
- engine/ imports protocol/, itself, the standard library, msgspec and json5, and not asyncio,
  websockets, watchfiles or structlog: it is pure;
- daemon/ imports protocol/, engine/ and itself;
- client/ imports protocol/ and itself;
- cli/ may import every layer.

Installed, the layers are `sessiond.<folder>`; an import by the bare folder name (`import
daemon`) works only from a checkout and is flagged in every layer.
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = "sessiond"
LAYERS = ("protocol", "engine", "daemon", "client", "cli")
MAY_IMPORT: dict[str, frozenset[str]] = {
    "protocol": frozenset({"protocol"}),
    "engine": frozenset({"protocol", "engine"}),
    "daemon": frozenset({"protocol", "engine", "daemon"}),
    "client": frozenset({"protocol", "client"}),
    "cli": frozenset(LAYERS),
}
ENGINE_THIRD_PARTY = frozenset({"msgspec", "json5"})
ENGINE_FORBIDDEN = frozenset({"asyncio", "websockets", "watchfiles", "structlog"})


def module_name(root: Path, path: Path) -> str:
    """`daemon/live_store.py` -> `sessiond.daemon.live_store` (a package is its `__init__`)."""
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join([PACKAGE, *parts])


def imports(root: Path, path: Path) -> Iterator[tuple[int, str, list[str]]]:
    """(line, module, names under it) for every import in the file, relative ones made
    absolute. The names matter when the module is a package: `from sessiond import daemon`
    imports `sessiond.daemon`."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    here = module_name(root, path)
    package = here if path.name == "__init__.py" else here.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name, []
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{base}.{node.module}" if node.module else base
            else:
                base = node.module or ""
            names = [f"{base}.{a.name}" for a in node.names if a.name != "*"]
            yield node.lineno, base, names


def wrong_arrow(layer: str, name: str) -> str | None:
    """Why `layer` may not import `name`, or None when it may."""
    top, _, rest = name.partition(".")
    if top in LAYERS:
        return f"imports {name} by its folder name; the installed name is {PACKAGE}.{name}"
    if top == PACKAGE:
        target = rest.partition(".")[0]
        if not target:
            return None  # `from sessiond import x` is judged by its `sessiond.x`
        if target not in MAY_IMPORT[layer]:
            allowed = ", ".join(sorted(MAY_IMPORT[layer]))
            return f"imports {name}; {layer}/ may import only {allowed} of ours"
        return None
    if layer == "engine":
        if top in ENGINE_FORBIDDEN:
            return f"imports {name}; engine/ is pure (no {', '.join(sorted(ENGINE_FORBIDDEN))})"
        if top not in sys.stdlib_module_names and top not in ENGINE_THIRD_PARTY:
            allowed = ", ".join(sorted(ENGINE_THIRD_PARTY))
            return f"imports {name}; engine/ may use only the standard library, {allowed}"
    return None


def layer_violations(root: Path) -> list[str]:
    """Every import under `root`'s layer folders that points the wrong way, as `path:line why`."""
    found = []
    for layer in LAYERS:
        for path in sorted((root / layer).rglob("*.py")):
            for line, module, names in imports(root, path):
                why = wrong_arrow(layer, module)
                whys = [why] if why is not None else [wrong_arrow(layer, n) for n in names]
                found += [f"{path.relative_to(root)}:{line} {w}" for w in whys if w is not None]
    return found


def test_every_import_arrow_points_down() -> None:
    modules = [p for layer in LAYERS for p in (ROOT / layer).rglob("*.py")]
    assert len(modules) > 40, "the layer folders were not found"
    wrong = layer_violations(ROOT)
    assert not wrong, "imports that point the wrong way:\n" + "\n".join(wrong)


WRONG = [
    ("protocol", "from sessiond.engine.keys import parse_key", "sessiond.engine.keys"),
    ("protocol", "from ..daemon import server", "sessiond.daemon"),
    ("engine", "import asyncio", "asyncio"),
    ("engine", "from websockets.asyncio.client import connect", "websockets.asyncio.client"),
    ("engine", "import structlog", "structlog"),
    ("engine", "from watchfiles import awatch", "watchfiles"),
    ("engine", "import httpx", "httpx"),
    ("engine", "from sessiond.daemon.live_store import LiveStore", "sessiond.daemon.live_store"),
    ("engine", "from sessiond import cli", "sessiond.cli"),
    ("daemon", "from sessiond.client import SessiondClient", "sessiond.client"),
    ("daemon", "from sessiond.cli.main import main", "sessiond.cli.main"),
    ("client", "from sessiond.engine import keys", "sessiond.engine"),
    ("client", "import sessiond.daemon.server", "sessiond.daemon.server"),
    ("cli", "from daemon import server", "daemon"),
]


@pytest.mark.parametrize(("layer", "statement", "named"), WRONG)
def test_a_wrong_arrow_is_reported(tmp_path: Path, layer: str, statement: str, named: str) -> None:
    """The checker itself: a wrong import, at module top and in a function's TYPE_CHECKING
    block, is reported once each, with file, line and the module it names."""
    module = tmp_path / layer / "wrong.py"
    module.parent.mkdir(parents=True)
    module.write_text(
        f"from typing import TYPE_CHECKING\n{statement}\n\n\ndef f() -> None:\n"
        f"    if TYPE_CHECKING:\n        {statement}\n"
    )
    found = layer_violations(tmp_path)
    assert [line.split(" ", 1)[0] for line in found] == [
        f"{layer}/wrong.py:2",
        f"{layer}/wrong.py:7",
    ], found
    assert all(f" imports {named}" in line for line in found), found


ALLOWED = [
    ("protocol/wire.py", "import msgspec"),
    ("protocol/wire.py", "from . import jsonrpc"),
    ("engine/pure.py", "from sessiond.protocol.methods import METHODS"),
    ("engine/pure.py", "import json5, msgspec, dataclasses, os.path\nfrom .store import Store"),
    ("engine/cleanup/plan.py", "from ..store import Store\nfrom . import targets"),
    ("daemon/shell.py", "from sessiond.engine.store import Store"),
    ("daemon/shell.py", "import asyncio, structlog, websockets, watchfiles"),
    ("client/lib.py", "from sessiond.protocol import methods\nimport websockets"),
    (
        "cli/main.py",
        "from sessiond.daemon import server\nfrom sessiond.client import SessiondClient",
    ),
]


@pytest.mark.parametrize(("where", "statements"), ALLOWED)
def test_a_downward_arrow_passes(tmp_path: Path, where: str, statements: str) -> None:
    module = tmp_path / where
    module.parent.mkdir(parents=True)
    module.write_text(statements + "\n")
    assert layer_violations(tmp_path) == []
