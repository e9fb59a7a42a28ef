"""The pure rules behind what OpenClaw's clients are shown: transcript tails, chat history
projection, list selection and row fields, patch and reset (engine/; no files, no daemon).

Expected values are OpenClaw 2026.5.12's (observed in the live comparison, or read from its
sources), so a regression shows here before the slow comparison runs.
"""

from __future__ import annotations

import json
from typing import Any

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st
from sessiond.engine.chat_display import fit_history_budget, project_history
from sessiond.engine.config import parse_config
from sessiond.engine.session_patch import PatchRefused, apply_patch, reset_entry
from sessiond.engine.session_rows import (
    ListQuery,
    ModelRef,
    RowContext,
    build_row,
    canonical_stored_key,
    child_index,
    derive_title,
    group_display_name,
    listable_rows,
    merge_into_combined,
    normalize_loaded_entry,
    resolve_session_key,
    select_rows,
)
from sessiond.engine.store import EntryView, entry_view
from sessiond.engine.transcript_tail import (
    first_user_message,
    last_message_preview,
    preview_bounds,
    preview_items,
    recent_history_messages,
    recent_preview_messages,
    tail_lines,
    usage_from_tail,
)
from sessiond.protocol.gateway_frames import SessionsPatchParams

NOW = 1_795_000_000_000
HOUR = 3_600_000


def line(role: str, text: Any, ident: str | None = None, parent: str | None = None) -> str:
    content = [{"type": "text", "text": text}] if isinstance(text, str) else text
    record: dict[str, Any] = {"type": "message", "message": {"role": role, "content": content}}
    if ident is not None:
        record["id"] = ident
        record["parentId"] = parent
    return json.dumps(record)


def jsonl(*lines: str) -> bytes:
    return ("\n".join(lines) + "\n").encode()


# -------------------------------------------------------------------------------- tails


def test_titles_come_from_the_head_and_previews_from_the_tail() -> None:
    head = jsonl(
        json.dumps({"type": "session", "id": "s"}),
        line("user", "routed", None).replace(
            '"user"', '"user", "provenance": {"kind": "inter_session"}'
        ),
        line("assistant", "hello"),
        line("user", "  [[reply_to_current]] Plan   my trip  "),
    )
    assert first_user_message(head) == "Plan   my trip"
    # A tail starts mid-line: the cut first line fails to parse and is skipped.
    tail = b'ext": "cut off"}}\n' + jsonl(line("user", "q"), line("assistant", "the answer"))
    assert last_message_preview(tail) == "the answer"
    assert last_message_preview(jsonl(line("toolResult", "x"))) is None


def test_preview_items_roles_tools_media_and_truncation() -> None:
    chunk = jsonl(
        line("user", "[Telegram Ann 2026-05-01 10:00Z] hi there"),
        line(
            "assistant",
            [
                {"type": "toolCall", "name": "camera"},
                {"type": "toolCall", "name": "map"},
                {"type": "tool_call", "name": "web"},
            ],
        ),
        line("user", [{"type": "image", "data": "AAAA"}]),
        line("assistant", "x" * 50),
    )
    messages = recent_preview_messages(chunk, 12)
    items = preview_items(messages, 12, 20)
    assert [(i.role, i.text) for i in items] == [
        ("user", "hi there"),
        ("tool", "call camera, map +1"),
        ("user", "[image]"),
        ("assistant", "x" * 17 + "..."),
    ]
    assert preview_bounds(None, None) == (12, 240)
    assert preview_bounds(500, 5) == (50, 20)


def test_history_follows_the_active_branch_and_numbers_within_the_tail() -> None:
    lines = [
        line("user", "root", "a", None),
        line("assistant", "old answer", "b", "a"),
        line("user", "edited", "c", "a"),
        json.dumps(
            {"type": "compaction", "id": "k", "parentId": "c", "timestamp": "2026-01-01T00:00:00Z"}
        ),
        line("user", "after", "d", "k"),
        "{broken",
    ]
    messages = recent_history_messages(tail_lines(jsonl(*lines), False, 100), 10, NOW)
    texts = [m["content"][0]["text"] for m in messages]
    assert texts == ["root", "edited", "Compaction", "after"]
    assert [m["__openclaw"]["seq"] for m in messages] == [1, 2, 3, 4]
    assert messages[2]["timestamp"] == 1767225600000  # the compaction's own time
    assert recent_history_messages(tail_lines(jsonl(*lines), False, 100), 1, NOW)[0][
        "__openclaw"
    ] == {"id": "d", "seq": 4}


