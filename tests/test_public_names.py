"""The public names of protocol/ and the client library are pinned: a rename is a deliberate change.

A module's public names are its `__all__` when it has one, else the names its top level binds
(def, class, assignment) that do not start with `_`. Read with `ast`, so nothing is imported.
client/codegen/ is left out: it is the generator's own machinery (`make gen`), not the
library's surface; what it writes, client/generated.py, is pinned.

When a change here is meant, update `PUBLIC` below in the same commit.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FOLDERS = ("protocol", "client")
NOT_PINNED = ("client/codegen/",)

PUBLIC: dict[str, set[str]] = {
    "protocol/__init__.py": set(),
    "protocol/cleanup.py": {
        "AllAgentsCleanup",
        "CleanupActionRow",
        "CleanupParams",
        "CleanupResult",
        "CleanupSummary",
        "DiskBudget",
        "Mode",
        "UnreferencedArtifacts",
    },
    "protocol/gateway_frames.py": {
        "DEFAULT_PORT",
        "INVALID_REQUEST",
        "NOT_PAIRED",
        "PROTOCOL_VERSION",
        "UNAVAILABLE",
        "AgentIdentity",
        "AgentModel",
        "AgentSummary",
        "AgentsListResult",
        "ChallengePayload",
        "ChatHistoryParams",
        "ChatHistoryResult",
        "ClientInfo",
        "ConnectAuth",
        "ConnectParams",
        "DeviceProof",
        "EmptyParams",
        "ErrorShape",
        "EventFrame",
        "Features",
        "GatewaySessionRow",
        "HealthAgent",
        "HealthAgentSessions",
        "HealthPayload",
        "HelloAuth",
        "HelloOk",
        "Policy",
        "PreviewItem",
        "RequestFrame",
        "ResolvedModel",
        "ResponseFrame",
        "ServerInfo",
        "SessionDefaultsSnapshot",
        "SessionPreview",
        "SessionsChangedPayload",
        "SessionsCleanupParams",
        "SessionsDefaults",
        "SessionsDeleteParams",
        "SessionsDeleteResult",
        "SessionsDescribeParams",
        "SessionsDescribeResult",
        "SessionsListParams",
        "SessionsListResult",
        "SessionsPatchParams",
        "SessionsPatchResult",
        "SessionsPreviewParams",
        "SessionsPreviewResult",
        "SessionsResetParams",
        "SessionsResetResult",
        "SessionsSubscribeResult",
        "ShutdownPayload",
        "Snapshot",
        "StateVersion",
        "StatusPayload",
        "StatusSessions",
        "TickPayload",
    },
    "protocol/errors.py": {"ERRORS", "ErrorKind", "WireCodes"},
    "protocol/jsonrpc.py": {
        "APP_AUTH_REQUIRED",
        "APP_CONFLICT",
        "APP_JOURNAL_ENTRY_NOT_FOUND",
        "APP_KEY_NOT_FOUND",
        "APP_NOT_RESTORABLE",
        "APP_RUNTIME_UNAVAILABLE",
        "APP_STALE_PLAN",
        "APP_STORE_NOT_FOUND",
        "APP_STORE_NOT_WRITABLE",
        "APP_STORE_WRITE_FAILED",
        "INTERNAL_ERROR",
        "INVALID_PARAMS",
        "INVALID_REQUEST",
        "METHOD_NOT_FOUND",
        "PARSE_ERROR",
        "ErrorObject",
        "ErrorResponse",
        "Notification",
        "Request",
        "RequestId",
        "SuccessResponse",
    },
    "protocol/methods.py": {
        "CHANGED_NOTIFICATION",
        "METHODS",
        "NOTIFICATIONS",
        "PROGRESS_NOTIFICATION",
        "STORES_CHANGED_NOTIFICATION",
        "AgentInfo",
        "AgentsParams",
        "AgentsResult",
        "AllAgentsCleanup",
        "AuthParams",
        "AuthResult",
        "ChangeReason",
        "CleanupParams",
        "CleanupSummary",
        "CleanupsParams",
        "CleanupsResult",
        "DeleteParams",
        "DeleteResult",
        "DialectName",
        "GetParams",
        "GetResult",
        "HistoryParams",
        "HistoryResult",
        "ListParams",
        "ListResult",
        "MethodSpec",
        "PatchParams",
        "PatchResult",
        "PreviewLine",
        "PreviewParams",
        "PreviewResult",
        "ProgressParams",
        "ResetParams",
        "ResetResult",
        "RestoreParams",
        "RestoreResult",
        "SessionPreviewLines",
        "SessionSummary",
        "SessionsChanged",
        "StatusParams",
        "StatusResult",
        "StoreStatus",
        "StoresChanged",
        "SubscribeParams",
        "SubscribeResult",
        "SubscribedStore",
        "UnsubscribeParams",
        "UnsubscribeResult",
        "keyed_by_table",
        "served_by",
    },
    "protocol/undo.py": {
        "CleanupsParams",
        "CleanupsResult",
        "DeletionReason",
        "EntryState",
        "FileDeletion",
        "JournalCounts",
        "JournalEntrySummary",
        "JournalKind",
        "KeyOutcome",
        "ProgressParams",
        "ProgressToken",
        "ProgressValue",
        "RestoreParams",
        "RestoreResult",
        "StalePlanAction",
    },
    "protocol/schema_export.py": {
        "DIALECT",
        "SCHEMA_PATH",
        "build_schema",
        "error_codes",
        "main",
        "render",
    },
    "client/__init__.py": {
        "ERRORS",
        "AuthRequiredError",
        "Backoff",
        "ChangeStream",
        "ClientClosedError",
        "ConflictError",
        "ConnectError",
        "ConnectionLostError",
        "InternalError",
        "InvalidParamsError",
        "InvalidRequestError",
        "JournalEntryNotFoundError",
        "KeyNotFoundError",
        "MethodNotFoundError",
        "NotRestorableError",
        "ParseError",
        "ProtocolError",
        "RpcError",
        "RuntimeUnavailableError",
        "SeqGap",
        "SessiondClient",
        "SessiondError",
        "SessiondSyncClient",
        "StalePlanError",
        "StoreNotFoundError",
        "StoreNotWritableError",
        "StoreWriteFailedError",
    },
    "client/base.py": {
        "ClientBase",
        "ClientOptions",
        "FirstMatch",
        "ResultDecoder",
        "SyncClientBase",
    },
    "client/changes.py": {"ChangeItem", "ChangeStream", "GapReason", "SeqGap", "SeqTracker"},
    "client/connection.py": {"Backoff", "DaemonConnection", "ErrorFactory", "log"},
    "client/errors.py": {
        "ClientClosedError",
        "ConnectError",
        "ConnectionLostError",
        "ProtocolError",
        "RpcError",
        "SessiondError",
    },
    "client/generated.py": {
        "ERRORS",
        "AuthRequiredError",
        "ConflictError",
        "InternalError",
        "InvalidParamsError",
        "InvalidRequestError",
        "JournalEntryNotFoundError",
        "KeyNotFoundError",
        "MethodNotFoundError",
        "NotRestorableError",
        "ParseError",
        "RuntimeUnavailableError",
        "SessiondClient",
        "SessiondSyncClient",
        "StalePlanError",
        "StoreNotFoundError",
        "StoreNotWritableError",
        "StoreWriteFailedError",
    },
}


def top_level(tree: ast.Module) -> tuple[list[str] | None, set[str], set[str]]:
    """(`__all__` if the module sets one, names it defines, names it imports), looking into
    top-level `if` and `try` blocks too."""
    exported: list[str] | None = None
    defined: set[str] = set()
    imported: set[str] = set()

    def visit(body: list[ast.stmt]) -> None:
        nonlocal exported
        for node in body:
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                defined.add(node.name)
            elif isinstance(node, ast.Assign | ast.AnnAssign):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                for target in targets:
                    if isinstance(target, ast.Name):
                        defined.add(target.id)
                        if target.id == "__all__" and node.value is not None:
                            exported = list(ast.literal_eval(node.value))
            elif isinstance(node, ast.Import | ast.ImportFrom):
                imported.update((a.asname or a.name).split(".")[0] for a in node.names)
            elif isinstance(node, ast.If | ast.Try):
                visit(node.body)
                visit(node.orelse)
                for handler in getattr(node, "handlers", []):
                    visit(handler.body)

    visit(tree.body)
    return exported, defined, imported


def public_names() -> dict[str, set[str]]:
    found = {}
    for folder in FOLDERS:
        for path in sorted((ROOT / folder).rglob("*.py")):
            where = path.relative_to(ROOT).as_posix()
            if where.startswith(NOT_PINNED):
                continue
            exported, defined, _ = top_level(ast.parse(path.read_text(encoding="utf-8")))
            names = exported if exported is not None else defined
            found[where] = {n for n in names if not n.startswith("_")}
    return found


def test_public_names_are_the_pinned_ones() -> None:
    found = public_names()
    changes = []
    for module in sorted(found.keys() | PUBLIC.keys()):
        now, pinned = found.get(module), PUBLIC.get(module)
        if now is None or pinned is None:
            changes.append(f"{module}: {'removed' if now is None else 'new module'}")
            continue
        if now - pinned:
            changes.append(f"{module}: new {sorted(now - pinned)}")
        if pinned - now:
            changes.append(f"{module}: gone {sorted(pinned - now)}")
    assert not changes, "public names changed (update PUBLIC if meant):\n" + "\n".join(changes)


def test_every_name_in_all_is_bound() -> None:
    """An `__all__` entry the module does not bind fails only at `import *`; caught here."""
    unbound = []
    for folder in FOLDERS:
        for path in sorted((ROOT / folder).rglob("*.py")):
            exported, defined, imported = top_level(ast.parse(path.read_text(encoding="utf-8")))
            missing = set(exported or ()) - defined - imported
            if missing:
                unbound.append(f"{path.relative_to(ROOT)}: {sorted(missing)}")
    assert not unbound, unbound
