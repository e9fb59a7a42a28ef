"""Key grammar and maintenance unit grammars, case by case against the observed table."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sessiond.engine.keys import (
    is_main_scope_stale_direct_key,
    is_protected,
    is_synthetic,
    normalize_agent_id,
    parse_agent_session_key,
)
from sessiond.engine.store import EntryView
from sessiond.engine.units import UnitParseError, parse_byte_size, parse_duration_ms


@pytest.mark.parametrize(
    ("raw", "unit", "expected"),
    [
        ("7", "d", 604_800_000),
        ("1h30m", "d", 5_400_000),
        ("1.5D", "d", 129_600_000),
        ("2", "d", 172_800_000),
        ("250ms", "d", 250),
        ("1d2h", "ms", 93_600_000),
    ],
)
def test_durations(raw: str, unit: str, expected: int) -> None:
    assert parse_duration_ms(raw, default_unit=unit) == expected


@pytest.mark.parametrize("raw", ["1w", "1h 30m", "-1d", "", "h", "1h30"])
def test_durations_rejected(raw: str) -> None:
    with pytest.raises(UnitParseError):
        parse_duration_ms(raw, default_unit="d")


@pytest.mark.parametrize(
    ("raw", "expected"), [("900", 900), ("1.5KB", 1536), ("2kb", 2048), ("0", 0), ("1m", 1048576)]
)
def test_byte_sizes(raw: str, expected: int) -> None:
    assert parse_byte_size(raw) == expected


@pytest.mark.parametrize("raw", ["1x", "-5", "kb", "1.5 kb"])
def test_byte_sizes_rejected(raw: str) -> None:
    with pytest.raises(UnitParseError):
        parse_byte_size(raw)


def test_agent_ids_normalise() -> None:
    assert normalize_agent_id("  Work ") == "work"
    assert normalize_agent_id("my agent!") == "my-agent"
    assert normalize_agent_id("") == "main"
    assert normalize_agent_id("!!!") == "main"


def test_parse_drops_empty_segments_and_lowercases() -> None:
    parsed = parse_agent_session_key("AGENT:Main::Telegram:direct:X")
    assert parsed is not None
    assert (parsed.agent_id, parsed.rest) == ("main", "telegram:direct:x")
    assert parse_agent_session_key("agent:main") is None
    assert parse_agent_session_key("telegram:group:1") is None


PRUNED = [
    "agent:main:main",
    "global",
    "agent:main:direct:x",
    "agent:main:explicit:foo",
    "agent:main:x:THREAD:  ",
    "agent:main:opaque:topic:om:sender:ou",
]
KEPT = [
    "agent:main:telegram:group:-100",
    "AGENT:MAIN:TELEGRAM:GROUP:X",
    "telegram:group:123",
    "agent:main:custom:channel:room-one:with:colon",
    "agent:main:main:thread:5",
    "agent:main:telegram:direct:1:topic:7",
    "agent:main:telegram:dm:5:topic:3",
]


@pytest.mark.parametrize("key", PRUNED)
def test_unprotected_keys(key: str) -> None:
    assert not is_protected(key, EntryView())


@pytest.mark.parametrize("key", KEPT)
def test_protected_keys(key: str) -> None:
    assert is_protected(key, EntryView())


@pytest.mark.parametrize(
    "key",
    [
        "agent:main:subagent:w",
        "agent:main:cron:job:run:1",
        "agent:main:main:heartbeat",
        "agent:main:hook:x",
        "agent:main:node:x",
        "acp:bare",
    ],
)
def test_synthetic_keys_ignore_group_metadata(key: str) -> None:
    assert is_synthetic(key)
    assert not is_protected(key, EntryView(chat_type="group"))


def test_bare_cron_key_is_not_synthetic_so_chat_type_protects_it() -> None:
    assert not is_synthetic("cron:bare")
    assert is_protected("cron:bare", EntryView(chat_type="group"))
    assert is_protected("agent:main:opaque", EntryView(origin={"chatType": "Channel"}))


@pytest.mark.parametrize(
    "key",
    [
        "agent:main:direct:6101",
        "agent:main:telegram:direct:6101",
        "agent:main:telegram:default:direct:6101",
        "agent:main:telegram::direct:malformed",
        "AGENT:Main:Telegram:Direct:X",
    ],
)
def test_dm_scope_retires_peer_keyed_direct_rows(key: str) -> None:
    assert is_main_scope_stale_direct_key(key, "main", None, "main")
    assert not is_main_scope_stale_direct_key(key, "main", None, "per-peer")
    assert not is_main_scope_stale_direct_key(key, "work", None, "main")


@pytest.mark.parametrize(
    "key",
    [
        "agent:main:main",
        "agent:main:telegram:direct:123:thread:9",
        "agent:main:telegram:direct:123:topic:4",
        "agent:main:telegram:group:1",
    ],
)
def test_dm_scope_keeps_other_shapes(key: str) -> None:
    assert not is_main_scope_stale_direct_key(key, "main", None, "main")


def test_dm_scope_active_key_is_exact_and_case_sensitive() -> None:
    key = "agent:main:slack:direct:keepme"
    assert not is_main_scope_stale_direct_key(key, "main", key, "main")
    assert is_main_scope_stale_direct_key(key, "main", key.upper(), "main")


KEY_TEXT = st.lists(
    st.sampled_from(
        [
            "agent",
            "main",
            "Work",
            " ",
            ":",
            "::",
            "direct",
            "dm",
            "thread",
            "topic",
            "group",
            "channel",
            "telegram",
            "subagent",
            "acp",
            "cron",
            "hook",
            "node",
            "heartbeat",
            "x",
            "İ",
            "\u00a0",
            "7",
            "-100",
        ]
    ),
    max_size=9,
).map("".join)


@settings(max_examples=2000)
@given(key=KEY_TEXT, agent=st.sampled_from(["main", "work", "Main", " main"]))
def test_key_rules_answer_what_the_rules_answer_one_by_one(key: str, agent: str) -> None:
    from sessiond.engine.keys import (
        _protected_by_key,
        is_main_scope_stale_direct_key,
        key_rules,
    )

    assert key_rules(key, agent) == (
        _protected_by_key(key),
        is_main_scope_stale_direct_key(key, agent, None, "main"),
    )


FILE_NAME = st.lists(
    st.sampled_from(
        [
            "sessions.json",
            ".bak.",
            "7",
            "00000000-0000-4000-8000-000000000000",
            ".checkpoint.",
            ".CHECKPOINT.",
            ".trajectory",
            "-path.json",
            ".jsonl",
            ".json",
            ".deleted.",
            ".reset.",
            "2026-01-02T03-04-05.678Z",
            "2026-01-02T03-04-05Z",
            "Z",
            "x",
        ]
    ),
    max_size=5,
).map("".join)


@settings(max_examples=2000)
@given(name=FILE_NAME)
def test_file_kind_answers_what_the_rules_answer_one_by_one(name: str) -> None:
    from sessiond.engine.transcripts import file_kind, is_archive, is_sweepable

    assert file_kind(name) == (is_archive(name), is_sweepable(name))


def _stamp_by_strptime(stamp: str) -> int | None:
    """The archive stamp rule as `strptime` reads it (the reference's reading)."""
    import datetime as dt

    date, _, time = stamp.partition("T")
    try:
        moment = dt.datetime.strptime(
            f"{date}T{time.replace('-', ':')}".rstrip("Z"),
            "%Y-%m-%dT%H:%M:%S.%f" if "." in time else "%Y-%m-%dT%H:%M:%S",
        ).replace(tzinfo=dt.UTC)
    except ValueError:
        return None
    return int(moment.timestamp() * 1000)


TWO = st.sampled_from(["00", "01", "09", "12", "13", "23", "24", "28", "29", "30", "31", "59"])
STAMP = st.builds(
    "{}-{}-{}T{}-{}-{}{}Z{}".format,
    st.sampled_from(["2024", "2025", "1970", "0000", "0001", "9999", "١٩٧٠"]),
    TWO,
    TWO,
    TWO,
    TWO,
    st.sampled_from(["00", "59", "60", "61", "07"]),
    st.sampled_from(["", ".000", ".999", ".5", ".1234"]),
    st.sampled_from(["", "\n", "x"]),
)


@settings(max_examples=2000)
@given(stamp=STAMP)
def test_archive_stamps_read_as_strptime_reads_them(stamp: str) -> None:
    from sessiond.engine.transcripts import parse_archive_stamp_ms

    assert parse_archive_stamp_ms(stamp) == _stamp_by_strptime(stamp)