def test_an_oversized_line_becomes_a_placeholder_with_its_ids() -> None:
    text = {"type": "text", "text": "z" * 300_000}
    big = json.dumps(
        {
            "type": "message",
            "id": "o1",
            "parentId": None,
            "message": {"role": "assistant", "content": [text]},
        }
    )
    (message,) = recent_history_messages([big], 5, NOW)
    assert message["content"] == [
        {"type": "text", "text": "[chat.history omitted: message too large]"}
    ]
    assert message["__openclaw"] == {"truncated": True, "reason": "oversized", "id": "o1", "seq": 1}


def test_usage_sums_assistant_lines_and_keeps_the_newest_total() -> None:
    chunk = jsonl(
        json.dumps(
            {
                "message": {
                    "role": "assistant",
                    "provider": "openai",
                    "model": "m1",
                    "usage": {"input": 10, "output": 5, "cacheRead": 2},
                }
            }
        ),
        json.dumps({"message": {"role": "user", "usage": {"input": 999}}}),
        json.dumps(
            {
                "message": {
                    "role": "assistant",
                    "model": "m2",
                    "usage": {"prompt_tokens": 7, "completion_tokens": 3, "cost": {"total": 0.5}},
                }
            }
        ),
    )
    usage = usage_from_tail(chunk, False)
    assert usage is not None
    assert (usage.model_provider, usage.model) == ("openai", "m2")
    assert (usage.input_tokens, usage.output_tokens, usage.cache_read) == (17, 8, 2)
    assert usage.total_tokens == 7 and usage.cost_usd == 0.5
    assert usage_from_tail(jsonl(line("user", "x")), False) is None


# ------------------------------------------------------------------------- chat display


def test_history_projection_strips_hides_and_caps() -> None:
    meta = 'Sender (untrusted metadata):\n```json\n{"label": "Ann"}\n```\n\nreal question'
    messages = [
        {"role": "user", "content": [{"type": "text", "text": meta}]},
        {
            "role": "assistant",
            "content": [{"type": "text", "text": "[[audio_as_voice]] sure"}],
            "usage": {"input": 1, "weird": "x"},
            "details": {},
        },
        {"role": "user", "content": "[OpenClaw heartbeat poll]"},
        {"role": "assistant", "content": "HEARTBEAT_OK"},
        {"role": "assistant", "content": " no_reply "},
        {"role": "user", "content": [{"type": "image", "data": "QUJD"}]},
        {"role": "assistant", "content": "y" * 30},
        {"role": "user", "content": ""},
        "not an object",
    ]
    shown = project_history(messages, 10, max_chars=30)
    assert shown[0]["content"][0]["text"] == "real question"
    assert shown[0]["senderLabel"] == "Ann"
    assert shown[1] == {
        "role": "assistant",
        "content": [{"type": "text", "text": " sure"}],
        "usage": {"input": 1},
    }
    assert shown[2]["content"] == [{"type": "image", "omitted": True, "bytes": 4}]
    assert shown[3]["content"] == "y" * 30
    assert len(shown) == 4
    # Texts are capped before the heartbeat check, as the reference does: a cut poll shows.
    capped = project_history(messages, 10, max_chars=10)
    assert capped[0]["content"][0]["text"] == "real quest\n...(truncated)..."
    assert capped[2]["content"] == "[OpenClaw \n...(truncated)..."
    assert project_history(messages, 2) == project_history(messages, 10)[-2:]


def test_history_budget_replaces_what_is_too_big() -> None:
    small = {"role": "user", "content": "hi", "timestamp": 5}
    huge = {"role": "assistant", "content": "x" * 200_000, "timestamp": 6}
    fitted = fit_history_budget([small, huge], NOW)
    assert fitted[0] == small
    assert fitted[1]["content"][0]["text"] == "[chat.history omitted: message too large]"
    assert fitted[1]["timestamp"] == 6


