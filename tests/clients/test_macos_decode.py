"""sessions.list as the macOS app decodes it (apps/macos/Sources/OpenClaw/SessionData.swift).

The app polls `sessions.list {includeGlobal: true, includeUnknown: true, limit: 32}` and decodes
the answer with Swift's `JSONDecoder` into `GatewaySessionsListResponse`: `path: String` and
`count: Int` required, `ts: Double?`, `defaults {model: String?, contextTokens: Int?}`, and each
row's typed optional fields; a single mistyped field fails the whole menu. The Structs below
declare the same names and types (unknown keys ignored, as `Codable` ignores them) and decode
sessiond's answer strictly.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import msgspec
from differential import client_fixtures
from harness.daemon_process import DaemonProcess
from harness.gateway_client import GatewayClient

TOKEN = "mac-token-1"


class DefaultsRecord(msgspec.Struct, rename="camel"):
    model: str | None = None
    context_tokens: int | None = None


class EntryRecord(msgspec.Struct, rename="camel"):
    key: str
    display_name: str | None = None
    provider: str | None = None
    subject: str | None = None
    room: str | None = None
    space: str | None = None
    updated_at: float | None = None
    session_id: str | None = None
    system_sent: bool | None = None
    aborted_last_run: bool | None = None
    thinking_level: str | None = None
    verbose_level: str | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    total_tokens: int | None = None
    model: str | None = None
    context_tokens: int | None = None


class ListResponse(msgspec.Struct):
    path: str
    count: int
    sessions: list[EntryRecord]
    ts: float | None = None
    defaults: DefaultsRecord | None = None


class PreviewItem(msgspec.Struct):
    role: str
    text: str


class Preview(msgspec.Struct):
    key: str
    status: str
    items: list[PreviewItem]


class PreviewResponse(msgspec.Struct):
    ts: float
    previews: list[Preview]


async def _ask(url: str, method: str, params: object) -> bytes:
    client = await GatewayClient.connect(url, TOKEN)
    try:
        payload = await client.call(method, params)
    finally:
        await client.close()
    return msgspec.json.encode(payload)


def test_the_macos_app_decodes_sessions_list_and_preview(tmp_path: Path) -> None:
    state = tmp_path / "state"
    client_fixtures.build("agents", state, 1_795_000_000_000)
    with DaemonProcess(state, "--token", TOKEN, env={"HOME": str(state)}) as daemon:
        params = {"includeGlobal": True, "includeUnknown": True, "limit": 32}
        listed = msgspec.json.decode(
            asyncio.run(_ask(daemon.url, "sessions.list", params)), type=ListResponse
        )
        keys = [row.key for row in listed.sessions]
        preview = msgspec.json.decode(
            asyncio.run(
                _ask(
                    daemon.url,
                    "sessions.preview",
                    {"keys": keys[:5], "limit": 10, "maxChars": 240},
                )
            ),
            type=PreviewResponse,
        )
    assert listed.path == "(multiple)" and listed.count == 32 == len(listed.sessions)
    assert listed.defaults == DefaultsRecord(model="gpt-5.5", context_tokens=200_000)
    assert "global" in keys and "unknown" in keys
    home = next(row for row in listed.sessions if row.key == "agent:main:main")
    assert (home.display_name, home.total_tokens, home.context_tokens) == (
        "main home",
        1500,
        200000,
    )
    assert [p.key for p in preview.previews] == keys[:5]
    assert all(p.status in ("ok", "empty", "missing", "error") for p in preview.previews)