# ---------------------------------------------------------------------------- list rows


def raw(value: Any) -> msgspec.Raw:
    return msgspec.Raw(json.dumps(value).encode())


def test_selection_filters_and_keeps_store_order_among_equal_times() -> None:
    rows = {
        "agent:main:a": {"updatedAt": NOW - HOUR, "label": "Trip", "sessionId": "s1"},
        "agent:work:b": {"updatedAt": NOW - HOUR, "subject": "Family chat"},
        "agent:main:cron:x:run:1": {"updatedAt": NOW},
        "global": {"updatedAt": NOW},
        "agent:main:subagent:c": {"updatedAt": NOW - 60_000, "spawnedBy": "agent:main:a"},
        "agent:main:old": {"updatedAt": NOW - 100 * HOUR},
        "agent:main:null": None,
    }
    candidates = [(k, entry_view(raw(v)), "store") for k, v in rows.items()]

    def keys(query: ListQuery) -> list[str]:
        return [k for k, _f, _o in select_rows(candidates, query, NOW).rows]

    assert keys(ListQuery()) == [
        "agent:main:subagent:c",
        "agent:main:a",
        "agent:work:b",
        "agent:main:old",
        "agent:main:null",
    ]
    assert keys(ListQuery(include_global=True, limit=2)) == ["global", "agent:main:subagent:c"]
    assert keys(ListQuery(agent_id="work")) == ["agent:work:b"]
    assert keys(ListQuery(search="family")) == ["agent:work:b"]
    assert keys(ListQuery(search="s1")) == ["agent:main:a"]
    assert keys(ListQuery(label="Trip")) == ["agent:main:a"]
    assert keys(ListQuery(spawned_by="agent:main:a")) == ["agent:main:subagent:c"]
    assert keys(ListQuery(active_minutes=120)) == [
        "agent:main:subagent:c",
        "agent:main:a",
        "agent:work:b",
    ]
    children = child_index(((k, f) for k, f, _o in candidates), NOW)
    assert children == {"agent:main:a": ["agent:main:subagent:c"]}
    assert select_rows(candidates, ListQuery(limit=1), NOW).total == 5


def test_rows_show_the_fields_the_reference_derives() -> None:
    cfg = parse_config({"agents": {"list": [{"id": "main", "default": True}]}}, "cfg.json")
    entry = {
        "sessionId": "s",
        "updatedAt": NOW,
        "chatType": "channel",
        "channel": "slack",
        "groupChannel": "general",
        "space": "acme",
        "lastAccountId": "Default",
        "lastTo": "C1",
        "totalTokens": 0,
        "compactionCheckpoints": [
            {"checkpointId": "c1", "createdAt": 1, "reason": "manual"},
            {"checkpointId": "c2", "createdAt": 2, "reason": "nope"},
        ],
    }
    row = build_row("agent:main:slack:channel:c1", entry, RowContext(cfg, NOW), lightweight=True)
    out = json.loads(msgspec.json.encode(row))
    assert out["kind"] == "group" and out["displayName"] == "slack:acme#general"
    assert out["deliveryContext"] == {"channel": "slack", "to": "C1", "accountId": "default"}
    assert out["lastAccountId"] == "default"
    assert (out["modelProvider"], out["model"]) == ("openai", "gpt-5.5")
    assert out["totalTokensFresh"] is False and "totalTokens" not in out
    assert out["compactionCheckpointCount"] == 2 and "latestCompactionCheckpoint" not in out
    assert group_display_name("telegram", "Family Chat", None, None, "-1001", "k") == (
        "telegram:g-family-chat"
    )
    assert derive_title({"sessionId": "abcdef123456", "updatedAt": NOW}, None) == (
        "abcdef12 (2026-11-18)"
    )
    long = "word " * 30
    assert derive_title({"sessionId": "s"}, long) == ("word " * 11).strip() + "…"


def test_keys_resolve_as_the_reference_resolves_them() -> None:
    cfg = parse_config(
        {"agents": {"list": [{"id": "work", "default": True}, {"id": "ops"}]}}, "cfg.json"
    )
    assert resolve_session_key(cfg, "main") == ("agent:work:main", "work")
    assert resolve_session_key(cfg, "AGENT:OPS:Thing") == ("agent:ops:thing", "ops")
    assert resolve_session_key(cfg, "agent:main:main") == ("agent:work:main", "work")
    assert resolve_session_key(cfg, "Global") == ("global", "work")
    assert resolve_session_key(cfg, "telegram:direct:5") == ("agent:work:telegram:direct:5", "work")


def test_rows_are_written_in_the_reference_loaded_form() -> None:
    loaded = normalize_loaded_entry(
        {"sessionId": "s", "provider": "Slack", "room": "#x", "model": " m ", "modelProvider": ""}
    )
    assert loaded == {
        "sessionId": "s",
        "channel": "Slack",
        "groupChannel": "#x",
        "model": "m",
        "deliveryContext": {"channel": "slack"},
        "lastChannel": "slack",
    }


# ------------------------------------------------------------------------- patch, reset


def patch(**fields: Any) -> SessionsPatchParams:
    return msgspec.convert({"key": "agent:main:x", **fields}, SessionsPatchParams)


def apply(existing: Any, params: SessionsPatchParams, taken: bool = False) -> dict[str, Any]:
    return apply_patch(
        existing,
        params,
        store_key=params.key,
        label_taken=lambda _label: taken,
        default_model=ModelRef("openai", "gpt-5.5"),
        now_ms=NOW,
        new_session_id="new-id",
    )


def test_patch_normalises_spellings_and_refuses_in_the_reference_words() -> None:
    row = apply(
        {"sessionId": "s", "updatedAt": NOW + 5, "responseUsage": "full"},
        patch(
            thinkingLevel="think-hard",
            fastMode=False,
            verboseLevel="FULL",
            responseUsage="off",
            elevatedLevel="yes",
            label="  Trip  ",
        ),
    )
    assert row == {
        "sessionId": "s",
        "updatedAt": NOW + 5,
        "label": "Trip",
        "thinkingLevel": "low",
        "fastMode": False,
        "verboseLevel": "full",
        "elevatedLevel": "on",
    }
    assert apply(None, patch(label="x")) == {"sessionId": "new-id", "updatedAt": NOW, "label": "x"}
    cases = [
        (patch(label="dup"), True, "label already in use: dup"),
        (patch(label="   "), False, "invalid label: empty"),
        (
            patch(thinkingLevel="sideways"),
            False,
            "invalid thinkingLevel (use off|minimal|low|medium|high|xhigh)",
        ),
        (
            patch(spawnedBy="agent:main:y"),
            False,
            "spawnedBy is only supported for subagent:* or acp:* sessions",
        ),
        (
            patch(execHost="teleport"),
            False,
            'invalid execHost (use "auto"|"sandbox"|"gateway"|"node")',
        ),
    ]
    for params, taken, message in cases:
        with pytest.raises(PatchRefused) as refused:
            apply({"sessionId": "s"}, params, taken)
        assert (refused.value.message, refused.value.code) == (message, "INVALID_REQUEST")
    with pytest.raises(PatchRefused) as no_catalog:
        apply({"sessionId": "s"}, patch(model="anthropic/claude"))
    assert (no_catalog.value.message, no_catalog.value.code) == (
        "model catalog unavailable",
        "UNAVAILABLE",
    )


def test_reset_keeps_identity_and_settings_and_zeroes_the_counts() -> None:
    cfg = parse_config({}, "cfg.json")
    old = {
        "sessionId": "old",
        "sessionFile": "/s/old.jsonl",
        "updatedAt": 1,
        "label": "Trip",
        "thinkingLevel": "high",
        "model": "gpt-4",
        "modelProvider": "openai",
        "contextTokens": 5,
        "totalTokens": 900,
        "customField": "dropped by a reset",
        "origin": {"label": "Ann"},
    }
    row = reset_entry(
        old,
        cfg=cfg,
        agent_id="main",
        new_session_id="new",
        session_file="/s/old.jsonl",
        now_ms=NOW,
    )
    assert row == {
        "sessionId": "new",
        "sessionFile": "/s/old.jsonl",
        "updatedAt": NOW,
        "systemSent": False,
        "abortedLastRun": False,
        "thinkingLevel": "high",
        "model": "gpt-5.5",
        "modelProvider": "openai",
        "label": "Trip",
        "origin": {"label": "Ann"},
        "inputTokens": 0,
        "outputTokens": 0,
        "totalTokens": 0,
        "totalTokensFresh": True,
    }


def test_the_combined_view_canonicalises_keys_and_merges_aliases() -> None:
    cfg = parse_config(
        {"agents": {"list": [{"id": "home", "default": True}]}, "session": {"mainKey": "Desk"}},
        "cfg.json",
    )
    assert canonical_stored_key(cfg, "home", "agent:home:main") == "agent:home:desk"
    assert canonical_stored_key(cfg, "home", "Telegram:Direct:5") == "agent:home:telegram:direct:5"
    assert canonical_stored_key(cfg, "home", "GLOBAL") == "global"
    older = {"sessionId": "a", "updatedAt": 1, "label": "old", "spawnedBy": "desk"}
    newer = {"sessionId": "b", "updatedAt": 2}
    merged = merge_into_combined(cfg, "home", older, newer)
    assert merged == {
        "sessionId": "b",
        "updatedAt": 2,
        "label": "old",
        "spawnedBy": "agent:home:desk",
    }
    assert merge_into_combined(cfg, "home", newer, older) == merged | {"updatedAt": 2}
    plain = {"sessionId": "c", "spawnedBy": "agent:home:desk"}
    assert merge_into_combined(cfg, "home", None, plain) is plain


_KEYS = st.sampled_from(
    [
        "global", "unknown", "main", "agent:main:main", "agent:ops:main", "agent:main:cron:j1",
        "agent:main:cron:j1:run:r1", "agent:ops:cron:j2:run:r2", "agent:main:telegram:direct:7",
        "agent:ops:slack:channel:c1", "agent:main:subagent:s1", "agent:Ops:explicit:x",
    ]
)  # fmt: skip
_STAMPS = st.one_of(
    st.none(), st.integers(0, 10), st.sampled_from([float("nan"), "5", True, -1, 1e300])
)
_FACTS_OF = st.builds(
    EntryView,
    updated_at=_STAMPS,
    label=st.sampled_from([None, "a", "b"]),
    spawned_by=st.sampled_from([None, "agent:main:main", "agent:ops:main"]),
    parent_session_key=st.sampled_from([None, "agent:main:main"]),
    status=st.sampled_from([None, "running", "done"]),
)
_QUERIES = st.builds(
    ListQuery,
    limit=st.integers(-1, 6),
    include_global=st.booleans(),
    include_unknown=st.booleans(),
    agent_id=st.sampled_from(["", "main", "ops"]),
    spawned_by=st.sampled_from(["", "agent:main:main"]),
    label=st.sampled_from(["", "a"]),
    search=st.sampled_from(["", "ops", "a"]),
    active_minutes=st.sampled_from([None, 1, 100]),
)


@given(
    st.lists(
        st.tuples(_KEYS, st.one_of(st.none(), _FACTS_OF)), max_size=14, unique_by=lambda r: r[0]
    ),
    _QUERIES,
)
def test_a_kept_list_selects_what_a_fresh_one_does(
    rows: list[tuple[str, EntryView | None]], query: ListQuery
) -> None:
    """The daemon keeps `listable_rows` between lists and selects with `prepared=True`: the
    page and the total are the ones a selection from the rows as they stand gives."""
    candidates = [(key, facts, n) for n, (key, facts) in enumerate(rows)]
    fresh = select_rows(candidates, query, 600_000)
    kept = select_rows(listable_rows(candidates), query, 600_000, prepared=True)
    assert (kept.rows, kept.total, kept.limit) == (fresh.rows, fresh.total, fresh.limit)
